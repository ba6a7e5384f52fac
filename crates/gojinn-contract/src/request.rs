//! The request object written to a function's stdin.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The request as a function sees it on stdin.
///
/// Header names are in canonical MIME form and map to every value received, in
/// order. `BTreeMap` keeps the JSON key order stable (Go's encoder sorts map keys too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// Path and query as received (`/api/x?y=1`).
    pub uri: String,
    /// Canonical header name → values in arrival order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body as text; lossy (U+FFFD) when the bytes are not valid UTF-8.
    pub body: String,
    /// The exact body in standard base64, present only when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// `traceparent` if the client sent one, else `X-Request-Id`, else a fresh
    /// W3C traceparent made by the server.
    pub trace_id: String,
}

impl Request {
    /// Builds a request from raw parts: header names are canonicalised, values and
    /// the body checked for UTF-8 (see the crate docs for non-UTF-8 bodies).
    pub fn new<'a>(
        method: &str,
        uri: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
        trace_id: String,
    ) -> Self {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in headers {
            let key = crate::canonical_header_key(name).into_owned();
            map.entry(key)
                .or_default()
                .push(String::from_utf8_lossy(value).into_owned());
        }
        let (body, body_base64) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => (
                String::from_utf8_lossy(body).into_owned(),
                Some(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        };
        Request {
            method: method.to_owned(),
            uri: uri.to_owned(),
            headers: map,
            body,
            body_base64,
            trace_id,
        }
    }
}

/// Encodes `request` as the JSON bytes given to the function on stdin.
pub fn encode_request(request: &Request) -> Vec<u8> {
    // Serialising plain strings and maps into a Vec cannot fail; fall back to an
    // empty object rather than panicking should that ever change.
    serde_json::to_vec(request).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_canonical_and_repeated_values_kept_in_order() {
        let req = Request::new(
            "GET",
            "/a?b=1",
            [
                ("x-request-id", &b"one"[..]),
                ("content-type", b"text/plain"),
                ("X-REQUEST-ID", b"two"),
            ],
            b"hi",
            "t".into(),
        );
        assert_eq!(req.headers["X-Request-Id"], ["one", "two"]);
        assert_eq!(req.headers["Content-Type"], ["text/plain"]);
        let json: serde_json::Value =
            serde_json::from_slice(&encode_request(&req)).expect("valid json");
        assert_eq!(json["uri"], "/a?b=1");
        assert_eq!(json["body"], "hi");
        assert!(json.get("body_base64").is_none());
    }

    #[test]
    fn binary_body_is_lossy_in_body_and_exact_in_base64() {
        let bytes = [0x66, 0xff, 0x00, 0x80];
        let req = Request::new("POST", "/", [], &bytes, "t".into());
        assert_eq!(req.body, "f\u{fffd}\0\u{fffd}");
        let b64 = req.body_base64.as_deref().expect("base64 present");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("valid base64");
        assert_eq!(decoded, bytes);
    }
}
