//! `betrace serve`'s configuration: every knob, with defaults that work with
//! no file at all (loopback receivers, the standard pack, violations to stdout
//! and a file, metrics on the admin port).
//!
//! Precedence, lowest first: defaults, the TOML file (`--config`), environment
//! variables, command-line flags. Every key has an environment variable named
//! after its path: `assembly.idle_timeout` is `BETRACE_ASSEMBLY_IDLE_TIMEOUT`
//! ([`apply_env`]). Durations are written as `10s`, `5m`, `250ms`; sizes in
//! bytes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration. Unknown keys in a file are errors (a typo must not
/// silently leave a default in place).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    pub receivers: ReceiversConfig,
    pub admin: AdminConfig,
    pub rules: RulesConfig,
    pub assembly: AssemblyConfig,
    pub export: ExportConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiversConfig {
    /// OTLP/gRPC listen address; empty switches the receiver off.
    pub otlp_grpc: String,
    /// OTLP/HTTP listen address (`POST /v1/traces`); empty switches it off.
    pub otlp_http: String,
    /// Largest request accepted, in bytes, after decompression.
    pub max_request_bytes: usize,
    /// When set, requests must carry `Authorization: Bearer <token>`.
    #[serde(with = "empty_is_none")]
    pub bearer_token: Option<String>,
    /// PEM certificate chain and private key: both set turns TLS on for both receivers.
    #[serde(with = "empty_is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(with = "empty_is_none")]
    pub tls_key: Option<PathBuf>,
    /// How long a throttled client is told to wait before retrying.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Threads that receive, decompress and decode requests (and run the
    /// exporters and the admin port); 0: one per core. With the shards
    /// (`assembly.shards`) they share the cores: see docs/performance.md
    /// for how the split shows in throughput and CPU a span.
    pub io_threads: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Metrics, health and the admin API; empty switches them off.
    pub addr: String,
    /// When set, the admin API (not /metrics or health) needs this bearer token.
    #[serde(with = "empty_is_none")]
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Packs for spans without a tenant (pack directories, `.btr` files or
    /// `.btpack` files). Empty: the standard pack shipped with BeTrace.
    pub paths: Vec<PathBuf>,
    /// A directory with one sub-directory of packs per tenant
    /// (`X-Scope-OrgID`); a tenant without one gets the packs of `paths`.
    #[serde(with = "empty_is_none")]
    pub tenants_dir: Option<PathBuf>,
    /// Reload when files under the rule paths change.
    pub watch: bool,
    /// `jit` or `interp`.
    pub engine: String,
    /// Work one rule may spend on one trace.
    pub fuel: u64,
    /// Where `novelty` baselines are saved on stop and restored on start;
    /// empty: they start afresh each time.
    #[serde(with = "empty_is_none")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssemblyConfig {
    /// Shards (threads) assembling and evaluating traces; 0: one per core.
    pub shards: usize,
    /// A trace is complete once no span has arrived for this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// … or once its first span arrived this long ago.
    #[serde(with = "humantime_serde")]
    pub max_trace_age: Duration,
    /// … or once it holds this many spans.
    pub max_spans_per_trace: usize,
    /// A rule reports at most this many violations in one trace; the rest
    /// are counted (`betrace_violations_suppressed_total`) and the last one
    /// reported says how many (`betrace.violation.suppressed`). 0: no cap.
    pub max_violations_per_rule: u32,
    /// Traces held at once (over all shards); past it the oldest completes early.
    pub max_traces: usize,
    /// Bytes of spans held at once (received and not yet evaluated); past it
    /// receivers answer with throttling replies.
    pub max_bytes: usize,
    /// A decided trace is remembered this long, so late spans are evaluated
    /// as a continuation of it rather than as a new partial trace.
    #[serde(with = "humantime_serde")]
    pub late_span_window: Duration,
    /// Evaluate rules whose verdict cannot change (a `never` that holds) as
    /// spans arrive, not only when the trace completes.
    pub early_firing: bool,
    /// … on traces open at least this long (then at most every 500 ms while
    /// spans arrive): traces that complete sooner are evaluated once.
    #[serde(with = "humantime_serde")]
    pub early_after: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Violations as JSON lines on standard output.
    pub stdout: bool,
    /// Violations as JSON lines appended to this file.
    #[serde(with = "empty_is_none")]
    pub file: Option<PathBuf>,
    /// OTLP/gRPC endpoint for violation spans (`http://tempo:4317`).
    #[serde(with = "empty_is_none")]
    pub otlp_grpc: Option<String>,
    /// OTLP/HTTP endpoint for violation spans (`http://tempo:4318/v1/traces`).
    #[serde(with = "empty_is_none")]
    pub otlp_http: Option<String>,
    /// Extra headers on OTLP export requests (`X-Scope-OrgID`, `Authorization`).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Where the durable export queues live.
    pub queue_dir: PathBuf,
    /// Largest queue on disk per exporter, in bytes; past it the oldest
    /// violations are dropped and counted.
    pub queue_max_bytes: u64,
    /// Violations per export request.
    pub batch_size: usize,
    /// Export requests out at once per exporter (the Collector's
    /// `sending_queue.num_consumers`): a distant downstream's round trips
    /// overlap instead of adding up.
    pub max_in_flight: usize,
    /// Retry backoff while a downstream is away: doubles from min to max.
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Per-request timeout of network exporters.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How network exporters compress requests, as the Collector's
    /// `compression` setting: `gzip` (every OTLP receiver takes it), `zstd`
    /// (the Collector, Tempo and Jaeger take it; several times cheaper to
    /// make), or `none`.
    pub compression: ExportCompression,
    /// File with the HMAC key that signs violations (`betrace.signature`).
    #[serde(with = "empty_is_none")]
    pub signing_key_file: Option<PathBuf>,
    /// `service.instance.id` of violation spans; empty: host name and pid.
    pub instance_id: String,
}

impl Default for ReceiversConfig {
    fn default() -> Self {
        ReceiversConfig {
            otlp_grpc: "127.0.0.1:4317".into(),
            otlp_http: "127.0.0.1:4318".into(),
            max_request_bytes: 16 << 20,
            bearer_token: None,
            tls_cert: None,
            tls_key: None,
            retry_after: Duration::from_secs(1),
            io_threads: 0,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { addr: "127.0.0.1:9464".into(), token: None }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            paths: Vec::new(),
            tenants_dir: None,
            watch: true,
            engine: betrace_vm::EngineKind::host_default().name().into(),
            fuel: betrace_vm::EvalConfig::default().fuel,
            state_dir: Some(PathBuf::from("betrace-data/state")),
        }
    }
}

impl Default for AssemblyConfig {
    fn default() -> Self {
        AssemblyConfig {
            shards: 0,
            idle_timeout: Duration::from_secs(10),
            max_trace_age: Duration::from_secs(300),
            max_spans_per_trace: 10_000,
            max_violations_per_rule: 100,
            max_traces: 100_000,
            max_bytes: 512 << 20,
            late_span_window: Duration::from_secs(120),
            early_firing: true,
            early_after: Duration::from_secs(5),
        }
    }
}

/// See [`ExportConfig::compression`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportCompression {
    Gzip,
    Zstd,
    None,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            stdout: true,
            file: Some(PathBuf::from("betrace-violations.jsonl")),
            otlp_grpc: None,
            otlp_http: None,
            headers: Default::default(),
            queue_dir: PathBuf::from("betrace-data/queue"),
            queue_max_bytes: 1 << 30,
            batch_size: 512,
            max_in_flight: 4,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            compression: ExportCompression::Gzip,
            signing_key_file: None,
            instance_id: String::new(),
        }
    }
}

