//! Request dispatch: site and route selection, then the handlers.

use crate::app::{App, FunctionRoute, Node, RouteRt};
use crate::error::{failure_response, Failure, FaultKind};
use crate::otel::Tracer;
use bytes::Bytes;
use gojinn_contract::Request as GuestRequest;
use gojinn_runtime::Fault;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The response body type of every handler.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Longest guest stderr line logged as one event; the rest of the line is cut.
const MAX_LOG_LINE_BYTES: usize = 4096;

/// Headers that frame the message; the server computes them, a guest's values are
/// ignored so a function cannot desynchronise the connection.
const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Handles one request. Infallible toward hyper: every failure becomes a response.
///
/// `stopping` is the server's "grace period over" flag: a request dropped while
/// it is set was interrupted by the shutdown (logged there), not left by its client.
pub(crate) async fn dispatch(
    app: &App,
    port: u16,
    req: Request<Incoming>,
    stopping: &AtomicBool,
) -> Response<Body> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let site = app.site(port, request_host(&req));
    let entry = site
        .and_then(|s| s.log.as_ref())
        .and_then(|log| log.start(&req));
    let resp = route_request(app, site, req, path, started, stopping).await;
    match entry {
        Some(entry) => entry.finish(resp),
        None => resp,
    }
}

/// Handles a request on `site`'s routes (`None`: no site for its port and host).
async fn route_request(
    app: &App,
    site: Option<&crate::app::SiteRt>,
    mut req: Request<Incoming>,
    path: String,
    started: Instant,
    stopping: &AtomicBool,
) -> Response<Body> {
    let mut query = req.uri().query().map(str::to_owned);
    let hit = site.and_then(|site| find(&site.routes, &path, &mut query));
    if query.as_deref() != req.uri().query() {
        // A `try_files` entry with a query string replaced the request's.
        let pq = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    let Some((route, inner_path)) = hit else {
        let resp = failure_response(&Failure::NotFound);
        app.metrics.unmatched().record(req.method(), resp.status());
        return resp;
    };
    let method = req.method().clone();
    let resp = match &route.node {
        Node::Respond { status, body } => {
            let mut resp = Response::new(full(body.clone()));
            *resp.status_mut() = *status;
            if !body.is_empty() {
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            resp
        }
        Node::Files(files) => files.serve(req, &inner_path).await,
        Node::TryFiles(t) => {
            // `find` returns a `try_files` route only when it answers with its status.
            let mut resp = Response::new(full(Bytes::new()));
            *resp.status_mut() = t.status();
            resp
        }
        Node::Function(function) => {
            let uri = if inner_path == path {
                req.uri()
                    .path_and_query()
                    .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned())
            } else {
                match req.uri().query() {
                    Some(q) => format!("{inner_path}?{q}"),
                    None => inner_path,
                }
            };
            call_function(function, app.tracer.as_ref(), req, uri, started, stopping).await
        }
        // `find` only returns leaves.
        Node::Subroute { .. } => failure_response(&Failure::NotFound),
    };
    route.requests.record(&method, resp.status());
    resp
}

/// The host a request is for, without a port (compared case-insensitively).
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    let raw = match req.uri().host() {
        Some(host) => host,
        None => req.headers().get(HOST)?.to_str().ok()?,
    };
    let host = if raw.starts_with('[') {
        // IPv6 literal: keep the brackets, drop a port after them.
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.split(':').next().unwrap_or(raw)
    };
    Some(host)
}

/// The first leaf that matches `path`, with the path as the leaf sees it (after any
/// `handle_path` stripping and `try_files` rewriting; a `try_files` entry with a
/// query string replaces `query`). Routes sharing a group are mutually exclusive;
/// a subroute whose children all miss lets evaluation continue after it.
fn find<'a>(
    routes: &'a [RouteRt],
    path: &str,
    query: &mut Option<String>,
) -> Option<(&'a RouteRt, String)> {
    let mut groups_done: Vec<&str> = Vec::new();
    // Rewritten by a `try_files` route, for the routes after it.
    let mut path = std::borrow::Cow::Borrowed(path);
    // Matching is case-insensitive; most paths are lower-case already.
    let lowered = |p: &str| {
        if p.bytes().any(|b| b.is_ascii_uppercase()) {
            Some(p.to_ascii_lowercase())
        } else {
            None
        }
    };
    let mut lower = lowered(&path);
    for route in routes {
        if let Some(group) = route.group.as_deref() {
            if groups_done.contains(&group) {
                continue;
            }
        }
        let matched_on = lower.as_deref().unwrap_or(&path);
        if route
            .matcher
            .as_ref()
            .is_some_and(|m| !m.matches(matched_on))
        {
            continue;
        }
        if let Some(group) = route.group.as_deref() {
            groups_done.push(group);
        }
        match &route.node {
            Node::Subroute {
                strip_prefix,
                routes,
            } => {
                let inner = match strip_prefix {
                    Some(prefix) => strip_path(&path, prefix),
                    None => path.to_string(),
                };
                if let Some(hit) = find(routes, &inner, query) {
                    return Some(hit);
                }
            }
            Node::TryFiles(t) => match t.apply(&path, query.as_deref()) {
                crate::try_files::Outcome::Rewrite(p, q) => {
                    lower = lowered(&p);
                    path = std::borrow::Cow::Owned(p);
                    if q.is_some() {
                        *query = q;
                    }
                }
                crate::try_files::Outcome::Status(_) => return Some((route, path.into_owned())),
                crate::try_files::Outcome::Unchanged => {}
            },
            _ => return Some((route, path.into_owned())),
        }
    }
    None
}

