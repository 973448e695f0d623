//! Delivery for one network exporter: a tokio task that reads the
//! exporter's durable queue, joins consecutive records of one tenant into
//! requests of at most `batch_size` violations, sends them ([`grpc`] or
//! [`http`]), up to `max_in_flight` at once, and acknowledges them in queue
//! order once the downstream has taken them.
//!
//! While the downstream is away it retries the same request with backoff,
//! for as long as it takes (the queue's size limit is what bounds the wait);
//! a request the downstream refuses for good is dropped, counted and logged.
//! On shutdown it stops after the requests in flight: what is not yet
//! acknowledged is delivered again after a restart (at least once).

mod backoff;
mod compress;
mod grpc;
mod grpc_compression;
mod http;

use std::collections::VecDeque;
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::HeaderMap;
use futures_util::stream::{FuturesOrdered, StreamExt};
use prost::bytes::Bytes;
use tokio::sync::watch;

use super::queue::{CURSOR_STORE_INTERVAL, DurableQueue};
use super::record::ExportRecord;
use crate::config::ExportCompression;
use crate::metrics::{ExporterLabel, Metrics};
use crate::tenant::Tenant;
use backoff::Backoff;

/// Records read from the queue at a time, and about how many bytes.
const READ_RECORDS: usize = 256;
const READ_BYTES: usize = 4 << 20;

/// The wire protocol of a network exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Grpc,
    Http,
}

impl Protocol {
    /// The exporter's name: its metrics label and its queue's directory.
    pub fn exporter_name(self) -> &'static str {
        match self {
            Protocol::Grpc => "otlp_grpc",
            Protocol::Http => "otlp_http",
        }
    }
}

/// What a downstream's reply means for a batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Taken (perhaps in part: the downstream says what it rejected, and
    /// retrying would not change that).
    Delivered { rejected_spans: i64, message: String },
    /// Not taken this time; try again, after `after` if the server said.
    Retry { after: Option<Duration>, reason: String },
    /// Refused for good.
    Refused { reason: String },
}

/// A network client of one downstream.
#[derive(Debug)]
pub(crate) enum Transport {
    Grpc(grpc::GrpcTransport),
    Http(http::HttpTransport),
}

impl Transport {
    /// A client for `endpoint`; must be called inside a tokio runtime.
    pub fn new(
        protocol: Protocol,
        endpoint: &str,
        headers: &HeaderMap,
        timeout: Duration,
        compression: ExportCompression,
    ) -> Result<Transport, String> {
        Ok(match protocol {
            Protocol::Grpc => Transport::Grpc(grpc::GrpcTransport::new(endpoint, headers, timeout, compression)?),
            Protocol::Http => Transport::Http(http::HttpTransport::new(endpoint, headers, timeout, compression)?),
        })
    }

    /// Sends `request`, an encoded `ExportTraceServiceRequest`.
    async fn send(&self, tenant: &str, request: Bytes) -> Outcome {
        match self {
            Transport::Grpc(grpc) => grpc.send(tenant, request).await,
            Transport::Http(http) => http.send(tenant, request).await,
        }
    }
}

/// rustls needs a process-wide crypto provider for reqwest and for TLS to a
/// gRPC downstream; ring is the one this build has. Installing twice (or
/// after someone else did) is harmless.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Everything one delivery task needs.
pub(crate) struct Delivery {
    pub exporter: &'static str,
    pub queue: Arc<DurableQueue>,
    pub transport: Transport,
    pub metrics: Arc<Metrics>,
    pub batch_size: usize,
    /// Requests out at once (`export.max_in_flight`).
    pub max_in_flight: usize,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub shutdown: watch::Receiver<bool>,
}

/// Consecutive records of one tenant, sent as one request: their encoded
/// requests one after the other, which protobuf reads as one request
/// holding all their `resource_spans` (a repeated field's entries append),
/// so nothing is decoded and encoded again on the way out.
struct Batch {
    tenant: Tenant,
    request: Bytes,
    violations: u64,
    completed_at_unix_nanos: Vec<u64>,
    /// Acknowledging up to here takes the batch out of the queue.
    upto: u64,
}

/// Shutdown was asked for while a delivery task waited.
struct Stopped;

