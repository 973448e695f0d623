//! A map that remembers the order its entries were last used in, for the
//! least-recently-used eviction of novelty keys: lookups, insertions and
//! evictions are O(1) (a hash map into a slab of doubly linked nodes).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

// Keys are values from traces, which senders choose: a seeded hash, but a
// fast one (SipHash was a tenth of a `novelty` call on a trace's shape).
use foldhash::fast::RandomState;

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node<K, V> {
    key: K,
    value: V,
    /// Towards the most recently used end.
    newer: usize,
    /// Towards the least recently used end.
    older: usize,
}

/// Entries in least- to most-recently used order; see the module doc.
#[derive(Debug)]
pub struct Lru<K, V> {
    index: HashMap<K, usize, RandomState>,
    slots: Vec<Option<Node<K, V>>>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
}

impl<K: Hash + Eq + Clone, V> Default for Lru<K, V> {
    fn default() -> Self {
        Lru::new()
    }
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new() -> Self {
        Lru { index: HashMap::default(), slots: Vec::new(), free: Vec::new(), newest: NIL, oldest: NIL }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn node(&self, slot: usize) -> &Node<K, V> {
        self.slots[slot].as_ref().expect("linked slot is occupied")
    }

    fn node_mut(&mut self, slot: usize) -> &mut Node<K, V> {
        self.slots[slot].as_mut().expect("linked slot is occupied")
    }

    fn unlink(&mut self, slot: usize) {
        let (newer, older) = {
            let node = self.node(slot);
            (node.newer, node.older)
        };
        match newer {
            NIL => self.newest = older,
            n => self.node_mut(n).older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.node_mut(o).newer = newer,
        }
    }

    fn link_newest(&mut self, slot: usize) {
        let previous = self.newest;
        {
            let node = self.node_mut(slot);
            node.newer = NIL;
            node.older = previous;
        }
        match previous {
            NIL => self.oldest = slot,
            p => self.node_mut(p).newer = slot,
        }
        self.newest = slot;
    }

    /// The value for `key`, marked as the most recently used.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = *self.index.get(key)?;
        if self.newest != slot {
            self.unlink(slot);
            self.link_newest(slot);
        }
        Some(&mut self.node_mut(slot).value)
    }

    /// The value for `key`, without marking it used.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.get(key).map(|&slot| &self.node(slot).value)
    }

    /// The value for `key`, to change, without marking it used.
    pub fn peek_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = *self.index.get(key)?;
        Some(&mut self.node_mut(slot).value)
    }

    /// Inserts `key` as the most recently used entry (replacing any value it
    /// had), evicting and returning the least recently used entries while more
    /// than `capacity` remain.
    pub fn insert(&mut self, key: K, value: V, capacity: usize) -> Vec<(K, V)> {
        if let Some(&slot) = self.index.get(&key) {
            self.node_mut(slot).value = value;
            self.get_mut(&key);
        } else {
            let node = Node { key: key.clone(), value, newer: NIL, older: NIL };
            let slot = match self.free.pop() {
                Some(slot) => {
                    self.slots[slot] = Some(node);
                    slot
                }
                None => {
                    self.slots.push(Some(node));
                    self.slots.len() - 1
                }
            };
            self.index.insert(key, slot);
            self.link_newest(slot);
        }
        let mut evicted = Vec::new();
        while self.len() > capacity.max(1) {
            evicted.extend(self.pop_oldest());
        }
        evicted
    }

    /// The value for `key`, marked as the most recently used, inserted first
    /// (made by `new`) if absent; with the entries that evicted, as
    /// [`insert`](Self::insert) returns them. One lookup when present.
    pub fn get_or_insert_with<Q>(
        &mut self,
        key: &Q,
        new: impl FnOnce() -> (K, V),
        capacity: usize,
    ) -> (&mut V, Vec<(K, V)>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let evicted = match self.index.get(key) {
            Some(&slot) => {
                if self.newest != slot {
                    self.unlink(slot);
                    self.link_newest(slot);
                }
                Vec::new()
            }
            None => {
                let (key, value) = new();
                self.insert(key, value, capacity)
            }
        };
        // Found or inserted, the entry is the newest (eviction takes the oldest).
        let newest = self.newest;
        (&mut self.node_mut(newest).value, evicted)
    }

    /// Removes and returns the least recently used entry.
    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let slot = self.oldest;
        if slot == NIL {
            return None;
        }
        self.unlink(slot);
        let node = self.slots[slot].take().expect("linked slot is occupied");
        self.free.push(slot);
        self.index.remove(&node.key);
        Some((node.key, node.value))
    }

    /// Entries from the least to the most recently used.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let mut slot = self.oldest;
        std::iter::from_fn(move || {
            if slot == NIL {
                return None;
            }
            let node = self.node(slot);
            slot = node.newer;
            Some((&node.key, &node.value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_or_insert_with_finds_or_inserts_and_marks_used() {
        let mut lru = Lru::new();
        let (value, evicted) = lru.get_or_insert_with("a", || ("a", 1), 2);
        assert_eq!((*value, evicted), (1, vec![]));
        lru.insert("b", 2, 2);
        let (value, evicted) = lru.get_or_insert_with("a", || unreachable!("present"), 2);
        *value += 10;
        assert!(evicted.is_empty());
        let (value, evicted) = lru.get_or_insert_with("c", || ("c", 3), 2);
        assert_eq!((*value, evicted), (3, vec![("b", 2)]), "`a` was used after `b`");
        assert_eq!(lru.iter().collect::<Vec<_>>(), vec![(&"a", &11), (&"c", &3)]);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new();
        assert!(lru.insert("a", 1, 2).is_empty());
        assert!(lru.insert("b", 2, 2).is_empty());
        *lru.get_mut("a").unwrap() += 10;
        assert_eq!(lru.insert("c", 3, 2), vec![("b", 2)]);
        assert_eq!(lru.iter().collect::<Vec<_>>(), vec![(&"a", &11), (&"c", &3)]);
        assert_eq!(lru.insert("a", 0, 2), vec![]);
        assert_eq!(lru.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec!["c", "a"]);
        assert_eq!(lru.pop_oldest(), Some(("c", 3)));
        assert_eq!(lru.pop_oldest(), Some(("a", 0)));
        assert_eq!(lru.pop_oldest(), None);
        assert!(lru.is_empty());
    }

    #[test]
    fn slots_are_reused() {
        let mut lru = Lru::new();
        for i in 0..1000u32 {
            lru.insert(i, i, 3);
            assert!(lru.len() <= 3);
        }
        assert!(lru.slots.len() <= 4);
        assert_eq!(lru.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![997, 998, 999]);
        assert_eq!(lru.peek(&998), Some(&998));
    }
}
