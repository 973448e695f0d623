//! Attributes (`KeyValue`s and their `AnyValue`s) read from the wire into
//! [`WireAttr`]s (strings borrowed from the request) and record values, mapped as `otlp_proto.rs` maps prost's messages: an empty
//! value drops the attribute, `string_value_strindex` (profiles only) too,
//! and a `kvlist_value` becomes the text of a JSON object.
//!
//! A value is only final when its `KeyValue` ends: protobuf merges a
//! message field that occurs twice, so a second `value` (or a second
//! `array_value` inside one) appends to the first. Values are therefore
//! read into [`Any`], which keeps key/value lists whole until then.

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
    let (key, value) = key_value(message)?;
    if let Some(value) = value.and_then(Any::into_wire) {
        attrs.push(WireAttr { key, value });
    }
    Ok(())
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
