//! `ceil(x)`: a float rounded to an int (the smallest int not below `x`).

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, float_to_int, param};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "ceil",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::Float, Type::Int])],
    named: &[],
    returns: Returns::Type(Type::Int),
    doc: "For a float `x`, the smallest int not below `x`, as an int; an int comes back as it is. \
          `nil` if `x` is not a number, or is NaN, infinite or outside the 64-bit int range.",
    examples: &[
        Example { call: "ceil(2.1)", result: "3" },
        Example { call: "ceil(-2.5)", result: "-2" },
        Example { call: "ceil(4)", result: "4" },
        Example { call: "ceil(1e300)", result: "nil" },
        Example { call: "ceil(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match args.first() {
        Some(Value::Float(x)) => float_to_int(x.ceil()),
        Some(Value::Int(i)) => Value::Int(*i),
        _ => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_out_of_range_give_nil() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 9.3e18, -9.3e18] {
            assert_eq!(eval(&[Value::Float(x)]), Value::Nil, "{x}");
        }
        assert_eq!(eval(&[Value::Float(-9_223_372_036_854_775_808.0)]), Value::Int(i64::MIN));
    }
}
