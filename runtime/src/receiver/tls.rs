//! TLS for the receivers (rustls with the ring provider): a certificate chain
//! and private key read from PEM files once, checked at start (that they
//! parse and that the key belongs to the certificate), then given to both
//! receivers — tonic builds its acceptor from the PEM, axum-server takes the
//! rustls configuration made here.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::ReceiverError;

/// Makes ring the process's rustls provider, once; later calls (and a
/// provider someone else installed first) are fine. Both tonic and
/// axum-server build their rustls configurations with the process default.
pub fn install_crypto_provider() {
    // An error only says a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A certificate chain and its key, checked.
#[derive(Clone)]
pub struct TlsIdentity {
    cert_pem: Arc<[u8]>,
    key_pem: Arc<[u8]>,
    /// The rustls configuration of the HTTP receiver (ALPN h2 and http/1.1).
    http_config: Arc<ServerConfig>,
}

impl TlsIdentity {
    /// Reads and checks the PEM files; an error names the file at fault.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, ReceiverError> {
        install_crypto_provider();
        let error = |path: &Path, problem: String| ReceiverError::Tls { path: path.to_path_buf(), problem };
        let cert_pem = std::fs::read(cert_path).map_err(|e| error(cert_path, format!("cannot be read: {e}")))?;
        let key_pem = std::fs::read(key_path).map_err(|e| error(key_path, format!("cannot be read: {e}")))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(cert_path, format!("is not a PEM certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(error(cert_path, "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| error(key_path, format!("holds no usable PEM private key: {e}")))?;
        let mut http_config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| error(key_path, format!("does not go with the certificate {}: {e}", cert_path.display())))?;
        http_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsIdentity { cert_pem: cert_pem.into(), key_pem: key_pem.into(), http_config: Arc::new(http_config) })
    }

    pub(crate) fn grpc_identity(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    pub(crate) fn http_config(&self) -> Arc<ServerConfig> {
        self.http_config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_and_garbled_files_are_named() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let missing = TlsIdentity::load(&cert, &key).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.contains("cert.pem") && missing.contains("cannot be read"), "{missing}");

        std::fs::write(&cert, "not a certificate").expect("writable");
        std::fs::write(&key, "not a key").expect("writable");
        let garbled = TlsIdentity::load(&cert, &key).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(garbled.contains("cert.pem") && garbled.contains("no PEM certificate"), "{garbled}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a certificate");
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a certificate");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, one.cert.pem()).expect("writable");
        std::fs::write(&key, other.signing_key.serialize_pem()).expect("writable");
        let error = TlsIdentity::load(&cert, &key).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("key.pem") && error.contains("does not go with"), "{error}");

        std::fs::write(&key, one.signing_key.serialize_pem()).expect("writable");
        assert!(TlsIdentity::load(&cert, &key).is_ok());
    }
}
