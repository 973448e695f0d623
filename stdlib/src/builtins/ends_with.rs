//! `ends_with(s, suffix)`: whether a string ends with another.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "ends_with",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String]), param("suffix", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::Bool),
    doc: "Whether the string `s` ends with `suffix` (case-sensitive). `nil` if either \
          argument is not a string.",
    examples: &[
        Example { call: r#"ends_with("orders.internal", ".internal")"#, result: "true" },
        Example { call: r#"ends_with("orders.example.com", ".internal")"#, result: "false" },
        Example { call: r#"ends_with(nil, "")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match (str_arg(args, 0), str_arg(args, 1)) {
        (Some(s), Some(suffix)) => Value::Bool(s.ends_with(suffix)),
        _ => Value::Nil,
    }
}
