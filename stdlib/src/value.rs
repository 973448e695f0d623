//! The run-time value: what attributes, intrinsics and literals evaluate to, and
//! what the builtin implementations take and return.

use std::fmt;
use std::sync::Arc;

use crate::Type;

/// A run-time value. Cheap to clone: strings, bytes and lists are shared.
///
/// `Nil` is a missing attribute, the `nil` literal, or the result of an
/// operation on values of the wrong type (builtins never panic; they return
/// `Nil` instead).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// Nanoseconds.
    Duration(i64),
    /// Nanoseconds since the Unix epoch.
    Time(i64),
    Status(Status),
    Kind(SpanKind),
    Bytes(Arc<[u8]>),
    List(Arc<[Value]>),
}

/// A span's status, as the language writes it: `ok`, `error`, `unset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error,
}

/// A span's kind, as the language writes it: `server`, `client`, `producer`,
/// `consumer`, `internal`, `unspecified`. The order is OTLP's enum order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Unset, Status::Ok, Status::Error];

    /// This status's place in [`Status::ALL`]: how bytecode constants and
    /// rule triggers store it.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The status named by a language word (`ok`, `error`, `unset`).
    pub fn from_word(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.word() == word)
    }

    /// The language word for this status.
    pub fn word(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

impl SpanKind {
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// This kind's place in [`SpanKind::ALL`]: how bytecode constants and
    /// rule triggers store it.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The kind named by a language word (`server`, `client`, …).
    pub fn from_word(word: &str) -> Option<SpanKind> {
        SpanKind::ALL.into_iter().find(|kind| kind.word() == word)
    }

    /// The language word for this kind.
    pub fn word(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

impl Value {
    /// A string value.
    pub fn str(text: &str) -> Value {
        Value::Str(Arc::from(text))
    }

    /// A list value.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(items.into_iter().collect())
    }

    /// The static type of this value. A list's element type is the one type all
    /// its elements share, else `any` (an empty list is `list<any>`).
    pub fn type_of(&self) -> Type {
        match self {
            Value::Nil => Type::Nil,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::Str(_) => Type::String,
            Value::Duration(_) => Type::Duration,
            Value::Time(_) => Type::Time,
            Value::Status(_) => Type::Status,
            Value::Kind(_) => Type::Kind,
            Value::Bytes(_) => Type::Bytes,
            Value::List(items) => {
                let mut types = items.iter().map(Value::type_of);
                let elem = match types.next() {
                    Some(first) if types.all(|ty| ty == first) => first,
                    _ => Type::Any,
                };
                Type::list_of(elem)
            }
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The value written as a literal of the language: strings quoted and
    /// escaped, everything else as [`Display`](fmt::Display) writes it.
    pub fn literal(&self) -> Literal<'_> {
        Literal(self)
    }
}

/// The text form: what `string(x)` returns and what `{x}` in a message template
/// shows. Strings appear as they are; other values as the language writes them
/// (`250ms`, `error`, `[1, 2]`, `"a"` inside a list). Times are RFC 3339 in UTC,
/// bytes are lower-case hex.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => f.write_str(text),
            other => write_literal(other, f),
        }
    }
}

/// A value written as a literal of the language; see [`Value::literal`].
#[derive(Clone, Copy, Debug)]
pub struct Literal<'a>(&'a Value);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_literal(self.0, f)
    }
}

fn write_literal(value: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match value {
        Value::Nil => f.write_str("nil"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) => write!(f, "{i}"),
        Value::Float(x) => write!(f, "{x:?}"),
        Value::Str(text) => write_quoted(text, f),
        Value::Duration(ns) => write_duration(*ns, f),
        Value::Time(ns) => write_time(*ns, f),
        Value::Status(status) => f.write_str(status.word()),
        Value::Kind(kind) => f.write_str(kind.word()),
        Value::Bytes(bytes) => bytes.iter().try_for_each(|byte| write!(f, "{byte:02x}")),
        Value::List(items) => {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_literal(item, f)?;
            }
            f.write_str("]")
        }
    }
}

fn write_quoted(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("\"")?;
    for ch in text.chars() {
        match ch {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            '\0' => f.write_str("\\0")?,
            ch if ch.is_control() => write!(f, "\\u{{{:x}}}", ch as u32)?,
            ch => write!(f, "{ch}")?,
        }
    }
    f.write_str("\"")
}

const NS_PER_US: i64 = 1_000;
const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_M: i64 = 60 * NS_PER_S;
const NS_PER_H: i64 = 60 * NS_PER_M;

