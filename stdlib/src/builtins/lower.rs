//! `lower(s)`: a string in lower case.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, case_mapped, param};
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
    case_mapped(args, u8::is_ascii_uppercase, str::to_lowercase)
}
