//! What most traces hold none of — events, links, and the bytes and arrays
//! attribute values refer to — boxed apart from the trace's header.
//!
//! A trace's header is written on a receiving thread and read and freed on a
//! shard, each time out of cache, and for most traces (a few spans each) it
//! is a fifth of the trace's memory. These three took 150 of its 600 bytes
//! and are empty in nearly every trace; now they take a pointer, and a
//! trace that has any pays one allocation for them.

use super::{Event, LargeValues, Link, SpanItems};

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Extras {
    /// Each span's events and links (`events[i]` is span `i`'s).
    pub events: SpanItems<Event>,
    pub links: SpanItems<Link>,
    /// The bytes and arrays that attribute values refer to.
    pub large: LargeValues,
}

/// The extras of a trace that has none.
static NONE: Extras = Extras { events: SpanItems::new(), links: SpanItems::new(), large: LargeValues::new() };

/// A trace's extras, allocated when the first is added. Absent and empty
/// are the same extras (so two traces compare equal whichever they hold).
#[derive(Clone, Debug, Default)]
pub(super) struct MaybeExtras(Option<Box<Extras>>);

impl MaybeExtras {
    pub(super) fn get(&self) -> &Extras {
        self.0.as_deref().unwrap_or(&NONE)
    }

    /// The extras, to add to (allocated now if there were none).
    pub(super) fn get_mut(&mut self) -> &mut Extras {
        self.0.get_or_insert_with(Box::default)
    }

    /// Bytes of memory the extras hold beyond the trace's header.
    pub(super) fn memory_bytes(&self) -> usize {
        self.0.as_deref().map_or(0, |extras| {
            size_of::<Extras>() + extras.events.array_bytes() + extras.links.array_bytes() + extras.large.memory_bytes()
        })
    }
}

impl PartialEq for MaybeExtras {
    fn eq(&self, other: &MaybeExtras) -> bool {
        self.get() == other.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{AttrRange, Sym};

    #[test]
    fn none_reads_as_empty_and_equals_empty_extras() {
        let mut none = MaybeExtras::default();
        assert!(none.get().events[3].is_empty() && none.get().links[0].is_empty());
        assert_eq!(none.memory_bytes(), 0);
        let mut empty = MaybeExtras::default();
        empty.get_mut();
        assert_eq!(none, empty);
        none.get_mut().events.push(1, Event { name: Sym(0), time: 5, attrs: AttrRange::default() });
        assert_ne!(none, empty);
        assert_eq!(none.get().events[1].len(), 1);
        assert!(none.memory_bytes() >= size_of::<Extras>() + size_of::<Event>());
    }
}
