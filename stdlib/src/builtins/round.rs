//! `round(x)`: a float rounded to an int (the nearest int to `x`, halves away from zero).

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, round_to_int};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "round",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::Float, Type::Int])],
    named: &[],
    returns: Returns::Type(Type::Int),
    doc: "For a float `x`, the nearest int to `x`, halves away from zero, as an int; an int comes back as it is. \
          `nil` if `x` is not a number, or is NaN, infinite or outside the 64-bit int range.",
    examples: &[
        Example { call: "round(2.5)", result: "3" },
        Example { call: "round(-2.5)", result: "-3" },
        Example { call: "round(2.49)", result: "2" },
        Example { call: "round(4)", result: "4" },
        Example { call: "round(1e300)", result: "nil" },
        Example { call: "round(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    round_to_int(args, f64::round)
}
