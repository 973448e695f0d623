//! `betrace loadgen`: replays traces to a server over OTLP/gRPC at a target
//! rate and measures a plain prost decode of the same payloads in the same
//! run (see `runtime/src/loadgen.rs`). This module reads the trace files,
//! parses flags and prints the report.

use std::path::PathBuf;
use std::time::Duration;

use betrace_runtime::formats::read_traces;
use betrace_runtime::loadgen::{self, LoadConfig, Source};

use crate::exit;

#[derive(clap::Args, Debug)]
pub struct LoadgenArgs {
    /// The server's OTLP/gRPC address.
    #[arg(long, value_name = "ADDR", default_value = "http://127.0.0.1:4317")]
    target: String,
    /// Trace files to replay (OTLP protobuf or JSON, Zipkin, Jaeger); none:
    /// 1,000 synthetic traces of a small shop. Each replay gives every
    /// trace a fresh trace id.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    traces: Vec<PathBuf>,
    /// Spans per second to offer; 0 sends as fast as the server answers.
    #[arg(long, value_name = "SPANS_PER_SEC", default_value_t = 0.0)]
    rate: f64,
    /// How long to send (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent connections, one sending task each.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Spans per request.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    batch_spans: u32,
    /// Deal out the spans of this many traces in turn (the first span of
    /// each, then the second, …), so each trace reaches the server over
    /// several requests and connections, as from SDKs exporting spans as
    /// they end; 1 sends each trace's spans together.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    interleave: u32,
    /// Send each trace's spans in the order they end, as SDKs export them
    /// (its root last), rather than in the order the traces list them.
    #[arg(long)]
    end_order: bool,
    /// Send as this tenant (`X-Scope-OrgID`).
    #[arg(long, value_name = "NAME")]
    tenant: Option<String>,
    /// The server's Prometheus metrics, e.g. `http://127.0.0.1:9464/metrics`:
    /// measure its steady rate during the load (see `--warmup`), wait for
    /// it to finish the traces sent, then report its counts and the
    /// trace-completion-to-export latency.
    #[arg(long, value_name = "URL")]
    metrics: Option<String>,
    /// Serve a counting OTLP/gRPC sink here for the server's violation
    /// export (`betrace serve --export-otlp http://ADDR`), so that the
    /// completion-to-export latency is measured; `127.0.0.1:4319`, say.
    #[arg(long, value_name = "ADDR")]
    sink: Option<std::net::SocketAddr>,
    /// How long to wait for the server to finish after the load (with `--metrics`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// With `--metrics`: how far into the load the window of the server's
    /// steady rate (spans it completed a second) starts; the window ends
    /// with the load, and is measured when the load lasts more than twice this.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Threads of the multi-threaded plain-decode measurement; default: one
    /// per core, as the server's shards.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    decode_threads: Option<u16>,
    /// How long each plain-decode measurement (one thread, N threads) runs.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    decode_time: Duration,
    /// How the report is printed.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

pub fn run(args: &LoadgenArgs) -> u8 {
    let source = match read_sources(&args.traces) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    let defaults = LoadConfig::new(args.target.clone());
    let config = LoadConfig {
        source,
        rate: args.rate,
        duration: args.duration,
        concurrency: usize::from(args.concurrency),
        batch_spans: args.batch_spans as usize,
        interleave: args.interleave as usize,
        end_order: args.end_order,
        tenant: args.tenant.clone(),
        metrics_url: args.metrics.clone(),
        sink: args.sink,
        decode_threads: args.decode_threads.map_or(defaults.decode_threads, usize::from),
        drain_timeout: args.drain_timeout,
        warmup: args.warmup,
        decode_time: args.decode_time,
        ..defaults
    };
    match loadgen::run(config) {
        Ok(report) => {
            match args.format {
                Format::Human => print!("{}", report.to_table()),
                Format::Json => match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("error: cannot write the report as JSON: {error}");
                        return exit::FAILURE;
                    }
                },
            }
            exit::OK
        }
        Err(error) => {
            eprintln!("error: {error}");
            exit::FAILURE
        }
    }
}

/// The spans of every file, or synthetic traces when there are none.
fn read_sources(paths: &[PathBuf]) -> Result<Source, String> {
    if paths.is_empty() {
        return Ok(Source::Synthetic);
    }
    let mut records = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        records.extend(read_traces(&bytes).map_err(|error| format!("{}: {error}", path.display()))?);
    }
    let names = paths.iter().map(|path| path.display().to_string()).collect();
    Ok(Source::Records { names, records })
}
