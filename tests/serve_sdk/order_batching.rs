//! The contract BeTrace relies on behind a load balancer: a trace's spans in
//! any order and any batching, through either receiver, give the same
//! violations. Random spans of a few traces (orphans, several roots, repeated
//! spans as a retrying exporter sends them) are sent to one running server
//! as raw OTLP in a random permutation cut into random batches, each batch
//! over gRPC, gzip'd gRPC or HTTP/protobuf at random; after a flush, the
//! violations the server produced — early ones included — must be those of
//! evaluating the same spans offline with the same pack: the same ids, rules,
//! traces and bound spans, each produced once, and the same parent spans in
//! traces with one root (see [`traces_with_several_roots`]).
//!
//! One server serves every case; each case's traces get ids of their own.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use betrace_runtime::config::ServeConfig;
use betrace_runtime::export::CollectSink;
use betrace_runtime::formats::encode_request;
use betrace_runtime::packs::load_packs;
use betrace_runtime::server::{Server, ServerOptions};
use betrace_tests::spans::{Repeats, SpanSpec, span_records, span_spec};
use betrace_vm::trace::{SpanRecord, group_by_trace};
use betrace_vm::{Engine, Violation};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

/// Rules of every kind the server treats apart: ones that can fire early
/// (`never` of growing sets, counts past a bound, bound and unbound), ones
/// that must wait for the whole trace (absence, siblings, `!<<`, `parent`).
const RULES: &str = r#"
rule errors_below_servers { severity: low when { } never { kind = server } >> { status = error } }
rule servers_without_auth { severity: low when { } never { name = "auth.check" } !<< { kind = server } }
rule siblings_of_queries { severity: low when q = { name = "db.query" } never q ~ { name = "db.query" } }
rule orphans_and_roots { severity: low when { } never count({ !parent }) > 1 }
rule ordered_checks {
  severity: low
  message: "{c.name} at {c.start} after {count({ end <= c.start })} spans"
  when c = { name = "payment.charge" }
  always { name = "auth.check" && end <= c.start }
}
rule few_queries { severity: low when { true } never count({ name = "db.query" }) > 2 }
rule one_charge { severity: low when { true } always count({ name = "payment.charge" }) < 2 }
rule charges_without_failing_children {
  severity: low
  when c = { name = "payment.charge" }
  never c > { status = error }
}
rule no_plain_http { severity: low when { true } never { span.url.full =~ "^http://" } }
rule no_consumer_under_client { severity: low when { true } never { kind = client } > { kind = consumer } }
"#;

/// The pack: the standard pack's rules (but those reading `novelty`, whose
/// baselines carry state from trace to trace, so the order traces complete
/// in would matter) and [`RULES`].
fn write_pack(dir: &Path) {
    std::fs::create_dir_all(dir).expect("a pack directory");
    std::fs::write(dir.join("pack.toml"), "name = \"order\"\nversion = \"1.0.0\"\nengine = \">=0.1\"\n")
        .expect("pack.toml written");
    for file in betrace_stdlib::packs::STANDARD.iter().filter(|file| !file.source.contains("novelty(")) {
        std::fs::write(dir.join(file.path), file.source).expect("a standard rule file written");
    }
    std::fs::write(dir.join("order.btr"), RULES).expect("order.btr written");
}

/// The spans of `specs`, in traces whose ids carry `case`; a span that comes
/// again is an exact copy, as a retrying exporter sends it.
fn records(specs: &[SpanSpec], case: u32) -> Vec<SpanRecord> {
    span_records(specs, Repeats::ExactCopy, |trace| {
        let mut trace_id = [0x42; 16];
        trace_id[0] = trace + 1;
        trace_id[1..5].copy_from_slice(&case.to_be_bytes());
        trace_id
    })
}

/// How one batch reaches the server.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
}

