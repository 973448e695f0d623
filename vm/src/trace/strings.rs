//! The interned strings of one trace: every text stored once, back to back in
//! one buffer, and found again through a hash table that holds only symbols.
//!
//! Building a trace interns every name, key and string value of its spans,
//! so this is on the server's hot path: one buffer and one table (sized up
//! front by [`Strings::with_capacity`]) instead of two allocations per new
//! string.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use foldhash::fast::RandomState;

use super::Sym;
use symbol_index::SymbolIndex;
use text_ends::TextEnds;

mod symbol_index;
mod text_ends;

/// The strings of one trace, each stored once. Symbols are numbered from 0
/// in the order their texts were first interned.
#[derive(Clone, Default)]
pub struct Strings {
    /// Every text, one after another.
    bytes: String,
    /// Where the text of symbol `i` ends in `bytes`; it starts where the text
    /// of symbol `i - 1` ends (symbol 0 at 0).
    ends: TextEnds,
    /// The symbols, by the hash of their text.
    index: SymbolIndex,
    /// Trace strings come from the network, so an attacker picks them. A
    /// fast hash with no seed would let one send a trace whose strings all
    /// collide and make interning quadratic. foldhash is seeded per process
    /// and per table (so collisions cannot be precomputed, nor learned from
    /// one trace and reused in the next) and is a few times faster than
    /// SipHash on short strings. It makes no promise against an attacker who
    /// can observe hash values, but nothing exposes them, and the server's
    /// span and byte limits bound how large a table can get anyway. Cloning
    /// copies the seed, so a clone's table stays valid.
    hasher: RandomState,
}

impl Strings {
    /// An empty table with room for `strings` distinct texts of `bytes`
    /// bytes in all before it reallocates.
    pub fn with_capacity(strings: usize, bytes: usize) -> Strings {
        Strings {
            bytes: String::with_capacity(bytes),
            ends: TextEnds::with_capacity(strings),
            index: SymbolIndex::with_capacity(strings),
            hasher: RandomState::default(),
        }
    }

    /// The symbol of `text`, adding it if it is new.
    pub fn intern(&mut self, text: &str) -> Sym {
        let Strings { bytes, ends, index, hasher } = self;
        let hash = hash_text(hasher, text);
        match index.find(hash, |sym| holds(bytes, ends, sym, text)) {
            Ok(sym) => Sym(sym),
            Err(empty) => {
                let sym = ends.len() as u32;
                bytes.push_str(text);
                ends.push(bytes.len());
                index.insert(empty, hash, sym, |held| hash_text(hasher, text_of(bytes, ends, held)));
                Sym(sym)
            }
        }
    }

    /// The symbol of `text`, if this trace holds that string.
    pub fn lookup(&self, text: &str) -> Option<Sym> {
        let hash = hash_text(&self.hasher, text);
        self.index.find(hash, |sym| holds(&self.bytes, &self.ends, sym, text)).ok().map(Sym)
    }

    /// The text of `sym`. Panics if `sym` is not a symbol of this table.
    pub fn text(&self, sym: Sym) -> &str {
        text_of(&self.bytes, &self.ends, sym.0)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Prefetches the texts and their ends
    /// ([`Trace::warm_up`](super::Trace::warm_up)).
    pub(super) fn warm_up(&self) {
        self.index.warm_up();
        super::warm::prefetch(self.bytes.as_bytes());
        self.ends.warm_up();
    }

    /// Bytes of memory the table holds: texts, ends and the hash table's slots.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.memory_bytes() + self.index.memory_bytes()
    }

    /// Every text, in symbol order.
    fn texts(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).map(|sym| text_of(&self.bytes, &self.ends, sym as u32))
    }
}

/// Two tables are equal when they hold the same texts under the same symbols
/// (the hash seeds and spare capacity do not matter).
impl PartialEq for Strings {
    fn eq(&self, other: &Strings) -> bool {
        self.ends == other.ends && self.bytes == other.bytes
    }
}

impl fmt::Debug for Strings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.texts()).finish()
    }
}

fn text_of<'s>(bytes: &'s str, ends: &TextEnds, sym: u32) -> &'s str {
    &bytes[ends.range(sym as usize)]
}

/// Whether `sym`'s text is `text`: the question every probe of the table
/// asks, mostly of short strings (names, keys, values), which are compared
/// here in two overlapping words rather than by a call to `memcmp` (a
/// twentieth of receiving went to those calls).
fn holds(bytes: &str, ends: &TextEnds, sym: u32, text: &str) -> bool {
    let (held, text) = (&bytes.as_bytes()[ends.range(sym as usize)], text.as_bytes());
    held.len() == text.len() && same_bytes(held, text)
}

