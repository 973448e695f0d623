//! `int(x)`: a string, float, duration or time as an int.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, float_to_int, param};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "int",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::String, Type::Float, Type::Duration, Type::Time, Type::Int])],
    named: &[],
    returns: Returns::Type(Type::Int),
    doc: "`x` as an int: a string holding a decimal integer (an optional sign, digits, \
          nothing else — no spaces, no `1.0`), a float truncated toward zero, a duration \
          in nanoseconds, a time in nanoseconds since the Unix epoch. `nil` when that \
          fails: a string that is not an integer, a float that is NaN, infinite or out \
          of range, or a value of another type.",
    examples: &[
        Example { call: r#"int("42")"#, result: "42" },
        Example { call: r#"int("-7")"#, result: "-7" },
        Example { call: r#"int("4.2")"#, result: "nil" },
        Example { call: r#"int(" 42")"#, result: "nil" },
        Example { call: r#"int("99999999999999999999")"#, result: "nil" },
        Example { call: "int(2.9)", result: "2" },
        Example { call: "int(-2.9)", result: "-2" },
        Example { call: "int(250ms)", result: "250000000" },
        Example { call: "int(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match args.first() {
        Some(Value::Str(s)) => s.parse().map_or(Value::Nil, Value::Int),
        Some(Value::Float(x)) => float_to_int(x.trunc()),
        Some(Value::Duration(ns) | Value::Time(ns) | Value::Int(ns)) => Value::Int(*ns),
        _ => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_edge_floats() {
        assert_eq!(eval(&[Value::Time(1_700_000_000_000_000_000)]), Value::Int(1_700_000_000_000_000_000));
        assert_eq!(eval(&[Value::Float(f64::NAN)]), Value::Nil);
        assert_eq!(eval(&[Value::str("+5")]), Value::Int(5));
        assert_eq!(eval(&[Value::str("")]), Value::Nil);
    }
}
