//! Where each text of a [`Strings`](super::Strings) table ends in its
//! buffer. Offsets are 32-bit while the texts fit in 4 GiB — every trace
//! but an absurd one — and 64-bit past that: the ends were an eighth of a
//! trace's memory, written on one core and read on another out of cache.

use std::ops::Range;

/// The most bytes 32-bit ends may describe (smaller in tests, so that they
/// can reach it).
#[cfg(not(test))]
const NARROW_MAX_BYTES: usize = u32::MAX as usize;
#[cfg(test)]
const NARROW_MAX_BYTES: usize = 1 << 10;

/// See the module doc.
#[derive(Clone, Debug)]
pub(super) enum TextEnds {
    Narrow(Vec<u32>),
    Wide(Vec<usize>),
}

impl Default for TextEnds {
    fn default() -> TextEnds {
        TextEnds::Narrow(Vec::new())
    }
}

impl TextEnds {
    pub(super) fn with_capacity(texts: usize) -> TextEnds {
        TextEnds::Narrow(Vec::with_capacity(texts))
    }

    pub(super) fn len(&self) -> usize {
        match self {
            TextEnds::Narrow(ends) => ends.len(),
            TextEnds::Wide(ends) => ends.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where text `i` ends.
    fn end(&self, i: usize) -> usize {
        match self {
            TextEnds::Narrow(ends) => ends[i] as usize,
            TextEnds::Wide(ends) => ends[i],
        }
    }

    /// Where text `i` lies: from where text `i - 1` ends (text 0 from 0).
    pub(super) fn range(&self, i: usize) -> Range<usize> {
        let start = match i {
            0 => 0,
            _ => self.end(i - 1),
        };
        start..self.end(i)
    }

    /// Adds a text ending at `end` (past every end so far).
    pub(super) fn push(&mut self, end: usize) {
        match self {
            TextEnds::Narrow(ends) if end <= NARROW_MAX_BYTES => ends.push(end as u32),
            TextEnds::Narrow(ends) => {
                let mut wide: Vec<usize> = ends.iter().map(|&end| end as usize).collect();
                wide.push(end);
                *self = TextEnds::Wide(wide);
            }
            TextEnds::Wide(ends) => ends.push(end),
        }
    }

    /// Prefetches the ends ([`Strings::warm_up`](super::Strings::warm_up)).
    pub(super) fn warm_up(&self) {
        match self {
            TextEnds::Narrow(ends) => crate::trace::warm::prefetch(ends),
            TextEnds::Wide(ends) => crate::trace::warm::prefetch(ends),
        }
    }

    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            TextEnds::Narrow(ends) => ends.capacity() * size_of::<u32>(),
            TextEnds::Wide(ends) => ends.capacity() * size_of::<usize>(),
        }
    }
}

/// The same ends, however wide.
impl PartialEq for TextEnds {
    fn eq(&self, other: &TextEnds) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.end(i) == other.end(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_widen_past_the_narrow_limit_and_read_back_alike() {
        let mut ends = TextEnds::default();
        let mut wide = TextEnds::Wide(Vec::new());
        let mut at = 0;
        for len in [0, 3, 500, 521, 0, 1, 2000, 7] {
            at += len;
            ends.push(at);
            wide.push(at);
        }
        assert!(matches!(ends, TextEnds::Wide(_)), "past {NARROW_MAX_BYTES} bytes");
        assert_eq!(ends, wide);
        assert_eq!((ends.range(0), ends.range(2), ends.range(4)), (0..0, 3..503, 1024..1024));
        assert_eq!(ends.range(7), 3025..3032);
        let mut narrow = TextEnds::default();
        narrow.push(NARROW_MAX_BYTES);
        assert!(matches!(narrow, TextEnds::Narrow(_)), "up to the limit itself");
        assert_eq!(narrow.range(0), 0..NARROW_MAX_BYTES);
    }
}
