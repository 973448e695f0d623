//! Violations written straight to OTLP protobuf bytes: the one definition of
//! a violation span's shape (the module doc above says what it holds). A
//! noisy rule can make hundreds of thousands of violations a second, and
//! building prost messages for them (a `String` or `Vec` per attribute) only
//! to encode and drop them cost more than the writing itself. The prost
//! view, for JSON and tests, is these bytes decoded.
//!
//! The bytes are exactly what prost writes for the same messages (fields
//! in prost's order, proto3 defaults left out, a `oneof` always written,
//! minimal varints); a test holds them equal to a prost-built reference.

use betrace_stdlib::Value;
use betrace_vm::Violation;
use betrace_vm::violation::NoveltyEvidence;

use super::{ExportConfig, SUPPRESSED_ATTRIBUTE, VIOLATION_SPAN_NAME, span_id_of};

/// `Span.kind` internal, `Status.code` error.
const SPAN_KIND_INTERNAL: u64 = 1;
const STATUS_CODE_ERROR: u64 = 2;

/// Appends `violations` as one encoded `ExportTraceServiceRequest` to `out`:
/// one resource (`service.name = "betrace"`), one scope (`betrace`, this
/// crate's version), one span per violation, signed when `config` has a key.
pub fn encode_violations_request(violations: &[Violation], config: &ExportConfig, out: &mut Vec<u8>) {
    let mut proto = Proto(out);
    // ExportTraceServiceRequest.resource_spans
    proto.message(1, |resource_spans| {
        // ResourceSpans.resource
        resource_spans.message(1, |resource| {
            resource.message(1, |kv| kv.string_attr("service.name", "betrace"));
            resource.message(1, |kv| kv.string_attr("service.instance.id", &config.instance_id));
        });
        // ResourceSpans.scope_spans
        resource_spans.message(2, |scope_spans| {
            scope_spans.message(1, |scope| {
                scope.string(1, "betrace");
                scope.string(2, env!("CARGO_PKG_VERSION"));
            });
            for violation in violations {
                let signature = config.signing_key.as_deref().map(|key| violation.sign(key));
                scope_spans.message(2, |span| span.violation_span(violation, signature.as_deref()));
            }
        });
    });
}

/// Appends one violation as an encoded `Span` to `out`.
pub(super) fn encode_violation_span(violation: &Violation, signature: Option<&str>, out: &mut Vec<u8>) {
    Proto(out).violation_span(violation, signature);
}

/// A protobuf writer over the end of a buffer.
struct Proto<'a>(&'a mut Vec<u8>);

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

