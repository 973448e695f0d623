//! `upper(s)`: a string in upper case.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, case_mapped, param};
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
    case_mapped(args, u8::is_ascii_lowercase, str::to_uppercase)
}
