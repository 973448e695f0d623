//! `float(x)`: a string, int or duration as a float.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "float",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::String, Type::Int, Type::Duration, Type::Float])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "`x` as a float: a string holding a decimal number (`\"1.5\"`, `\"-2\"`, \
          `\"1e3\"`; no spaces), an int, a duration in nanoseconds (like `int`; divide by \
          `float(1s)` for seconds). `nil` when that fails: a string that is not a finite \
          number (`\"NaN\"` and `\"inf\"` are refused), or a value of another type.",
    examples: &[
        Example { call: r#"float("1.5")"#, result: "1.5" },
        Example { call: r#"float("1e3")"#, result: "1000.0" },
        Example { call: r#"float("fast")"#, result: "nil" },
        Example { call: r#"float("inf")"#, result: "nil" },
        Example { call: "float(3)", result: "3.0" },
        Example { call: "float(1500ms)", result: "1500000000.0" },
        Example { call: "float(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match args.first() {
        Some(Value::Str(s)) => match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Value::Float(x),
            _ => Value::Nil,
        },
        Some(Value::Int(i) | Value::Duration(i)) => Value::Float(*i as f64),
        Some(Value::Float(x)) => Value::Float(*x),
        _ => Value::Nil,
    }
}