/// `path` without `prefix` (compared case-insensitively, as matching is), never empty.
fn strip_path(path: &str, prefix: &str) -> String {
    let rest = match path.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &path[prefix.len()..],
        _ => path,
    };
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

/// A function request until it answers. Dropped before [`Pending::answered`],
/// the request future was dropped: hyper does that when the client closes its
/// connection, which also drops the sandbox mid-call. That is logged (status
/// 499, as nginx names it) and counted, so a client that leaves is visible.
struct Pending<'a> {
    route: &'a FunctionRoute,
    method: &'a http::Method,
    uri: &'a str,
    started: Instant,
    stopping: &'a AtomicBool,
    answered: bool,
}

impl Pending<'_> {
    fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.answered || self.stopping.load(Ordering::Acquire) {
            return;
        }
        self.route.metrics.record_abandoned();
        tracing::info!(
            target: "gojinn::access",
            route = %self.route.label,
            method = %self.method,
            uri = %self.uri,
            status = 499_u16,
            duration_us = self.started.elapsed().as_micros() as u64,
            "request abandoned: the client closed the connection; its sandbox was dropped"
        );
    }
}

/// Runs a function route and writes its access-log line.
async fn call_function(
    route: &FunctionRoute,
    tracer: Option<&Tracer>,
    req: Request<Incoming>,
    uri: String,
    started: Instant,
    stopping: &AtomicBool,
) -> Response<Body> {
    let method = req.method().clone();
    let pending = Pending {
        route,
        method: &method,
        uri: &uri,
        started,
        stopping,
        answered: false,
    };
    let debug = crate::debug::wants_logs(route.debug_secret.as_deref(), req.headers());
    let span = crate::otel::RequestSpan::start(
        tracer,
        req.headers(),
        &method,
        req.uri().path(),
        &route.label,
        &route.function.spec().module,
    );
    // Without an incoming id, a traced request's fresh traceparent is its server
    // span, so the function's log lines lead to its trace.
    let trace_id = crate::trace::incoming(req.headers()).unwrap_or_else(|| {
        span.as_ref().map_or_else(
            crate::trace::fresh_traceparent,
            crate::otel::RequestSpan::traceparent,
        )
    });
    let ran = run_function(route, req, &uri, &trace_id, debug, span.is_some()).await;
    pending.answered();
    let mut resp = ran.resp;
    if let Some(stderr) = ran.stderr {
        resp.headers_mut().insert(
            crate::debug::LOGS_HEADER,
            crate::debug::logs_header(&stderr),
        );
    }
    route
        .metrics
        .record_duration(started.elapsed(), resp.status());
    if let Some(span) = span {
        span.finish(resp.status(), ran.fault.map(FaultKind::name), ran.times);
    }
    access_log(
        route,
        &method,
        &uri,
        resp.status(),
        started,
        ran.sandbox,
        &trace_id,
    );
    resp
}

/// What running a function route produced.
struct Ran {
    resp: Response<Body>,
    /// Time spent in the sandbox, when one ran.
    sandbox: Option<std::time::Duration>,
    /// The guest's stderr, when the debug header asked for it.
    stderr: Option<Vec<u8>>,
    /// The failure's kind, if the request failed.
    fault: Option<FaultKind>,
    /// The sandbox's timings for trace spans, when tracing is on and one ran.
    times: Option<crate::otel::SandboxTimes>,
}

