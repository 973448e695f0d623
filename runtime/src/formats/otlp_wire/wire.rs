//! The protobuf wire format, read straight from the bytes: field keys,
//! varints, fixed-width numbers, length-delimited bodies, and skipping the
//! fields a reader does not use. Every rule is prost's (which keys, varints
//! and wire types it refuses, how groups are skipped, its limit of 100 nested
//! messages), so bytes read here exactly when `prost::Message::decode`
//! takes them; only what is built from them differs.

use std::fmt;

use betrace_vm::trace::Text;

/// How many messages may nest: prost's `RECURSION_LIMIT` (the C++ default).
/// A message field, or an unknown field skipped, at this depth is refused.
const RECURSION_LIMIT: u32 = 100;

/// The type of a field's value on the wire (the low three bits of its key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    LengthDelimited,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl WireType {
    fn name(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "64-bit",
            WireType::LengthDelimited => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "32-bit",
        }
    }
}

/// A field's key: its number, wire type, and the offset of the key in the
/// whole input (where errors about the field point).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub number: u32,
    pub wire: WireType,
    pub at: usize,
}

/// The unread rest of one message, read field by field. Nested messages are
/// readers of their own over their body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Message<'b> {
    rest: &'b [u8],
    /// Offset of `rest[0]` in the whole input.
    offset: usize,
    /// How many more messages may nest inside this one (prost's
    /// `DecodeContext::recurse_count` for this message's fields).
    depth_left: u32,
}

impl<'b> Message<'b> {
    /// The outermost message: all of `input`.
    pub(crate) fn new(input: &'b [u8]) -> Message<'b> {
        Message { rest: input, offset: 0, depth_left: RECURSION_LIMIT }
    }

    /// Bytes left unread.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.rest.len()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'b [u8] {
        self.rest
    }

    /// The varint that `bytes` is, whole: `None` if it is not one, or
    /// more bytes follow it.
    pub(crate) fn whole_varint(bytes: &'b [u8]) -> Option<u64> {
        let mut message = Message::new(bytes);
        let value = message.read_varint().ok()?;
        message.rest.is_empty().then_some(value)
    }

    /// A varint length at the start of `bytes` and the bytes it covers, then
    /// what follows them: `None` if `bytes` do not hold that much.
    #[inline]
    pub(crate) fn length_prefixed(bytes: &'b [u8]) -> Option<(&'b [u8], &'b [u8])> {
        match bytes {
            // Most lengths are one byte: split at once.
            [len, rest @ ..] if *len < 0x80 => rest.split_at_checked(usize::from(*len)),
            _ => {
                let mut message = Message::new(bytes);
                let body = message.length_delimited().ok()?;
                Some((body, message.rest))
            }
        }
    }

