//! The durable queue in front of each network exporter: a violation is on
//! disk before `emit` returns, and leaves the queue only once the downstream
//! has taken it, so a crash or `kill -9` loses none.
//!
//! It is a small segment log of our own rather than an embedded database
//! (sled, redb, RocksDB): the job is one append-only FIFO with one reader,
//! which is a few hundred lines, and owning them gives exact control of the
//! two things that matter — when data is fsync'd (once per append call, and
//! shared by appends from several threads that arrive together: group
//! commit) and what recovery does after a crash (cut a torn tail, keep every
//! record whose append returned). A database would bring B-trees,
//! compaction and its own durability settings to learn and to trust, for
//! none of its strengths.
//!
//! On disk, a queue is a directory:
//! - segment files `<first record number, 20 digits>.seg`, each a run of
//!   records framed `[len u32 LE][crc32 u32 LE][payload]` (`segment.rs`); the
//!   last one takes appends, and a new one is started past
//!   [`QueueConfig::segment_bytes`];
//! - `cursor`: the number of the first record not yet acknowledged
//!   (`cursor.rs`);
//! - `lock`: held (flock) while the queue is open, so two processes never
//!   share a queue.
//!
//! Records are numbered from 0 for the life of the directory. Segments whose
//! records are all acknowledged are deleted. Past [`QueueConfig::max_bytes`]
//! the oldest segments are dropped, acknowledged or not, and what that
//! dropped is reported to the appender. In memory the queue keeps 16 bytes
//! per record held (where it is, how long, its weight).
//!
//! A failed fsync leaves the queue refusing appends: Linux may have dropped
//! the pages it could not write, so a second fsync could succeed and lie.
//! Opening the queue again recovers from what is really on disk.

mod cursor;
mod recover;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File, TryLockError};
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use segment::{HEADER_LEN, MAX_PAYLOAD_LEN, RecordMeta};

/// How often [`DurableQueue::ack_deferred`] stores the cursor at most.
pub const CURSOR_STORE_INTERVAL: Duration = Duration::from_secs(1);

/// The name of the lock file in a queue directory.
const LOCK_NAME: &str = "lock";

/// Sizes of a queue.
#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    /// A segment takes appends until it holds this many bytes.
    pub segment_bytes: u64,
    /// The most bytes of segments kept; past it the oldest segments go.
    pub max_bytes: u64,
    /// What a record counts for in [`QueueStats::weight`] and
    /// [`Appended::dropped_weight`] (the export queues count violations).
    pub weigh: fn(&[u8]) -> u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { segment_bytes: 8 << 20, max_bytes: 1 << 30, weigh: |_| 1 }
    }
}

/// One record read from a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedRecord {
    /// The record's number; acknowledge up to `seq + 1` once it is handled.
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Records read by [`DurableQueue::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub records: Vec<QueuedRecord>,
    /// Where the next read should start: after the last record looked at
    /// (a damaged record is skipped, with a warning, not returned).
    pub next: u64,
}

/// What an append had to drop to stay under [`QueueConfig::max_bytes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Records dropped before they were acknowledged.
    pub dropped_records: u64,
    /// Their weight.
    pub dropped_weight: u64,
}

/// How full a queue is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Records appended and not yet acknowledged.
    pub records: u64,
    /// Their weight.
    pub weight: u64,
    /// Bytes of segment files on disk.
    pub bytes: u64,
}

/// A durable FIFO of byte records: appended from any thread, read and
/// acknowledged by one consumer.
#[derive(Debug)]
pub struct DurableQueue {
    dir: PathBuf,
    config: QueueConfig,
    inner: Mutex<Inner>,
    /// Signalled whenever a group fsync ends.
    synced: Condvar,
    /// The cursor as last stored, and when; acknowledgements take it one
    /// at a time (each may rewrite the cursor file).
    stored: Mutex<StoredCursor>,
    /// Wakes the consumer after an append.
    appended: tokio::sync::Notify,
    /// Held open for the flock on [`LOCK_NAME`].
    _lock: File,
}

/// See [`DurableQueue::ack_deferred`].
#[derive(Debug)]
struct StoredCursor {
    /// The cursor in the file (or below it, if the file is older than
    /// what reopening found: acknowledged segments deleted).
    cursor: u64,
    /// When it was stored; `None` before this process stored it.
    at: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    /// Oldest first; never empty: the last one takes appends.
    segments: VecDeque<Segment>,
    /// The last segment, open for appending.
    active: Arc<File>,
    /// The number the next appended record gets.
    next: u64,
    /// Records below this number are fsync'd: readable, and their appends
    /// may return.
    durable: u64,
    /// Records below this number are acknowledged (or dropped).
    cursor: u64,
    /// Bytes of all segments.
    bytes: u64,
    /// Weight of the records from `cursor` to `next`.
    pending_weight: u64,
    /// Whether some thread is fsyncing the active segment (outside the lock).
    syncing: bool,
    /// Why the queue refuses appends: an fsync failed, so what is on disk is
    /// unknown (the kernel may have dropped the dirty pages).
    broken: Option<String>,
    /// The segment file last read from, kept open: its first record number
    /// and the file.
    reader: Option<(u64, File)>,
}