/// A case: spans, the order they are sent in, where the order is cut into
/// batches, and how each batch travels.
#[derive(Clone, Debug)]
struct Case {
    specs: Vec<SpanSpec>,
    order: Vec<usize>,
    cuts: Vec<usize>,
    transports: Vec<Transport>,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(span_spec(), 1..40).prop_flat_map(|specs| {
        let n = specs.len();
        let transport = prop_oneof![Just(Transport::Grpc), Just(Transport::GrpcGzip), Just(Transport::HttpProtobuf)];
        (
            Just(specs),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            prop::collection::vec(0..=n, 0..6),
            prop::collection::vec(transport, 7),
        )
            .prop_map(|(specs, order, cuts, transports)| Case { specs, order, cuts, transports })
    })
}

impl Case {
    /// The records in the order sent, cut into (transport, batch).
    fn batches(&self, records: &[SpanRecord]) -> Vec<(Transport, Vec<SpanRecord>)> {
        let shuffled: Vec<SpanRecord> = self.order.iter().map(|&i| records[i].clone()).collect();
        let mut cuts = self.cuts.clone();
        cuts.extend([0, shuffled.len()]);
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2)
            .zip(self.transports.iter().cycle())
            .map(|(window, transport)| (*transport, shuffled[window[0]..window[1]].to_vec()))
            .collect()
    }
}

/// What identifies a violation: id, rule, trace, bound span.
type Key = (String, String, [u8; 16], Option<[u8; 8]>);

fn key(violation: &Violation) -> Key {
    (violation.id.clone(), violation.rule_id.clone(), violation.trace_id, violation.bound_span)
}

/// The traces of `records` with more than one span recorded without a parent.
///
/// An unbound violation hangs under its trace's root, the earliest such
/// span. A rule firing early on a trace with several of them can meet a
/// later one first and hang its violation there; so parents are compared
/// only in traces with one root.
fn traces_with_several_roots(records: &[SpanRecord]) -> BTreeSet<[u8; 16]> {
    let roots: BTreeSet<([u8; 16], [u8; 8])> =
        records.iter().filter(|r| r.parent_id == [0; 8]).map(|r| (r.trace_id, r.span_id)).collect();
    let mut seen = BTreeSet::new();
    roots.iter().filter(|(trace, _)| !seen.insert(*trace)).map(|(trace, _)| *trace).collect()
}

/// The server, its clients and the offline reference.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: Server,
    collected: Arc<CollectSink>,
    grpc: TraceServiceClient<Channel>,
    http: reqwest::Client,
    http_url: String,
    reference: Vec<Arc<Engine>>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pack = dir.path().join("pack");
        write_pack(&pack);
        let mut config = ServeConfig::default();
        config.receivers.otlp_grpc = "127.0.0.1:0".into();
        config.receivers.otlp_http = "127.0.0.1:0".into();
        config.admin.addr = String::new();
        config.rules.paths = vec![pack];
        config.rules.watch = false;
        config.rules.state_dir = Some(dir.path().join("state"));
        config.assembly.shards = 2;
        // Traces complete when the test flushes them, never half-way.
        config.assembly.idle_timeout = Duration::from_secs(120);
        config.assembly.max_trace_age = Duration::from_secs(600);
        // Early rules run on the first batch of every trace.
        config.assembly.early_firing = true;
        config.assembly.early_after = Duration::ZERO;
        config.export.stdout = false;
        config.export.file = None;
        config.export.queue_dir = dir.path().join("queue");

        let reference = load_packs(&config.rules).expect("the pack loads").default.engines.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let collected = Arc::new(CollectSink::default());
        let options = ServerOptions { extra_sink: Some(collected.clone()) };
        let (server, grpc) = runtime.block_on(async {
            let server = Server::start_with(config, options).await.expect("the server starts");
            let addr: SocketAddr = server.grpc_addr.expect("gRPC is on");
            let grpc = TraceServiceClient::connect(format!("http://{addr}")).await.expect("the gRPC receiver is up");
            (server, grpc)
        });
        let http_url = format!("http://{}/v1/traces", server.http_addr.expect("HTTP is on"));
        Fixture { runtime, server, collected, grpc, http: reqwest::Client::new(), http_url, reference, _dir: dir }
    }

    /// Sends one batch, as one request, and checks it was taken whole.
    async fn send(&self, transport: Transport, batch: &[SpanRecord]) -> Result<(), String> {
        let request: ExportTraceServiceRequest = encode_request(batch);
        match transport {
            Transport::Grpc | Transport::GrpcGzip => {
                let mut client = self.grpc.clone();
                if matches!(transport, Transport::GrpcGzip) {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                let reply = client.export(request).await.map_err(|status| format!("gRPC export: {status}"))?;
                match reply.into_inner().partial_success {
                    Some(partial) if partial.rejected_spans > 0 => Err(format!("gRPC partial success: {partial:?}")),
                    _ => Ok(()),
                }
            }
            Transport::HttpProtobuf => {
                let reply = self
                    .http
                    .post(&self.http_url)
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .map_err(|e| format!("HTTP export: {e}"))?;
                match reply.status().is_success() {
                    true => Ok(()),
                    false => Err(format!("HTTP export: {}", reply.status())),
                }
            }
        }
    }

    /// The violations the server produced for the traces of `case`.
    fn produced(&self, case: u32) -> Vec<Violation> {
        let mine = |v: &Violation| v.trace_id[1..5] == case.to_be_bytes();
        self.collected.violations().into_iter().filter(mine).collect()
    }

    /// The violations of evaluating `records` offline.
    fn expected(&self, records: Vec<SpanRecord>) -> Vec<Violation> {
        group_by_trace(records)
            .iter()
            .flat_map(|trace| self.reference.iter().flat_map(move |engine| engine.evaluate(trace).violations))
            .collect()
    }
}

