//! The reference detector: windowed NCD with permutation p-values, the
//! approach of Driftlock (an earlier compression-based detector), reimplemented
//! here on the same data. For each event of a key, the baseline is the
//! previous `baseline` events of that key and the window the last `window`
//! events (ending at this one); the statistic is
//! `NCD(B, W) = (C(BW) − min(C(B), C(W))) / max(C(B), C(W))` with zstd level 3,
//! and the p-value is the share of `permutations` random reshufflings of the
//! events of B ∪ W into a baseline and a window whose NCD is at least the
//! observed one: `(1 + #{≥}) / (1 + permutations)`.

use std::collections::HashMap;

use zstd::bulk::Compressor;

use super::data::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub baseline: usize,
    pub window: usize,
    pub permutations: usize,
    pub level: i32,
}

/// One event's result: `None` until the key has a full baseline.
#[derive(Clone, Copy, Debug)]
pub struct Scored {
    pub ncd: f64,
    pub p_value: f64,
}

pub struct Reference {
    config: Config,
    history: HashMap<String, Vec<Vec<u8>>>,
    compressor: Compressor<'static>,
    out: Vec<u8>,
    rng: Rng,
}

impl Reference {
    pub fn new(config: Config, seed: u64) -> Reference {
        Reference {
            config,
            history: HashMap::new(),
            compressor: Compressor::new(config.level).expect("zstd context"),
            out: vec![0; 1 << 20],
            rng: Rng(seed),
        }
    }

    fn size(&mut self, bytes: &[u8]) -> usize {
        if self.out.len() < zstd::zstd_safe::compress_bound(bytes.len()) {
            self.out.resize(zstd::zstd_safe::compress_bound(bytes.len()), 0);
        }
        self.compressor.compress_to_buffer(bytes, &mut self.out).expect("fits")
    }

    fn ncd(&mut self, baseline: &[&[u8]], window: &[&[u8]]) -> f64 {
        let b: Vec<u8> = baseline.concat();
        let w: Vec<u8> = window.concat();
        let (cb, cw) = (self.size(&b), self.size(&w));
        let mut bw = b;
        bw.extend_from_slice(&w);
        let cbw = self.size(&bw);
        (cbw.saturating_sub(cb.min(cw))) as f64 / cb.max(cw).max(1) as f64
    }

    /// Adds `value` to `key`'s history and scores the window ending at it.
    pub fn observe(&mut self, key: &str, value: &[u8]) -> Option<Scored> {
        let Config { baseline, window, permutations, .. } = self.config;
        let history = self.history.entry(key.to_string()).or_default();
        history.push(value.to_vec());
        let keep = baseline + window;
        if history.len() > keep {
            history.drain(..history.len() - keep);
        }
        if history.len() < keep {
            return None;
        }
        let events: Vec<Vec<u8>> = history.clone();
        let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let observed = self.ncd(&refs[..baseline], &refs[baseline..]);
        let mut pool = refs.clone();
        let mut at_least = 0;
        for _ in 0..permutations {
            for i in (1..pool.len()).rev() {
                let j = self.rng.below(i + 1);
                pool.swap(i, j);
            }
            if self.ncd(&pool[..baseline], &pool[baseline..]) >= observed {
                at_least += 1;
            }
        }
        Some(Scored { ncd: observed, p_value: (1 + at_least) as f64 / (1 + permutations) as f64 })
    }
}
