//! TLS for the ports of HTTPS sites: one rustls `ServerConfig` per port, the
//! certificate chosen by SNI among that port's sites. Certificates given as
//! files (`tls CERT KEY`) are loaded and checked at [`App::load`](crate::App::load)
//! (so a reload with a bad certificate is refused and the old one keeps
//! serving); managed ones (ACME, `tls internal`) are asked of the process's
//! [`gojinn_certs::Manager`] at each handshake, so a renewal serves at once.
//! A TLS-ALPN-01 validation (ALPN `acme-tls/1`) gets the challenge certificate.

use gojinn_certs::{Manager, ACME_TLS_ALPN};
use gojinn_config::{Issuer, Site, Tls, TlsFiles};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// ALPN protocol id of HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider of every TLS listener: rustls with *ring*.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One certificate per site with `tls CERT KEY`, loaded once even when the
/// site has several ports; the manager of the others.
pub(crate) struct Certificates {
    provider: Arc<CryptoProvider>,
    /// Index of the site in `Config::sites` → its certificate.
    by_site: HashMap<usize, Arc<CertifiedKey>>,
    managed: Option<Manager>,
}

impl Certificates {
    /// Loads the certificate and key of every site with `tls CERT KEY`; one
    /// message per bad site, naming the file and the directive's place.
    pub(crate) fn load(
        sites: &[Site],
        managed: Option<Manager>,
    ) -> Result<Certificates, Vec<String>> {
        let provider = provider();
        let mut by_site = HashMap::new();
        let mut errors = Vec::new();
        for (i, site) in sites.iter().enumerate() {
            let Some(Tls::Files(tls)) = &site.tls else {
                continue;
            };
            match certified_key(tls, &provider) {
                Ok(key) => {
                    by_site.insert(i, Arc::new(key));
                }
                Err(e) => errors.push(match &tls.origin {
                    Some(origin) => format!("{origin}: {e}"),
                    None => e,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Certificates {
                provider,
                by_site,
                managed,
            })
        } else {
            Err(errors)
        }
    }

    /// The server config of one port whose sites (indexes into `Config::sites`,
    /// in file order) all have `tls`. HTTP/2 is offered by ALPN when `h2`;
    /// `acme-tls/1` when a site on the port may be validated by TLS-ALPN-01.
    pub(crate) fn server_config(
        &self,
        sites: &[Site],
        on_port: &[usize],
        h2: bool,
    ) -> Result<Arc<ServerConfig>, String> {
        let mut by_name = HashMap::new();
        let mut fallback = None;
        let mut managed = false;
        let mut alpn_challenge = false;
        for &i in on_port {
            if let Some(Some(Tls::Managed(issuer))) = sites.get(i).map(|s| &s.tls) {
                managed = true;
                alpn_challenge |= matches!(issuer, Issuer::Acme(a) if !a.disable_tlsalpn_challenge);
            }
            let (Some(site), Some(key)) = (sites.get(i), self.by_site.get(&i)) else {
                continue;
            };
            fallback.get_or_insert_with(|| key.clone());
            for host in site.addresses.iter().filter_map(|a| a.host.as_deref()) {
                // IP literals never arrive as SNI; names are compared lower-case.
                by_name
                    .entry(host.to_ascii_lowercase())
                    .or_insert_with(|| key.clone());
            }
        }
        let managed = match (managed, &self.managed) {
            (false, _) => None,
            (true, Some(m)) => Some(m.clone()),
            (true, None) => {
                return Err(
                    "internal error: a managed TLS site without a certificate manager".to_owned(),
                )
            }
        };
        if fallback.is_none() && managed.is_none() {
            return Err("internal error: a TLS port without a certificate".to_owned());
        }
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver {
                by_name,
                fallback,
                managed,
            }));
        config.alpn_protocols = if h2 {
            vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
        } else {
            vec![ALPN_HTTP11.to_vec()]
        };
        if alpn_challenge {
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        Ok(Arc::new(config))
    }
}

/// Reads `tls.cert` and `tls.key` (PEM) and checks that they belong together.
fn certified_key(tls: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let (cert_path, key_path) = (tls.cert.display(), tls.key.display());
    let cert_pem = std::fs::read(&tls.cert)
        .map_err(|e| format!("cannot read tls certificate `{cert_path}`: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls certificate `{cert_path}` is not valid PEM: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "tls certificate `{cert_path}` holds no PEM `CERTIFICATE` block"
        ));
    }
    let key_pem =
        std::fs::read(&tls.key).map_err(|e| format!("cannot read tls key `{key_path}`: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!("tls key `{key_path}` holds no PEM private key (PKCS#8, RSA or EC): {e}")
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("tls key `{key_path}` does not match the certificate `{cert_path}`")
        }
        other => format!("tls key `{key_path}` cannot be used with `{cert_path}`: {other}"),
    })
}

/// Picks the certificate of the site named by SNI (a file's, else a managed
/// one), else the port's first site with files.
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    fallback: Option<Arc<CertifiedKey>>,
    /// Set when a site on the port has a managed certificate.
    managed: Option<Manager>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .field("managed", &self.managed.is_some())
            .finish()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(m) = &self.managed {
            let validating = hello
                .alpn()
                .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
            if validating {
                return hello.server_name().and_then(|n| m.alpn_challenge(n));
            }
        }
        let chosen = hello
            .server_name()
            .and_then(|name| {
                // rustls hands SNI over lower-cased already; stay safe for
                // mixed-case names without allocating in the common case.
                self.by_name.get(name).or_else(|| {
                    name.bytes()
                        .any(|b| b.is_ascii_uppercase())
                        .then(|| self.by_name.get(&name.to_ascii_lowercase()))
                        .flatten()
                })
            })
            .cloned();
        chosen
            .or_else(|| {
                let (m, name) = (self.managed.as_ref()?, hello.server_name()?);
                m.certificate(name)
            })
            .or_else(|| self.fallback.clone())
    }
}
