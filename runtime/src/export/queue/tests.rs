use std::collections::VecDeque;
use std::io::Write as _;

use proptest::prelude::*;

use super::*;

fn config(segment_bytes: u64, max_bytes: u64) -> QueueConfig {
    QueueConfig { segment_bytes, max_bytes, weigh: |payload| payload.first().map_or(0, |b| u32::from(*b)) }
}

fn open(dir: &Path) -> DurableQueue {
    DurableQueue::open(dir, config(1 << 20, 1 << 30)).unwrap()
}

/// A payload that says which record it is: its first byte is its weight.
fn payload(n: u32) -> Vec<u8> {
    let mut bytes = vec![(n % 7) as u8 + 1];
    bytes.extend_from_slice(format!("record-{n}").as_bytes());
    bytes
}

/// Every record from the cursor on, read in small batches.
fn read_all(queue: &DurableQueue) -> Vec<QueuedRecord> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let batch = queue.read(from, 3, 64).unwrap();
        if batch.records.is_empty() {
            return out;
        }
        from = batch.next;
        out.extend(batch.records);
    }
}

fn payloads(records: &[QueuedRecord]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.payload.clone()).collect()
}

fn segment_files(dir: &Path) -> Vec<u64> {
    let mut starts: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(segment::parse_file_name))
        .collect();
    starts.sort_unstable();
    starts
}

fn last_segment(dir: &Path) -> PathBuf {
    dir.join(segment::file_name(*segment_files(dir).last().unwrap()))
}

#[test]
fn appended_records_read_back_in_order_and_acked_ones_stay_gone_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    queue.append(&[payload(0), payload(1)]).unwrap();
    queue.append(&[payload(2)]).unwrap();
    let records = read_all(&queue);
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(payloads(&records), [payload(0), payload(1), payload(2)]);
    assert_eq!(queue.stats().records, 3);
    assert_eq!(queue.stats().weight, 1 + 2 + 3);

    queue.ack(2).unwrap();
    assert_eq!(queue.stats(), QueueStats { records: 1, weight: 3, bytes: queue.stats().bytes });
    assert_eq!(payloads(&queue.read(0, 10, 1 << 20).unwrap().records), [payload(2)]);
    drop(queue);

    let queue = open(dir.path());
    assert_eq!(queue.cursor(), 2);
    assert_eq!(payloads(&read_all(&queue)), [payload(2)]);
    queue.append(&[payload(3)]).unwrap();
    assert_eq!(read_all(&queue).iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
}

/// A deferred acknowledgement hides its records at once but is stored only
/// when due (the first of a process is), by `store_cursor`, or by a later
/// `ack`: until then a reopen gives them back, and none that was stored.
#[test]
fn deferred_acknowledgements_are_stored_when_due_or_asked() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = |queue: &DurableQueue| read_all(queue).iter().map(|r| r.seq).collect::<Vec<_>>();
    let queue = open(dir.path());
    queue.append(&(0..6).map(payload).collect::<Vec<_>>()).unwrap();
    queue.ack_deferred(1).unwrap();
    assert!(!queue.has_unstored_acks(), "the first is stored");
    queue.ack_deferred(3).unwrap();
    assert!(queue.has_unstored_acks(), "the next, within the interval, is not");
    assert_eq!(seqs(&queue), [3, 4, 5], "but its records are not read again");
    drop(queue);

    let queue = open(dir.path());
    assert_eq!(seqs(&queue), [1, 2, 3, 4, 5], "delivered again after a restart");
    queue.ack_deferred(2).unwrap();
    queue.ack_deferred(4).unwrap();
    queue.store_cursor().unwrap();
    assert!(!queue.has_unstored_acks());
    drop(queue);

    let queue = open(dir.path());
    assert_eq!(seqs(&queue), [4, 5]);
    queue.ack_deferred(5).unwrap();
    queue.ack_deferred(6).unwrap();
    assert!(queue.has_unstored_acks());
    queue.ack(6).unwrap();
    assert!(!queue.has_unstored_acks(), "an ack stores what is deferred");
}

