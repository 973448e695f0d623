//! `ncd(a, b)`: the normalized compression distance of two strings or byte strings.

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};

pub const BUILTIN: Builtin = Builtin {
    name: "ncd",
    kind: BuiltinKind::Scalar,
    params: &[param("a", &[Type::String, Type::Bytes]), param("b", &[Type::String, Type::Bytes])],
    named: &[],
    returns: Returns::Type(Type::Float),
    doc: "The normalized compression distance `(C(ab) - min(C(a), C(b))) / max(C(a), \
          C(b))`, where `C` is the zstd-compressed size: near `0.0` when `a` and `b` share \
          most of their content, near `1.0` when they share none. `nil` if either argument \
          is not a string or bytes. Implemented with zstd in a later issue (the VM calls \
          it), so it has no `eval` here; the example results are illustrative.",
    examples: &[
        Example { call: r#"ncd(span.db.query.text, parent.span.db.query.text)"#, result: "0.12" },
        Example { call: r#"ncd("payment declined: card expired", "order shipped to warehouse 7")"#, result: "0.91" },
        Example { call: r#"ncd(nil, "x")"#, result: "nil" },
    ],
    eval: None,
};
