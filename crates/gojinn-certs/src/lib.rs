//! Certificates gojinn obtains and renews by itself: Caddy's automatic HTTPS.
//!
//! A [`Manager`] is made once per process and kept across reloads. Each load
//! of a config hands it the names its sites serve ([`Manager::manage`]); for
//! each new name it loads a stored certificate (so a restart never contacts the
//! CA for a certificate it has) and starts a task that obtains one when there
//! is none and renews it at two-thirds of its lifetime, backing off after a
//! failure while the old certificate keeps serving. Names a reload keeps keep
//! their task and certificate; names it drops are forgotten.
//!
//! ACME orders answer HTTP-01 (through [`Manager::http_challenge`], which the
//! HTTP port consults) or TLS-ALPN-01 (through [`Manager::alpn_challenge`],
//! which the TLS handshake consults). Nodes sharing a Redis or PostgreSQL
//! [`Storage`] take a lock per name before ordering, and read what another
//! node ordered instead of ordering again.

mod acme;
mod internal;
pub mod storage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use instant_acme::ChallengeType;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use internal::{LEAF_LIFETIME, ROOT_CERT};
pub use storage::Storage;

/// The ALPN protocol of a TLS-ALPN-01 validation connection (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Path prefix of HTTP-01 validation requests (RFC 8555 §8.3).
pub const HTTP_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";
/// The ACME directory used when the config names none: Let's Encrypt.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How long a node may hold the lock on a name while it orders.
const ORDER_LOCK_TTL: Duration = Duration::from_secs(10 * 60);
/// First wait after a failed attempt; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// How often a node waiting for another node's order looks at the storage.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// Who issues a name's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IssuerSpec {
    /// An ACME CA.
    Acme(AcmeSpec),
    /// The local CA.
    Internal,
}

impl IssuerSpec {
    fn label(&self) -> String {
        match self {
            IssuerSpec::Acme(a) => a.directory.clone(),
            IssuerSpec::Internal => "internal".to_owned(),
        }
    }
}

/// An ACME CA and how to use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcmeSpec {
    /// Directory URL.
    pub directory: String,
    /// Contact email of the account.
    pub email: Option<String>,
    /// PEM root the CA's own HTTPS certificate chains to (private CAs, tests).
    pub ca_root: Option<PathBuf>,
    /// External account binding: key id and base64url MAC key.
    pub eab: Option<(String, String)>,
    /// May answer HTTP-01 (the HTTP port is served).
    pub http_challenge: bool,
    /// May answer TLS-ALPN-01.
    pub tlsalpn_challenge: bool,
}

/// What [`Manager::status`] tells of one name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CertStatus {
    /// The name.
    pub name: String,
    /// `internal` or the ACME directory URL.
    pub issuer: String,
    /// When the served certificate expires; `None` while there is none.
    #[serde(skip_serializing_if = "Option::is_none", with = "unix_opt")]
    pub not_after: Option<SystemTime>,
    /// Failed attempts to obtain or renew, since the process started.
    pub failures: u64,
    /// Certificates obtained (first ones and renewals), since the process started.
    pub obtained: u64,
    /// The last failure's message, cleared by a success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

mod unix_opt {
    use serde::Serializer;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[allow(clippy::ref_option)] // serde's `with` hands a reference to the field
    pub(super) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

/// Something that happened to a managed name, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertEvent<'a> {
    /// A certificate is now served (obtained, renewed, loaded from storage or
    /// from another node); it expires at `not_after`.
    Serving {
        /// The name.
        domain: &'a str,
        /// Expiry of the served certificate.
        not_after: SystemTime,
        /// This node obtained it from its issuer just now.
        obtained: bool,
    },
    /// An attempt to obtain or renew failed.
    Failed {
        /// The name.
        domain: &'a str,
    },
    /// The name is no longer managed.
    Dropped {
        /// The name.
        domain: &'a str,
    },
}

