//! Request dispatch: site and route selection, then the handlers.

use crate::app::{App, FunctionRoute, Node, RouteRt};
use crate::error::{failure_response, Failure, FaultKind};
use crate::exchange::Exchange;
use crate::otel::Tracer;
use crate::site::Flow;
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
    if let Some(answer) = acme_http_challenge(app, &req).await {
        return answer;
    }
    let site = {
        let host = crate::exchange::request_host(req.uri(), req.headers());
        app.site(port, host)
    };
    let entry = site
        .and_then(|s| s.log.as_ref())
        .and_then(|log| log.start(&req));
    let resp = route_request(app, site, req, started, stopping).await;
    match entry {
        Some(entry) => entry.finish(resp),
        None => resp,
    }
}

/// The answer to an ACME HTTP-01 validation request for a token this server
/// is waiting on, on any port and host, before the sites' routes see it (a
/// user's `http://` site for the name must not swallow it).
async fn acme_http_challenge(app: &App, req: &Request<Incoming>) -> Option<Response<Body>> {
    let token = req
        .uri()
        .path()
        .strip_prefix(gojinn_certs::HTTP_CHALLENGE_PREFIX)?;
    let key_auth = app.certs.as_ref()?.http_challenge(token).await?;
    tracing::debug!(target: "gojinn::tls", token, "answered an ACME HTTP-01 validation");
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(full(Bytes::from(key_auth)))
        .ok()
}

/// Handles a request on `site`'s routes (`None`: no site for its port and host).
async fn route_request(
    app: &App,
    site: Option<&crate::app::SiteRt>,
    req: Request<Incoming>,
    started: Instant,
    stopping: &AtomicBool,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let mut x = Exchange::new(&mut parts);
    let hit = site.and_then(|site| find(&site.routes, &mut x));
    let method = x.method.clone();
    // `handle_errors` routes may read the request headers after the answer.
    let keep_headers = site.is_some_and(|s| !s.errors.is_empty());
    // Read now: the answer may take the request's headers.
    let accept = x
        .encode
        .as_ref()
        .and(x.headers.get(http::header::ACCEPT_ENCODING).cloned());
    let (mut resp, requests) = match hit {
        Some(Hit::Leaf(route)) => {
            let node = &route.node;
            let resp = match node {
                Node::Respond { status, body } => respond(*status, body.render(&x, None)),
                Node::Files(files) => {
                    // The file is the path routing left; the request keeps its
                    // own path, from which a directory's redirect is built, as
                    // Caddy does, and takes the query routing left.
                    parts.headers = x.take_headers(keep_headers);
                    if parts.uri.query() != x.query.as_deref() {
                        let pq = match &x.query {
                            Some(q) => format!("{}?{q}", parts.uri.path()),
                            None => parts.uri.path().to_owned(),
                        };
                        if let Ok(uri) = pq.parse() {
                            parts.uri = uri;
                        }
                    }
                    let resp = files.serve(Request::from_parts(parts, body), &x.path).await;
                    crate::handle_errors::mark_file_error(resp)
                }
                Node::TryFiles(t) => {
                    // `find` returns a `try_files` route only when it answers
                    // with its status (`=404`): an error `handle_errors` sees.
                    let mut resp = Response::new(full(Bytes::new()));
                    *resp.status_mut() = t.status();
                    crate::handle_errors::mark_file_error(resp)
                }
                Node::Function(function) => {
                    let uri = x.uri();
                    x.restore(&mut parts, keep_headers);
                    let req = Request::from_parts(parts, body);
                    call_function(function, app.tracer.as_ref(), req, uri, started, stopping).await
                }
                Node::Proxy(proxy) => {
                    x.restore(&mut parts, keep_headers);
                    let req = Request::from_parts(parts, body);
                    crate::proxy::serve(proxy, req, started).await
                }
                // `find` only returns leaves.
                Node::Subroute { .. } | Node::Site(_) | Node::Encode(_) => {
                    failure_response(&Failure::NotFound)
                }
            };
            (resp, Some(&route.requests))
        }
        Some(Hit::Answer(route, resp)) => (resp, Some(&route.requests)),
        None => (failure_response(&Failure::NotFound), None),
    };
    if let Some(site) = site.filter(|_| keep_headers) {
        resp = crate::handle_errors::handle(&site.errors, &mut x, resp).await;
    }
    crate::site::finish(&mut resp, &x);
    if let Some(e) = x.encode.take() {
        resp = e.apply(accept, resp).await;
    }
    match requests {
        Some(counters) => counters.record(&method, resp.status()),
        None => app.metrics.unmatched().record(&method, resp.status()),
    }
    resp
}