impl ServeConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<ServeConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The configuration as TOML (`betrace serve --print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration serializes")
    }

    /// Checks what types cannot: addresses parse, TLS has both halves, the
    /// engine is known.
    pub fn validate(&self) -> Result<(), String> {
        for (key, addr) in [
            ("receivers.otlp_grpc", &self.receivers.otlp_grpc),
            ("receivers.otlp_http", &self.receivers.otlp_http),
            ("admin.addr", &self.admin.addr),
        ] {
            if !addr.is_empty() && addr.parse::<SocketAddr>().is_err() {
                return Err(format!("{key}: `{addr}` is not an address like 127.0.0.1:4317"));
            }
        }
        if self.receivers.tls_cert.is_some() != self.receivers.tls_key.is_some() {
            return Err("receivers.tls_cert and receivers.tls_key go together: set both or neither".into());
        }
        self.rules.engine.parse::<betrace_vm::EngineKind>().map_err(|e| format!("rules.engine: {e}"))?;
        if self.assembly.max_spans_per_trace == 0 || self.assembly.max_traces == 0 {
            return Err("assembly.max_spans_per_trace and assembly.max_traces must be above 0".into());
        }
        if self.export.batch_size == 0 {
            return Err("export.batch_size must be above 0".into());
        }
        if self.export.max_in_flight == 0 {
            return Err("export.max_in_flight must be above 0".into());
        }
        Ok(())
    }

    /// Shards to run: the configured number, or one per core.
    pub fn shard_count(&self) -> usize {
        match self.assembly.shards {
            0 => cores(),
            n => n,
        }
    }

    /// Receiving threads to run: the configured number, or one per core.
    pub fn io_thread_count(&self) -> usize {
        match self.receivers.io_threads {
            0 => cores(),
            n => n,
        }
    }
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The environment variable of a key path (`assembly.idle_timeout` →
/// `BETRACE_ASSEMBLY_IDLE_TIMEOUT`).
pub fn env_name(path: &str) -> String {
    format!("BETRACE_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// Overrides keys from `BETRACE_…` variables (`vars` is the environment; a
/// parameter so tests need not change the process's). Values are read as the
/// key's type: numbers, `true`/`false`, durations, comma-separated lists;
/// an empty value switches an optional setting off.
pub fn apply_env(
    config: &ServeConfig,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<ServeConfig, String> {
    let mut tree = toml::Value::try_from(config).map_err(|e| e.to_string())?;
    let known = leaf_paths(&ServeConfig::default());
    for (name, value) in vars {
        if !name.starts_with("BETRACE_") {
            continue;
        }
        let Some((path, sample)) = known.iter().find(|(path, _)| env_name(path) == name) else {
            continue;
        };
        let parsed = parse_like(sample, &value).map_err(|e| format!("{name}: {e}"))?;
        set_path(&mut tree, path, parsed);
    }
    tree.try_into().map_err(|e: toml::de::Error| e.to_string())
}

/// Every key of the configuration, with a sample value of its type (every
/// key serializes: optional ones as `""`).
fn leaf_paths(config: &ServeConfig) -> Vec<(String, toml::Value)> {
    let tree = toml::Value::try_from(config).expect("the configuration serializes");
    let mut out = Vec::new();
    if let toml::Value::Table(sections) = tree {
        for (section, keys) in sections {
            if let toml::Value::Table(keys) = keys {
                for (key, value) in keys {
                    out.push((format!("{section}.{key}"), value));
                }
            }
        }
    }
    out
}

fn parse_like(sample: &toml::Value, text: &str) -> Result<toml::Value, String> {
    Ok(match sample {
        toml::Value::Integer(_) => {
            toml::Value::Integer(text.trim().parse().map_err(|_| format!("`{text}` is not a whole number"))?)
        }
        toml::Value::Boolean(_) => toml::Value::Boolean(match text.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(format!("`{text}` is not true or false")),
        }),
        toml::Value::Array(_) => toml::Value::Array(
            text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
        ),
        toml::Value::Table(_) => {
            // `export.headers`: `key=value,key=value`.
            let mut table = toml::map::Map::new();
            for pair in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (key, value) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not key=value"))?;
                table.insert(key.trim().into(), toml::Value::String(value.trim().into()));
            }
            toml::Value::Table(table)
        }
        _ => toml::Value::String(text.into()),
    })
}

fn set_path(tree: &mut toml::Value, path: &str, value: toml::Value) {
    let (section, key) = path.split_once('.').expect("keys are section.key");
    let toml::Value::Table(sections) = tree else { return };
    let section = sections.entry(section).or_insert_with(|| toml::Value::Table(Default::default()));
    if let toml::Value::Table(keys) = section {
        keys.insert(key.into(), value);
    }
}

/// Optional settings are written `""` when off, in files and environment
/// alike (TOML has no null, and a missing key means "the default", which for
/// `export.file` is on).
mod empty_is_none {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: AsRef<std::ffi::OsStr>, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = value.as_ref().map(|v| v.as_ref().to_string_lossy().into_owned()).unwrap_or_default();
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, T: From<String>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok((!text.is_empty()).then(|| T::from(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// docs/serve.md shows a configuration file with every key: it must
    /// parse (unknown keys are errors) and leave none out (commented out
    /// counts: it shows the key).
    #[test]
    fn the_documented_configuration_parses_and_names_every_key() {
        let doc = include_str!("../../docs/serve.md");
        let block = doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a toml block");
        let config = ServeConfig::from_toml(block).unwrap();
        config.validate().unwrap();
        // A key shown commented out (`# otlp_http = …`, an alternative) is named too.
        let uncommented: Vec<&str> = block
            .lines()
            .map(|line| line.strip_prefix("# ").filter(|rest| rest.contains(" = ")).unwrap_or(line))
            .collect();
        let documented: toml::Table = toml::from_str(&uncommented.join("\n")).unwrap();
        for (path, _) in leaf_paths(&ServeConfig::default()) {
            let (section, key) = path.split_once('.').expect("section.key");
            let present = documented.get(section).and_then(|keys| keys.get(key)).is_some();
            assert!(present, "docs/serve.md leaves out `{path}`");
        }
    }

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let config = ServeConfig::default();
        config.validate().unwrap();
        assert_eq!(ServeConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let config = ServeConfig::from_toml("[assembly]\nidle_timeout = \"2s\"\n").unwrap();
        assert_eq!(config.assembly.idle_timeout, Duration::from_secs(2));
        assert_eq!(config.assembly.max_traces, AssemblyConfig::default().max_traces);
    }

    #[test]
    fn export_compression_is_one_of_its_names() {
        let config = ServeConfig::from_toml("[export]\ncompression = \"none\"\n").unwrap();
        assert_eq!(config.export.compression, ExportCompression::None);
        let error = ServeConfig::from_toml("[export]\ncompression = \"brotli\"\n").unwrap_err();
        assert!(error.contains("gzip") && error.contains("zstd"), "{error}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = ServeConfig::from_toml("[assembly]\nidle_timout = \"2s\"\n").unwrap_err();
        assert!(error.contains("idle_timout"), "{error}");
    }

    #[test]
    fn environment_overrides_keys_by_their_path() {
        let config = apply_env(
            &ServeConfig::default(),
            env(&[
                ("BETRACE_ASSEMBLY_IDLE_TIMEOUT", "250ms"),
                ("BETRACE_ASSEMBLY_MAX_TRACES", "7"),
                ("BETRACE_EXPORT_STDOUT", "false"),
                ("BETRACE_EXPORT_OTLP_GRPC", "http://tempo:4317"),
                ("BETRACE_EXPORT_FILE", ""),
                ("BETRACE_RULES_PATHS", "a, b"),
                ("BETRACE_EXPORT_HEADERS", "X-Scope-OrgID=acme"),
                ("BETRACE_EXPORT_COMPRESSION", "zstd"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(config.assembly.idle_timeout, Duration::from_millis(250));
        assert_eq!(config.assembly.max_traces, 7);
        assert!(!config.export.stdout);
        assert_eq!(config.export.otlp_grpc.as_deref(), Some("http://tempo:4317"));
        assert_eq!(config.export.file, None);
        assert_eq!(config.export.compression, ExportCompression::Zstd);
        assert_eq!(config.rules.paths, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(config.export.headers.get("X-Scope-OrgID").map(String::as_str), Some("acme"));
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let error = apply_env(&ServeConfig::default(), env(&[("BETRACE_ASSEMBLY_MAX_TRACES", "many")])).unwrap_err();
        assert!(error.contains("BETRACE_ASSEMBLY_MAX_TRACES"), "{error}");
    }

    #[test]
    fn validation_catches_half_tls_and_bad_addresses() {
        let mut config = ServeConfig::default();
        config.receivers.tls_cert = Some("cert.pem".into());
        assert!(config.validate().unwrap_err().contains("tls_key"));
        let mut config = ServeConfig::default();
        config.receivers.otlp_grpc = "localhost".into();
        assert!(config.validate().unwrap_err().contains("receivers.otlp_grpc"));
    }
}
