//! The server's [`ViolationSink`]: each batch of violations goes, before
//! `emit` returns, to every configured output —
//! - standard output and the violations file, as JSON lines
//!   ([`ViolationJson`], the form of `betrace eval --format json`), the
//!   file flushed and fsync'd;
//! - the durable queue of each network exporter (OTLP/gRPC, OTLP/HTTP), as
//!   one record per batch ([`ExportRecord`]) holding the encoded, signed
//!   OTLP request.
//!
//! [`Dispatcher::start`] then runs one delivery task per network exporter
//! (`deliver`), which empties its queue towards the downstream.
//! Queues live in `<queue_dir>/otlp_grpc` and `<queue_dir>/otlp_http`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use betrace_vm::{Violation, ViolationJson};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::deliver::{Delivery, Protocol, Transport, unix_nanos};
use super::otlp_span::{self, encode_violations_request};
use super::queue::{DurableQueue, QueueConfig, QueueStats};
use super::record::{self, ExportRecord};
use super::sink::{ViolationBatch, ViolationSink};
use crate::config::{ExportCompression, ExportConfig};
use crate::metrics::{ExporterLabel, Metrics};

/// Largest and smallest queue segment. A segment is an eighth of the
/// queue's size limit between these, so the limit is kept to within an
/// eighth (whole segments are dropped) without a small queue becoming
/// thousands of files.
const MAX_SEGMENT_BYTES: u64 = 8 << 20;
const MIN_SEGMENT_BYTES: u64 = 64 << 10;
/// A little more than one violation span takes encoded (those of the
/// SmartThings replay average about 660 bytes), to size a record's buffer
/// so that it does not grow while the request is written into it.
const VIOLATION_SPAN_BYTES: usize = 768;

/// Sends violations to stdout, the file and the network exporters' queues.
#[derive(Debug)]
pub struct Dispatcher {
    stdout: bool,
    file: Option<JsonFile>,
    exporters: Vec<NetworkExporter>,
    span_config: otlp_span::ExportConfig,
    headers: HeaderMap,
    batch_size: usize,
    max_in_flight: usize,
    timeout: Duration,
    compression: ExportCompression,
    retry_min: Duration,
    retry_max: Duration,
    metrics: Arc<Metrics>,
    started: AtomicBool,
}

#[derive(Debug)]
struct JsonFile {
    path: PathBuf,
    file: Mutex<File>,
}

#[derive(Debug)]
struct NetworkExporter {
    protocol: Protocol,
    endpoint: String,
    queue: Arc<DurableQueue>,
}

/// The running delivery tasks; [`DeliveryHandle::stop`] ends them.
/// Dropping the handle ends them too, without waiting.
#[derive(Debug)]
pub struct DeliveryHandle {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DeliveryHandle {
    /// Asks every delivery task to stop after its request in flight, and
    /// waits until they have.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl Dispatcher {
    /// Opens the outputs `config` names: the violations file (and its
    /// directory), and a queue for each network exporter (recovering what a
    /// previous run left in it). `signing_key` is the content of
    /// `signing_key_file`, already read.
    pub fn new(
        config: &ExportConfig,
        metrics: Arc<Metrics>,
        signing_key: Option<Vec<u8>>,
    ) -> Result<Dispatcher, String> {
        let headers = parse_headers(config)?;
        let file = config.file.as_deref().map(open_json_file).transpose()?;
        let queue_config = QueueConfig {
            segment_bytes: (config.queue_max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
            max_bytes: config.queue_max_bytes,
            weigh: record::violation_count,
        };
        let mut exporters = Vec::new();
        for (protocol, endpoint) in [(Protocol::Grpc, &config.otlp_grpc), (Protocol::Http, &config.otlp_http)] {
            let Some(endpoint) = endpoint.as_deref().filter(|e| !e.is_empty()) else { continue };
            check_endpoint(protocol, endpoint)?;
            let dir = config.queue_dir.join(protocol.exporter_name());
            let queue = DurableQueue::open(&dir, queue_config)
                .map_err(|e| format!("cannot open the export queue {}: {e}", dir.display()))?;
            exporters.push(NetworkExporter { protocol, endpoint: endpoint.to_string(), queue: Arc::new(queue) });
        }
        let instance_id =
            if config.instance_id.is_empty() { default_instance_id() } else { config.instance_id.clone() };
        let dispatcher = Dispatcher {
            stdout: config.stdout,
            file,
            exporters,
            span_config: otlp_span::ExportConfig { instance_id, signing_key },
            headers,
            batch_size: config.batch_size.max(1),
            max_in_flight: config.max_in_flight.max(1),
            timeout: config.timeout,
            compression: config.compression,
            retry_min: config.retry_min,
            retry_max: config.retry_max,
            metrics,
            started: AtomicBool::new(false),
        };
        for exporter in &dispatcher.exporters {
            dispatcher.update_gauges(exporter);
        }
        Ok(dispatcher)
    }

    /// Spawns one delivery task per network exporter on `runtime`. Once per
    /// dispatcher: a queue has one reader.
    pub fn start(&self, runtime: &tokio::runtime::Handle) -> Result<DeliveryHandle, String> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Err("the export delivery is already running".into());
        }
        let (shutdown, watcher) = watch::channel(false);
        let _inside = runtime.enter();
        let mut tasks = Vec::new();
        for exporter in &self.exporters {
            let transport =
                Transport::new(exporter.protocol, &exporter.endpoint, &self.headers, self.timeout, self.compression)?;
            let delivery = Delivery {
                exporter: exporter.protocol.exporter_name(),
                queue: Arc::clone(&exporter.queue),
                transport,
                metrics: Arc::clone(&self.metrics),
                batch_size: self.batch_size,
                max_in_flight: self.max_in_flight,
                retry_min: self.retry_min,
                retry_max: self.retry_max,
                shutdown: watcher.clone(),
            };
            tasks.push(runtime.spawn(delivery.run()));
        }
        Ok(DeliveryHandle { shutdown, tasks })
    }

