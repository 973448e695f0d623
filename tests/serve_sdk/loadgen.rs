//! `betrace loadgen` against the real server, reading its `/metrics`: what
//! the server says it received is what the load generator had accepted,
//! every trace is finished before the report, the server's steady rate is
//! measured during the load, and its CPU time (`process_cpu_seconds_total`)
//! comes back as CPU a span.

use std::time::Duration;

use betrace_runtime::loadgen::prometheus::scrape;
use betrace_runtime::loadgen::{LoadConfig, run_async};
use betrace_runtime::otlp_sink::OtlpSink;
use betrace_runtime::server::Server;

use crate::common::{self, Wire};
use crate::violation_spans::RULES;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_run_reports_the_servers_own_counts_and_cpu() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pack = dir.path().join("pack");
    common::write_pack(&pack, "e2e", "1.2.3", RULES);
    let sink = OtlpSink::start_loopback().await.expect("the sink listens");
    let server = Server::start(common::config(dir.path(), &pack, &sink, Wire::Grpc)).await.expect("the server starts");
    let grpc = server.grpc_addr.expect("gRPC is on");
    let admin = server.admin_addr.expect("the admin port is on");

    let mut load = LoadConfig::new(format!("http://{grpc}"));
    load.rate = 4_000.0;
    load.duration = Duration::from_secs(2);
    load.warmup = Duration::from_millis(500);
    load.batch_spans = 200;
    load.decode_time = Duration::from_millis(100);
    load.metrics_url = Some(format!("http://{admin}/metrics"));
    load.seed = Some(7);
    let report = run_async(load).await.expect("the run completes");

    let figures = report.server.clone().expect("server figures, with a metrics URL");
    assert!(report.load.spans_accepted > 2_000, "{} spans accepted", report.load.spans_accepted);
    assert_eq!(figures.spans_received, report.load.spans_accepted as f64);
    assert!(figures.drained, "every trace finished before the report");
    assert!(figures.traces_completed > 0.0 && figures.rule_evaluations > 0.0);
    // Traces complete 200 ms after their last span, so between 0.5 s into
    // the load and its end the server completes spans about as fast as
    // they are offered.
    let steady = figures.steady.clone().expect("a steady rate, the load being over twice the warm-up");
    assert!((1.0..2.5).contains(&steady.window_secs), "{steady:?}: about the 1.5 s from the warm-up to the end");
    assert!((1_000.0..8_000.0).contains(&steady.spans_per_sec), "{steady:?} at 4,000 spans/s offered");
    assert_eq!((report.ratio.basis, report.ratio.end_to_end_spans_per_sec), ("server_steady", steady.spans_per_sec));
    let after = scrape(&reqwest::Client::new(), &format!("http://{admin}/metrics")).await.expect("a scrape");
    assert_eq!(
        after.sum("betrace_spans_completed_total"),
        after.sum("betrace_spans_received_total"),
        "every span received was completed, once"
    );
    if cfg!(target_os = "linux") {
        let cpu = figures.cpu_secs.expect("the server reports its CPU time");
        assert!(cpu > 0.0 && cpu < 60.0, "{cpu} s of CPU");
        // Here the server runs in the load generator's process, so its own
        // count holds the server's too; on its own it is the client's share.
        let own = report.own_cpu_secs.expect("the load generator reads its own CPU time");
        assert!((0.0..60.0).contains(&own), "{own} s of CPU");
        assert!(report.to_table().contains("load generator CPU"), "{}", report.to_table());
    }
    server.stop().await;
}
