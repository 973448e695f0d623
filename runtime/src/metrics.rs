//! Prometheus metrics of the server, served as text on the admin port's
//! `/metrics`. One [`Metrics`] is shared (in an `Arc`) by every part of the
//! server; each part updates its own metrics and reads none.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::packs::PackRegistry;

mod process;
pub use process::THREAD_KINDS;
pub(crate) use process::own_cpu_seconds;

/// A receiver's name: `grpc` or `http`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabel {
    pub receiver: &'static str,
}

/// Spans refused, by receiver and why (`throttled`, `malformed`,
/// `unauthenticated`, `too_large`, `invalid_span`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub receiver: &'static str,
    pub reason: &'static str,
}

/// Why a trace completed: `idle`, `age`, `size`, `evicted` (over the traces
/// or bytes limit), `flush` (asked for through the admin API), `shutdown`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CompletionLabel {
    pub reason: &'static str,
}

/// A rule, as `pack/rule`, and its tenant (empty for the default tenant).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub tenant: String,
    pub rule: String,
}

/// A rule's violations: the rule's labels and its severity (`info`, `low`,
/// `medium`, `high`, `critical`), fixed per rule, so that alerts can route
/// by it without adding series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub tenant: String,
    pub rule: String,
    pub severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExporterLabel {
    pub exporter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub spans_received: Family<ReceiverLabel, Counter>,
    pub spans_refused: Family<RefusedLabels, Counter>,
    pub requests_malformed: Family<ReceiverLabel, Counter>,
    /// Requests refused as a whole, by receiver and why: `unauthenticated`,
    /// `too_large`, `malformed`, `unsupported` (media type or encoding),
    /// `bad_tenant`, `throttled`, `unavailable`. Their spans are counted in
    /// `spans_refused` too when the request could be read.
    pub requests_refused: Family<RefusedLabels, Counter>,
    pub bytes_held: Gauge,
    pub traces_open: Gauge,
    pub traces_completed: Family<CompletionLabel, Counter>,
    /// Spans of the traces completed (and evaluated), each span once: a
    /// continuation counts only its late spans. Its rate is the server's
    /// throughput, whatever the idle timeout delays.
    pub spans_completed: Counter,
    /// Traces completed early because a limit (traces or bytes held) was reached.
    pub traces_evicted: Counter,
    /// Spans that arrived for a trace already decided (evaluated as a continuation).
    pub late_spans: Counter,
    /// Rule evaluations (one rule on one trace).
    pub evaluations: Counter,
    /// Evaluations that ran as native code.
    pub evaluations_native: Counter,
    pub violations: Family<ViolationLabels, Counter>,
    /// Violations found past a rule's cap in a trace, and not reported.
    pub violations_suppressed: Family<ViolationLabels, Counter>,
    pub fuel_exhaustions: Family<RuleLabels, Counter>,
    /// Each rule's runs and time, read from the current packs at scrape time.
    rule_costs: Arc<RuleCosts>,
    pub rules_loaded: Family<TenantLabel, Gauge>,
    pub rules_native: Family<TenantLabel, Gauge>,
    pub reloads: Family<ResultLabel, Counter>,
    pub export_queue_depth: Family<ExporterLabel, Gauge>,
    pub export_queue_bytes: Family<ExporterLabel, Gauge>,
    pub exported: Family<ExporterLabel, Counter>,
    pub export_failures: Family<ExporterLabel, Counter>,
    /// Violations dropped because a queue was over its size limit.
    pub export_dropped: Family<ExporterLabel, Counter>,
    /// From a trace's completion to its violations leaving through an exporter.
    pub completion_to_export_seconds: Histogram,
    /// Bytes held by compression-scoring baselines.
    pub novelty_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        // Our metrics under `betrace_`; the standard process metrics bare.
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessMetrics));
        let registry = root.sub_registry_with_prefix("betrace");
        registry.register_collector(Box::new(process::ThreadMetrics::default()));
        let metrics = Metrics {
            spans_received: Family::default(),
            spans_refused: Family::default(),
            requests_malformed: Family::default(),
            requests_refused: Family::default(),
            bytes_held: Gauge::default(),
            traces_open: Gauge::default(),
            traces_completed: Family::default(),
            spans_completed: Counter::default(),
            traces_evicted: Counter::default(),
            late_spans: Counter::default(),
            evaluations: Counter::default(),
            evaluations_native: Counter::default(),
            violations: Family::default(),
            violations_suppressed: Family::default(),
            fuel_exhaustions: Family::default(),
            rule_costs: Arc::new(RuleCosts::default()),
            rules_loaded: Family::default(),
            rules_native: Family::default(),
            reloads: Family::default(),
            export_queue_depth: Family::default(),
            export_queue_bytes: Family::default(),
            exported: Family::default(),
            export_failures: Family::default(),
            export_dropped: Family::default(),
            completion_to_export_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            novelty_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register("spans_received", "Spans accepted by the receivers", m.spans_received.clone());
        registry.register("spans_refused", "Spans refused, by reason", m.spans_refused.clone());
        registry.register(
            "requests_malformed",
            "Requests whose body could not be decoded",
            m.requests_malformed.clone(),
        );
        registry.register(
            "requests_refused",
            "Requests refused as a whole, by receiver and reason",
            m.requests_refused.clone(),
        );
        registry.register(
            "bytes_held",
            "Bytes of spans in memory: received and not yet evaluated, plus decided traces kept for late spans",
            m.bytes_held.clone(),
        );
        registry.register("traces_open", "Traces being assembled", m.traces_open.clone());
        registry.register("traces_completed", "Traces completed, by reason", m.traces_completed.clone());
        registry.register(
            "spans_completed",
            "Spans of completed (evaluated) traces; late spans count in their continuation",
            m.spans_completed.clone(),
        );
        registry.register("traces_evicted", "Traces completed early to stay under a limit", m.traces_evicted.clone());
        registry.register("late_spans", "Spans evaluated as the continuation of a decided trace", m.late_spans.clone());
        registry.register("rule_evaluations", "Evaluations of one rule on one trace", m.evaluations.clone());
        registry.register("rule_evaluations_native", "Evaluations run as native code", m.evaluations_native.clone());
        registry.register("violations", "Violations reported, by rule and severity", m.violations.clone());
        registry.register(
            "violations_suppressed",
            "Violations found past a rule's cap in a trace (assembly.max_violations_per_rule) and not reported, by rule and severity",
            m.violations_suppressed.clone(),
        );
        registry.register("fuel_exhaustions", "Evaluations that ran out of fuel, by rule", m.fuel_exhaustions.clone());
        registry.register_collector(Box::new(m.rule_costs.clone()));
        registry.register("rules_loaded", "Rules loaded, by tenant", m.rules_loaded.clone());
        registry.register("rules_native", "Rules running as native code, by tenant", m.rules_native.clone());
        registry.register("reloads", "Pack reloads, by result", m.reloads.clone());
        registry.register("export_queue_depth", "Violations waiting in an export queue", m.export_queue_depth.clone());
        registry.register("export_queue_bytes", "Bytes of an export queue on disk", m.export_queue_bytes.clone());
        registry.register("exported", "Violations delivered, by exporter", m.exported.clone());
        registry.register("export_failures", "Failed export attempts, by exporter", m.export_failures.clone());
        registry.register("export_dropped", "Violations dropped from a full queue", m.export_dropped.clone());
        registry.register(
            "completion_to_export_seconds",
            "From a trace's completion to its violations' export",
            m.completion_to_export_seconds.clone(),
        );
        registry.register("novelty_bytes", "Bytes held by compression-scoring baselines", m.novelty_bytes.clone());
        Metrics { registry: root, ..metrics }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// Reports the per-rule costs of `packs` (whichever packs are current at
    /// each scrape). Rule costs restart from zero when a reload replaces a
    /// pack, as a counter reset.
    pub fn report_rule_costs(&self, packs: Arc<PackRegistry>) {
        let _ = self.rule_costs.packs.set(packs);
    }

    pub fn refused(&self, receiver: &'static str, reason: &'static str, spans: u64) {
        self.spans_refused.get_or_create(&RefusedLabels { receiver, reason }).inc_by(spans);
    }
}