    /// Each network exporter's name and queue.
    pub fn queue_stats(&self) -> Vec<(&'static str, QueueStats)> {
        self.exporters.iter().map(|e| (e.protocol.exporter_name(), e.queue.stats())).collect()
    }

    fn write_json(&self, violations: &[&Violation]) {
        if !self.stdout && self.file.is_none() {
            return;
        }
        let key = self.span_config.signing_key.as_deref();
        let mut lines = Vec::with_capacity(violations.len() * 512);
        for violation in violations {
            let json = ViolationJson::new(violation, key.map(|key| violation.sign(key)));
            serde_json::to_writer(&mut lines, &json).expect("a violation serializes to JSON");
            lines.push(b'\n');
        }
        let count = violations.len() as u64;
        if self.stdout {
            let mut out = std::io::stdout().lock();
            let written = out.write_all(&lines).and_then(|()| out.flush());
            self.count_output("stdout", count, written, Path::new("standard output"));
        }
        if let Some(json_file) = &self.file {
            let file = json_file.file.lock().unwrap_or_else(PoisonError::into_inner);
            let mut handle: &File = &file;
            let written = handle.write_all(&lines).and_then(|()| file.sync_data());
            self.count_output("file", count, written, &json_file.path);
        }
    }

    fn count_output(&self, exporter: &str, violations: u64, written: std::io::Result<()>, target: &Path) {
        let label = ExporterLabel { exporter: exporter.to_string() };
        match written {
            Ok(()) => {
                self.metrics.exported.get_or_create(&label).inc_by(violations);
            }
            Err(e) => {
                self.metrics.export_failures.get_or_create(&label).inc();
                self.metrics.export_dropped.get_or_create(&label).inc_by(violations);
                tracing::error!(violations, "cannot write violations to {}: {e}", target.display());
            }
        }
    }

    /// One queue record per `batch_size` violations.
    fn records(&self, batch: &ViolationBatch) -> Vec<Vec<u8>> {
        let completed_at_unix_nanos = wall_clock(batch.completed_at);
        batch
            .violations
            .chunks(self.batch_size)
            .filter_map(|chunk| {
                let (tenant, count) = (&batch.tenant, chunk.len() as u32);
                let request_len = chunk.len() * VIOLATION_SPAN_BYTES;
                let encoded =
                    ExportRecord::encode_request(tenant, completed_at_unix_nanos, count, request_len, |out| {
                        encode_violations_request(chunk, &self.span_config, out)
                    });
                match encoded {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        tracing::error!(tenant = %batch.tenant, "cannot queue violations: {e}");
                        None
                    }
                }
            })
            .collect()
    }

    fn update_gauges(&self, exporter: &NetworkExporter) {
        let label = ExporterLabel { exporter: exporter.protocol.exporter_name().to_string() };
        let stats = exporter.queue.stats();
        self.metrics.export_queue_depth.get_or_create(&label).set(stats.weight as i64);
        self.metrics.export_queue_bytes.get_or_create(&label).set(stats.bytes as i64);
    }
}

impl ViolationSink for Dispatcher {
    fn emit(&self, batch: ViolationBatch) {
        self.emit_all(vec![batch]);
    }

