//! The response object read from a function's stdout, decoded strictly.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// A decoded function response, ready to become an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status, 100–599 (an absent or zero status became 200).
    pub status: u16,
    /// Header lines in order: one entry per value, names as the function wrote them.
    pub headers: Vec<(String, String)>,
    /// Body bytes (from `body`, or decoded from `body_base64`).
    pub body: Vec<u8>,
}

/// Why a function's stdout is not a valid response. Every variant maps to 502.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    /// Nothing but whitespace on stdout.
    #[error("stdout is empty")]
    Empty,
    /// Not exactly one JSON object (text around it, malformed JSON, wrong shape).
    #[error("stdout is not one JSON response object: {0}")]
    Malformed(String),
    /// `status` outside 100–599.
    #[error("status `{0}` is outside 100-599")]
    Status(i64),
    /// A header name that is not an HTTP token.
    #[error("header name `{0}` is not a valid HTTP field name")]
    HeaderName(String),
    /// A header value that is not a string or an array of strings, or holds CR/LF.
    #[error("header `{name}` has an invalid value: {reason}")]
    HeaderValue {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `body_base64` is not valid standard base64, or both bodies were given.
    #[error("{0}")]
    Body(String),
}

/// The wire shape. Unknown fields are ignored, as Gojinn's Go decoder did.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    status: Option<i64>,
    #[serde(default)]
    headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

/// Decodes a function's stdout. Surrounding whitespace is fine (Go's encoder ends
/// with a newline); anything else around the one JSON object is an error.
pub fn decode_response(stdout: &[u8]) -> Result<Response, ContractError> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(ContractError::Empty);
    }
    let wire: Wire =
        serde_json::from_slice(stdout).map_err(|e| ContractError::Malformed(e.to_string()))?;
    let status = match wire.status.unwrap_or(0) {
        0 => 200,
        s @ 100..=599 => s as u16,
        s => return Err(ContractError::Status(s)),
    };
    let mut headers = Vec::new();
    for (name, value) in wire.headers.unwrap_or_default() {
        if !crate::is_valid_header_name(&name) {
            return Err(ContractError::HeaderName(name));
        }
        let bad = |reason: &str| ContractError::HeaderValue {
            name: name.clone(),
            reason: reason.to_owned(),
        };
        let values = match value {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad("array items must be strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad("must be a string or an array of strings")),
        };
        for v in values {
            if !crate::is_valid_header_value(&v) {
                return Err(bad("contains a control character (CR, LF, NUL, …)"));
            }
            headers.push((name.clone(), v));
        }
    }
    let body = match (wire.body, wire.body_base64) {
        (Some(_), Some(_)) => {
            return Err(ContractError::Body(
                "both `body` and `body_base64` are set".to_owned(),
            ))
        }
        (_, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| ContractError::Body(format!("`body_base64` is not valid base64: {e}")))?,
        (Some(text), None) => text.into_bytes(),
        (None, None) => Vec::new(),
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Response {
        decode_response(s.as_bytes()).expect("should decode")
    }
    fn err(s: &str) -> ContractError {
        decode_response(s.as_bytes()).expect_err("should be rejected")
    }

    #[test]
    fn full_response_with_array_and_string_headers() {
        let r = ok(r#"{"status":201,"headers":{"X-A":["1","2"],"X-B":"3"},"body":"hi"}"#);
        assert_eq!(r.status, 201);
        assert_eq!(
            r.headers,
            [
                ("X-A".into(), "1".into()),
                ("X-A".into(), "2".into()),
                ("X-B".into(), "3".into())
            ]
        );
        assert_eq!(r.body, b"hi");
    }

    #[test]
    fn absent_or_zero_status_is_200_and_whitespace_and_unknown_fields_are_fine() {
        assert_eq!(ok("  {\"body\":\"x\"}\n").status, 200);
        assert_eq!(ok(r#"{"status":0,"extra":{"a":1}}"#).status, 200);
        assert_eq!(
            ok(r#"{"status":null,"headers":null,"body":null}"#).body,
            b""
        );
    }

    #[test]
    fn base64_body_returns_bytes() {
        assert_eq!(ok(r#"{"body_base64":"AP8="}"#).body, [0, 255]);
        assert!(matches!(
            err(r#"{"body_base64":"!!"}"#),
            ContractError::Body(_)
        ));
        assert!(matches!(
            err(r#"{"body":"a","body_base64":"AA=="}"#),
            ContractError::Body(_)
        ));
    }

    #[test]
    fn rejects_everything_that_is_not_one_well_shaped_object() {
        assert_eq!(err(""), ContractError::Empty);
        assert_eq!(err(" \n"), ContractError::Empty);
        for bad in [
            "hello {\"status\":200}",
            "{\"status\":200} trailing",
            "{\"status\":200}{\"status\":200}",
            "[1,2]",
            "\"text\"",
            "{\"status\":\"200\"}",
            "{\"status\":200.5}",
            "{\"body\":42}",
            "{\"headers\":[\"a\"]}",
            "{not json}",
        ] {
            assert!(matches!(err(bad), ContractError::Malformed(_)), "{bad}");
        }
        assert_eq!(err(r#"{"status":99}"#), ContractError::Status(99));
        assert_eq!(err(r#"{"status":600}"#), ContractError::Status(600));
        assert_eq!(err(r#"{"status":-1}"#), ContractError::Status(-1));
        assert!(matches!(
            err(r#"{"headers":{"X":1}}"#),
            ContractError::HeaderValue { .. }
        ));
        assert!(matches!(
            err(r#"{"headers":{"X":[1]}}"#),
            ContractError::HeaderValue { .. }
        ));
        assert!(matches!(
            err(r#"{"headers":{"X":"a\r\nSet-Cookie: x"}}"#),
            ContractError::HeaderValue { .. }
        ));
        assert!(matches!(
            err(r#"{"headers":{"Bad Name":"a"}}"#),
            ContractError::HeaderName(_)
        ));
    }
}
