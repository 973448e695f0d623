//! Attributes (`KeyValue`s and their `AnyValue`s) read from the wire into
//! [`WireAttr`]s (strings borrowed from the request) and record values, mapped as `otlp_proto.rs` maps prost's messages: an empty
//! value drops the attribute, `string_value_strindex` (profiles only) too,
//! and a `kvlist_value` becomes the text of a JSON object.
//!
//! A value is only final when its `KeyValue` ends: protobuf merges a
//! message field that occurs twice, so a second `value` (or a second
//! `array_value` inside one) appends to the first. Values are therefore
//! read into [`Any`], which keeps key/value lists whole until then.

use std::ops::Range;

use betrace_vm::trace::{RecordValue, Text};
use serde_json::{Map, Value};

use super::spans::{WireAttr, WireValue};
use super::wire::{Message, WireError, Within};
use crate::formats::otlp_json::scalar_json;

/// An `AnyValue`'s `value` oneof as read so far.
#[derive(Debug)]
pub(super) enum Any<'b> {
    Str(&'b str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    /// Elements; `None` for an element with no value.
    Array(Vec<Option<Any<'b>>>),
    /// Pairs; `None` for a pair with no value.
    Kvlist(Vec<(&'b str, Option<Any<'b>>)>),
    Strindex,
}

/// Reads one `KeyValue` and appends it to `attrs` unless its value is empty.
pub(super) fn read_attribute<'b>(message: Message<'b>, attrs: &mut Vec<WireAttr<'b>>) -> Result<(), WireError> {
    if let Some((key, value)) = plain_key_value(message.rest()) {
        attrs.push(WireAttr { key, value });
        return Ok(());
    }
    let (key, value) = key_value(message)?;
    if let Some(value) = value.and_then(Any::into_wire) {
        attrs.push(WireAttr { key, value });
    }
    Ok(())
}

/// A `KeyValue` as encoders write nearly every one — its key, then a value
/// of one string, bool, int or double, each field once and in that order —
/// matched byte by byte, without the general reader's slots or its fields'
/// bookkeeping (read field by field, attributes were about a fifth of the
/// receiving threads' time). `None` for any other bytes, which the general
/// reader then reads from the start: it alone names errors, so a value is
/// only taken here when every step of it reads.
fn plain_key_value(body: &[u8]) -> Option<(&str, WireValue<'_>)> {
    // Field 1 (`key`) and field 2 (`value`), both length-delimited, and
    // nothing after them.
    let [0x0a, rest @ ..] = body else { return None };
    let (key, rest) = Message::length_prefixed(rest)?;
    let key_end = body.len() - rest.len();
    let [0x12, rest @ ..] = rest else { return None };
    let (any, []) = Message::length_prefixed(rest)? else { return None };
    // The `AnyValue`: one field, `string_value` (1), `bool_value` (2),
    // `int_value` (3) or `double_value` (4), and nothing after it.
    let value = match any {
        [0x0a, rest @ ..] => {
            let (text, []) = Message::length_prefixed(rest)? else { return None };
            let (key, text) = key_and_text(body, key_end - key.len()..key_end, text)?;
            return Some((key, WireValue::Str(text)));
        }
        [0x10, varint @ ..] => WireValue::Owned(RecordValue::Bool(Message::whole_varint(varint)? != 0)),
        [0x18, varint @ ..] => WireValue::Owned(RecordValue::Int(Message::whole_varint(varint)? as i64)),
        [0x21, bits @ ..] => {
            WireValue::Owned(RecordValue::Float(f64::from_bits(u64::from_le_bytes(bits.try_into().ok()?))))
        }
        _ => return None,
    };
    Some((simdutf8::basic::from_utf8(key).ok()?, value))
}

/// A string attribute's key (at `key` in `body`) and its value `text` (which
/// ends `body`), each checked as UTF-8. Both are checked in one pass over
/// the whole `KeyValue` when they can be: keys and values are mostly short,
/// and a check costs about as much to start as to run over them (half as
/// much a string for the pair). The tags and one-byte lengths around them
/// are ASCII; when a longer length fails the one pass, each is checked on
/// its own.
fn key_and_text<'b>(body: &'b [u8], key: Range<usize>, text: &'b [u8]) -> Option<(&'b str, &'b str)> {
    let text_at = body.len() - text.len()..body.len();
    if let Ok(whole) = simdutf8::basic::from_utf8(body) {
        // Each field follows a length's last byte and precedes a tag or the
        // end, all ASCII, so its range is on character boundaries.
        return whole.get(key).zip(whole.get(text_at));
    }
    Some((simdutf8::basic::from_utf8(&body[key]).ok()?, simdutf8::basic::from_utf8(text).ok()?))
}

