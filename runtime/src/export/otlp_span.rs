//! A violation as an OTLP span, shaped so Grafana shows it inside the trace
//! it is about and Tempo finds it with `{ span.betrace.violation = true }`:
//!
//! - the offending trace's id; parent = the bound span, else the trace's root;
//! - span id = the first 8 bytes of the violation id, so re-exporting the
//!   same violation gives the same span (downstream can deduplicate);
//! - name `betrace.violation`, kind internal, status error with the message,
//!   start = end = the violation's time;
//! - a link to every witness span;
//! - attributes `betrace.violation` (true), `betrace.violation.id`,
//!   `betrace.rule.id`, `betrace.rule.name`, `betrace.severity`,
//!   `betrace.message`, `betrace.pack.name`, `betrace.pack.version`,
//!   `betrace.clause`, `betrace.tags` (string array) and, when a key is
//!   configured, `betrace.signature`;
//! - for a violation caused through `novelty`, its evidence:
//!   `betrace.novelty.score` and `betrace.novelty.p_value` (doubles),
//!   `betrace.novelty.recent_scores`, `betrace.novelty.baseline.samples` and
//!   `betrace.novelty.baseline.bytes` (ints), `betrace.novelty.tokenized`
//!   (bool), `betrace.novelty.worst` (the worst-compressing segments, a string
//!   array), `betrace.novelty.call` and `betrace.novelty.key` (strings). When
//!   the clause read several `novelty` calls, the first call's evidence has
//!   these names and the others' are numbered: `betrace.novelty.1.score`, …
//! - on the last violation reported of a rule past `max_violations_per_rule`
//!   in the trace, `betrace.violation.suppressed` (int): how many more there were;
//! - resource `service.name = "betrace"` and `service.instance.id`.

use betrace_vm::Violation;
use betrace_vm::violation::unhex;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

mod encode;

pub use encode::encode_violations_request;

/// The span name of every violation.
pub const VIOLATION_SPAN_NAME: &str = "betrace.violation";

/// The attribute of the last violation reported of a rule past its cap in a
/// trace: how many more the server found and did not report.
pub const SUPPRESSED_ATTRIBUTE: &str = "betrace.violation.suppressed";

/// Who is exporting, and how violations are signed.
#[derive(Clone, Debug, Default)]
pub struct ExportConfig {
    /// `service.instance.id` of the exporting BeTrace.
    pub instance_id: String,
    /// HMAC key for `betrace.signature`; no signature attribute without one.
    pub signing_key: Option<Vec<u8>>,
}

/// One violation as a span; `signature` becomes `betrace.signature`.
pub fn violation_span(violation: &Violation, signature: Option<&str>) -> Span {
    let mut bytes = Vec::new();
    encode::encode_violation_span(violation, signature, &mut bytes);
    Span::decode(&bytes[..]).expect("a violation span encodes as a span")
}

/// Violations as one export request (see [`encode_violations_request`]), as
/// prost messages: for the JSON exporters, which render these.
pub fn violations_request(violations: &[Violation], config: &ExportConfig) -> ExportTraceServiceRequest {
    let mut bytes = Vec::new();
    encode_violations_request(violations, config, &mut bytes);
    ExportTraceServiceRequest::decode(&bytes[..]).expect("violations encode as a request")
}

