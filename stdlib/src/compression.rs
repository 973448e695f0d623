//! Compression scoring: the implementation behind `novelty`, `compression_ratio`
//! and `ncd`, shared by the interpreter and the JIT.
//!
//! `novelty(value, by: key)` asks how new a value looks against the values seen
//! before for the same key at the same call site. Its score is
//!
//! ```text
//! novelty(v) = C(v | B) / C(v)
//! ```
//!
//! where `B` is the key's baseline (its recent values), `C(v | B)` the bytes of
//! block content zstd emits for `v` with `B` as a prepared dictionary — the
//! extra bytes `v` needs given the baseline — and `C(v)` the same for `v`
//! alone; frame and block headers are left out of both. A value already in
//! the baseline scores near 0, one sharing nothing with it near 1 (a little
//! above 1 when the dictionary misleads zstd's entropy tables). Both
//! compressions cost O(|v|): the dictionary is prepared ahead and refreshed
//! every quarter- to half-baseline of new bytes ([`baseline`]).
//!
//! The flow: [`tokenizer`] (ids and numbers to fixed tokens) → [`state`] (call
//! sites, keys with least-recently-used eviction) → [`baseline`] (samples and
//! dictionary) and [`scorer`] (zstd sizes, remembered by [`cache`] for values
//! that repeat) → [`policy`] (what flagged values
//! do to the baseline) → [`evidence`] (p-value and worst segments, on demand)
//! → [`snapshot`] (to bytes and back). `docs/detection.md` has the measured
//! detection quality and cost.

pub mod baseline;
pub mod cache;
pub mod evidence;
pub mod lru;
pub mod policy;
pub mod scorer;
pub mod snapshot;
pub mod state;
pub mod tokenizer;

use serde::{Deserialize, Serialize};

use crate::Value;
pub use baseline::Bounds;
pub use evidence::{Evidence, Segment};
pub use policy::BurstPolicy;
pub use scorer::Compressor;
pub use state::{Call, CallSiteId, NoveltyMetrics, NoveltyState, PreparedCall};
pub use tokenizer::tokenize;

const SECOND_NS: i64 = 1_000_000_000;

/// The engine's settings for novelty state: defaults for the options a call
/// may give, caps on them, and bounds the calls cannot change.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoveltyConfig {
    /// Keys kept per call site; the least recently used go first.
    pub max_keys: usize,
    /// Default baseline size in samples (`samples:`), and its cap.
    pub samples: usize,
    pub max_samples: usize,
    /// Default baseline size in bytes (`bytes:`), and its cap.
    pub bytes: usize,
    pub max_bytes: usize,
    /// Default warm-up in samples (`warmup:`).
    pub warmup: usize,
    /// The zstd level of the scores.
    pub level: i32,
    /// Default flag threshold (`flag:`) of the burst policy.
    pub flag: f64,
    /// Default time flagged values wait before they join (`hold:`, see [`policy`]).
    pub hold_ns: i64,
    /// Recent scores kept per call site for p-values.
    pub recent_scores: usize,
    /// Segments reported as the worst in evidence.
    pub worst_segments: usize,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        NoveltyConfig {
            max_keys: 1024,
            samples: 256,
            max_samples: 4096,
            bytes: 32 * 1024,
            max_bytes: 1024 * 1024,
            warmup: 32,
            level: 1,
            flag: 0.5,
            hold_ns: 60 * SECOND_NS,
            recent_scores: 1024,
            worst_segments: 3,
        }
    }
}

/// One call site's options, resolved against the config.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoveltyOptions {
    pub bounds: Bounds,
    /// Tokenize string values before scoring (default on).
    pub tokenize: bool,
    pub policy: BurstPolicy,
}

impl NoveltyConfig {
    /// The options of a call that gives none.
    pub fn default_options(&self) -> NoveltyOptions {
        NoveltyOptions {
            bounds: Bounds { samples: self.samples, bytes: self.bytes, warmup: self.warmup, level: self.level },
            tokenize: true,
            policy: BurstPolicy { flag: self.flag, learn_flagged: false, hold_ns: self.hold_ns },
        }
    }

    /// The options of a call with these named arguments (`samples:`, `bytes:`,
    /// `warmup:`, `tokenize:`, `learn_flagged:`, `flag:`, `hold:`; `by:` and unknown
    /// names are ignored, as are values of the wrong type). Sizes are clamped to
    /// the caps; the warm-up to the sample bound.
    pub fn options<'a>(&self, named: impl IntoIterator<Item = (&'a str, &'a Value)>) -> NoveltyOptions {
        let mut options = self.default_options();
        let size = |value: &Value, low: usize, high: usize| match value {
            Value::Int(n) => Some(usize::try_from(*n).unwrap_or(0).clamp(low, high)),
            _ => None,
        };
        for (name, value) in named {
            let bounds = &mut options.bounds;
            match (name, value) {
                ("samples", v) => bounds.samples = size(v, 1, self.max_samples).unwrap_or(bounds.samples),
                ("bytes", v) => bounds.bytes = size(v, 64, self.max_bytes).unwrap_or(bounds.bytes),
                ("warmup", v) => bounds.warmup = size(v, 1, usize::MAX).unwrap_or(bounds.warmup),
                ("tokenize", Value::Bool(b)) => options.tokenize = *b,
                ("learn_flagged", Value::Bool(b)) => options.policy.learn_flagged = *b,
                ("flag", Value::Float(x)) if x.is_finite() => options.policy.flag = *x,
                ("flag", Value::Int(n)) => options.policy.flag = *n as f64,
                ("hold", Value::Duration(ns)) => options.policy.hold_ns = (*ns).max(0),
                _ => {}
            }
        }
        options.bounds.warmup = options.bounds.warmup.min(options.bounds.samples);
        options
    }
}

#[cfg(test)]
mod tests;
