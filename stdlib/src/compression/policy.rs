//! What flagged values do to the baseline: the burst policy.
//!
//! A value is *flagged* when its score reaches the call's `flag:` threshold.
//! Letting flagged values join the baseline at once (`learn_flagged: true`)
//! makes the next copy of an anomaly look familiar as soon as the dictionary
//! is next rebuilt: a burst turns normal within a few dozen events. Keeping
//! them out forever makes a real, lasting change novel forever, and keeps rare
//! but normal values novel too. The default is *delayed learning*: a flagged
//! value waits in the key's quarantine and joins the baseline `hold` after it
//! was seen (trace time; default one minute, `hold:` changes it). So every
//! value of a burst is flagged for at least `hold` after the burst began,
//! while a lasting change, or a rare value that keeps recurring, becomes
//! normal after `hold`.
//!
//! The quarantine is bounded in bytes. When it is full it drops every second
//! waiting value (the oldest always stays), so under a flood of flagged values
//! it keeps a sample spread over the whole `hold` instead of only the latest
//! values, and the flood is still learned `hold` after it began.
//!
//! Time is the caller's: the trace's own timestamps, never a clock, so
//! offline evaluation is reproducible.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The burst policy's settings (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurstPolicy {
    /// Scores at or above this are flagged.
    pub flag: f64,
    /// Flagged values join the baseline at once.
    pub learn_flagged: bool,
    /// How long (ns of trace time) a flagged value waits before it joins.
    pub hold_ns: i64,
}

/// Whether a scored value joins the baseline now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Learn,
    Hold,
}

/// One key's flagged values waiting to join its baseline, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    /// (trace time at which it joins, value).
    waiting: VecDeque<(i64, Box<[u8]>)>,
    bytes: usize,
}

impl Quarantine {
    /// Flagged values waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn memory_bytes(&self) -> usize {
        self.bytes + self.waiting.capacity() * std::mem::size_of::<(i64, Box<[u8]>)>()
    }

    /// Decides whether `value`, scored `score` at trace time `time`, joins the
    /// baseline now; if not, it waits (at most `max_bytes` wait in all).
    pub fn admit(&mut self, value: &[u8], score: f64, time: i64, policy: &BurstPolicy, max_bytes: usize) -> Admission {
        if score < policy.flag || policy.learn_flagged {
            return Admission::Learn;
        }
        let value = &value[..value.len().min(max_bytes.max(1))];
        self.bytes += value.len();
        self.waiting.push_back((time.saturating_add(policy.hold_ns), value.into()));
        if self.bytes > max_bytes {
            self.thin_out();
        }
        Admission::Hold
    }

    /// Drops every second waiting value, keeping the oldest.
    fn thin_out(&mut self) {
        let mut index = 0;
        self.waiting.retain(|_| {
            index += 1;
            index % 2 == 1
        });
        self.bytes = self.waiting.iter().map(|(_, value)| value.len()).sum();
    }

    /// The waiting values whose time has come at trace time `time`, oldest first.
    pub fn release(&mut self, time: i64) -> Vec<Box<[u8]>> {
        let mut ready = Vec::new();
        while self.waiting.front().is_some_and(|(due, _)| *due <= time) {
            let (_, value) = self.waiting.pop_front().expect("checked above");
            self.bytes -= value.len();
            ready.push(value);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;
    const POLICY: BurstPolicy = BurstPolicy { flag: 0.5, learn_flagged: false, hold_ns: 60 * SECOND };

    #[test]
    fn unflagged_values_are_learned_at_once() {
        let mut q = Quarantine::default();
        assert_eq!(q.admit(b"x", 0.1, 0, &POLICY, 100), Admission::Learn);
        let naive = BurstPolicy { learn_flagged: true, ..POLICY };
        assert_eq!(q.admit(b"x", 0.9, 0, &naive, 100), Admission::Learn);
        assert!(q.is_empty());
    }

    #[test]
    fn flagged_values_join_hold_after_they_were_seen() {
        let mut q = Quarantine::default();
        for t in 0..30 {
            assert_eq!(q.admit(b"boom", 0.9, t * SECOND, &POLICY, 1000), Admission::Hold);
            assert!(q.release(t * SECOND).is_empty());
        }
        assert!(q.release(59 * SECOND).is_empty());
        assert_eq!(q.release(61 * SECOND).len(), 2, "the values of seconds 0 and 1");
        assert_eq!(q.release(1000 * SECOND).len(), 28);
        assert!(q.is_empty() && q.bytes == 0);
    }

    #[test]
    fn a_flood_is_thinned_but_keeps_its_oldest_value() {
        let mut q = Quarantine::default();
        for t in 0..1000 {
            q.admit(b"0123456789", 0.9, t * SECOND / 10, &POLICY, 200);
            assert!(q.bytes <= 200);
        }
        let first = q.release(60 * SECOND);
        assert_eq!(first.len(), 1, "the value seen at 0 s joins at 60 s");
        assert!(q.len() > 5, "a spread of later values still waits");
    }
}
