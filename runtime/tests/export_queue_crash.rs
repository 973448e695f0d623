//! `kill -9` in the middle of appends and acknowledgements: this test runs
//! its own binary again as a child process (the [`CHILD_DIR`] variable
//! switches it to the child's part), which appends to a durable queue from
//! several threads and acknowledges from another, printing each append and
//! acknowledgement once it has returned. The parent kills it (SIGKILL) in
//! mid-stream, reopens the queue and checks that every record whose append
//! returned is there unless it was being acknowledged, that nothing whose
//! acknowledgement returned comes back, and that what is there is whole.
//! Three rounds, each child recovering what the previous one left.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use betrace_runtime::export::queue::{DurableQueue, QueueConfig};

const CHILD_DIR: &str = "BETRACE_QUEUE_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "BETRACE_QUEUE_CRASH_CHILD_ROUND";
const APPENDERS: usize = 3;

fn queue_config() -> QueueConfig {
    // Small segments, so rolls and deletions happen during the run.
    QueueConfig { segment_bytes: 4 << 10, max_bytes: 1 << 30, weigh: |_| 1 }
}

/// Lines the child prints, after the operation returned:
/// `APPENDED <payload>…`, `ACKING <upto> <payload>…` (before the
/// acknowledgement), `ACKED <upto>`.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn payload(round: u32, thread: usize, n: u64, k: u64) -> Vec<u8> {
    let mut text = format!("{round}-{thread}-{n}-{k}:");
    text.push_str(&"x".repeat((n * 7 + k) as usize % 90));
    text.into_bytes()
}

fn well_formed(payload: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(payload) else { return false };
    let Some((id, padding)) = text.split_once(':') else { return false };
    let parts: Vec<u64> = id.split('-').filter_map(|p| p.parse().ok()).collect();
    parts.len() == 4 && padding.len() == (parts[2] * 7 + parts[3]) as usize % 90 && padding.bytes().all(|b| b == b'x')
}

/// The child's part: appends and acknowledges until killed.
fn run_child(dir: &str, round: u32) {
    let queue = Arc::new(DurableQueue::open(dir, queue_config()).expect("the child opens the queue"));
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|thread| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for n in 0.. {
                    let records: Vec<Vec<u8>> = (0..1 + n % 3).map(|k| payload(round, thread, n, k)).collect();
                    queue.append(&records).expect("append");
                    let names: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect();
                    say(format!("APPENDED {}", names.join(" ")));
                }
            })
        })
        .collect();
    let consumer = std::thread::spawn(move || {
        let mut from = 0;
        loop {
            let batch = queue.read(from, 5, 1 << 20).expect("read");
            from = batch.next;
            let Some(last) = batch.records.last() else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            let upto = last.seq + 1;
            let names: Vec<String> =
                batch.records.iter().map(|r| String::from_utf8_lossy(&r.payload).into_owned()).collect();
            say(format!("ACKING {upto} {}", names.join(" ")));
            queue.ack(upto).expect("ack");
            say(format!("ACKED {upto}"));
        }
    });
    for thread in appenders {
        let _ = thread.join();
    }
    let _ = consumer.join();
}

/// What the parent learnt from all children so far.
#[derive(Default)]
struct Seen {
    appended: BTreeSet<String>,
    acking: HashSet<String>,
    /// Payloads whose acknowledgement returned.
    acked: HashSet<String>,
    acked_upto: u64,
}

impl Seen {
    fn take(&mut self, line: &str) -> bool {
        let mut words = line.split(' ');
        match words.next() {
            Some("APPENDED") => {
                self.appended.extend(words.map(str::to_string));
                true
            }
            Some("ACKING") => {
                let _upto = words.next();
                self.acking.extend(words.map(str::to_string));
                false
            }
            Some("ACKED") => {
                let upto: u64 = words.next().and_then(|w| w.parse().ok()).expect("ACKED <upto>");
                self.acked_upto = self.acked_upto.max(upto);
                false
            }
            _ => false,
        }
    }
}

/// Runs one child until it has made `appends` appends, kills it, and reads
/// all it printed.
fn run_and_kill(dir: &Path, round: u32, appends: usize, seen: &mut Seen) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "appends_that_returned_survive_kill_9", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary starts again as a child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut count = 0;
    let mut pending_acks: Vec<String> = Vec::new();
    while count < appends && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let line = without_harness_output(&line);
        count += usize::from(seen.take(line));
        track_acks(line, &mut pending_acks, seen);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for line in lines {
        let line = line.unwrap();
        let line = without_harness_output(&line);
        seen.take(line);
        track_acks(line, &mut pending_acks, seen);
    }
    assert!(count >= appends, "round {round}: the child made only {count} appends");
}

/// The child's line without what the test harness printed before it on
/// the same line (`test NAME ... ` has no newline of its own).
fn without_harness_output(line: &str) -> &str {
    ["APPENDED ", "ACKING ", "ACKED "]
        .iter()
        .filter_map(|marker| line.find(marker))
        .min()
        .map_or(line, |at| &line[at..])
}

/// Payloads of an `ACKING` line count as acknowledged once its `ACKED`
/// line follows.
fn track_acks(line: &str, pending: &mut Vec<String>, seen: &mut Seen) {
    if let Some(rest) = line.strip_prefix("ACKING ") {
        *pending = rest.split(' ').skip(1).map(str::to_string).collect();
    } else if line.starts_with("ACKED ") {
        seen.acked.extend(pending.drain(..));
    }
}

fn check(dir: &Path, round: u32, seen: &Seen) {
    let queue = DurableQueue::open(dir, queue_config()).expect("the queue opens after a kill");
    assert!(queue.cursor() >= seen.acked_upto, "round {round}: an acknowledgement that returned was lost");
    let mut held = Vec::new();
    let mut from = 0;
    loop {
        let batch = queue.read(from, 1000, 16 << 20).unwrap();
        if batch.records.is_empty() {
            break;
        }
        from = batch.next;
        held.extend(batch.records);
    }
    assert!(held.windows(2).all(|w| w[1].seq == w[0].seq + 1), "round {round}: records are numbered without gaps");
    let mut present = HashSet::new();
    for record in &held {
        assert!(well_formed(&record.payload), "round {round}: a damaged record {:?}", record.payload);
        let name = String::from_utf8(record.payload.clone()).unwrap();
        assert!(!seen.acked.contains(&name), "round {round}: {name} came back after its acknowledgement returned");
        assert!(present.insert(name.clone()), "round {round}: {name} is held twice");
    }
    let lost: Vec<&String> =
        seen.appended.iter().filter(|p| !present.contains(*p) && !seen.acking.contains(*p)).collect();
    assert!(lost.is_empty(), "round {round}: appends that returned were lost: {lost:?}");
}

#[test]
fn appends_that_returned_survive_kill_9() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let round = std::env::var(CHILD_ROUND).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
        run_child(&dir, round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Seen::default();
    for round in 0..3 {
        run_and_kill(dir.path(), round, 150, &mut seen);
        check(dir.path(), round, &seen);
    }
    assert!(seen.appended.len() >= 450);
    assert!(seen.acked_upto > 0, "the child acknowledged records");
}
