//! `betrace eval --rules DIR|FILE|PACK [FILE…]`: evaluate rules over trace
//! files offline. Reads OTLP (protobuf or JSON), Zipkin v2 and Jaeger JSON
//! (`-` or no file: standard input), groups spans into traces (ordered by
//! their first span's start), runs the pack on each, and prints violations
//! as a readable list, JSON lines, or OTLP/JSON spans.
//!
//! Exit codes: 0 no violations, 1 violations found, 2 could not run (usage,
//! unreadable or malformed input, rules that do not compile). Rules that run
//! out of fuel are reported on standard error and do not change the code.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use betrace_runtime::export::{ExportConfig, request_to_json, violations_request};
use betrace_vm::trace::{SpanRecord, Trace, group_by_trace};
use betrace_vm::violation::hex;
use betrace_vm::{Engine, EngineKind, EvalConfig, PackInfo, RuleErrorKind, Violation, ViolationJson};

use crate::exit;
use crate::packs;

use super::verify::signing_key;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The rules: a pack directory (with or without pack.toml), a `.btr` file,
    /// or a compiled `.btpack`.
    #[arg(long, value_name = "DIR|FILE|PACK")]
    rules: PathBuf,
    /// Trace files: OTLP protobuf or JSON, Zipkin v2 JSON, Jaeger JSON. `-` or
    /// none reads standard input.
    files: Vec<PathBuf>,
    /// How to print violations.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// File holding the HMAC key that signs violations (surrounding white
    /// space is ignored); else $BETRACE_SIGNING_KEY; else violations are unsigned.
    #[arg(long, value_name = "FILE")]
    signing_key_file: Option<PathBuf>,
    /// Work one rule may spend on one trace (instructions plus spans visited).
    #[arg(long, value_name = "N", default_value_t = EvalConfig::default().fuel)]
    fuel: u64,
    /// The engine: `jit` (native code, the default on x86_64 and aarch64) or
    /// `interp` (the bytecode interpreter). Both give the same violations.
    #[arg(long, value_name = "jit|interp", default_value_t = EngineKind::host_default())]
    engine: EngineKind,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// A readable list and a summary.
    Human,
    /// One JSON object per violation per line (signed when a key is set).
    Json,
    /// OTLP/JSON `ExportTraceServiceRequest`s of violation spans, one per line.
    OtlpJson,
}

/// Show a progress bar from this many spans on (and only on a terminal).
const PROGRESS_FROM_SPANS: usize = 200_000;
/// Show a spinner while reading inputs of this many bytes or more.
const PROGRESS_FROM_BYTES: usize = 32 << 20;
/// Violations per OTLP/JSON request line.
const SPANS_PER_REQUEST: usize = 1_000;

/// What evaluating every trace produced.
#[derive(Default)]
struct Results {
    traces: usize,
    spans: usize,
    traces_with_violations: usize,
    violations: Vec<Violation>,
    /// Rule id → traces on which it ran out of fuel.
    out_of_fuel: BTreeMap<String, usize>,
}

pub fn run(args: &EvalArgs) -> u8 {
    match evaluate(args) {
        Ok(code) => code,
        Err(code) => code,
    }
}

fn evaluate(args: &EvalArgs) -> Result<u8, u8> {
    let key = signing_key(args.signing_key_file.as_deref()).map_err(usage)?;
    let pack = packs::load_rules(&args.rules)?;
    let info = PackInfo { name: pack.manifest.name.clone(), version: pack.manifest.version.clone() };
    let rule_count = pack.rules.iter().filter(|r| r.enabled).count();
    let config = EvalConfig { fuel: args.fuel, ..EvalConfig::default() };
    let engine = Engine::with_kind(info, pack.rules, config, args.engine)
        .map_err(|e| usage(format!("{}: {e}", args.rules.display())))?;
    let traces = group_by_trace(read_inputs(&args.files)?);
    let results = run_engine(&engine, &traces);

    let mut stdout = std::io::stdout().lock();
    let written = match args.format {
        Format::Human => write_human(&mut stdout, &results, &engine.pack, rule_count),
        Format::Json => write_json(&mut stdout, &results.violations, key.as_deref()),
        Format::OtlpJson => write_otlp_json(&mut stdout, &results.violations, key),
    };
    written.map_err(|e| usage(format!("cannot write the output: {e}")))?;
    if args.format != Format::Human {
        eprintln!("{}", summary(&results, &engine.pack, rule_count));
    }
    for (rule, traces) in &results.out_of_fuel {
        eprintln!(
            "warning: rule `{rule}` ran out of fuel on {traces} trace{} (--fuel {}); its findings there may be incomplete",
            if *traces == 1 { "" } else { "s" },
            args.fuel
        );
    }
    Ok(if results.violations.is_empty() { exit::OK } else { exit::FINDINGS })
}

fn usage(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    exit::FAILURE
}