/// Durations as one literal: whole hours or minutes when exact (`2h`, `90m`),
/// else the largest of `s`, `ms`, `us`, `ns` with an exact decimal (`1.5s`).
fn write_duration(ns: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    if abs == 0 {
        return f.write_str("0s");
    }
    for (unit, name) in [(NS_PER_H, "h"), (NS_PER_M, "m")] {
        if abs.is_multiple_of(unit as u64) {
            return write!(f, "{sign}{}{name}", abs / unit as u64);
        }
    }
    let (unit, name, digits) = match abs {
        a if a >= NS_PER_S as u64 => (NS_PER_S as u64, "s", 9),
        a if a >= NS_PER_MS as u64 => (NS_PER_MS as u64, "ms", 6),
        a if a >= NS_PER_US as u64 => (NS_PER_US as u64, "us", 3),
        _ => (1, "ns", 0),
    };
    write!(f, "{sign}{}", abs / unit)?;
    let frac = abs % unit;
    if frac != 0 {
        let text = format!("{frac:0digits$}");
        write!(f, ".{}", text.trim_end_matches('0'))?;
    }
    f.write_str(name)
}

/// RFC 3339 in UTC with as many fractional digits as needed.
fn write_time(ns: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let secs = ns.div_euclid(NS_PER_S);
    let nanos = ns.rem_euclid(NS_PER_S);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    write!(
        f,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )?;
    if nanos != 0 {
        let text = format!("{nanos:09}");
        write!(f, ".{}", text.trim_end_matches('0'))?;
    }
    f.write_str("Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Bytes as lower-case hex (ids, `bytes` values): the one spelling used
/// everywhere ids are shown.
pub fn hex(bytes: &[u8]) -> String {
    // By table, not `write!`: ids are written for every violation.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example_syntax::parse_literal;

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xf0, 0xff]), "000fa5f0ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn words_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::from_word(status.word()), Some(status));
        }
        for kind in SpanKind::ALL {
            assert_eq!(SpanKind::from_word(kind.word()), Some(kind));
        }
        assert_eq!(Status::from_word("ERROR"), None);
        assert_eq!(SpanKind::from_word("error"), None);
    }

    #[test]
    fn type_of_lists_uses_the_shared_element_type() {
        assert_eq!(Value::list([Value::Int(1), Value::Int(2)]).type_of(), Type::list_of(Type::Int));
        assert_eq!(Value::list([Value::Int(1), Value::str("a")]).type_of(), Type::list_of(Type::Any));
        assert_eq!(Value::list([]).type_of(), Type::list_of(Type::Any));
        assert_eq!(Value::Nil.type_of(), Type::Nil);
        assert_eq!(Value::Kind(SpanKind::Server).type_of(), Type::Kind);
    }

    #[test]
    fn display_writes_strings_bare_and_literals_quoted() {
        let value = Value::list([Value::str("a\"b"), Value::Int(3), Value::Status(Status::Error)]);
        assert_eq!(value.to_string(), r#"["a\"b", 3, error]"#);
        assert_eq!(Value::str("plain").to_string(), "plain");
        assert_eq!(Value::str("tab\there").literal().to_string(), r#""tab\there""#);
        assert_eq!(Value::Float(2.0).to_string(), "2.0");
        assert_eq!(Value::Bytes(Arc::from(&b"\x01\xff"[..])).to_string(), "01ff");
    }

    #[test]
    fn durations_display_as_single_literals() {
        let cases = [
            (0, "0s"),
            (250 * NS_PER_MS, "250ms"),
            (1_500 * NS_PER_MS, "1.5s"),
            (2 * NS_PER_M, "2m"),
            (90 * NS_PER_M, "90m"),
            (3 * NS_PER_H, "3h"),
            (100 * NS_PER_S, "100s"),
            (1_234_567, "1.234567ms"),
            (15_000, "15us"),
            (7, "7ns"),
            (-250 * NS_PER_MS, "-250ms"),
            (i64::MIN, "-9223372036.854775808s"),
        ];
        for (ns, text) in cases {
            assert_eq!(Value::Duration(ns).to_string(), text);
        }
    }

    #[test]
    fn durations_and_literals_round_trip_through_the_example_syntax() {
        let values = [
            Value::Duration(1_500 * NS_PER_MS),
            Value::Duration(123_456_789),
            Value::Duration(-3 * NS_PER_US),
            Value::str("quote \" backslash \\ newline \n bell \u{7}"),
            Value::Float(-0.25),
            Value::Float(1e100),
            Value::list([Value::Bool(true), Value::Nil, Value::Int(-4)]),
        ];
        for value in values {
            let text = value.literal().to_string();
            assert_eq!(parse_literal(&text), Ok(value), "{text}");
        }
    }

    #[test]
    fn times_display_as_rfc3339_utc() {
        assert_eq!(Value::Time(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Value::Time(1_700_000_000_123_000_000).to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Value::Time(951_782_400 * NS_PER_S).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Value::Time(-1).to_string(), "1969-12-31T23:59:59.999999999Z");
    }
}
