//! The debug header: a request that carries a route's `debug_secret` in
//! `X-Gojinn-Debug` gets the guest's stderr back in `X-Gojinn-Logs`.
//!
//! The value is percent-encoded (every byte outside printable ASCII, and `%`
//! itself, becomes `%XX`), so newlines and any binary survive as one header line
//! and decode with any URL decoder. It is capped at [`MAX_LOGS_HEADER_BYTES`];
//! a cut value ends with [`TRUNCATED_MARKER`].

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// The request header that carries the secret.
pub(crate) const DEBUG_HEADER: HeaderName = HeaderName::from_static("x-gojinn-debug");
/// The response header that carries the guest's stderr.
pub(crate) const LOGS_HEADER: HeaderName = HeaderName::from_static("x-gojinn-logs");
/// Longest `X-Gojinn-Logs` value, marker included: proxies commonly refuse
/// response heads over 8 KiB, and the log has the whole stderr anyway.
pub const MAX_LOGS_HEADER_BYTES: usize = 4096;
/// Ends a value that was cut at [`MAX_LOGS_HEADER_BYTES`].
pub const TRUNCATED_MARKER: &str = "...[truncated]";

/// Whether `headers` carry `secret`. The comparison takes the same time wherever
/// the first differing byte is, so the secret cannot be guessed byte by byte
/// from response times (only its length could be, which is not secret enough
/// to matter for a random token).
pub(crate) fn wants_logs(secret: Option<&str>, headers: &HeaderMap) -> bool {
    let (Some(secret), Some(given)) = (secret, headers.get(DEBUG_HEADER)) else {
        return false;
    };
    bool::from(secret.as_bytes().ct_eq(given.as_bytes()))
}

/// The `X-Gojinn-Logs` value for `stderr`.
pub(crate) fn logs_header(stderr: &[u8]) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let room = MAX_LOGS_HEADER_BYTES - TRUNCATED_MARKER.len();
    let mut out = Vec::with_capacity(stderr.len().min(MAX_LOGS_HEADER_BYTES));
    let mut cut = false;
    for &b in stderr {
        let plain = (0x20..0x7f).contains(&b) && b != b'%';
        let width = if plain { 1 } else { 3 };
        if out.len() + width > room {
            cut = true;
            break;
        }
        if plain {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    if cut {
        out.extend_from_slice(TRUNCATED_MARKER.as_bytes());
    }
    // Only printable ASCII was written, which is always a valid header value.
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_control_bytes_and_percent() {
        let v = logs_header(b"a b%\n\xff");
        assert_eq!(v.to_str().expect("ascii"), "a b%25%0A%FF");
    }

    #[test]
    fn caps_at_the_limit_with_a_marker() {
        let v = logs_header(&[b'x'; 10_000]);
        assert_eq!(v.len(), MAX_LOGS_HEADER_BYTES);
        assert!(v.to_str().expect("ascii").ends_with(TRUNCATED_MARKER));
        // An escape is never split by the cut.
        let v = logs_header(&[b'\n'; 5_000]);
        let s = v.to_str().expect("ascii");
        let body = s.strip_suffix(TRUNCATED_MARKER).expect("marker");
        assert_eq!(body.len() % 3, 0);
        assert!(s.len() <= MAX_LOGS_HEADER_BYTES);
        assert_eq!(logs_header(&[b'y'; 4096 - 14]).len(), 4096 - 14);
    }

    #[test]
    fn secret_must_match_exactly() {
        let mut h = HeaderMap::new();
        assert!(!wants_logs(Some("s3cret"), &h));
        h.insert(DEBUG_HEADER, HeaderValue::from_static("s3cre"));
        assert!(!wants_logs(Some("s3cret"), &h));
        h.insert(DEBUG_HEADER, HeaderValue::from_static("s3cret"));
        assert!(wants_logs(Some("s3cret"), &h));
        assert!(!wants_logs(None, &h));
    }
}
