//! The `trace_id` given to a function: the incoming `traceparent`, else the
//! `X-Request-Id`, else a fresh W3C traceparent (the server span's, when traced).

use http::HeaderMap;
use rand::RngCore;

/// Longest incoming trace id accepted verbatim; longer ones are replaced by a fresh
/// traceparent so a client cannot inflate every log line.
const MAX_INCOMING_TRACE_ID: usize = 256;

/// The caller's `traceparent`, else its `X-Request-Id`.
pub(crate) fn incoming(headers: &HeaderMap) -> Option<String> {
    for name in ["traceparent", "x-request-id"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let v = v.trim();
            if !v.is_empty() && v.len() <= MAX_INCOMING_TRACE_ID {
                return Some(v.to_owned());
            }
        }
    }
    None
}

/// A new W3C traceparent: version 00, random trace and parent ids, sampled.
pub(crate) fn fresh_traceparent() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    for (i, b) in bytes.iter().enumerate() {
        if i == 16 {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out.push_str("-01");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_id(headers: &HeaderMap) -> String {
        incoming(headers).unwrap_or_else(fresh_traceparent)
    }

    #[test]
    fn precedence_and_fresh_format() {
        let mut h = HeaderMap::new();
        let fresh = trace_id(&h);
        assert_eq!(fresh.len(), 55);
        assert!(fresh.starts_with("00-") && fresh.ends_with("-01"));
        assert_ne!(fresh, trace_id(&h));
        h.insert("x-request-id", "req-1".parse().expect("valid"));
        assert_eq!(trace_id(&h), "req-1");
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("valid"),
        );
        assert_eq!(
            trace_id(&h),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }
}
