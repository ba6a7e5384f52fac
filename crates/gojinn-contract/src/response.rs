//! The response read from a function's stdout: a response object decoded as Go's
//! `encoding/json` would (Gojinn's host was Go), or plain output as the body of a
//! 200.

use base64::Engine as _;
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

/// The fields of a response object, in the order of Gojinn's Go struct.
const FIELDS: [&str; 4] = ["status", "headers", "body", "body_base64"];

/// The field a JSON key sets, as Go's `encoding/json` picks it: an exact match
/// first, then one that differs only in case (Gojinn's functions are often Go
/// structs without tags: `{"Status":200,"Body":"…"}`).
fn field_for(key: &str) -> Option<usize> {
    FIELDS
        .iter()
        .position(|f| *f == key)
        .or_else(|| FIELDS.iter().position(|f| go_fold_eq(f, key)))
}

/// Go's case-insensitive key comparison (`foldName`): ASCII letters upper-cased,
/// other characters mapped to the upper case of their lower case, so `ſ`
/// (U+017F) matches `s` as it does in Go.
fn go_fold_eq(a: &str, b: &str) -> bool {
    /// The one character an iterator yields, if it yields exactly one.
    fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }
    fn fold(c: char) -> char {
        if c.is_ascii() {
            return c.to_ascii_uppercase();
        }
        single(c.to_lowercase())
            .and_then(|l| single(l.to_uppercase()))
            .unwrap_or(c)
    }
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// The wire shape, filled key by key in document order as Go's decoder does:
/// a later key for the same field wins, `null` leaves a field as it was, and
/// unknown keys are ignored.
#[derive(Default)]
struct Wire {
    status: Option<i64>,
    headers: Option<serde_json::Map<String, Value>>,
    body: Option<String>,
    body_base64: Option<String>,
    /// Whether any key named one of the [`FIELDS`] (a response object, not some
    /// other JSON object a function printed).
    has_field: bool,
}

impl<'de> serde::Deserialize<'de> for Wire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> serde::de::Visitor<'de> for WireVisitor {
    type Value = Wire;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a response object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
        let mut wire = Wire::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(field) = field_for(&key) else {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            };
            wire.has_field = true;
            match field {
                0 => set(&mut wire.status, map.next_value()?),
                1 => set(&mut wire.headers, map.next_value()?),
                2 => set(&mut wire.body, map.next_value()?),
                _ => set(&mut wire.body_base64, map.next_value()?),
            }
        }
        Ok(wire)
    }
}

/// A decoded value replaces the field; `null` (`None`) leaves it.
fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Decodes a function's stdout as a response object (strictly: anything but one
/// JSON object is an error). Surrounding whitespace is fine (Go's encoder ends
/// with a newline). Keys match as in Go (exact, then case-insensitive).
/// [`decode_output`] is what the server applies to stdout.
pub fn decode_response(stdout: &[u8]) -> Result<Response, ContractError> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(ContractError::Empty);
    }
    let wire: Wire =
        serde_json::from_slice(stdout).map_err(|e| ContractError::Malformed(e.to_string()))?;
    response_of(wire)
}

/// What a function's stdout means, by Gojinn's rules (v0.15 and later):
///
/// - a JSON object with at least one of `status`, `headers`, `body`,
///   `body_base64` (keys matched as in [`decode_response`]) is a response object;
/// - empty stdout is an error ([`ContractError::Empty`]), and so is stdout that
///   starts with `{` but is not one JSON object (a broken response object);
/// - anything else (plain text, JSON that is not a response object such as
///   `{"message":"hi"}` or `[]`) is the body of a 200, byte for byte.
///
/// A response without a `Content-Type` gets one sniffed from its body, as Go's
/// `net/http` did for Gojinn ([`crate::content_type_for`]), unless the body is
/// empty, its status has no body, or it sets a `Content-Encoding`.
pub fn decode_output(stdout: &[u8]) -> Result<Response, ContractError> {
    let Some(first) = stdout.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(ContractError::Empty);
    };
    let mut response = if *first == b'{' {
        let wire: Wire =
            serde_json::from_slice(stdout).map_err(|e| ContractError::Malformed(e.to_string()))?;
        if wire.has_field {
            response_of(wire)?
        } else {
            Response::text(stdout)
        }
    } else {
        Response::text(stdout)
    };
    response.sniff_content_type();
    Ok(response)
}

impl Response {
    /// A 200 whose body is `bytes`, with no headers.
    fn text(bytes: &[u8]) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: bytes.to_vec(),
        }
    }

    /// Adds the `Content-Type` Go's `net/http` would have sniffed, when the
    /// response sets none (see [`decode_output`]).
    pub fn sniff_content_type(&mut self) {
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
        };
        let bodiless = matches!(self.status, 100..=199 | 204 | 304);
        if self.body.is_empty()
            || bodiless
            || self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            || has("content-encoding")
        {
            return;
        }
        let ct = crate::content_type_for(&self.body);
        self.headers
            .push(("Content-Type".to_owned(), ct.to_owned()));
    }
}

