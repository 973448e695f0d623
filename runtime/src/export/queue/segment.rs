//! One segment file of a durable queue: records framed as
//! `[len u32 LE][crc32 u32 LE][payload]`, and the scan that reads a segment
//! back after a restart and finds where its intact records end.
//!
//! The checksum covers the length bytes and the payload, not the payload
//! alone: a file extended by the kernel but never written (a crash can leave
//! a tail of zeros) would otherwise read as a run of valid empty records,
//! since the CRC-32 of nothing is 0.

use std::io;
use std::path::Path;

/// Bytes before each payload: its length and its checksum.
pub(super) const HEADER_LEN: u64 = 8;

/// The longest payload a record may have. A length above it in a file is
/// damage, not data, and a payload above it is refused on append.
pub(super) const MAX_PAYLOAD_LEN: usize = 256 << 20;

/// Where a record is in its segment, and what it counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RecordMeta {
    /// Offset of the record's header in the file.
    pub offset: u64,
    pub len: u32,
    /// What the queue's weigh function said of the payload (violations, for
    /// the export queues).
    pub weight: u32,
}

impl RecordMeta {
    /// Offset just past the record (header and payload) in the file.
    pub fn end(&self) -> u64 {
        self.offset + HEADER_LEN + u64::from(self.len)
    }
}

/// The file name of the segment whose first record has number `start`;
/// zero-padded so names sort as numbers do.
pub(super) fn file_name(start: u64) -> String {
    format!("{start:020}.seg")
}

/// The first record number of a segment file, or `None` for other files.
pub(super) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header that frames `payload`: its length, then the checksum.
pub(super) fn header(payload: &[u8]) -> [u8; HEADER_LEN as usize] {
    let len = u32::try_from(payload.len()).expect("payload lengths are checked against MAX_PAYLOAD_LEN");
    let len_bytes = len.to_le_bytes();
    let mut header = [0; HEADER_LEN as usize];
    header[..4].copy_from_slice(&len_bytes);
    header[4..].copy_from_slice(&checksum(len_bytes, payload).to_le_bytes());
    header
}

/// Appends the framed record of `payload` to `out`.
#[cfg(test)]
pub(super) fn frame_into(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&header(payload));
    out.extend_from_slice(payload);
}

/// CRC-32 over the length bytes then the payload.
pub(super) fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// The payload of one framed record read back whole (header included), or
/// `None` when its checksum or length does not match.
pub(super) fn unframe(framed: &[u8]) -> Option<&[u8]> {
    let (header, payload) = framed.split_at_checked(HEADER_LEN as usize)?;
    let len_bytes: [u8; 4] = header[..4].try_into().ok()?;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    (u32::from_le_bytes(len_bytes) as usize == payload.len() && checksum(len_bytes, payload) == crc).then_some(payload)
}

/// A segment as read back from disk.
#[derive(Debug)]
pub(super) struct Scan {
    /// The intact records, in order.
    pub records: Vec<RecordMeta>,
    /// Where the intact records end: the file's length once any damaged
    /// tail is cut off.
    pub valid_len: u64,
    /// The file's length as found.
    pub file_len: u64,
}

impl Scan {
    pub fn is_damaged(&self) -> bool {
        self.valid_len < self.file_len
    }
}

/// Reads a segment and stops at the first record that is short, longer than
/// [`MAX_PAYLOAD_LEN`] or fails its checksum. Everything from there on is a
/// torn tail: a record whose append never returned (appends fsync before
/// they return, so a record that an append reported durable is whole, and so
/// is every record before it).
pub(super) fn scan(path: &Path, weigh: fn(&[u8]) -> u32) -> io::Result<Scan> {
    let bytes = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut offset = 0usize;
    while let Some(header) = bytes.get(offset..offset + HEADER_LEN as usize) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        if len as usize > MAX_PAYLOAD_LEN {
            break;
        }
        let end = offset + HEADER_LEN as usize + len as usize;
        let Some(payload) = bytes.get(offset..end).and_then(unframe) else { break };
        records.push(RecordMeta { offset: offset as u64, len, weight: weigh(payload) });
        offset = end;
    }
    Ok(Scan { records, valid_len: offset as u64, file_len: bytes.len() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            frame_into(&mut out, payload);
        }
        out
    }

    fn scan_bytes(bytes: &[u8]) -> Scan {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0));
        std::fs::write(&path, bytes).unwrap();
        scan(&path, |p| p.len() as u32).unwrap()
    }

    #[test]
    fn names_sort_as_numbers_and_parse_back() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in ["cursor", "lock", "42.seg", "0000000000000000004x.seg", "00000000000000000042.tmp"] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn intact_records_scan_whole_with_their_weights() {
        let bytes = framed(&[b"one", b"", b"three"]);
        let scan = scan_bytes(&bytes);
        let lens: Vec<u32> = scan.records.iter().map(|r| r.len).collect();
        assert_eq!(lens, [3, 0, 5]);
        assert_eq!(scan.records[2].offset, 2 * HEADER_LEN + 3);
        assert_eq!(scan.records[2].weight, 5);
        assert!(!scan.is_damaged());
    }

    #[test]
    fn a_short_or_corrupt_tail_ends_the_scan() {
        let whole = framed(&[b"alpha", b"beta"]);
        let first_len = HEADER_LEN + 5;
        for cut in 1..(whole.len() - first_len as usize) {
            let scan = scan_bytes(&whole[..whole.len() - cut]);
            assert_eq!(scan.records.len(), 1, "cut {cut}");
            assert_eq!(scan.valid_len, first_len);
        }
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(scan_bytes(&flipped).records.len(), 1);
    }

    #[test]
    fn a_tail_of_zeros_is_not_a_run_of_empty_records() {
        let mut bytes = framed(&[b"alpha"]);
        bytes.extend_from_slice(&[0; 64]);
        let scan = scan_bytes(&bytes);
        assert_eq!(scan.records.len(), 1);
        assert!(scan.is_damaged());
    }

    #[test]
    fn an_absurd_length_is_damage() {
        let mut bytes = framed(&[b"alpha"]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1; 12]);
        assert_eq!(scan_bytes(&bytes).records.len(), 1);
    }
}
