//! What routing knows of one request while the site's routes are walked, and
//! what its directives changed on the way: the path and query (`handle_path`,
//! `rewrite`, `uri`), the request headers (`request_header`), the response
//! header operations to apply (`header`), and regexp captures.

use crate::conn::Peer;
use crate::placeholder::ErrorInfo;
use crate::site::ReadyOp;
use http::{HeaderMap, Method, Version};
use std::net::IpAddr;

/// One request's routing state.
pub(crate) struct Exchange {
    pub(crate) method: Method,
    /// The request path as the next route sees it (raw, not percent-decoded).
    pub(crate) path: String,
    /// The query string without `?`, if any.
    pub(crate) query: Option<String>,
    /// The request headers, as `request_header` left them.
    pub(crate) headers: HeaderMap,
    /// The host the request is for, lower-case, without a port.
    pub(crate) host: Option<String>,
    pub(crate) version: Version,
    /// The connection's peer, when the request came through a listener.
    pub(crate) peer: Option<Peer>,
    /// Regexp captures of the matchers that matched: `(name, groups)`, where
    /// group 0 is the whole match and named groups follow the numbered ones.
    pub(crate) captures: Vec<Capture>,
    /// `header` operations to apply as defaults under the answer's fields.
    pub(crate) early_headers: Vec<ReadyOp>,
    /// Deferred `header` operations, applied to the answer's fields.
    pub(crate) late_headers: Vec<ReadyOp>,
    /// The failure `handle_errors` is answering, for `{err.*}`.
    pub(crate) error: Option<ErrorInfo>,
    /// The user `basic_auth` let in, for `{http.auth.user.id}`.
    pub(crate) auth_user: Option<String>,
    /// The last `encode` route passed on the way: it compresses the answer.
    pub(crate) encode: Option<crate::encode::EncodeRt>,
}

/// The captures of one regexp matcher.
#[derive(Debug, Clone, Default)]
pub(crate) struct Capture {
    /// The regexp's name (`{re.<name>.<group>}`).
    pub(crate) name: String,
    /// `(group name or number, text)`.
    pub(crate) groups: Vec<(String, String)>,
}

impl Exchange {
    /// The state of a request that has not been routed yet; takes its headers.
    pub(crate) fn new(parts: &mut http::request::Parts) -> Exchange {
        let host = request_host(&parts.uri, &parts.headers).map(|h| h.to_ascii_lowercase());
        Exchange {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: std::mem::take(&mut parts.headers),
            host,
            version: parts.version,
            peer: parts.extensions.get::<Peer>().copied(),
            captures: Vec::new(),
            early_headers: Vec::new(),
            late_headers: Vec::new(),
            error: None,
            auth_user: None,
            encode: None,
        }
    }

    /// The path and query: what a function sees as `uri`.
    pub(crate) fn uri(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// The peer's IP address, IPv4-mapped addresses as IPv4.
    pub(crate) fn peer_ip(&self) -> Option<IpAddr> {
        self.peer.map(|p| p.addr.ip().to_canonical())
    }

    /// Whether the request came over TLS.
    pub(crate) fn tls(&self) -> bool {
        self.peer.is_some_and(|p| p.tls)
    }

    /// Puts what routing changed back into `parts`: the headers (a copy when
    /// `keep`, for what runs after the answer), and the URI when the path or
    /// query changed.
    pub(crate) fn restore(&mut self, parts: &mut http::request::Parts, keep: bool) {
        parts.headers = self.take_headers(keep);
        if parts.uri.path() != self.path || parts.uri.query() != self.query.as_deref() {
            if let Ok(uri) = self.uri().parse() {
                parts.uri = uri;
            }
        }
    }

    /// The request headers as routing left them: a copy when `keep`, for what
    /// runs after the answer.
    pub(crate) fn take_headers(&mut self, keep: bool) -> HeaderMap {
        if keep {
            self.headers.clone()
        } else {
            std::mem::take(&mut self.headers)
        }
    }
}

/// The host a request is for, without a port (compared case-insensitively).
pub(crate) fn request_host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let raw = match uri.host() {
        Some(host) => host,
        None => headers.get(http::header::HOST)?.to_str().ok()?,
    };
    let host = if raw.starts_with('[') {
        // IPv6 literal: keep the brackets, drop a port after them.
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.split(':').next().unwrap_or(raw)
    };
    Some(host)
}
