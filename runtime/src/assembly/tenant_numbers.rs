//! The tenants a shard holds traces of, each under a number of its own.
//!
//! The shard's maps and queues key traces by (tenant number, trace id): a
//! plain value, compared and hashed without reading a tenant's name. Keyed
//! by the name (an `Arc<str>` per request), every probe of the maps read the
//! stored key's name from cold memory, and every copy of a key into a queue
//! bumped a reference count that the shards shared (together about 6% of a
//! loaded server).
//!
//! Numbers are never reused, so an entry left in a queue for a trace gone
//! can never meet another tenant's trace. Names no trace uses any more are
//! let go now and then ([`TenantNumbers::keep_only`]), so a stream of
//! made-up tenant names cannot grow the table without bound.

use std::collections::{HashMap, HashSet};

use crate::tenant::Tenant;

/// A tenant's number in one shard.
pub(super) type TenantNumber = u64;

/// The table keeps at least this many names before letting unused ones go.
const KEEP_AT_LEAST: usize = 64;

#[derive(Debug)]
pub(super) struct TenantNumbers {
    numbers: HashMap<Tenant, TenantNumber>,
    names: HashMap<TenantNumber, Tenant>,
    next: TenantNumber,
    /// Size at which [`Self::is_due_for_pruning`] says yes: twice what the
    /// last pruning kept, so pruning costs a constant per name added.
    prune_at: usize,
}

impl Default for TenantNumbers {
    fn default() -> Self {
        TenantNumbers { numbers: HashMap::new(), names: HashMap::new(), next: 0, prune_at: KEEP_AT_LEAST }
    }
}

impl TenantNumbers {
    /// The number of `tenant`, given it the first time.
    pub(super) fn number(&mut self, tenant: &Tenant) -> TenantNumber {
        if let Some(&number) = self.numbers.get(tenant) {
            return number;
        }
        let number = self.next;
        self.next += 1;
        // A copy of the shard's own: the request's `Arc` is shared with
        // other shards, whose clones would write its count too.
        let own = Tenant::from(&**tenant);
        self.numbers.insert(own.clone(), number);
        self.names.insert(number, own);
        number
    }

    /// The tenant named by `number`. Panics for a number let go: the shard
    /// asks only for those of traces it holds, which [`Self::keep_only`] keeps.
    pub(super) fn name(&self, number: TenantNumber) -> &Tenant {
        &self.names[&number]
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    pub(super) fn is_due_for_pruning(&self) -> bool {
        self.names.len() > self.prune_at
    }

    /// Lets go every tenant whose number is not in `in_use`.
    pub(super) fn keep_only(&mut self, in_use: impl IntoIterator<Item = TenantNumber>) {
        let in_use: HashSet<TenantNumber> = in_use.into_iter().collect();
        self.names.retain(|number, _| in_use.contains(number));
        self.numbers.retain(|_, number| in_use.contains(number));
        self.prune_at = (2 * self.names.len()).max(KEEP_AT_LEAST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_keeps_its_number_and_tenants_get_their_own() {
        let mut tenants = TenantNumbers::default();
        let (a, b) = (Tenant::from("a"), Tenant::from("b"));
        let number_a = tenants.number(&a);
        assert_ne!(tenants.number(&b), number_a);
        // A name from another request (another `Arc`) is the same tenant.
        assert_eq!(tenants.number(&Tenant::from("a")), number_a);
        assert_eq!(&**tenants.name(number_a), "a");
    }

    #[test]
    fn pruning_keeps_the_tenants_in_use_and_never_reuses_a_number() {
        let mut tenants = TenantNumbers::default();
        let numbers: Vec<TenantNumber> =
            (0..=KEEP_AT_LEAST).map(|i| tenants.number(&Tenant::from(format!("t{i}")))).collect();
        assert!(tenants.is_due_for_pruning());
        tenants.keep_only([numbers[3]]);
        assert!(!tenants.is_due_for_pruning());
        assert_eq!(&**tenants.name(numbers[3]), "t3");
        assert_eq!(tenants.number(&Tenant::from("t3")), numbers[3]);
        // A tenant let go comes back under a new number.
        let again = tenants.number(&Tenant::from("t0"));
        assert!(!numbers.contains(&again), "{again} was used before");
    }
}
