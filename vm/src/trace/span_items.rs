//! What a span may hold several of (events, links), for every span of a
//! trace in one array.
//!
//! Most spans hold none. A vector a span, empty or not, was a header to
//! write when a trace was built and one to read again when it was dropped,
//! long after, from cold memory. Here span `i`'s items are
//! `items[ends[i - 1]..ends[i]]` (from 0 for the first span), and `ends`
//! stops at the last span that holds any: a trace with no events costs no
//! allocation for them at all.

use std::ops::{Index, Range};

/// See the module doc. Index it by span: `trace.events[i]` is span `i`'s
/// events (empty for a span past the last one that has any).
#[derive(Clone, Debug, PartialEq)]
pub struct SpanItems<T> {
    items: Vec<T>,
    /// Where each span's items end, up to the span before the last one
    /// pushed to; that span's items end at `items.len()`.
    ends: Vec<u32>,
}

impl<T> Default for SpanItems<T> {
    fn default() -> Self {
        SpanItems::new()
    }
}

impl<T> SpanItems<T> {
    /// No items for any span.
    pub const fn new() -> SpanItems<T> {
        SpanItems { items: Vec::new(), ends: Vec::new() }
    }

    /// Span `span`'s items.
    pub fn span(&self, span: usize) -> &[T] {
        &self.items[self.range(span)]
    }

    /// Every span's items, in span order, as one list.
    pub fn all(&self) -> &[T] {
        &self.items
    }

    /// Adds an item to span `span`: spans are filled in order, so `span` is
    /// the last span pushed to or one after it.
    pub fn push(&mut self, span: usize, item: T) {
        debug_assert!(span >= self.ends.len(), "span {span} pushed to after a later one");
        let end = u32::try_from(self.items.len()).expect("fewer than 2^32 items in a trace");
        self.ends.resize(span, end);
        self.items.push(item);
    }

    fn range(&self, span: usize) -> Range<usize> {
        let end_of = |span: usize| self.ends.get(span).map_or(self.items.len(), |&end| end as usize);
        let start = span.checked_sub(1).map_or(0, end_of);
        start..end_of(span)
    }

    /// The bytes of the two arrays (not what the items own).
    pub fn array_bytes(&self) -> usize {
        self.items.len() * size_of::<T>() + self.ends.len() * size_of::<u32>()
    }
}

impl<T> Index<usize> for SpanItems<T> {
    type Output = [T];

    fn index(&self, span: usize) -> &[T] {
        self.span(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_span_reads_back_its_own_items_with_gaps_before_between_and_after() {
        // Spans 0 and 3 hold nothing; 1 holds two, 2 one, 4 one; 5 and on none.
        let mut items = SpanItems::default();
        for (span, item) in [(1, 'a'), (1, 'b'), (2, 'c'), (4, 'd')] {
            items.push(span, item);
        }
        let spans: Vec<&[char]> = (0..7).map(|span| &items[span]).collect();
        assert_eq!(spans, [&[][..], &['a', 'b'], &['c'], &[], &['d'], &[], &[]]);
        assert_eq!(items.all(), ['a', 'b', 'c', 'd']);
    }

    #[test]
    fn spans_without_items_cost_nothing() {
        let items: SpanItems<u64> = SpanItems::default();
        assert!(items[0].is_empty() && items[1000].is_empty());
        assert_eq!(items.array_bytes(), 0);
    }
}
