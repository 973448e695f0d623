//! `abs(x)`: the absolute value of an int, a float or a duration.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "abs",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::Int, Type::Float, Type::Duration])],
    named: &[],
    returns: Returns::SameAsParam(0),
    doc: "The absolute value of `x`, of the same type: `abs(-3)` is `3`, `abs(-250ms)` is \
          `250ms`. `nil` if `x` is not a number or a duration, or for the one int (and \
          duration) with no positive counterpart, the 64-bit minimum.",
    examples: &[
        Example { call: "abs(-3)", result: "3" },
        Example { call: "abs(2.5)", result: "2.5" },
        Example { call: "abs(-0.5)", result: "0.5" },
        Example { call: "abs(-250ms)", result: "250ms" },
        Example { call: "abs(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match args.first() {
        Some(Value::Int(i)) => i.checked_abs().map_or(Value::Nil, Value::Int),
        Some(Value::Float(x)) => Value::Float(x.abs()),
        Some(Value::Duration(ns)) => ns.checked_abs().map_or(Value::Nil, Value::Duration),
        _ => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_int_has_no_absolute_value() {
        assert_eq!(eval(&[Value::Int(i64::MIN)]), Value::Nil);
        assert_eq!(eval(&[Value::Duration(i64::MIN)]), Value::Nil);
        assert_eq!(eval(&[Value::Int(i64::MAX)]), Value::Int(i64::MAX));
    }
}