/// The first 8 bytes of the violation id (32 hex digits). An id that is not
/// hex (a hand-made violation) is hashed instead; an all-zero result, invalid
/// in OTLP, becomes 1.
pub fn span_id_of(violation_id: &str) -> [u8; 8] {
    let mut id = match unhex(violation_id) {
        Some(bytes) if bytes.len() >= 8 => bytes[..8].try_into().expect("8 bytes"),
        _ => fnv(violation_id.as_bytes()).to_be_bytes(),
    };
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
pub(crate) mod tests {
    use betrace_compiler::bytecode::CheckKind;
    use betrace_compiler::hir::Severity;
    use betrace_stdlib::Value;
    use betrace_vm::PackInfo;
    use betrace_vm::violation::{NoveltyEvidence, violation_id};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span, status};
    use proptest::prelude::*;

    use super::*;

    // The reference the direct encoding is held to: the same request built
    // as prost messages, field by field, and encoded by prost.

    fn reference_request(violations: &[Violation], config: &ExportConfig) -> ExportTraceServiceRequest {
        let spans = violations
            .iter()
            .map(|violation| {
                let signature = config.signing_key.as_deref().map(|key| violation.sign(key));
                reference_span(violation, signature.as_deref())
            })
            .collect();
        let resource = Resource {
            attributes: vec![
                string_attr("service.name", "betrace"),
                string_attr("service.instance.id", &config.instance_id),
            ],
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "betrace".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans { scope: Some(scope), spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn reference_span(violation: &Violation, signature: Option<&str>) -> Span {
        let time = u64::try_from(violation.time).unwrap_or(0);
        let mut attributes = vec![
            KeyValue {
                key: "betrace.violation".into(),
                value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }),
                ..KeyValue::default()
            },
            string_attr("betrace.violation.id", &violation.id),
            string_attr("betrace.rule.id", &violation.rule_id),
            string_attr("betrace.rule.name", &violation.rule_name),
            string_attr("betrace.severity", violation.severity.word()),
            string_attr("betrace.message", &violation.message),
            string_attr("betrace.pack.name", &violation.pack.name),
            string_attr("betrace.pack.version", &violation.pack.version),
            string_attr("betrace.clause", &violation.clause),
            KeyValue {
                key: "betrace.tags".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: violation.tags.iter().map(|t| string_value(t)).collect(),
                    })),
                }),
                ..KeyValue::default()
            },
        ];
        for (index, evidence) in violation.novelty.iter().enumerate() {
            attributes.extend(reference_novelty(evidence, index));
        }
        if violation.suppressed > 0 {
            attributes.push(KeyValue {
                key: SUPPRESSED_ATTRIBUTE.into(),
                value: Some(AnyValue { value: Some(any_value::Value::IntValue(violation.suppressed.into())) }),
                ..KeyValue::default()
            });
        }
        if let Some(signature) = signature {
            attributes.push(string_attr("betrace.signature", signature));
        }
        Span {
            trace_id: violation.trace_id.to_vec(),
            span_id: span_id_of(&violation.id).to_vec(),
            parent_span_id: violation.parent_span.map(|s| s.to_vec()).unwrap_or_default(),
            name: VIOLATION_SPAN_NAME.into(),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: time,
            end_time_unix_nano: time,
            attributes,
            links: violation
                .witnesses
                .iter()
                .map(|witness| span::Link {
                    trace_id: violation.trace_id.to_vec(),
                    span_id: witness.to_vec(),
                    ..span::Link::default()
                })
                .collect(),
            status: Some(Status { code: status::StatusCode::Error as i32, message: violation.message.clone() }),
            ..Span::default()
        }
    }

    fn reference_novelty(evidence: &NoveltyEvidence, index: usize) -> Vec<KeyValue> {
        const PREFIX: &str = "betrace.novelty.";
        let name = |suffix: &str| match index {
            0 => format!("{PREFIX}{suffix}"),
            n => format!("{PREFIX}{n}.{suffix}"),
        };
        let mut attributes = vec![string_attr(&name("call"), &evidence.call), string_attr(&name("key"), &evidence.key)];
        for (key, value) in evidence.evidence.attributes() {
            let suffix = key.strip_prefix(PREFIX).unwrap_or(key);
            attributes.push(KeyValue {
                key: name(suffix),
                value: Some(reference_value(&value)),
                ..KeyValue::default()
            });
        }
        attributes
    }

    fn reference_value(value: &Value) -> AnyValue {
        let value = match value {
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            Value::Int(i) => any_value::Value::IntValue(*i),
            Value::Float(x) => any_value::Value::DoubleValue(*x),
            Value::List(items) => {
                any_value::Value::ArrayValue(ArrayValue { values: items.iter().map(reference_value).collect() })
            }
            Value::Bytes(bytes) => any_value::Value::BytesValue(bytes.to_vec()),
            other => any_value::Value::StringValue(other.to_string()),
        };
        AnyValue { value: Some(value) }
    }

    fn string_value(text: &str) -> AnyValue {
        AnyValue { value: Some(any_value::Value::StringValue(text.into())) }
    }

    fn string_attr(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.into(), value: Some(string_value(value)), ..KeyValue::default() }
    }

    pub(crate) fn sample(bound: bool) -> Violation {
        let trace_id = [0xab; 16];
        let bound_span = bound.then_some([0x0b; 8]);
        Violation {
            id: violation_id(&trace_id, "demo/r", bound_span.as_ref(), 0),
            trace_id,
            bound_span,
            parent_span: Some(bound_span.unwrap_or([0x01; 8])),
            witnesses: vec![[0x0c; 8], [0x0d; 8]],
            rule_id: "demo/r".into(),
            rule_name: "r".into(),
            severity: Severity::Critical,
            message: "admin call without auth".into(),
            clause: "always req >> { name = \"auth\" }".into(),
            clause_kind: CheckKind::Always,
            tags: vec!["soc2:CC6.1".into()],
            pack: PackInfo { name: "demo".into(), version: "1.0.0".into() },
            time: 1_700_000_000_000_000_000,
            novelty: Vec::new(),
            suppressed: 0,
        }
    }

    fn attr<'s>(span: &'s Span, key: &str) -> Option<&'s any_value::Value> {
        span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn text(span: &Span, key: &str) -> String {
        match attr(span, key) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    fn text_of(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        // Lengths around 128 bytes cross a length prefix's one-byte limit.
        prop::collection::vec(prop_oneof![Just('a'), Just('é'), Just('\u{1F600}'), any::<char>()], len)
            .prop_map(|chars| chars.into_iter().collect())
    }

    fn arbitrary_evidence() -> impl Strategy<Value = NoveltyEvidence> {
        use betrace_stdlib::compression::{Evidence, Segment};
        (
            text_of(0..40),
            text_of(0..20),
            (any::<f64>(), any::<f64>(), any::<usize>(), any::<usize>(), any::<usize>(), any::<bool>()),
            prop::collection::vec(text_of(0..150), 0..3),
        )
            .prop_map(|(call, key, (score, p_value, recent, samples, bytes, tokenized), worst)| {
                NoveltyEvidence {
                    call,
                    key,
                    evidence: Evidence {
                        score,
                        p_value,
                        recent_scores: recent,
                        baseline_samples: samples,
                        baseline_bytes: bytes,
                        tokenized,
                        worst: worst.into_iter().map(|text| Segment { offset: 3, text, cost: 7 }).collect(),
                    },
                }
            })
    }

    fn arbitrary_violation() -> impl Strategy<Value = Violation> {
        (
            (any::<[u8; 16]>(), prop::option::of(any::<[u8; 8]>()), prop::collection::vec(any::<[u8; 8]>(), 0..40)),
            (text_of(0..30), text_of(0..300), text_of(0..200), prop::collection::vec(text_of(0..20), 0..4)),
            (
                0..5usize,
                any::<i64>(),
                prop::collection::vec(arbitrary_evidence(), 0..3),
                prop_oneof![Just(0u32), any::<u32>()],
            ),
        )
            .prop_map(
                |(
                    (trace_id, parent_span, witnesses),
                    (rule_name, message, clause, tags),
                    (severity_index, time, novelty, suppressed),
                )| {
                    let severity =
                        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];
                    Violation {
                        id: violation_id(&trace_id, &rule_name, parent_span.as_ref(), 0),
                        trace_id,
                        bound_span: parent_span,
                        parent_span,
                        witnesses,
                        rule_id: format!("pack/{rule_name}"),
                        rule_name,
                        severity: severity[severity_index],
                        message,
                        clause,
                        clause_kind: CheckKind::Never,
                        tags,
                        pack: PackInfo { name: "pack".into(), version: "1.2.3".into() },
                        time,
                        novelty,
                        suppressed,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The direct encoding is byte for byte what prost writes for the
        /// same request built as messages.
        #[test]
        fn violations_encode_as_prost_encodes_them(
            violations in prop::collection::vec(arbitrary_violation(), 0..6),
            instance_id in text_of(0..10),
            key in prop::option::of(prop::collection::vec(any::<u8>(), 1..8)),
        ) {
            let config = ExportConfig { instance_id, signing_key: key };
            let mut direct = vec![0xee];
            encode_violations_request(&violations, &config, &mut direct);
            prop_assert_eq!(direct[0], 0xee, "appends after what the buffer holds");
            prop_assert_eq!(&direct[1..], &reference_request(&violations, &config).encode_to_vec()[..]);
        }
    }

    #[test]
    fn a_violation_span_sits_in_the_offending_trace() {
        let violation = sample(true);
        let span = violation_span(&violation, Some("abcd"));
        assert_eq!(span.trace_id, vec![0xab; 16]);
        assert_eq!(span.parent_span_id, vec![0x0b; 8]);
        assert_eq!(span.span_id, unhex(&violation.id).unwrap()[..8].to_vec());
        assert_eq!(span.name, "betrace.violation");
        assert_eq!(span.kind, span::SpanKind::Internal as i32);
        let status = span.status.as_ref().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (status::StatusCode::Error as i32, "admin call without auth")
        );
        assert_eq!(span.links.iter().map(|l| l.span_id.clone()).collect::<Vec<_>>(), [vec![0x0c; 8], vec![0x0d; 8]]);
        assert!(span.links.iter().all(|l| l.trace_id == vec![0xab; 16]));
        assert_eq!(attr(&span, "betrace.violation"), Some(&any_value::Value::BoolValue(true)));
        assert_eq!(text(&span, "betrace.violation.id"), violation.id);
        assert_eq!(text(&span, "betrace.rule.id"), "demo/r");
        assert_eq!(text(&span, "betrace.rule.name"), "r");
        assert_eq!(text(&span, "betrace.severity"), "critical");
        assert_eq!(text(&span, "betrace.message"), "admin call without auth");
        assert_eq!(text(&span, "betrace.pack.name"), "demo");
        assert_eq!(text(&span, "betrace.pack.version"), "1.0.0");
        assert_eq!(text(&span, "betrace.clause"), violation.clause);
        assert_eq!(text(&span, "betrace.signature"), "abcd");
        let Some(any_value::Value::ArrayValue(tags)) = attr(&span, "betrace.tags") else { panic!("tags") };
        assert_eq!(tags.values, [string_value("soc2:CC6.1")]);
    }

    fn evidence(score: f64, worst: &str) -> NoveltyEvidence {
        use betrace_stdlib::compression::{Evidence, Segment};
        NoveltyEvidence {
            call: "novelty(trace:shape, by: trace:rootName)".into(),
            key: "\"GET /\"".into(),
            evidence: Evidence {
                score,
                p_value: 0.01,
                recent_scores: 100,
                baseline_samples: 40,
                baseline_bytes: 4096,
                tokenized: true,
                worst: vec![Segment { offset: 12, text: worst.into(), cost: 9 }],
            },
        }
    }

    #[test]
    fn novelty_evidence_becomes_typed_attributes() {
        let mut violation = sample(false);
        violation.novelty = vec![evidence(0.87, "payments: refund.issue"), evidence(0.6, "db: SELECT")];
        let span = violation_span(&violation, None);
        assert_eq!(attr(&span, "betrace.novelty.score"), Some(&any_value::Value::DoubleValue(0.87)));
        assert_eq!(attr(&span, "betrace.novelty.p_value"), Some(&any_value::Value::DoubleValue(0.01)));
        assert_eq!(attr(&span, "betrace.novelty.baseline.samples"), Some(&any_value::Value::IntValue(40)));
        assert_eq!(attr(&span, "betrace.novelty.baseline.bytes"), Some(&any_value::Value::IntValue(4096)));
        assert_eq!(attr(&span, "betrace.novelty.recent_scores"), Some(&any_value::Value::IntValue(100)));
        assert_eq!(attr(&span, "betrace.novelty.tokenized"), Some(&any_value::Value::BoolValue(true)));
        assert_eq!(text(&span, "betrace.novelty.call"), "novelty(trace:shape, by: trace:rootName)");
        assert_eq!(text(&span, "betrace.novelty.key"), "\"GET /\"");
        let Some(any_value::Value::ArrayValue(worst)) = attr(&span, "betrace.novelty.worst") else { panic!("worst") };
        assert_eq!(worst.values, [string_value("payments: refund.issue")]);
        assert_eq!(attr(&span, "betrace.novelty.1.score"), Some(&any_value::Value::DoubleValue(0.6)));
        let plain = violation_span(&sample(false), None);
        assert!(plain.attributes.iter().all(|kv| !kv.key.starts_with("betrace.novelty")));
    }

    #[test]
    fn a_suppressed_count_is_an_int_attribute_only_when_there_is_one() {
        let counted = Violation { suppressed: 396, ..sample(true) };
        let span = violation_span(&counted, None);
        assert_eq!(attr(&span, "betrace.violation.suppressed"), Some(&any_value::Value::IntValue(396)));
        assert!(attr(&violation_span(&sample(true), None), "betrace.violation.suppressed").is_none());
    }

    #[test]
    fn unbound_violations_hang_under_the_root_and_unsigned_ones_have_no_signature() {
        let span = violation_span(&sample(false), None);
        assert_eq!(span.parent_span_id, vec![0x01; 8]);
        assert!(attr(&span, "betrace.signature").is_none());
    }

    #[test]
    fn a_request_carries_the_betrace_resource_and_signs_with_the_key() {
        let config = ExportConfig { instance_id: "host-1".into(), signing_key: Some(b"k".to_vec()) };
        let violations = [sample(true), sample(false)];
        let request = violations_request(&violations, &config);
        let resource_spans = &request.resource_spans[0];
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0], string_attr("service.name", "betrace"));
        assert_eq!(resource.attributes[1], string_attr("service.instance.id", "host-1"));
        let spans = &resource_spans.scope_spans[0].spans;
        assert_eq!(spans.len(), 2);
        for (span, violation) in spans.iter().zip(&violations) {
            assert!(violation.verify(b"k", &text(span, "betrace.signature")));
        }
    }

    #[test]
    fn span_ids_are_stable_and_never_zero() {
        assert_eq!(span_id_of("00112233445566778899aabbccddeeff"), [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
        assert_eq!(span_id_of("0000000000000000ffffffffffffffff"), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(span_id_of("not hex"), span_id_of("not hex"));
        assert_ne!(span_id_of("not hex"), [0; 8]);
    }
}
