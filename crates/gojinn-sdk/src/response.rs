//! The response object a function writes on stdout.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// What the server sends when even a fixed error response could not be serialised;
/// written by hand so that path has no way left to fail.
const LAST_RESORT: &[u8] =
    br#"{"status":500,"headers":{"Content-Type":["application/json"]},"body":"{\"error\":\"response serialisation failed\"}"}"#;

/// One HTTP response, built by a handler and written to stdout by [`crate::run`].
///
/// Serialises to the contract's shape: `status`, `headers` (name → array of values)
/// and either `body` or, for bytes, `body_base64` — never both, which the server
/// rejects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Wire")]
pub struct Response {
    /// HTTP status code (100–599; the server answers 502 for anything else).
    pub status: u16,
    /// Header name → values; each value becomes one header line.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body as text. Ignored when [`Response::body_base64`] is set.
    pub body: String,
    /// The body as standard base64, for bytes that are not UTF-8 text.
    pub body_base64: Option<String>,
}

impl Default for Response {
    fn default() -> Self {
        Response::new(200)
    }
}

impl Response {
    /// An empty response with `status` and no headers.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: BTreeMap::new(),
            body: String::new(),
            body_base64: None,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            body: body.into(),
            ..Response::new(status)
        }
        .with_header("Content-Type", "text/plain; charset=utf-8")
    }

    /// An `application/json` response whose body is `value` serialised.
    ///
    /// A value serde cannot serialise (a map with non-string keys, a failing custom
    /// `Serialize`) is a bug in the handler; it becomes a `500` JSON error plus a log
    /// line rather than a panic, since a panic would only show up as a bare 502.
    pub fn json(status: u16, value: &impl Serialize) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Response {
                body,
                ..Response::new(status)
            }
            .with_header("Content-Type", "application/json"),
            Err(e) => {
                crate::log(&format!(
                    "gojinn-sdk: response body is not serialisable: {e}"
                ));
                Response::error(500, "response serialisation failed")
            }
        }
    }

    /// A binary response: `bytes` travel as `body_base64` with `content_type`.
    pub fn binary(status: u16, content_type: &str, bytes: &[u8]) -> Self {
        Response {
            body_base64: Some(crate::base64::encode(bytes)),
            ..Response::new(status)
        }
        .with_header("Content-Type", content_type)
    }

    /// A JSON error response: `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        // Built through `Value` so the message is escaped properly; serialising a
        // string-only object cannot fail, hence no recursion into `json`'s error path.
        let body = serde_json::json!({ "error": message }).to_string();
        Response {
            body,
            ..Response::new(status)
        }
        .with_header("Content-Type", "application/json")
    }

    /// Adds one value to header `name` (repeating a name adds another line).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .entry(name.into())
            .or_default()
            .push(value.into());
        self
    }

    /// The response as the JSON bytes the server expects on stdout.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, string maps and integers always serialise into a Vec; the fallback
        // only guards against a future field breaking that.
        serde_json::to_vec(self).unwrap_or_else(|_| LAST_RESORT.to_vec())
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("headers", &self.headers)?;
        match &self.body_base64 {
            Some(encoded) => map.serialize_entry("body_base64", encoded)?,
            None => map.serialize_entry("body", &self.body)?,
        }
        map.end()
    }
}

/// The wire shape as the contract allows it: status may be absent, null or 0
/// (meaning 200), any field may be null (meaning absent, as the server reads it), and
/// a header value may be a single string.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    headers: Option<BTreeMap<String, OneOrMany>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<Wire> for Response {
    fn from(wire: Wire) -> Self {
        Response {
            status: match wire.status {
                None | Some(0) => 200,
                Some(status) => status,
            },
            headers: wire
                .headers
                .unwrap_or_default()
                .into_iter()
                .map(|(name, values)| match values {
                    OneOrMany::One(value) => (name, vec![value]),
                    OneOrMany::Many(values) => (name, values),
                })
                .collect(),
            body: wire.body.unwrap_or_default(),
            body_base64: wire.body_base64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn wire(response: &Response) -> Value {
        serde_json::from_slice(&response.to_json()).expect("valid json")
    }

    #[test]
    fn json_response_has_content_type_and_serialised_body() {
        let res = Response::json(201, &json!({"ok": true})).with_header("X-A", "1");
        assert_eq!(
            wire(&res),
            json!({
                "status": 201,
                "headers": {"Content-Type": ["application/json"], "X-A": ["1"]},
                "body": "{\"ok\":true}"
            })
        );
    }

    #[test]
    fn repeated_header_adds_values() {
        let res = Response::text(200, "hi")
            .with_header("Set-Cookie", "a=1")
            .with_header("Set-Cookie", "b=2");
        assert_eq!(res.headers["Set-Cookie"], ["a=1", "b=2"]);
        assert_eq!(res.headers["Content-Type"], ["text/plain; charset=utf-8"]);
    }

    #[test]
    fn binary_sets_only_body_base64() {
        let value = wire(&Response::binary(200, "image/png", &[0x89, b'P', 0xff]));
        assert_eq!(value["body_base64"], "iVD/");
        assert!(value.get("body").is_none());
    }

    #[test]
    fn unserialisable_value_becomes_500() {
        let bad: BTreeMap<Vec<u8>, u8> = BTreeMap::from([(vec![1], 1)]);
        let res = Response::json(200, &bad);
        assert_eq!(res.status, 500);
        assert_eq!(res.body, r#"{"error":"response serialisation failed"}"#);
    }

    #[test]
    fn error_escapes_message() {
        let res = Response::error(400, "bad \"x\"\n");
        let body: Value = serde_json::from_str(&res.body).expect("json body");
        assert_eq!(body["error"], "bad \"x\"\n");
    }

    #[test]
    fn round_trips_and_accepts_contract_variants() {
        let res = Response::text(404, "nope").with_header("X-B", "2");
        let back: Response = serde_json::from_slice(&res.to_json()).expect("parses");
        assert_eq!(back, res);

        let loose: Response =
            serde_json::from_str(r#"{"headers":{"X-One":"v"},"body":"b","extra":1}"#)
                .expect("parses");
        assert_eq!(loose.status, 200);
        assert_eq!(loose.headers["X-One"], ["v"]);
    }

    #[test]
    fn last_resort_is_a_valid_response() {
        let res: Response = serde_json::from_slice(LAST_RESORT).expect("parses");
        assert_eq!(res.status, 500);
    }
}
