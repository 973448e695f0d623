//! `min(set, e)`: the smallest `e` over a spanset (an aggregate).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};

pub const BUILTIN: Builtin = Builtin {
    name: "min",
    kind: BuiltinKind::Aggregate,
    params: &[param("set", &[Type::SpanSet]), param("e", &[Type::Int, Type::Float, Type::Duration])],
    named: &[],
    returns: Returns::SameAsParam(1),
    doc: "The smallest value of `e`, evaluated for each span of `set`, of `e`'s type; `nil` for an empty set. Spans for which `e` is `nil` (a missing attribute) or not a number are \
          skipped. Also written in TraceQL's pipeline form, `{ … } | min(e)`. An \
          aggregate: the compiler and VM implement it as a special form, so it has no \
          `eval` here.",
    examples: &[
        Example { call: "min({ kind = server }, duration)", result: "12ms" },
        Example { call: "min({ kind = client }, span.http.request.resend_count)", result: "0" },
    ],
    eval: None,
};
