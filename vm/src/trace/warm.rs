//! Asking for a trace's memory before it is needed.
//!
//! A server evaluates a trace a second or more after another core built it,
//! when none of it is in any cache, and a trace is a few dozen separate
//! allocations: evaluating one waited on memory allocation by allocation.
//! [`Trace::warm_up`] prefetches every cache line evaluation reads first
//! (the columns, the strings, the attributes); called on the next trace
//! before evaluating the current one, those lines arrive while the current
//! trace is worked on. A prefetch only asks: it neither waits nor faults.
//! (Plain loads were tried instead, which needs no prefetch instruction: a
//! load not yet answered holds up all that follows once the processor's
//! window fills, and the waiting moved into the warm-up.)

use std::mem::size_of;

use super::{RecordValue, SpanRecord, Trace};

/// Hands `items` to `each` in turn, leaving the vector empty; before each
/// one, `warm_next` is called on the item after it and `warm_after` on the
/// one after that, so that what they ask for arrives while `each` works.
pub fn in_turn<T>(items: &mut Vec<T>, warm_next: impl Fn(&T), warm_after: impl Fn(&T), mut each: impl FnMut(T)) {
    let mut items = items.drain(..);
    while let Some(item) = items.next() {
        if let [next, rest @ ..] = items.as_slice() {
            warm_next(next);
            if let Some(after) = rest.first() {
                warm_after(after);
            }
        }
        each(item);
    }
}

/// Drops `traces`, leaving the vector empty. Dropping a trace reads every
/// column's header to free the column: each next trace's are asked for
/// while one is dropped.
pub fn drop_all(traces: &mut Vec<Box<Trace>>) {
    in_turn(traces, |next| next.warm_up_header(), |_| {}, drop);
}

/// Bytes of one array asked for at most: the start of a large array is what
/// the first rules read, and its sequential rest the hardware fetches itself.
const MAX_BYTES: usize = 4096;

const LINE: usize = 64;

/// Prefetches each cache line of `items` (up to [`MAX_BYTES`]).
pub(super) fn prefetch<T>(items: &[T]) {
    a_line_apart(items).for_each(prefetch_line);
}

/// Elements of `items` a cache line apart, from the first, within its first
/// [`MAX_BYTES`] (every element, if one is a line or more).
fn a_line_apart<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let size = size_of::<T>().max(1);
    let end = items.len().min(MAX_BYTES / size);
    items[..end].iter().step_by((LINE / size).max(1))
}

/// Prefetches the first line of `span`'s name and string values that live
/// in an allocation of their own (longer than a `Text` holds inline).
pub(super) fn prefetch_heap_texts(span: &SpanRecord) {
    let values = span.attrs.iter().filter_map(|(_, value)| match value {
        RecordValue::Str(text) => Some(text),
        _ => None,
    });
    for text in std::iter::once(&span.name).chain(values) {
        if text.is_heap_allocated()
            && let Some(first) = text.as_bytes().first()
        {
            prefetch_line(first);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn prefetch_line<T>(item: &T) {
    safe_arch::prefetch_t0(item);
}

/// Elsewhere, nothing: the hint is only worth having where it is free.
#[cfg(not(target_arch = "x86_64"))]
fn prefetch_line<T>(_: &T) {}

impl Trace {
    /// Prefetches the trace's own fields: the column headers that
    /// [`warm_up`](Self::warm_up) reads to find the columns. A step ahead of
    /// that, so that it does not wait on them.
    pub fn warm_up_header(&self) {
        let Trace {
            trace_id,
            strings,
            ids,
            texts,
            times,
            numbers,
            root,
            kind,
            status,
            attrs,
            extras,
            resources,
            scopes,
            item_attrs,
            repairs,
        } = self;
        prefetch_line(trace_id);
        prefetch_line(strings);
        prefetch_line(ids);
        prefetch_line(texts);
        prefetch_line(times);
        prefetch_line(numbers);
        prefetch_line(root);
        prefetch_line(kind);
        prefetch_line(status);
        prefetch_line(attrs);
        prefetch_line(extras);
        prefetch_line(resources);
        prefetch_line(scopes);
        prefetch_line(item_attrs);
        prefetch_line(repairs);
    }

    /// Prefetches the memory evaluation reads first (see the module doc).
    pub fn warm_up(&self) {
        self.strings.warm_up();
        prefetch(self.name());
        // Evaluation starts with the trace's time (its first start), and
        // rules read durations.
        prefetch(self.start());
        prefetch(self.end());
        prefetch(&self.kind);
        prefetch(&self.status);
        prefetch(self.parent());
        prefetch(self.enter());
        prefetch(self.exit());
        prefetch(self.resource());
        self.attrs.warm_up();
        // The resources, and the one list of their attributes (with the
        // scopes', events' and links'): rules read resources' attributes.
        prefetch(&self.resources);
        prefetch(&self.item_attrs.keys);
        prefetch(&self.item_attrs.values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{SpanRecord, group_by_trace};

    #[test]
    fn one_element_a_cache_line_is_asked_for_up_to_the_cap() {
        assert_eq!(a_line_apart::<u64>(&[]).count(), 0);
        // 100 words are 800 bytes: lines at 0, 64, ..., 768.
        let words = [0u64; 100];
        let firsts: Vec<usize> =
            a_line_apart(&words).map(|word| (word as *const u64).addr() - words.as_ptr().addr()).collect();
        assert_eq!(firsts, (0..800).step_by(64).collect::<Vec<_>>());
        // Past the cap, only its lines.
        assert_eq!(a_line_apart(&vec![0u8; 10_000]).count(), MAX_BYTES / LINE);
        // An element larger than a line: each one, within the cap.
        assert_eq!(a_line_apart(&[[0u8; 100]; 100]).count(), MAX_BYTES / 100);
    }

    #[test]
    fn each_item_is_taken_after_the_next_two_are_warmed() {
        let log = std::cell::RefCell::new(Vec::new());
        let mut items = vec![1, 2, 3];
        in_turn(
            &mut items,
            |&n| log.borrow_mut().push(format!("next {n}")),
            |&n| log.borrow_mut().push(format!("after {n}")),
            |n| log.borrow_mut().push(format!("take {n}")),
        );
        assert_eq!(log.into_inner(), ["next 2", "after 3", "take 1", "next 3", "take 2", "take 3"]);
        assert!(items.is_empty());
    }

    #[test]
    fn dropping_traces_in_turn_empties_the_list_and_keeps_its_room() {
        let span = |id: u8| SpanRecord { trace_id: [1; 16], span_id: [id; 8], ..SpanRecord::default() };
        let mut traces: Vec<Box<Trace>> =
            (1..=3).map(|n| Box::new(group_by_trace((1..=n).map(span)).remove(0))).collect();
        drop_all(&mut traces);
        assert!(traces.is_empty());
        assert!(traces.capacity() >= 3, "the shard reuses the list from sweep to sweep");
    }
}
