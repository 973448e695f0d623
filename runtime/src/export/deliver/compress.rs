//! How both network exporters compress a request's body: gzip at its
//! fastest level, zstd at its default. Violation batches are repetitive
//! (the same rule ids, names and attribute keys span after span), so the
//! fast levels already shrink them several times over, at a fraction of the
//! CPU of zlib's default level 6.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use prost::bytes::Bytes;

use crate::config::ExportCompression;

/// The name of `compression` in `Content-Encoding` and `grpc-encoding`.
pub(super) fn encoding_name(compression: ExportCompression) -> Option<&'static str> {
    match compression {
        ExportCompression::Gzip => Some("gzip"),
        ExportCompression::Zstd => Some("zstd"),
        ExportCompression::None => None,
    }
}

/// `bytes`, compressed as `compression` says.
pub(super) fn compress(bytes: Bytes, compression: ExportCompression) -> std::io::Result<Bytes> {
    match compression {
        ExportCompression::Gzip => {
            let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
            encoder.write_all(&bytes)?;
            encoder.finish().map(Bytes::from)
        }
        ExportCompression::Zstd => zstd::bulk::compress(&bytes, zstd::DEFAULT_COMPRESSION_LEVEL).map(Bytes::from),
        ExportCompression::None => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn bodies_are_compressed_as_configured() {
        let text = Bytes::from_static(b"hello hello hello");
        let mut plain = String::new();
        let gzipped = compress(text.clone(), ExportCompression::Gzip).unwrap();
        flate2::read::GzDecoder::new(&gzipped[..]).read_to_string(&mut plain).unwrap();
        assert_eq!(plain, "hello hello hello");
        let zstd = compress(text.clone(), ExportCompression::Zstd).unwrap();
        assert_eq!(zstd::decode_all(&zstd[..]).unwrap(), text.to_vec());
        assert_eq!(compress(text.clone(), ExportCompression::None).unwrap(), text);
    }
}