/// Told of every [`CertEvent`].
pub type EventSink = Box<dyn Fn(CertEvent<'_>) + Send + Sync>;

/// Pending challenge answers.
#[derive(Default)]
pub(crate) struct Challenges {
    /// HTTP-01 token → key authorization.
    http: Mutex<HashMap<String, String>>,
    /// Name → TLS-ALPN-01 certificate.
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    fn put_http(&self, token: &str, key_auth: &str) {
        lock(&self.http).insert(token.to_owned(), key_auth.to_owned());
    }
    fn remove_http(&self, token: &str) {
        lock(&self.http).remove(token);
    }
    fn put_alpn(&self, name: &str, cert: Arc<CertifiedKey>) {
        lock(&self.alpn).insert(name.to_owned(), cert);
    }
    fn remove_alpn(&self, name: &str) {
        lock(&self.alpn).remove(name);
    }
}

/// A lock whose holder cannot leave it inconsistent: every critical section
/// is a single map operation, so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A certificate being served.
#[derive(Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Served {
    fn renew_at(&self) -> SystemTime {
        renew_at(self.not_before, self.not_after)
    }
}

/// Two-thirds into a certificate's lifetime.
fn renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    not_before + life * 2 / 3
}

/// A certificate as storage holds it.
struct Stored {
    chain: String,
    key: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// One managed name.
struct Entry {
    spec: IssuerSpec,
    served: Option<Served>,
    status: CertStatus,
    task: Option<JoinHandle<()>>,
}

/// What a stored certificate's metadata file holds.
#[derive(Serialize, Deserialize)]
struct Meta {
    name: String,
    issuer: String,
    obtained_unix: u64,
}

struct Shared {
    storage: Storage,
    provider: Arc<CryptoProvider>,
    challenges: Challenges,
    entries: RwLock<HashMap<String, Entry>>,
    local_ca: tokio::sync::OnceCell<internal::LocalCa>,
    events: EventSink,
}

/// The certificate manager of one process (see the module documentation).
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
}

impl Manager {
    /// A manager keeping its certificates in `storage`, telling `events` what
    /// happens.
    pub fn new(storage: Storage, events: EventSink) -> Manager {
        Manager {
            shared: Arc::new(Shared {
                storage,
                provider: Arc::new(rustls::crypto::ring::default_provider()),
                challenges: Challenges::default(),
                entries: RwLock::new(HashMap::new()),
                local_ca: tokio::sync::OnceCell::new(),
                events,
            }),
        }
    }

    /// Adds `names` (lower-case) to the managed set: new names get their
    /// stored certificate (or, for the local CA, a fresh one) before this
    /// returns, and a task that obtains and renews; names already managed by
    /// the same issuer keep theirs. See [`retain`](Self::retain).
    pub async fn manage(&self, names: Vec<(String, IssuerSpec)>) {
        let mut new = Vec::new();
        {
            let mut entries = self
                .shared
                .entries
                .write()
                .unwrap_or_else(|e| e.into_inner());
            for (name, spec) in names {
                if entries.get(&name).is_some_and(|e| e.spec == spec) {
                    continue;
                }
                if let Some(task) = entries.get_mut(&name).and_then(|e| e.task.take()) {
                    task.abort();
                }
                entries.insert(
                    name.clone(),
                    Entry {
                        spec: spec.clone(),
                        served: None,
                        status: CertStatus {
                            name: name.clone(),
                            issuer: spec.label(),
                            ..CertStatus::default()
                        },
                        task: None,
                    },
                );
                new.push((name, spec));
            }
        }
        for (name, spec) in new {
            let ready = match &spec {
                IssuerSpec::Internal => self.shared.issue_internal(&name).await.map(drop),
                IssuerSpec::Acme(acme) => self.shared.load_stored(&name, acme).await.map(drop),
            };
            if let Err(e) = ready {
                tracing::warn!(target: "gojinn::tls", domain = %name, error = %e, "cannot load the certificate from storage");
            }
            let shared = self.shared.clone();
            let task = tokio::spawn({
                let name = name.clone();
                async move { shared.maintain(name, spec).await }
            });
            let mut entries = self
                .shared
                .entries
                .write()
                .unwrap_or_else(|e| e.into_inner());
            match entries.get_mut(&name) {
                Some(entry) => entry.task = Some(task),
                None => task.abort(),
            }
        }
    }

    /// Forgets every name but `names`: their tasks stop, their certificates
    /// are no longer served (they stay in storage).
    pub fn retain(&self, names: &[(String, IssuerSpec)]) {
        let mut entries = self
            .shared
            .entries
            .write()
            .unwrap_or_else(|e| e.into_inner());
        entries.retain(|name, entry| {
            let keep = names.iter().any(|(n, s)| n == name && *s == entry.spec);
            if !keep {
                if let Some(task) = entry.task.take() {
                    task.abort();
                }
                (self.shared.events)(CertEvent::Dropped { domain: name });
            }
            keep
        });
    }