impl Delivery {
    /// Delivers until shut down (the `watch` turns true or its sender goes),
    /// with up to `max_in_flight` requests out at once. Requests complete in
    /// any order; the queue is acknowledged in its own order, up to the
    /// first request not yet done, so a restart sends again whatever came
    /// after a request still out (at least once). Acknowledgements are
    /// stored at most once a [`CURSOR_STORE_INTERVAL`] while busy
    /// (`DurableQueue::ack_deferred`), after as long a quiet spell, and when
    /// delivery stops.
    pub async fn run(self) {
        self.deliver_until_stopped().await;
        self.store_cursor().await;
    }

    async fn deliver_until_stopped(&self) {
        let label = ExporterLabel { exporter: self.exporter.to_string() };
        let mut lookahead: VecDeque<(u64, ExportRecord)> = VecDeque::new();
        let mut next_read = 0u64;
        let mut read_backoff = Backoff::new(self.retry_min, self.retry_max);
        let mut in_flight = FuturesOrdered::new();
        let mut shutdown = self.shutdown.clone();
        // Sticky: the sender going away stops delivery as a `true` does.
        let mut stopping = false;
        self.update_gauges(&label);
        loop {
            stopping |= *shutdown.borrow();
            let mut read_failed = false;
            while !stopping && in_flight.len() < self.max_in_flight {
                // Records the queue dropped to stay under its size are gone.
                let cursor = self.queue.cursor();
                while lookahead.front().is_some_and(|(seq, _)| *seq < cursor) {
                    lookahead.pop_front();
                }
                // Read on while what is at hand cannot fill a request, so
                // runs of one tenant merge across reads.
                let at_hand: u64 = lookahead.iter().map(|(_, record)| u64::from(record.violations)).sum();
                if at_hand < self.batch_size as u64 {
                    match self.read_into(&mut lookahead, next_read).await {
                        Ok(next) => {
                            next_read = next;
                            read_backoff.reset();
                        }
                        Err(e) => {
                            tracing::warn!(exporter = self.exporter, "cannot read the export queue: {e}");
                            read_failed = true;
                            break;
                        }
                    }
                }
                let Some(batch) = self.take_batch(&mut lookahead) else { break };
                in_flight.push_back(self.deliver(batch, &label, self.shutdown.clone()));
            }
            if in_flight.is_empty() {
                if stopping {
                    return;
                }
                if read_failed {
                    tokio::select! {
                        _ = tokio::time::sleep(read_backoff.next_delay()) => {}
                        _ = stopped(&mut shutdown) => return,
                    }
                } else {
                    // Acknowledgements not yet stored are stored after a quiet
                    // spell as long as the interval between stores.
                    let unstored = self.queue.has_unstored_acks();
                    tokio::select! {
                        _ = self.queue.wait_for_appends() => {}
                        _ = tokio::time::sleep(CURSOR_STORE_INTERVAL), if unstored => self.store_cursor().await,
                        _ = stopped(&mut shutdown) => return,
                    }
                }
                continue;
            }
            let room = !stopping && !read_failed && in_flight.len() < self.max_in_flight;
            tokio::select! {
                done = in_flight.next() => match done {
                    Some(Ok(upto)) => self.ack(upto).await,
                    // Stopped while retrying: what is still out is sent again after a restart.
                    Some(Err(Stopped)) | None => return,
                },
                _ = self.queue.wait_for_appends(), if room => {}
                // Requests out finish (or stop at their next retry); no new ones go.
                _ = stopped(&mut shutdown), if !stopping => stopping = true,
            }
        }
    }

    /// Reads and decodes the next records into `lookahead`; returns where to
    /// read next. A record whose header does not decode is logged, and
    /// acknowledged in its turn without being sent. The requests records
    /// hold are not decoded at all: this program encoded them, and the
    /// queue's checksums keep them as written.
    async fn read_into(&self, lookahead: &mut VecDeque<(u64, ExportRecord)>, from: u64) -> std::io::Result<u64> {
        let queue = Arc::clone(&self.queue);
        let batch = tokio::task::spawn_blocking(move || queue.read(from, READ_RECORDS, READ_BYTES))
            .await
            .map_err(std::io::Error::other)??;
        for record in batch.records {
            let decoded = ExportRecord::decode(&record.payload).unwrap_or_else(|e| {
                tracing::warn!(exporter = self.exporter, record = record.seq, "skipping a queue record: {e}");
                // Holds its place, so it is acknowledged in queue order
                // with what is around it, and sends nothing.
                ExportRecord {
                    tenant: Tenant::from(""),
                    completed_at_unix_nanos: 0,
                    violations: 0,
                    request: Vec::new(),
                }
            });
            lookahead.push_back((record.seq, decoded));
        }
        Ok(batch.next)
    }

