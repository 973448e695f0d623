//! `count(set)`: the number of spans in a spanset (an aggregate).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};

pub const BUILTIN: Builtin = Builtin {
    name: "count",
    kind: BuiltinKind::Aggregate,
    params: &[param("set", &[Type::SpanSet])],
    named: &[],
    returns: Returns::Type(Type::Int),
    doc: "The number of spans in `set`; `0` for an empty set. Also written in TraceQL's \
          pipeline form, `{ … } | count()`. An aggregate: the compiler and VM implement \
          it as a special form, so it has no `eval` here.",
    examples: &[
        Example { call: r#"count({ name = "http.request" && span.http.request.resend_count > 0 })"#, result: "2" },
        Example { call: "count({ status = error })", result: "0" },
    ],
    eval: None,
};
