//! Where a trace should be built: on the receiving thread (as `betrace
//! serve` does) or on the shard that evaluates it. Two threads, a receiver
//! and a shard, pass the load generator's requests (512 spans each) along a
//! channel, with jemalloc as in the server:
//!
//! - `receiver`: the receiver copies the request (as reading the socket
//!   does), reads it in place, groups and builds its traces, and hands the
//!   built traces over; the shard holds them, then evaluates and frees them.
//!   Trace memory is allocated on one thread and freed on the other.
//! - `shard`: the receiver copies and reads the request and groups its spans
//!   by trace (what it must do to route them and to weigh them against the
//!   budget), and hands over the request's bytes; the shard reads them again,
//!   builds, holds, evaluates and frees. Trace memory stays on one thread;
//!   the request is read twice.
//!
//! The shard holds `HELD` traces (a little under a second of the load at the
//! server's rate, as an idle timeout does) and evaluates the oldest as each
//! new one comes, so evaluation reads memory gone cold, as in the server.
//! Prints the process's CPU time a span for each way, alternating.
//!
//! `cargo run --release -p betrace-benches --example handoff -- PACK [ROUNDS] [PAIRS]`

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use betrace_runtime::assembly::TraceBatch;
use betrace_runtime::config::RulesConfig;
use betrace_runtime::formats::read_request;
use betrace_runtime::ingest::{Spans, grouped_by_trace, trace_bytes};
use betrace_runtime::loadgen::payload::Payloads;
use betrace_runtime::loadgen::synthetic::{SyntheticConfig, synthetic_traces};
use betrace_runtime::packs::load_packs;
use betrace_vm::Engine;
use betrace_vm::trace::Trace;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Traces a shard holds before evaluating the oldest.
const HELD: usize = 50_000;

#[derive(Clone, Copy, Debug)]
enum BuiltOn {
    Receiver,
    Shard,
}

enum Handed {
    Built(Vec<TraceBatch>),
    Request(Vec<u8>),
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let pack_path = PathBuf::from(args.next().ok_or("usage: handoff PACK [ROUNDS] [PAIRS]")?);
    let rounds: usize = args.next().map_or(Ok(100), |n| n.parse()).map_err(|e| format!("ROUNDS: {e}"))?;
    let pairs: usize = args.next().map_or(Ok(3), |n| n.parse()).map_err(|e| format!("PAIRS: {e}"))?;
    let rules = RulesConfig { paths: vec![pack_path], watch: false, state_dir: None, ..RulesConfig::default() };
    let packs = load_packs(&rules).map_err(|e| e.to_string())?;
    let engines = &packs.default.engines;
    let records = synthetic_traces(&SyntheticConfig { traces: 1_000, seed: 7, start_nanos: 1_700_000_000_000_000_000 });
    let payloads = Payloads::new(records, 512, 1, 7).ok_or("no spans")?;
    let requests = payloads.requests_per_round();
    let spans = (payloads.spans_per_round() as usize * rounds) as f64;
    for pair in 1..=pairs {
        let mut line = format!("pair {pair}:");
        for built_on in [BuiltOn::Receiver, BuiltOn::Shard] {
            let cpu = cpu_seconds();
            let started = Instant::now();
            let violations = run(built_on, engines, &payloads, requests * rounds as u64);
            let (cpu, wall) = (cpu_seconds() - cpu, started.elapsed().as_secs_f64());
            line += &format!(
                "  built on the {built_on:?}: {:.3} µs CPU a span, {:.3} µs wall ({violations} violations)",
                cpu * 1e6 / spans,
                wall * 1e6 / spans
            );
        }
        println!("{line}");
    }
    Ok(())
}

/// Sends `requests` requests from a receiver thread to a shard thread;
/// returns the violations found.
fn run(built_on: BuiltOn, engines: &[std::sync::Arc<Engine>], payloads: &Payloads, requests: u64) -> usize {
    let (sender, receiver) = mpsc::channel::<Handed>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for index in 0..requests {
                // A fresh copy with fresh trace ids, as a request read from a socket.
                let bytes = payloads.request(index).bytes;
                let handed = match built_on {
                    BuiltOn::Receiver => {
                        let read = read_request(&bytes).expect("decodes");
                        Handed::Built(Spans::prepare(read.spans().collect(), |_| false).into_batches())
                    }
                    BuiltOn::Shard => {
                        let weighed = route_and_weigh(&bytes);
                        std::hint::black_box(weighed);
                        Handed::Request(bytes)
                    }
                };
                sender.send(handed).expect("the shard runs");
            }
        });
        let shard = scope.spawn(move || {
            let mut held: VecDeque<Box<Trace>> = VecDeque::with_capacity(HELD + 1);
            let mut violations = 0;
            let mut evaluate = |trace: Box<Trace>| {
                for engine in engines {
                    violations += engine.evaluate(&trace).violations.len();
                }
            };
            for handed in receiver {
                let batches = match handed {
                    Handed::Built(batches) => batches,
                    Handed::Request(bytes) => {
                        let read = read_request(&bytes).expect("decodes");
                        Spans::prepare(read.spans().collect(), |_| false).into_batches()
                    }
                };
                for batch in batches {
                    held.push_back(batch.spans.build_boxed());
                    if held.len() > HELD {
                        evaluate(held.pop_front().expect("held"));
                    }
                }
            }
            held.into_iter().for_each(evaluate);
            violations
        });
        shard.join().expect("no panic")
    })
}

/// What a receiver must do with a request it does not build: read it
/// (checking it), and group its spans by trace, as the receivers do, to
/// route and weigh them.
fn route_and_weigh(bytes: &[u8]) -> usize {
    let read = read_request(bytes).expect("decodes");
    grouped_by_trace(read.spans().collect()).iter().map(|group| trace_bytes(group)).sum()
}

/// This process's CPU time so far (user and system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}
