//! Synthetic traces for the load generator when no trace files are given: a
//! small shop. Each trace is an HTTP request to `frontend` (a server span)
//! with an auth check and database calls below it; checkouts also call
//! `payments`, which screens for fraud and then charges. A few traces break
//! the rules of the standard pack and `examples/payments.btr` on purpose, so
//! a run exercises violation export too: a 5xx answered without error
//! status, an error span that says nothing, a high-value charge with no
//! fraud check. Deterministic for a seed.

use std::sync::Arc;

use betrace_vm::trace::{RecordScope, RecordValue, SpanKind, SpanRecord, Status, Text};

use super::payload::mix;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SyntheticConfig {
    pub traces: usize,
    pub seed: u64,
    /// When the first trace starts (ns since the epoch); later traces start
    /// a few milliseconds apart.
    pub start_nanos: i64,
}

/// About 7 spans a trace on average (3 to 11).
pub fn synthetic_traces(config: &SyntheticConfig) -> Vec<SpanRecord> {
    let mut rng = Rng(config.seed);
    let mut records = Vec::new();
    let scope = Arc::new(RecordScope { name: "betrace-loadgen".into(), ..RecordScope::default() });
    for n in 0..config.traces {
        let start = config.start_nanos + n as i64 * 3_000_000;
        let mut trace =
            TraceWriter { trace_id: rng.trace_id(), next_span: 1, records: &mut records, scope: Arc::clone(&scope) };
        match rng.below(3) {
            0 => checkout(&mut trace, &mut rng, start),
            _ => browse(&mut trace, &mut rng, start),
        }
    }
    records
}

const MS: i64 = 1_000_000;

/// `GET /api/v1/orders/{id}`: auth, then a few reads.
fn browse(trace: &mut TraceWriter, rng: &mut Rng, start: i64) {
    let status_code = match rng.below(100) {
        0..=2 => 404,
        _ => 200,
    };
    let end = start + (20 + rng.below(40) as i64) * MS;
    let root = trace.server(start, end, "GET", "/api/v1/orders/{id}", status_code, Status::Unset);
    let mut at = start + MS;
    at = trace.auth(root, at);
    for _ in 0..1 + rng.below(5) {
        at = trace.query(root, at, rng, "SELECT", "orders", "SELECT * FROM orders WHERE id = $1");
    }
}

/// `POST /api/v1/checkout`: auth, reads, an insert, then `payments`.
fn checkout(trace: &mut TraceWriter, rng: &mut Rng, start: i64) {
    // 2 in 100 answer 500 but forget the error status (server_5xx_has_error_status).
    let (status_code, status) = match rng.below(100) {
        0..=1 => (500, Status::Unset),
        2 => (500, Status::Error),
        _ => (200, Status::Unset),
    };
    let end = start + (80 + rng.below(60) as i64) * MS;
    let root = trace.server(start, end, "POST", "/api/v1/checkout", status_code, status);
    let mut at = trace.auth(root, start + MS);
    for _ in 0..1 + rng.below(3) {
        at = trace.query(root, at, rng, "SELECT", "carts", "SELECT * FROM carts WHERE session = $1");
    }
    at = trace.query(root, at, rng, "INSERT", "orders", "INSERT INTO orders (cart, total) VALUES ($1, $2)");
    let call_end = end - 2 * MS;
    let call = trace.span(root, "http.request", SpanKind::Client, at, call_end, "frontend");
    trace.attrs(call, [("http.request.method", string("POST")), ("server.address", string("payments.internal"))]);
    let server = trace.span(call, "POST /charge", SpanKind::Server, at + MS, call_end - MS, "payments");
    trace.attrs(server, [("http.request.method", string("POST")), ("http.route", string("/charge"))]);
    trace.attrs(server, [("http.response.status_code", RecordValue::Int(200))]);
    let mut at = at + 2 * MS;
    // 1 in 20 skips the fraud check (high_value_charge_needs_fraud_check fires above 1,000).
    if rng.below(20) != 0 {
        let check = trace.span(server, "fraud.check", SpanKind::Internal, at, at + 5 * MS, "payments");
        trace.records[check].status = Status::Ok;
        at += 6 * MS;
    }
    let amount = 10.0 + rng.below(3_000) as f64;
    let charge = trace.span(server, "payment.charge", SpanKind::Internal, at, at + 10 * MS, "payments");
    trace.records[charge].status = Status::Ok;
    trace.attrs(charge, [("payment.amount", RecordValue::Float(amount)), ("payment.currency", string("EUR"))]);
    trace.attrs(charge, [("app.order.id", string(&format!("order-{}", rng.below(1_000_000))))]);
    // 1 in 50: the provider call fails and says nothing about why.
    let provider = trace.span(charge, "POST", SpanKind::Client, at + MS, at + 9 * MS, "payments");
    trace.attrs(provider, [("server.address", string("api.stripe.com")), ("http.request.method", string("POST"))]);
    if rng.below(50) == 0 {
        trace.records[provider].status = Status::Error;
    }
}

