//! Trace assembly: spans are grouped into traces by shards, each a thread
//! that owns the traces whose (tenant, trace id) hash to it and shares
//! nothing with the others. A shard completes a trace when it is idle, too
//! old or too large, evaluates it with the packs current at that moment, and
//! hands the violations to the sink. See `assembly/shard.rs` for the life of
//! a trace there.
//!
//! Memory is bounded by a [`Budget`] of bytes shared by all shards: receivers
//! reserve a request's bytes before handing it over (or throttle), shards
//! release them when they let a trace go.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use betrace_vm::trace::TraceBuilder;
use prometheus_client::metrics::gauge::Gauge;

use crate::config::AssemblyConfig;
use crate::export::ViolationSink;
use crate::metrics::Metrics;
use crate::packs::PackRegistry;
use crate::tenant::Tenant;

mod evaluate;
mod reported;
mod shard;
mod tally;
mod tenant_numbers;

/// A shard's changes to a [`Budget`], added up between publications.
#[derive(Clone, Copy, Debug, Default)]
pub struct BudgetChanges {
    /// Held bytes that joined open traces.
    pub opened: usize,
    /// Held bytes of traces that completed: they leave open and held alike.
    pub closed: usize,
    /// Bytes kept for decided traces.
    pub kept: usize,
    /// Kept bytes let go (the decided trace was forgotten).
    pub forgotten: usize,
    /// Kept bytes that late spans made held and open again.
    pub reopened: usize,
}

/// Bytes of spans in memory, against the configured limit, in two parts:
/// *held* — spans received and not yet evaluated, which admission counts
/// (a request that does not fit is throttled) — and *kept* — spans of
/// decided traces remembered for late spans, a cache that shards drop,
/// oldest first, whenever held and kept together pass the limit. So kept
/// traces never cause throttling, and memory stays under the limit but for
/// the moment between a reservation and the shard's next message or tick.
///
/// Of the held bytes, those of spans already in shards' open traces are
/// also counted as *open*; the rest are queued for a shard or are request
/// bodies being read. Letting open traces go early frees only open bytes.
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    open: AtomicUsize,
    kept: AtomicUsize,
    /// The largest request refused since shards last made room: they let
    /// their oldest traces go until it would fit, so the client's retry is taken.
    pressure: AtomicUsize,
    limit: usize,
    gauge: Gauge,
}

impl Budget {
    pub fn new(limit: usize, gauge: Gauge) -> Budget {
        Budget {
            held: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            pressure: AtomicUsize::new(0),
            limit,
            gauge,
        }
    }

    /// Reserves `bytes` for received spans if they fit under the limit. A
    /// request larger than the whole limit is still taken when nothing else
    /// is held, so it cannot be refused forever.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        let reserved = self.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            (held == 0 || held + bytes <= self.limit).then_some(held + bytes)
        });
        self.update_gauge();
        if reserved.is_err() {
            self.pressure.fetch_max(bytes, Ordering::AcqRel);
        }
        reserved.is_ok()
    }

    /// Bytes a refused request wants freed (0: none refused since room was made).
    pub fn pressure(&self) -> usize {
        self.pressure.load(Ordering::Acquire)
    }

    /// Room was made for a refused request of `wanted` bytes.
    pub fn relieve(&self, wanted: usize) {
        let _ = self.pressure.compare_exchange(wanted, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Releases bytes of spans received (their trace was let go).
    pub fn release(&self, bytes: usize) {
        subtract(&self.held, bytes, "released more bytes than reserved");
        self.update_gauge();
    }

    /// Applies a shard's changes since it last published them (see
    /// `assembly/tally.rs`). Additions come before subtractions, so no
    /// count dips below what it truly is on the way.
    pub fn settle(&self, changes: &BudgetChanges) {
        let add = |count: &AtomicUsize, bytes: usize| {
            if bytes > 0 {
                count.fetch_add(bytes, Ordering::AcqRel);
            }
        };
        add(&self.held, changes.reopened);
        add(&self.open, changes.opened + changes.reopened);
        add(&self.kept, changes.kept);
        subtract(&self.open, changes.closed, "closed more bytes than were open");
        subtract(&self.held, changes.closed, "released more bytes than reserved");
        subtract(&self.kept, changes.forgotten + changes.reopened, "forgot more bytes than kept");
        self.update_gauge();
    }

    /// Held bytes in open traces.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Releases a kept trace's bytes.
    pub fn forget(&self, bytes: usize) {
        subtract(&self.kept, bytes, "forgot more bytes than kept");
        self.update_gauge();
    }

    /// Bytes held and kept.
    pub fn used(&self) -> usize {
        self.held() + self.kept.load(Ordering::Acquire)
    }

    /// Bytes of spans received and not yet evaluated.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Past this many held bytes, shards let their oldest traces go early to make room.
    pub fn high_water(&self) -> usize {
        self.limit / 10 * 9
    }

    fn update_gauge(&self) {
        self.gauge.set(i64::try_from(self.used()).unwrap_or(i64::MAX));
    }
}

/// Takes `bytes` from a count of the budget; in debug builds, checks it had them.
fn subtract(count: &AtomicUsize, bytes: usize, what: &str) {
    if bytes > 0 {
        let before = count.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "{what}");
    }
}

