//! `floor(x)`: a float rounded to an int (the largest int not above `x`).

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, round_to_int};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "floor",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::Float, Type::Int])],
    named: &[],
    returns: Returns::Type(Type::Int),
    doc: "For a float `x`, the largest int not above `x`, as an int; an int comes back as it is. \
          `nil` if `x` is not a number, or is NaN, infinite or outside the 64-bit int range.",
    examples: &[
        Example { call: "floor(2.7)", result: "2" },
        Example { call: "floor(-2.5)", result: "-3" },
        Example { call: "floor(4)", result: "4" },
        Example { call: "floor(1e300)", result: "nil" },
        Example { call: "floor(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    round_to_int(args, f64::floor)
}