/// `betrace_rule_runs_total` and `betrace_rule_seconds_total` per tenant
/// and rule, read from the rules' own atomic counters when scraped: an
/// evaluation then costs two atomic adds, not a labelled lookup.
#[derive(Debug, Default)]
struct RuleCosts {
    packs: OnceLock<Arc<PackRegistry>>,
}

impl Collector for RuleCosts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(registry) = self.packs.get() else { return Ok(()) };
        let packs = registry.current();
        let rules = || {
            packs.all().flat_map(|(tenant, tenant_packs)| {
                tenant_packs.engines.iter().flat_map(move |engine| {
                    engine.rules.iter().enumerate().map(move |(index, rule)| {
                        (RuleLabels { tenant: tenant.to_string(), rule: engine.rule_id(index).to_string() }, rule)
                    })
                })
            })
        };
        let mut runs = encoder.encode_descriptor("rule_runs", "Evaluations of each rule", None, MetricType::Counter)?;
        for (labels, rule) in rules() {
            ConstCounter::new(rule.cost.runs()).encode(runs.encode_family(&labels)?)?;
        }
        let mut seconds = encoder.encode_descriptor(
            "rule_seconds",
            "Time spent evaluating each rule (estimated: one run in 16 is timed)",
            None,
            MetricType::Counter,
        )?;
        for (labels, rule) in rules() {
            ConstCounter::new(rule.cost.seconds()).encode(seconds.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_the_betrace_prefix() {
        let metrics = Metrics::new();
        metrics.spans_received.get_or_create(&ReceiverLabel { receiver: "grpc" }).inc_by(3);
        metrics.refused("http", "throttled", 2);
        let text = metrics.encode();
        assert!(text.contains("betrace_spans_received_total{receiver=\"grpc\"} 3"), "{text}");
        assert!(text.contains("betrace_spans_refused_total{receiver=\"http\",reason=\"throttled\"} 2"), "{text}");
        assert!(text.contains("# TYPE betrace_traces_open gauge"), "{text}");
        if cfg!(target_os = "linux") {
            assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
            assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
            for kind in THREAD_KINDS {
                assert!(text.contains(&format!("\nbetrace_thread_cpu_seconds_total{{threads=\"{kind}\"}} ")), "{text}");
            }
        }
    }

    /// The example alerting rules and dashboard (`examples/alerts`,
    /// `examples/grafana`) name only series the server exposes, and only
    /// labels those series carry.
    #[test]
    fn the_example_alerts_and_dashboard_name_real_series_and_labels() {
        let metrics = Metrics::new();
        metrics.report_rule_costs(Arc::new(PackRegistry::new(packs_of_one_rule())));
        let exporter = || ExporterLabel { exporter: "otlp_grpc".into() };
        let violation = || ViolationLabels { tenant: String::new(), rule: "p/r".into(), severity: "high" };
        metrics.spans_received.get_or_create(&ReceiverLabel { receiver: "grpc" }).inc();
        metrics.refused("grpc", "throttled", 1);
        metrics.requests_malformed.get_or_create(&ReceiverLabel { receiver: "grpc" }).inc();
        metrics.requests_refused.get_or_create(&RefusedLabels { receiver: "grpc", reason: "malformed" }).inc();
        metrics.traces_completed.get_or_create(&CompletionLabel { reason: "idle" }).inc();
        metrics.violations.get_or_create(&violation()).inc();
        metrics.violations_suppressed.get_or_create(&violation()).inc();
        metrics.fuel_exhaustions.get_or_create(&RuleLabels { tenant: String::new(), rule: "p/r".into() }).inc();
        metrics.rules_loaded.get_or_create(&TenantLabel { tenant: String::new() }).set(1);
        metrics.rules_native.get_or_create(&TenantLabel { tenant: String::new() }).set(1);
        metrics.reloads.get_or_create(&ResultLabel { result: "failed" }).inc();
        metrics.export_queue_depth.get_or_create(&exporter()).set(1);
        metrics.export_queue_bytes.get_or_create(&exporter()).set(1);
        metrics.exported.get_or_create(&exporter()).inc();
        metrics.export_failures.get_or_create(&exporter()).inc();
        metrics.export_dropped.get_or_create(&exporter()).inc();
        let scrape = crate::loadgen::prometheus::Scrape::parse(&metrics.encode()).expect("the metrics parse");
        // Each series name, with the label names its samples carry.
        let mut series: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
        for sample in &scrape.samples {
            series.entry(&sample.name).or_default().extend(sample.labels.iter().map(|(key, _)| key.as_str()));
        }
        let examples = [
            ("alerts", include_str!("../../examples/alerts/betrace.rules.yml")),
            ("dashboard", include_str!("../../examples/grafana/betrace-dashboard.json")),
        ];
        let used = regex::Regex::new(r#"(betrace_[a-z_]+)(?:\{([^}]*)\})?"#).unwrap();
        // A label matcher; in JSON the value's quote is escaped.
        let matcher = regex::Regex::new(r#"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\\?""#).unwrap();
        for (example, text) in examples {
            let mut checked = 0;
            for found in used.captures_iter(text) {
                let name = &found[1];
                let Some(keys) = series.get(name) else { panic!("the {example} name `{name}`, not a series") };
                for key in found.get(2).into_iter().flat_map(|m| matcher.captures_iter(m.as_str())) {
                    assert!(keys.contains(&&key[1]), "the {example}: `{name}` has no label `{}`", &key[1]);
                }
                checked += 1;
            }
            assert!(checked >= 10, "only {checked} series found in the {example}");
        }
    }

    /// The default tenant's packs: one pack of one rule, `p/slow`.
    fn packs_of_one_rule() -> crate::packs::Packs {
        use crate::packs::{Packs, TenantPacks};
        let source = r#"rule slow { severity: low when { true } never { name = "x" } }"#;
        let (programs, _) = betrace_compiler::compile_file(source, &betrace_compiler::CheckConfig::default());
        let pack = betrace_vm::PackInfo { name: "p".into(), version: "1".into() };
        let engine = betrace_vm::Engine::new(pack, programs, betrace_vm::EvalConfig::default()).unwrap();
        Packs { default: Arc::new(TenantPacks { engines: vec![Arc::new(engine)] }), ..Packs::default() }
    }

    #[test]
    fn rule_costs_are_read_from_the_current_packs() {
        let packs = packs_of_one_rule();
        let rule = &packs.default.engines[0].rules[0];
        rule.cost.record(1_500_000_000);
        rule.cost.record(500_000_000);
        let metrics = Metrics::new();
        metrics.report_rule_costs(Arc::new(PackRegistry::new(packs)));
        let text = metrics.encode();
        assert!(text.contains("betrace_rule_runs_total{tenant=\"\",rule=\"p/slow\"} 2"), "{text}");
        assert!(text.contains("betrace_rule_seconds_total{tenant=\"\",rule=\"p/slow\"} 2.0"), "{text}");
    }
}