/// One append of more records than one `writev` takes (the kernel's
/// limit is 1,024 slices, two a record) is written whole and in order, and
/// reads back so after a reopen.
#[test]
fn an_append_of_thousands_of_records_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let many: Vec<Vec<u8>> = (0..3_000).map(payload).collect();
    queue.append(&many).unwrap();
    drop(queue);
    let queue = open(dir.path());
    let all = queue.read(0, 10_000, 1 << 24).unwrap().records;
    assert_eq!(payloads(&all), many);
}

#[test]
fn reads_respect_their_limits_and_report_where_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    queue.append(&(0..10).map(payload).collect::<Vec<_>>()).unwrap();
    let batch = queue.read(0, 4, 1 << 20).unwrap();
    assert_eq!(batch.records.len(), 4);
    assert_eq!(batch.next, 4);
    // One byte allowed still reads one record.
    let batch = queue.read(4, 100, 1).unwrap();
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.next, 5);
    // Reading before the cursor starts at the cursor.
    queue.ack(7).unwrap();
    assert_eq!(queue.read(0, 100, 1 << 20).unwrap().records[0].seq, 7);
    // Acknowledging what was never appended goes no further than the end.
    queue.ack(1000).unwrap();
    assert_eq!(queue.cursor(), 10);
    queue.append(&[payload(10)]).unwrap();
    assert_eq!(read_all(&queue).iter().map(|r| r.seq).collect::<Vec<_>>(), [10]);
}

#[test]
fn a_torn_tail_is_cut_off_on_reopen_and_appends_go_on_after_it() {
    for torn in [&b"\x05\x00"[..], b"\x10\x00\x00\x00\x99\x99\x99\x99half", &[0; 40]] {
        let dir = tempfile::tempdir().unwrap();
        let queue = open(dir.path());
        queue.append(&[payload(0), payload(1)]).unwrap();
        drop(queue);
        let path = last_segment(dir.path());
        let whole_len = fs::metadata(&path).unwrap().len();
        File::options().append(true).open(&path).unwrap().write_all(torn).unwrap();

        let queue = open(dir.path());
        assert_eq!(fs::metadata(&path).unwrap().len(), whole_len, "torn tail {torn:?}");
        queue.append(&[payload(2)]).unwrap();
        assert_eq!(payloads(&read_all(&queue)), [payload(0), payload(1), payload(2)]);
        drop(queue);
        assert_eq!(payloads(&read_all(&open(dir.path()))), [payload(0), payload(1), payload(2)]);
    }
}

#[test]
fn half_a_record_at_the_end_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    queue.append(&[payload(0), payload(1)]).unwrap();
    drop(queue);
    let path = last_segment(dir.path());
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let queue = open(dir.path());
    assert_eq!(payloads(&read_all(&queue)), [payload(0)]);
    assert_eq!(queue.stats().records, 1);
}

#[test]
fn a_record_with_a_bad_checksum_at_the_end_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    queue.append(&[payload(0), payload(1)]).unwrap();
    drop(queue);
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let queue = open(dir.path());
    assert_eq!(payloads(&read_all(&queue)), [payload(0)]);
    queue.append(&[payload(2)]).unwrap();
    assert_eq!(read_all(&queue).iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(payloads(&read_all(&queue)), [payload(0), payload(2)]);
}

#[test]
fn a_record_damaged_after_it_was_written_is_skipped_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    queue.append(&[payload(0), payload(1), payload(2)]).unwrap();
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let second_payload = HEADER_LEN as usize * 2 + payload(0).len();
    bytes[second_payload] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let batch = queue.read(0, 10, 1 << 20).unwrap();
    assert_eq!(batch.records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(batch.next, 3);
}

