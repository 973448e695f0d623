//! `sum(set, e)`: the sum of `e` over a spanset (an aggregate).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};

pub const BUILTIN: Builtin = Builtin {
    name: "sum",
    kind: BuiltinKind::Aggregate,
    params: &[param("set", &[Type::SpanSet]), param("e", &[Type::Int, Type::Float, Type::Duration])],
    named: &[],
    returns: Returns::SameAsParam(1),
    doc: "The sum of `e`, evaluated for each span of `set`, of `e`'s type (ints sum to an int, durations to a duration); `0` of that type for an empty set. Spans for which `e` is `nil` (a missing attribute) or not a number are \
          skipped. Also written in TraceQL's pipeline form, `{ … } | sum(e)`. An \
          aggregate: the compiler and VM implement it as a special form, so it has no \
          `eval` here.",
    examples: &[
        Example { call: "sum({ span.db.system.name != nil }, duration)", result: "1.25s" },
        Example { call: "sum({ kind = server }, span.http.response.body.size)", result: "48213" },
    ],
    eval: None,
};
