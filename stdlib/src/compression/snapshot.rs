//! Novelty state to bytes and back, so a restart keeps its baselines: a magic
//! tag and format version, then the state as postcard. Prepared dictionaries
//! are not stored; restoring prepares them again from exactly the samples
//! they were built from, so scores after a restore equal those the state
//! would have given without one.

use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, Parts};
use super::evidence::ScoreWindow;
use super::lru::Lru;
use super::policy::Quarantine;
use super::state::{CallSiteId, Counters, KeyState, NoveltyState, Site};
use super::{NoveltyConfig, NoveltyOptions};

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"BTNOVEL\0";
/// Bumped whenever the layout below changes; other versions are refused.
/// 2: a baseline records whether a novel sample is pending.
pub const FORMAT_VERSION: u16 = 2;

/// Why a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    NotASnapshot,
    Version { found: u16, expected: u16 },
    Corrupt(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::NotASnapshot => f.write_str("not a novelty state snapshot"),
            SnapshotError::Version { found, expected } => {
                write!(f, "novelty snapshot format {found}, this build reads format {expected}")
            }
            SnapshotError::Corrupt(reason) => write!(f, "corrupt novelty snapshot: {reason}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

#[derive(Serialize, Deserialize)]
struct StateSnap {
    counters: Counters,
    sites: Vec<SiteSnap>,
}

#[derive(Serialize, Deserialize)]
struct SiteSnap {
    id: CallSiteId,
    options: NoveltyOptions,
    recent: Vec<f64>,
    /// Least recently used first, so restoring in order restores the order.
    keys: Vec<KeySnap>,
}

#[derive(Serialize, Deserialize)]
struct KeySnap {
    key: Vec<u8>,
    baseline: Parts,
    quarantine: Quarantine,
}

impl NoveltyState {
    /// The state as bytes (see the module doc). Sites are written in a fixed
    /// order, so equal states give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut sites: Vec<SiteSnap> = self
            .sites
            .iter()
            .map(|(id, site)| SiteSnap {
                id: id.clone(),
                options: site.options,
                recent: site.recent.in_order(),
                keys: site
                    .keys
                    .iter()
                    .map(|(key, state)| KeySnap {
                        key: key.to_vec(),
                        baseline: state.baseline.parts(),
                        quarantine: state.quarantine.clone(),
                    })
                    .collect(),
            })
            .collect();
        sites.sort_by(|a, b| a.id.cmp(&b.id));
        let body = postcard::to_stdvec(&StateSnap { counters: self.counters, sites }).expect("in-memory serialization");
        let mut out = Vec::with_capacity(MAGIC.len() + 2 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A state from [`snapshot`](Self::snapshot) bytes, under `config` (its
    /// `max_keys` and `recent_scores` apply; each site keeps its options).
    pub fn restore(config: NoveltyConfig, bytes: &[u8]) -> Result<NoveltyState, SnapshotError> {
        let rest = bytes.strip_prefix(&MAGIC[..]).ok_or(SnapshotError::NotASnapshot)?;
        let (version, body) = rest.split_at_checked(2).ok_or(SnapshotError::NotASnapshot)?;
        let found = u16::from_le_bytes([version[0], version[1]]);
        if found != FORMAT_VERSION {
            return Err(SnapshotError::Version { found, expected: FORMAT_VERSION });
        }
        let snap: StateSnap = postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        let mut state = NoveltyState::new(config);
        state.counters = snap.counters;
        for site in snap.sites {
            let mut keys = Lru::new();
            for key in site.keys {
                let baseline = Baseline::from_parts(key.baseline, &site.options.bounds, &mut state.work);
                let evicted =
                    keys.insert(key.key.into(), KeyState { baseline, quarantine: key.quarantine }, config.max_keys);
                state.counters.evicted_keys += evicted.len() as u64;
            }
            let recent = ScoreWindow::from_scores(site.recent, config.recent_scores);
            state.sites.insert(site.id, Site { options: site.options, keys, recent });
        }
        Ok(state)
    }
}