    /// One write (and fsync) of the JSON lines and one append (one fsync) per
    /// queue for all the batches: shards hand over what one round of work
    /// produced at once.
    fn emit_all(&self, batches: Vec<ViolationBatch>) {
        let batches: Vec<ViolationBatch> = batches.into_iter().filter(|b| !b.violations.is_empty()).collect();
        if batches.is_empty() {
            return;
        }
        let violations: Vec<&Violation> = batches.iter().flat_map(|b| &b.violations).collect();
        self.write_json(&violations);
        if self.exporters.is_empty() {
            return;
        }
        let records: Vec<Vec<u8>> = batches.iter().flat_map(|batch| self.records(batch)).collect();
        for exporter in &self.exporters {
            let name = exporter.protocol.exporter_name();
            let label = ExporterLabel { exporter: name.to_string() };
            match exporter.queue.append(&records) {
                Ok(appended) if appended.dropped_records > 0 => {
                    self.metrics.export_dropped.get_or_create(&label).inc_by(appended.dropped_weight);
                    tracing::warn!(
                        exporter = name,
                        violations = appended.dropped_weight,
                        "the export queue is full (export.queue_max_bytes): its oldest violations were dropped"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    self.metrics.export_dropped.get_or_create(&label).inc_by(violations.len() as u64);
                    tracing::error!(
                        exporter = name,
                        violations = violations.len(),
                        "cannot append violations to the export queue: {e}"
                    );
                }
            }
            self.update_gauges(exporter);
        }
    }
}

/// The wall-clock time of an `Instant` in the past, as Unix nanoseconds.
fn wall_clock(instant: Instant) -> u64 {
    let now = SystemTime::now();
    unix_nanos(now.checked_sub(instant.elapsed()).unwrap_or(now))
}

/// `service.instance.id` when none is configured: the host name and the
/// process id.
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

fn parse_headers(config: &ExportConfig) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("export.headers: `{name}` is not a header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("export.headers: the value of `{name}` is not a header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Refuses endpoints that are not http(s) URLs with a host, naming the key.
fn check_endpoint(protocol: Protocol, endpoint: &str) -> Result<(), String> {
    let key = format!("export.{}", protocol.exporter_name());
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("{key}: `{endpoint}` is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{key}: `{endpoint}` should look like http://host:port"));
    }
    Ok(())
}

fn open_json_file(path: &Path) -> Result<JsonFile, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("export.file: cannot create {}: {e}", parent.display()))?;
    }
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("export.file: cannot open {}: {e}", path.display()))?;
    Ok(JsonFile { path: path.to_path_buf(), file: Mutex::new(file) })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::export::otlp_span::tests::sample;
    use crate::tenant::Tenant;

    fn config(dir: &Path) -> ExportConfig {
        ExportConfig {
            stdout: false,
            file: Some(dir.join("out/violations.jsonl")),
            queue_dir: dir.join("queue"),
            ..ExportConfig::default()
        }
    }

    fn batch(violations: Vec<Violation>) -> ViolationBatch {
        ViolationBatch { tenant: Tenant::from("acme"), violations, completed_at: Instant::now() }
    }

    #[test]
    fn violations_are_appended_to_the_file_as_signed_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let dispatcher = Dispatcher::new(&config(dir.path()), Arc::clone(&metrics), Some(b"key".to_vec())).unwrap();
        dispatcher.emit(batch(vec![sample(true), sample(false)]));
        dispatcher.emit(batch(vec![sample(true)]));
        let text = std::fs::read_to_string(dir.path().join("out/violations.jsonl")).unwrap();
        let lines: Vec<ViolationJson> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        let violation = lines[0].to_violation().unwrap();
        assert_eq!(lines[0].signature.as_deref(), Some(violation.sign(b"key").as_str()));
        assert!(metrics.encode().contains("betrace_exported_total{exporter=\"file\"} 3"));
    }

    #[test]
    fn network_exporters_get_one_record_per_batch_size_in_their_queue() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.file = None;
        config.otlp_grpc = Some("http://127.0.0.1:1".into());
        config.otlp_http = Some("http://127.0.0.1:1/v1/traces".into());
        config.batch_size = 2;
        let metrics = Arc::new(Metrics::new());
        let dispatcher = Dispatcher::new(&config, Arc::clone(&metrics), None).unwrap();
        dispatcher.emit(batch(vec![sample(true), sample(false), sample(true)]));
        for (name, stats) in dispatcher.queue_stats() {
            assert_eq!((stats.records, stats.weight), (2, 3), "{name}");
        }
        assert!(metrics.encode().contains("betrace_export_queue_depth{exporter=\"otlp_grpc\"} 3"));
        drop(dispatcher);

        let queue = DurableQueue::open(dir.path().join("queue/otlp_http"), QueueConfig::default()).unwrap();
        let records = queue.read(0, 10, 1 << 20).unwrap().records;
        let first = ExportRecord::decode(&records[0].payload).unwrap();
        assert_eq!(&*first.tenant, "acme");
        assert_eq!(first.violations, 2);
        let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            first.request.as_slice(),
        )
        .unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 2);
        let age = unix_nanos(SystemTime::now()).saturating_sub(first.completed_at_unix_nanos);
        assert!(age < 60_000_000_000, "{age}");
    }

    #[test]
    fn bad_endpoints_and_headers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad_url = config(dir.path());
        bad_url.otlp_grpc = Some("tempo:4317".into());
        let error = Dispatcher::new(&bad_url, Arc::new(Metrics::new()), None).unwrap_err();
        assert!(error.contains("export.otlp_grpc"), "{error}");
        let mut bad_header = config(dir.path());
        bad_header.headers.insert("bad header".into(), "x".into());
        let error = Dispatcher::new(&bad_header, Arc::new(Metrics::new()), None).unwrap_err();
        assert!(error.contains("export.headers"), "{error}");
    }
}
