//! The federation listener's TLS: the certificate chain and private key from the PEM files
//! `[federation] tls_certificate` and `tls_private_key`, read again when either file changes
//! (a renewed certificate is served without a restart; a broken renewal keeps the old one and
//! says so in the log).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// The certificate being served, and where it comes from.
#[derive(Debug)]
pub struct Certificates {
    certificate: PathBuf,
    private_key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(
    certificate: &Path,
    private_key: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", certificate.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate", certificate.display());
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .with_context(|| format!("reading the private key {}", private_key.display()))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("loading the private key {}", private_key.display()))?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().with_context(|| {
        format!(
            "the private key {} does not belong to the certificate {}",
            private_key.display(),
            certificate.display()
        )
    })?;
    Ok(certified)
}

impl Certificates {
    /// Read both files; an error here stops the server from starting.
    pub fn load(certificate: &Path, private_key: &Path) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = (modified(certificate), modified(private_key));
        let current = load(certificate, private_key, &provider)?;
        Ok(Arc::new(Self {
            certificate: certificate.to_owned(),
            private_key: private_key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(current)),
            stamps: Mutex::new(stamps),
        }))
    }

    /// Read the files again if they changed since the last read. True if a new certificate is
    /// now served.
    pub fn reload_if_changed(&self) -> bool {
        let now = (modified(&self.certificate), modified(&self.private_key));
        {
            let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
            if *stamps == now {
                return false;
            }
            *stamps = now;
        }
        match load(&self.certificate, &self.private_key, &self.provider) {
            Ok(new) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                tracing::info!(path = %self.certificate.display(), "federation certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot reload the federation certificate; still serving the old one"
                );
                false
            }
        }
    }

    /// Check the files every [`RELOAD_INTERVAL`] for as long as the certificates are in use.
    pub fn watch(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(certificates) = weak.upgrade() else {
                    return;
                };
                certificates.reload_if_changed();
            }
        });
    }

    /// The TLS acceptor serving these certificates (HTTP/1.1 only).
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn served(certificates: &Certificates) -> Vec<u8> {
        certificates.current.read().unwrap().cert[0].to_vec()
    }

    fn touch_later(path: &Path) {
        // Modification times can be coarse: make the change visible whatever the clock.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }

    #[test]
    fn a_renewed_certificate_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "a.test");
        let certificates = Certificates::load(&cert, &key).unwrap();
        let first = served(&certificates);
        assert!(!certificates.reload_if_changed(), "nothing changed");

        write_pair(dir.path(), "a.test");
        touch_later(&cert);
        assert!(certificates.reload_if_changed());
        let second = served(&certificates);
        assert_ne!(first, second);

        // A half-written renewal (a certificate without its key) keeps the old pair.
        std::fs::write(&key, "not a key").unwrap();
        touch_later(&key);
        assert!(!certificates.reload_if_changed());
        assert_eq!(served(&certificates), second);
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_pair(dir.path(), "a.test");
        let other = rcgen::KeyPair::generate().unwrap();
        let key = dir.path().join("other.pem");
        std::fs::write(&key, other.serialize_pem()).unwrap();
        let error = Certificates::load(&cert, &key).unwrap_err();
        assert!(
            format!("{error:#}").contains("does not belong"),
            "{error:#}"
        );
    }
}
