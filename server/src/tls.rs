//! TLS on the listener (rustls, ring): a PEM certificate chain and private key, offered with
//! ALPN `h2` and `http/1.1` so gRPC and gRPC-Web share the port. [`Certificates::reload`]
//! swaps the pair for the handshakes that follow; connections already open (live event
//! streams) keep theirs. [`follow`] reloads on SIGHUP and when either file changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How long a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often [`follow`] looks at the files' modification times.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// The certificate the listener serves, reloadable from its files.
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<Stamp>,
}

/// What the files looked like when last read (modification time and length of each).
type Stamp = Option<[(SystemTime, u64); 2]>;

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads and checks the pair (the key must belong to the first certificate).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>> {
        let seen = stamp(cert_path, key_path);
        let key = read_pair(cert_path, key_path)?;
        Ok(Arc::new(Certificates {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        }))
    }

    /// Reads the files again; on success the next handshakes use the new pair. On failure
    /// (a half-written file, a key of another certificate) the old pair stays.
    pub fn reload(&self) -> Result<()> {
        let seen = stamp(&self.cert_path, &self.key_path);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        let key = read_pair(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// Reloads when either file's modification time or length changed since the last read;
    /// says whether it tried.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let now = stamp(&self.cert_path, &self.key_path);
        if now == *self.seen.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// A rustls server configuration resolving to the current pair, with ALPN h2 and
    /// http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    Some([one(cert)?, one(key)?])
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey> {
    let bad = |flag: &str, path: &Path, what: String| {
        Error::Config(format!("--{flag} {}: {what}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad("tls-cert", cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("tls-cert", cert_path, "no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| bad("tls-key", key_path, e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad("tls-key", key_path, e.to_string()))?;
    let pair = CertifiedKey::new(certs, signer);
    pair.keys_match().map_err(|e| {
        bad(
            "tls-key",
            key_path,
            format!("does not belong to the certificate in --tls-cert: {e}"),
        )
    })?;
    Ok(pair)
}

/// TLS connections accepted on `listener`, handshakes done side by side (a slow client holds
/// up no one). Ends when the server stops reading it.
pub fn incoming(
    listener: TcpListener,
    certs: &Arc<Certificates>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config());
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Reloads `certs` on SIGHUP and when the files change (looked at every [`POLL_EVERY`]),
/// until `stop`. A failed reload is logged and the old certificate kept.
pub async fn follow(certs: Arc<Certificates>, stop: CancellationToken) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        let done = tokio::select! {
            () = stop.cancelled() => return,
            _ = hangup => certs.reload().map(|()| true),
            _ = poll.tick() => certs.reload_if_changed(),
        };
        if let Err(e) = done {
            tracing::error!(error = %e, "TLS reload failed; serving the previous certificate");
        }
    }
}
