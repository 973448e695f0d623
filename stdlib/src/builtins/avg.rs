//! `avg(set, e)`: the mean of `e` over a spanset (an aggregate).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};

pub const BUILTIN: Builtin = Builtin {
    name: "avg",
    kind: BuiltinKind::Aggregate,
    params: &[param("set", &[Type::SpanSet]), param("e", &[Type::Int, Type::Float, Type::Duration])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "The mean of `e`, evaluated for each span of `set`, as a float (durations in nanoseconds); `nil` for an empty set. Spans for which `e` is `nil` (a missing attribute) or not a number are \
          skipped. Also written in TraceQL's pipeline form, `{ … } | avg(e)`. An \
          aggregate: the compiler and VM implement it as a special form, so it has no \
          `eval` here.",
    examples: &[
        Example { call: "avg({ kind = server }, span.http.response.status_code)", result: "212.5" },
        Example { call: "avg({ kind = client }, duration)", result: "35000000.0" },
    ],
    eval: None,
};