    /// Takes the longest run of records of the first record's tenant that
    /// stays within `batch_size` violations (always at least one record).
    fn take_batch(&self, lookahead: &mut VecDeque<(u64, ExportRecord)>) -> Option<Batch> {
        let (seq, first) = lookahead.pop_front()?;
        let tenant = first.tenant.clone();
        let mut violations = u64::from(first.violations);
        let mut records = vec![(seq, first)];
        while let Some((_, next)) = lookahead.front() {
            if next.tenant != tenant || violations + u64::from(next.violations) > self.batch_size as u64 {
                break;
            }
            violations += u64::from(next.violations);
            records.push(lookahead.pop_front().expect("peeked"));
        }
        let upto = records.last().map_or(seq, |(seq, _)| seq + 1);
        let mut request = Vec::with_capacity(records.iter().map(|(_, record)| record.request.len()).sum());
        let mut completed_at_unix_nanos = Vec::with_capacity(records.len());
        for (_, record) in records.into_iter().filter(|(_, record)| !record.request.is_empty()) {
            request.extend_from_slice(&record.request);
            completed_at_unix_nanos.push(record.completed_at_unix_nanos);
        }
        Some(Batch { tenant, request: request.into(), violations, completed_at_unix_nanos, upto })
    }

    /// Sends one batch until it is delivered or refused, and returns where
    /// acknowledging it takes the queue. Errs only when shut down while
    /// waiting to retry.
    async fn deliver(
        &self,
        batch: Batch,
        label: &ExporterLabel,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<u64, Stopped> {
        if batch.request.is_empty() {
            // Only records that were skipped.
            return Ok(batch.upto);
        }
        let mut backoff = Backoff::new(self.retry_min, self.retry_max);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.transport.send(&batch.tenant, batch.request.clone()).await {
                Outcome::Delivered { rejected_spans, message } => {
                    if rejected_spans > 0 || !message.is_empty() {
                        tracing::warn!(
                            exporter = self.exporter,
                            rejected_spans,
                            "the downstream took the batch in part: {message}"
                        );
                    }
                    self.metrics.exported.get_or_create(label).inc_by(batch.violations);
                    let now = unix_nanos(SystemTime::now());
                    for completed_at in &batch.completed_at_unix_nanos {
                        let latency = now.saturating_sub(*completed_at) as f64 / 1e9;
                        self.metrics.completion_to_export_seconds.observe(latency);
                    }
                    return Ok(batch.upto);
                }
                Outcome::Refused { reason } => {
                    self.metrics.export_failures.get_or_create(label).inc();
                    self.metrics.export_dropped.get_or_create(label).inc_by(batch.violations);
                    tracing::warn!(
                        exporter = self.exporter,
                        tenant = %batch.tenant,
                        violations = batch.violations,
                        "the downstream refused a batch for good; it is dropped: {reason}"
                    );
                    return Ok(batch.upto);
                }
                Outcome::Retry { after, reason } => {
                    self.metrics.export_failures.get_or_create(label).inc();
                    let delay = after.unwrap_or_else(|| backoff.next_delay());
                    if attempts == 1 {
                        tracing::warn!(exporter = self.exporter, "export failed, retrying in {delay:?}: {reason}");
                    } else {
                        tracing::debug!(
                            exporter = self.exporter,
                            attempts,
                            "export failed, retrying in {delay:?}: {reason}"
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped(&mut shutdown) => return Err(Stopped),
                    }
                }
            }
        }
    }

    /// Acknowledges up to `upto` (stored later, see [`run`](Self::run)); a
    /// failure is logged (those records will be delivered again after a restart).
    async fn ack(&self, upto: u64) {
        self.on_queue(move |queue| queue.ack_deferred(upto)).await;
        self.update_gauges(&ExporterLabel { exporter: self.exporter.to_string() });
    }

    /// Stores the acknowledgements not yet stored.
    async fn store_cursor(&self) {
        self.on_queue(DurableQueue::store_cursor).await;
    }

    /// Runs `write` (which may fsync) on the queue off the async threads; a failure is logged.
    async fn on_queue(&self, write: impl FnOnce(&DurableQueue) -> std::io::Result<()> + Send + 'static) {
        let queue = Arc::clone(&self.queue);
        let written = tokio::task::spawn_blocking(move || write(&queue)).await.map_err(std::io::Error::other);
        if let Err(e) = written.and_then(|result| result) {
            tracing::warn!(exporter = self.exporter, "cannot record a delivery in the export queue: {e}");
        }
    }

    fn update_gauges(&self, label: &ExporterLabel) {
        let stats = self.queue.stats();
        self.metrics.export_queue_depth.get_or_create(label).set(stats.weight as i64);
        self.metrics.export_queue_bytes.get_or_create(label).set(stats.bytes as i64);
    }
}

/// Returns once shutdown is asked for (or nobody can ask any more).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use betrace_vm::Violation;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    use super::*;
    use crate::export::otlp_span::tests::sample;
    use crate::export::otlp_span::{ExportConfig, violations_request};
    use crate::export::queue::QueueConfig;

