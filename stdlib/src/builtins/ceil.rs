//! `ceil(x)`: a float rounded to an int (the smallest int not below `x`).

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param, round_to_int};
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
    round_to_int(args, f64::ceil)
}
