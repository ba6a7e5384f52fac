//! `encode`: compression of whatever answers after it (a function, files, a
//! proxied response), with tower-http's compression. The client's
//! `Accept-Encoding` picks the encoding (q-values; among equals, zstd before
//! gzip); a compressible response gets `Vary: Accept-Encoding` whatever the
//! client asked. Not compressed: responses already encoded, ranges, 1xx, 204
//! and 304 answers, a known length under `minimum_length`, and content types
//! outside [`COMPRESSIBLE`] (images, video, archives… are compressed already).

use std::convert::Infallible;

use gojinn_config::encode::{Encode, Format};
use http::header::{ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_http::compression::predicate::Predicate;
use tower_http::compression::Compression;

use crate::handler::Body;

/// Content types worth compressing, as prefixes of the lower-case media type:
/// the list Caddy's `encode` matches by default.
const COMPRESSIBLE: &[&str] = &[
    "text/",
    "application/atom+xml",
    "application/eot",
    "application/font",
    "application/geo+json",
    "application/graphql+json",
    "application/javascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/opentype",
    "application/otf",
    "application/rss+xml",
    "application/truetype",
    "application/ttf",
    "application/vnd.api+json",
    "application/vnd.ms-fontobject",
    "application/wasm",
    "application/x-httpd-cgi",
    "application/x-javascript",
    "application/x-opentype",
    "application/x-otf",
    "application/x-perl",
    "application/x-protobuf",
    "application/x-ttf",
    "application/xhtml+xml",
    "application/xml",
    "font/",
    "image/svg+xml",
    "image/vnd.microsoft.icon",
    "image/x-icon",
    "multipart/bag",
    "multipart/mixed",
];

/// An `encode` route, ready to serve.
#[derive(Debug, Clone)]
pub(crate) struct EncodeRt {
    gzip: bool,
    zstd: bool,
    rule: Rule,
}

impl EncodeRt {
    pub(crate) fn new(e: &Encode) -> EncodeRt {
        EncodeRt {
            gzip: e.formats.contains(&Format::Gzip),
            zstd: e.formats.contains(&Format::Zstd),
            rule: Rule {
                minimum_length: e.minimum_length,
            },
        }
    }

    /// `resp`, compressed if the client's `accept` (its `Accept-Encoding`)
    /// and the response allow it. The body is compressed as it streams.
    pub(crate) async fn apply(
        &self,
        accept: Option<HeaderValue>,
        resp: Response<Body>,
    ) -> Response<Body> {
        let mut req = Request::new(());
        if let Some(a) = accept {
            req.headers_mut().insert(ACCEPT_ENCODING, a);
        }
        // The service answers once, with the response already made.
        let mut once = Some(resp);
        let inner = tower::service_fn(move |_: Request<()>| {
            let resp = once
                .take()
                .unwrap_or_else(|| Response::new(crate::handler::full("")));
            std::future::ready(Ok::<_, Infallible>(resp))
        });
        let svc = Compression::new(inner)
            .gzip(self.gzip)
            .zstd(self.zstd)
            .compress_when(self.rule.clone());
        match svc.oneshot(req).await {
            Ok(resp) => resp.map(|b| b.map_err(std::io::Error::other).boxed_unsync()),
            Err(never) => match never {},
        }
    }
}

/// When a response is worth compressing.
#[derive(Debug, Clone)]
struct Rule {
    minimum_length: u64,
}

impl Predicate for Rule {
    fn should_compress<B>(&self, resp: &Response<B>) -> bool
    where
        B: hyper::body::Body,
    {
        let status = resp.status();
        if status.is_informational()
            || matches!(
                status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
            )
        {
            return false;
        }
        let length = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .or_else(|| resp.body().size_hint().exact());
        if length.is_some_and(|n| n < self.minimum_length) {
            return false;
        }
        resp.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(compressible)
    }
}

/// Whether a `Content-Type` value names a compressible media type.
fn compressible(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    COMPRESSIBLE.iter().any(|p| media.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "image/svg+xml",
            "Text/CSS",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "video/mp4",
            "application/zip",
            "application/octet-stream",
            "",
        ] {
            assert!(!compressible(t), "{t}");
        }
    }
}
