//! The static types of the rule language, shared by the builtin signatures, the
//! semantic-convention table and the compiler's type checker.

use std::fmt;

/// A static type. `Copy` so signatures can be `const` tables; list element types
/// are `'static` references (see [`Type::list_of`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Type {
    /// An attribute whose type is unknown: compared at run time.
    Any,
    /// The type of the `nil` literal.
    Nil,
    Bool,
    Int,
    Float,
    String,
    /// A length of time, in nanoseconds at run time (`250ms`, `duration`).
    Duration,
    /// A point in time, nanoseconds since the Unix epoch (`start`, `end`).
    Time,
    /// A span status: `ok`, `error`, `unset`.
    Status,
    /// A span kind: `server`, `client`, `producer`, `consumer`, `internal`, `unspecified`.
    Kind,
    Bytes,
    List(&'static Type),
    /// One span (a binding, `parent`).
    Span,
    /// A set of spans of the trace (`{ … }`).
    SpanSet,
}

impl Type {
    /// The list type with `elem` elements, for any element type that can be listed.
    pub const fn list_of(elem: Type) -> Type {
        Type::List(match elem {
            Type::Nil | Type::Any => &Type::Any,
            Type::Bool => &Type::Bool,
            Type::Int => &Type::Int,
            Type::Float => &Type::Float,
            Type::String => &Type::String,
            Type::Duration => &Type::Duration,
            Type::Time => &Type::Time,
            Type::Status => &Type::Status,
            Type::Kind => &Type::Kind,
            Type::Bytes => &Type::Bytes,
            Type::List(_) | Type::Span | Type::SpanSet => &Type::Any,
        })
    }

    /// Ints and floats compare with each other numerically.
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::Nil => f.write_str("nil"),
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Float => f.write_str("float"),
            Type::String => f.write_str("string"),
            Type::Duration => f.write_str("duration"),
            Type::Time => f.write_str("time"),
            Type::Status => f.write_str("status"),
            Type::Kind => f.write_str("kind"),
            Type::Bytes => f.write_str("bytes"),
            Type::List(elem) => write!(f, "list<{elem}>"),
            Type::Span => f.write_str("span"),
            Type::SpanSet => f.write_str("spanset"),
        }
    }
}

/// Parses a type name as written in `attributes { }` blocks (`string`, `int`,
/// `float`, `bool`, `duration`, `time`, `bytes`, `any`, `list<int>`, `[string]`).
pub fn parse_type_name(name: &str) -> Option<Type> {
    let name = name.trim();
    if let Some(inner) = name
        .strip_prefix("list<")
        .and_then(|rest| rest.strip_suffix('>'))
        .or_else(|| name.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')))
    {
        return match parse_type_name(inner)? {
            Type::List(_) | Type::Span | Type::SpanSet => None,
            elem => Some(Type::list_of(elem)),
        };
    }
    Some(match name {
        "any" => Type::Any,
        "bool" | "boolean" => Type::Bool,
        "int" => Type::Int,
        "float" | "double" => Type::Float,
        "string" => Type::String,
        "duration" => Type::Duration,
        "time" => Type::Time,
        "status" => Type::Status,
        "kind" => Type::Kind,
        "bytes" => Type::Bytes,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip_through_display() {
        for ty in [Type::Any, Type::Bool, Type::Int, Type::Float, Type::String, Type::Duration, Type::Bytes] {
            assert_eq!(parse_type_name(&ty.to_string()), Some(ty));
            let list = Type::list_of(ty);
            assert_eq!(parse_type_name(&list.to_string()), Some(list));
        }
        assert_eq!(parse_type_name("[string]"), Some(Type::list_of(Type::String)));
        assert_eq!(parse_type_name("strin"), None);
    }
}
