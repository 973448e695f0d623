//! The detection-quality harness: runs `novelty` and the reference detector
//! (windowed NCD with permutation p-values, as Driftlock does) over generated
//! data sets with known, injected anomalies, and prints markdown tables of
//! AUC, precision, recall and cost per event, then measures the burst policy.
//! The figures in docs/detection.md come from
//!
//! ```text
//! cargo run --release -p betrace-benches --example detection
//! ```

mod data;
mod metrics;
mod reference;

use std::time::Instant;

use betrace_stdlib::Value;
use betrace_stdlib::compression::{Call, CallSiteId, NoveltyConfig, NoveltyOptions, NoveltyState, tokenize};

use data::Event;
use metrics::{Quality, auc, best_f1, quality};

/// Events before this index only warm the detectors up; quality is measured after.
const EVALUATE_FROM: usize = 600;
const EVENTS: usize = 6000;
const SECOND: i64 = 1_000_000_000;

struct Run {
    name: &'static str,
    /// Keys, memory, rebuilds and size-cache hits after the run (novelty only).
    state: Option<(usize, usize, u64, f64)>,
    scores: Vec<f64>,
    flagged: Vec<bool>,
    micros_per_event: f64,
}

/// A change to the default options, naming one burst policy.
type AdjustPolicy = fn(&mut NoveltyOptions);

/// The empirical p-value of each score against the `window` scores before it
/// (what `novelty`'s evidence reports), as flags at `p <= alpha`.
fn p_value_flags(scores: &[f64], window: usize, alpha: f64) -> Vec<bool> {
    (0..scores.len())
        .map(|i| {
            let recent = &scores[i.saturating_sub(window)..i];
            let at_least = 1 + recent.iter().filter(|&&s| s >= scores[i]).count();
            !recent.is_empty() && scores[i] > 0.0 && at_least as f64 / (1 + recent.len()) as f64 <= alpha
        })
        .collect()
}

fn novelty_run(name: &'static str, events: &[Event], options: &NoveltyOptions) -> Run {
    let site = CallSiteId { rule: "harness".into(), clause: 0, ordinal: 0, digest: 0 };
    let mut state = NoveltyState::new(NoveltyConfig::default());
    let values: Vec<(Value, Value)> = events.iter().map(|e| (Value::str(&e.key), Value::str(&e.value))).collect();
    let start = Instant::now();
    let scores: Vec<f64> = values
        .iter()
        .zip(events)
        .map(|((key, value), e)| state.observe(&Call { site: &site, key, value, options, time: e.time }).unwrap_or(0.0))
        .collect();
    let micros_per_event = start.elapsed().as_secs_f64() * 1e6 / events.len() as f64;
    let flagged = scores.iter().map(|&s| s >= options.policy.flag).collect();
    let metrics = state.metrics();
    let hit_rate = state.cache_hit_rate();
    let state = Some((metrics.keys, metrics.memory_bytes, metrics.counters.rebuilds, hit_rate));
    Run { name, state, scores, flagged, micros_per_event }
}

fn reference_run(name: &'static str, events: &[Event], config: reference::Config) -> Run {
    let mut detector = reference::Reference::new(config, 42);
    let texts: Vec<String> = events.iter().map(|e| tokenize(&e.value).into_owned()).collect();
    let start = Instant::now();
    let results: Vec<Option<reference::Scored>> =
        events.iter().zip(&texts).map(|(e, text)| detector.observe(&e.key, text.as_bytes())).collect();
    let micros_per_event = start.elapsed().as_secs_f64() * 1e6 / events.len() as f64;
    let scores = results.iter().map(|r| r.map_or(0.0, |r| r.ncd)).collect();
    let flagged = results.iter().map(|r| r.is_some_and(|r| r.p_value <= 0.05)).collect();
    Run { name, state: None, scores, flagged, micros_per_event }
}

fn row(data_set: &str, run: &Run, labels: &[bool]) -> String {
    let scores = &run.scores[EVALUATE_FROM..];
    let flagged = &run.flagged[EVALUATE_FROM..];
    let labels = &labels[EVALUATE_FROM..];
    let Quality { precision, recall, f1 } = quality(flagged, labels);
    let (best, threshold) = best_f1(scores, labels);
    format!(
        "| {data_set} | {} | {:.3} | {precision:.2} | {recall:.2} | {f1:.2} | {:.2} (≥ {threshold:.3}) | {:.1} |",
        run.name,
        auc(scores, labels),
        best.f1,
        run.micros_per_event
    )
}