    /// The next field's key, or `None` at the end of the message.
    #[inline]
    pub(crate) fn next_field(&mut self) -> Result<Option<Field>, WireError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        self.key().map(Some)
    }

    #[inline]
    fn key(&mut self) -> Result<Field, WireError> {
        let at = self.offset;
        let key = self.read_varint().map_err(|problem| WireError::new(at, problem))?;
        let key = u32::try_from(key).map_err(|_| WireError::new(at, WireProblem::InvalidKey(key)))?;
        let wire = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::LengthDelimited,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            other => return Err(WireError::new(at, WireProblem::InvalidWireType(other))),
        };
        match key >> 3 {
            0 => Err(WireError::new(at, WireProblem::FieldNumberZero)),
            number => Ok(Field { number, wire, at }),
        }
    }

    /// A varint field's value (`int32`, `int64`, `uint32`, `bool`, enums).
    #[inline]
    pub(crate) fn varint(&mut self, field: Field) -> Result<u64, WireError> {
        expect(field, WireType::Varint)?;
        self.read_varint().map_err(|problem| WireError::new(field.at, problem))
    }

    /// A `fixed64` or `double` field's bits.
    #[inline]
    pub(crate) fn fixed64(&mut self, field: Field) -> Result<u64, WireError> {
        expect(field, WireType::Fixed64)?;
        let bytes = self.take(8).map_err(|problem| WireError::new(field.at, problem))?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| WireError::new(field.at, WireProblem::Truncated))?))
    }

    /// A `fixed32` field's value.
    #[inline]
    pub(crate) fn fixed32(&mut self, field: Field) -> Result<u32, WireError> {
        expect(field, WireType::Fixed32)?;
        let bytes = self.take(4).map_err(|problem| WireError::new(field.at, problem))?;
        Ok(u32::from_le_bytes(bytes.try_into().map_err(|_| WireError::new(field.at, WireProblem::Truncated))?))
    }

    /// A `bytes` field's value, borrowed from the input.
    #[inline]
    pub(crate) fn bytes(&mut self, field: Field) -> Result<&'b [u8], WireError> {
        expect(field, WireType::LengthDelimited)?;
        self.length_delimited().map_err(|problem| WireError::new(field.at, problem))
    }

    /// A `string` field's value, borrowed from the input; proto3 strings must
    /// be UTF-8.
    #[inline]
    pub(crate) fn str(&mut self, field: Field) -> Result<&'b str, WireError> {
        let bytes = self.bytes(field)?;
        simdutf8::basic::from_utf8(bytes).map_err(|_| WireError::new(field.at, WireProblem::NotUtf8))
    }

    /// A `string` field's value as a record's own text, made straight from
    /// the checked slice: up to 24 bytes inline, so no allocation for the
    /// short names, keys and values that most strings are.
    #[inline]
    pub(crate) fn string(&mut self, field: Field) -> Result<Text, WireError> {
        self.str(field).map(Text::new)
    }

    /// A message field's body, to read with a reader of its own.
    #[inline]
    pub(crate) fn message(&mut self, field: Field) -> Result<Message<'b>, WireError> {
        expect(field, WireType::LengthDelimited)?;
        if self.depth_left == 0 {
            return Err(WireError::new(field.at, WireProblem::RecursionLimit));
        }
        let body = self.length_delimited().map_err(|problem| WireError::new(field.at, problem))?;
        let offset = self.offset - body.len();
        Ok(Message { rest: body, offset, depth_left: self.depth_left - 1 })
    }

    /// Passes over a field this reader does not use, whatever its wire type
    /// (groups included, nested ones too, as prost skips them).
    pub(crate) fn skip(&mut self, field: Field) -> Result<(), WireError> {
        self.skip_at(field, self.depth_left)
    }

    fn skip_at(&mut self, field: Field, depth_left: u32) -> Result<(), WireError> {
        let failed = |problem| WireError::new(field.at, problem);
        if depth_left == 0 {
            return Err(failed(WireProblem::RecursionLimit));
        }
        match field.wire {
            WireType::Varint => self.read_varint().map(drop).map_err(failed),
            WireType::Fixed64 => self.take(8).map(drop).map_err(failed),
            WireType::Fixed32 => self.take(4).map(drop).map_err(failed),
            WireType::LengthDelimited => self.length_delimited().map(drop).map_err(failed),
            WireType::StartGroup => loop {
                if self.rest.is_empty() {
                    return Err(failed(WireProblem::UnterminatedGroup));
                }
                let inner = self.key()?;
                match inner.wire {
                    WireType::EndGroup if inner.number == field.number => return Ok(()),
                    WireType::EndGroup => return Err(WireError::new(inner.at, WireProblem::UnexpectedEndGroup)),
                    _ => self.skip_at(inner, depth_left - 1)?,
                }
            },
            WireType::EndGroup => Err(failed(WireProblem::UnexpectedEndGroup)),
        }
    }

    /// A length prefix and the bytes it covers.
    #[inline]
    fn length_delimited(&mut self) -> Result<&'b [u8], WireProblem> {
        let len = self.read_varint()?;
        self.take(usize::try_from(len).map_err(|_| WireProblem::Truncated)?)
    }

    #[inline]
    fn take(&mut self, len: usize) -> Result<&'b [u8], WireProblem> {
        if len > self.rest.len() {
            return Err(WireProblem::Truncated);
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        self.offset += len;
        Ok(taken)
    }

    /// A varint as prost reads one: at most ten bytes, the tenth at most 1.
    #[inline]
    fn read_varint(&mut self) -> Result<u64, WireProblem> {
        match self.rest {
            [byte, rest @ ..] if *byte < 0x80 => {
                self.rest = rest;
                self.offset += 1;
                Ok(u64::from(*byte))
            }
            _ => self.read_long_varint(),
        }
    }

    #[inline(never)]
    fn read_long_varint(&mut self) -> Result<u64, WireProblem> {
        let mut value = 0u64;
        for (count, &byte) in self.rest.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * count);
            if byte < 0x80 {
                if count == 9 && byte > 1 {
                    return Err(WireProblem::InvalidVarint);
                }
                self.rest = &self.rest[count + 1..];
                self.offset += count + 1;
                return Ok(value);
            }
        }
        match self.rest.len() < 10 {
            true => Err(WireProblem::Truncated),
            false => Err(WireProblem::InvalidVarint),
        }
    }
}

fn expect(field: Field, wire: WireType) -> Result<(), WireError> {
    match field.wire == wire {
        true => Ok(()),
        false => Err(WireError::new(field.at, WireProblem::WrongWireType { expected: wire, found: field.wire })),
    }
}

