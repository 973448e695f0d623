//! Spansets as bitsets over a trace's spans, and the structural operators on
//! them. Every operator is `O(n)`: it walks the spans once in depth-first
//! order (nested-set numbers) or through parent indices — or, when one side
//! holds a few spans, only their parent chains or subtrees.

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
        let enter = trace.enter();
        preorder.sort_unstable_by_key(|&i| enter[i as usize]);
        TreeOrder { preorder }
    }
}

/// A set of at most this many spans is related span by span — along
/// parent chains, or over subtrees' ranges of the depth-first order —
/// rather than by a walk over the whole trace. Rules that bind each server
/// span ask `op >> { … }` once per span: walking the trace each time made
/// them quadratic in its size (a 957-span trace spent a ninth of the
/// server's time here).
const FEW: usize = 8;

/// `a OP b`: the spans of `b` that have (or, negated, lack) the relation to some span of `a`.
pub fn structural(op: StructuralOp, a: &SpanSet, b: &SpanSet, trace: &Trace, order: &TreeOrder) -> SpanSet {
    use StructuralOp::*;
    let n = trace.len();
    let parent_in_a = |q: usize| trace.parent_of(q).is_some_and(|parent| a.contains(parent));
    let related = match op {
        Child | NotChild if is_few(b) => those_of(b, n, parent_in_a),
        Child | NotChild if is_few(a) => gather(a, n, |s, out| children(trace, order, s).for_each(|c| out.insert(c))),
        Child | NotChild => children_of(a, trace),
        Descendant | NotDescendant if is_few(a) => subtrees_of(a, trace, order),
        Descendant | NotDescendant if is_few(b) => {
            those_of(b, n, |q| proper_ancestors(trace, q).any(|above| a.contains(above)))
        }
        Descendant | NotDescendant => descendants_of(a, trace, order),
        Parent | NotParent => parents_of(a, trace),
        Ancestor | NotAncestor if is_few(a) => chains_above(a, trace),
        Ancestor | NotAncestor if is_few(b) => those_of(b, n, |q| subtree(trace, order, q).any(|d| a.contains(d))),
        Ancestor | NotAncestor => ancestors_of(a, trace, order),
        Sibling | NotSibling if is_few(b) => those_of(b, n, |q| {
            trace.parent_of(q).is_some_and(|p| children(trace, order, p).any(|c| c != q && a.contains(c)))
        }),
        Sibling | NotSibling if is_few(a) => gather(a, n, |s, out| {
            let siblings = trace.parent_of(s).into_iter().flat_map(|p| children(trace, order, p));
            siblings.filter(|&c| c != s).for_each(|c| out.insert(c))
        }),
        Sibling | NotSibling => siblings_of(a, trace),
    };
    relate(op, b, &related)
}

/// `b`'s spans in `related` (the relation holds), or not in it (negated).
fn relate(op: StructuralOp, b: &SpanSet, related: &SpanSet) -> SpanSet {
    match op {
        StructuralOp::Child
        | StructuralOp::Descendant
        | StructuralOp::Parent
        | StructuralOp::Ancestor
        | StructuralOp::Sibling => b.and(related),
        _ => b.minus(related),
    }
}

fn is_few(set: &SpanSet) -> bool {
    set.iter().nth(FEW).is_none()
}

/// The spans of `set` for which `holds`, as a set over `n` spans.
fn those_of(set: &SpanSet, n: usize, holds: impl Fn(usize) -> bool) -> SpanSet {
    gather(set, n, |q, out| {
        if holds(q) {
            out.insert(q);
        }
    })
}

/// The spans above `span`, nearest first (parent chains are acyclic).
fn proper_ancestors(trace: &Trace, span: usize) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(trace.parent_of(span), |&above| trace.parent_of(above))
}

/// What `add` puts in a set over `n` spans for each span of `set`.
fn gather(set: &SpanSet, n: usize, mut add: impl FnMut(usize, &mut SpanSet)) -> SpanSet {
    let mut out = SpanSet::empty(n);
    set.iter().for_each(|span| add(span, &mut out));
    out
}

/// The spans below `top`: those after it in depth-first order whose enter
/// number is below its exit.
fn subtree<'t>(trace: &'t Trace, order: &'t TreeOrder, top: usize) -> impl Iterator<Item = usize> + 't {
    let (enter, top_exit) = (trace.enter(), trace.exit()[top]);
    let after = order.preorder.partition_point(|&span| enter[span as usize] <= enter[top]);
    let below = order.preorder[after..].iter().take_while(move |&&span| enter[span as usize] < top_exit);
    below.map(|&span| span as usize)
}

/// The spans whose parent is `top`, found in its subtree.
fn children<'t>(trace: &'t Trace, order: &'t TreeOrder, top: usize) -> impl Iterator<Item = usize> + 't {
    let parent = trace.parent();
    subtree(trace, order, top).filter(move |&span| parent[span] as usize == top)
}

