//! The traces the receivers handed to one shard lately. A batch that looks
//! like a whole trace (a root, every parent present) is built on the
//! receiving thread, but SDKs export spans as they end, so a trace's root
//! comes in its *last* batch: when earlier batches of the trace went to the
//! shard, the built trace is made records again there and built once more
//! (both wasted: 14 % of the server with traces spread over requests in end
//! order, docs/performance.md, session 17). A batch of a trace seen lately
//! is therefore not built ahead.
//!
//! Two generations of trace ids, each of at most `capacity`: when the
//! current one fills, it becomes the previous one and the oldest is
//! forgotten, so a trace is remembered for between one and two generations
//! of newer traces. Forgetting too soon, or a collision of two ids, only
//! costs a build ahead that was not needed or not done.

use std::collections::HashSet;

use foldhash::fast::RandomState;

pub(super) struct RecentTraces {
    current: HashSet<u64, RandomState>,
    previous: HashSet<u64, RandomState>,
    capacity: usize,
}

impl RecentTraces {
    pub(super) fn new(capacity: usize) -> RecentTraces {
        RecentTraces { current: HashSet::default(), previous: HashSet::default(), capacity: capacity.max(1) }
    }

    /// Notes `trace_id`; whether it was noted lately.
    pub(super) fn saw(&mut self, trace_id: &[u8; 16]) -> bool {
        // Trace ids are random (W3C's in their low 8 bytes at least).
        let key = u64::from_le_bytes(trace_id[8..].try_into().expect("8 bytes"));
        if self.current.contains(&key) {
            return true;
        }
        let seen = self.previous.remove(&key);
        if self.current.len() >= self.capacity {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key);
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn a_trace_is_remembered_for_one_to_two_generations() {
        let mut recent = RecentTraces::new(2);
        assert!(!recent.saw(&id(1)));
        assert!(recent.saw(&id(1)));
        assert!(!recent.saw(&id(2)));
        // The generation is full: 3 starts the next, 1 and 2 are still known.
        assert!(!recent.saw(&id(3)));
        assert!(recent.saw(&id(1)), "from the previous generation, and noted again");
        assert!(!recent.saw(&id(4)));
        // 3 and 1 fill this generation; 4 started another, so 2 is forgotten.
        assert!(!recent.saw(&id(2)));
    }
}
