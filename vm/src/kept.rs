//! Memory a thread keeps from one trace's evaluation to the next. The
//! server evaluates trace after trace on each shard's thread, and tables a
//! trace needs again (a machine's, the trigger index's, the attribute table)
//! were allocated and freed for every trace; their owners hand them, emptied,
//! to a thread-local slot of their own instead, and take them back from it.
//! (A shard keeps its lists of the traces due in a sweep the same way.)

/// The most memory a kept table may hold: a large trace's tables go back to
/// the allocator rather than stay with the thread for good.
const MOST_KEPT_BYTES: usize = 1 << 20;

/// `table`'s memory, emptied, to keep; a vector without memory when
/// `table` holds more than is worth keeping. Leaves `table` empty.
pub fn emptied<T>(table: &mut Vec<T>) -> Vec<T> {
    let mut table = std::mem::take(table);
    table.clear();
    match table.capacity() * size_of::<T>() <= MOST_KEPT_BYTES {
        true => table,
        false => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_keep_their_memory_and_large_ones_give_it_back() {
        let mut small = vec![1u64; 100];
        let kept = emptied(&mut small);
        assert_eq!((kept.len(), small.capacity()), (0, 0));
        assert!(kept.capacity() >= 100);
        let mut large = vec![1u8; MOST_KEPT_BYTES + 1];
        assert_eq!(emptied(&mut large).capacity(), 0);
    }
}
