//! One key's rolling baseline: the recent values seen for it (bounded in count
//! and bytes) and a zstd dictionary prepared from them, so scoring a value
//! against the baseline costs O(|value|).
//!
//! The dictionary is not rebuilt on every insertion: new samples wait in
//! `pending` until they amount to a share of the dictionary's bytes (or of
//! its sample bound), then one rebuild folds them in, drops the oldest
//! samples beyond the bounds, and prepares the dictionary anew. The share is
//! a quarter ([`REFRESH_NOVEL`]) when a pending sample is *novel* — flagged
//! when scored, released from quarantine, or taken during warm-up — so that
//! new material (a burst learned with `learn_flagged`, a lasting change after
//! `hold`) reaches the dictionary soon; it is a half ([`REFRESH`]) when every
//! pending sample scored below the flag threshold, since those are mostly
//! made of what the dictionary already holds. A rebuild costs O(|baseline|)
//! and happens once per |baseline|/4 or /2 new bytes, so each inserted byte
//! pays a constant amortized share (three to five bytes of dictionary
//! preparation). Preparing is the dearest part of `novelty` on values that
//! never repeat: with a quarter for every sample it took about a third of the
//! time on free text (docs/performance.md).
//!
//! Values scored between rebuilds are scored against the samples the current
//! dictionary was built from; evictions happen only at rebuilds, so the
//! dictionary is always exactly the `dict` samples, which is what a snapshot
//! restores (with whether a novel sample is pending, which decides the next
//! rebuild).
//!
//! A rebuild is two steps, so that the dear one can run outside a lock on
//! the state: [`Baseline::push`] folds the pending samples in and hands back
//! a [`Preparation`] (the new content), which anyone can
//! [prepare](Preparation::prepare) and then [install](Baseline::install).
//! Until then the baseline keeps scoring against its previous dictionary,
//! and folds again only once a whole dictionary's worth of samples is
//! pending; such a fold makes the first preparation stale, and installing
//! it does nothing.

use std::collections::VecDeque;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use zstd::zstd_safe::CDict;

use super::cache::{Hashed, SizeCache};
use super::scorer::Compressor;

/// New bytes (as a fraction 1/REFRESH of the dictionary, or of its sample
/// bound) that trigger a rebuild when no pending sample is novel (see the
/// module doc); the most that can be pending.
pub const REFRESH: usize = 2;

/// The same when a pending sample is novel.
pub const REFRESH_NOVEL: usize = 4;

/// The most the fixed cost of a whole match may be taken to be (bytes). A
/// sample that costs more (a short one, below zstd's minimum match) says
/// nothing about the cost of a match.
pub const MAX_MATCH_COST: usize = 12;

/// The bounds of one key's baseline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Most samples kept.
    pub samples: usize,
    /// Most bytes kept (samples' bytes).
    pub bytes: usize,
    /// Samples collected before the first score.
    pub warmup: usize,
    /// The zstd level the dictionary is prepared for.
    pub level: i32,
}

impl Bounds {
    /// The longest prefix of a value kept as a sample: a quarter of the byte bound.
    pub fn max_sample(&self) -> usize {
        (self.bytes / 4).max(1)
    }

    /// The part of a value that novelty judges — scores, learns and
    /// explains: the prefix a baseline keeps of a sample. Scored whole
    /// against baselines of such prefixes, a longer value could never look
    /// familiar, its tail being in no dictionary (the standard pack's
    /// `new_call_path` flagged every trace of some 900 spans or more).
    pub fn judged<'v>(&self, value: &'v [u8]) -> &'v [u8] {
        &value[..value.len().min(self.max_sample())]
    }
}

/// Reusable working memory for scoring and rebuilding: a compression context,
/// the cache of sizes, and the counter that numbers dictionaries for it.
#[derive(Debug, Default)]
pub struct Work {
    pub compressor: Compressor,
    pub cache: SizeCache,
    generations: u64,
}

impl Work {
    pub fn memory_bytes(&self) -> usize {
        self.compressor.memory_bytes() + self.cache.memory_bytes()
    }
}

/// What a snapshot keeps of a baseline: the samples in the dictionary and
/// pending, whether a pending one is novel, whether warm-up is over.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Parts {
    pub dict: Vec<Vec<u8>>,
    pub pending: Vec<Vec<u8>>,
    pub pending_novel: bool,
    pub warm: bool,
}

