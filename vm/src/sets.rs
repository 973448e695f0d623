//! Spansets as bitsets over a trace's spans, and the structural operators on
//! them. Every operator is `O(n)`: it walks the spans once in depth-first
//! order (nested-set numbers) or through parent indices.

use betrace_compiler::hir::StructuralOp;
use smallvec::{SmallVec, smallvec};

use crate::trace::{NO_PARENT, Trace};

/// Words held inline: most traces have at most 128 spans, and a rule run
/// makes several sets, so they should not cost an allocation each.
const INLINE_WORDS: usize = 2;

/// A set of span indices of one trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanSet {
    words: SmallVec<[u64; INLINE_WORDS]>,
}

impl SpanSet {
    pub fn empty(n: usize) -> SpanSet {
        SpanSet { words: smallvec![0; n.div_ceil(64)] }
    }

    pub fn full(n: usize) -> SpanSet {
        let mut set = SpanSet { words: smallvec![u64::MAX; n.div_ceil(64)] };
        if !n.is_multiple_of(64)
            && let Some(last) = set.words.last_mut()
        {
            *last = (1u64 << (n % 64)) - 1;
        }
        set
    }

    /// Resizes to `n` spans and clears every bit, reusing the allocation.
    pub fn reset(&mut self, n: usize) {
        self.words.clear();
        self.words.resize(n.div_ceil(64), 0);
    }

    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The span indices in the set, ascending (that is, in start order).
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + bit)
            })
        })
    }

    /// TraceQL's spanset `&&`: both sets when neither is empty, else nothing.
    pub fn both(&self, other: &SpanSet) -> SpanSet {
        if self.is_empty() || other.is_empty() { SpanSet::empty(self.words.len() * 64) } else { self.or(other) }
    }

    pub fn and(&self, other: &SpanSet) -> SpanSet {
        SpanSet { words: self.words.iter().zip(&other.words).map(|(a, b)| a & b).collect() }
    }

    pub fn or(&self, other: &SpanSet) -> SpanSet {
        SpanSet { words: self.words.iter().zip(&other.words).map(|(a, b)| a | b).collect() }
    }

    pub fn minus(&self, other: &SpanSet) -> SpanSet {
        SpanSet { words: self.words.iter().zip(&other.words).map(|(a, b)| a & !b).collect() }
    }
}

/// Spans in depth-first (pre-)order, computed once per trace for the
/// structural operators.
#[derive(Clone, Debug, Default)]
pub struct TreeOrder {
    pub preorder: Vec<u32>,
}

impl TreeOrder {
    pub fn new(trace: &Trace) -> TreeOrder {
        let mut preorder: Vec<u32> = (0..trace.len() as u32).collect();
        preorder.sort_unstable_by_key(|&i| trace.enter[i as usize]);
        TreeOrder { preorder }
    }
}

/// `a OP b`: the spans of `b` that have (or, negated, lack) the relation to some span of `a`.
pub fn structural(op: StructuralOp, a: &SpanSet, b: &SpanSet, trace: &Trace, order: &TreeOrder) -> SpanSet {
    let related = match op {
        StructuralOp::Child | StructuralOp::NotChild => children_of(a, trace),
        StructuralOp::Descendant | StructuralOp::NotDescendant => descendants_of(a, trace, order),
        StructuralOp::Parent | StructuralOp::NotParent => parents_of(a, trace),
        StructuralOp::Ancestor | StructuralOp::NotAncestor => ancestors_of(a, trace, order),
        StructuralOp::Sibling | StructuralOp::NotSibling => siblings_of(a, trace),
    };
    match op {
        StructuralOp::Child
        | StructuralOp::Descendant
        | StructuralOp::Parent
        | StructuralOp::Ancestor
        | StructuralOp::Sibling => b.and(&related),
        _ => b.minus(&related),
    }
}

/// Spans whose parent is in `a`.
fn children_of(a: &SpanSet, trace: &Trace) -> SpanSet {
    let mut out = SpanSet::empty(trace.len());
    for (i, &parent) in trace.parent.iter().enumerate() {
        if parent != NO_PARENT && a.contains(parent as usize) {
            out.insert(i);
        }
    }
    out
}

/// Spans with a proper ancestor in `a`: in pre-order, a span is inside an
/// `a`-span's subtree while its enter number is below that span's exit number.
fn descendants_of(a: &SpanSet, trace: &Trace, order: &TreeOrder) -> SpanSet {
    let mut out = SpanSet::empty(trace.len());
    let mut covered_until: Option<u32> = None;
    for &span in &order.preorder {
        let i = span as usize;
        if covered_until.is_some_and(|end| trace.enter[i] < end) {
            out.insert(i);
        }
        if a.contains(i) {
            covered_until = Some(covered_until.map_or(trace.exit[i], |end| {
                if trace.enter[i] < end { end.max(trace.exit[i]) } else { trace.exit[i] }
            }));
        }
    }
    out
}

/// Spans that are the parent of some span in `a`.
fn parents_of(a: &SpanSet, trace: &Trace) -> SpanSet {
    let mut out = SpanSet::empty(trace.len());
    for i in a.iter() {
        if let Some(parent) = trace.parent_of(i) {
            out.insert(parent);
        }
    }
    out
}

/// Spans that are a proper ancestor of some span in `a`: children are seen
/// before parents in reverse pre-order.
fn ancestors_of(a: &SpanSet, trace: &Trace, order: &TreeOrder) -> SpanSet {
    let mut out = SpanSet::empty(trace.len());
    for &span in order.preorder.iter().rev() {
        let i = span as usize;
        if (a.contains(i) || out.contains(i))
            && let Some(parent) = trace.parent_of(i)
        {
            out.insert(parent);
        }
    }
    out
}

/// Spans sharing a parent with a different span of `a` (roots have no siblings).
fn siblings_of(a: &SpanSet, trace: &Trace) -> SpanSet {
    let mut in_a_per_parent = vec![0u32; trace.len()];
    for i in a.iter() {
        if let Some(parent) = trace.parent_of(i) {
            in_a_per_parent[parent] += 1;
        }
    }
    let mut out = SpanSet::empty(trace.len());
    for i in 0..trace.len() {
        if let Some(parent) = trace.parent_of(i) {
            let others = in_a_per_parent[parent] - u32::from(a.contains(i));
            if others > 0 {
                out.insert(i);
            }
        }
    }
    out
}
