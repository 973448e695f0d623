//! The packs the server runs, per tenant, behind one atomic pointer: a reload
//! builds a whole new [`Packs`] and swaps it in ([`PackRegistry::swap`]);
//! evaluation takes the current one when a trace completes, so a trace is
//! evaluated exactly once, under one pack set, whenever the swap happens.
//! Reading packs from disk is [`load`] (over [`sources`]).

pub mod load;
pub mod sources;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use betrace_vm::Engine;

use crate::tenant::Tenant;

pub use load::{LoadFailure, load_packs};

/// The packs one tenant runs.
#[derive(Debug, Default)]
pub struct TenantPacks {
    pub engines: Vec<Arc<Engine>>,
}

impl TenantPacks {
    pub fn rule_count(&self) -> usize {
        self.engines.iter().map(|e| e.rules.len()).sum()
    }

    /// Whether any rule can fire before its trace is complete.
    pub fn has_early_rules(&self) -> bool {
        self.engines.iter().any(|e| e.rules.iter().any(|r| r.program.early))
    }

    pub fn native_count(&self) -> usize {
        self.engines.iter().map(|e| e.rules.iter().filter(|r| r.native.is_some()).count()).sum()
    }
}

/// Every tenant's packs at one moment.
#[derive(Debug, Default)]
pub struct Packs {
    /// For the default tenant, and for tenants without their own directory.
    pub default: Arc<TenantPacks>,
    pub tenants: HashMap<Tenant, Arc<TenantPacks>>,
    /// Counts swaps: 1 for the packs loaded at start.
    pub generation: u64,
}

impl Packs {
    pub fn for_tenant(&self, tenant: &str) -> &Arc<TenantPacks> {
        self.resolve(tenant).1
    }

    /// The packs that evaluate `tenant`'s spans, and the tenant they belong
    /// to: `tenant` itself when it has a pack directory, else the default
    /// tenant (`""`). Metrics are labelled with the latter, so their series
    /// stay as many as the configured tenants however many `X-Scope-OrgID`
    /// values clients send.
    pub fn resolve(&self, tenant: &str) -> (&str, &Arc<TenantPacks>) {
        match self.tenants.get_key_value(tenant) {
            Some((name, packs)) => (name, packs),
            None => ("", &self.default),
        }
    }

    /// Every tenant's packs, the default tenant (`""`) first.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Arc<TenantPacks>)> {
        std::iter::once(("", &self.default)).chain(self.tenants.iter().map(|(name, packs)| (&**name, packs)))
    }

    /// Hands each engine the `novelty` baselines of the engine of the same
    /// tenant and pack name in `previous`, for call sites that did not change
    /// (a reload keeps what the server has learnt).
    pub fn carry_novelty_from(&self, previous: &Packs) {
        for (tenant, packs) in self.all() {
            let Some(old_packs) = previous.all().find(|(name, _)| *name == tenant).map(|(_, p)| p) else { continue };
            for engine in packs.engines.iter().filter(|e| e.uses_novelty()) {
                if let Some(old) = old_packs.engines.iter().find(|old| old.pack.name == engine.pack.name) {
                    engine.carry_novelty_from(old);
                }
            }
        }
    }

    /// Bytes held by every engine's `novelty` baselines.
    pub fn novelty_bytes(&self) -> usize {
        self.all().flat_map(|(_, packs)| packs.engines.iter()).map(|e| e.novelty_bytes()).sum()
    }

    /// Writes each engine's `novelty` baselines under `dir`
    /// (`<tenant or _default>/<pack>.novelty`), for [`Packs::restore_novelty`]
    /// on the next start.
    pub fn save_novelty(&self, dir: &Path) -> std::io::Result<usize> {
        let mut saved = 0;
        for (tenant, packs) in self.all() {
            for engine in packs.engines.iter().filter(|e| e.uses_novelty()) {
                let path = snapshot_path(dir, tenant, &engine.pack.name);
                std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
                let temporary = path.with_extension("novelty.tmp");
                std::fs::write(&temporary, engine.novelty_snapshot())?;
                std::fs::rename(&temporary, &path)?;
                saved += 1;
            }
        }
        Ok(saved)
    }

    /// Restores baselines saved by [`Packs::save_novelty`]; a missing file is
    /// a fresh start, an unreadable one is logged and skipped.
    pub fn restore_novelty(&self, dir: &Path) -> usize {
        let mut restored = 0;
        for (tenant, packs) in self.all() {
            for engine in packs.engines.iter().filter(|e| e.uses_novelty()) {
                let path = snapshot_path(dir, tenant, &engine.pack.name);
                let Ok(bytes) = std::fs::read(&path) else { continue };
                match engine.restore_novelty(&bytes) {
                    Ok(()) => restored += 1,
                    Err(error) => tracing::warn!("ignoring the novelty snapshot {}: {error:?}", path.display()),
                }
            }
        }
        restored
    }
}

/// Where a tenant's pack's baselines are saved; names are reduced to
/// characters safe in a file name.
fn snapshot_path(dir: &Path, tenant: &str, pack: &str) -> PathBuf {
    let safe = |name: &str| -> String {
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
    };
    let tenant = if tenant.is_empty() { "_default".to_string() } else { safe(tenant) };
    dir.join(tenant).join(format!("{}.novelty", safe(pack)))
}

/// The current packs.
#[derive(Debug)]
pub struct PackRegistry {
    current: Arc<ArcSwap<Packs>>,
}

/// One thread's handle on the current packs ([`PackRegistry::cache`]): while
/// no reload happens, [`load`](Self::load) is one atomic read of a word no
/// thread writes, where a [`PackRegistry::load`] per trace took and gave
/// back a slot shared with the other shards (a hundredth of a loaded
/// server). It holds the packs it last loaded until its next `load`.
pub struct PacksCache(arc_swap::Cache<Arc<ArcSwap<Packs>>, Arc<Packs>>);

impl PacksCache {
    /// The current packs.
    pub fn load(&mut self) -> &Arc<Packs> {
        self.0.load()
    }
}

impl PackRegistry {
    pub fn new(mut packs: Packs) -> PackRegistry {
        packs.generation = 1;
        PackRegistry { current: Arc::new(ArcSwap::from_pointee(packs)) }
    }

    /// A handle for a thread that looks the packs up again and again.
    pub fn cache(&self) -> PacksCache {
        PacksCache(arc_swap::Cache::new(Arc::clone(&self.current)))
    }

    pub fn current(&self) -> Arc<Packs> {
        self.current.load_full()
    }

    /// The current packs for a moment's use, such as one trace's evaluation:
    /// unlike [`Self::current`], taking it writes no reference count that
    /// every shard shares. Hold it briefly (it may keep a swapped-out pack alive).
    pub fn load(&self) -> arc_swap::Guard<Arc<Packs>> {
        self.current.load()
    }

    /// Makes `packs` current; returns its generation.
    pub fn swap(&self, mut packs: Packs) -> u64 {
        packs.generation = self.current.load().generation + 1;
        let generation = packs.generation;
        self.current.store(Arc::new(packs));
        generation
    }
}