    /// The certificate to serve for `name` (the SNI): the name's own, else a
    /// wildcard covering it.
    pub fn certificate(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let entries = self
            .shared
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let served = |n: &str| {
            entries
                .get(n)
                .and_then(|e| e.served.as_ref())
                .map(|s| s.key.clone())
        };
        served(name).or_else(|| {
            let (_, parent) = name.split_once('.')?;
            served(&format!("*.{parent}"))
        })
    }

    /// Whether `name` is managed here (with or without a certificate yet).
    pub fn manages(&self, name: &str) -> bool {
        let entries = self
            .shared
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner());
        entries.contains_key(name)
    }

    /// The TLS-ALPN-01 certificate pending for `name`.
    pub fn alpn_challenge(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        lock(&self.shared.challenges.alpn).get(name).cloned()
    }

    /// The key authorization to answer an HTTP-01 request for `token`: this
    /// node's, else (shared storage) one another node put there.
    pub async fn http_challenge(&self, token: &str) -> Option<String> {
        if let Some(answer) = lock(&self.shared.challenges.http).get(token).cloned() {
            return Some(answer);
        }
        // Tokens are base64url (RFC 8555 §8.1); anything else is not asked of the store.
        let plausible = (1..=128).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plausible || !self.shared.storage.is_shared() {
            return None;
        }
        match self.shared.storage.load(&challenge_key(token)).await {
            Ok(answer) => answer.map(|a| String::from_utf8_lossy(&a).into_owned()),
            Err(e) => {
                tracing::warn!(target: "gojinn::tls", error = %e, "cannot read a challenge answer from storage");
                None
            }
        }
    }

    /// Every managed name's state, sorted by name.
    pub fn status(&self) -> Vec<CertStatus> {
        let entries = self
            .shared
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<CertStatus> = entries
            .values()
            .map(|e| CertStatus {
                not_after: e.served.as_ref().map(|s| s.not_after),
                ..e.status.clone()
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The local CA's root certificate (PEM) and, for a directory store, its
    /// file; made on first call.
    pub async fn local_root(&self) -> Result<(String, Option<PathBuf>), String> {
        let ca = self.shared.local_ca().await?;
        Ok((ca.root_pem.clone(), self.shared.storage.path(ROOT_CERT)))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let entries = self.entries.get_mut().unwrap_or_else(|e| e.into_inner());
        for entry in entries.values_mut() {
            if let Some(task) = entry.task.take() {
                task.abort();
            }
        }
    }
}

/// The directory of one issuer's certificates in storage: the CA's directory
/// URL without its scheme, `/` and `:` made `-` (Caddy's layout).
pub(crate) fn issuer_dir(directory: &str) -> String {
    let rest = directory.split_once("://").map_or(directory, |(_, r)| r);
    rest.trim_end_matches('/')
        .chars()
        .map(|c| if c == '/' || c == ':' { '-' } else { c })
        .collect()
}

/// Storage key of a pending HTTP-01 answer, for nodes sharing a store.
pub(crate) fn challenge_key(token: &str) -> String {
    format!("acme/challenge_tokens/{token}")
}

/// A name as a file name: `*` becomes `wildcard_`.
fn safe_name(name: &str) -> String {
    name.replace('*', "wildcard_")
}

/// Storage keys of a certificate: chain, private key, metadata.
fn cert_keys(spec: &AcmeSpec, name: &str) -> [String; 3] {
    let dir = format!(
        "certificates/{}/{}",
        issuer_dir(&spec.directory),
        safe_name(name)
    );
    let stem = safe_name(name);
    ["crt", "key", "json"].map(|ext| format!("{dir}/{stem}.{ext}"))
}

/// A rustls key from PEM text.
pub(crate) fn certified_key(
    chain_pem: &str,
    key_pem: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the PEM".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("private key PEM: {e}"))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| format!("certificate and key: {e}"))
}

/// The validity of a DER certificate.
fn validity(der: &[u8]) -> Result<(SystemTime, SystemTime), String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate: {e}"))?;
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        let d = Duration::from_secs(secs.unsigned_abs());
        if secs >= 0 {
            SystemTime::UNIX_EPOCH + d
        } else {
            SystemTime::UNIX_EPOCH - d
        }
    };
    Ok((
        at(cert.validity().not_before),
        at(cert.validity().not_after),
    ))
}

/// The wait after `failures` failed attempts.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

impl Shared {
    async fn local_ca(&self) -> Result<&internal::LocalCa, String> {
        self.local_ca
            .get_or_try_init(|| internal::LocalCa::load_or_create(&self.storage))
            .await
    }

