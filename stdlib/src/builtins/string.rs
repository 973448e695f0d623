//! `string(x)`: any value as text.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, SCALARS_AND_LISTS, param};
use crate::{Type, Value};


pub const BUILTIN: Builtin = Builtin {
    name: "string",
    kind: BuiltinKind::Scalar,
    params: &[param("x", SCALARS_AND_LISTS)],
    named: &[],
    returns: Returns::Type(Type::String),
    doc: "`x` as text, the same text a message template shows for `{x}`: a string as it \
          is, numbers, durations, status and kind words and lists as the language writes \
          them (`250ms`, `error`, `[\"a\", 1]`), a time in RFC 3339 (UTC). Bytes are \
          decoded as UTF-8 (`nil` if they are not valid UTF-8). `nil` stays `nil`: there \
          is no silent `\"nil\"`.",
    examples: &[
        Example { call: "string(42)", result: r#""42""# },
        Example { call: "string(2.0)", result: r#""2.0""# },
        Example { call: "string(1500ms)", result: r#""1.5s""# },
        Example { call: "string(error)", result: r#""error""# },
        Example { call: "string(server)", result: r#""server""# },
        Example { call: "string(true)", result: r#""true""# },
        Example { call: r#"string("as is")"#, result: r#""as is""# },
        Example { call: r#"string(["a", 1])"#, result: r#""[\"a\", 1]""# },
        Example { call: "string(nil)", result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    match args.first() {
        None | Some(Value::Nil) => Value::Nil,
        Some(Value::Str(s)) => Value::Str(s.clone()),
        Some(Value::Bytes(bytes)) => std::str::from_utf8(bytes).map_or(Value::Nil, Value::str),
        Some(other) => Value::str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bytes_decode_as_utf8() {
        assert_eq!(eval(&[Value::Bytes(Arc::from(&b"ok"[..]))]), Value::str("ok"));
        assert_eq!(eval(&[Value::Bytes(Arc::from(&b"\xff"[..]))]), Value::Nil);
        assert_eq!(eval(&[Value::Time(0)]), Value::str("1970-01-01T00:00:00Z"));
    }
}
