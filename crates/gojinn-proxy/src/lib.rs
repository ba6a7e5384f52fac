//! Gojinn's `reverse_proxy` handler: what happens to a request once a route
//! sends it to upstreams.
//!
//! This crate owns choosing an upstream (`lb_policy`, retries within
//! `lb_retries` / `lb_try_duration`), the upstreams' health (active checks in a
//! background task per upstream, passive counting of failed requests), the
//! request and response header rules (hop-by-hop headers, `X-Forwarded-*`,
//! `header_up` / `header_down`), and forwarding with hyper-util's pooled client,
//! bodies streamed frame by frame both ways. It leaves parsing to
//! `gojinn-config` and turning a [`ProxyError`] into a response to
//! `gojinn-http`'s status table.

mod body;
mod headers;
mod health;
mod pool;
mod tls;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gojinn_config::proxy::HttpVersion;
use gojinn_config::ReverseProxy;
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use body::Outbound;
pub use body::ResponseBody;
use headers::HeaderRules;
use pool::{Host, Pool};

/// Who sent a request: what `X-Forwarded-*` and the `{remote…}` placeholders say.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    /// The client's address (the TCP peer).
    pub remote: SocketAddr,
    /// The request came over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
}

/// Why a request got no upstream response. Each maps to one status in
/// `gojinn-http`'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No upstream was available (all unhealthy or at their request limit): 503.
    NoUpstream,
    /// The upstream did not send its response head within
    /// `response_header_timeout`: 504.
    Timeout,
    /// The upstream could not be reached, reset the connection or answered
    /// something that is not HTTP: 502.
    Upstream,
}

/// A request that got no upstream response, with what the log needs.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ProxyError {
    /// What went wrong, for the status.
    pub kind: ErrorKind,
    /// The upstream last tried, if any.
    pub upstream: Option<String>,
    /// The detail for the log line.
    pub detail: String,
    /// How many times the request was tried again.
    pub retries: u32,
}

/// A successful proxy round trip: the response and the upstream that gave it.
pub struct Proxied {
    /// The response, header rules applied, its body streaming from the upstream.
    pub response: Response<ResponseBody>,
    /// `host:port` of the upstream.
    pub upstream: String,
    /// How many times the request was tried again before this answer.
    pub retries: u32,
}

/// One `reverse_proxy` handler, ready to serve.
pub struct Proxy {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ReverseProxy,
    pub(crate) pool: Pool,
    pub(crate) client: UpstreamClient,
    /// HTTP/1.1 only, for `Upgrade` requests when `client` may speak HTTP/2.
    upgrade_client: Option<UpstreamClient>,
    pub(crate) rules: HeaderRules,
    /// `http` or `https`: the scheme of upstream URIs.
    pub(crate) scheme: &'static str,
}

impl Proxy {
    /// Builds the handler from its config: the pool of upstreams and the HTTP
    /// client. An error names what the server cannot do for this config.
    pub fn new(config: &ReverseProxy) -> Result<Proxy, String> {
        let t = &config.transport;
        let h2 = t.tls && (t.versions.is_empty() || t.versions.contains(&HttpVersion::H2));
        let client = build_client(t, h2)?;
        // An upgrade needs HTTP/1.1 end to end: where ALPN could pick h2, upgrades
        // get a client of their own that offers only HTTP/1.1.
        let upgrade_client = if h2 {
            Some(build_client(t, false)?)
        } else {
            None
        };
        Ok(Proxy {
            inner: Arc::new(Inner {
                pool: Pool::new(config),
                rules: HeaderRules::new(config)?,
                client,
                upgrade_client,
                scheme: if t.tls { "https" } else { "http" },
                config: config.clone(),
            }),
        })
    }

    /// Starts the active health checks, if configured, on the current tokio
    /// runtime. They stop when the handler is dropped (at the next reload).
    pub fn start_health_checks(&self) {
        health::start(&self.inner);
    }

    /// Forwards `req` to an upstream and returns its response, or why there is
    /// none. Never buffers a body: both stream.
    pub async fn serve(
        &self,
        req: Request<Incoming>,
        client: ClientInfo,
    ) -> Result<Proxied, ProxyError> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let started = Instant::now();
        let (mut parts, body) = req.into_parts();
        let upgrade = headers::prepare_request(&mut parts, &client, &inner.rules);
        // The client's side of a protocol switch, taken before the tries so
        // that the one that gets a 101 joins it to the upstream's side.
        let mut client_upgrade = if upgrade {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        let body = body::Reclaim::new(body);
        let try_duration = Duration::from_millis(cfg.lb_try_duration_ms);
        let try_interval = Duration::from_millis(cfg.lb_try_interval_ms);
        let mut retries = 0;
        loop {
            let (err, reached) = match inner.pool.select(cfg, &parts, &client) {
                None => (
                    ProxyError {
                        kind: ErrorKind::NoUpstream,
                        upstream: None,
                        detail: "no upstream is available".to_owned(),
                        retries,
                    },
                    false,
                ),
                Some(host) => match self
                    .attempt(&host, &parts, &body, &client, &mut client_upgrade)
                    .await
                {
                    Ok(response) => {
                        return Ok(Proxied {
                            response,
                            upstream: host.dial.clone(),
                            retries,
                        })
                    }
                    Err((kind, detail, dial_error)) => {
                        inner.pool.count_failure(&host, cfg);
                        (
                            ProxyError {
                                kind,
                                upstream: Some(host.dial.clone()),
                                detail,
                                retries,
                            },
                            !dial_error,
                        )
                    }
                },
            };
            // Caddy's rule: a request that may have reached an upstream is
            // tried again only if it is a GET (and, here, only if no byte of its
            // body was sent, since the body is streamed, not kept).
            let retry_allowed =
                (!reached || parts.method == http::Method::GET) && body.reclaimable();
            let within = (cfg.lb_try_duration_ms > 0 || cfg.lb_retries > 0)
                && (cfg.lb_try_duration_ms == 0 || started.elapsed() < try_duration)
                && (cfg.lb_retries == 0 || retries < cfg.lb_retries);
            if !(retry_allowed && within) {
                return Err(err);
            }
            tracing::debug!(target: "gojinn::proxy", upstream = err.upstream.as_deref().unwrap_or("-"), error = %err.detail, "trying again");
            retries += 1;
            if !try_interval.is_zero() {
                tokio::time::sleep(try_interval).await;
            }
        }
    }