/// Spans with a proper ancestor in `a`, from each `a`-span's subtree.
fn subtrees_of(a: &SpanSet, trace: &Trace, order: &TreeOrder) -> SpanSet {
    gather(a, trace.len(), |top, out| {
        // Inside a subtree taken already, so is all of its own.
        if !out.contains(top) {
            subtree(trace, order, top).for_each(|span| out.insert(span));
        }
    })
}

/// Spans that are a proper ancestor of some span in `a`, up each parent
/// chain until it meets one already taken (whose ancestors are taken too).
fn chains_above(a: &SpanSet, trace: &Trace) -> SpanSet {
    gather(a, trace.len(), |span, out| {
        for above in proper_ancestors(trace, span) {
            if out.contains(above) {
                break;
            }
            out.insert(above);
        }
    })
}

/// Spans whose parent is in `a`.
fn children_of(a: &SpanSet, trace: &Trace) -> SpanSet {
    let mut out = SpanSet::empty(trace.len());
    for (i, &parent) in trace.parent().iter().enumerate() {
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
    let (enter, exit) = (trace.enter(), trace.exit());
    for &span in &order.preorder {
        let i = span as usize;
        if covered_until.is_some_and(|end| enter[i] < end) {
            out.insert(i);
        }
        if a.contains(i) {
            covered_until =
                Some(covered_until.map_or(exit[i], |end| if enter[i] < end { end.max(exit[i]) } else { exit[i] }));
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

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::trace::{SpanRecord, TraceBuilder};

    /// A trace of `parents.len()` spans: span `i`'s parent is span
    /// `parents[i] - 1` (0: a root; past the end: a parent never received,
    /// so an orphan; the builder cuts cycles), started in index order.
    fn trace(parents: &[usize]) -> Trace {
        let id = |i: usize| (i as u64 + 1).to_be_bytes();
        let mut builder = TraceBuilder::new([1; 16]);
        for (i, &parent) in parents.iter().enumerate() {
            let parent_id = if parent == 0 { [0; 8] } else { id(parent - 1) };
            builder.add(SpanRecord {
                trace_id: [1; 16],
                span_id: id(i),
                parent_id,
                start: i as i64,
                ..SpanRecord::default()
            });
        }
        builder.build()
    }

    /// A set over `n` spans: a few of them (the span-by-span paths) or any
    /// (the whole-trace walks).
    fn set(n: usize) -> impl Strategy<Value = SpanSet> {
        let few = vec(0..n, 0..=FEW + 1).boxed();
        let any = vec(any::<bool>(), n)
            .prop_map(|bits| bits.iter().enumerate().filter(|(_, bit)| **bit).map(|(i, _)| i).collect())
            .boxed();
        prop_oneof![few, any].prop_map(move |members| {
            let mut set = SpanSet::empty(n);
            members.into_iter().for_each(|i| set.insert(i));
            set
        })
    }

    /// The relations by their definitions, span pair by span pair.
    fn by_definition(op: StructuralOp, a: &SpanSet, b: &SpanSet, trace: &Trace) -> SpanSet {
        let above = |x: usize, y: usize| proper_ancestors(trace, y).any(|p| p == x);
        let holds = |x: usize, y: usize| match op {
            StructuralOp::Child | StructuralOp::NotChild => trace.parent_of(y) == Some(x),
            StructuralOp::Descendant | StructuralOp::NotDescendant => above(x, y),
            StructuralOp::Parent | StructuralOp::NotParent => trace.parent_of(x) == Some(y),
            StructuralOp::Ancestor | StructuralOp::NotAncestor => above(y, x),
            StructuralOp::Sibling | StructuralOp::NotSibling => {
                x != y && trace.parent_of(x).is_some() && trace.parent_of(x) == trace.parent_of(y)
            }
        };
        let related = those_of(b, trace.len(), |y| a.iter().any(|x| holds(x, y)));
        relate(op, b, &related)
    }

    const OPS: [StructuralOp; 10] = [
        StructuralOp::Child,
        StructuralOp::NotChild,
        StructuralOp::Descendant,
        StructuralOp::NotDescendant,
        StructuralOp::Parent,
        StructuralOp::NotParent,
        StructuralOp::Ancestor,
        StructuralOp::NotAncestor,
        StructuralOp::Sibling,
        StructuralOp::NotSibling,
    ];

    fn case() -> impl Strategy<Value = (Vec<usize>, SpanSet, SpanSet)> {
        (1usize..80).prop_flat_map(|n| (vec(0..n + 3, n), set(n), set(n)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Every operator, by whichever path the sets' sizes pick, is its
        /// definition (`Sibling` in `TreeOrder`'s sense: roots have none).
        #[test]
        fn structural_operators_meet_their_definitions((parents, a, b) in case()) {
            let trace = trace(&parents);
            let order = TreeOrder::new(&trace);
            for op in OPS {
                let expected = by_definition(op, &a, &b, &trace);
                prop_assert_eq!(structural(op, &a, &b, &trace, &order), expected, "{:?}", op);
            }
        }
    }
}
