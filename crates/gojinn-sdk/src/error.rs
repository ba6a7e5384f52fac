//! The error type of every host call, and the ABI v1 result codes behind it.

/// ABI v1 result codes: what a host call returns when it fails (`>= 0` is
/// success). The same values as `gojinn.h` and `docs/abi.md`; a conformance test
/// in `gojinn-runtime` holds them to the host's.
pub mod code {
    /// Not found (KV miss, nothing pending); not an error.
    pub const NOT_FOUND: i64 = -1;
    /// Not granted to this route.
    pub const DENIED: i64 = -2;
    /// Bad argument (memory range, UTF-8, JSON).
    pub const INVALID: i64 = -3;
    /// Value or result over its limit.
    pub const TOO_LARGE: i64 = -4;
    /// The store reported an error (e.g. malformed SQL).
    pub const BACKEND: i64 = -5;
    /// The store or upstream is unreachable.
    pub const UNAVAILABLE: i64 = -6;
    /// The deadline passed.
    pub const TIMEOUT: i64 = -7;
}

/// Why a host call failed: the ABI v1 result code and the host's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The route does not grant this (`permissions { … }` in the Caddyfile).
    Denied(String),
    /// A bad argument: invalid JSON parameters, a URL that is not http(s)…
    Invalid(String),
    /// A value or result over its limit (KV values: 1 MiB).
    TooLarge(String),
    /// The store answered with an error, e.g. malformed SQL or a constraint.
    Backend(String),
    /// The store or remote host cannot be reached (or no gojinn host: native code).
    Unavailable(String),
    /// The request's deadline passed.
    Timeout(String),
    /// A code this SDK version does not know.
    Other(i64, String),
}

impl Error {
    /// The error for ABI code `code`, with the host's last error message.
    pub(crate) fn from_code(code: i64) -> Self {
        let msg = crate::sys::last_error();
        match code {
            code::DENIED => Error::Denied(msg),
            code::INVALID => Error::Invalid(msg),
            code::TOO_LARGE => Error::TooLarge(msg),
            code::BACKEND => Error::Backend(msg),
            code::UNAVAILABLE => Error::Unavailable(msg),
            code::TIMEOUT => Error::Timeout(msg),
            other => Error::Other(other, msg),
        }
    }

    /// The host's message.
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::Invalid(m)
            | Error::TooLarge(m)
            | Error::Backend(m)
            | Error::Unavailable(m)
            | Error::Timeout(m)
            | Error::Other(_, m) => m,
        }
    }

    /// A suggested HTTP status for answering a client when this error ends the
    /// request: 403 denied, 400 invalid, 413 too large, 502 backend error,
    /// 503 unavailable, 504 timeout.
    pub fn status(&self) -> u16 {
        match self {
            Error::Denied(_) => 403,
            Error::Invalid(_) => 400,
            Error::TooLarge(_) => 413,
            Error::Backend(_) | Error::Other(..) => 502,
            Error::Unavailable(_) => 503,
            Error::Timeout(_) => 504,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