#[test]
fn segments_roll_at_their_size_and_acked_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let queue = DurableQueue::open(dir.path(), config(64, 1 << 30)).unwrap();
    for n in 0..12 {
        queue.append(&[payload(n)]).unwrap();
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(files[0], 0);
    assert_eq!(
        queue.stats().bytes,
        files.iter().map(|s| fs::metadata(dir.path().join(segment::file_name(*s))).unwrap().len()).sum::<u64>()
    );

    // Acknowledging into the second segment deletes the first only.
    queue.ack(files[1] + 1).unwrap();
    assert_eq!(segment_files(dir.path()), files[1..]);
    // Acknowledging everything keeps the active segment, which takes the next append.
    queue.ack(12).unwrap();
    assert_eq!(segment_files(dir.path()), [*files.last().unwrap()]);
    queue.append(&[payload(12)]).unwrap();
    drop(queue);
    let queue = DurableQueue::open(dir.path(), config(64, 1 << 30)).unwrap();
    assert_eq!(read_all(&queue).iter().map(|r| (r.seq, r.payload.clone())).collect::<Vec<_>>(), [(12, payload(12))]);
}

#[test]
fn past_its_size_limit_the_queue_drops_its_oldest_segments_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let record_bytes = HEADER_LEN + payload(0).len() as u64;
    // Two records a segment, at most three segments' worth of bytes.
    let queue = DurableQueue::open(dir.path(), config(2 * record_bytes, 6 * record_bytes)).unwrap();
    for n in 0..6 {
        assert_eq!(queue.append(&[payload(n)]).unwrap(), Appended::default());
    }
    queue.ack(1).unwrap();
    // The seventh record does not fit: the oldest segment (records 0, 1)
    // goes, of which only record 1 was unacknowledged.
    let appended = queue.append(&[payload(6)]).unwrap();
    assert_eq!(appended, Appended { dropped_records: 1, dropped_weight: u64::from(payload(1)[0]) });
    assert_eq!(queue.cursor(), 2);
    assert_eq!(read_all(&queue).iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4, 5, 6]);
    let stats = queue.stats();
    assert_eq!(stats.records, 5);
    assert_eq!(stats.weight, (2..7).map(|n| u64::from(payload(n)[0])).sum::<u64>());
    assert!(stats.bytes <= 6 * record_bytes, "{stats:?}");
    drop(queue);

    // After a reopen the dropped records stay dropped.
    let queue = DurableQueue::open(dir.path(), config(2 * record_bytes, 6 * record_bytes)).unwrap();
    assert_eq!(read_all(&queue).iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4, 5, 6]);
    // A limit below one segment still keeps the newest append.
    drop(queue);
    let queue = DurableQueue::open(dir.path(), config(1 << 20, record_bytes)).unwrap();
    let appended = queue.append(&[payload(7)]).unwrap();
    assert_eq!(appended.dropped_records, 5);
    assert_eq!(payloads(&read_all(&queue)), [payload(7)]);
}

#[test]
fn appends_from_many_threads_are_all_kept_in_each_threads_order() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(DurableQueue::open(dir.path(), config(512, 1 << 30)).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|thread| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for n in 0..25u8 {
                    queue.append(&[vec![1, thread, n], vec![1, thread, n + 100]]).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let records = read_all(&queue);
    assert_eq!(records.len(), 200);
    assert!(records.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    for thread in 0..4u8 {
        let seen: Vec<u8> = records.iter().filter(|r| r.payload[1] == thread).map(|r| r.payload[2]).collect();
        let expected: Vec<u8> = (0..25u8).flat_map(|n| [n, n + 100]).collect();
        assert_eq!(seen, expected, "thread {thread}");
    }
    assert_eq!(queue.stats().weight, 200);
}

#[test]
fn a_queue_is_open_in_one_place_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let error = DurableQueue::open(dir.path(), QueueConfig::default()).unwrap_err();
    assert!(error.to_string().contains("open in another process"), "{error}");
    drop(queue);
    open(dir.path());
}

#[test]
fn payloads_over_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let queue = open(dir.path());
    let error = queue.append(&[vec![0; MAX_PAYLOAD_LEN + 1]]).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(queue.stats().records, 0);
}