/// `respond`'s answer: `status`, and `body` as plain text.
pub(crate) fn respond(status: StatusCode, body: String) -> Response<Body> {
    let empty = body.is_empty();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    if !empty {
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}

/// Where the walk of the routes ended.
pub(crate) enum Hit<'a> {
    /// A leaf that answers the request.
    Leaf(&'a RouteRt),
    /// A site handler (`redir`, a refused `basic_auth`) answered on the way.
    Answer(&'a RouteRt, Response<Body>),
}

/// Whether `route`'s matchers accept the request as it is now.
fn route_matches(route: &RouteRt, x: &mut Exchange) -> bool {
    if route.matcher.is_none() && route.conditions.is_none() {
        return true;
    }
    // Path matching is case-insensitive; most paths are lower-case already.
    let lower = if x.path.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(x.path.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(x.path.as_str())
    };
    if route.matcher.as_ref().is_some_and(|m| !m.matches(&lower)) {
        return false;
    }
    let Some(conditions) = &route.conditions else {
        return true;
    };
    // The conditions record regexp captures in `x`, so the path is copied.
    let lower = lower.into_owned();
    conditions.matches(x, &lower)
}

/// The first leaf whose matchers accept the request; `x.path` and `x.query`
/// are left as the leaf sees them (after any `handle_path` stripping, `rewrite`
/// or `try_files`, whose new path the routes after it see). Routes sharing a
/// group are mutually exclusive; a subroute whose children all miss lets
/// evaluation continue after it, with the path it had before.
pub(crate) fn find<'a>(routes: &'a [RouteRt], x: &mut Exchange) -> Option<Hit<'a>> {
    let mut groups_done: Vec<&str> = Vec::new();
    for route in routes {
        if let Some(group) = route.group.as_deref() {
            if groups_done.contains(&group) {
                continue;
            }
        }
        if !route_matches(route, x) {
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
                let outer = strip_prefix.as_deref().map(|prefix| {
                    let inner = strip_path(&x.path, prefix);
                    std::mem::replace(&mut x.path, inner)
                });
                if let Some(hit) = find(routes, x) {
                    return Some(hit);
                }
                if let Some(outer) = outer {
                    x.path = outer;
                }
            }
            Node::Site(site) => match site.run(x) {
                Flow::Next => {}
                Flow::Answer(resp) => return Some(Hit::Answer(route, resp)),
            },
            // As in Caddy, where the innermost encoder compresses and the outer
            // ones see `Content-Encoding` and pass: the last one wins.
            Node::Encode(e) => x.encode = Some(e.clone()),
            Node::TryFiles(t) => match t.apply(&x.path, x.query.as_deref()) {
                crate::try_files::Outcome::Rewrite(path, query) => {
                    x.path = path;
                    if query.is_some() {
                        x.query = query;
                    }
                }
                crate::try_files::Outcome::Status(_) => return Some(Hit::Leaf(route)),
                crate::try_files::Outcome::Unchanged => {}
            },
            _ => return Some(Hit::Leaf(route)),
        }
    }
    None
}

/// `path` without `prefix` (compared case-insensitively, as matching is), never empty.
pub(crate) fn strip_path(path: &str, prefix: &str) -> String {
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
    // A queued job links to this request's server span when there is one.
    let queued_from = span.as_ref().map(crate::otel::RequestSpan::traceparent);
    let ran = run_function(route, req, &uri, &trace_id, debug, queued_from.as_deref()).await;
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

/// With `X-Gojinn-Async: true`, queues the call as a job and answers 202
/// with its id (`None`: run it now).
async fn queue_if_async(
    route: &FunctionRoute,
    headers: &http::HeaderMap,
    request: &GuestRequest,
    trace_id: &str,
) -> Option<Ran> {
    let asked = headers
        .get(crate::jobs::ASYNC_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let (workers, policy) = route.jobs.as_ref().filter(|_| asked)?;
    let queued = crate::jobs::enqueue_request(
        workers,
        &route.function.spec().module,
        policy,
        gojinn_contract::encode_request(request),
        trace_id,
    )
    .await;
    let (status, body, id) = match queued {
        Ok(id) => {
            tracing::info!(target: "gojinn::jobs", route = %route.label, job_id = %id, trace_id, "request queued as a job");
            (
                StatusCode::ACCEPTED,
                serde_json::json!({ "status": "queued", "job_id": id }),
                Some(id),
            )
        }
        Err(e) => {
            tracing::warn!(target: "gojinn::jobs", route = %route.label, trace_id, error = %e, "request not queued");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": format!("not queued: {e}") }),
                None,
            )
        }
    };
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(value) = id.and_then(|id| http::HeaderValue::from_str(&id).ok()) {
        resp.headers_mut().insert(crate::jobs::JOB_ID_HEADER, value);
    }
    Some(Ran {
        resp,
        sandbox: None,
        stderr: None,
        fault: None,
        times: None,
    })
}

/// Runs the function of `route` on `req`; `span` is the request's server span
/// as a traceparent, when traced.
async fn run_function(
    route: &FunctionRoute,
    req: Request<Incoming>,
    uri: &str,
    trace_id: &str,
    debug: bool,
    span: Option<&str>,
) -> Ran {
    let traced = span.is_some();
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
    let queued_from = span.unwrap_or(trace_id);
    if let Some(ran) = queue_if_async(route, &parts.headers, &guest_request, queued_from).await {
        return ran;
    }
    // Off by default (a cached callsite check); tests of shutdown and reload
    // turn it on to know a call is in flight.
    tracing::debug!(target: "gojinn::call", route = %route.label, trace_id = %trace_id, "call started");
    let outcome = {
        let _in_flight = route.metrics.in_flight();
        route.function.invoke(&guest_request, trace_id).await
    };
    // The input, for a crash record (only kept by routes that record crashes).
    let input = route
        .crashes
        .as_ref()
        .map(|_| gojinn_contract::encode_request(&guest_request));
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
            if let (Some(spec), Some(input)) = (&route.crashes, input) {
                crate::crash::record(
                    spec,
                    &route.function.spec().module,
                    &failure,
                    input,
                    trace_id,
                );
            }
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
