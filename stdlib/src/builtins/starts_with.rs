//! `starts_with(s, prefix)`: whether a string begins with another.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "starts_with",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String]), param("prefix", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::Bool),
    doc: "Whether the string `s` begins with `prefix` (case-sensitive). `nil` if either \
          argument is not a string.",
    examples: &[
        Example { call: r#"starts_with("/api/v2/admin", "/api/")"#, result: "true" },
        Example { call: r#"starts_with("/health", "/api/")"#, result: "false" },
        Example { call: r#"starts_with(nil, "/api/")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match (str_arg(args, 0), str_arg(args, 1)) {
        (Some(s), Some(prefix)) => Value::Bool(s.starts_with(prefix)),
        _ => Value::Nil,
    }
}
