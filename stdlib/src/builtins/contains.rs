//! `contains(s, sub)`: whether a string contains another.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "contains",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String]), param("sub", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::Bool),
    doc: "Whether the string `s` contains `sub` (case-sensitive; every string contains `\"\"`). \
          `nil` if either argument is not a string.",
    examples: &[
        Example { call: r#"contains("checkout.payment", "pay")"#, result: "true" },
        Example { call: r#"contains("checkout", "Check")"#, result: "false" },
        Example { call: r#"contains("", "")"#, result: "true" },
        Example { call: r#"contains(nil, "x")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match (str_arg(args, 0), str_arg(args, 1)) {
        (Some(s), Some(sub)) => Value::Bool(s.contains(sub)),
        _ => Value::Nil,
    }
}
