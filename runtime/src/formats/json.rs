//! What the three JSON readers share: parsing one or more JSON documents,
//! paths that say where a problem is, and typed access to `serde_json`
//! values — ids in hex (either case), integers as numbers or strings, base64.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::{Format, FormatError, Location, Problem};

/// Parses a file of one or more JSON documents (JSON lines, or documents
/// simply one after another). A leading UTF-8 byte-order mark is skipped.
pub(crate) fn parse_documents(bytes: &[u8], format: Format) -> Result<Vec<Value>, FormatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FormatError { format, problem: Problem::Empty, location: Location::Byte(0) });
    }
    serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().collect::<Result<Vec<_>, _>>().map_err(|err| {
        let message = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message).to_string();
        FormatError {
            format,
            problem: Problem::Syntax(message),
            location: Location::Text { line: err.line(), column: err.column() },
        }
    })
}

/// A path into a JSON document, built on the stack as a reader descends and
/// rendered only when there is an error to report.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path { parent: None, step: Step::Root };

    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path { parent: Some(self), step: Step::Key(key) }
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path { parent: Some(self), step: Step::Index(index) }
    }

    pub(crate) fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut path = Some(self);
        while let Some(current) = path {
            steps.push(current.step);
            path = current.parent;
        }
        let mut text = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Root => text.push('$'),
                Step::Key(key) => {
                    text.push('.');
                    text.push_str(key);
                }
                Step::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        text
    }
}

/// How strictly ids are read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    /// OTLP: exactly two hex digits a byte, or base64 of the exact length.
    Exact,
    /// Zipkin, Jaeger: up to two hex digits a byte, zero-padded on the left.
    Padded,
}

/// The reader of one document: which format, which document of the file.
pub(crate) struct Cx {
    pub(crate) format: Format,
    pub(crate) document: usize,
}

impl Cx {
    pub(crate) fn err(&self, at: Path<'_>, problem: Problem) -> FormatError {
        FormatError {
            format: self.format,
            problem,
            location: Location::Path { document: self.document, path: at.render() },
        }
    }

    pub(crate) fn wrong(&self, at: Path<'_>, expected: &'static str, found: &Value) -> FormatError {
        self.err(at, Problem::WrongType { expected, found: type_name(found) })
    }

    pub(crate) fn object<'v>(&self, value: &'v Value, at: Path<'_>) -> Result<&'v Map<String, Value>, FormatError> {
        value.as_object().ok_or_else(|| self.wrong(at, "an object", value))
    }

    pub(crate) fn array<'v>(&self, value: &'v Value, at: Path<'_>) -> Result<&'v [Value], FormatError> {
        value.as_array().map(Vec::as_slice).ok_or_else(|| self.wrong(at, "an array", value))
    }

    pub(crate) fn string<'v>(&self, value: &'v Value, at: Path<'_>) -> Result<&'v str, FormatError> {
        value.as_str().ok_or_else(|| self.wrong(at, "a string", value))
    }