#[tokio::test]
async fn an_append_wakes_the_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(open(dir.path()));
    let appender = Arc::clone(&queue);
    let waiter = tokio::spawn(async move {
        appender.wait_for_appends().await;
    });
    tokio::task::yield_now().await;
    queue.append(&[payload(0)]).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Op {
    /// Append records of these lengths.
    Append(Vec<usize>),
    /// Acknowledge this many of the records not yet acknowledged.
    Ack(usize),
    /// The same, deferred (`ack_deferred`).
    AckDeferred(usize),
    /// Store the deferred acknowledgements.
    StoreCursor,
    /// Close and open again.
    Reopen,
    /// Close, write these bytes at the end of the last segment (a torn
    /// append), open again.
    TearAndReopen(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0usize..40, 1..4).prop_map(Op::Append),
        3 => (0usize..6).prop_map(Op::Ack),
        2 => (0usize..6).prop_map(Op::AckDeferred),
        1 => Just(Op::StoreCursor),
        1 => Just(Op::Reopen),
        1 => prop::collection::vec(any::<u8>(), 1..24).prop_map(Op::TearAndReopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Against a plain list: after any sequence of appends, acknowledgements,
    /// reopens and torn tails, the queue holds exactly the records appended
    /// and not acknowledged, in order — nothing acknowledged comes back,
    /// nothing unacknowledged is lost. Records acknowledged but not yet
    /// stored (deferred) are not read again until a reopen, which gives back
    /// those still in a kept segment, ahead of the rest (at least once).
    #[test]
    fn the_queue_behaves_like_a_list(ops in prop::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let queue_config = config(96, 1 << 30);
        let mut queue = Some(DurableQueue::open(dir.path(), queue_config).unwrap());
        let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        // Acknowledged (deferred), the cursor not yet stored past them.
        let mut unstored: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        let mut next_seq = 0u64;
        let mut next_byte = 0u8;
        for op in ops {
            match op {
                Op::Append(lens) => {
                    let batch: Vec<Vec<u8>> = lens
                        .iter()
                        .map(|len| {
                            next_byte = next_byte.wrapping_add(1);
                            vec![next_byte; *len]
                        })
                        .collect();
                    queue.as_ref().unwrap().append(&batch).unwrap();
                    for payload in batch {
                        model.push_back((next_seq, payload));
                        next_seq += 1;
                    }
                }
                Op::Ack(count) => {
                    let count = count.min(model.len());
                    if count > 0 {
                        let upto = model[count - 1].0 + 1;
                        queue.as_ref().unwrap().ack(upto).unwrap();
                        model.drain(..count);
                        unstored.clear();
                    }
                }
                Op::AckDeferred(count) => {
                    let count = count.min(model.len());
                    if count > 0 {
                        let upto = model[count - 1].0 + 1;
                        let queue = queue.as_ref().unwrap();
                        queue.ack_deferred(upto).unwrap();
                        unstored.extend(model.drain(..count));
                        // Stored when due (the first in a process always is).
                        if !queue.has_unstored_acks() {
                            unstored.clear();
                        }
                    }
                }
                Op::StoreCursor => {
                    queue.as_ref().unwrap().store_cursor().unwrap();
                    unstored.clear();
                }
                Op::Reopen | Op::TearAndReopen(_) => {
                    drop(queue.take());
                    if let Op::TearAndReopen(garbage) = &op {
                        let mut last = File::options().append(true).open(last_segment(dir.path())).unwrap();
                        last.write_all(garbage).unwrap();
                    }
                    queue = Some(DurableQueue::open(dir.path(), queue_config).unwrap());
                    let oldest_kept = segment_files(dir.path())[0];
                    for record in unstored.drain(..).rev().filter(|(seq, _)| *seq >= oldest_kept) {
                        model.push_front(record);
                    }
                }
            }
            let queue = queue.as_ref().unwrap();
            let held: Vec<(u64, Vec<u8>)> = read_all(queue).into_iter().map(|r| (r.seq, r.payload)).collect();
            prop_assert_eq!(&held, &Vec::from(model.clone()));
            let stats = queue.stats();
            prop_assert_eq!(stats.records, model.len() as u64);
            prop_assert_eq!(stats.weight, model.iter().map(|(_, p)| p.first().map_or(0, |b| u64::from(*b))).sum::<u64>());
        }
    }
}
