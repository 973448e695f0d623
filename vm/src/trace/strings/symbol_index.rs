//! The symbols of a [`Strings`](super::Strings) table by the hash of their
//! text: open addressing with linear probing in one vector, kept at most
//! half full. A plain vector, not a `HashTable`, so that
//! [`Strings::warm_up`](super::Strings::warm_up) can ask for its lines: a
//! shard looks the rules' keys up in a trace another core built a second
//! earlier, and each probe of the cold table was a cache miss (a tenth of a
//! shard).
//!
//! A slot holds a tag (bits of the text's hash, which also say where its
//! probe starts) above the symbol plus one; 0 is an empty slot. Most traces
//! hold a few dozen strings, and the table is half of a trace's string
//! memory: written on a receiving thread, read on a shard and freed there,
//! all of it out of cache. So a table starts *narrow* — 32-bit slots, a
//! 16-bit tag above a 16-bit symbol — and only a trace of more than 32,767
//! distinct strings moves to *wide* 64-bit slots (a 32-bit tag above a
//! 32-bit symbol), each text hashed again once to fill them.

/// The most narrow slots a table may have: past them a 16-bit tag could
/// no longer say where a probe starts.
const NARROW_MAX_SLOTS: usize = 1 << 16;

/// One kind of slot; see the module doc.
pub(super) trait Slot: Copy + PartialEq {
    const EMPTY: Self;
    /// The tag of `hash` (for [`Slot::pack`] and probe starts).
    fn tag(hash: u64) -> u32;
    fn pack(tag: u32, sym: u32) -> Self;
    fn tag_of(self) -> u32;
    fn sym_of(self) -> u32;
}

impl Slot for u32 {
    const EMPTY: u32 = 0;
    fn tag(hash: u64) -> u32 {
        (hash >> 48) as u32
    }
    fn pack(tag: u32, sym: u32) -> u32 {
        debug_assert!(sym < 0xffff, "narrow slots hold symbols below 65,535");
        tag << 16 | (sym + 1)
    }
    fn tag_of(self) -> u32 {
        self >> 16
    }
    fn sym_of(self) -> u32 {
        (self & 0xffff).wrapping_sub(1)
    }
}

impl Slot for u64 {
    const EMPTY: u64 = 0;
    fn tag(hash: u64) -> u32 {
        (hash >> 32) as u32
    }
    fn pack(tag: u32, sym: u32) -> u64 {
        u64::from(tag) << 32 | u64::from(sym + 1)
    }
    fn tag_of(self) -> u32 {
        (self >> 32) as u32
    }
    fn sym_of(self) -> u32 {
        (self as u32).wrapping_sub(1)
    }
}

/// A table of one kind of slot.
#[derive(Clone, Default)]
pub(super) struct Table<S> {
    slots: Vec<S>,
    len: usize,
}

/// The fewest slots a table that holds any has.
const MIN_SLOTS: usize = 8;

/// The slots that hold `symbols` symbols at most half full (none for none).
fn slots_for(symbols: usize) -> usize {
    match symbols {
        0 => 0,
        n => (2 * n).next_power_of_two().max(MIN_SLOTS),
    }
}

impl<S: Slot> Table<S> {
    fn with_slots(slots: usize) -> Table<S> {
        Table { slots: super::super::filled(slots, S::EMPTY), len: 0 }
    }

    /// Whether one more symbol fits without growing past half full.
    fn has_room(&self) -> bool {
        2 * (self.len + 1) <= self.slots.len()
    }

    fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Result<u32, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let tag = S::tag(hash);
        let mask = self.slots.len() - 1;
        let mut at = tag as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == S::EMPTY {
                return Err(at);
            }
            if slot.tag_of() == tag && is(slot.sym_of()) {
                return Ok(slot.sym_of());
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `sym` at `empty` (the slot [`find`](Self::find) gave), or, with
    /// no room left there, doubles the table first.
    fn insert(&mut self, empty: usize, hash: u64, sym: u32) {
        let slot = S::pack(S::tag(hash), sym);
        if self.has_room() {
            self.slots[empty] = slot;
            self.len += 1;
            return;
        }
        let size = (2 * self.slots.len()).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, super::super::filled(size, S::EMPTY));
        for slot in old.into_iter().filter(|&slot| slot != S::EMPTY).chain([slot]) {
            self.place(slot);
        }
        self.len += 1;
    }

    /// Puts `slot` in the first empty slot of its probe.
    fn place(&mut self, slot: S) {
        let mask = self.slots.len() - 1;
        let mut at = slot.tag_of() as usize & mask;
        while self.slots[at] != S::EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }
}

/// See the module doc.
#[derive(Clone)]
pub(super) enum SymbolIndex {
    Narrow(Table<u32>),
    Wide(Table<u64>),
}

impl Default for SymbolIndex {
    fn default() -> SymbolIndex {
        SymbolIndex::Narrow(Table::default())
    }
}

impl SymbolIndex {
    /// Room for `symbols` symbols before it grows.
    pub(super) fn with_capacity(symbols: usize) -> SymbolIndex {
        let slots = slots_for(symbols);
        match slots <= NARROW_MAX_SLOTS {
            true => SymbolIndex::Narrow(Table::with_slots(slots)),
            false => SymbolIndex::Wide(Table::with_slots(slots)),
        }
    }