#[derive(Debug)]
struct Segment {
    start: u64,
    records: Vec<RecordMeta>,
    bytes: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.records.len() as u64
    }
}

impl DurableQueue {
    /// Opens (creating it if needed) the queue in `dir`, recovering from
    /// whatever a crash left: a torn tail is cut off, segments already
    /// acknowledged are deleted, the cursor is loaded. Fails when another
    /// process has the queue open.
    pub fn open(dir: impl Into<PathBuf>, config: QueueConfig) -> io::Result<DurableQueue> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let lock = File::options().create(true).truncate(false).write(true).open(dir.join(LOCK_NAME))?;
        lock.try_lock().map_err(|e| match e {
            TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("the export queue {} is open in another process", dir.display()),
            ),
            TryLockError::Error(e) => e,
        })?;
        match fs::remove_file(dir.join(cursor::TEMP_NAME)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let inner = recover::recover(&dir, config)?;
        let stored = StoredCursor { cursor: inner.cursor, at: None };
        Ok(DurableQueue {
            dir,
            config,
            inner: Mutex::new(inner),
            synced: Condvar::new(),
            stored: Mutex::new(stored),
            appended: tokio::sync::Notify::new(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `payloads` as consecutive records and returns once they are
    /// fsync'd. Appends from several threads at once share one fsync.
    pub fn append(&self, payloads: &[Vec<u8>]) -> io::Result<Appended> {
        if let Some(long) = payloads.iter().find(|p| p.len() > MAX_PAYLOAD_LEN) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a queue record of {} bytes is over the limit of {MAX_PAYLOAD_LEN}", long.len()),
            ));
        }
        if payloads.is_empty() {
            return Ok(Appended::default());
        }
        let headers: Vec<_> = payloads.iter().map(|payload| segment::header(payload)).collect();
        let mut metas = Vec::with_capacity(payloads.len());
        let mut incoming = 0;
        for payload in payloads {
            metas.push(RecordMeta {
                offset: incoming,
                len: payload.len() as u32,
                weight: (self.config.weigh)(payload),
            });
            incoming += HEADER_LEN + payload.len() as u64;
        }

        let mut inner = self.lock();
        if let Some(reason) = &inner.broken {
            return Err(broken(reason));
        }
        let dropped = self.make_room(&mut inner, incoming)?;
        let active = inner.segments.back().expect("a queue always has an active segment");
        if active.bytes >= self.config.segment_bytes && !active.records.is_empty() {
            self.roll(&mut inner)?;
        }
        let base = inner.segments.back().expect("a queue always has an active segment").bytes;
        if let Err(error) = write_frames(&inner.active, &headers, payloads) {
            // Cut off whatever part was written, so the next append does not
            // follow garbage.
            if let Err(cut) = inner.active.set_len(base) {
                inner.broken = Some(format!("cutting off a failed append failed: {cut}"));
            }
            return Err(error);
        }
        let weight: u64 = metas.iter().map(|m| u64::from(m.weight)).sum();
        let count = metas.len() as u64;
        let active = inner.segments.back_mut().expect("a queue always has an active segment");
        active.records.extend(metas.into_iter().map(|m| RecordMeta { offset: base + m.offset, ..m }));
        active.bytes += incoming;
        inner.bytes += incoming;
        inner.next += count;
        inner.pending_weight += weight;
        let end = inner.next;
        self.wait_durable(inner, end)?;
        self.appended.notify_one();
        Ok(dropped)
    }

    /// Up to `max_records` records (and about `max_bytes`; at least one)
    /// from record `from` on, or from the cursor if that is later. Only
    /// fsync'd records are read.
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> io::Result<ReadBatch> {
        let mut inner = self.lock();
        let Inner { segments, reader, durable, cursor, .. } = &mut *inner;
        let mut seq = from.max(*cursor);
        let (mut taken, mut bytes) = (0usize, 0usize);
        let mut records = Vec::new();
        for segment in segments.iter() {
            if segment.end() <= seq {
                continue;
            }
            seq = seq.max(segment.start);
            // The records to read here, within the limits: a run, read at once.
            let first = seq;
            while seq < segment.end() && seq < *durable && taken < max_records && (bytes < max_bytes || taken == 0) {
                bytes += segment.records[(seq - segment.start) as usize].len as usize;
                (taken, seq) = (taken + 1, seq + 1);
            }
            if seq == first {
                break;
            }
            let run = &segment.records[(first - segment.start) as usize..(seq - segment.start) as usize];
            let framed = read_run(reader, &self.dir, segment.start, run)?;
            let base = run[0].offset;
            for (n, meta) in run.iter().enumerate() {
                match segment::unframe(&framed[(meta.offset - base) as usize..(meta.end() - base) as usize]) {
                    Some(payload) => records.push(QueuedRecord { seq: first + n as u64, payload: payload.to_vec() }),
                    None => tracing::warn!(
                        queue = %self.dir.display(),
                        record = first + n as u64,
                        "a queue record is damaged on disk (checksum mismatch); it is skipped"
                    ),
                }
            }
            if seq < segment.end() {
                break;
            }
        }
        Ok(ReadBatch { records, next: seq })
    }

    /// Acknowledges every record below `upto`: they are never read again,
    /// not even after a restart. Segments left with nothing to deliver are
    /// deleted.
    pub fn ack(&self, upto: u64) -> io::Result<()> {
        self.acknowledge(upto, Duration::ZERO)
    }

    /// Acknowledges every record below `upto` as [`ack`](Self::ack) does,
    /// but stores the cursor only if it was last stored
    /// [`CURSOR_STORE_INTERVAL`] ago or more: until it is stored again (by
    /// a later acknowledgement or [`store_cursor`](Self::store_cursor)), a
    /// restart delivers those records again — at least once, as after a
    /// crash between a delivery and its acknowledgement. Storing the cursor
    /// is two fsyncs, and a loaded exporter acknowledges dozens of times a
    /// second.
    pub fn ack_deferred(&self, upto: u64) -> io::Result<()> {
        self.acknowledge(upto, CURSOR_STORE_INTERVAL)
    }

    /// Stores the cursor if acknowledgements went past the stored one.
    pub fn store_cursor(&self) -> io::Result<()> {
        let mut stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
        let cursor = self.lock().cursor;
        self.store_if_behind(&mut stored, cursor)
    }

    /// Whether acknowledgements went past the stored cursor.
    pub fn has_unstored_acks(&self) -> bool {
        let stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner).cursor;
        self.lock().cursor > stored
    }

    fn acknowledge(&self, upto: u64, store_after: Duration) -> io::Result<()> {
        let mut stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
        let upto = upto.min(self.lock().durable);
        let due = stored.at.is_none_or(|at| at.elapsed() >= store_after);
        if due {
            // Stored before the cursor moves: an acknowledgement that fails
            // to store leaves the records to be read again.
            self.store_if_behind(&mut stored, upto)?;
        }
        let deleted = {
            let mut inner = self.lock();
            advance_cursor(&mut inner, upto)
        };
        // Deleting a segment before the cursor stored past it is safe:
        // reopening starts at the oldest segment kept if the stored cursor
        // is older, and a deleted segment held only acknowledged records.
        for start in deleted {
            self.remove_segment(start);
        }
        Ok(())
    }

    fn store_if_behind(&self, stored: &mut StoredCursor, cursor: u64) -> io::Result<()> {
        if cursor > stored.cursor {
            cursor::store(&self.dir, cursor)?;
            *stored = StoredCursor { cursor, at: Some(Instant::now()) };
        }
        Ok(())
    }

    /// The first record not yet acknowledged (nor dropped).
    pub fn cursor(&self) -> u64 {
        self.lock().cursor
    }

    pub fn stats(&self) -> QueueStats {
        let inner = self.lock();
        QueueStats { records: inner.next - inner.cursor, weight: inner.pending_weight, bytes: inner.bytes }
    }

    /// Returns after the next append (at once if one happened since the
    /// last call). For the one consumer.
    pub async fn wait_for_appends(&self) {
        self.appended.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held with the state half-changed,
        // so a poisoned lock still guards a consistent queue.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until records below `end` are fsync'd. The first waiter fsyncs
    /// for everyone: appends that came while it did are covered by the next
    /// fsync, made by one of them.
    fn wait_durable<'q>(&'q self, mut inner: MutexGuard<'q, Inner>, end: u64) -> io::Result<()> {
        while inner.durable < end {
            if let Some(reason) = &inner.broken {
                return Err(broken(reason));
            }
            if inner.syncing {
                inner = self.synced.wait(inner).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            inner.syncing = true;
            let target = inner.next;
            let file = Arc::clone(&inner.active);
            drop(inner);
            let result = file.sync_data();
            inner = self.lock();
            inner.syncing = false;
            match result {
                Ok(()) => inner.durable = inner.durable.max(target),
                Err(e) => inner.broken = Some(format!("fsync failed: {e}")),
            }
            self.synced.notify_all();
        }
        Ok(())
    }

    /// Drops the oldest segments until `incoming` more bytes fit.
    fn make_room(&self, inner: &mut Inner, incoming: u64) -> io::Result<Appended> {
        let mut dropped = Appended::default();
        while inner.bytes + incoming > self.config.max_bytes {
            if inner.segments.len() > 1 {
                let segment = inner.segments.pop_front().expect("more than one segment");
                let unacked = &segment.records
                    [(inner.cursor.saturating_sub(segment.start) as usize).min(segment.records.len())..];
                let weight: u64 = unacked.iter().map(|m| u64::from(m.weight)).sum();
                dropped.dropped_records += unacked.len() as u64;
                dropped.dropped_weight += weight;
                inner.pending_weight -= weight;
                inner.bytes -= segment.bytes;
                let next_start = inner.segments.front().map_or(inner.next, |s| s.start);
                inner.cursor = inner.cursor.max(next_start);
                if inner.reader.as_ref().is_some_and(|(start, _)| *start == segment.start) {
                    inner.reader = None;
                }
                self.remove_segment(segment.start);
            } else if !inner.segments[0].records.is_empty() {
                self.roll(inner)?;
            } else {
                break;
            }
        }
        Ok(dropped)
    }

    /// Starts a new active segment. The old one is fsync'd first, so only the
    /// last segment can ever have a torn tail.
    fn roll(&self, inner: &mut Inner) -> io::Result<()> {
        if let Err(e) = inner.active.sync_data() {
            inner.broken = Some(format!("fsync failed: {e}"));
            return Err(e);
        }
        inner.durable = inner.next;
        self.synced.notify_all();
        let start = inner.next;
        let file = create_segment(&self.dir, start)?;
        inner.segments.push_back(Segment { start, records: Vec::new(), bytes: 0 });
        inner.active = Arc::new(file);
        Ok(())
    }

    fn remove_segment(&self, start: u64) {
        let path = self.dir.join(segment::file_name(start));
        if let Err(e) = fs::remove_file(&path) {
            // Left behind, it is deleted by the next open (its records are
            // below the cursor or before the oldest kept).
            tracing::warn!(segment = %path.display(), "cannot delete a queue segment: {e}");
        }
    }
}

