//! `replace(s, from, to)`: a string with every occurrence of one string replaced.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "replace",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String]), param("from", &[Type::String]), param("to", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::String),
    doc: "The string `s` with every non-overlapping occurrence of `from` replaced by `to`, \
          left to right. The match is literal, not a regex. An empty `from` matches nothing, \
          so `s` comes back unchanged. `nil` if any argument is not a string.",
    examples: &[
        Example { call: r#"replace("/users/42/orders/7", "/", ".")"#, result: r#"".users.42.orders.7""# },
        Example { call: r#"replace("aaa", "aa", "b")"#, result: r#""ba""# },
        Example { call: r#"replace("abc", "", "-")"#, result: r#""abc""# },
        Example { call: r#"replace("abc", nil, "-")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match (str_arg(args, 0), str_arg(args, 1), str_arg(args, 2)) {
        (Some(s), Some(""), Some(_)) => Value::str(s),
        (Some(s), Some(from), Some(to)) => Value::str(&s.replace(from, to)),
        _ => Value::Nil,
    }
}
