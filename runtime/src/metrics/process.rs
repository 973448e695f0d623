//! `process_cpu_seconds_total` and `process_resident_memory_bytes`, the
//! standard process metrics (unprefixed, as Prometheus client libraries name
//! them), read from `/proc/self` at each scrape. What a server costs is the
//! first thing asked of it under load; `betrace loadgen` divides the CPU
//! seconds by the spans received to report CPU a span. Elsewhere than Linux
//! they are absent.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `/proc` counts CPU time in ticks of `USER_HZ`, which Linux fixes at 100
/// for every program that reads it (it is part of the kernel's ABI, whatever
/// the kernel's own tick rate).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default)]
pub(super) struct ProcessMetrics;

/// This process's user plus system CPU time so far (`None` elsewhere than Linux).
pub(crate) fn own_cpu_seconds() -> Option<f64> {
    std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(cpu_seconds)
}

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(seconds) = own_cpu_seconds() {
            let help = "User and system CPU time of the process";
            let metric = encoder.encode_descriptor("process_cpu_seconds", help, None, MetricType::Counter)?;
            ConstCounter::new(seconds).encode(metric)?;
        }
        if let Some(bytes) = std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(resident_bytes) {
            let help = "Resident memory of the process";
            let metric = encoder.encode_descriptor("process_resident_memory_bytes", help, None, MetricType::Gauge)?;
            ConstGauge::new(bytes).encode(metric)?;
        }
        Ok(())
    }
}

/// The server's CPU time by the threads that spent it, as
/// `betrace_thread_cpu_seconds_total{threads}` reports it: the shards
/// (assembling and evaluating), the tokio runtime's threads (receiving,
/// exporting, the admin port) and the rest. A change that makes one cheaper
/// can make another dearer (two threads a core share its caches), so
/// `betrace loadgen` reports them apart. A thread that ends keeps counting
/// what it had spent at the scrape before (so the counter never falls); what
/// it spent after that is only in `process_cpu_seconds_total`.
#[derive(Debug, Default)]
pub(super) struct ThreadMetrics {
    times: Mutex<ThreadTimes>,
}

/// The `threads` label of each kind of thread, in the order reported.
pub const THREAD_KINDS: [&str; 3] = ["shards", "io", "other"];

/// Which of [`THREAD_KINDS`] a thread of this name is.
fn thread_kind(name: &str) -> usize {
    if name.starts_with(crate::assembly::SHARD_THREAD_PREFIX) {
        0
    } else if name == crate::server::IO_THREAD_NAME {
        1
    } else {
        2
    }
}

/// The running threads as (thread id, kind, user plus system CPU seconds so
/// far); `None` elsewhere than Linux.
fn running_threads() -> Option<Vec<(u64, usize, f64)>> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Some(id) = task.file_name().to_str().and_then(|id| id.parse().ok()) else { continue };
        // A thread that ended since the listing has no stat to read.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        if let (Some(name), Some(spent)) = (command_name(&stat), cpu_seconds(&stat)) {
            threads.push((id, thread_kind(name), spent));
        }
    }
    Some(threads)
}

/// What each thread had spent at the last scrape, and what the threads
/// gone since had.
#[derive(Debug, Default)]
struct ThreadTimes {
    last: HashMap<u64, (usize, f64)>,
    gone: [f64; 3],
}

impl ThreadTimes {
    /// CPU seconds by kind, given the threads running now.
    fn totals(&mut self, running: Vec<(u64, usize, f64)>) -> [f64; 3] {
        let now: HashMap<u64, (usize, f64)> =
            running.into_iter().map(|(id, kind, spent)| (id, (kind, spent))).collect();
        for (id, &(kind, spent)) in &self.last {
            if !now.contains_key(id) {
                self.gone[kind] += spent;
            }
        }
        let mut totals = self.gone;
        for &(kind, spent) in now.values() {
            totals[kind] += spent;
        }
        self.last = now;
        totals
    }
}

impl Collector for ThreadMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(running) = running_threads() else { return Ok(()) };
        let seconds = self.times.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).totals(running);
        let help = "User and system CPU time of the server's threads, by kind: shards, io (tokio), other";
        let mut family = encoder.encode_descriptor("thread_cpu_seconds", help, None, MetricType::Counter)?;
        for (kind, spent) in THREAD_KINDS.into_iter().zip(seconds) {
            ConstCounter::new(spent).encode(family.encode_family(&[("threads", kind)])?)?;
        }
        Ok(())
    }
}