/// Moves the cursor to `upto` and takes the segments wholly below it out of
/// the queue (the active one stays); returns their first record numbers.
fn advance_cursor(inner: &mut Inner, upto: u64) -> Vec<u64> {
    if upto <= inner.cursor {
        return Vec::new();
    }
    let acked_weight: u64 = inner
        .segments
        .iter()
        .flat_map(|segment| {
            let from = (inner.cursor.saturating_sub(segment.start) as usize).min(segment.records.len());
            let to = (upto.saturating_sub(segment.start) as usize).min(segment.records.len());
            segment.records[from..to.max(from)].iter()
        })
        .map(|m| u64::from(m.weight))
        .sum();
    inner.pending_weight -= acked_weight;
    inner.cursor = upto;
    let mut deleted = Vec::new();
    while inner.segments.len() > 1 && inner.segments[0].end() <= inner.cursor {
        let segment = inner.segments.pop_front().expect("more than one segment");
        inner.bytes -= segment.bytes;
        if inner.reader.as_ref().is_some_and(|(start, _)| *start == segment.start) {
            inner.reader = None;
        }
        deleted.push(segment.start);
    }
    deleted
}

fn create_segment(dir: &Path, start: u64) -> io::Result<File> {
    let file = File::options().create_new(true).append(true).open(dir.join(segment::file_name(start)))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Reads a run of consecutive framed records (`run`, at least one) of the
/// segment starting at `start` with one seek and one read, through the
/// cached handle of the segment: two syscalls a batch, not two a record.
fn read_run(reader: &mut Option<(u64, File)>, dir: &Path, start: u64, run: &[RecordMeta]) -> io::Result<Vec<u8>> {
    if reader.as_ref().is_none_or(|(cached, _)| *cached != start) {
        *reader = Some((start, File::open(dir.join(segment::file_name(start)))?));
    }
    let (_, file) = reader.as_mut().expect("just opened");
    let (first, last) = (run[0], run[run.len() - 1]);
    let mut framed = vec![0; (last.end() - first.offset) as usize];
    file.seek(SeekFrom::Start(first.offset))?;
    file.read_exact(&mut framed)?;
    Ok(framed)
}

/// Makes a directory's entries (created, renamed files) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes each record's header and payload in turn with `writev`, without
/// copying them into one buffer first (a large buffer made afresh for every
/// append also page-faulted its way in).
fn write_frames(mut file: &File, headers: &[[u8; HEADER_LEN as usize]], payloads: &[Vec<u8>]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = headers
        .iter()
        .zip(payloads)
        .flat_map(|(header, payload)| [IoSlice::new(header), IoSlice::new(payload)])
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut rest, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn broken(reason: &str) -> io::Error {
    io::Error::other(format!("the export queue refuses appends after an earlier failure ({reason})"))
}
