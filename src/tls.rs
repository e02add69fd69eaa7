//! HTTPS served by keygate itself, with rustls (and aws-lc-rs, the crypto keygate already
//! links). The certificate chain and private key come from PEM files (`server.tls_certificate`,
//! `server.tls_private_key`) and are read again on SIGHUP and whenever either file changes
//! (a renewal by certbot, a Kubernetes secret update): each handshake takes the certificate
//! current at that moment, so no connection is dropped. A pair that does not load (a half
//! written file, a key that does not match) is logged and the previous one stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::ServerSettings;

/// How often the files are looked at for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// What a file looked like when last read: a change of either means "read it again".
type Stamp = Option<(SystemTime, u64)>;

/// The certificate handshakes get, read again when its files change.
pub struct ReloadingCertificate {
    certificate: PathBuf,
    private_key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    stamps: Mutex<(Stamp, Stamp)>,
}

impl std::fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .field("certificate", &self.certificate)
            .field("private_key", &self.private_key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn load(
    provider: &CryptoProvider,
    certificate: &Path,
    private_key: &Path,
) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate {}", certificate.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no certificate (a PEM `CERTIFICATE` block)",
        certificate.display()
    );
    let key = PrivateKeyDer::from_pem_file(private_key)
        .with_context(|| format!("reading the private key {}", private_key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("the private key {} is not usable", private_key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().with_context(|| {
        format!(
            "the private key {} does not belong to the certificate {}",
            private_key.display(),
            certificate.display()
        )
    })?;
    Ok(certified)
}

impl ReloadingCertificate {
    /// Reads the pair; an error here stops the start.
    pub fn open(settings: &ServerSettings) -> anyhow::Result<Arc<ReloadingCertificate>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (certificate, private_key) = (
            PathBuf::from(&settings.tls_certificate),
            PathBuf::from(&settings.tls_private_key),
        );
        let stamps = (stamp(&certificate), stamp(&private_key));
        let current = load(&provider, &certificate, &private_key)?;
        Ok(Arc::new(ReloadingCertificate {
            certificate,
            private_key,
            provider,
            current: ArcSwap::from_pointee(current),
            stamps: Mutex::new(stamps),
        }))
    }

    /// The rustls configuration that serves this certificate (HTTP/1.1, TLS 1.2 and 1.3).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Reads the files again and, when they load, serves them from the next handshake on.
    pub fn reload(&self) -> anyhow::Result<()> {
        let stamps = (stamp(&self.certificate), stamp(&self.private_key));
        let loaded = load(&self.provider, &self.certificate, &self.private_key)?;
        self.current.store(Arc::new(loaded));
        *self.stamps.lock().expect("not poisoned") = stamps;
        Ok(())
    }

    /// Whether either file changed since it was last read.
    fn changed(&self) -> bool {
        let now = (stamp(&self.certificate), stamp(&self.private_key));
        *self.stamps.lock().expect("not poisoned") != now
    }

    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => log::info!(
                "TLS: {why}: serving the certificate in {} from now on",
                self.certificate.display()
            ),
            Err(e) => log::error!("TLS: {why}, but keeping the previous certificate: {e:#}"),
        }
    }

    /// Reloads on SIGHUP, and when a file changes (looked at every two seconds).
    pub fn spawn_watch(self: Arc<Self>) {
        let watched = self.clone();
        actix_web::rt::spawn(async move {
            let mut ticker = actix_web::rt::time::interval(WATCH_INTERVAL);
            loop {
                ticker.tick().await;
                if watched.changed() {
                    watched.reload_logged("a certificate file changed");
                }
            }
        });
        #[cfg(unix)]
        actix_web::rt::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                log::warn!("TLS: cannot listen for SIGHUP; certificate files are still watched");
                return;
            };
            while hangups.recv().await.is_some() {
                self.reload_logged("SIGHUP");
            }
        });
    }
}
