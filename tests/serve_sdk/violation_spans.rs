//! Spans in from the OpenTelemetry SDK, violation spans out to an OTLP
//! downstream: over gRPC both ways, and over HTTP both ways. A checkout trace
//! that charges without a fraud check and logs a card number must come back
//! as two violation spans inside that trace — under the charge and under the
//! root, linked to the witness spans, signed — and the same violations must
//! be in the JSON-lines file; a checkout that keeps the rules gives nothing.

use std::collections::BTreeMap;

use betrace_runtime::export::otlp_span::span_id_of;
use betrace_runtime::otlp_sink::{OtlpSink, SinkProtocol};
use betrace_runtime::server::Server;
use betrace_vm::ViolationJson;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{Span, status};

use crate::common::{self, SIGNING_KEY, WAIT, Wire, attribute, text};
use crate::sdk::{self, Checkout, CheckoutIds};

pub const RULES: &str = r#"
rule charge_needs_fraud_check {
  description: "A charge is preceded by a fraud check"
  severity: critical
  tags: ["pci:10.2"]
  message: "charge of {c.span.payment.amount} without a fraud check before it"
  when c = { name = "payment.charge" }
  always { name = "fraud.check" && end <= c.start }
}

rule no_card_numbers_in_clear {
  severity: high
  tags: ["pci:3.4"]
  message: "a card number in clear"
  when { true }
  never { span.card.number != nil }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sdk_over_grpc_gives_violation_spans_over_grpc() {
    violations_round_trip(Wire::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sdk_over_http_gives_violation_spans_over_http() {
    violations_round_trip(Wire::Http).await;
}

async fn violations_round_trip(wire: Wire) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pack = dir.path().join("pack");
    common::write_pack(&pack, "e2e", "1.2.3", RULES);
    let sink = OtlpSink::start_loopback().await.expect("the sink listens");
    let server = Server::start(common::config(dir.path(), &pack, &sink, wire)).await.expect("the server starts");
    let addr = match wire {
        Wire::Grpc => server.grpc_addr,
        Wire::Http => server.http_addr,
    };

    let shapes = vec![
        Checkout { card_number: true, ..Checkout::default() },
        Checkout { fraud_check: true, ..Checkout::default() },
    ];
    let ids = sdk::send_checkouts(wire, addr.expect("the receiver is on"), None, shapes).await;
    let (bad, good) = (ids[0], ids[1]);

    assert!(sink.wait_for_spans(2, WAIT).await, "no violation spans reached the sink: {:?}", sink.requests());
    // Whatever else the two traces give is evaluated and exported before stop returns.
    server.flush().expect("the shards run");
    server.stop().await;

    let requests = sink.requests();
    let expected_protocol = match wire {
        Wire::Grpc => SinkProtocol::Grpc,
        Wire::Http => SinkProtocol::Http,
    };
    for request in &requests {
        assert_eq!(request.protocol, expected_protocol);
        assert_eq!(request.tenant(), None, "the default tenant's violations carry no X-Scope-OrgID");
        for resource_spans in &request.request.resource_spans {
            let resource = resource_spans.resource.as_ref().expect("a resource");
            assert_eq!(attribute(&resource.attributes, "service.name"), Some(&string("betrace")));
            assert_eq!(attribute(&resource.attributes, "service.instance.id"), Some(&string("e2e-instance")));
        }
    }
    let spans: Vec<Span> = sink.spans().into_iter().map(|(_, span)| span).collect();
    assert!(spans.iter().all(|span| span.trace_id != good.trace_id), "the passing trace gave a violation");
    assert_eq!(spans.len(), 2, "{spans:#?}");

    let lines: BTreeMap<String, ViolationJson> = common::read_violations_file(&common::violations_file(dir.path()))
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    assert_eq!(lines.len(), 2, "the JSON-lines file: {lines:#?}");
    for span in &spans {
        let id = text(span, "betrace.violation.id");
        let line = lines.get(&id).unwrap_or_else(|| panic!("violation {id} is not in the JSON-lines file"));
        assert_is_the_violation(span, line, &bad);
    }
    let rules: Vec<String> = spans.iter().map(|span| text(span, "betrace.rule.id")).collect();
    assert!(rules.contains(&"e2e/charge_needs_fraud_check".to_string()), "{rules:?}");
    assert!(rules.contains(&"e2e/no_card_numbers_in_clear".to_string()), "{rules:?}");
}

fn string(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.into())
}

/// `span` is the violation `line` describes, inside the SDK's trace `ids`.
fn assert_is_the_violation(span: &Span, line: &ViolationJson, ids: &CheckoutIds) {
    let violation = common::to_violation(line);
    assert_eq!(span.trace_id, ids.trace_id, "the violation sits in the offending trace");
    assert_eq!(violation.trace_id, ids.trace_id);
    assert_eq!(span.span_id, span_id_of(&line.id), "span id from the violation id");
    assert_eq!(span.name, "betrace.violation");
    let status = span.status.as_ref().expect("a status");
    assert_eq!(status.code, status::StatusCode::Error as i32);
    assert_eq!(status.message, line.message);

    assert_eq!(attribute(&span.attributes, "betrace.violation"), Some(&any_value::Value::BoolValue(true)));
    assert_eq!(text(span, "betrace.rule.id"), line.rule_id);
    assert_eq!(text(span, "betrace.rule.name"), line.rule_name);
    assert_eq!(text(span, "betrace.severity"), line.severity);
    assert_eq!(text(span, "betrace.message"), line.message);
    assert_eq!(text(span, "betrace.pack.name"), "e2e");
    assert_eq!(text(span, "betrace.pack.version"), "1.2.3");
    assert_eq!(text(span, "betrace.clause"), line.clause);

    let links: Vec<[u8; 8]> = span
        .links
        .iter()
        .map(|link| {
            assert_eq!(link.trace_id, ids.trace_id, "links point into the same trace");
            link.span_id.as_slice().try_into().expect("an 8-byte span id")
        })
        .collect();
    assert_eq!(links, violation.witnesses, "one link per witness span");

    match line.rule_name.as_str() {
        "charge_needs_fraud_check" => {
            assert_eq!(span.parent_span_id, ids.charge, "a bound violation hangs under its bound span");
            assert_eq!(violation.bound_span, Some(ids.charge));
            assert_eq!(line.severity, "critical");
            assert_eq!(line.message, "charge of 120.5 without a fraud check before it");
            assert_eq!(line.tags, ["pci:10.2"]);
        }
        "no_card_numbers_in_clear" => {
            assert_eq!(span.parent_span_id, ids.root, "an unbound violation hangs under the root");
            assert_eq!(violation.bound_span, None);
            assert_eq!(links, [ids.card.expect("the bad trace logs a card number")], "the card span is the witness");
            assert_eq!(line.severity, "high");
        }
        other => panic!("a violation of an unexpected rule: {other}"),
    }

    let signature = text(span, "betrace.signature");
    assert_eq!(line.signature.as_deref(), Some(signature.as_str()), "the file and the span carry the same signature");
    assert!(violation.verify(SIGNING_KEY, &signature), "the signature verifies over the violation read back");
    assert!(!violation.verify(b"another key", &signature));
    let mut tampered = violation.clone();
    tampered.message.push('!');
    assert!(!tampered.verify(SIGNING_KEY, &signature), "the signature covers the message");
}
