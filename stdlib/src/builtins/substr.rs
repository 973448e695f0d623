//! `substr(s, start, len)`: part of a string, counted in characters.

use crate::builtins::{Builtin, BuiltinKind, Example, Returns, int_arg, optional, param, str_arg};
use crate::{Type, Value};

pub const BUILTIN: Builtin = Builtin {
    name: "substr",
    kind: BuiltinKind::Scalar,
    params: &[param("s", &[Type::String]), param("start", &[Type::Int]), optional("len", &[Type::Int])],
    named: &[],
    returns: Returns::Type(Type::String),
    doc: "The characters of `s` from index `start` (0-based, in Unicode scalar values) \
          for `len` characters, or to the end if `len` is left out. Out-of-range values \
          are clamped, never an error: a negative `start` or `len` counts as 0, and a \
          range past the end stops at the end. `nil` if `s` is not a string or `start` \
          or a given `len` is not an int.",
    examples: &[
        Example { call: r#"substr("checkout", 0, 5)"#, result: r#""check""# },
        Example { call: r#"substr("checkout", 5)"#, result: r#""out""# },
        Example { call: r#"substr("été", 1, 1)"#, result: r#""t""# },
        Example { call: r#"substr("abc", -2, 2)"#, result: r#""ab""# },
        Example { call: r#"substr("abc", 2, 100)"#, result: r#""c""# },
        Example { call: r#"substr("abc", 7, 1)"#, result: r#""""# },
        Example { call: r#"substr("abc", nil, 1)"#, result: "nil" },
    ],
    eval: Some(eval),
};

fn eval(args: &[Value]) -> Value {
    let (Some(s), Some(start)) = (str_arg(args, 0), int_arg(args, 1)) else {
        return Value::Nil;
    };
    let len = match args.get(2) {
        None => None,
        Some(Value::Int(len)) => Some(*len),
        Some(_) => return Value::Nil,
    };
    let skip = usize::try_from(start.max(0)).unwrap_or(usize::MAX);
    let take = len.map_or(usize::MAX, |len| usize::try_from(len.max(0)).unwrap_or(usize::MAX));
    Value::str(&s.chars().skip(skip).take(take).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_bounds_never_panic() {
        for (start, len) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MAX), (0, i64::MIN), (1, 0)] {
            let result = eval(&[Value::str("abc"), Value::Int(start), Value::Int(len)]);
            assert!(matches!(result, Value::Str(_)), "{start} {len}: {result:?}");
        }
        assert_eq!(eval(&[Value::str("abc"), Value::Int(i64::MIN), Value::Int(i64::MAX)]), Value::str("abc"));
        assert_eq!(eval(&[Value::str("abc"), Value::Int(0), Value::Nil]), Value::Nil);
    }
}
