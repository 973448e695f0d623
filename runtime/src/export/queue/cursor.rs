//! The acknowledged cursor of a queue, kept in a small file: the number of
//! the first record not yet acknowledged. It is replaced whole (written to a
//! temporary file, fsync'd, renamed over the old one, directory fsync'd), so
//! after a crash it is either the old value or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::sync_dir;

const FILE_NAME: &str = "cursor";
pub(super) const TEMP_NAME: &str = "cursor.tmp";
const MAGIC: &[u8; 4] = b"BTQC";
const LEN: usize = 16;

/// The stored cursor; `None` when there is none yet. A damaged file (only
/// media damage can make one, given how it is written) reads as none, which
/// redelivers what is left rather than losing it.
pub(super) fn load(dir: &Path) -> io::Result<Option<u64>> {
    let bytes = match fs::read(dir.join(FILE_NAME)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let decoded = decode(&bytes);
    if decoded.is_none() {
        tracing::warn!(dir = %dir.display(), "the queue's cursor file is damaged; records from the oldest kept on are delivered again");
    }
    Ok(decoded)
}

/// Replaces the stored cursor with `next`, durably.
pub(super) fn store(dir: &Path, next: u64) -> io::Result<()> {
    let temp = dir.join(TEMP_NAME);
    let mut file = File::create(&temp)?;
    file.write_all(&encode(next))?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(FILE_NAME))?;
    sync_dir(dir)
}

fn encode(next: u64) -> [u8; LEN] {
    let mut bytes = [0; LEN];
    bytes[..4].copy_from_slice(MAGIC);
    bytes[4..12].copy_from_slice(&next.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..12]);
    bytes[12..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; LEN] = bytes.try_into().ok()?;
    let crc = u32::from_le_bytes(bytes[12..].try_into().ok()?);
    (&bytes[..4] == MAGIC && crc32fast::hash(&bytes[..12]) == crc)
        .then(|| u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cursor_loads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        store(dir.path(), 7).unwrap();
        store(dir.path(), 1 << 40).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(1 << 40));
        assert!(!dir.path().join(TEMP_NAME).exists());
    }

    #[test]
    fn a_damaged_cursor_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), 7).unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        bytes[5] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        fs::write(&path, b"short").unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
    }
}
