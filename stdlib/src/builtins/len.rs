//! `len(x)`: the length of a string (in characters), a list or bytes.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, param};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "len",
    kind: BuiltinKind::Scalar,
    params: &[param("x", &[Type::String, Type::list_of(Type::Any), Type::Bytes])],
    named: &[],
    returns: Returns::Type(Type::Int),
    doc: "The length of `x`: Unicode scalar values (characters, not bytes) for a string, \
          elements for a list, bytes for bytes. `nil` for any other value.",
    examples: &[
        Example { call: r#"len("checkout")"#, result: "8" },
        Example { call: r#"len("été")"#, result: "3" },
        Example { call: r#"len(["a", "b"])"#, result: "2" },
        Example { call: "len([])", result: "0" },
        Example { call: "len(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    let len = match args.first() {
        Some(Value::Str(s)) => s.chars().count(),
        Some(Value::List(items)) => items.len(),
        Some(Value::Bytes(bytes)) => bytes.len(),
        _ => return Value::Nil,
    };
    Value::Int(i64::try_from(len).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_bytes_of_bytes() {
        assert_eq!(eval(&[Value::Bytes(Arc::from(&[0u8, 1, 2][..]))]), Value::Int(3));
        assert_eq!(eval(&[Value::Int(3)]), Value::Nil);
    }
}
