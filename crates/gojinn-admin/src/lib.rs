//! The Gojinn admin listener (the `admin` global option, default
//! `localhost:2019`; `admin off` disables it).
//!
//! Endpoints:
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/health` | `200 ok` while the process serves (liveness) |
//! | `GET` | `/ready` | `200 ready` once the config is loaded and every listener is bound, `503` before (a latch: see [`Ready`]) |
//! | `GET` | `/metrics` | Prometheus metrics: OpenMetrics text when the `Accept` header asks for it (as Prometheus does), else the classic text format |
//! | `GET` | `/config` | the running config as JSON, secrets redacted |
//! | `POST` | `/load` | replaces the running config with the body (`Content-Type: text/caddyfile` or `application/json`); `200` on success, `400` with the errors as text, `415` for another type; **loopback callers only** |
//! | `GET` | `/jobs?state=queued\|running\|done\|dead`, `/jobs/{id}` | jobs of the queue as JSON (state, attempts, last error, the function's response when done); **loopback callers only** |
//! | `POST` | `/jobs/{id}/retry` | puts a dead job back in the queue; **loopback callers only** |
//! | `DELETE` | `/jobs/{id}` | removes a job that is not running; **loopback callers only** |
//!
//! Any other path is `404`; a known path with another method is `405` with `Allow`.
//! Mutating endpoints (`/load`) answer only callers connecting from a loopback
//! address (`403` otherwise), so that exposing the read-only endpoints on a
//! network interface does not expose control of the server.
//!
//! This crate owns the listener and the routing of these endpoints. What the
//! server *is* (its config, how it reloads, what it measures) is behind
//! [`Control`] and the metrics [`Registry`], supplied by the binary.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Largest `/load` body accepted (a config, not a payload).
pub const MAX_LOAD_BODY_BYTES: usize = 4 << 20;

/// Time an admin client has to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin server asks of the running server.
pub trait Control: Send + Sync + 'static {
    /// The running config as JSON, secrets redacted.
    fn config_json(&self) -> serde_json::Value;
    /// Replaces the running config with `body` (a Caddyfile or JSON config).
    fn load(
        &self,
        body: bytes::Bytes,
        format: ConfigFormat,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Vec<String>>> + Send>>;
    /// The job API: `method` on `path` (under `/jobs`) with `query`; the
    /// status and JSON to answer.
    fn jobs(
        &self,
        method: Method,
        path: String,
        query: Option<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = (StatusCode, serde_json::Value)> + Send>>;
}

/// The config format a `/load` body is in, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// `text/caddyfile`.
    Caddyfile,
    /// `application/json`.
    Json,
}

/// The readiness latch: false until [`Ready::set`], then true for good.
#[derive(Debug, Clone, Default)]
pub struct Ready(Arc<AtomicBool>);

impl Ready {
    /// A latch that is not set.
    pub fn new() -> Ready {
        Ready::default()
    }

    /// Flips the latch: the config is loaded and the listeners are bound.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`Ready::set`] was called.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Everything the admin endpoints answer from.
#[derive(Clone)]
pub struct Admin {
    /// The running server.
    pub control: Arc<dyn Control>,
    /// The metrics exposed on `/metrics`.
    pub registry: Arc<Registry>,
    /// The readiness latch behind `/ready`.
    pub ready: Ready,
}

/// The admin address as a bindable `host:port`: Caddy's `:2019` form (no host)
/// means every interface.
pub fn bind_address(configured: &str) -> String {
    match configured.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => configured.to_owned(),
    }
}

/// Binds the admin address (`host:port`, host names resolved).
pub async fn bind(configured: &str) -> std::io::Result<TcpListener> {
    let addr = bind_address(configured);
    TcpListener::bind(&addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot bind the admin address `{configured}`: {e}"),
        )
    })
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, admin: Admin) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, port = addr.port(), "admin listening");
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&admin, peer, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    resp.headers_mut()
        .insert(ALLOW, http::HeaderValue::from_static(allow));
    resp
}

/// Whether a caller may use mutating endpoints.
fn is_loopback(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

async fn handle(admin: &Admin, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let read_only = |m: &Method| m == Method::GET || m == Method::HEAD;
    match req.uri().path() {
        "/health" if read_only(req.method()) => text(StatusCode::OK, "ok\n"),
        "/ready" if read_only(req.method()) => {
            if admin.ready.is_set() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        "/metrics" if read_only(req.method()) => metrics(&admin.registry, wants_openmetrics(&req)),
        "/config" if read_only(req.method()) => {
            let body = serde_json::to_vec_pretty(&admin.control.config_json()).unwrap_or_default();
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        "/health" | "/ready" | "/metrics" | "/config" => method_not_allowed("GET, HEAD"),
        "/load" if req.method() == Method::POST => load(admin, peer, req).await,
        "/load" => method_not_allowed("POST"),
        p if p == "/jobs" || p.starts_with("/jobs/") => {
            // Jobs carry request bodies and can be changed: loopback only.
            if !is_loopback(peer) {
                return text(
                    StatusCode::FORBIDDEN,
                    "the job API answers loopback callers only\n",
                );
            }
            let (status, json) = admin
                .control
                .jobs(
                    req.method().clone(),
                    p.to_owned(),
                    req.uri().query().map(str::to_owned),
                )
                .await;
            let mut resp = text(status, serde_json::to_vec_pretty(&json).unwrap_or_default());
            resp.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Whether the scraper asked for OpenMetrics (Prometheus does); anyone else,
/// `curl` and `promtool` included, gets the classic text format.
fn wants_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

fn metrics(registry: &Registry, openmetrics: bool) -> Response<Body> {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "cannot encode metrics");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n");
    }
    let (body, content_type) = if openmetrics {
        (
            out,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            classic_text(&out),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut resp = text(StatusCode::OK, body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4): a counter's
/// family is named with its `_total` suffix there, and there is no `# EOF` or
/// `# UNIT`. Samples are the same in both.
fn classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(&name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

async fn load(admin: &Admin, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    if !is_loopback(peer) {
        return text(
            StatusCode::FORBIDDEN,
            "/load answers only loopback callers\n",
        );
    }
    let media_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let format = match media_type.as_deref() {
        Some("text/caddyfile") => ConfigFormat::Caddyfile,
        Some("application/json") => ConfigFormat::Json,
        _ => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "/load takes `Content-Type: text/caddyfile` or `application/json`\n",
            )
        }
    };
    let body = match Limited::new(req.into_body(), MAX_LOAD_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "config too large\n")
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "cannot read the request body\n"),
    };
    let load: Pin<Box<dyn Future<Output = _> + Send>> = admin.control.load(body, format);
    match load.await {
        Ok(()) => text(StatusCode::OK, "loaded\n"),
        Err(errors) => {
            let mut body = errors.join("\n");
            body.push('\n');
            text(StatusCode::BAD_REQUEST, body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_includes_mapped_ipv4() {
        let p = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert!(is_loopback(p("127.0.0.1:1")));
        assert!(is_loopback(p("[::1]:1")));
        assert!(is_loopback(p("[::ffff:127.0.0.1]:1")));
        assert!(!is_loopback(p("10.0.0.1:1")));
        assert!(!is_loopback(p("[::ffff:10.0.0.1]:1")));
    }

    #[test]
    fn classic_text_names_counter_families_with_total() {
        let om = "# HELP a_x Help\n# TYPE a_x counter\na_x_total{k=\"v\"} 1\n# HELP g G\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP a_x_total Help\n# TYPE a_x_total counter\na_x_total{k=\"v\"} 1\n# HELP g G\n# TYPE g gauge\ng 2\n"
        );
    }

    #[test]
    fn hostless_admin_address_binds_every_interface() {
        assert_eq!(bind_address(":2019"), "0.0.0.0:2019");
        assert_eq!(bind_address("localhost:2019"), "localhost:2019");
    }
}
