//! `reverse_proxy` routes: the request handed to `gojinn-proxy`, its failure
//! turned into a response by the status table, one access-log line.

use std::time::Instant;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::app::ProxyRoute;
use crate::error::{failure_response, Failure};
use crate::handler::Body;

/// Proxies `req` on `route`.
pub(crate) async fn serve(
    route: &ProxyRoute,
    req: Request<Incoming>,
    started: Instant,
) -> Response<Body> {
    let method = req.method().clone();
    let uri = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    // Set by the connection for every request it serves.
    let client = req
        .extensions()
        .get::<gojinn_proxy::ClientInfo>()
        .copied()
        .unwrap_or(gojinn_proxy::ClientInfo {
            remote: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            tls: false,
        });
    let (resp, upstream, retries) = match route.proxy.serve(req, client).await {
        Ok(p) => (p.response.map(|b| b.boxed_unsync()), p.upstream, p.retries),
        Err(e) => {
            let upstream = e.upstream.clone().unwrap_or_default();
            let retries = e.retries;
            let failure = Failure::Proxy(e);
            tracing::warn!(
                target: "gojinn::fault",
                route = %route.label,
                fault = failure.kind().name(),
                upstream = %upstream,
                retries,
                "{failure}"
            );
            (failure_response(&failure), upstream, retries)
        }
    };
    tracing::info!(
        target: "gojinn::access",
        route = %route.label,
        method = %method,
        uri = %uri,
        status = resp.status().as_u16(),
        duration_us = started.elapsed().as_micros() as u64,
        upstream = %upstream,
        retries,
        "request"
    );
    resp
}
