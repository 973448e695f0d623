//! A small cache of compressed sizes, so a value seen again (after
//! tokenizing, templated logs and trace shapes repeat a lot) costs a hash
//! instead of two compressions. Entries are tagged with a 64-bit hash of the
//! bytes mixed with the dictionary's generation (0 for "no dictionary"): a
//! rebuilt dictionary gets a new generation, so stale sizes are never found.
//! The bytes are hashed once per value ([`Hashed`]) and mixed with each
//! generation, so looking up both sizes of a score reads the value once.
//! A hit returns exactly what compressing again would (zstd is
//! deterministic), so results do not depend on the cache — barring a 64-bit
//! hash collision between two values of the same length.

/// Entries in the direct-mapped table (a power of two).
pub const ENTRIES: usize = 4096;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    tag: u64,
    len: u32,
    size: u32,
}

/// See the module doc.
#[derive(Debug)]
pub struct SizeCache {
    entries: Box<[Entry]>,
    pub hits: u64,
    pub misses: u64,
}

impl Default for SizeCache {
    fn default() -> Self {
        SizeCache { entries: vec![Entry::default(); ENTRIES].into_boxed_slice(), hits: 0, misses: 0 }
    }
}

impl SizeCache {
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// The size for `bytes` under dictionary `generation`, computing and
    /// remembering it with `compute` on a miss.
    pub fn get_or_insert(&mut self, bytes: &[u8], generation: u64, compute: impl FnOnce() -> usize) -> usize {
        self.get_or_insert_hashed(&Hashed::new(bytes), generation, compute)
    }

    /// [`get_or_insert`](Self::get_or_insert) for bytes hashed beforehand.
    pub fn get_or_insert_hashed(&mut self, bytes: &Hashed, generation: u64, compute: impl FnOnce() -> usize) -> usize {
        let (Ok(len), tag) = (u32::try_from(bytes.len), bytes.tag(generation)) else { return compute() };
        let slot = &mut self.entries[(tag as usize) & (ENTRIES - 1)];
        if slot.tag == tag && slot.len == len && tag != 0 {
            self.hits += 1;
            return slot.size as usize;
        }
        self.misses += 1;
        let size = compute();
        if let Ok(size32) = u32::try_from(size) {
            *slot = Entry { tag, len, size: size32 };
        }
        size
    }
}

/// A value's hash and length, computed once and looked up under several
/// generations.
#[derive(Clone, Copy, Debug)]
pub struct Hashed {
    hash: u64,
    len: usize,
}

impl Hashed {
    pub fn new(bytes: &[u8]) -> Hashed {
        Hashed { hash: hash(bytes, 0), len: bytes.len() }
    }

    /// The tag of these bytes under `generation`: the hash mixed with it
    /// through a SplitMix64 finalizer, so nearby generations give unrelated tags.
    fn tag(&self, generation: u64) -> u64 {
        finalize(self.hash ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
    }
}

/// A fast 64-bit hash of `bytes` seeded with `seed`: eight bytes at a time
/// through a multiply-rotate mix, then a SplitMix64 finalizer.
pub fn hash(bytes: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        h = (h.rotate_left(23) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    finalize(h)
}

/// SplitMix64's finalizer: every input bit affects every output bit.
fn finalize(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_sizes_per_generation() {
        let mut cache = SizeCache::default();
        assert_eq!(cache.get_or_insert(b"abc", 1, || 7), 7);
        assert_eq!(cache.get_or_insert(b"abc", 1, || unreachable!("cached")), 7);
        assert_eq!(cache.get_or_insert(b"abc", 2, || 9), 9, "another dictionary");
        assert_eq!(cache.get_or_insert(b"abd", 1, || 8), 8);
        assert_eq!((cache.hits, cache.misses), (1, 3));
    }

    #[test]
    fn hashes_differ_for_small_changes() {
        let base = hash(b"GET /api/orders status=<num>", 0);
        assert_ne!(base, hash(b"GET /api/orders status=<num>", 1));
        assert_ne!(base, hash(b"GET /api/order status=<num>", 0));
        assert_ne!(hash(b"", 0), hash(b"\0", 0));
    }

    #[test]
    fn one_hash_serves_every_generation() {
        let mut cache = SizeCache::default();
        let value = Hashed::new(b"GET /api/orders status=<num>");
        assert_eq!(cache.get_or_insert_hashed(&value, 2, || 11), 11);
        assert_eq!(cache.get_or_insert_hashed(&value, 1 << 63 | 5, || 4), 4);
        assert_eq!(cache.get_or_insert_hashed(&value, 2, || unreachable!("cached")), 11);
        assert_eq!(cache.get_or_insert(b"GET /api/orders status=<num>", 1 << 63 | 5, || unreachable!("cached")), 4);
        assert_ne!(value.tag(2), value.tag(3));
    }
}
