//! `upper(s)`: a string in upper case.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "upper",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::String),
    doc: "The string `s` in upper case, by Unicode's case mapping (`\"straße\"` becomes \
          `\"STRASSE\"`). `nil` if `s` is not a string.",
    examples: &[
        Example { call: r#"upper("get")"#, result: r#""GET""# },
        Example { call: r#"upper("straße")"#, result: r#""STRASSE""# },
        Example { call: r#"upper("GET")"#, result: r#""GET""# },
        Example { call: "upper(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match str_arg(args, 0) {
        // ASCII without an lower-case letter is its own upper case: the
        // argument is handed back, not copied (`GET`, `SELECT`, most keys).
        Some(s) if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_lowercase()) => args[0].clone(),
        Some(s) => Value::str(&s.to_uppercase()),
        None => Value::Nil,
    }
}
