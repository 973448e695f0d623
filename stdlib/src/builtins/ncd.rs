//! `ncd(a, b)`: the normalized compression distance of two strings or byte strings.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, bytes_arg, param};
use crate::compression::scorer::{STATELESS_LEVEL, with_stateless};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "ncd",
    kind: BuiltinKind::Scalar,
    params: &[param("a", &[Type::String, Type::Bytes]), param("b", &[Type::String, Type::Bytes])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "The normalized compression distance `(C(ab) - min(C(a), C(b))) / max(C(a), \
          C(b))`, where `C` is the size of the zstd-compressed content (level 3, frame \
          and block headers left out) and `ab` is `a` followed by `b`: near `0.0` when `a` \
          and `b` share most of their content, near `1.0` when they share none. Short \
          strings share little that a compressor can use, so keep `ncd` for values of \
          some length (a few dozen bytes and up). `0.0` for two empty values; `nil` if \
          either argument is not a string or bytes.",
    examples: &[
        Example {
            call: r#"ncd("SELECT id, total FROM orders WHERE customer_id = 42", "SELECT id, total FROM orders WHERE customer_id = 42")"#,
            result: "0.1568627450980392",
        },
        Example { call: r#"ncd("payment declined: card expired", "order shipped to warehouse 7")"#, result: "1.0" },
        Example { call: r#"ncd("", "")"#, result: "0.0" },
        Example { call: r#"ncd(nil, "x")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match (bytes_arg(args, 0), bytes_arg(args, 1)) {
        (Some(a), Some(b)) => Value::Float(with_stateless(|c| c.ncd(a, b, STATELESS_LEVEL))),
        _ => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_texts_are_closer_than_unrelated_ones() {
        let query = "SELECT id, total, currency FROM orders WHERE customer_id = ? ORDER BY created_at DESC";
        let similar = "SELECT id, total, currency FROM orders WHERE customer_id = ? ORDER BY total DESC";
        let other = "payment gateway timeout after 3 retries; falling back to the secondary processor";
        let near = eval(&[Value::str(query), Value::str(similar)]);
        let far = eval(&[Value::str(query), Value::str(other)]);
        let (Value::Float(near), Value::Float(far)) = (near, far) else { panic!("floats") };
        assert!(near < 0.5 && far > 0.7, "{near} {far}");
    }

    #[test]
    fn one_empty_side_is_as_far_as_can_be() {
        assert_eq!(eval(&[Value::str(""), Value::str("some text here")]), Value::Float(1.0));
    }
}
