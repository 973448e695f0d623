//! The attributes of every span of a trace, held in one pair of arrays.
//!
//! A server keeps each trace it evaluates (for late spans) and drops it
//! later, when its memory has gone cold; two vectors a span were two
//! allocations to make and two frees to pay per span. Here span `i`'s
//! attributes are `keys[ends[i - 1]..ends[i]]` (from 0 for the first span),
//! and the same range of `values`.

use super::{AttrValue, Attrs, Sym};

/// One attribute list, borrowed: a span's from [`SpanAttrs`], or any
/// [`Attrs`] through [`Attrs::as_ref`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttrsRef<'a> {
    pub keys: &'a [Sym],
    pub values: &'a [AttrValue],
}

impl<'a> AttrsRef<'a> {
    /// The value under `key` (the last one, if a key repeats).
    pub fn get(self, key: Sym) -> Option<&'a AttrValue> {
        self.keys.iter().rposition(|k| *k == key).map(|i| &self.values[i])
    }

    pub fn len(self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(self) -> bool {
        self.keys.is_empty()
    }

    /// The (key, value) pairs, in order.
    pub fn iter(self) -> impl Iterator<Item = (Sym, &'a AttrValue)> {
        self.keys.iter().copied().zip(self.values)
    }

    /// The bytes of the keys and values (their bytes and arrays are the
    /// trace's [`LargeValues`](super::LargeValues)).
    pub fn memory_bytes(self) -> usize {
        size_of_val(self.keys) + size_of_val(self.values)
    }
}

impl Attrs {
    pub fn as_ref(&self) -> AttrsRef<'_> {
        AttrsRef { keys: &self.keys, values: &self.values }
    }
}

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanAttrs {
    keys: Vec<Sym>,
    values: Vec<AttrValue>,
    /// Where each span's attributes end.
    ends: Vec<u32>,
}

impl SpanAttrs {
    /// Room for `spans` spans and `attrs` attributes over all of them.
    pub fn with_capacity(spans: usize, attrs: usize) -> SpanAttrs {
        SpanAttrs {
            keys: Vec::with_capacity(attrs),
            values: Vec::with_capacity(attrs),
            ends: Vec::with_capacity(spans),
        }
    }

    /// Span `span`'s attributes.
    pub fn span(&self, span: usize) -> AttrsRef<'_> {
        let start = span.checked_sub(1).map_or(0, |previous| self.ends[previous] as usize);
        let end = self.ends[span] as usize;
        AttrsRef { keys: &self.keys[start..end], values: &self.values[start..end] }
    }

    /// Every span's attributes, in span order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = AttrsRef<'_>> {
        (0..self.ends.len()).map(|span| self.span(span))
    }

    /// Prefetches the attributes ([`Trace::warm_up`](super::Trace::warm_up)).
    pub(super) fn warm_up(&self) {
        super::warm::prefetch(&self.keys);
        super::warm::prefetch(&self.values);
        super::warm::prefetch(&self.ends);
    }

    /// Every attribute of every span, as one list.
    pub fn all(&self) -> AttrsRef<'_> {
        AttrsRef { keys: &self.keys, values: &self.values }
    }

    /// Spans held.
    pub fn spans(&self) -> usize {
        self.ends.len()
    }

    /// Attributes held, over all spans.
    pub fn total(&self) -> usize {
        self.keys.len()
    }

    /// Adds an attribute to the span being filled (the one after the last
    /// [`end_span`](Self::end_span)).
    pub fn push(&mut self, key: Sym, value: AttrValue) {
        self.keys.push(key);
        self.values.push(value);
    }

    /// Ends the span being filled: the next [`push`](Self::push) starts the next span.
    pub fn end_span(&mut self) {
        self.ends.push(u32::try_from(self.keys.len()).expect("fewer than 2^32 attributes in a trace"));
    }

    /// The arrays' bytes (the values' bytes and arrays are the trace's [`LargeValues`](super::LargeValues)).
    pub fn memory_bytes(&self) -> usize {
        self.all().memory_bytes() + self.ends.len() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(u32, i64)]) -> Attrs {
        Attrs {
            keys: pairs.iter().map(|(k, _)| Sym(*k)).collect(),
            values: pairs.iter().map(|(_, v)| AttrValue::Int(*v)).collect(),
        }
    }

    #[test]
    fn each_span_reads_back_its_own_list_including_empty_ones() {
        let lists = [list(&[(1, 10), (2, 20)]), list(&[]), list(&[(1, 11), (1, 12)]), list(&[(3, 30)])];
        let mut attrs = SpanAttrs::with_capacity(lists.len(), 5);
        for list in &lists {
            list.as_ref().iter().for_each(|(key, value)| attrs.push(key, *value));
            attrs.end_span();
        }
        assert_eq!(attrs.spans(), 4);
        assert_eq!(attrs.total(), 5);
        for (i, expected) in lists.iter().enumerate() {
            assert_eq!(attrs.span(i), expected.as_ref(), "span {i}");
        }
        assert!(attrs.span(1).is_empty());
        assert_eq!(attrs.span(2).get(Sym(1)), Some(&AttrValue::Int(12)), "a repeated key reads as its last value");
        assert_eq!(attrs.span(0).get(Sym(3)), None, "another span's key is not this span's");
        assert_eq!(attrs.iter().map(AttrsRef::len).collect::<Vec<_>>(), [2, 0, 2, 1]);
    }
}
