//! The request object a function reads on stdin.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One HTTP request, as the server hands it to the function.
///
/// Every field defaults when absent and unknown fields are ignored, so a guest built
/// against this SDK keeps working when the server adds fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    /// HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// Path and query as the client sent them (`/api/x?y=1`).
    pub uri: String,
    /// Header name in canonical form (`Content-Type`) → every value, in arrival order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body as text; a lossy copy (U+FFFD for bad bytes) when the body is not
    /// valid UTF-8, in which case [`Request::body_base64`] holds the exact bytes.
    pub body: String,
    /// The exact body in standard base64, present only when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// The request's trace id (`traceparent`, `X-Request-Id`, or one the server made);
    /// worth including in log lines so they can be matched with the server's.
    pub trace_id: String,
}

impl Request {
    /// The first value of header `name`, compared case-insensitively.
    ///
    /// The server already canonicalises names, but a case-insensitive lookup means
    /// `header("user-agent")` works as HTTP semantics say it should.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first())
            .map(String::as_str)
    }

    /// The path part of [`Request::uri`]: everything before `?` (or `#`).
    pub fn path(&self) -> &str {
        let end = self.uri.find(['?', '#']).unwrap_or(self.uri.len());
        &self.uri[..end]
    }

    /// The raw query string after `?`, without it; empty when there is none.
    pub fn query(&self) -> &str {
        // A `?` inside a fragment is not a query; clients never send fragments,
        // but a handler may build a `Request` by hand.
        let before_fragment = self.uri.split('#').next().unwrap_or_default();
        before_fragment
            .split_once('?')
            .map_or("", |(_, query)| query)
    }

    /// The exact body bytes: decoded from [`Request::body_base64`] when present,
    /// otherwise the bytes of [`Request::body`].
    ///
    /// Should `body_base64` ever be malformed, the lossy text body is the best that
    /// is left, so it is returned rather than an error.
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body_base64
            .as_deref()
            .and_then(crate::base64::decode)
            .unwrap_or_else(|| self.body.as_bytes().to_vec())
    }

    /// Parses the body as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.body_base64 {
            // Not UTF-8, hence not JSON; let serde_json say so on the exact bytes.
            Some(_) => serde_json::from_slice(&self.body_bytes()),
            None => serde_json::from_str(&self.body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Request {
        serde_json::from_str(json).expect("valid request")
    }

    #[test]
    fn parses_the_documented_shape() {
        let req = parse(
            r#"{"method":"GET","uri":"/api/x?y=1","headers":{"Content-Type":["application/json"],
                "X-Request-Id":["a","b"]},"body":"{}","trace_id":"00-abc-01","future":1}"#,
        );
        assert_eq!(req.method, "GET");
        assert_eq!(req.path(), "/api/x");
        assert_eq!(req.query(), "y=1");
        assert_eq!(req.header("x-request-id"), Some("a"));
        assert_eq!(req.headers["X-Request-Id"], ["a", "b"]);
        assert_eq!(req.header("Accept"), None);
        assert_eq!(req.trace_id, "00-abc-01");
        assert_eq!(req.body_base64, None);
    }

    #[test]
    fn missing_fields_default() {
        let req = parse("{}");
        assert_eq!(req, Request::default());
        assert_eq!(req.path(), "");
        assert_eq!(req.query(), "");
    }

    #[test]
    fn round_trips_through_json() {
        let req = Request {
            method: "POST".into(),
            uri: "/a?b=1".into(),
            headers: BTreeMap::from([("User-Agent".into(), vec!["curl".into()])]),
            body: "hi".into(),
            body_base64: None,
            trace_id: "t".into(),
        };
        let json = serde_json::to_string(&req).expect("serialises");
        assert!(!json.contains("body_base64"));
        assert_eq!(parse(&json), req);
    }

    #[test]
    fn path_and_query_stop_at_fragment() {
        let req = parse(r#"{"uri":"/p?q=1#frag"}"#);
        assert_eq!(req.path(), "/p");
        assert_eq!(req.query(), "q=1");
        let req = parse(r#"{"uri":"/p#frag?x"}"#);
        assert_eq!(req.path(), "/p");
        assert_eq!(req.query(), "");
    }

    #[test]
    fn binary_body_prefers_base64() {
        let req = parse(r#"{"body":"f\ufffd","body_base64":"Zv8="}"#);
        assert_eq!(req.body_bytes(), [0x66, 0xff]);
        assert!(req.json::<serde_json::Value>().is_err());
        let text = parse(r#"{"body":"{\"a\":1}"}"#);
        assert_eq!(text.body_bytes(), br#"{"a":1}"#);
        let value: serde_json::Value = text.json().expect("json body");
        assert_eq!(value["a"], 1);
    }
}
