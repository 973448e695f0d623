//! Attribute values that do not fit in an [`AttrValue`]'s slot — byte
//! strings and arrays — held once per trace, where the value holds only
//! their index.
//!
//! So an attribute value is a tag and a word, `Copy`, 16 bytes where a boxed
//! variant made it 24. A trace's value arrays are its largest per-span
//! memory, and a server drops each trace long after it was built: with no
//! value owning memory, dropping one frees the arrays without reading a
//! value of them again. Traces rarely hold bytes or arrays at all.

use super::AttrValue;

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LargeValues {
    bytes: Vec<Box<[u8]>>,
    arrays: Vec<Box<[AttrValue]>>,
    /// The bytes and items held, summed as they are pushed.
    held: usize,
}

impl LargeValues {
    /// No values.
    pub const fn new() -> LargeValues {
        LargeValues { bytes: Vec::new(), arrays: Vec::new(), held: 0 }
    }

    /// Holds `bytes`; the value refers to them.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> AttrValue {
        self.held += bytes.len();
        self.bytes.push(bytes.into());
        AttrValue::Bytes(index(self.bytes.len() - 1))
    }

    /// Holds an array of `items`; the value refers to it.
    pub fn push_array(&mut self, items: Vec<AttrValue>) -> AttrValue {
        self.held += items.len() * size_of::<AttrValue>();
        self.arrays.push(items.into_boxed_slice());
        AttrValue::Array(index(self.arrays.len() - 1))
    }

    /// The bytes of `AttrValue::Bytes(index)`.
    pub fn bytes(&self, index: u32) -> &[u8] {
        &self.bytes[index as usize]
    }

    /// The items of `AttrValue::Array(index)`.
    pub fn array(&self, index: u32) -> &[AttrValue] {
        &self.arrays[index as usize]
    }

    /// Bytes of memory held: the values and a box header for each.
    pub fn memory_bytes(&self) -> usize {
        self.held + (self.bytes.len() + self.arrays.len()) * size_of::<Box<[u8]>>()
    }
}

fn index(at: usize) -> u32 {
    u32::try_from(at).expect("fewer than 2^32 large values in a trace")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_by_the_index_they_were_given() {
        let mut large = LargeValues::default();
        let bytes = large.push_bytes(&[1, 2, 3]);
        let inner = large.push_array(vec![AttrValue::Int(7)]);
        let outer = large.push_array(vec![inner, bytes, AttrValue::Bool(true)]);
        let (AttrValue::Bytes(b), AttrValue::Array(o)) = (bytes, outer) else { panic!("{bytes:?} {outer:?}") };
        assert_eq!(large.bytes(b), [1, 2, 3]);
        assert_eq!(large.array(o), [inner, bytes, AttrValue::Bool(true)]);
        let AttrValue::Array(i) = large.array(o)[0] else { panic!() };
        assert_eq!(large.array(i), [AttrValue::Int(7)]);
        assert_eq!(large.memory_bytes(), 3 + 4 * size_of::<AttrValue>() + 3 * size_of::<Box<[u8]>>());
        assert_eq!(size_of::<AttrValue>(), 16, "a tag and a word");
    }
}
