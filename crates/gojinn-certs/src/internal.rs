//! The local certificate authority of `tls internal` (and of sites that cannot
//! have a public certificate: `localhost`, IP addresses, `.internal` names):
//! a root made once and kept in storage, signing short-lived leaf certificates
//! in process. Users trust the root (its path is logged) to trust the leaves.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::storage::Storage;

/// Storage key of the root certificate (PEM).
pub const ROOT_CERT: &str = "pki/authorities/local/root.crt";
/// Storage key of the root's private key (PEM, private).
const ROOT_KEY: &str = "pki/authorities/local/root.key";
/// Lifetime of the root: 10 years.
const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of a leaf: 12 hours (renewed at two-thirds, like every certificate).
pub const LEAF_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a node may hold the lock while it makes the root.
const ROOT_LOCK_TTL: Duration = Duration::from_secs(30);

/// The loaded root.
pub(crate) struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    /// The root certificate, PEM.
    pub(crate) root_pem: String,
}

impl LocalCa {
    /// Loads the root from storage, making (and storing) it the first time;
    /// one node of several sharing the storage makes it.
    pub(crate) async fn load_or_create(storage: &Storage) -> Result<LocalCa, String> {
        for _ in 0..50 {
            if let Some(ca) = LocalCa::load(storage).await? {
                return Ok(ca);
            }
            let Some(lock) = storage.try_lock("local_ca_root", ROOT_LOCK_TTL).await? else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let made = match LocalCa::load(storage).await {
                Ok(Some(ca)) => Ok(ca),
                Ok(None) => LocalCa::create(storage).await,
                Err(e) => Err(e),
            };
            storage.unlock(lock).await?;
            return made;
        }
        Err("the local CA root is locked by another node that does not finish".to_owned())
    }

    async fn load(storage: &Storage) -> Result<Option<LocalCa>, String> {
        let (Some(cert), Some(key)) = (
            storage.load(ROOT_CERT).await?,
            storage.load(ROOT_KEY).await?,
        ) else {
            return Ok(None);
        };
        let cert = String::from_utf8(cert).map_err(|_| "the local CA root is not PEM text")?;
        let key = String::from_utf8(key).map_err(|_| "the local CA key is not PEM text")?;
        let key = KeyPair::from_pem(&key).map_err(|e| format!("the local CA key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(&cert, key)
            .map_err(|e| format!("the local CA root certificate: {e}"))?;
        Ok(Some(LocalCa {
            issuer,
            root_pem: cert,
        }))
    }

    async fn create(storage: &Storage) -> Result<LocalCa, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Gojinn Local Authority - ECC Root");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + ROOT_LIFETIME;
        let key = KeyPair::generate().map_err(|e| format!("local CA key: {e}"))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("local CA root: {e}"))?;
        storage
            .store(ROOT_KEY, key.serialize_pem().as_bytes(), true)
            .await?;
        storage
            .store(ROOT_CERT, cert.pem().as_bytes(), false)
            .await?;
        tracing::info!(target: "gojinn::tls", root = %storage.path(ROOT_CERT).map_or_else(|| storage.describe(), |p| p.display().to_string()),
            "created the local CA root: trust it to trust `tls internal` sites");
        Ok(LocalCa {
            issuer: Issuer::new(params, key),
            root_pem: cert.pem(),
        })
    }

    /// A leaf for `name` (a DNS name, wildcard or IP address): certificate PEM
    /// and key PEM.
    pub(crate) fn issue(&self, name: &str) -> Result<(String, String), String> {
        let san = match name.trim_matches(|c| c == '[' || c == ']').parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                name.to_owned()
                    .try_into()
                    .map_err(|e| format!("`{name}` cannot be a certificate name: {e}"))?,
            ),
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + LEAF_LIFETIME;
        let key = KeyPair::generate().map_err(|e| format!("leaf key: {e}"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("signing a leaf for `{name}`: {e}"))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}
