//! The `.btpack` file format: a fixed header, then the compiled pack as a
//! postcard-encoded body.
//!
//! ```text
//! offset  size  field
//!      0     8  magic: 89 'B' 'T' 'P' 'A' 'C' 'K' 0A
//!      8     4  format version, u32 little-endian (FORMAT_VERSION)
//!     12     1  length n of the engine version that built the pack
//!     13     n  that engine version, UTF-8 (e.g. "0.1.0")
//!   13+n     8  body length, u64 little-endian
//!   21+n    32  SHA-256 of the body
//!   53+n     …  body: `CompiledPack`, postcard-encoded; the file ends with it
//! ```
//!
//! The magic's first byte has the high bit set and its last is a newline, so a
//! text-mode transfer that mangles either is caught, as in PNG. Postcard is not
//! self-describing: any change to the shape of `CompiledPack` or the bytecode
//! must bump [`FORMAT_VERSION`].

use sha2::{Digest, Sha256};

use super::{CompiledPack, PackError};

/// The first bytes of every `.btpack` file.
pub const MAGIC: [u8; 8] = [0x89, b'B', b'T', b'P', b'A', b'C', b'K', b'\n'];

/// The layout this build writes and the only one it reads. 3: `novelty`
/// call sites (`Op::Novelty`, `RuleProgram::novelty`). 4: resource attribute
/// triggers (`Trigger::ResourceAttr`). 5: pattern triggers
/// (`Trigger::SpanAttrPattern`, `Trigger::ResourceAttrPattern`). 6: key, kind
/// and status triggers (`Trigger::SpanAttrKey`, `ResourceAttrKey`,
/// `SpanKind`, `SpanStatus`). 7: comparison triggers
/// (`Trigger::SpanAttrCompare`) and triggers from `never` checks.
pub const FORMAT_VERSION: u32 = 7;

/// What the header says, read without decoding the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackHeader {
    pub format_version: u32,
    /// The engine version that built the pack.
    pub built_by: String,
    pub checksum: [u8; 32],
}

/// Encodes a pack as `.btpack` bytes.
pub fn encode(pack: &CompiledPack) -> Vec<u8> {
    let body = postcard::to_stdvec(pack).expect("a compiled pack always serializes");
    let built_by = pack.engine_version.as_bytes();
    let built_by = &built_by[..built_by.len().min(usize::from(u8::MAX))];
    let mut out = Vec::with_capacity(body.len() + 64 + built_by.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(built_by.len() as u8);
    out.extend_from_slice(built_by);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&sha256(&body));
    out.extend_from_slice(&body);
    out
}

/// Checks the header and the checksum; returns the header and the body.
pub fn split(bytes: &[u8]) -> Result<(PackHeader, &[u8]), PackError> {
    let mut reader = Reader { bytes, at: 0 };
    let magic = reader.take(MAGIC.len()).map_err(|_| {
        if !bytes.is_empty() && MAGIC.starts_with(bytes) { reader.truncated(MAGIC.len()) } else { PackError::NotAPack }
    })?;
    if magic != MAGIC {
        return Err(PackError::NotAPack);
    }
    let format_version = u32::from_le_bytes(reader.array()?);
    if format_version > FORMAT_VERSION {
        return Err(PackError::FormatTooNew { found: format_version, supported: FORMAT_VERSION });
    }
    if format_version < FORMAT_VERSION {
        return Err(PackError::FormatTooOld { found: format_version, supported: FORMAT_VERSION });
    }
    let [length] = reader.array::<1>()?;
    let built_by = String::from_utf8_lossy(reader.take(usize::from(length))?).into_owned();
    let body_length = u64::from_le_bytes(reader.array()?);
    let checksum: [u8; 32] = reader.array()?;
    let rest = &bytes[reader.at..];
    match (rest.len() as u64).cmp(&body_length) {
        std::cmp::Ordering::Less => {
            return Err(PackError::Truncated { expected: reader.at as u64 + body_length, found: bytes.len() as u64 });
        }
        std::cmp::Ordering::Greater => {
            return Err(PackError::TrailingBytes { extra: rest.len() as u64 - body_length });
        }
        std::cmp::Ordering::Equal => {}
    }
    let actual = sha256(rest);
    if actual != checksum {
        return Err(PackError::ChecksumMismatch { expected: hex(&checksum), actual: hex(&actual) });
    }
    Ok((PackHeader { format_version, built_by, checksum }, rest))
}

/// Decodes a body whose checksum matched.
pub fn decode_body(body: &[u8]) -> Result<CompiledPack, PackError> {
    match postcard::take_from_bytes::<CompiledPack>(body) {
        Ok((pack, [])) => Ok(pack),
        Ok((_, extra)) => Err(PackError::Malformed { reason: format!("{} bytes left after the pack", extra.len()) }),
        Err(e) => Err(PackError::Malformed { reason: e.to_string() }),
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(crate) use betrace_stdlib::value::hex;

/// Reads the header field by field; running out of bytes is truncation.
struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], PackError> {
        match self.bytes.get(self.at..self.at + n) {
            Some(slice) => {
                self.at += n;
                Ok(slice)
            }
            None => Err(self.truncated(n)),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PackError> {
        let slice = self.take(N)?;
        Ok(slice.try_into().expect("take returned N bytes"))
    }

    fn truncated(&self, wanted: usize) -> PackError {
        PackError::Truncated { expected: (self.at + wanted) as u64, found: self.bytes.len() as u64 }
    }
}
