//! Tenants end to end: `rules.tenants_dir` gives `acme` and `globex` packs of
//! their own, `rules.paths` the default tenant's. The same kind of trace,
//! sent by the SDK as each tenant (gRPC metadata for one, an HTTP header for
//! the other, none for the default tenant), meets only that tenant's rules,
//! and the violations reach the downstream under that tenant's
//! `X-Scope-OrgID`.

use std::collections::BTreeSet;

use betrace_runtime::loadgen::prometheus::Scrape;
use betrace_runtime::otlp_sink::OtlpSink;
use betrace_runtime::server::Server;

use crate::common::{self, WAIT, Wire, text};
use crate::sdk::{self, Checkout};
use crate::violation_spans::RULES as DEFAULT_RULES;

const ACME_RULES: &str = r#"
rule charge_needs_fraud_check {
  severity: critical
  when c = { name = "payment.charge" }
  always { name = "fraud.check" && end <= c.start }
}
"#;

const GLOBEX_RULES: &str = r#"
rule no_debug_dumps {
  severity: medium
  when { true }
  never { name = "debug.dump" }
}
"#;

/// (tenant, rule id, trace id) of every violation span that reached the sink.
type Seen = BTreeSet<(Option<String>, String, Vec<u8>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_tenant_meets_only_its_own_rules_and_gets_its_violations_under_its_id() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let default_pack = dir.path().join("default");
    common::write_pack(&default_pack, "e2e", "1.2.3", DEFAULT_RULES);
    let tenants = dir.path().join("tenants");
    common::write_pack(&tenants.join("acme"), "acme", "1.0.0", ACME_RULES);
    common::write_pack(&tenants.join("globex"), "globex", "2.0.0", GLOBEX_RULES);
    let sink = OtlpSink::start_loopback().await.expect("the sink listens");
    let mut config = common::config(dir.path(), &default_pack, &sink, Wire::Http);
    config.rules.tenants_dir = Some(tenants);
    let server = Server::start(config).await.expect("the server starts");
    let grpc = server.grpc_addr.expect("gRPC is on");
    let http = server.http_addr.expect("HTTP is on");

    // Every trace breaks every rule of every pack.
    let everything = || vec![Checkout { card_number: true, debug_dump: true, ..Checkout::default() }];
    let (acme, globex, default) = tokio::join!(
        sdk::send_checkouts(Wire::Grpc, grpc, Some("acme"), everything()),
        sdk::send_checkouts(Wire::Http, http, Some("globex"), everything()),
        sdk::send_checkouts(Wire::Grpc, grpc, None, everything()),
    );
    let (acme, globex, default) =
        (acme[0].trace_id.to_vec(), globex[0].trace_id.to_vec(), default[0].trace_id.to_vec());

    let expected: Seen = [
        (Some("acme"), "acme/charge_needs_fraud_check", &acme),
        (Some("globex"), "globex/no_debug_dumps", &globex),
        (None, "e2e/charge_needs_fraud_check", &default),
        (None, "e2e/no_card_numbers_in_clear", &default),
    ]
    .into_iter()
    .map(|(tenant, rule, trace)| (tenant.map(str::to_string), rule.to_string(), trace.clone()))
    .collect();
    assert!(sink.wait_for_spans(expected.len(), WAIT).await, "violation spans: {:?}", seen(&sink));
    server.flush().expect("the shards run");
    let metrics = server.metrics.clone();
    server.stop().await;

    assert_eq!(seen(&sink), expected);
    assert_eq!(sink.span_count(), expected.len(), "each violation exported once");
    for request in sink.requests() {
        let traces: BTreeSet<Vec<u8>> = request.spans().map(|span| span.trace_id.clone()).collect();
        assert_eq!(traces.len(), 1, "a request carries one tenant's violations (each tenant sent one trace)");
    }
    let scrape = Scrape::parse(&metrics.encode()).expect("the metrics parse");
    for (tenant, rule, _) in &expected {
        let wanted = [("tenant", tenant.as_deref().unwrap_or("")), ("rule", rule.as_str())];
        let counts: Vec<f64> = scrape
            .samples
            .iter()
            .filter(|sample| sample.name == "betrace_violations_total")
            .filter(|sample| {
                wanted.iter().all(|&(k, v)| sample.labels.iter().any(|(key, value)| key == k && value == v))
            })
            .map(|sample| sample.value)
            .collect();
        assert_eq!(counts, [1.0], "betrace_violations_total{wanted:?}, of any severity");
    }
}

fn seen(sink: &OtlpSink) -> Seen {
    sink.spans().into_iter().map(|(tenant, span)| (tenant, text(&span, "betrace.rule.id"), span.trace_id)).collect()
}