    fn request(violations: &[Violation], instance: &str) -> ExportTraceServiceRequest {
        violations_request(violations, &ExportConfig { instance_id: instance.into(), signing_key: None })
    }

    #[test]
    fn requests_one_after_the_other_read_as_one_request_of_all_their_spans() {
        let (a, b) = (request(&[sample(true)], "a"), request(&[sample(false), sample(true)], "b"));
        let mut joined = a.encode_to_vec();
        joined.extend(b.encode_to_vec());
        let read = ExportTraceServiceRequest::decode(joined.as_slice()).unwrap();
        let mut expected = a.clone();
        expected.resource_spans.extend(b.resource_spans);
        assert_eq!(read, expected);
    }

    /// Every compression reaches a receiver that takes it, over both protocols.
    #[tokio::test]
    async fn requests_arrive_whatever_the_compression() {
        let sink = crate::otlp_sink::OtlpSink::start_loopback().await.unwrap();
        let endpoints =
            [(Protocol::Grpc, sink.grpc_endpoint().unwrap()), (Protocol::Http, sink.http_endpoint().unwrap())];
        let mut sent = 0;
        for (protocol, endpoint) in &endpoints {
            for compression in [ExportCompression::Gzip, ExportCompression::Zstd, ExportCompression::None] {
                let transport =
                    Transport::new(*protocol, endpoint, &HeaderMap::new(), Duration::from_secs(5), compression)
                        .unwrap();
                let encoded = request(&[sample(true), sample(false)], "a").encode_to_vec();
                let outcome = transport.send("acme", encoded.into()).await;
                assert!(
                    matches!(outcome, Outcome::Delivered { rejected_spans: 0, .. }),
                    "{protocol:?} {compression:?}: {outcome:?}"
                );
                sent += 2;
                assert_eq!(sink.span_count(), sent, "{protocol:?} {compression:?}");
            }
        }
        assert!(sink.requests().iter().all(|r| r.tenant() == Some("acme")));
    }

    /// A delivery task over `queue` towards the sink's gRPC receiver, and
    /// the sender that stops it.
    fn delivery(
        queue: &Arc<DurableQueue>,
        sink: &crate::otlp_sink::OtlpSink,
        batch_size: usize,
        max_in_flight: usize,
    ) -> (Delivery, watch::Sender<bool>) {
        let (stop, shutdown) = watch::channel(false);
        let endpoint = sink.grpc_endpoint().unwrap();
        let transport = Transport::new(
            Protocol::Grpc,
            &endpoint,
            &HeaderMap::new(),
            Duration::from_secs(5),
            ExportCompression::Gzip,
        )
        .unwrap();
        let delivery = Delivery {
            exporter: "otlp_grpc",
            queue: Arc::clone(queue),
            transport,
            metrics: Arc::new(Metrics::new()),
            batch_size,
            max_in_flight,
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(100),
            shutdown,
        };
        (delivery, stop)
    }

    fn export_queue(dir: &std::path::Path) -> Arc<DurableQueue> {
        let config = QueueConfig { weigh: crate::export::record::violation_count, ..QueueConfig::default() };
        Arc::new(DurableQueue::open(dir, config).unwrap())
    }

    fn record(n: usize) -> Vec<u8> {
        let request = request(&[sample(n.is_multiple_of(2))], "a");
        ExportRecord::encode_request(&Tenant::from("acme"), 0, 1, 0, |out| request.encode_raw(out)).unwrap()
    }