/// Bytes that are not the message they should be: what is wrong, where (the
/// offset of the innermost field that fails), and the path of fields down to
/// it. Boxed: it is rare, and keeps every `Result` of the reader small.
#[derive(Debug)]
pub(crate) struct WireError(Box<ErrorDetail>);

#[derive(Debug)]
struct ErrorDetail {
    at: usize,
    problem: WireProblem,
    /// Innermost first: (field name, index for repeated fields).
    path: Vec<(&'static str, Option<usize>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireProblem {
    /// A value or length that runs past the end of its message.
    Truncated,
    /// A varint longer than ten bytes or past 64 bits.
    InvalidVarint,
    /// A key that does not fit 32 bits.
    InvalidKey(u64),
    /// Wire types 6 and 7 do not exist.
    InvalidWireType(u32),
    FieldNumberZero,
    WrongWireType {
        expected: WireType,
        found: WireType,
    },
    NotUtf8,
    RecursionLimit,
    /// An end-group key with no group open, or closing another group.
    UnexpectedEndGroup,
    UnterminatedGroup,
}

impl WireError {
    #[cold]
    fn new(at: usize, problem: WireProblem) -> WireError {
        WireError(Box::new(ErrorDetail { at, problem, path: Vec::new() }))
    }

    /// Offset in the input of the innermost field that fails.
    pub(crate) fn at(&self) -> usize {
        self.0.at
    }

    #[cfg(test)]
    pub(crate) fn problem(&self) -> WireProblem {
        self.0.problem
    }
}

/// Names the field an error happened in, as it travels out of a nested message.
pub(crate) trait Within<T> {
    fn within(self, field: &'static str, index: Option<usize>) -> Result<T, WireError>;
}

impl<T> Within<T> for Result<T, WireError> {
    #[inline]
    fn within(self, field: &'static str, index: Option<usize>) -> Result<T, WireError> {
        self.map_err(|mut error| {
            error.0.path.push((field, index));
            error
        })
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (field, index)) in self.0.path.iter().rev().enumerate() {
            f.write_str(if n == 0 { "" } else { "." })?;
            f.write_str(field)?;
            if let Some(index) = index {
                write!(f, "[{index}]")?;
            }
        }
        if !self.0.path.is_empty() {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.0.problem)
    }
}

impl fmt::Display for WireProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireProblem::Truncated => write!(f, "the value runs past the end of its message"),
            WireProblem::InvalidVarint => write!(f, "invalid varint"),
            WireProblem::InvalidKey(key) => write!(f, "invalid field key {key}"),
            WireProblem::InvalidWireType(wire) => write!(f, "invalid wire type {wire}"),
            WireProblem::FieldNumberZero => write!(f, "field number 0"),
            WireProblem::WrongWireType { expected, found } => {
                write!(f, "a {} value where a {} one belongs", found.name(), expected.name())
            }
            WireProblem::NotUtf8 => write!(f, "a string that is not UTF-8"),
            WireProblem::RecursionLimit => write!(f, "messages nested over {RECURSION_LIMIT} deep"),
            WireProblem::UnexpectedEndGroup => write!(f, "an end-group key that closes no open group"),
            WireProblem::UnterminatedGroup => write!(f, "a group that is never closed"),
        }
    }
}