    /// An optional array field (absent or null: empty).
    pub(crate) fn array_field<'v>(
        &self,
        object: &'v Map<String, Value>,
        key: &str,
        at: Path<'_>,
    ) -> Result<&'v [Value], FormatError> {
        match field(object, key) {
            Some(value) => self.array(value, at),
            None => Ok(&[]),
        }
    }

    /// An optional string field (absent or null: empty).
    pub(crate) fn string_field<'v>(
        &self,
        object: &'v Map<String, Value>,
        key: &str,
        at: Path<'_>,
    ) -> Result<&'v str, FormatError> {
        match field(object, key) {
            Some(value) => self.string(value, at),
            None => Ok(""),
        }
    }

    /// A required field.
    pub(crate) fn required<'v>(
        &self,
        object: &'v Map<String, Value>,
        key: &'static str,
        at: Path<'_>,
    ) -> Result<&'v Value, FormatError> {
        field(object, key).ok_or_else(|| self.err(at, Problem::Missing(key)))
    }

    /// A 64-bit integer written as a JSON number or as a decimal string.
    pub(crate) fn int64(&self, value: &Value, at: Path<'_>) -> Result<i64, FormatError> {
        let int = match value {
            Value::Number(number) => number
                .as_i64()
                .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)),
            Value::String(text) => text.trim().parse::<i64>().ok(),
            _ => return Err(self.wrong(at, "an integer", value)),
        };
        int.ok_or_else(|| self.err(at, Problem::BadNumber(value.to_string())))
    }

    /// Microseconds (Zipkin, Jaeger) as nanoseconds.
    pub(crate) fn micros(&self, value: &Value, at: Path<'_>) -> Result<i64, FormatError> {
        let micros = self.int64(value, at)?;
        micros.checked_mul(1_000).ok_or_else(|| self.err(at, Problem::BadNumber(format!("{micros} µs (out of range)"))))
    }

    /// A double written as a number, a numeric string, or `"NaN"`,
    /// `"Infinity"`, `"-Infinity"` (as proto3 JSON writes them).
    pub(crate) fn float(&self, value: &Value, at: Path<'_>) -> Result<f64, FormatError> {
        match value {
            Value::Number(number) => number.as_f64().ok_or_else(|| self.err(at, Problem::BadNumber(value.to_string()))),
            Value::String(text) => match text.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                text => text.trim().parse().map_err(|_| self.err(at, Problem::BadNumber(value.to_string()))),
            },
            _ => Err(self.wrong(at, "a number", value)),
        }
    }

    /// A boolean, or the string `"true"`/`"false"`.
    pub(crate) fn boolean(&self, value: &Value, at: Path<'_>) -> Result<bool, FormatError> {
        match value {
            Value::Bool(bool) => Ok(*bool),
            Value::String(text) if text == "true" => Ok(true),
            Value::String(text) if text == "false" => Ok(false),
            _ => Err(self.wrong(at, "a boolean", value)),
        }
    }

    pub(crate) fn base64(&self, text: &str, at: Path<'_>) -> Result<Vec<u8>, FormatError> {
        decode_base64(text).ok_or_else(|| self.err(at, Problem::BadBase64(text.to_string())))
    }

    /// An id of `N` bytes; see [`Ids`]. All zeros is an error.
    pub(crate) fn id<const N: usize>(&self, value: &Value, ids: Ids, at: Path<'_>) -> Result<[u8; N], FormatError> {
        let id = self.parent_id::<N>(value, ids, at)?;
        match id.iter().any(|&byte| byte != 0) {
            true => Ok(id),
            false => Err(self.bad_id::<N>(value, ids, at)),
        }
    }

    /// A parent's id: like [`Cx::id`], but the empty string and all zeros
    /// both mean "no parent" (all zeros).
    pub(crate) fn parent_id<const N: usize>(
        &self,
        value: &Value,
        ids: Ids,
        at: Path<'_>,
    ) -> Result<[u8; N], FormatError> {
        let text = self.string(value, at)?;
        let id = match ids {
            _ if text.is_empty() => Some([0; N]),
            Ids::Exact if text.len() == 2 * N => hex_id(text),
            Ids::Exact => decode_base64(text).and_then(|bytes| <[u8; N]>::try_from(bytes).ok()),
            Ids::Padded => hex_id(text),
        };
        id.ok_or_else(|| self.bad_id::<N>(value, ids, at))
    }

    fn bad_id<const N: usize>(&self, value: &Value, ids: Ids, at: Path<'_>) -> FormatError {
        let expected = match (N, ids) {
            (16, Ids::Exact) => "32 hex digits, not all zero",
            (16, Ids::Padded) => "1 to 32 hex digits, not all zero",
            (_, Ids::Exact) => "16 hex digits, not all zero",
            (_, Ids::Padded) => "1 to 16 hex digits, not all zero",
        };
        self.err(at, Problem::BadId { expected, found: value.as_str().unwrap_or_default().to_string() })
    }
}

/// A field, with JSON `null` read as absent.
pub(crate) fn field<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// Hex digits of either case, right-aligned in `N` bytes.
fn hex_id<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut id = [0u8; N];
    let digits = text.as_bytes();
    if digits.len() > 2 * N {
        return None;
    }
    for (i, &digit) in digits.iter().rev().enumerate() {
        let nibble = (digit as char).to_digit(16)? as u8;
        id[N - 1 - i / 2] |= if i % 2 == 0 { nibble } else { nibble << 4 };
    }
    Some(id)
}

/// Standard or URL-safe base64, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()
}

pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_of_either_case_are_right_aligned() {
        assert_eq!(hex_id::<4>("0A0b"), Some([0, 0, 0x0a, 0x0b]));
        assert_eq!(hex_id::<4>("abc"), Some([0, 0, 0x0a, 0xbc]));
        assert_eq!(hex_id::<2>("12345"), None);
        assert_eq!(hex_id::<2>("zz"), None);
    }

    #[test]
    fn paths_render_like_json_path() {
        let root = Path::ROOT;
        let spans = root.key("spans");
        let third = spans.index(3);
        assert_eq!(third.key("spanId").render(), "$.spans[3].spanId");
    }

    #[test]
    fn ids_must_be_the_right_length_and_not_zero() {
        let cx = Cx { format: Format::OtlpJson, document: 0 };
        let id = |text: &str, ids| cx.id::<8>(&Value::from(text), ids, Path::ROOT);
        assert_eq!(id("EEE19B7EC3C1B174", Ids::Exact).unwrap(), [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
        assert_eq!(id("7uGbfsPBsXQ=", Ids::Exact).unwrap(), [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
        assert!(id("EEE19B7EC3C1B17", Ids::Exact).is_err());
        assert_eq!(id("1f", Ids::Padded).unwrap(), [0, 0, 0, 0, 0, 0, 0, 0x1f]);
        assert!(id("0000000000000000", Ids::Padded).is_err());
        assert!(id("", Ids::Padded).is_err());
    }
}