/// See the module doc.
pub struct Baseline {
    dict: VecDeque<Box<[u8]>>,
    dict_bytes: usize,
    pending: Vec<Box<[u8]>>,
    pending_bytes: usize,
    /// A pending sample is novel: the next rebuild comes at [`REFRESH_NOVEL`].
    pending_novel: bool,
    prepared: Option<CDict<'static>>,
    prepared_bytes: usize,
    /// What a value held whole in the dictionary costs: see [`Baseline::score`].
    match_cost: usize,
    /// Numbers the prepared dictionary for the size cache (0: none).
    generation: u64,
    /// The folds so far: names the preparation the baseline waits for.
    folds: u64,
    /// A fold whose dictionary is not installed yet.
    awaiting: Option<u64>,
}

/// The content of a folded baseline, to be prepared as a dictionary (see the
/// module doc).
#[derive(Debug)]
pub struct Preparation {
    content: Vec<u8>,
    /// Where the oldest and the newest sample lie in `content`: a whole match
    /// of each measures the fixed cost `m` of [`Baseline::score`].
    oldest: Range<usize>,
    newest: Range<usize>,
    level: i32,
    fold: u64,
}

/// A prepared dictionary, ready to [install](Baseline::install).
pub struct Prepared {
    dict: Option<CDict<'static>>,
    match_cost: usize,
    fold: u64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("dict_bytes", &self.dict.as_ref().map_or(0, CDict::sizeof))
            .field("match_cost", &self.match_cost)
            .field("fold", &self.fold)
            .finish()
    }
}

impl Preparation {
    /// Prepares the dictionary: the O(|baseline|) part of a rebuild, which
    /// needs nothing of the state. `compressor` measures the match cost.
    pub fn prepare(self, compressor: &mut Compressor) -> Prepared {
        // An empty baseline still gets a (useless) dictionary so that
        // warm-up, once over, stays over.
        let dict = CDict::try_create(&self.content, self.level);
        let match_cost = match &dict {
            Some(dict) if !self.oldest.is_empty() => {
                let oldest = compressor.size_given(&self.content[self.oldest.clone()], dict);
                let newest = compressor.size_given(&self.content[self.newest.clone()], dict);
                oldest.max(newest).min(MAX_MATCH_COST)
            }
            _ => 0,
        };
        Prepared { dict, match_cost, fold: self.fold }
    }
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline")
            .field("dict_samples", &self.dict.len())
            .field("dict_bytes", &self.dict_bytes)
            .field("pending_samples", &self.pending.len())
            .field("pending_bytes", &self.pending_bytes)
            .field("warm", &self.is_warm())
            .finish()
    }
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline::new()
    }
}

impl Baseline {
    pub fn new() -> Baseline {
        Baseline {
            dict: VecDeque::new(),
            dict_bytes: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_novel: false,
            prepared: None,
            prepared_bytes: 0,
            match_cost: 0,
            generation: 0,
            folds: 0,
            awaiting: None,
        }
    }

    /// Rebuilds a baseline from its parts (see [`Baseline::parts`]).
    pub fn from_parts(parts: Parts, bounds: &Bounds, work: &mut Work) -> Baseline {
        let Parts { dict, pending, pending_novel, warm } = parts;
        let mut baseline = Baseline { pending_novel, ..Baseline::new() };
        for sample in dict {
            baseline.dict_bytes += sample.len();
            baseline.dict.push_back(sample.into());
        }
        for sample in pending {
            baseline.pending_bytes += sample.len();
            baseline.pending.push(sample.into());
        }
        if warm {
            let prepared = baseline.preparation(bounds.level).prepare(&mut work.compressor);
            baseline.install(prepared, work);
        }
        baseline
    }

    /// What a snapshot keeps of the baseline.
    pub fn parts(&self) -> Parts {
        Parts {
            dict: self.dict.iter().map(|s| s.to_vec()).collect(),
            pending: self.pending.iter().map(|s| s.to_vec()).collect(),
            pending_novel: self.pending_novel,
            // A dictionary on its way counts: restoring prepares it.
            warm: self.is_warm() || self.awaiting.is_some(),
        }
    }

    /// Whether warm-up is over (a dictionary exists to score against).
    pub fn is_warm(&self) -> bool {
        self.prepared.is_some()
    }

    /// Samples held (in the dictionary and pending).
    pub fn samples(&self) -> usize {
        self.dict.len() + self.pending.len()
    }

    /// Sample bytes held (in the dictionary and pending).
    pub fn bytes(&self) -> usize {
        self.dict_bytes + self.pending_bytes
    }