/// Runs the function of `route` on `req`.
async fn run_function(
    route: &FunctionRoute,
    req: Request<Incoming>,
    uri: &str,
    trace_id: &str,
    debug: bool,
    traced: bool,
) -> Ran {
    let (parts, body) = req.into_parts();
    let log_failure = |failure: &Failure, detail: Option<&str>| {
        route.metrics.record_fault(failure.kind());
        tracing::warn!(
            target: "gojinn::fault",
            route = %route.label,
            trace_id = %trace_id,
            fault = failure.kind().name(),
            detail = detail.unwrap_or_default(),
            "{failure}"
        );
    };

    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = route.max_body_size;
    let body = if declared.is_some_and(|n| n > limit) {
        Err(Failure::BodyTooLarge { limit })
    } else {
        let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
        match limited.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(Failure::BodyTooLarge { limit })
            }
            Err(e) => Err(Failure::BadBody(e.to_string())),
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(failure) => {
            log_failure(&failure, None);
            return Ran {
                resp: failure_response(&failure),
                sandbox: None,
                stderr: None,
                fault: Some(failure.kind()),
                times: None,
            };
        }
    };

    let guest_request = GuestRequest::new(
        parts.method.as_str(),
        uri,
        parts
            .headers
            .iter()
            // Go keeps `Host` out of the header map (it is `r.Host`); so do we.
            .filter(|(name, _)| *name != HOST)
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
        &body,
        trace_id.to_owned(),
    );
    drop(body);
    // Off by default (a cached callsite check); tests of shutdown and reload
    // turn it on to know a call is in flight.
    tracing::debug!(target: "gojinn::call", route = %route.label, trace_id = %trace_id, "call started");
    let outcome = {
        let _in_flight = route.metrics.in_flight();
        route.function.invoke(&guest_request, trace_id).await
    };
    let times = traced.then(|| crate::otel::SandboxTimes {
        end: std::time::SystemTime::now(),
        instantiate: outcome.instantiate_time,
        run: outcome.run_time,
    });
    drop(guest_request);
    route.metrics.record_call(&outcome);

    log_guest_stderr(route, trace_id, &outcome.stderr, outcome.stderr_dropped);
    let sandbox = outcome.instantiate_time + outcome.run_time;

    let (resp, fault) = match outcome.result.and_then(build_response) {
        Ok(resp) => (resp, None),
        Err(fault) => {
            let detail = match &fault {
                Fault::Contract { stdout, .. } => Some(stdout.clone()),
                _ => None,
            };
            let failure = Failure::Fault(fault);
            log_failure(&failure, detail.as_deref());
            (failure_response(&failure), Some(failure.kind()))
        }
    };
    Ran {
        resp,
        sandbox: Some(sandbox),
        stderr: debug.then_some(outcome.stderr),
        fault,
        // An overloaded call never had a sandbox: no child spans.
        times: times.filter(|_| fault != Some(FaultKind::Overload)),
    }
}

/// The HTTP response of a decoded guest response; a header HTTP cannot carry is
/// a contract fault.
fn build_response(decoded: gojinn_contract::Response) -> Result<Response<Body>, Fault> {
    let mut resp = Response::new(full(decoded.body));
    // `decode_response` allows only 100–599, which `from_u16` accepts.
    *resp.status_mut() = StatusCode::from_u16(decoded.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    for (name, value) in decoded.headers {
        let contract_err = |reason: &str| Fault::Contract {
            error: gojinn_contract::ContractError::HeaderValue {
                name: name.clone(),
                reason: reason.to_owned(),
            },
            stdout: String::new(),
        };
        let name_l = name.to_ascii_lowercase();
        if FRAMING_HEADERS.contains(&name_l.as_str()) {
            continue;
        }
        let hname = HeaderName::from_bytes(name_l.as_bytes())
            .map_err(|_| contract_err("invalid header name"))?;
        let hvalue =
            HeaderValue::from_str(&value).map_err(|_| contract_err("invalid header value"))?;
        headers.append(hname, hvalue);
    }
    Ok(resp)
}

fn log_guest_stderr(route: &FunctionRoute, trace_id: &str, stderr: &[u8], dropped: u64) {
    for line in stderr.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let cut = &line[..line.len().min(MAX_LOG_LINE_BYTES)];
        tracing::info!(
            target: "gojinn::guest",
            route = %route.label,
            trace_id = %trace_id,
            "{}",
            String::from_utf8_lossy(cut)
        );
    }
    if dropped > 0 {
        tracing::warn!(
            target: "gojinn::guest",
            route = %route.label,
            trace_id = %trace_id,
            dropped_bytes = dropped,
            "guest stderr over its cap; the rest was dropped"
        );
    }
}

fn access_log(
    route: &FunctionRoute,
    method: &http::Method,
    uri: &str,
    status: StatusCode,
    started: Instant,
    sandbox: Option<std::time::Duration>,
    trace_id: &str,
) {
    tracing::info!(
        target: "gojinn::access",
        route = %route.label,
        method = %method,
        uri = %uri,
        status = status.as_u16(),
        duration_us = started.elapsed().as_micros() as u64,
        sandbox_us = sandbox.map_or(0, |d| d.as_micros() as u64),
        trace_id = %trace_id,
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_path_keeps_a_leading_slash() {
        assert_eq!(strip_path("/api/x", "/api"), "/x");
        assert_eq!(strip_path("/api", "/api"), "/");
        assert_eq!(strip_path("/API/x", "/api"), "/x");
        assert_eq!(strip_path("/other", "/api"), "/other");
    }
}