fn quality_tables() {
    let config = NoveltyConfig::default();
    let default_options = config.default_options();
    let mut learning = default_options;
    learning.policy.learn_flagged = true;
    let reference_config = reference::Config { baseline: 64, window: 1, permutations: 30, level: 3 };
    println!("| data set | detector | AUC | precision | recall | F1 | best F1 (threshold) | µs / event |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let data_sets: [(&str, Vec<Event>); 3] = [
        ("trace shapes", data::trace_shapes(11, EVENTS)),
        ("log lines", data::log_lines(12, EVENTS)),
        ("answers", data::answers(13, EVENTS)),
    ];
    let mut state_rows = Vec::new();
    for (name, events) in &data_sets {
        let labels: Vec<bool> = events.iter().map(|e| e.anomaly).collect();
        let anomalies = labels[EVALUATE_FROM..].iter().filter(|l| **l).count();
        eprintln!("{name}: {} events evaluated, {anomalies} anomalies", labels.len() - EVALUATE_FROM);
        let by_score = novelty_run("novelty, score ≥ 0.5", events, &default_options);
        if let Some((keys, memory, rebuilds, hits)) = by_score.state {
            state_rows.push(format!(
                "| {name} | {keys} | {:.0} KB | {rebuilds} | {:.0}% |",
                memory as f64 / 1000.0,
                100.0 * hits
            ));
        }
        let by_p_value = Run {
            name: "novelty, p ≤ 0.01",
            state: None,
            flagged: p_value_flags(&by_score.scores, 1024, 0.01),
            scores: by_score.scores.clone(),
            micros_per_event: by_score.micros_per_event,
        };
        for run in [
            by_score,
            by_p_value,
            novelty_run("novelty, learn_flagged, score ≥ 0.5", events, &learning),
            reference_run("windowed NCD + permutations, p ≤ 0.05", events, reference_config),
        ] {
            println!("{}", row(name, &run, &labels));
        }
    }
    println!("\n| data set | keys | state memory | dictionary rebuilds | size-cache hits |");
    println!("|---|---:|---:|---:|---:|");
    for line in state_rows {
        println!("{line}");
    }
}

/// The burst scenario: normal log lines for one key at 10 events/s; a burst
/// of one new template (a quarter of the traffic for 40 s); normal traffic
/// again; then a lasting change (half the traffic in a new format for
/// 30 minutes).
fn burst_table() {
    let mut rng = data::Rng(99);
    let mut events: Vec<(String, Phase)> = Vec::new();
    for _ in 0..1000 {
        events.push((data::normal_log("orders", &mut rng), Phase::Normal));
    }
    for i in 0..400 {
        if i % 4 == 0 {
            let line = format!(
                "2025-03-09T10:00:00Z FATAL [orders] disk quota exceeded on /data shard={} refusing writes",
                rng.below(8)
            );
            events.push((line, Phase::Burst));
        } else {
            events.push((data::normal_log("orders", &mut rng), Phase::Normal));
        }
    }
    for _ in 0..2000 {
        events.push((data::normal_log("orders", &mut rng), Phase::Normal));
    }
    for i in 0..18_000 {
        if i % 2 == 0 {
            let line = format!(
                "{{\"level\":\"info\",\"svc\":\"orders\",\"msg\":\"order accepted\",\"items\":{},\"channel\":\"{}\"}}",
                rng.below(9),
                rng.pick(&["web", "ios", "android"])
            );
            events.push((line, Phase::Change(i / 2)));
        } else {
            events.push((data::normal_log("orders", &mut rng), Phase::Normal));
        }
    }
    println!("| policy | burst flagged | changed format: flagged until | normal flagged |");
    println!("|---|---:|---:|---:|");
    let config = NoveltyConfig::default();
    let policies: [(&str, AdjustPolicy); 4] = [
        ("learn_flagged: true", |o| o.policy.learn_flagged = true),
        ("default: join after hold (1 min)", |_| {}),
        ("join after hold: 5m", |o| o.policy.hold_ns = 300 * SECOND),
        ("never learn flagged", |o| o.policy.hold_ns = i64::MAX),
    ];
    for (name, adjust) in policies {
        let mut options = config.default_options();
        adjust(&mut options);
        let site = CallSiteId { rule: "burst".into(), clause: 0, ordinal: 0, digest: 0 };
        let mut state = NoveltyState::new(config);
        let key = Value::str("orders");
        let (mut burst, mut burst_flagged, mut normal, mut normal_flagged) = (0, 0, 0, 0);
        let mut last_flagged_change: Option<usize> = None;
        for (i, (line, phase)) in events.iter().enumerate() {
            let value = Value::str(line);
            let call = Call { site: &site, key: &key, value: &value, options: &options, time: i as i64 * SECOND / 10 };
            let Some(score) = state.observe(&call) else { continue };
            let flagged = score >= options.policy.flag;
            match phase {
                Phase::Normal => {
                    normal += 1;
                    normal_flagged += usize::from(flagged);
                }
                Phase::Burst => {
                    burst += 1;
                    burst_flagged += usize::from(flagged);
                }
                Phase::Change(n) if flagged => last_flagged_change = Some(*n),
                Phase::Change(_) => {}
            }
        }
        let change = match last_flagged_change {
            Some(n) if n + 1 >= 9000 => "still flagged after 30 min".to_string(),
            Some(n) => format!("event {} ({:.0} s)", n + 1, (n + 1) as f64 * 0.2),
            None => "never flagged".to_string(),
        };
        println!(
            "| {name} | {burst_flagged} / {burst} | {change} | {:.2}% |",
            100.0 * normal_flagged as f64 / normal.max(1) as f64
        );
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Normal,
    Burst,
    /// The n-th event of the changed format.
    Change(usize),
}

fn main() {
    if std::env::args().any(|a| a == "--sizes") {
        for (name, events) in [
            ("log lines", data::log_lines(1, 4000)),
            ("trace shapes", data::trace_shapes(2, 4000)),
            ("answers", data::answers(3, 4000)),
        ] {
            let total: usize = events.iter().map(|e| e.value.len()).sum();
            println!("{name}: mean {} bytes (the bench's streams)", total / events.len());
        }
        return;
    }
    println!("## Detection quality\n");
    quality_tables();
    println!("\n## Burst policy\n");
    burst_table();
}