/// `a == b` for slices of one length.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let len = a.len();
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match len {
        0 => true,
        1..=3 => a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

/// The text's bytes alone: a table holds nothing but single texts, so the
/// terminator `str`'s `Hash` adds (for tuples of strings) is not needed.
fn hash_text(hasher: &RandomState, text: &str) -> u64 {
    let mut state = hasher.build_hasher();
    state.write(text.as_bytes());
    state.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_compare_as_bytes_do() {
        let texts: Vec<String> = (0..=20)
            .flat_map(|len| {
                let base = "abcdefghijklmnopqrstu"[..len].to_string();
                // The same length, one byte changed at each place in turn.
                let changed = (0..len).map(move |at| {
                    let mut bytes = "abcdefghijklmnopqrstu".as_bytes()[..len].to_vec();
                    bytes[at] = b'Z';
                    String::from_utf8(bytes).expect("ASCII")
                });
                std::iter::once(base).chain(changed)
            })
            .collect();
        for a in &texts {
            for b in texts.iter().filter(|b| b.len() == a.len()) {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn equal_texts_share_a_symbol_and_distinct_texts_do_not() {
        let mut strings = Strings::default();
        let a = strings.intern("service.name");
        let b = strings.intern("http.route");
        assert_ne!(a, b);
        assert_eq!(strings.intern("service.name"), a);
        assert_eq!(strings.intern(&String::from("http.route")), b);
        assert_eq!((a, b), (Sym(0), Sym(1)));
        assert_eq!(strings.len(), 2);
    }

    #[test]
    fn texts_round_trip_including_empty_and_non_ascii() {
        let texts = ["", "a", "ab", "b", "héllo", "日本語のスパン名", "🦀", "a\0b", &"x".repeat(1000)];
        let mut strings = Strings::with_capacity(2, 4);
        let syms: Vec<Sym> = texts.iter().map(|text| strings.intern(text)).collect();
        assert_eq!(strings.len(), texts.len());
        for (text, sym) in texts.iter().zip(&syms) {
            assert_eq!(strings.text(*sym), *text);
            assert_eq!(strings.lookup(text), Some(*sym));
        }
        // Neighbours in the buffer do not run together.
        assert_eq!(strings.lookup("aab"), None);
        assert_eq!(strings.lookup("héllo日本語のスパン名"), None);
    }

    #[test]
    fn the_empty_string_is_a_string_like_any_other() {
        let mut strings = Strings::default();
        assert_eq!(strings.lookup(""), None);
        let x = strings.intern("x");
        let empty = strings.intern("");
        assert_ne!(x, empty);
        assert_eq!(strings.text(empty), "");
        assert_eq!(strings.intern(""), empty);
        assert_eq!(strings.lookup(""), Some(empty));
    }

    #[test]
    fn lookup_of_an_absent_text_finds_nothing_and_adds_nothing() {
        let mut strings = Strings::default();
        assert!(strings.is_empty());
        assert_eq!(strings.lookup("GET"), None);
        strings.intern("GET /");
        assert_eq!(strings.lookup("GET"), None);
        assert_eq!(strings.lookup("GET /"), Some(Sym(0)));
        assert_eq!(strings.len(), 1);
    }

    #[test]
    fn many_strings_survive_growth_and_the_move_to_wide_slots() {
        let mut strings = Strings::default();
        let syms: Vec<Sym> = (0..40_000).map(|i| strings.intern(&format!("key.{i}"))).collect();
        for (i, sym) in syms.iter().enumerate() {
            assert_eq!(sym.0 as usize, i);
            assert_eq!(strings.text(*sym), format!("key.{i}"));
            assert_eq!(strings.lookup(&format!("key.{i}")), Some(*sym));
        }
        assert_eq!(strings.intern("key.39999"), Sym(39_999));
        assert_eq!(strings.len(), 40_000);
    }

    #[test]
    fn equal_means_the_same_texts_in_the_same_order() {
        let build = |texts: &[&str]| {
            let mut strings = Strings::default();
            for text in texts {
                strings.intern(text);
            }
            strings
        };
        // Different seeds and capacities, same texts: equal.
        let mut roomy = Strings::with_capacity(100, 1000);
        roomy.intern("a");
        roomy.intern("bc");
        assert_eq!(build(&["a", "bc"]), roomy);
        assert_eq!(build(&["a", "bc", "a"]), build(&["a", "bc"]));
        assert_ne!(build(&["a", "bc"]), build(&["bc", "a"]));
        // Same bytes, split differently.
        assert_ne!(build(&["a", "bc"]), build(&["ab", "c"]));
        assert_ne!(build(&["a"]), build(&["a", ""]));
        assert_eq!(Strings::default(), Strings::with_capacity(8, 8));
    }

    #[test]
    fn a_clone_is_independent_and_keeps_working() {
        let mut original = Strings::default();
        original.intern("shared");
        let mut copy = original.clone();
        assert_eq!(copy, original);
        let only_in_copy = copy.intern("copy");
        original.intern("original");
        assert_eq!(copy.text(only_in_copy), "copy");
        assert_eq!(original.text(only_in_copy), "original");
        assert_eq!(copy.lookup("original"), None);
        assert_eq!(original.lookup("copy"), None);
        assert_eq!(copy.lookup("shared"), Some(Sym(0)));
        assert_eq!(copy.intern("shared"), Sym(0));
        // Growing the clone rehashes with the copied seed.
        for i in 0..100 {
            copy.intern(&i.to_string());
        }
        assert_eq!(copy.lookup("shared"), Some(Sym(0)));
        assert_eq!(copy.lookup("copy"), Some(only_in_copy));
    }

    #[test]
    fn debug_lists_the_texts() {
        let mut strings = Strings::default();
        strings.intern("a");
        strings.intern("");
        assert_eq!(format!("{strings:?}"), r#"["a", ""]"#);
    }
}