/// Appends one trace's spans; span ids count up from 1 within the trace.
struct TraceWriter<'r> {
    trace_id: [u8; 16],
    next_span: u64,
    records: &'r mut Vec<SpanRecord>,
    /// The one instrumentation scope, shared as an OTLP reader shares it.
    scope: Arc<RecordScope>,
}

impl TraceWriter<'_> {
    /// A span below `parent` (an index into `records`, or `usize::MAX` for
    /// the root); returns its index.
    fn span(&mut self, parent: usize, name: &str, kind: SpanKind, start: i64, end: i64, service: &str) -> usize {
        let parent_id = self.records.get(parent).map_or([0; 8], |parent| parent.span_id);
        self.records.push(SpanRecord {
            trace_id: self.trace_id,
            span_id: self.next_span.to_be_bytes(),
            parent_id,
            name: name.into(),
            kind,
            start,
            end,
            resource: [(Text::from("service.name"), string(service))].into(),
            scope: Arc::clone(&self.scope),
            ..SpanRecord::default()
        });
        self.next_span += 1;
        self.records.len() - 1
    }

    fn attrs<const N: usize>(&mut self, span: usize, attrs: [(&str, RecordValue); N]) {
        self.records[span].attrs.extend(attrs.into_iter().map(|(key, value)| (key.into(), value)));
    }

    fn server(&mut self, start: i64, end: i64, method: &str, route: &str, code: i64, status: Status) -> usize {
        let root = self.span(usize::MAX, &format!("{method} {route}"), SpanKind::Server, start, end, "frontend");
        self.attrs(root, [("http.request.method", string(method)), ("http.route", string(route))]);
        self.attrs(root, [("http.response.status_code", RecordValue::Int(code)), ("url.scheme", string("https"))]);
        self.records[root].status = status;
        root
    }

    /// An auth check under `parent` starting at `at`; returns when it ends.
    fn auth(&mut self, parent: usize, at: i64) -> i64 {
        self.span(parent, "auth.check", SpanKind::Internal, at, at + MS, "frontend");
        at + MS
    }

    /// A database call; returns when it ends.
    fn query(&mut self, parent: usize, at: i64, rng: &mut Rng, operation: &str, table: &str, text: &str) -> i64 {
        let end = at + (1 + rng.below(8) as i64) * MS;
        let name = format!("{operation} {table}");
        let query = self.span(parent, &name, SpanKind::Client, at, end, "frontend");
        self.attrs(query, [("db.system.name", string("postgresql")), ("db.operation.name", string(operation))]);
        self.attrs(query, [("db.collection.name", string(table)), ("db.query.text", string(text))]);
        self.attrs(query, [("server.address", string("orders-db.internal"))]);
        self.attrs(query, [("db.response.returned_rows", RecordValue::Int(rng.below(50) as i64))]);
        end
    }
}

fn string(text: &str) -> RecordValue {
    RecordValue::Str(text.into())
}

/// splitmix64: small, fast, and reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A random id, never all zeros.
    fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0; 16];
        id[..8].copy_from_slice(&self.next().to_be_bytes());
        id[8..].copy_from_slice(&(self.next() | 1).to_be_bytes());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(traces: usize) -> SyntheticConfig {
        SyntheticConfig { traces, seed: 11, start_nanos: 1_700_000_000_000_000_000 }
    }

    #[test]
    fn traces_are_well_formed_and_reproducible() {
        let records = synthetic_traces(&config(200));
        assert_eq!(records, synthetic_traces(&config(200)));
        let traces = betrace_vm::trace::group_by_trace(records.clone());
        assert_eq!(traces.len(), 200);
        for trace in &traces {
            assert_eq!(trace.repairs, Default::default());
        }
        let mean = records.len() as f64 / 200.0;
        assert!((5.0..=9.0).contains(&mean), "{mean} spans a trace");
        for span in &records {
            assert!(span.start < span.end, "{span:?}");
        }
    }

    #[test]
    fn some_traces_break_rules() {
        let records = synthetic_traces(&config(500));
        let charges = records.iter().filter(|s| s.name == "payment.charge").count();
        let checks = records.iter().filter(|s| s.name == "fraud.check").count();
        assert!(checks < charges, "some charges skip the fraud check");
        let unmarked_5xx = records
            .iter()
            .filter(|s| s.attrs.contains(&("http.response.status_code".into(), RecordValue::Int(500))))
            .filter(|s| s.status != Status::Error)
            .count();
        assert!(unmarked_5xx > 0);
    }
}