/// The command (for a thread, the thread's) name in a `stat` line: between
/// the first `(` and the last `)`.
fn command_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// User plus system time from `/proc/self/stat`: fields 14 and 15, counted
/// after the command name, which is in parentheses and may hold spaces or
/// parentheses itself (so the fields start after the last `)`).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3), …, utime (14), stime (15).
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

/// `VmRSS` from `/proc/self/status`, which gives it in kB.
fn resident_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: i64 = line["VmRSS:".len()..].trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kilobytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (betrace (x) y) S 1 4242 4242 0 -1 4194560 1303 0 0 0 250 75 0 0 20 0 9 0 1234 1000 200";
        assert_eq!(cpu_seconds(stat), Some(3.25));
        assert_eq!(cpu_seconds("4242 (truncated"), None);
        assert_eq!(cpu_seconds("4242 (short) S 1 2"), None);
    }

    #[test]
    fn threads_are_told_apart_by_name() {
        let stat = "4243 (betrace-shard-1) S 1 4242 4242 0 -1 4194560 1303 0 0 0 250 75 0 0 20 0 9 0 1234 1000 200";
        assert_eq!(command_name(stat), Some("betrace-shard-1"));
        assert_eq!(THREAD_KINDS[thread_kind("betrace-shard-1")], "shards");
        assert_eq!(THREAD_KINDS[thread_kind("betrace-io")], "io");
        assert_eq!(THREAD_KINDS[thread_kind("betrace")], "other");
        assert_eq!(command_name("4243 no name"), None);
    }

    #[test]
    fn a_thread_that_ends_keeps_counting_so_the_totals_never_fall() {
        let mut times = ThreadTimes::default();
        assert_eq!(times.totals(vec![(1, 0, 2.0), (2, 1, 1.0)]), [2.0, 1.0, 0.0]);
        // Thread 2 ended; thread 3 started.
        assert_eq!(times.totals(vec![(1, 0, 2.5), (3, 1, 0.25)]), [2.5, 1.25, 0.0]);
        assert_eq!(times.totals(vec![(1, 0, 3.0)]), [3.0, 1.25, 0.0]);
    }

    #[test]
    fn resident_memory_is_read_in_kilobytes() {
        let status = "Name:\tbetrace\nVmPeak:\t  200000 kB\nVmRSS:\t  123456 kB\nThreads:\t9\n";
        assert_eq!(resident_bytes(status), Some(123_456 * 1024));
        assert_eq!(resident_bytes("Name:\tbetrace\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_cpu_time_and_memory() {
        // CPU time moves in ticks of 10 ms: work until it has moved.
        let (before, started) = (own_cpu_seconds().expect("Linux has /proc"), std::time::Instant::now());
        let mut busy = 0u64;
        while own_cpu_seconds().expect("readable") <= before {
            busy = (0..1_000_000u64).fold(busy, |sum, i| sum.wrapping_add(i * i));
            assert!(started.elapsed().as_secs() < 10, "no CPU time counted after 10 s of work");
        }
        // This test's thread is neither a shard nor the runtime's: its time
        // is "other" (tests running alongside may start shards), once it has
        // been counted a tick. The live threads' ticks add up to no more than
        // the process's, read after.
        let other = || -> f64 {
            let running = running_threads().expect("Linux has /proc");
            running.iter().filter(|(_, kind, _)| *kind == 2).map(|(_, _, spent)| spent).sum()
        };
        while other() == 0.0 {
            busy = (0..1_000_000u64).fold(busy, |sum, i| sum.wrapping_add(i * i));
            assert!(started.elapsed().as_secs() < 10, "no CPU time counted after 10 s of work");
        }
        assert_ne!(busy, 1);
        let running = running_threads().expect("Linux has /proc");
        assert!(running.iter().map(|(_, _, spent)| spent).sum::<f64>() <= own_cpu_seconds().expect("readable") + 1e-9);
        let status = std::fs::read_to_string("/proc/self/status").expect("Linux has /proc");
        assert!(resident_bytes(&status).expect("readable") > 1 << 20);
    }
}