    /// Makes `pem` the served certificate of `name`; `obtained` counts it as new.
    fn install(
        &self,
        name: &str,
        chain: &str,
        key: &str,
        obtained: bool,
    ) -> Result<Served, String> {
        let certified = certified_key(chain, key, &self.provider)?;
        let leaf = certified.cert.first().ok_or("an empty certificate chain")?;
        let (not_before, not_after) = validity(leaf)?;
        let served = Served {
            key: Arc::new(certified),
            not_before,
            not_after,
        };
        let copy = served.clone();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(name) {
            entry.served = Some(served);
            if obtained {
                entry.status.obtained += 1;
                entry.status.last_error = None;
            }
        }
        drop(entries);
        (self.events)(CertEvent::Serving {
            domain: name,
            not_after,
            obtained,
        });
        Ok(copy)
    }

    fn renew_at(&self, name: &str) -> Option<SystemTime> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(name)?.served.as_ref().map(Served::renew_at)
    }

    fn record_failure(&self, name: &str, error: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(name) {
            entry.status.failures += 1;
            entry.status.last_error = Some(error.to_owned());
        }
        drop(entries);
        (self.events)(CertEvent::Failed { domain: name });
    }

    async fn issue_internal(&self, name: &str) -> Result<Served, String> {
        let ca = self.local_ca().await?;
        let (chain, key) = ca.issue(name)?;
        self.install(name, &chain, &key, true)
    }

    /// The stored chain and key of `name` with the leaf's validity; `None`
    /// when storage has none.
    async fn stored(&self, name: &str, spec: &AcmeSpec) -> Result<Option<Stored>, String> {
        let [crt, key, _] = cert_keys(spec, name);
        let (Some(chain), Some(key)) = (
            self.storage.load(&crt).await?,
            self.storage.load(&key).await?,
        ) else {
            return Ok(None);
        };
        let (chain, key) = (
            String::from_utf8_lossy(&chain).into_owned(),
            String::from_utf8_lossy(&key).into_owned(),
        );
        let certified = certified_key(&chain, &key, &self.provider)?;
        let leaf = certified.cert.first().ok_or("an empty certificate chain")?;
        let (not_before, not_after) = validity(leaf)?;
        Ok(Some(Stored {
            chain,
            key,
            not_before,
            not_after,
        }))
    }

    /// Serves the stored certificate of `name` when it is still `usable`.
    async fn install_stored(
        &self,
        name: &str,
        spec: &AcmeSpec,
        usable: impl Fn(&Stored) -> bool,
    ) -> Result<Option<Served>, String> {
        let Some(stored) = self.stored(name, spec).await? else {
            return Ok(None);
        };
        if !usable(&stored) {
            return Ok(None);
        }
        let served = self.install(name, &stored.chain, &stored.key, false)?;
        tracing::info!(target: "gojinn::tls", domain = %name, not_after = %humantime(served.not_after), "certificate loaded from storage");
        Ok(Some(served))
    }

    /// Serves the stored certificate of `name` unless it has expired.
    async fn load_stored(&self, name: &str, spec: &AcmeSpec) -> Result<Option<Served>, String> {
        self.install_stored(name, spec, |s| s.not_after > SystemTime::now())
            .await
    }

    /// Serves the stored certificate of `name` when it is not yet due for
    /// renewal (another node may have renewed it); says whether it did.
    async fn fresh_in_storage(&self, name: &str, spec: &AcmeSpec) -> Result<bool, String> {
        let fresh = self
            .install_stored(name, spec, |s| {
                renew_at(s.not_before, s.not_after) > SystemTime::now()
            })
            .await?;
        Ok(fresh.is_some())
    }

    /// Obtains and renews the certificate of `name` until aborted.
    async fn maintain(self: Arc<Self>, name: String, spec: IssuerSpec) {
        let mut failures: u32 = 0;
        loop {
            if let Some(due) = self.renew_at(&name) {
                if let Ok(wait) = due.duration_since(SystemTime::now()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let renewal = self.renew_at(&name).is_some();
            let result = match &spec {
                IssuerSpec::Internal => self.issue_internal(&name).await.map(Some),
                IssuerSpec::Acme(acme) => self.order(&name, acme, failures).await,
            };
            match result {
                Ok(Some(served)) => {
                    failures = 0;
                    let not_after = humantime(served.not_after);
                    if renewal {
                        tracing::info!(target: "gojinn::tls", domain = %name, issuer = %spec.label(), not_after = %not_after, "certificate renewed");
                    } else {
                        tracing::info!(target: "gojinn::tls", domain = %name, issuer = %spec.label(), not_after = %not_after, "certificate obtained");
                    }
                }
                Ok(None) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.record_failure(&name, &e);
                    let wait = backoff(failures);
                    tracing::error!(target: "gojinn::tls", domain = %name, issuer = %spec.label(), error = %e,
                        retry_in_secs = wait.as_secs(), attempt = failures,
                        "could not obtain a certificate");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One attempt to get a fresh certificate for `name` from its ACME CA, or
    /// from storage when another node got one. `Ok(Some)` when this node
    /// ordered it, `Ok(None)` when it came from storage.
    async fn order(
        &self,
        name: &str,
        spec: &AcmeSpec,
        failures: u32,
    ) -> Result<Option<Served>, String> {
        let lock_name = format!("issue_cert_{}", safe_name(name));
        let mut waited = false;
        let held = loop {
            if self.fresh_in_storage(name, spec).await? {
                return Ok(None);
            }
            if let Some(lock) = self.storage.try_lock(&lock_name, ORDER_LOCK_TTL).await? {
                break lock;
            }
            if !waited {
                waited = true;
                tracing::info!(target: "gojinn::tls", domain = %name, "another node is ordering this certificate; waiting for it");
            }
            tokio::time::sleep(LOCK_POLL).await;
        };
        let result = async {
            if self.fresh_in_storage(name, spec).await? {
                return Ok(None);
            }
            let challenge = match (spec.http_challenge, spec.tlsalpn_challenge) {
                (true, true) if failures % 2 == 1 => ChallengeType::TlsAlpn01,
                (true, _) => ChallengeType::Http01,
                (false, true) => ChallengeType::TlsAlpn01,
                (false, false) => {
                    return Err("both the HTTP and the TLS-ALPN challenge are disabled".to_owned())
                }
            };
            let (chain, key) = acme::obtain(
                &self.storage,
                spec,
                name,
                challenge,
                &self.challenges,
                &self.provider,
            )
            .await?;
            let served = self.install(name, &chain, &key, true)?;
            let [crt_key, key_key, meta_key] = cert_keys(spec, name);
            self.storage.store(&key_key, key.as_bytes(), true).await?;
            self.storage
                .store(&crt_key, chain.as_bytes(), false)
                .await?;
            let meta = Meta {
                name: name.to_owned(),
                issuer: spec.directory.clone(),
                obtained_unix: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            let meta = serde_json::to_vec_pretty(&meta).map_err(|e| e.to_string())?;
            self.storage.store(&meta_key, &meta, false).await?;
            Ok(Some(served))
        }
        .await;
        if let Err(e) = self.storage.unlock(held).await {
            tracing::warn!(target: "gojinn::tls", domain = %name, error = %e, "cannot release the order lock");
        }
        result
    }
}

/// RFC 3339 UTC time of day, for log lines.
fn humantime(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn issuer_directories_follow_caddys_layout() {
        assert_eq!(
            issuer_dir("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org-directory"
        );
        assert_eq!(
            issuer_dir("https://127.0.0.1:14000/dir"),
            "127.0.0.1-14000-dir"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn internal_names_get_a_certificate_from_a_root_kept_in_storage() {
        let dir =
            std::env::temp_dir().join(format!("gojinn-certs-internal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let m = Manager::new(Storage::open(&dir, None).unwrap(), Box::new(|_| {}));
        m.manage(vec![("localhost".into(), IssuerSpec::Internal)])
            .await;
        let cert = m.certificate("localhost").expect("issued at manage");
        let (root, path) = m.local_root().await.unwrap();
        assert_eq!(std::fs::read_to_string(path.unwrap()).unwrap(), root);
        let (not_before, not_after) = validity(cert.cert[0].as_ref()).unwrap();
        assert_eq!(
            not_after.duration_since(not_before).unwrap(),
            LEAF_LIFETIME + Duration::from_secs(60)
        );
        // A second manager on the same storage uses the same root.
        let again = Manager::new(Storage::open(&dir, None).unwrap(), Box::new(|_| {}));
        assert_eq!(again.local_root().await.unwrap().0, root);
        // A reload without the name forgets it.
        m.retain(&[]);
        assert!(m.certificate("localhost").is_none());
    }
}