/// One trace's spans from one request, and the bytes they were reserved
/// for in the [`Budget`]. The spans are in a builder of their own, which the
/// shard takes over for a trace it has not seen (or absorbs into the trace's
/// builder), so a batch that looks like a whole trace can be built ahead by
/// the receiving thread (`ingest/batches.rs`).
#[derive(Debug)]
pub struct TraceBatch {
    pub spans: TraceBuilder,
    pub bytes: usize,
}

impl TraceBatch {
    pub fn trace_id(&self) -> [u8; 16] {
        self.spans.trace_id()
    }
}

pub(crate) enum ShardMessage {
    /// A request's spans that this shard owns, a batch per trace.
    Spans { tenant: Tenant, batches: Vec<TraceBatch>, received: Instant },
    /// Complete every open trace now, then answer (tests, and `POST /api/v1/flush`).
    Flush(mpsc::SyncSender<()>),
}

/// The sending side of a shard; cheap to clone.
#[derive(Clone, Debug)]
pub struct ShardHandle {
    sender: mpsc::Sender<ShardMessage>,
}

/// The shard has stopped.
#[derive(Debug)]
pub struct ShardStopped;

impl ShardHandle {
    /// Hands spans (already reserved in the budget) to the shard, a batch
    /// per trace: grouping is done once, by the receiver, so a span moves
    /// once between being read and joining its trace.
    pub fn send_spans(&self, tenant: Tenant, batches: Vec<TraceBatch>, received: Instant) -> Result<(), ShardStopped> {
        self.sender.send(ShardMessage::Spans { tenant, batches, received }).map_err(|_| ShardStopped)
    }

    /// Completes and evaluates every open trace of the shard; returns when done.
    pub fn flush(&self) -> Result<(), ShardStopped> {
        let (done, wait) = mpsc::sync_channel(1);
        self.sender.send(ShardMessage::Flush(done)).map_err(|_| ShardStopped)?;
        wait.recv().map_err(|_| ShardStopped)
    }
}

/// What every shard shares.
#[derive(Clone)]
pub struct ShardContext {
    pub config: AssemblyConfig,
    pub packs: Arc<PackRegistry>,
    pub sink: Arc<dyn ViolationSink>,
    pub metrics: Arc<Metrics>,
    pub budget: Arc<Budget>,
}

/// Shard threads are named this and their number (`betrace-shard-0`, …).
pub const SHARD_THREAD_PREFIX: &str = "betrace-shard-";

/// Starts `count` shards. Dropping every handle stops them: each completes
/// and evaluates the traces it holds, then its thread ends (join them to
/// wait for that).
pub fn spawn_shards(count: usize, context: ShardContext) -> (Arc<[ShardHandle]>, Vec<JoinHandle<()>>) {
    let count = count.max(1);
    let mut handles = Vec::with_capacity(count);
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        let (sender, receiver) = mpsc::channel();
        let shard = shard::Shard::new(context.clone(), count);
        let thread = std::thread::Builder::new()
            .name(format!("{SHARD_THREAD_PREFIX}{index}"))
            .spawn(move || shard.run(receiver))
            .expect("the system can start a thread");
        handles.push(ShardHandle { sender });
        threads.push(thread);
    }
    (handles.into(), threads)
}

/// The shard that owns a tenant's trace: FNV-1a over tenant and trace id, so
/// the same trace always meets the same shard and tenants never share a trace.
pub fn shard_of(tenant: &str, trace_id: &[u8; 16], shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in tenant.bytes().chain([0xff]).chain(trace_id.iter().copied()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The high bits of FNV are the well-mixed ones: scale into 0..shards.
    ((u128::from(hash) * shards.max(1) as u128) >> 64) as usize
}

#[cfg(test)]
mod tests;
