//! `compression_ratio(x)`: how well a string or bytes compress (stateless).

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, bytes_arg, param};
use crate::compression::scorer::{STATELESS_LEVEL, with_stateless};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "compression_ratio",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::String, Type::Bytes])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "The size of `x` divided by its zstd-compressed size (level 3, counting the \
          compressed content without zstd's frame and block headers): high for repetitive \
          text, `1.0` for data that does not compress at all, such as keys, hashes and \
          encrypted or already-compressed payloads, and short strings, which have too \
          little to repeat. `nil` for an empty or non-string, non-bytes `x`.",
    examples: &[
        Example {
            call: r#"compression_ratio("GET /api/v1/orders GET /api/v1/orders GET /api/v1/orders")"#,
            result: "2.24",
        },
        Example { call: r#"compression_ratio("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")"#, result: "5.0" },
        Example { call: r#"compression_ratio("k7Qz")"#, result: "1.0" },
        Example { call: r#"compression_ratio("")"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    let Some(bytes) = bytes_arg(args, 0) else { return Value::Nil };
    if bytes.is_empty() {
        return Value::Nil;
    }
    let compressed = with_stateless(|c| c.size(bytes, STATELESS_LEVEL)).max(1);
    Value::Float(bytes.len() as f64 / compressed as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn random_bytes_do_not_compress() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(eval(&[Value::Bytes(Arc::from(bytes))]), Value::Float(1.0));
    }

    #[test]
    fn repetitive_text_compresses_well() {
        let text = "status=200 route=/api/orders ".repeat(100);
        let Value::Float(ratio) = eval(&[Value::str(&text)]) else { panic!("a float") };
        assert!(ratio > 20.0, "{ratio}");
    }
}
