//! `entropy(x)`: the Shannon entropy of a string's or bytes' byte distribution.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, bytes_arg, param};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "entropy",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::String, Type::Bytes])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "The Shannon entropy of the distribution of bytes in `x` (a string's UTF-8 bytes), \
          in bits per byte: `0.0` for a single repeated byte or an empty `x`, up to `8.0` \
          for uniformly random bytes. English text scores about 4, base64 at most 6, hex \
          at most 4; long random tokens and keys score high. It looks at byte \
          frequencies only, not order (`\"abab\"` and `\"aabb\"` score the same); for \
          order-aware measures see `compression_ratio` and `ncd`. `nil` if `x` is not a \
          string or bytes.",
    examples: &[
        Example { call: r#"entropy("aaaa")"#, result: "0.0" },
        Example { call: r#"entropy("abab")"#, result: "1.0" },
        Example { call: r#"entropy("abcdefgh")"#, result: "3.0" },
        Example { call: r#"entropy("")"#, result: "0.0" },
        Example { call: "entropy(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    bytes_arg(args, 0).map_or(Value::Nil, |bytes| Value::Float(shannon_entropy(bytes)))
}

/// Bits per byte: `-Σ p log2 p` over the byte values that occur.
fn shannon_entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &byte in bytes {
        counts[usize::from(byte)] += 1;
    }
    let total = bytes.len() as f64;
    let sum: f64 = counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum();
    // A single symbol sums to -0.0; report 0.0.
    sum.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn all_byte_values_once_is_eight_bits() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(eval(&[Value::Bytes(Arc::from(bytes))]), Value::Float(8.0));
    }

    #[test]
    fn order_does_not_matter() {
        assert_eq!(eval(&[Value::str("abab")]), eval(&[Value::str("aabb")]));
    }
}
