//! The traces the receivers handed to one shard lately. A batch that looks
//! like a whole trace (a root, every parent present) is built on the
//! receiving thread, but SDKs export spans as they end, so a trace's root
//! comes in its *last* batch: when earlier batches of the trace went to the
//! shard, the built trace is made records again there and built once more
//! (both wasted: 14 % of the server with traces spread over requests in end
//! order, docs/performance.md, session 17). A batch of a trace seen lately
//! is therefore not built ahead.
//!
//! A table of trace ids (a 32-bit fingerprint of each) with four slots
//! for each trace to remember; an id's low bits pick its slot. Noting an id
//! overwrites whatever had its slot, so a trace is remembered until a later
//! one lands on its slot: about 85 % of the last `capacity` traces are (a
//! test counts). One cache line a trace and no allocation after the first,
//! where two generations of hash sets took three probes of large, cold
//! tables a trace and rehashed each generation as it grew. Forgetting too
//! soon, or two ids sharing a slot and fingerprint, only costs a build ahead
//! that was not needed or not done.
//!
//! The receiving threads share a shard's table: its slots are atomics, each
//! noted with one swap, so no lock is taken a trace (a mutex's line passed
//! between the receiving threads' cores for every trace). Two threads noting
//! one slot at once each see one state of it; either way only a build ahead
//! is at stake.

use std::sync::atomic::{AtomicU32, Ordering};

pub(super) struct RecentTraces {
    /// A fingerprint of the trace id noted last in each slot.
    slots: Box<[AtomicU32]>,
}

impl RecentTraces {
    /// A table that remembers about `capacity` traces.
    pub(super) fn new(capacity: usize) -> RecentTraces {
        RecentTraces { slots: (0..(4 * capacity).next_power_of_two()).map(|_| AtomicU32::new(0)).collect() }
    }

    /// Notes `trace_id`; whether it was noted lately.
    pub(super) fn saw(&self, trace_id: &[u8; 16]) -> bool {
        // Trace ids are random (W3C's in their low 8 bytes at least): the
        // slot is picked by that random part's low half, the fingerprint is
        // its high half.
        let key = u64::from_le_bytes(trace_id[8..].try_into().expect("8 bytes"));
        let (low, fingerprint) = (key as u32, (key >> 32) as u32);
        let mask = self.slots.len() - 1;
        self.slots[low as usize & mask].swap(fingerprint, Ordering::Relaxed) == fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id whose low eight bytes are `n`: its low half picks the slot,
    /// its high half is the fingerprint.
    fn id(n: u64) -> [u8; 16] {
        let mut id = [7; 16];
        id[8..].copy_from_slice(&n.to_le_bytes());
        id
    }

    #[test]
    fn a_trace_is_remembered_until_another_lands_on_its_slot() {
        let recent = RecentTraces::new(2);
        assert_eq!(recent.slots.len(), 8);
        let (a, b) = (1 << 32 | 1, 1 << 32 | 2);
        assert!(!recent.saw(&id(a)));
        assert!(recent.saw(&id(a)));
        assert!(!recent.saw(&id(b)));
        assert!(recent.saw(&id(a)), "another slot");
        // `c` shares `a`'s slot (low half 9 = 1 mod 8), not its fingerprint:
        // `a` is forgotten, and `c` remembered.
        let c = 2 << 32 | 9;
        assert!(!recent.saw(&id(c)));
        assert!(!recent.saw(&id(a)));
        assert!(recent.saw(&id(a)));
        assert!(recent.saw(&id(b)));
    }

    #[test]
    fn most_of_the_last_capacity_traces_are_remembered() {
        let capacity = 10_000;
        let recent = RecentTraces::new(capacity);
        // Random ids (a fixed xorshift), as W3C trace ids are.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let ids: Vec<u64> = (0..3 * capacity).map(|_| next()).collect();
        for &n in &ids {
            recent.saw(&id(n));
        }
        let remembered = ids[2 * capacity..].iter().filter(|&&n| recent.saw(&id(n))).count();
        assert!(remembered * 4 > capacity * 3, "{remembered} of the last {capacity}");
    }
}
