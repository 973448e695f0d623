//! The packs the server runs, per tenant, behind one atomic pointer: a reload
//! builds a whole new [`Packs`] and swaps it in ([`PackRegistry::swap`]);
//! evaluation takes the current one when a trace completes, so a trace is
//! evaluated exactly once, under one pack set, whenever the swap happens.
//! Reading packs from disk is [`load`] (over [`sources`]).

pub mod load;
pub mod sources;

use std::collections::HashMap;
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
        self.tenants.get(tenant).unwrap_or(&self.default)
    }
}

/// The current packs.
#[derive(Debug)]
pub struct PackRegistry {
    current: ArcSwap<Packs>,
}

impl PackRegistry {
    pub fn new(mut packs: Packs) -> PackRegistry {
        packs.generation = 1;
        PackRegistry { current: ArcSwap::from_pointee(packs) }
    }

    pub fn current(&self) -> Arc<Packs> {
        self.current.load_full()
    }

    /// Makes `packs` current; returns its generation.
    pub fn swap(&self, mut packs: Packs) -> u64 {
        packs.generation = self.current.load().generation + 1;
        let generation = packs.generation;
        self.current.store(Arc::new(packs));
        generation
    }
}