#[test]
fn violations_do_not_depend_on_order_batching_or_receiver() {
    let fixture = Fixture::start();
    let next_case = AtomicU32::new(1);
    let (violations_seen, early_seen) = (AtomicUsize::new(0), AtomicUsize::new(0));
    // 28 cases by default (a few seconds); PROPTEST_CASES=400 for a deeper run.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(28);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let outcome = runner.run(&case(), |case| {
        let number = next_case.fetch_add(1, Ordering::Relaxed);
        let records = records(&case.specs, number);
        let batches = case.batches(&records);
        fixture.runtime.block_on(async {
            for (transport, batch) in &batches {
                fixture.send(*transport, batch).await.map_err(TestCaseError::fail)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
        let early = fixture.produced(number).len();
        fixture.server.flush().map_err(TestCaseError::fail)?;

        let produced = fixture.produced(number);
        let several_roots = traces_with_several_roots(&records);
        let expected = fixture.expected(records);
        let produced_keys: BTreeSet<Key> = produced.iter().map(key).collect();
        let expected_keys: BTreeSet<Key> = expected.iter().map(key).collect();
        prop_assert_eq!(produced.len(), produced_keys.len(), "a violation was produced twice: {:#?}", produced);
        prop_assert!(
            produced_keys == expected_keys,
            "produced only: {:?}\nexpected only: {:?}",
            produced_keys.difference(&expected_keys).collect::<Vec<_>>(),
            expected_keys.difference(&produced_keys).collect::<Vec<_>>()
        );
        let parent = |v: &Violation| (v.id.clone(), v.parent_span);
        let single_root = |v: &&Violation| !several_roots.contains(&v.trace_id);
        let produced_parents: BTreeSet<_> = produced.iter().filter(single_root).map(parent).collect();
        let expected_parents: BTreeSet<_> = expected.iter().filter(single_root).map(parent).collect();
        prop_assert!(
            produced_parents == expected_parents,
            "parents differ: produced {:?}, expected {:?}",
            produced_parents.difference(&expected_parents).collect::<Vec<_>>(),
            expected_parents.difference(&produced_parents).collect::<Vec<_>>()
        );
        violations_seen.fetch_add(produced.len(), Ordering::Relaxed);
        early_seen.fetch_add(early, Ordering::Relaxed);
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    // Guards on the property's strength: rules did fire, some of them before
    // their trace completed.
    let (violations, early) = (violations_seen.into_inner(), early_seen.into_inner());
    assert!(violations >= cases as usize, "only {violations} violations in {cases} cases");
    assert!(early > 0, "no rule fired early");
    let Fixture { runtime, server, .. } = fixture;
    runtime.block_on(server.stop());
}
