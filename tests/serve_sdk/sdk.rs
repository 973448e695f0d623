//! The client side: the official OpenTelemetry Rust SDK with its OTLP
//! exporter (tonic for gRPC, reqwest for HTTP/protobuf) pointed at the
//! server, as a service would be configured, and the checkout traces the
//! tests send through it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::common::Wire;

/// Records the checkout traces `shapes` with the SDK, exporting them over
/// `wire` to the server listening on `addr` — as tenant `tenant` when given
/// (`X-Scope-OrgID`, gRPC metadata `x-scope-orgid`) — and returns once the
/// SDK has flushed them and shut down.
///
/// Over gRPC spans go through the batch processor, as services usually
/// send them. The HTTP exporter's async reqwest client needs a tokio
/// context, which the batch processor's own thread does not have, so over
/// HTTP each span is exported by the simple processor from the thread that
/// ends it. Either way the SDK blocks while it exports, so all of it runs on
/// a blocking thread (which has the runtime's context).
pub async fn send_checkouts(
    wire: Wire,
    addr: SocketAddr,
    tenant: Option<&str>,
    shapes: Vec<Checkout>,
) -> Vec<CheckoutIds> {
    let tenant = tenant.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let provider = provider(wire, addr, tenant.as_deref());
        let tracer = provider.tracer("betrace-e2e");
        let ids = shapes.into_iter().map(|shape| checkout(&tracer, shape)).collect();
        provider.force_flush().expect("the SDK flushed its spans to the server");
        provider.shutdown().expect("the SDK shut down");
        ids
    })
    .await
    .expect("the SDK's thread ran")
}

fn provider(wire: Wire, addr: SocketAddr, tenant: Option<&str>) -> SdkTracerProvider {
    let resource = Resource::builder().with_service_name("checkout").build();
    match wire {
        Wire::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            if let Some(tenant) = tenant {
                metadata.insert("x-scope-orgid", tenant.parse().expect("a tenant is a valid metadata value"));
            }
            let exporter = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(format!("http://{addr}"))
                .with_timeout(Duration::from_secs(5))
                .with_metadata(metadata)
                .build()
                .expect("the OTLP/gRPC exporter builds");
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build()
        }
        Wire::Http => {
            let headers: HashMap<String, String> =
                tenant.map(|tenant| ("X-Scope-OrgID".to_string(), tenant.to_string())).into_iter().collect();
            let exporter = SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("http://{addr}/v1/traces"))
                .with_timeout(Duration::from_secs(5))
                .with_headers(headers)
                .build()
                .expect("the OTLP/HTTP exporter builds");
            SdkTracerProvider::builder().with_simple_exporter(exporter).with_resource(resource).build()
        }
    }
}

/// The ids of one checkout trace, as the SDK made them.
#[derive(Clone, Copy, Debug)]
pub struct CheckoutIds {
    pub trace_id: [u8; 16],
    pub root: [u8; 8],
    pub charge: [u8; 8],
    /// The span carrying a card number in clear, when the trace has one.
    pub card: Option<[u8; 8]>,
}

/// What a checkout trace holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checkout {
    /// A `fraud.check` that ends before the charge starts.
    pub fraud_check: bool,
    /// A `card.tokenize` span with `card.number` in clear.
    pub card_number: bool,
    /// A `debug.dump` span.
    pub debug_dump: bool,
}

/// Records a checkout trace with `tracer`: a server span `POST /checkout`
/// with a `payment.charge` child and, as `shape` says, a `fraud.check`
/// before it, a `card.tokenize` span with a card number, a `debug.dump`.
/// Times are explicit, so `end <= c.start` does not depend on the clock.
fn checkout(tracer: &SdkTracer, shape: Checkout) -> CheckoutIds {
    let base = SystemTime::now();
    let at = |ms: u64| base + Duration::from_millis(ms);
    let root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([KeyValue::new("http.route", "/checkout")])
        .start(tracer);
    let cx = Context::new().with_span(root);
    let child = |name: &'static str, from: u64, to: u64, attributes: Vec<KeyValue>| {
        let mut span = tracer
            .span_builder(name)
            .with_start_time(at(from))
            .with_attributes(attributes)
            .start_with_context(tracer, &cx);
        let id = span.span_context().span_id().to_bytes();
        span.end_with_timestamp(at(to));
        id
    };
    if shape.fraud_check {
        child("fraud.check", 5, 20, vec![]);
    }
    let card = shape
        .card_number
        .then(|| child("card.tokenize", 22, 28, vec![KeyValue::new("card.number", "4111111111111111")]));
    if shape.debug_dump {
        child("debug.dump", 29, 30, vec![]);
    }
    let charge = child("payment.charge", 30, 60, vec![KeyValue::new("payment.amount", 120.5)]);
    let root_context = cx.span().span_context().clone();
    cx.span().end_with_timestamp(at(100));
    CheckoutIds { trace_id: root_context.trace_id().to_bytes(), root: root_context.span_id().to_bytes(), charge, card }
}
