//! Traces the tests send: each trace is a root span and, when it is to break
//! the marker rule, a child named [`VIOLATING_SPAN`]; more spans and an
//! attribute of padding make traces as heavy as a test needs. Ids encode the
//! test and the trace's number, so a violation names the trace it is about.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use tonic::transport::Channel;

/// The span name that breaks the marker rule.
pub const VIOLATING_SPAN: &str = "bad";

/// The trace id of trace `n` of the test numbered `test` (never all zeros).
pub fn trace_id(test: u8, n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = test.max(1);
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

/// Lower-case hex, as violations write ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One trace to send.
#[derive(Clone, Copy, Debug)]
pub struct TraceShape {
    pub id: [u8; 16],
    /// Has a [`VIOLATING_SPAN`].
    pub violating: bool,
    /// Spans in all (at least 2: the root and one child).
    pub spans: usize,
    /// Bytes of a `padding` attribute on every span.
    pub padding: usize,
}

impl TraceShape {
    /// A root and one child, the child violating or not.
    pub fn small(id: [u8; 16], violating: bool) -> TraceShape {
        TraceShape { id, violating, spans: 2, padding: 0 }
    }

    fn spans(&self) -> Vec<Span> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let span_id = |index: usize| {
            let mut id = [0u8; 8];
            id[..6].copy_from_slice(&self.id[10..]);
            id[6..].copy_from_slice(&(index as u16 + 1).to_be_bytes());
            id.to_vec()
        };
        let padding = "p".repeat(self.padding);
        (0..self.spans.max(2))
            .map(|index| Span {
                trace_id: self.id.to_vec(),
                span_id: span_id(index),
                parent_span_id: if index == 0 { Vec::new() } else { span_id(0) },
                name: match index {
                    0 => "root".into(),
                    1 if self.violating => VIOLATING_SPAN.into(),
                    _ => "work".into(),
                },
                kind: if index == 0 { span::SpanKind::Server } else { span::SpanKind::Internal } as i32,
                start_time_unix_nano: now + index as u64 * 1_000,
                end_time_unix_nano: now + 1_000_000,
                attributes: if self.padding > 0 { vec![string_attr("padding", &padding)] } else { Vec::new() },
                ..Span::default()
            })
            .collect()
    }
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

/// One export request holding every span of `traces`.
pub fn request(traces: &[TraceShape]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "serve-faults")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "serve-faults".into(), ..InstrumentationScope::default() }),
                spans: traces.iter().flat_map(TraceShape::spans).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// Spans in a request.
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

/// Sends `traces` as one request; panics unless it is taken whole.
pub async fn send(client: &mut TraceServiceClient<Channel>, traces: &[TraceShape]) {
    let reply = client.export(request(traces)).await.unwrap_or_else(|status| panic!("export refused: {status}"));
    let partial = reply.into_inner().partial_success;
    assert!(partial.as_ref().is_none_or(|p| p.rejected_spans == 0), "spans were rejected: {partial:?}");
}
