//! `basic_auth`: HTTP Basic authentication against bcrypt hashes.
//!
//! An unknown user costs a bcrypt verification too (against another
//! account's hash, whose result is then ignored), so timing does not tell
//! which users exist; bcrypt compares the hashes in constant time. A correct
//! password is remembered (as a SHA-256 of the hash and the password, never
//! the password) so that a browser sending it on every request does not pay
//! for bcrypt each time: at Caddy's cost of 14 one verification takes about a
//! second of CPU.

use crate::exchange::Exchange;
use crate::handle_errors::Errored;
use crate::handler::{full, Body};
use base64::Engine as _;
use gojinn_config::BasicAuth;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Most correct (hash, password) digests remembered; past it the memory is
/// cleared and filled again.
const MAX_REMEMBERED: usize = 1024;

/// A compiled `basic_auth`.
pub(crate) struct Guard {
    /// `WWW-Authenticate` of a refusal.
    challenge: HeaderValue,
    /// User name → bcrypt hash.
    accounts: HashMap<String, String>,
    /// What an unknown user's password is checked against.
    decoy: String,
    /// Digests of hash and password that verified.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Guard {
    pub(crate) fn new(auth: &BasicAuth) -> Result<Guard, String> {
        let decoy = auth
            .accounts
            .first()
            .map(|a| a.hash.clone())
            .ok_or("`basic_auth` has no account")?;
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", auth.realm))
            .map_err(|_| format!("invalid realm `{}`", auth.realm))?;
        Ok(Guard {
            challenge,
            accounts: auth
                .accounts
                .iter()
                .map(|a| (a.username.clone(), a.hash.clone()))
                .collect(),
            decoy,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// The user when the request's credentials are right; `None` is a
    /// [`refusal`](Self::refusal).
    pub(crate) fn check(&self, x: &Exchange) -> Option<String> {
        let (user, password) = credentials(x)?;
        let (hash, known) = match self.accounts.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        (self.verify(hash, &password) && known).then_some(user)
    }

    fn verify(&self, hash: &str, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(hash.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        let remembered = |d: &[u8; 32]| self.verified.lock().is_ok_and(|set| set.contains(d));
        if remembered(&digest) {
            return true;
        }
        let run = || bcrypt::verify(password, hash).unwrap_or(false);
        // bcrypt is seconds of CPU at high costs: tell a multi-threaded
        // runtime this worker blocks, so its other tasks move elsewhere.
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let ok = if multi {
            tokio::task::block_in_place(run)
        } else {
            run()
        };
        if ok {
            if let Ok(mut set) = self.verified.lock() {
                if set.len() >= MAX_REMEMBERED {
                    set.clear();
                }
                set.insert(digest);
            }
        }
        ok
    }

    /// The 401 of a request `check` refused.
    pub(crate) fn refusal(&self) -> Response<Body> {
        let mut resp = Response::new(full("unauthorized\n"));
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        let headers = resp.headers_mut();
        headers.insert(WWW_AUTHENTICATE, self.challenge.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp.extensions_mut().insert(Errored {
            message: "unauthorized",
        });
        resp
    }
}

/// The user and password of a `Basic` `Authorization` header.
fn credentials(x: &Exchange) -> Option<(String, String)> {
    let value = x.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
