//! `handle_errors`: when a request failed (no route, a file not found, a
//! function's fault, a body over its cap …), the first block whose statuses
//! cover the failure walks its routes for the answer, with `{err.*}`
//! placeholders. A `respond` or `file_server` there without a status of its
//! own answers with the error's status, as in Caddy.

use crate::app::{ErrorRoutesRt, Node};
use crate::exchange::Exchange;
use crate::handler::{find, respond, Body, Hit};
use crate::placeholder::ErrorInfo;
use http::{Request, Response, StatusCode};

/// Marks a response that reports a failure, with the short text
/// `{err.message}` shows (never detail meant for the log).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Errored {
    pub(crate) message: &'static str,
}

/// `file_server`'s 4xx and 5xx answers are failures too.
pub(crate) fn mark_file_error(mut resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        let message = match status {
            StatusCode::NOT_FOUND => "not found",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            _ => "file server error",
        };
        resp.extensions_mut().insert(Errored { message });
    }
    resp
}

/// The answer for `resp`: itself, or what the `handle_errors` block for its
/// status answers.
pub(crate) async fn handle(
    blocks: &[ErrorRoutesRt],
    x: &mut Exchange,
    resp: Response<Body>,
) -> Response<Body> {
    let Some(errored) = resp.extensions().get::<Errored>().copied() else {
        return resp;
    };
    let status = resp.status();
    let Some(block) = blocks.iter().find(|b| covers(&b.status, status)) else {
        return resp;
    };
    x.error = Some(ErrorInfo {
        status: status.as_u16(),
        message: errored.message.to_owned(),
    });
    let error_status = |s: StatusCode| if s == StatusCode::OK { status } else { s };
    match find(&block.routes, x) {
        Some(Hit::Leaf(route)) => match &route.node {
            Node::Respond { status: s, body } => respond(error_status(*s), body.render(x, None)),
            Node::Files(files) => {
                let mut req = Request::new(http_body_util::Empty::<bytes::Bytes>::new());
                *req.method_mut() = x.method.clone();
                *req.headers_mut() = x.headers.clone();
                if let Ok(uri) = x.uri().parse() {
                    *req.uri_mut() = uri;
                }
                let mut page = files.serve(req, &x.path).await;
                let s = page.status();
                *page.status_mut() = error_status(s);
                page
            }
            // Functions are refused in `handle_errors` when the config loads.
            _ => resp,
        },
        Some(Hit::Answer(_, answer)) => answer,
        None => resp,
    }
}

/// Whether a block for `filters` (`404`, `4xx`, …; none for all) handles
/// `status`.
fn covers(filters: &[String], status: StatusCode) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| match f.strip_suffix("xx") {
            Some(class) => status.as_u16() / 100 == class.parse::<u16>().unwrap_or(0),
            None => f.parse::<u16>().ok() == Some(status.as_u16()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters() {
        let f = |v: &[&str], s: u16| {
            let v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
            covers(&v, StatusCode::from_u16(s).unwrap_or(StatusCode::OK))
        };
        assert!(f(&[], 404));
        assert!(f(&["404", "410"], 410));
        assert!(!f(&["404"], 502));
        assert!(f(&["5xx"], 502));
        assert!(!f(&["4xx"], 502));
    }
}