fn response_of(wire: Wire) -> Result<Response, ContractError> {
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
    fn keys_match_as_in_go_exact_first_then_any_case() {
        // An untagged Go struct { Status int; Body string; Headers map[…] }.
        let r = ok(r#"{"Status":201,"Headers":{"X-A":"1"},"Body":"hi"}"#);
        assert_eq!((r.status, r.body.as_slice()), (201, &b"hi"[..]));
        assert_eq!(r.headers, [("X-A".into(), "1".into())]);
        assert_eq!(ok(r#"{"BODY_BASE64":"AP8="}"#).body, [0, 255]);
        assert_eq!(ok(r#"{"bOdY":"x"}"#).body, b"x");
        // Go folds U+017F (long s) to `S`, so it names `status` too.
        assert_eq!(ok("{\"\u{017f}tatus\":404}").status, 404);
        // Keys apply in document order; the last one for a field wins…
        assert_eq!(ok(r#"{"body":"exact","Body":"later"}"#).body, b"later");
        assert_eq!(ok(r#"{"Body":"earlier","body":"exact"}"#).body, b"exact");
        // …and `null` leaves the field as it was, as Go does.
        assert_eq!(ok(r#"{"body":"kept","Body":null}"#).body, b"kept");
        // Near misses are other keys, ignored.
        assert_eq!(ok(r#"{"Bodies":"x","status_code":500}"#).status, 200);
        // A case-insensitive match is type-checked like an exact one.
        assert!(matches!(
            err(r#"{"Status":"200"}"#),
            ContractError::Malformed(_)
        ));
    }

    fn out(s: &[u8]) -> Response {
        decode_output(s).expect("should decode")
    }

    #[test]
    fn output_rules_response_objects_and_errors() {
        // A response object, as decode_response reads it.
        let r = out(br#"{"status":201,"headers":{"Content-Type":"text/csv"},"body":"a,b"}"#);
        assert_eq!(r.status, 201);
        assert_eq!(r.headers, [("Content-Type".into(), "text/csv".into())]);
        // Any one of the four keys makes it one, in any case.
        assert_eq!(out(br#"{"Status":204}"#).status, 204);
        assert_eq!(out(br#"{"message":"x","body":"b"}"#).body, b"b");
        // Empty: an error, as before.
        assert_eq!(decode_output(b""), Err(ContractError::Empty));
        assert_eq!(decode_output(b" \n\t"), Err(ContractError::Empty));
        // Starts with `{` and is not one JSON object: a broken response object.
        for bad in [
            &b"{not json}"[..],
            b"  {\"status\":200",
            b"{\"body\":\"a\"} trailing",
        ] {
            assert!(
                matches!(decode_output(bad), Err(ContractError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A response object with a bad value is still an error.
        assert_eq!(
            decode_output(br#"{"status":700}"#),
            Err(ContractError::Status(700))
        );
    }

    #[test]
    fn output_rules_anything_else_is_the_body_of_a_200() {
        for (stdout, content_type) in [
            (&b"hello world\n"[..], "text/plain; charset=utf-8"),
            (b"[]", "application/json"),
            (b"[1, 2, 3]\n", "application/json"),
            (b"{\"message\":\"hi\"}\n", "application/json"),
            (b"{}", "application/json"),
            (b"\"just a string\"", "text/plain; charset=utf-8"),
            (b"42", "text/plain; charset=utf-8"),
            (b"<html><body>hi</body></html>", "text/html; charset=utf-8"),
            (b"[not json", "text/plain; charset=utf-8"),
        ] {
            let r = out(stdout);
            let shown = String::from_utf8_lossy(stdout);
            assert_eq!(r.status, 200, "{shown}");
            assert_eq!(r.body, stdout, "{shown}: the bytes, unchanged");
            assert_eq!(
                r.headers,
                [("Content-Type".to_owned(), content_type.to_owned())],
                "{shown}"
            );
        }
    }

    #[test]
    fn content_type_is_sniffed_only_when_the_function_sets_none() {
        let ct = |r: &Response| {
            r.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ct(&out(br#"{"body":"<p>hi</p>"}"#)),
            ["text/html; charset=utf-8"]
        );
        assert_eq!(ct(&out(br#"{"body":"{\"a\":1}"}"#)), ["application/json"]);
        assert_eq!(
            ct(&out(br#"{"body_base64":"AAEC"}"#)),
            ["application/octet-stream"]
        );
        // Set by the function, in any case: kept, never a second one.
        assert_eq!(
            ct(&out(
                br#"{"headers":{"content-type":"text/x-mine"},"body":"<p>"}"#
            )),
            ["text/x-mine"]
        );
        // Nothing to sniff: an empty body, a status without a body, an encoded body.
        assert_eq!(ct(&out(br#"{"status":200}"#)), Vec::<String>::new());
        assert_eq!(
            ct(&out(br#"{"status":204,"body":"x"}"#)),
            Vec::<String>::new()
        );
        assert_eq!(
            ct(&out(br#"{"status":304,"body":"x"}"#)),
            Vec::<String>::new()
        );
        assert_eq!(
            ct(&out(
                br#"{"headers":{"Content-Encoding":"gzip"},"body_base64":"H4sI"}"#
            )),
            Vec::<String>::new()
        );
        // decode_response itself adds nothing (the SDKs' conformance tests
        // compare its headers with theirs).
        assert!(ok(r#"{"body":"hi"}"#).headers.is_empty());
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
