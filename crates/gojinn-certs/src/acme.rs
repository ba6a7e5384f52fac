//! One ACME order (RFC 8555) with instant-acme: the account (made once per CA
//! and email, kept in storage), the HTTP-01 or TLS-ALPN-01 challenge answered
//! by this server's own listeners, then the certificate and its new key.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::storage::Storage;
use crate::{AcmeSpec, Challenges};

/// How long the CA may take to validate and issue before the order fails.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

/// Storage key of the account of `spec` (per CA directory and email).
fn account_key(spec: &AcmeSpec) -> String {
    format!(
        "acme/{}/users/{}/account.json",
        crate::issuer_dir(&spec.directory),
        spec.email.as_deref().unwrap_or("default")
    )
}

fn builder(spec: &AcmeSpec) -> Result<AccountBuilder, String> {
    match &spec.ca_root {
        Some(root) => Account::builder_with_root(root)
            .map_err(|e| format!("cannot use the ACME CA root `{}`: {e}", root.display())),
        None => Account::builder().map_err(|e| format!("ACME client: {e}")),
    }
}

/// The account of `spec`, registered with the CA on first use.
async fn account(storage: &Storage, spec: &AcmeSpec) -> Result<Account, String> {
    let key = account_key(spec);
    if let Some(bytes) = storage.load(&key).await? {
        let credentials: AccountCredentials = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the stored ACME account `{key}` is unreadable: {e}"))?;
        return builder(spec)?
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("ACME CA `{}`: {e}", spec.directory));
    }
    let contact = spec.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = match &spec.eab {
        Some((id, mac)) => {
            let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(mac.trim_end_matches('='))
                .map_err(|e| format!("the EAB mac_key is not base64url: {e}"))?;
            Some(ExternalAccountKey::new(id.clone(), &mac))
        }
        None => None,
    };
    let (account, credentials) = builder(spec)?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            spec.directory.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(|e| format!("ACME CA `{}` refused the account: {e}", spec.directory))?;
    let json = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
    storage.store(&key, &json, true).await?;
    tracing::info!(target: "gojinn::tls", ca = %spec.directory, email = spec.email.as_deref().unwrap_or(""), "registered an ACME account");
    Ok(account)
}

/// Orders a certificate for `name`, answering with `challenge`; returns the
/// chain PEM and the key PEM.
pub(crate) async fn obtain(
    storage: &Storage,
    spec: &AcmeSpec,
    name: &str,
    challenge: ChallengeType,
    challenges: &Challenges,
    provider: &Arc<CryptoProvider>,
) -> Result<(String, String), String> {
    let ca = &spec.directory;
    let account = account(storage, spec).await?;
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("ACME CA `{ca}` refused the order: {e}"))?;
    let mut answered = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| format!("ACME CA `{ca}`: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("ACME CA `{ca}`: authorization is {other:?}")),
            }
            let mut ch = authz.challenge(challenge.clone()).ok_or_else(|| {
                format!("ACME CA `{ca}` offers no {challenge:?} challenge for `{name}`")
            })?;
            let key_auth = ch.key_authorization();
            let kind = if challenge == ChallengeType::Http01 {
                "http-01"
            } else {
                "tls-alpn-01"
            };
            tracing::info!(target: "gojinn::tls", domain = %name, challenge = kind, ca = %ca, "answering the CA's challenge");
            match challenge {
                ChallengeType::Http01 => {
                    challenges.put_http(&ch.token, key_auth.as_str());
                    // The CA may ask any node behind the name: the others
                    // find the answer in the shared store.
                    if storage.is_shared() {
                        storage
                            .store(
                                &crate::challenge_key(&ch.token),
                                key_auth.as_str().as_bytes(),
                                false,
                            )
                            .await?;
                    }
                    answered.push(ch.token.clone());
                }
                _ => {
                    let cert = alpn_certificate(name, key_auth.digest().as_ref(), provider)?;
                    challenges.put_alpn(name, cert);
                }
            }
            ch.set_ready()
                .await
                .map_err(|e| format!("ACME CA `{ca}`: {e}"))?;
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(ORDER_TIMEOUT);
        let status = order
            .poll_ready(&retry)
            .await
            .map_err(|e| format!("ACME CA `{ca}`: {e}"))?;
        if status != OrderStatus::Ready {
            return Err(order_failure(&mut order, ca, status).await);
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("ACME CA `{ca}` refused to finalize: {e}"))?;
        let chain = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| format!("ACME CA `{ca}`: {e}"))?;
        Ok((chain, key_pem))
    }
    .await;
    for token in answered {
        challenges.remove_http(&token);
        if storage.is_shared() {
            if let Err(e) = storage.delete(&crate::challenge_key(&token)).await {
                tracing::warn!(target: "gojinn::tls", error = %e, "cannot remove a challenge answer from storage");
            }
        }
    }
    challenges.remove_alpn(name);
    result
}

/// Why an order is not ready, with the CA's own words where it gave them.
async fn order_failure(order: &mut instant_acme::Order, ca: &str, status: OrderStatus) -> String {
    let mut problems = Vec::new();
    if let Some(p) = &order.state().error {
        problems.push(p.to_string());
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        for ch in &authz.challenges {
            if let Some(p) = &ch.error {
                problems.push(format!("{:?}: {p}", ch.r#type));
            }
        }
    }
    if problems.is_empty() {
        format!("ACME CA `{ca}`: the order is {status:?}")
    } else {
        format!(
            "ACME CA `{ca}`: the order is {status:?}: {}",
            problems.join("; ")
        )
    }
}

/// The self-signed certificate of a TLS-ALPN-01 answer (RFC 8737).
fn alpn_certificate(
    name: &str,
    digest: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<CertifiedKey>, String> {
    let mut params =
        CertificateParams::new(vec![name.to_owned()]).map_err(|e| format!("`{name}`: {e}"))?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    // Not `CertifiedKey::from_der`: its consistency check parses the
    // certificate with webpki, which refuses the critical acmeIdentifier
    // extension this certificate must carry.
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("TLS-ALPN-01 key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}