/// Reads every input (standard input for `-` or none) in any trace format.
fn read_inputs(files: &[PathBuf]) -> Result<Vec<SpanRecord>, u8> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    if files.iter().any(|f| f.as_os_str() == "-") && std::io::stdin().is_terminal() {
        eprintln!("reading traces from standard input (end with Ctrl-D)");
    }
    let mut records = Vec::new();
    for file in files {
        let (name, bytes) = if file.as_os_str() == "-" {
            let mut buffer = Vec::new();
            std::io::stdin().read_to_end(&mut buffer).map_err(|e| usage(format!("cannot read standard input: {e}")))?;
            ("<stdin>".to_string(), buffer)
        } else {
            let bytes = std::fs::read(file).map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
            (file.display().to_string(), bytes)
        };
        let spinner = reading_spinner(&name, bytes.len());
        let read = betrace_runtime::formats::read_traces(&bytes);
        spinner.finish_and_clear();
        records.extend(read.map_err(|e| usage(format!("{name}: {e}")))?);
    }
    Ok(records)
}

/// A spinner while a large input is parsed (only on a terminal).
fn reading_spinner(name: &str, bytes: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() || bytes < PROGRESS_FROM_BYTES {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("reading {name} ({} MiB)", bytes >> 20));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

fn run_engine(engine: &Engine, traces: &[Trace]) -> Results {
    let mut results =
        Results { traces: traces.len(), spans: traces.iter().map(Trace::len).sum(), ..Results::default() };
    let progress = if std::io::stderr().is_terminal() && results.spans >= PROGRESS_FROM_SPANS {
        let bar = indicatif::ProgressBar::new(traces.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} traces, {elapsed} ({eta} left)")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    for trace in traces {
        let report = engine.evaluate(trace);
        if !report.violations.is_empty() {
            results.traces_with_violations += 1;
        }
        results.violations.extend(report.violations);
        for error in report.errors {
            match error.kind {
                RuleErrorKind::OutOfFuel => *results.out_of_fuel.entry(error.rule_id).or_default() += 1,
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    results
}

fn write_human(out: &mut impl Write, results: &Results, pack: &PackInfo, rules: usize) -> std::io::Result<()> {
    let width = results.violations.iter().map(|v| v.severity.word().len()).max().unwrap_or(0);
    for violation in &results.violations {
        let span = match (violation.bound_span, violation.parent_span) {
            (Some(span), _) => format!("span {}", hex(&span)),
            (None, Some(root)) => format!("root {}", hex(&root)),
            (None, None) => "no span".to_string(),
        };
        let witnesses = match violation.witnesses.len() {
            0 => String::new(),
            1 => ", 1 witness span".to_string(),
            n => format!(", {n} witness spans"),
        };
        writeln!(out, "{:<width$}  {}  {}", violation.severity.word(), violation.rule_id, violation.message)?;
        writeln!(out, "{:<width$}  trace {}  {span}{witnesses}", "", hex(&violation.trace_id))?;
        for evidence in &violation.novelty {
            writeln!(out, "{:<width$}  {} by {}", "", evidence.evidence.summary(), evidence.key)?;
        }
    }
    if !results.violations.is_empty() {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary(results, pack, rules))
}

/// `3 violations (1 critical, 2 high) in 2 of 7 traces (1,041 spans); pack demo 1.0.0, 12 rules`.
fn summary(results: &Results, pack: &PackInfo, rules: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut counts: BTreeMap<std::cmp::Reverse<_>, usize> = BTreeMap::new();
    for violation in &results.violations {
        *counts.entry(std::cmp::Reverse(violation.severity)).or_default() += 1;
    }
    let by_severity = if counts.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {}", s.0.word())).collect();
        format!(" ({})", parts.join(", "))
    };
    format!(
        "{}{by_severity} in {} of {} ({}); pack {} {}, {}",
        plural(results.violations.len(), "violation"),
        results.traces_with_violations,
        plural(results.traces, "trace"),
        plural(results.spans, "span"),
        pack.name,
        pack.version,
        plural(rules, "rule"),
    )
}

fn write_json(out: &mut impl Write, violations: &[Violation], key: Option<&[u8]>) -> std::io::Result<()> {
    for violation in violations {
        let json = ViolationJson::new(violation, key.map(|key| violation.sign(key)));
        serde_json::to_writer(&mut *out, &json)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One request per line (an empty request when there are no violations).
fn write_otlp_json(out: &mut impl Write, violations: &[Violation], key: Option<Vec<u8>>) -> std::io::Result<()> {
    let config =
        ExportConfig { instance_id: betrace_runtime::export::dispatch::default_instance_id(), signing_key: key };
    let chunks: Vec<&[Violation]> =
        if violations.is_empty() { vec![&[]] } else { violations.chunks(SPANS_PER_REQUEST).collect() };
    for chunk in chunks {
        serde_json::to_writer(&mut *out, &request_to_json(&violations_request(chunk, &config)))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