impl Proto<'_> {
    /// The body of a `Span`.
    fn violation_span(&mut self, violation: &Violation, signature: Option<&str>) {
        let time = u64::try_from(violation.time).unwrap_or(0);
        self.bytes(1, &violation.trace_id);
        self.bytes(2, &span_id_of(&violation.id));
        self.bytes(4, violation.parent_span.as_ref().map_or(&[][..], |parent| &parent[..]));
        self.string(5, VIOLATION_SPAN_NAME);
        self.uint(6, SPAN_KIND_INTERNAL);
        self.fixed64(7, time);
        self.fixed64(8, time);
        self.message(9, |kv| kv.key_value("betrace.violation", |value| value.bool_value(true)));
        self.span_attr("betrace.violation.id", &violation.id);
        self.span_attr("betrace.rule.id", &violation.rule_id);
        self.span_attr("betrace.rule.name", &violation.rule_name);
        self.span_attr("betrace.severity", violation.severity.word());
        self.span_attr("betrace.message", &violation.message);
        self.span_attr("betrace.pack.name", &violation.pack.name);
        self.span_attr("betrace.pack.version", &violation.pack.version);
        self.span_attr("betrace.clause", &violation.clause);
        self.message(9, |kv| {
            kv.key_value("betrace.tags", |value| {
                value.message(5, |array| {
                    for tag in &violation.tags {
                        array.message(1, |item| item.string_value(tag));
                    }
                })
            })
        });
        for (index, evidence) in violation.novelty.iter().enumerate() {
            self.novelty_attributes(evidence, index);
        }
        if violation.suppressed > 0 {
            let count = Value::Int(i64::from(violation.suppressed));
            self.message(9, |kv| kv.key_value(SUPPRESSED_ATTRIBUTE, |any| any.value(&count)));
        }
        if let Some(signature) = signature {
            self.span_attr("betrace.signature", signature);
        }
        for witness in &violation.witnesses {
            self.message(13, |link| {
                link.bytes(1, &violation.trace_id);
                link.bytes(2, witness);
            });
        }
        self.message(15, |status| {
            status.string(2, &violation.message);
            status.uint(3, STATUS_CODE_ERROR);
        });
    }

    /// The `betrace.novelty.*` attributes of the evidence of the `index`th
    /// `novelty` call (numbered from the second on).
    fn novelty_attributes(&mut self, evidence: &NoveltyEvidence, index: usize) {
        const PREFIX: &str = "betrace.novelty.";
        let name = |suffix: &str| match index {
            0 => format!("{PREFIX}{suffix}"),
            n => format!("{PREFIX}{n}.{suffix}"),
        };
        self.span_attr(&name("call"), &evidence.call);
        self.span_attr(&name("key"), &evidence.key);
        for (key, value) in evidence.evidence.attributes() {
            let suffix = key.strip_prefix(PREFIX).unwrap_or(key);
            self.message(9, |kv| kv.key_value(&name(suffix), |any| any.value(&value)));
        }
    }

    /// A string attribute of a span (`Span.attributes`).
    fn span_attr(&mut self, key: &str, value: &str) {
        self.message(9, |kv| kv.string_attr(key, value));
    }

    /// The body of a `KeyValue` whose `AnyValue` body `value` writes.
    fn key_value(&mut self, key: &str, value: impl FnOnce(&mut Proto<'_>)) {
        self.string(1, key);
        self.message(2, value);
    }

    fn string_attr(&mut self, key: &str, value: &str) {
        self.key_value(key, |any| any.string_value(value));
    }

    /// An `AnyValue` body: a scalar or list value (a number stays a number,
    /// anything else not a list or bytes becomes its text).
    fn value(&mut self, value: &Value) {
        match value {
            Value::Bool(b) => self.bool_value(*b),
            Value::Int(i) => {
                self.key(3, VARINT);
                self.varint(*i as u64);
            }
            Value::Float(x) => {
                self.key(4, FIXED64);
                self.0.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            Value::List(items) => self.message(5, |array| {
                for item in items.iter() {
                    array.message(1, |any| any.value(item));
                }
            }),
            Value::Bytes(bytes) => {
                self.key(7, LEN);
                self.len_prefixed(bytes);
            }
            other => self.string_value(&other.to_string()),
        }
    }

    /// `AnyValue.string_value`, written even when empty (a `oneof`).
    fn string_value(&mut self, text: &str) {
        self.key(1, LEN);
        self.len_prefixed(text.as_bytes());
    }

    fn bool_value(&mut self, value: bool) {
        self.key(2, VARINT);
        self.varint(u64::from(value));
    }

    /// A message field: its body is written in place after a one-byte
    /// length, which is widened afterwards if the body is 128 bytes or more
    /// (moving the body once), so nothing is measured or copied beforehand.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Proto<'_>)) {
        self.key(field, LEN);
        let at = self.0.len();
        self.0.push(0);
        body(&mut Proto(self.0));
        let len = self.0.len() - at - 1;
        if len < 0x80 {
            self.0[at] = len as u8;
        } else {
            // On the stack, not in a fresh vector: every violation span (over
            // 127 bytes) comes here.
            let (mut prefix, mut width) = ([0u8; 10], 0);
            varint_bytes(len as u64, |byte| {
                prefix[width] = byte;
                width += 1;
            });
            self.0.splice(at..at + 1, prefix[..width].iter().copied());
        }
    }

    /// A proto3 `bytes` field, left out when empty.
    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.key(field, LEN);
            self.len_prefixed(bytes);
        }
    }

    /// A proto3 `string` field, left out when empty.
    fn string(&mut self, field: u32, text: &str) {
        self.bytes(field, text.as_bytes());
    }

    /// A proto3 integer or enum field, left out when 0.
    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    /// A proto3 `fixed64` field, left out when 0.
    fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn len_prefixed(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    fn varint(&mut self, value: u64) {
        varint_bytes(value, |byte| self.0.push(byte));
    }
}

/// Hands `put` the bytes of `value` as a protobuf varint, least significant first.
fn varint_bytes(mut value: u64, mut put: impl FnMut(u8)) {
    while value >= 0x80 {
        put(value as u8 | 0x80);
        value >>= 7;
    }
    put(value as u8);
}