/// Reads one field's key and passes over its value; a length-delimited
/// field's body is returned. `None` when the bytes cannot be read as a field.
pub(crate) fn next_field<'b>(rest: &mut &'b [u8]) -> Option<(u32, Option<&'b [u8]>)> {
    let mut message = Message::new(rest);
    let field = message.next_field().ok()??;
    let body = match field.wire {
        WireType::LengthDelimited => Some(message.bytes(field).ok()?),
        _ => {
            message.skip(field).ok()?;
            None
        }
    };
    *rest = message.rest;
    Some((field.number, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_of(bytes: &[u8]) -> Result<u64, WireProblem> {
        Message::new(bytes).read_varint()
    }

    #[test]
    fn strings_are_checked_as_utf8_at_every_length_and_position() {
        // The check is vectorised from 64 bytes on: a bad byte anywhere,
        // or a character cut short at the end, fails it as std's fails it.
        for len in [0, 1, 15, 63, 64, 65, 127, 200] {
            let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let mut payloads = vec![text.clone().into_bytes()];
            for at in (0..text.len()).step_by(7) {
                let mut broken = text.clone().into_bytes();
                broken[at] = 0xff;
                payloads.push(broken);
            }
            payloads.push([text.as_bytes(), &[0xc3]].concat());
            for payload in payloads {
                let mut bytes = vec![0x0a];
                prost::encoding::encode_varint(payload.len() as u64, &mut bytes);
                bytes.extend_from_slice(&payload);
                let mut message = Message::new(&bytes);
                let field = message.next_field().unwrap().unwrap();
                assert_eq!(message.str(field).ok(), std::str::from_utf8(&payload).ok(), "{payload:?}");
            }
        }
    }

    #[test]
    fn varints_are_read_as_prost_reads_them() {
        assert_eq!(varint_of(&[0x00]), Ok(0));
        assert_eq!(varint_of(&[0x96, 0x01]), Ok(150));
        // -1 as an int32 enum: ten bytes, the last one 1.
        let minus_one = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint_of(&minus_one).map(|v| v as i32), Ok(-1));
        let mut past_64_bits = minus_one;
        past_64_bits[9] = 0x02;
        assert_eq!(varint_of(&past_64_bits), Err(WireProblem::InvalidVarint));
        assert_eq!(varint_of(&[0x80; 11]), Err(WireProblem::InvalidVarint));
        assert_eq!(varint_of(&[0x80, 0x80]), Err(WireProblem::Truncated));
        assert_eq!(varint_of(&[]), Err(WireProblem::Truncated));
    }

    #[test]
    fn keys_with_no_field_number_or_an_unknown_wire_type_are_refused() {
        assert_eq!(
            Message::new(&[0x00]).next_field().map_err(|e| e.problem()).err(),
            Some(WireProblem::FieldNumberZero)
        );
        let wire_7 = Message::new(&[0x0f]).next_field().map_err(|e| e.problem()).err();
        assert_eq!(wire_7, Some(WireProblem::InvalidWireType(7)));
        let too_big = Message::new(&[0xff, 0xff, 0xff, 0xff, 0x7f]).next_field().map_err(|e| e.problem()).err();
        assert!(matches!(too_big, Some(WireProblem::InvalidKey(_))));
    }

    /// Groups of unknown fields are skipped, nested ones too; an end-group
    /// that closes another group fails.
    #[test]
    fn groups_are_skipped_to_their_matching_end() {
        // Field 5 group { field 6 group { field 1 varint 7 } } then field 2 varint 1.
        let bytes = [0x2b, 0x33, 0x08, 0x07, 0x34, 0x2c, 0x10, 0x01];
        let mut message = Message::new(&bytes);
        let group = message.next_field().ok().flatten().expect("a field");
        assert_eq!((group.number, group.wire), (5, WireType::StartGroup));
        message.skip(group).expect("skipped");
        let next = message.next_field().ok().flatten().expect("a field");
        assert_eq!((next.number, next.at), (2, 6));
        let mismatched = [0x2b, 0x34];
        let mut message = Message::new(&mismatched);
        let group = message.next_field().ok().flatten().expect("a field");
        assert_eq!(message.skip(group).map_err(|e| e.problem()), Err(WireProblem::UnexpectedEndGroup));
        let mut unterminated = Message::new(&[0x2b, 0x08, 0x01]);
        let group = unterminated.next_field().ok().flatten().expect("a field");
        assert_eq!(unterminated.skip(group).map_err(|e| e.problem()), Err(WireProblem::UnterminatedGroup));
    }

    #[test]
    fn errors_name_the_path_and_the_offset_of_the_innermost_field() {
        // Field 1 { field 2: a length that runs past the end }.
        let bytes = [0x0a, 0x02, 0x12, 0x05];
        let mut outer = Message::new(&bytes);
        let field = outer.next_field().ok().flatten().expect("a field");
        let mut inner = outer.message(field).expect("a body");
        let inner_field = inner.next_field().ok().flatten().expect("a field");
        let error = inner.bytes(inner_field).within("name", None).within("spans", Some(3)).expect_err("truncated");
        assert_eq!(error.at(), 2);
        assert_eq!(error.to_string(), "spans[3].name: the value runs past the end of its message");
    }

    #[test]
    fn the_hundred_and_first_nested_message_is_refused() {
        // `n` messages, each field 1 holding the next.
        fn nested(n: usize) -> Vec<u8> {
            let mut bytes = Vec::new();
            for _ in 0..n {
                let mut outer = vec![0x0a];
                let mut len = bytes.len();
                while len >= 0x80 {
                    outer.push((len as u8 & 0x7f) | 0x80);
                    len >>= 7;
                }
                outer.push(len as u8);
                outer.extend_from_slice(&bytes);
                bytes = outer;
            }
            bytes
        }
        fn descend(mut message: Message<'_>) -> Result<u32, WireError> {
            match message.next_field()? {
                Some(field) => Ok(1 + descend(message.message(field)?)?),
                None => Ok(0),
            }
        }
        let too_deep = descend(Message::new(&nested(101))).map_err(|e| e.problem()).err();
        assert_eq!(too_deep, Some(WireProblem::RecursionLimit));
        assert_eq!(descend(Message::new(&nested(100))).ok(), Some(100));
    }
}
