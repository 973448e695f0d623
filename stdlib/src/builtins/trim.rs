//! `trim(s)`: a string without leading and trailing whitespace.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "trim",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String])],
    named: &[],
    returns: Returns::Type(Type::String),
    doc: "The string `s` without leading and trailing whitespace (Unicode `White_Space`: \
          spaces, tabs, newlines and the like). `nil` if `s` is not a string.",
    examples: &[
        Example { call: r#"trim("  GET /orders \n")"#, result: r#""GET /orders""# },
        Example { call: r#"trim("\t")"#, result: r#""""# },
        Example { call: "trim(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    str_arg(args, 0).map_or(Value::Nil, |s| Value::str(s.trim()))
}
