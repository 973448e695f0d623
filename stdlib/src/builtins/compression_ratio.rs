//! `compression_ratio(x)`: how well a string or bytes compress (stateless).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};

pub const BUILTIN: Builtin = Builtin {
    name: "compression_ratio",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::String, Type::Bytes])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "The size of `x` divided by its zstd-compressed size: high for repetitive text, \
          near or below `1.0` for random-looking data such as keys, hashes and encrypted \
          or already-compressed payloads. `nil` for an empty or non-string, non-bytes \
          `x`. Implemented with zstd in a later issue (the VM calls it), so it has no \
          `eval` here; the example results are illustrative.",
    examples: &[
        Example {
            call: r#"compression_ratio("GET /api/v1/orders GET /api/v1/orders GET /api/v1/orders")"#,
            result: "2.6",
        },
        Example { call: r#"compression_ratio("")"#, result: "nil" },
    ],
    eval: None,
};