fn key_value<'b>(mut message: Message<'b>) -> Result<(&'b str, Option<Any<'b>>), WireError> {
    let mut key = "";
    let mut value = None;
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => key = message.str(field).within("key", None)?,
            2 => message.message(field).and_then(|body| any_value(body, &mut value)).within("value", None)?,
            3 => {
                message.varint(field).within("key_strindex", None)?;
            }
            _ => message.skip(field)?,
        }
    }
    Ok((key, value))
}

/// Reads an `AnyValue` into `slot`: the last variant wins, and a list
/// variant that repeats appends to the list already there, as prost merges.
fn any_value<'b>(mut message: Message<'b>, slot: &mut Option<Any<'b>>) -> Result<(), WireError> {
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => *slot = Some(Any::Str(message.str(field).within("string_value", None)?)),
            2 => *slot = Some(Any::Bool(message.varint(field).within("bool_value", None)? != 0)),
            3 => *slot = Some(Any::Int(message.varint(field).within("int_value", None)? as i64)),
            4 => *slot = Some(Any::Double(f64::from_bits(message.fixed64(field).within("double_value", None)?))),
            5 => {
                let body = message.message(field).within("array_value", None)?;
                if !matches!(slot, Some(Any::Array(_))) {
                    *slot = Some(Any::Array(Vec::new()));
                }
                if let Some(Any::Array(items)) = slot {
                    array_value(body, items).within("array_value", None)?;
                }
            }
            6 => {
                let body = message.message(field).within("kvlist_value", None)?;
                if !matches!(slot, Some(Any::Kvlist(_))) {
                    *slot = Some(Any::Kvlist(Vec::new()));
                }
                if let Some(Any::Kvlist(pairs)) = slot {
                    kvlist_value(body, pairs).within("kvlist_value", None)?;
                }
            }
            7 => *slot = Some(Any::Bytes(message.bytes(field).within("bytes_value", None)?.to_vec())),
            8 => {
                message.varint(field).within("string_value_strindex", None)?;
                *slot = Some(Any::Strindex);
            }
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

fn array_value<'b>(mut message: Message<'b>, items: &mut Vec<Option<Any<'b>>>) -> Result<(), WireError> {
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => {
                let mut item = None;
                message
                    .message(field)
                    .and_then(|body| any_value(body, &mut item))
                    .within("values", Some(items.len()))?;
                items.push(item);
            }
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

fn kvlist_value<'b>(mut message: Message<'b>, pairs: &mut Vec<(&'b str, Option<Any<'b>>)>) -> Result<(), WireError> {
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => pairs.push(message.message(field).and_then(key_value).within("values", Some(pairs.len()))?),
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

impl<'b> Any<'b> {
    /// The value as an attribute keeps it (a string still borrowed), or
    /// `None` for a value that is dropped.
    fn into_wire(self) -> Option<WireValue<'b>> {
        match self {
            Any::Str(text) => Some(WireValue::Str(text)),
            other => other.into_record().map(WireValue::Owned),
        }
    }

    /// The record value, or `None` for a value that is dropped.
    fn into_record(self) -> Option<RecordValue> {
        Some(match self {
            Any::Str(text) => RecordValue::Str(Text::new(text)),
            Any::Bool(bool) => RecordValue::Bool(bool),
            Any::Int(int) => RecordValue::Int(int),
            Any::Double(float) => RecordValue::Float(float),
            Any::Bytes(bytes) => RecordValue::Bytes(bytes),
            Any::Array(items) => RecordValue::Array(items.into_iter().flatten().filter_map(Any::into_record).collect()),
            Any::Kvlist(pairs) => RecordValue::Str(json_object(pairs).to_string().into()),
            Any::Strindex => return None,
        })
    }
}

