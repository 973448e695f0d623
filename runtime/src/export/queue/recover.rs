//! Opening a queue after whatever ended the last run: segments are scanned,
//! a torn tail (an append that never returned) is cut off, segments wholly
//! acknowledged are deleted, and the cursor is loaded — so that every record
//! whose append returned and that was not acknowledged is there, once.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Inner, QueueConfig, Segment, create_segment, cursor, segment, sync_dir};

/// Builds the in-memory state of the queue in `dir` from its files.
pub(super) fn recover(dir: &Path, config: QueueConfig) -> io::Result<Inner> {
    let mut starts = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Some(start) = entry?.file_name().to_str().and_then(segment::parse_file_name) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    let mut segments: VecDeque<Segment> = VecDeque::new();
    for start in starts {
        let path = dir.join(segment::file_name(start));
        let scan = segment::scan(&path, config.weigh)?;
        if scan.is_damaged() {
            tracing::warn!(
                segment = %path.display(),
                kept = scan.records.len(),
                cut_bytes = scan.file_len - scan.valid_len,
                "cutting off a torn tail of an export queue segment (an append that never returned)"
            );
            let file = File::options().write(true).open(&path)?;
            file.set_len(scan.valid_len)?;
            file.sync_all()?;
        }
        if let Some(previous) = segments.back() {
            if start < previous.end() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("queue segment {} overlaps the one before it", path.display()),
                ));
            }
            if start > previous.end() {
                tracing::warn!(
                    queue = %dir.display(),
                    "records {}..{} of the queue are missing (a damaged segment)",
                    previous.end(),
                    start
                );
            }
        }
        segments.push_back(Segment { start, records: scan.records, bytes: scan.valid_len });
    }

    let first = segments.front().map_or(0, |s| s.start);
    let last_end = segments.back().map_or(0, Segment::end);
    let stored = cursor::load(dir)?;
    let cursor = stored.unwrap_or(first).max(first);
    // A cursor past the last record (only a damaged disk could make one)
    // must not let new records count as acknowledged: numbering goes on
    // from the cursor.
    let next = last_end.max(cursor);
    let mut deleted = Vec::new();
    while segments.front().is_some_and(|s| s.end() <= cursor && (segments.len() > 1 || s.end() < next)) {
        let segment = segments.pop_front().expect("checked");
        deleted.push(segment.start);
    }
    for start in deleted {
        fs::remove_file(dir.join(segment::file_name(start)))?;
    }
    let active = match segments.back() {
        Some(last) => File::options().append(true).open(dir.join(segment::file_name(last.start)))?,
        None => {
            let file = create_segment(dir, next)?;
            segments.push_back(Segment { start: next, records: Vec::new(), bytes: 0 });
            file
        }
    };
    // What was read back may sit only in the page cache (the process died,
    // the machine did not): make it durable before anything builds on it.
    active.sync_data()?;
    sync_dir(dir)?;
    let pending_weight = segments
        .iter()
        .flat_map(|s| s.records.iter().enumerate().filter(move |(i, _)| s.start + *i as u64 >= cursor))
        .map(|(_, m)| u64::from(m.weight))
        .sum();
    Ok(Inner {
        bytes: segments.iter().map(|s| s.bytes).sum(),
        segments,
        active: Arc::new(active),
        next,
        durable: next,
        cursor,
        pending_weight,
        syncing: false,
        broken: None,
        reader: None,
    })
}
