//! The one place where a failure becomes an HTTP status.
//!
//! The client gets the status and a short fixed body; the detail goes to the log
//! with the request's trace id (see the handler).

use gojinn_contract::ContractError;
use gojinn_runtime::Fault;
use http::StatusCode;

/// Every way a request can fail.
#[derive(Debug)]
pub enum Failure {
    /// No site or route matched.
    NotFound,
    /// The request body is over the route's cap.
    BodyTooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The request body could not be read (client error or disconnect).
    BadBody(String),
    /// The sandbox failed.
    Fault(Fault),
    /// The guest's stdout broke the contract.
    Contract(ContractError),
    /// The server's shutdown grace period ran out while the request was running.
    ShuttingDown,
}

impl Failure {
    /// A short stable name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::NotFound => "not_found",
            Failure::BodyTooLarge { .. } => "body_too_large",
            Failure::BadBody(_) => "bad_body",
            Failure::Fault(f) => f.kind(),
            Failure::Contract(_) => "contract",
            Failure::ShuttingDown => "shutdown",
        }
    }

    /// The status and client body for this failure.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Failure::NotFound => (StatusCode::NOT_FOUND, "not found\n"),
            Failure::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
            }
            Failure::BadBody(_) => (StatusCode::BAD_REQUEST, "bad request body\n"),
            Failure::Fault(Fault::Timeout) => (StatusCode::GATEWAY_TIMEOUT, "function timed out\n"),
            Failure::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n"),
            Failure::Fault(Fault::Overload) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "function is busy, retry later\n",
            ),
            Failure::Fault(
                Fault::Trap(_) | Fault::Exit(_) | Fault::Memory(_) | Fault::OutputCap { .. },
            )
            | Failure::Contract(_) => (StatusCode::BAD_GATEWAY, "function failed\n"),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound => f.write_str("no route matched"),
            Failure::BodyTooLarge { limit } => write!(f, "request body over {limit} bytes"),
            Failure::BadBody(e) => write!(f, "cannot read request body: {e}"),
            Failure::Fault(fault) => fault.fmt(f),
            Failure::Contract(e) => e.fmt(f),
            Failure::ShuttingDown => f.write_str("interrupted by shutdown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_table() {
        let s = |f: Failure| f.status().0.as_u16();
        assert_eq!(s(Failure::NotFound), 404);
        assert_eq!(s(Failure::BodyTooLarge { limit: 1 }), 413);
        assert_eq!(s(Failure::Fault(Fault::Timeout)), 504);
        assert_eq!(s(Failure::Fault(Fault::Overload)), 503);
        assert_eq!(s(Failure::Fault(Fault::Trap("x".into()))), 502);
        assert_eq!(s(Failure::Fault(Fault::Exit(1))), 502);
        assert_eq!(s(Failure::Fault(Fault::Memory("x".into()))), 502);
        assert_eq!(s(Failure::Fault(Fault::OutputCap { limit: 1 })), 502);
        assert_eq!(s(Failure::Contract(ContractError::Empty)), 502);
        assert_eq!(s(Failure::ShuttingDown), 503);
    }
}