    /// The prepared dictionary, once warm.
    pub fn dictionary(&self) -> Option<&CDict<'static>> {
        self.prepared.as_ref()
    }

    /// Bytes of memory this baseline holds: samples, zstd's prepared
    /// dictionary (its copy of the content and its tables), bookkeeping.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.dict_bytes
            + self.pending_bytes
            + self.prepared_bytes
            + (self.dict.capacity() + self.pending.capacity()) * std::mem::size_of::<Box<[u8]>>()
    }

    /// The novelty of `value`: `(C(v|B) − f) / (C(v) − f)`, where `C(v|B)` is
    /// the content bytes `value` needs given the dictionary, `C(v)` those it
    /// needs alone, and `f = min(m, C(v|B), C(v) − 1)` with `m` the cost of a
    /// value found whole in the dictionary (one match: a few bytes of block
    /// and sequence headers, measured on the baseline's own samples when the
    /// dictionary is prepared). Taking `f` off both sides puts a value seen
    /// before at 0 whatever its length, and leaves incompressible novelty at 1.
    /// `None` while warming up; `0.0` for a value that compresses to nothing.
    pub fn score(&self, value: &[u8], level: i32, work: &mut Work) -> Option<f64> {
        let dict = self.prepared.as_ref()?;
        let Work { compressor, cache, .. } = work;
        // Sizes alone are cached under a small number naming the level;
        // dictionaries' generations have the top bit set.
        let alone_tag = u64::from(level.unsigned_abs()) << 1 | u64::from(level < 0);
        let hashed = Hashed::new(value);
        let alone = cache.get_or_insert_hashed(&hashed, alone_tag, || compressor.size(value, level));
        if alone == 0 {
            return Some(0.0);
        }
        let given = cache.get_or_insert_hashed(&hashed, self.generation, || compressor.size_given(value, dict));
        let floor = self.match_cost.min(given).min(alone - 1);
        Some((given - floor) as f64 / (alone - floor) as f64)
    }

    /// The fixed cost `m` of [`score`](Self::score) for this dictionary.
    pub fn match_cost(&self) -> usize {
        self.match_cost
    }

    /// Adds a sample (its first [`Bounds::max_sample`] bytes); `novel` says
    /// whether it brings new material (see the module doc). When that calls
    /// for a rebuild, folds the pending samples in and returns the content to
    /// prepare.
    pub fn push(&mut self, sample: &[u8], novel: bool, bounds: &Bounds) -> Option<Preparation> {
        let sample = bounds.judged(sample);
        if sample.is_empty() {
            return None;
        }
        self.pending.push(sample.into());
        self.pending_bytes += sample.len();
        self.pending_novel |= novel;
        let refresh = match (self.awaiting, self.is_warm()) {
            // A preparation is on its way: fold again only once a whole
            // dictionary's worth is pending, superseding it, so that a slow
            // or lost preparation cannot stop the baseline from learning.
            (Some(_), _) => Some(1),
            (None, true) => Some(if self.pending_novel { REFRESH_NOVEL } else { REFRESH }),
            (None, false) => None,
        };
        let due = match refresh {
            Some(refresh) => {
                self.pending_bytes * refresh >= self.dict_bytes || self.pending.len() * refresh >= bounds.samples
            }
            None => self.samples() >= bounds.warmup.max(1),
        };
        due.then(|| self.fold(bounds))
    }

    /// Folds the pending samples in, drops the oldest beyond the bounds, and
    /// returns the new content to prepare.
    fn fold(&mut self, bounds: &Bounds) -> Preparation {
        for sample in self.pending.drain(..) {
            self.dict_bytes += sample.len();
            self.dict.push_back(sample);
        }
        self.pending_bytes = 0;
        self.pending_novel = false;
        while self.dict.len() > bounds.samples.max(1) || self.dict_bytes > bounds.bytes {
            match self.dict.pop_front() {
                Some(old) => self.dict_bytes -= old.len(),
                None => break,
            }
        }
        self.preparation(bounds.level)
    }

    /// The dictionary's content as it stands, to prepare; the baseline now
    /// waits for it.
    fn preparation(&mut self, level: i32) -> Preparation {
        // The most recent samples end the content: zstd reaches them with
        // the shortest offsets.
        let mut content = Vec::with_capacity(self.dict_bytes);
        for sample in &self.dict {
            content.extend_from_slice(sample);
        }
        let oldest = 0..self.dict.front().map_or(0, |s| s.len());
        let newest = content.len() - self.dict.back().map_or(0, |s| s.len())..content.len();
        self.folds += 1;
        self.awaiting = Some(self.folds);
        Preparation { content, oldest, newest, level, fold: self.folds }
    }

    /// Puts a prepared dictionary in use, if it is the one the baseline waits
    /// for (not made stale by a later fold); returns whether it was.
    pub fn install(&mut self, prepared: Prepared, work: &mut Work) -> bool {
        if self.awaiting != Some(prepared.fold) {
            return false;
        }
        self.awaiting = None;
        self.prepared = prepared.dict;
        self.match_cost = prepared.match_cost;
        self.prepared_bytes = self.prepared.as_ref().map_or(0, CDict::sizeof);
        // Dictionary generations live above the range used for levels.
        work.generations += 1;
        self.generation = work.generations | 1 << 63;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds { samples: 8, bytes: 400, warmup: 3, level: 1 };

    impl Baseline {
        /// [`push`](Self::push), preparing and installing at once what it
        /// folds. Returns whether it rebuilt.
        fn push_now(&mut self, sample: &[u8], novel: bool, bounds: &Bounds, work: &mut Work) -> bool {
            match self.push(sample, novel, bounds) {
                Some(preparation) => {
                    let prepared = preparation.prepare(&mut work.compressor);
                    self.install(prepared, work)
                }
                None => false,
            }
        }
    }

    #[test]
    fn warms_up_then_scores() {
        let mut baseline = Baseline::new();
        let mut work = Work::default();
        let line = b"GET /api/orders status=200 user=alice region=eu-west";
        for i in 0..2 {
            assert!(!baseline.push_now(line, false, &BOUNDS, &mut work), "sample {i}");
            assert_eq!(baseline.score(line, 1, &mut work), None);
        }
        assert!(baseline.push_now(line, false, &BOUNDS, &mut work), "the third sample ends warm-up");
        let familiar = baseline.score(line, 1, &mut work).unwrap();
        let novel = baseline.score(b"panic: index out of range [3] with length 3 in worker", 1, &mut work).unwrap();
        assert!(familiar < 0.2 && novel > 0.8, "{familiar} {novel}");
    }

    #[test]
    fn stays_within_bounds() {
        let mut baseline = Baseline::new();
        let mut work = Work::default();
        for i in 0..1000u32 {
            let sample = format!("sample number {i} {}", "x".repeat((i % 150) as usize));
            baseline.push_now(sample.as_bytes(), i % 7 == 0, &BOUNDS, &mut work);
            assert!(baseline.dict.len() <= BOUNDS.samples && baseline.dict_bytes <= BOUNDS.bytes);
            assert!(baseline.pending_bytes * REFRESH < baseline.dict_bytes.max(1) + BOUNDS.max_sample() * REFRESH);
            assert!(baseline.pending.len() * REFRESH < BOUNDS.samples + REFRESH);
        }
        assert!(baseline.memory_bytes() > baseline.bytes());
    }

    #[test]
    fn novel_samples_bring_the_next_rebuild_forward() {
        let bounds = Bounds { samples: 64, bytes: 64 * 20, warmup: 16, level: 1 };
        let sample = |i: usize| format!("{i:020}");
        // Samples pushed until a rebuild, after a warm-up of 16 samples (320 bytes).
        let until_rebuild = |novel: bool| {
            let mut baseline = Baseline::new();
            let mut work = Work::default();
            (0..16).for_each(|i| _ = baseline.push_now(sample(i).as_bytes(), true, &bounds, &mut work));
            assert!(baseline.is_warm() && !baseline.pending_novel);
            (1..).find(|i| baseline.push_now(sample(100 + i).as_bytes(), novel, &bounds, &mut work)).unwrap()
        };
        assert_eq!(until_rebuild(false), 16 / REFRESH, "familiar samples: half the dictionary's bytes");
        assert_eq!(until_rebuild(true), 16 / REFRESH_NOVEL, "novel samples: a quarter");
    }

    #[test]
    fn a_preparation_made_stale_by_a_later_fold_is_not_installed() {
        let mut baseline = Baseline::new();
        let mut work = Work::default();
        let line = |i: u32| format!("line {i} of forty bytes, give or take a few");
        (0..2).for_each(|i| assert!(baseline.push(line(i).as_bytes(), true, &BOUNDS).is_none()));
        let first = baseline.push(line(2).as_bytes(), true, &BOUNDS).expect("warm-up ends");
        // While it is prepared elsewhere, a whole dictionary's worth comes in.
        let second = (3..).find_map(|i| baseline.push(line(i).as_bytes(), true, &BOUNDS)).expect("folds again");
        assert!(!baseline.is_warm());
        assert!(!baseline.install(first.prepare(&mut work.compressor), &mut work), "stale");
        assert!(!baseline.is_warm());
        assert!(baseline.install(second.prepare(&mut work.compressor), &mut work));
        assert!(baseline.is_warm() && baseline.score(line(4).as_bytes(), 1, &mut work).is_some());
    }

    #[test]
    fn long_values_keep_a_prefix() {
        let mut baseline = Baseline::new();
        baseline.push_now(&[7u8; 10_000], true, &BOUNDS, &mut Work::default());
        assert_eq!(baseline.bytes(), BOUNDS.max_sample());
    }
}