    /// The symbol hashed to `hash` for which `is` holds, or else the empty
    /// slot where it would go (for [`insert`](Self::insert)).
    pub(super) fn find(&self, hash: u64, is: impl FnMut(u32) -> bool) -> Result<u32, usize> {
        match self {
            SymbolIndex::Narrow(table) => table.find(hash, is),
            SymbolIndex::Wide(table) => table.find(hash, is),
        }
    }

    /// Adds `sym` (the next symbol, not in the index) at `empty`, the slot
    /// [`find`](Self::find) gave for `hash`, growing first if that would
    /// fill more than half. `hash_of` gives the hash of any symbol already
    /// in the index, for the one move from narrow slots to wide ones.
    pub(super) fn insert(&mut self, empty: usize, hash: u64, sym: u32, hash_of: impl Fn(u32) -> u64) {
        match self {
            SymbolIndex::Narrow(table) if table.has_room() || 2 * table.slots.len() <= NARROW_MAX_SLOTS => {
                table.insert(empty, hash, sym);
            }
            SymbolIndex::Narrow(table) => {
                // Symbols are numbered in the order added: the index holds 0..sym.
                let mut wide = Table::<u64>::with_slots(2 * table.slots.len());
                for held in (0..sym).chain([sym]) {
                    let hash = if held == sym { hash } else { hash_of(held) };
                    wide.place(u64::pack(u64::tag(hash), held));
                }
                wide.len = sym as usize + 1;
                *self = SymbolIndex::Wide(wide);
            }
            SymbolIndex::Wide(table) => table.insert(empty, hash, sym),
        }
    }

    /// Prefetches the slots ([`Strings::warm_up`](super::Strings::warm_up)).
    pub(super) fn warm_up(&self) {
        match self {
            SymbolIndex::Narrow(table) => crate::trace::warm::prefetch(&table.slots),
            SymbolIndex::Wide(table) => crate::trace::warm::prefetch(&table.slots),
        }
    }

    /// The slots' bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            SymbolIndex::Narrow(table) => table.slots.capacity() * size_of::<u32>(),
            SymbolIndex::Wide(table) => table.slots.capacity() * size_of::<u64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds symbols 0..n, all of whose hashes are `hash(sym)`.
    fn index_of(n: u32, hash: impl Fn(u32) -> u64) -> SymbolIndex {
        let mut index = SymbolIndex::default();
        for sym in 0..n {
            let empty = index.find(hash(sym), |_| false).expect_err("not there yet");
            index.insert(empty, hash(sym), sym, &hash);
        }
        index
    }

    fn slots_and_len(index: &SymbolIndex) -> (usize, usize) {
        match index {
            SymbolIndex::Narrow(table) => (table.slots.len(), table.len),
            SymbolIndex::Wide(table) => (table.slots.len(), table.len),
        }
    }

    #[test]
    fn symbols_whose_tags_collide_are_found_past_each_other_and_around_the_end() {
        // One tag for all (narrow and wide), whose probe starts at the last
        // slot: every symbol but the first is placed past the others, around
        // the end.
        let hash = |sym: u32| 0xffff_ffff_0000_0000 | u64::from(sym);
        let index = index_of(20, hash);
        assert!(matches!(index, SymbolIndex::Narrow(_)));
        for sym in 0..20 {
            assert_eq!(index.find(hash(sym), |found| found == sym), Ok(sym));
        }
        assert!(index.find(hash(99), |_| false).is_err());
        let (slots, len) = slots_and_len(&index);
        assert!(2 * len <= slots, "{len} of {slots}");
    }

    #[test]
    fn past_32767_symbols_the_slots_widen_and_every_symbol_is_still_found() {
        // A mixing hash, so that the probes stay short.
        let hash = |sym: u32| u64::from(sym).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let narrowest = index_of(32_767, hash);
        assert!(matches!(narrowest, SymbolIndex::Narrow(_)), "32,767 symbols fit narrow slots");
        assert_eq!(slots_and_len(&narrowest), (1 << 16, 32_767));
        let index = index_of(40_000, hash);
        assert!(matches!(index, SymbolIndex::Wide(_)));
        assert_eq!(slots_and_len(&index), (1 << 17, 40_000));
        for sym in 0..40_000 {
            assert_eq!(index.find(hash(sym), |found| found == sym), Ok(sym), "symbol {sym}");
        }
        assert!(index.find(hash(40_000), |_| false).is_err());
        // A table asked for that many at once starts wide.
        assert!(matches!(SymbolIndex::with_capacity(40_000), SymbolIndex::Wide(_)));
        assert!(matches!(SymbolIndex::with_capacity(32_767), SymbolIndex::Narrow(_)));
    }

    #[test]
    fn narrow_and_wide_slots_read_back_what_they_were_packed_with() {
        for (tag, sym) in [(0, 0), (0xffff, 0xfffe), (0x1234, 77)] {
            let slot = u32::pack(tag, sym);
            assert_ne!(slot, u32::EMPTY);
            assert_eq!((slot.tag_of(), slot.sym_of()), (tag, sym));
        }
        for (tag, sym) in [(0, 0), (u32::MAX, u32::MAX - 1), (0x1234_5678, 1 << 20)] {
            let slot = u64::pack(tag, sym);
            assert_ne!(slot, u64::EMPTY);
            assert_eq!((slot.tag_of(), slot.sym_of()), (tag, sym));
        }
        assert_eq!(u32::tag(0xabcd_0000_0000_0000), 0xabcd);
        assert_eq!(u64::tag(0xabcd_ef01_0000_0000), 0xabcd_ef01);
    }
}
