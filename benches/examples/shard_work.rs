//! What a shard of `betrace serve` does per trace, without the network: the
//! load generator's synthetic traces are assembled (`TraceBuilder`) and
//! evaluated with a pack, loaded as `betrace serve --rules PACK` loads it,
//! round after round. Meant for profiles of the evaluation path alone, and
//! for `perf stat -e instructions` where the machine has hardware counters
//! (a count stays steady on a busy machine, where times do not).
//!
//! `cargo run --release -p betrace-benches --example shard_work -- PACK [ROUNDS] [THREADS]`
//! (PACK: a pack directory or `.btpack`, e.g. the one `load_pack` writes).
//! With THREADS, that many threads each run all the rounds against the one
//! loaded pack, as the server's shards share it: the time a span is then
//! per thread (wall time × threads ÷ spans), so that contention on what the
//! shards share shows against a single thread.
//!
//! On one thread it also decodes the same spans as the load generator sends
//! them, with prost and with the receivers' wire reader, and prints what
//! that bounds: a server that did nothing but receive, build and evaluate,
//! all on hot caches, could not pass `C × prost ÷ (receiving + building and
//! evaluating)` of issue 5's yardstick on C cores. Last, it evaluates
//! 100,000 traces held in memory in shuffled order, cold and with the
//! shards' prefetching, side by side.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use betrace_runtime::config::RulesConfig;
use betrace_runtime::formats::{decode_request_lenient, read_request};
use betrace_runtime::ingest::Spans;
use betrace_runtime::loadgen::payload::Payloads;
use betrace_runtime::loadgen::synthetic::{SyntheticConfig, synthetic_traces};
use betrace_runtime::packs::load_packs;
use betrace_vm::Engine;
use betrace_vm::trace::{SpanRecord, Trace, TraceBuilder, in_turn};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let pack_path = PathBuf::from(args.next().ok_or("usage: shard_work PACK [ROUNDS] [THREADS]")?);
    let rounds: usize = args.next().map_or(Ok(20), |n| n.parse()).map_err(|e| format!("ROUNDS: {e}"))?;
    let threads: usize = args.next().map_or(Ok(1), |n| n.parse()).map_err(|e| format!("THREADS: {e}"))?.max(1);
    let rules = RulesConfig { paths: vec![pack_path], watch: false, state_dir: None, ..RulesConfig::default() };
    let packs = load_packs(&rules).map_err(|e| e.to_string())?;
    let engines = &packs.default.engines;
    let records = synthetic_traces(&SyntheticConfig { traces: 1_000, seed: 7, start_nanos: 1_700_000_000_000_000_000 });
    let receiving = (threads == 1).then(|| Receiving::measure(&records, rounds));
    let mut traces: Vec<Vec<SpanRecord>> = Vec::new();
    for record in records {
        match traces.last_mut() {
            Some(spans) if spans[0].trace_id == record.trace_id => spans.push(record),
            _ => traces.push(vec![record]),
        }
    }
    let spans: usize = traces.iter().map(Vec::len).sum();
    let started = Instant::now();
    let work = || {
        let (mut evaluated, mut violations) = (0, 0);
        for _ in 0..rounds {
            for spans in &traces {
                let trace = build(spans);
                for engine in engines {
                    let report = engine.evaluate(&trace);
                    evaluated += report.evaluated;
                    violations += report.violations.len();
                }
            }
        }
        (evaluated, violations)
    };
    let (evaluated, violations) = std::thread::scope(|scope| {
        let running: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        running.into_iter().map(|thread| thread.join().expect("no panic")).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let seconds = started.elapsed().as_secs_f64();
    let total = (spans * rounds * threads) as f64;
    println!(
        "{rounds} rounds of {} traces ({spans} spans) on {threads} thread(s): {evaluated} rule runs, \
         {violations} violations; {:.0} spans/s, {:.2} µs a span a thread",
        traces.len(),
        total / seconds,
        seconds * 1e6 * threads as f64 / total
    );
    if let Some(receiving) = receiving {
        let shard = seconds * 1e6 / total;
        println!(
            "one thread, hot, a span: plain prost decode {:.2} µs; receiving (wire → records) {:.2} µs; \
             building and evaluating {shard:.2} µs. A server doing only these on C cores reaches at most \
             {:.2} × C of the plain decode on one thread",
            receiving.prost,
            receiving.wire,
            receiving.prost / (receiving.wire + shard)
        );
        println!(
            "preparing for the shards (grouped, whole traces built), a span: through records {:.2} µs, \
             in place {:.2} µs",
            receiving.through_records, receiving.in_place
        );
    }
    // Choosing rules alone (the trigger index), over the traces built once.
    let built: Vec<_> = traces.iter().map(|spans| build(spans)).collect();
    let started = Instant::now();
    let chosen: usize = (0..rounds)
        .flat_map(|_| &built)
        .map(|trace| engines.iter().map(|engine| engine.candidates(trace).len()).sum::<usize>())
        .sum();
    let choosing = started.elapsed().as_secs_f64();
    println!(
        "choosing rules: {:.2} µs a trace, {:.3} µs a span ({:.1} rules a trace)",
        choosing * 1e6 / (rounds * built.len()) as f64,
        choosing * 1e6 / (rounds * spans) as f64,
        chosen as f64 / (rounds * built.len()) as f64
    );
    // The costliest rules, from the per-rule timing the server reports
    // as `betrace_rule_seconds_total`.
    let rules = engines.iter().flat_map(|engine| &engine.rules);
    let mut costs: Vec<_> = rules.map(|rule| (rule.cost.seconds(), rule.cost.runs(), rule)).collect();
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let all: f64 = costs.iter().map(|c| c.0).sum();
    println!("rule time {:.3} s of {seconds:.3} s; the costliest rules:", all);
    for (seconds, runs, rule) in costs.iter().take(12) {
        let native = if rule.native.is_some() { "native" } else { "interpreted" };
        println!(
            "  {:>5.1} %  {:>6} runs  {:>6.2} µs a run  {native:<11}  {}",
            100.0 * seconds / all,
            runs,
            seconds * 1e6 / *runs as f64,
            rule.program.name
        );
    }
    if threads == 1 {
        held_traces(engines, &traces);
    }
    Ok(())
}

/// Evaluating traces held in memory well past the caches, as a server does
/// (a second of its load, in an order unrelated to where they lie), with
/// and without asking for the next traces' memory first (`Trace::warm_up`,
/// as `betrace serve`'s shards do). Each way runs twice, alternating.
fn held_traces(engines: &[Arc<Engine>], traces: &[Vec<SpanRecord>]) {
    const COPIES: usize = 100;
    let held: Vec<Box<Trace>> = (0..COPIES).flat_map(|_| traces).map(|spans| Box::new(build(spans))).collect();
    let spans: usize = held.iter().map(|trace| trace.len()).sum();
    let order = shuffled(held.len());
    let evaluate = |warm: bool| {
        let mut order = order.clone();
        let started = Instant::now();
        let run = |i: usize| engines.iter().for_each(|engine| drop(engine.evaluate(&held[i])));
        if warm {
            in_turn(&mut order, |&next| held[next].warm_up(), |&after| held[after].warm_up_header(), run);
        } else {
            order.into_iter().for_each(run);
        }
        started.elapsed().as_secs_f64() * 1e6 / spans as f64
    };
    let runs: Vec<(f64, f64)> = (0..2).map(|_| (evaluate(false), evaluate(true))).collect();
    let show = |pick: fn(&(f64, f64)) -> f64| {
        runs.iter().map(|run| format!("{:.2}", pick(run))).collect::<Vec<_>>().join(" / ")
    };
    println!(
        "{} traces held ({spans} spans), evaluated in shuffled order: {} µs a span cold, {} µs prefetched",
        held.len(),
        show(|run| run.0),
        show(|run| run.1)
    );
}

/// `0..len` in an order fixed by a seed (xorshift; Fisher–Yates).
fn shuffled(len: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..len).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// One trace's spans assembled, span by span, as a shard does.
fn build(spans: &[SpanRecord]) -> Trace {
    let mut builder = TraceBuilder::new(spans[0].trace_id);
    for span in spans {
        builder.add(span.clone());
    }
    builder.build()
}

/// What decoding the same spans costs, as the load generator sends them
/// (512-span OTLP/gRPC requests), on this thread: µs a span for prost's
/// decode (issue 5's yardstick) and for the receivers' wire reader; and
/// for preparing them for the shards as the receivers do (grouped by trace,
/// whole traces built), through records and straight from the bytes.
struct Receiving {
    prost: f64,
    wire: f64,
    through_records: f64,
    in_place: f64,
}

impl Receiving {
    fn measure(records: &[SpanRecord], rounds: usize) -> Receiving {
        let payloads = Payloads::new(records.to_vec(), 512, 1, 7).expect("spans");
        let requests: Vec<&[u8]> = payloads.template_requests().map(|(bytes, _)| bytes).collect();
        let spans = (payloads.spans_per_round() as usize * rounds) as f64;
        let time = |decode: &dyn Fn(&[u8])| {
            let started = Instant::now();
            for _ in 0..rounds {
                requests.iter().for_each(|bytes| decode(bytes));
            }
            started.elapsed().as_secs_f64() * 1e6 / spans
        };
        let prost = time(&|bytes| drop(ExportTraceServiceRequest::decode(bytes).expect("decodes")));
        let wire = time(&|bytes| drop(decode_request_lenient(bytes).expect("decodes")));
        let through_records = time(&|bytes| {
            let (records, _) = decode_request_lenient(bytes).expect("decodes");
            drop(Spans::prepare(records, |_| false));
        });
        let in_place = time(&|bytes| {
            let read = read_request(bytes).expect("decodes");
            drop(Spans::prepare(read.spans().collect(), |_| false));
        });
        Receiving { prost, wire, through_records, in_place }
    }
}
