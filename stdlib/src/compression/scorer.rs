//! zstd sizes: the compressed size of a value alone or given a prepared
//! dictionary (the baseline), measured as the bytes of block content a frame
//! holds, frame and block headers excluded. Every score in this module is a
//! ratio of such sizes.

use std::cell::RefCell;

use zstd::zstd_safe::{self, CCtx, CDict};

/// The level the stateless builtins (`compression_ratio`, `ncd`) use: zstd's default.
pub const STATELESS_LEVEL: i32 = 3;

/// A reusable zstd compression context and output buffer. Not `Sync`; one per
/// thread or per state.
pub struct Compressor {
    cctx: CCtx<'static>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").field("buffer", &self.out.len()).finish_non_exhaustive()
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor::new()
    }
}

impl Compressor {
    pub fn new() -> Compressor {
        Compressor { cctx: CCtx::create(), out: Vec::new() }
    }

    /// Bytes held: zstd's context and the output buffer.
    pub fn memory_bytes(&self) -> usize {
        self.cctx.sizeof() + self.out.capacity()
    }

    fn reserve(&mut self, len: usize) {
        let bound = zstd_safe::compress_bound(len);
        if self.out.len() < bound {
            self.out.resize(bound, 0);
        }
    }

    /// The content bytes of `src` compressed on its own at `level`.
    pub fn size(&mut self, src: &[u8], level: i32) -> usize {
        self.reserve(src.len());
        match self.cctx.compress(&mut self.out[..], src, level) {
            Ok(written) => payload(&self.out[..written]),
            Err(_) => src.len(),
        }
    }

    /// The content bytes of `src` compressed with `dict` as its dictionary:
    /// what `src` costs on top of what the dictionary already holds.
    pub fn size_given(&mut self, src: &[u8], dict: &CDict<'_>) -> usize {
        self.reserve(src.len());
        match self.cctx.compress_using_cdict(&mut self.out[..], src, dict) {
            Ok(written) => payload(&self.out[..written]),
            Err(_) => src.len(),
        }
    }

    /// The normalized compression distance of `a` and `b`:
    /// `(C(ab) − min(C(a), C(b))) / max(C(a), C(b))`, `0.0` if both are empty.
    pub fn ncd(&mut self, a: &[u8], b: &[u8], level: i32) -> f64 {
        let (ca, cb) = (self.size(a, level), self.size(b, level));
        let mut joined = Vec::with_capacity(a.len() + b.len());
        joined.extend_from_slice(a);
        joined.extend_from_slice(b);
        let cab = self.size(&joined, level);
        let (low, high) = (ca.min(cb), ca.max(cb));
        if high == 0 { 0.0 } else { cab.saturating_sub(low) as f64 / high as f64 }
    }
}

thread_local! {
    static STATELESS: RefCell<Compressor> = RefCell::new(Compressor::new());
}

/// Runs `f` with this thread's compressor: the stateless builtins use it,
/// and so do dictionary rebuilds prepared outside a state's lock.
pub fn with_stateless<T>(f: impl FnOnce(&mut Compressor) -> T) -> T {
    STATELESS.with(|cell| f(&mut cell.borrow_mut()))
}

/// The bytes of block content in one zstd frame: the frame minus its header,
/// its 3-byte block headers and its checksum. An RLE block counts one byte.
/// A truncated frame counts what it holds.
pub fn payload(frame: &[u8]) -> usize {
    const DICT_ID_BYTES: [usize; 4] = [0, 1, 2, 4];
    if frame.len() < 5 {
        return 0;
    }
    let descriptor = frame[4];
    let single_segment = descriptor & 0x20 != 0;
    let content_size_bytes = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let mut pos = 5 + usize::from(!single_segment) + DICT_ID_BYTES[usize::from(descriptor & 3)] + content_size_bytes;
    let mut total = 0;
    while pos + 3 <= frame.len() {
        let header = u32::from(frame[pos]) | u32::from(frame[pos + 1]) << 8 | u32::from(frame[pos + 2]) << 16;
        pos += 3;
        let last = header & 1 == 1;
        let content = match (header >> 1) & 3 {
            1 => 1, // RLE: one byte repeated
            _ => (header >> 3) as usize,
        };
        total += content;
        pos += content;
        if last {
            break;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn random_bytes_cost_their_length() {
        let mut c = Compressor::new();
        for len in [1, 10, 100, 1000, 200_000] {
            let data = pseudo_random(len, len as u64);
            assert_eq!(c.size(&data, 3), len, "{len} random bytes are stored raw");
        }
        assert_eq!(c.size(b"", 3), 0);
    }

    #[test]
    fn repeated_bytes_cost_little() {
        let mut c = Compressor::new();
        assert!(c.size(&[b'a'; 1000], 3) < 16);
        let text = "GET /api/v1/orders 200\n".repeat(50);
        assert!(c.size(text.as_bytes(), 3) < 40);
    }

    #[test]
    fn a_dictionary_holding_the_value_makes_it_cheap() {
        let mut c = Compressor::new();
        let value = pseudo_random(500, 7);
        let mut dict_content = pseudo_random(4000, 8);
        dict_content.extend_from_slice(&value);
        let dict = CDict::create(&dict_content, 1);
        assert!(c.size_given(&value, &dict) < 10);
        let other = pseudo_random(500, 9);
        assert_eq!(c.size_given(&other, &dict), 500);
    }

    #[test]
    fn ncd_of_equal_and_unrelated() {
        let mut c = Compressor::new();
        let a = pseudo_random(1000, 1);
        let b = pseudo_random(1000, 2);
        assert!(c.ncd(&a, &a, 3) < 0.05);
        assert!(c.ncd(&a, &b, 3) > 0.95);
        assert_eq!(c.ncd(b"", b"", 3), 0.0);
    }
}