/// A key/value list as a JSON object; inside it, lists stay JSON (arrays keep
/// their empty elements as `null`) rather than becoming record values.
fn json_object(pairs: Vec<(&str, Option<Any<'_>>)>) -> Value {
    Value::Object(pairs.into_iter().map(|(key, value)| (key.to_string(), json(value))).collect::<Map<String, Value>>())
}

fn json(value: Option<Any<'_>>) -> Value {
    match value {
        None => Value::Null,
        Some(Any::Kvlist(pairs)) => json_object(pairs),
        Some(Any::Array(items)) => Value::Array(items.into_iter().map(json).collect()),
        Some(scalar) => scalar.into_record().map_or(Value::Null, scalar_json),
    }
}

#[cfg(test)]
mod tests {
    use betrace_vm::trace::AttrSource;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList, any_value::Value as V};
    use prost::Message as _;

    use super::*;

    fn encoded(key: &str, value: Option<V>) -> Vec<u8> {
        KeyValue { key: key.into(), value: value.map(|value| AnyValue { value: Some(value) }), ..KeyValue::default() }
            .encode_to_vec()
    }

    /// What the general reader makes of `bytes`, as a record's.
    fn general(bytes: &[u8]) -> (String, Option<RecordValue>) {
        let (key, value) = key_value(Message::new(bytes)).expect("read");
        let value = value.and_then(Any::into_wire).map(|value| WireAttr { key, value }.value().to_record());
        (key.to_string(), value)
    }

    fn as_record((key, value): (&str, WireValue<'_>)) -> (String, Option<RecordValue>) {
        (key.to_string(), Some(WireAttr { key, value }.value().to_record()))
    }

    /// The short way takes the scalars encoders write, with short and long
    /// lengths alike, and reads them as the general reader does; it leaves
    /// everything else to that reader.
    #[test]
    fn plain_key_values_are_read_the_short_way_and_alike() {
        let plain = [V::StringValue("v".into()), V::BoolValue(true), V::IntValue(-3), V::DoubleValue(0.5)];
        let long_key = "k".repeat(200);
        for value in plain {
            let bytes = encoded("k", Some(value.clone()));
            assert_eq!(as_record(plain_key_value(&bytes).expect("the short way")), general(&bytes));
            let long = encoded(&long_key, Some(value));
            assert!(long[1] >= 0x80, "a two-byte length");
            assert_eq!(as_record(plain_key_value(&long).expect("the short way")), general(&long));
        }
        let long_text = encoded("k", Some(V::StringValue("v".repeat(300))));
        assert_eq!(as_record(plain_key_value(&long_text).expect("the short way")), general(&long_text));
        // Any varint but 0 is true, as prost reads a bool; a varint must end where the value does.
        let (two, unended) = ([0x0a, 1, b'k', 0x12, 2, 0x10, 2], [0x0a, 1, b'k', 0x12, 2, 0x18, 0x80]);
        assert_eq!(as_record(plain_key_value(&two).expect("read")), ("k".to_string(), Some(RecordValue::Bool(true))));
        assert!(plain_key_value(&unended).is_none());
        // Not UTF-8, or a length past the end: left to the general reader, which names the error.
        assert!(plain_key_value(&[0x0a, 1, 0xff, 0x12, 3, 0x0a, 1, b'v']).is_none());
        assert!(plain_key_value(&[0x0a, 20, b'k', 0x12, 3, 0x0a, 1, b'v']).is_none());
        let other = [None, Some(V::BytesValue(vec![1])), Some(V::KvlistValue(KeyValueList::default()))];
        for value in other {
            assert!(plain_key_value(&encoded("k", value)).is_none());
        }
        let mut twice = encoded("k", Some(V::IntValue(1)));
        twice.extend(encoded("k", Some(V::IntValue(2))));
        assert!(plain_key_value(&twice).is_none(), "a repeated field is merged the general way");
    }

    /// Checked together or apart, a string attribute's key and value get
    /// the same verdict: at every length around the one-byte, two-byte and
    /// three-byte lengths, with characters of every width, and with a bad
    /// byte or a cut character in either.
    #[test]
    fn key_and_value_checked_in_one_pass_read_as_checked_apart() {
        let apart = |bytes: &[u8]| -> Option<(String, String)> {
            let (key, value) = key_value(Message::new(bytes)).ok()?;
            match value? {
                Any::Str(text) => Some((key.to_string(), text.to_string())),
                other => panic!("{other:?}"),
            }
        };
        let together = |bytes: &[u8]| match plain_key_value(bytes) {
            Some((key, WireValue::Str(text))) => Some((key.to_string(), text.to_string())),
            Some((_, other)) => panic!("{other:?}"),
            None => None,
        };
        let texts = |len: usize| ["a", "é", "日", "🦀"].map(|c| c.repeat(len / c.len()));
        for len in [0, 1, 2, 5, 60, 63, 64, 120, 127, 128, 129, 300, 16_383, 16_400] {
            for key in texts(len.min(130)) {
                for text in texts(len) {
                    let bytes = encoded(&key, Some(V::StringValue(text.clone())));
                    assert_eq!(apart(&bytes), Some((key.clone(), text.clone())), "{len}");
                    if key.is_empty() {
                        // prost leaves an empty key out: not the short way's shape.
                        continue;
                    }
                    assert_eq!(together(&bytes), Some((key.clone(), text.clone())), "{len}");
                    // Break the key's first byte (after its tag and a one- or
                    // two-byte length), then the text's last, then cut a
                    // character (the last byte of the text) if there is one.
                    let key_at = if key.len() < 0x80 { 2 } else { 3 };
                    assert_eq!(&bytes[key_at..key_at + key.len()], key.as_bytes());
                    for at in [key_at, bytes.len() - 1] {
                        let mut bad = bytes.clone();
                        bad[at] = 0xff;
                        assert_eq!(together(&bad), None, "{len} {at}");
                        assert_eq!(apart(&bad), None, "{len} {at}");
                    }
                    if !text.is_empty() && !text.is_ascii() {
                        let mut cut = bytes.clone();
                        *cut.last_mut().expect("a byte") = b'x';
                        assert_eq!(together(&cut), None, "{len}");
                    }
                }
            }
        }
    }
}
