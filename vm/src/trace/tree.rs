//! The shape of a trace from its parent column: cutting cycles, listing
//! children, and numbering spans for O(1) ancestor tests — all without
//! recursion, so a million-span chain costs no stack.

use smallvec::{SmallVec, smallvec};

use super::NO_PARENT;

/// Spans a trace may have before this module's working lists leave the
/// stack for the heap: most traces are a few dozen spans or fewer, and
/// the server builds a hundred thousand a second.
const ON_STACK: usize = 64;

/// Cuts every cycle in `parent` (a span is its own ancestor) and returns how
/// many were cut. In each cycle the link of the span with the lowest index —
/// the earliest-starting one — is removed, so that span becomes a root. The
/// choice depends only on the cycle, never on where the search entered it.
///
/// Each span has at most one parent, so every walk up the parents either ends
/// at a root, joins a walk already finished, or closes a cycle. O(n).
pub(super) fn cut_cycles(parent: &mut [u32]) -> u32 {
    // Spans are in start order, so a parent nearly always comes before its
    // children; when every one does, each walk up the parents descends and
    // no cycle can close: nothing to mark or walk.
    if parent.iter().enumerate().all(|(span, &up)| up == NO_PARENT || (up as usize) < span) {
        return 0;
    }
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;

    let mut state: SmallVec<[u8; ON_STACK]> = smallvec![NEW; parent.len()];
    let mut path: SmallVec<[u32; ON_STACK]> = SmallVec::new();
    let mut cuts = 0;
    for start in 0..parent.len() {
        if state[start] != NEW {
            continue;
        }
        let mut node = start as u32;
        while node != NO_PARENT {
            match state[node as usize] {
                DONE => break,
                ON_PATH => {
                    // `node` is on the current path: the spans after it close the cycle.
                    if let Some(at) = path.iter().rposition(|&span| span == node) {
                        let earliest = path[at..].iter().copied().min().unwrap_or(node);
                        parent[earliest as usize] = NO_PARENT;
                        cuts += 1;
                    }
                    break;
                }
                _ => {
                    state[node as usize] = ON_PATH;
                    path.push(node);
                    node = parent[node as usize];
                }
            }
        }
        for &span in &path {
            state[span as usize] = DONE;
        }
        path.clear();
    }
    cuts
}

/// Children of every span, in compressed form: the children of span `i` are
/// `list[first[i] as usize..first[i + 1] as usize]`, in index (start) order.
pub(super) struct Children {
    first: SmallVec<[u32; ON_STACK]>,
    list: SmallVec<[u32; ON_STACK]>,
}

impl Children {
    pub(super) fn new(parent: &[u32]) -> Children {
        let mut first: SmallVec<[u32; ON_STACK]> = smallvec![0u32; parent.len() + 1];
        for &p in parent {
            if p != NO_PARENT {
                first[p as usize + 1] += 1;
            }
        }
        for i in 0..parent.len() {
            first[i + 1] += first[i];
        }
        let mut next = first.clone();
        let mut list: SmallVec<[u32; ON_STACK]> = smallvec![0u32; first[parent.len()] as usize];
        for (child, &p) in parent.iter().enumerate() {
            if p != NO_PARENT {
                list[next[p as usize] as usize] = child as u32;
                next[p as usize] += 1;
            }
        }
        Children { first, list }
    }

    pub(super) fn of(&self, span: usize) -> &[u32] {
        &self.list[self.first[span] as usize..self.first[span + 1] as usize]
    }

    /// Writes each span's number of children to `counts`.
    pub(super) fn count_into(&self, counts: &mut [u32]) {
        for (count, pair) in counts.iter_mut().zip(self.first.windows(2)) {
            *count = pair[1] - pair[0];
        }
    }
}

/// Nested-set numbers from an iterative depth-first walk: roots in index
/// order, children in index order. One counter ticks on entering and on
/// leaving a span, so `enter[a] < enter[b] < exit[b] < exit[a]` exactly when
/// `a` is a proper ancestor of `b`. `parent` must be acyclic; the numbers
/// are written to `enter` and `exit`, as long as it.
pub(super) fn number(parent: &[u32], children: &Children, enter: &mut [u32], exit: &mut [u32]) {
    let n = parent.len();
    let mut clock = 0u32;
    // (span, how many of its children have been entered)
    let mut stack: SmallVec<[(u32, u32); ON_STACK]> = SmallVec::new();
    for root in (0..n).filter(|&i| parent[i] == NO_PARENT) {
        enter[root] = clock;
        clock += 1;
        stack.push((root as u32, 0));
        while let Some(top) = stack.last_mut() {
            let (span, seen) = *top;
            match children.of(span as usize).get(seen as usize) {
                Some(&child) => {
                    top.1 += 1;
                    enter[child as usize] = clock;
                    clock += 1;
                    stack.push((child, 0));
                }
                None => {
                    exit[span as usize] = clock;
                    clock += 1;
                    stack.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u32 = NO_PARENT;

    #[test]
    fn cuts_a_self_loop_and_a_ring_at_their_earliest_span() {
        let mut parent = vec![0, 3, 1, 2, N];
        assert_eq!(cut_cycles(&mut parent), 2);
        assert_eq!(parent, vec![N, N, 1, 2, N]);
    }

    #[test]
    fn leaves_a_tree_alone() {
        let mut parent = vec![N, 0, 0, 1, 3];
        assert_eq!(cut_cycles(&mut parent), 0);
        assert_eq!(parent, vec![N, 0, 0, 1, 3]);
    }

    /// Parents after their children (spans that start together) take the
    /// full walk, which finds no cycle where there is none.
    #[test]
    fn leaves_a_tree_with_parents_after_children_alone() {
        let mut parent = vec![2, N, 1, 2];
        assert_eq!(cut_cycles(&mut parent), 0);
        assert_eq!(parent, [2, N, 1, 2]);
    }

    #[test]
    fn a_tail_leading_into_a_cycle_keeps_its_links() {
        // 0 -> 1 -> 2 -> 1: the ring is {1, 2}; 1 is cut, 0 stays under it.
        let mut parent = vec![1, 2, 1];
        assert_eq!(cut_cycles(&mut parent), 1);
        assert_eq!(parent, vec![1, N, 1]);
    }

    #[test]
    fn numbers_nest() {
        let parent = vec![N, 0, 0, 1, N];
        let children = Children::new(&parent);
        let mut counts = vec![0; 5];
        children.count_into(&mut counts);
        assert_eq!(counts, vec![2, 1, 0, 0, 0]);
        assert_eq!(children.of(0), &[1, 2]);
        let (mut enter, mut exit) = (vec![0; 5], vec![0; 5]);
        number(&parent, &children, &mut enter, &mut exit);
        assert_eq!(enter, vec![0, 1, 5, 2, 8]);
        assert_eq!(exit, vec![7, 4, 6, 3, 9]);
    }
}
