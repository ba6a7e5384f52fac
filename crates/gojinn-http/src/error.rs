//! The one place where a failure becomes an HTTP status.
//!
//! Every failure has a [`FaultKind`]: its stable name (logs, metrics, trace
//! spans) and its row of the status table. The client gets the status and a
//! short fixed body; the detail goes to the log with the request's trace id (see
//! the handler).

use crate::handler::{full, Body};
use gojinn_runtime::Fault;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

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
    /// The call failed: the guest, its contract, the pool or the host.
    Fault(Fault),
    /// The server's shutdown grace period ran out while the request was running.
    ShuttingDown,
    /// `reverse_proxy` got no upstream response.
    Proxy(gojinn_proxy::ProxyError),
}

/// The kinds of failure, with their stable names and statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// No site or route matched.
    NotFound,
    /// The request body is over the route's cap.
    BodyTooLarge,
    /// The request body could not be read.
    BadBody,
    /// The call's deadline passed.
    Timeout,
    /// The call consumed its `fuel_limit`.
    Fuel,
    /// The guest trapped.
    Trap,
    /// The guest exited with a non-zero code.
    Exit,
    /// The guest went over its memory limit.
    Memory,
    /// The guest went over its stdout cap.
    OutputCap,
    /// No sandbox was free within the queue wait.
    Overload,
    /// The guest's stdout broke the response contract.
    Contract,
    /// The host could not set up what the sandbox is granted.
    Host,
    /// The shutdown grace period ended the request.
    Shutdown,
    /// `reverse_proxy`: no upstream was available.
    NoUpstream,
    /// `reverse_proxy`: the upstream sent no response head in time.
    UpstreamTimeout,
    /// `reverse_proxy`: the upstream was unreachable, reset the connection or
    /// answered something that is not HTTP.
    Upstream,
}

impl FaultKind {
    /// Every kind, in the order of their metric slots.
    pub const ALL: [FaultKind; 16] = [
        FaultKind::NotFound,
        FaultKind::BodyTooLarge,
        FaultKind::BadBody,
        FaultKind::Timeout,
        FaultKind::Fuel,
        FaultKind::Trap,
        FaultKind::Exit,
        FaultKind::Memory,
        FaultKind::OutputCap,
        FaultKind::Overload,
        FaultKind::Contract,
        FaultKind::Host,
        FaultKind::Shutdown,
        FaultKind::NoUpstream,
        FaultKind::UpstreamTimeout,
        FaultKind::Upstream,
    ];

    /// The stable name, for logs, metrics and trace spans.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NotFound => "not_found",
            FaultKind::BodyTooLarge => "body_too_large",
            FaultKind::BadBody => "bad_body",
            FaultKind::Timeout => "timeout",
            FaultKind::Fuel => "fuel",
            FaultKind::Trap => "trap",
            FaultKind::Exit => "exit",
            FaultKind::Memory => "memory",
            FaultKind::OutputCap => "output_cap",
            FaultKind::Overload => "overload",
            FaultKind::Contract => "contract",
            FaultKind::Host => "host",
            FaultKind::Shutdown => "shutdown",
            FaultKind::NoUpstream => "no_upstream",
            FaultKind::UpstreamTimeout => "upstream_timeout",
            FaultKind::Upstream => "upstream",
        }
    }

    /// The status and the client's body: the status table.
    pub fn status(self) -> (StatusCode, &'static str) {
        match self {
            FaultKind::NotFound => (StatusCode::NOT_FOUND, "not found\n"),
            FaultKind::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
            FaultKind::BadBody => (StatusCode::BAD_REQUEST, "bad request body\n"),
            FaultKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "function timed out\n"),
            // A compute budget, like the deadline: the same status.
            FaultKind::Fuel => (StatusCode::GATEWAY_TIMEOUT, "function ran out of fuel\n"),
            FaultKind::Shutdown => (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n"),
            FaultKind::Overload => (
                StatusCode::SERVICE_UNAVAILABLE,
                "function is busy, retry later\n",
            ),
            FaultKind::Trap
            | FaultKind::Exit
            | FaultKind::Memory
            | FaultKind::OutputCap
            | FaultKind::Contract => (StatusCode::BAD_GATEWAY, "function failed\n"),
            FaultKind::Host => (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n"),
            // As Caddy answers a proxy that could not get a response.
            FaultKind::NoUpstream => (StatusCode::SERVICE_UNAVAILABLE, "no upstream available\n"),
            FaultKind::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
            FaultKind::Upstream => (StatusCode::BAD_GATEWAY, "bad gateway\n"),
        }
    }

    /// Whether this is a failed function call, counted in `gojinn_faults` by
    /// route (a request refused before its call, or ended by a shutdown, is not).
    pub fn is_call_fault(self) -> bool {
        !matches!(
            self,
            FaultKind::NotFound
                | FaultKind::BodyTooLarge
                | FaultKind::BadBody
                | FaultKind::Shutdown
                | FaultKind::NoUpstream
                | FaultKind::UpstreamTimeout
                | FaultKind::Upstream
        )
    }
}