    async fn wait_for_cursor(queue: &DurableQueue, cursor: u64) {
        for _ in 0..200 {
            if queue.cursor() == cursor {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(queue.cursor(), cursor, "records acknowledged");
    }

    /// A distant downstream: requests go out several at once, never more
    /// than `max_in_flight`, and the queue is acknowledged to its end.
    #[tokio::test]
    async fn requests_overlap_up_to_the_limit_and_every_one_is_acknowledged() {
        let sink = crate::otlp_sink::OtlpSink::start_loopback().await.unwrap();
        sink.set_reply_delay(Duration::from_millis(150));
        let dir = tempfile::tempdir().unwrap();
        let queue = export_queue(dir.path());
        queue.append(&(0..8).map(record).collect::<Vec<_>>()).unwrap();
        let (delivery, stop) = delivery(&queue, &sink, 1, 3);
        let task = tokio::spawn(delivery.run());
        let arrived = sink.wait_until(Duration::from_secs(10), |requests| requests.len() == 8).await;
        assert!(arrived, "{} of 8 requests arrived", sink.requests().len());
        wait_for_cursor(&queue, 8).await;
        let most = sink.most_requests_at_once();
        assert!((2..=3).contains(&most), "{most} requests at once");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// A record that does not decode is skipped in its turn: the records
    /// around it are delivered, and the queue is acknowledged past it.
    #[tokio::test]
    async fn a_record_that_does_not_decode_is_acknowledged_in_its_turn() {
        let sink = crate::otlp_sink::OtlpSink::start_loopback().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let queue = export_queue(dir.path());
        queue.append(&[record(0), vec![9, 9, 9], record(1), record(2)]).unwrap();
        let (delivery, stop) = delivery(&queue, &sink, 1, 2);
        let task = tokio::spawn(delivery.run());
        wait_for_cursor(&queue, 4).await;
        assert_eq!(sink.span_count(), 3);
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// Nothing is acknowledged while the requests out are not answered
    /// (with requests out, the reader once took an empty read-ahead for
    /// records all skipped, and acknowledged them).
    #[tokio::test]
    async fn nothing_is_acknowledged_while_the_downstream_is_away() {
        let sink = crate::otlp_sink::OtlpSink::start_loopback().await.unwrap();
        sink.set_mode(crate::otlp_sink::SinkMode::Unavailable);
        let dir = tempfile::tempdir().unwrap();
        let queue = export_queue(dir.path());
        queue.append(&(0..4).map(record).collect::<Vec<_>>()).unwrap();
        let (delivery, stop) = delivery(&queue, &sink, 512, 2);
        let task = tokio::spawn(delivery.run());
        for _ in 0..200 {
            if sink.failed_requests() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(sink.failed_requests() >= 3, "{} failed requests", sink.failed_requests());
        assert_eq!(queue.cursor(), 0, "acknowledged while nothing was delivered");
        sink.set_mode(crate::otlp_sink::SinkMode::Accept);
        wait_for_cursor(&queue, 4).await;
        assert_eq!(sink.span_count(), 4);
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// Acknowledgements are stored (the cursor file, so a restart does not
    /// deliver again) after a quiet spell while delivery runs, and when it stops.
    #[tokio::test]
    async fn deferred_acknowledgements_are_stored_when_quiet_and_on_stop() {
        let sink = crate::otlp_sink::OtlpSink::start_loopback().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let queue = export_queue(dir.path());
        let (delivery, stop) = delivery(&queue, &sink, 1, 1);
        let task = tokio::spawn(delivery.run());
        // Two rounds: the first acknowledgement of a process is stored at
        // once, so the second round's wait on storing.
        for round in 1..=2u64 {
            queue.append(&[record(0), record(1)]).unwrap();
            wait_for_cursor(&queue, 2 * round).await;
        }
        assert!(queue.has_unstored_acks(), "acknowledged within the store interval");
        let quiet = tokio::time::Instant::now();
        while queue.has_unstored_acks() && quiet.elapsed() < 3 * CURSOR_STORE_INTERVAL {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!queue.has_unstored_acks(), "stored after a quiet spell");

        queue.append(&[record(2)]).unwrap();
        wait_for_cursor(&queue, 5).await;
        stop.send(true).unwrap();
        task.await.unwrap();
        assert!(!queue.has_unstored_acks(), "stored on stop");
        drop(queue);
        assert_eq!(export_queue(dir.path()).cursor(), 5, "stored in the cursor file");
    }
}