    /// One try on `host`. The error says whether it happened while dialling
    /// (then the request never left). A `101 Switching Protocols` joins
    /// `client_upgrade` (the client's side, present when the client asked to
    /// switch) to the upstream's side in a task of its own.
    async fn attempt(
        &self,
        host: &Arc<Host>,
        parts: &http::request::Parts,
        body: &body::Reclaim,
        client: &ClientInfo,
        client_upgrade: &mut Option<OnUpgrade>,
    ) -> Result<Response<ResponseBody>, (ErrorKind, String, bool)> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let mut req = Request::new(body.outbound());
        *req.method_mut() = parts.method.clone();
        *req.version_mut() = http::Version::HTTP_11;
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        *req.uri_mut() = Uri::try_from(format!("{}://{}{pq}", inner.scheme, host.dial))
            .map_err(|e| (ErrorKind::Upstream, format!("bad upstream URI: {e}"), true))?;
        *req.headers_mut() = parts.headers.clone();
        inner
            .rules
            .apply(false, req.headers_mut(), parts, client, &host.dial);
        let in_flight = host.start();
        let sent = Instant::now();
        let client_for = match (&inner.upgrade_client, client_upgrade.is_some()) {
            (Some(h1), true) => h1,
            _ => &inner.client,
        };
        let call = client_for.request(req);
        let result = match cfg.transport.response_header_timeout_ms {
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), call).await {
                Ok(r) => r,
                Err(_) => {
                    return Err((
                        ErrorKind::Timeout,
                        format!("no response head within {ms} ms"),
                        false,
                    ))
                }
            },
            None => call.await,
        };
        let mut resp = result.map_err(|e| {
            let dial = e.is_connect();
            (ErrorKind::Upstream, error_chain(&e), dial)
        })?;
        let latency = sent.elapsed();
        let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        let in_flight = if switched {
            let Some(client_side) = client_upgrade.take() else {
                return Err((
                    ErrorKind::Upstream,
                    "upstream switched protocols though the client did not ask to".to_owned(),
                    false,
                ));
            };
            let upstream_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(upgrade::tunnel(
                client_side,
                upstream_side,
                in_flight,
                host.dial.clone(),
            ));
            None
        } else {
            Some(in_flight)
        };
        if inner.pool.unhealthy_response(resp.status(), latency, cfg) {
            inner.pool.count_failure(host, cfg);
        }
        let (mut head, incoming) = resp.into_parts();
        headers::prepare_response(&mut head.headers, switched);
        inner
            .rules
            .apply(true, &mut head.headers, parts, client, &host.dial);
        Ok(Response::from_parts(
            head,
            ResponseBody::new(incoming, in_flight, host.dial.clone()),
        ))
    }
}

type UpstreamClient = Client<HttpsConnector<HttpConnector>, Outbound>;

/// The pooled client of a transport; `h2` offers HTTP/2 by ALPN on TLS.
fn build_client(t: &gojinn_config::proxy::Transport, h2: bool) -> Result<UpstreamClient, String> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_millis(t.dial_timeout_ms)));
    http.set_nodelay(true);
    // The TLS connector wraps the plain one: it only does TLS for `https`
    // URIs, which the handler makes only when `tls` is on.
    http.enforce_http(false);
    let schemes = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(t)?)
        .https_or_http();
    let schemes = match &t.tls_server_name {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("invalid tls_server_name `{name}`: {e}"))?;
            schemes.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => schemes,
    };
    let connector = if h2 {
        schemes.enable_http1().enable_http2().wrap_connector(http)
    } else {
        schemes.enable_http1().wrap_connector(http)
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(POOL_IDLE_TIMEOUT);
    if t.h2c() {
        builder.http2_only(true);
    }
    Ok(builder.build(connector))
}

/// How long an idle upstream connection stays in the pool: 90 s, as Go's
/// default transport (which Caddy uses) keeps them.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// `e` and its sources, joined, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}