impl Failure {
    /// The kind of this failure.
    pub fn kind(&self) -> FaultKind {
        match self {
            Failure::NotFound => FaultKind::NotFound,
            Failure::BodyTooLarge { .. } => FaultKind::BodyTooLarge,
            Failure::BadBody(_) => FaultKind::BadBody,
            Failure::ShuttingDown => FaultKind::Shutdown,
            Failure::Proxy(e) => match e.kind {
                gojinn_proxy::ErrorKind::NoUpstream => FaultKind::NoUpstream,
                gojinn_proxy::ErrorKind::Timeout => FaultKind::UpstreamTimeout,
                gojinn_proxy::ErrorKind::Upstream => FaultKind::Upstream,
            },
            Failure::Fault(f) => match f {
                Fault::Timeout => FaultKind::Timeout,
                Fault::Fuel { .. } => FaultKind::Fuel,
                Fault::Trap(_) => FaultKind::Trap,
                Fault::Exit(_) => FaultKind::Exit,
                Fault::Memory(_) => FaultKind::Memory,
                Fault::OutputCap { .. } => FaultKind::OutputCap,
                Fault::Overload => FaultKind::Overload,
                Fault::Contract { .. } => FaultKind::Contract,
                Fault::Host(_) => FaultKind::Host,
            },
        }
    }

    /// The status and client body for this failure.
    pub fn status(&self) -> (StatusCode, &'static str) {
        self.kind().status()
    }
}

/// The client's response to `failure`: its status and short fixed body, and
/// `Retry-After` on 503.
pub(crate) fn failure_response(failure: &Failure) -> Response<Body> {
    let (status, body) = failure.status();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    // What `handle_errors` answers and `{err.message}` shows.
    resp.extensions_mut().insert(crate::handle_errors::Errored {
        message: body.trim_end(),
    });
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound => f.write_str("no route matched"),
            Failure::BodyTooLarge { limit } => write!(f, "request body over {limit} bytes"),
            Failure::BadBody(e) => write!(f, "cannot read request body: {e}"),
            Failure::Fault(fault) => fault.fmt(f),
            Failure::ShuttingDown => f.write_str("interrupted by shutdown"),
            Failure::Proxy(e) => write!(f, "proxy: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gojinn_contract::ContractError;

    #[test]
    fn the_failure_table() {
        let s = |f: Failure| f.status().0.as_u16();
        assert_eq!(s(Failure::NotFound), 404);
        assert_eq!(s(Failure::BodyTooLarge { limit: 1 }), 413);
        assert_eq!(s(Failure::Fault(Fault::Timeout)), 504);
        assert_eq!(s(Failure::Fault(Fault::Fuel { limit: 1 })), 504);
        assert_eq!(s(Failure::Fault(Fault::Overload)), 503);
        assert_eq!(s(Failure::Fault(Fault::Trap("x".into()))), 502);
        assert_eq!(s(Failure::Fault(Fault::Exit(1))), 502);
        assert_eq!(s(Failure::Fault(Fault::Memory("x".into()))), 502);
        assert_eq!(s(Failure::Fault(Fault::OutputCap { limit: 1 })), 502);
        let contract = Fault::Contract {
            error: ContractError::Empty,
            stdout: String::new(),
        };
        assert_eq!(s(Failure::Fault(contract)), 502);
        assert_eq!(s(Failure::Fault(Fault::Host("mount".into()))), 500);
        assert_eq!(s(Failure::ShuttingDown), 503);
    }

    fn proxy_failure(kind: gojinn_proxy::ErrorKind) -> Failure {
        Failure::Proxy(gojinn_proxy::ProxyError {
            kind,
            upstream: None,
            detail: String::new(),
            retries: 0,
        })
    }

    #[test]
    fn proxy_statuses_are_caddys() {
        let s = |k| proxy_failure(k).status().0.as_u16();
        assert_eq!(s(gojinn_proxy::ErrorKind::NoUpstream), 503);
        assert_eq!(s(gojinn_proxy::ErrorKind::Timeout), 504);
        assert_eq!(s(gojinn_proxy::ErrorKind::Upstream), 502);
    }

    /// One failure of every kind: adding a `Failure` or `Fault` variant without
    /// a kind fails to compile (the matches in `kind`), and adding a kind
    /// without a failure here fails this test.
    #[test]
    fn every_failure_has_a_kind_and_every_kind_a_failure_status_and_name() {
        let failures = [
            Failure::NotFound,
            Failure::BodyTooLarge { limit: 1 },
            Failure::BadBody("eof".into()),
            Failure::Fault(Fault::Timeout),
            Failure::Fault(Fault::Fuel { limit: 1 }),
            Failure::Fault(Fault::Trap("x".into())),
            Failure::Fault(Fault::Exit(3)),
            Failure::Fault(Fault::Memory("x".into())),
            Failure::Fault(Fault::OutputCap { limit: 1 }),
            Failure::Fault(Fault::Overload),
            Failure::Fault(Fault::Contract {
                error: ContractError::Empty,
                stdout: String::new(),
            }),
            Failure::Fault(Fault::Host("x".into())),
            Failure::ShuttingDown,
            proxy_failure(gojinn_proxy::ErrorKind::NoUpstream),
            proxy_failure(gojinn_proxy::ErrorKind::Timeout),
            proxy_failure(gojinn_proxy::ErrorKind::Upstream),
        ];
        let kinds: Vec<FaultKind> = failures.iter().map(Failure::kind).collect();
        assert_eq!(kinds, FaultKind::ALL, "one failure per kind, in slot order");
        let mut names = std::collections::HashSet::new();
        for kind in FaultKind::ALL {
            let (status, body) = kind.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{kind:?}"
            );
            assert!(
                body.ends_with('\n') && body.len() < 40,
                "{kind:?}: {body:?}"
            );
            let name = kind.name();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(names.insert(name), "`{name}` named twice");
        }
        // A host fault is the server's (500), a guest fault the function's (502).
        assert_eq!(
            FaultKind::Host.status().0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(FaultKind::Trap.status().0, StatusCode::BAD_GATEWAY);
    }
}
