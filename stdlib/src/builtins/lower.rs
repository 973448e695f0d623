//! `lower(s)`: a string in lower case.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "lower",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::String),
    doc: "The string `s` in lower case, by Unicode's case mapping (`\"ÉTÉ\"` becomes \
          `\"été\"`). `nil` if `s` is not a string.",
    examples: &[
        Example { call: r#"lower("ABC")"#, result: r#""abc""# },
        Example { call: r#"lower("Content-Type")"#, result: r#""content-type""# },
        Example { call: r#"lower("ÉTÉ")"#, result: r#""été""# },
        Example { call: r#"lower("get")"#, result: r#""get""# },
        Example { call: "lower(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match str_arg(args, 0) {
        // ASCII without an upper-case letter is its own lower case: the
        // argument is handed back, not copied (`GET`, `SELECT`, most keys).
        Some(s) if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) => args[0].clone(),
        Some(s) => Value::str(&s.to_lowercase()),
        None => Value::Nil,
    }
}
