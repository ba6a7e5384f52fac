//! The handlers around the functions, run while the routes are walked:
//! `header` (response fields, set now or deferred until the answer is
//! written), `request_header`, `rewrite` and `uri` (the path and query the
//! next routes see), and `redir` (answers).

use crate::exchange::Exchange;
use crate::handler::Body;
use crate::placeholder::Template;
use gojinn_config::{Handler, HeaderOp, HeaderOps, Rewrite};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use regex::Regex;

/// A compiled site handler.
pub(crate) enum SiteNode {
    /// `header`.
    Headers { ops: Vec<Op>, deferred: bool },
    /// `request_header`.
    RequestHeaders(Vec<Op>),
    /// `redir`.
    Redirect {
        to: Template,
        status: StatusCode,
        html: bool,
    },
    /// `rewrite`, `uri`.
    Rewrite(RewriteRt),
    /// `basic_auth`.
    BasicAuth(crate::basic_auth::Guard),
}

/// A `rewrite` or `uri` operation, compiled.
pub(crate) enum RewriteRt {
    Uri(Template),
    StripPrefix(String),
    StripSuffix(String),
    Replace {
        find: String,
        replace: String,
        limit: Option<usize>,
    },
    PathRegexp(Regex, String),
}

/// What a site handler leaves to the walk.
pub(crate) enum Flow {
    /// Go on with the next route.
    Next,
    /// This is the answer.
    Answer(Response<Body>),
}

/// A header operation, compiled.
#[derive(Debug)]
pub(crate) enum Op {
    Set(HeaderName, Template),
    Add(HeaderName, Template),
    Delete(HeaderName),
    /// Lower-case prefix of the fields to delete.
    DeletePrefix(String),
    Default(HeaderName, Template),
    Replace(HeaderName, Regex, String),
}

/// An operation with its value evaluated for one request.
#[derive(Debug, Clone)]
pub(crate) enum ReadyOp {
    Set(HeaderName, HeaderValue),
    Add(HeaderName, HeaderValue),
    Delete(HeaderName),
    DeletePrefix(String),
    Default(HeaderName, HeaderValue),
    Replace(HeaderName, Regex, String),
}

impl SiteNode {
    /// Compiles a handler the loader passed through as configured.
    pub(crate) fn new(handler: &Handler) -> Result<SiteNode, String> {
        match handler {
            Handler::Headers(h) => Ok(SiteNode::Headers {
                ops: ops(h)?,
                deferred: h.deferred,
            }),
            Handler::RequestHeaders(h) => Ok(SiteNode::RequestHeaders(ops(h)?)),
            Handler::BasicAuth(a) => Ok(SiteNode::BasicAuth(crate::basic_auth::Guard::new(a)?)),
            Handler::Redirect(r) => Ok(SiteNode::Redirect {
                to: Template::new(&r.to),
                status: StatusCode::from_u16(r.status)
                    .map_err(|_| format!("invalid redirect status `{}`", r.status))?,
                html: r.html,
            }),
            Handler::Rewrite(r) => Ok(SiteNode::Rewrite(match r {
                Rewrite::Uri { to } => RewriteRt::Uri(Template::new(to)),
                Rewrite::StripPrefix { prefix } => RewriteRt::StripPrefix(prefix.clone()),
                Rewrite::StripSuffix { suffix } => RewriteRt::StripSuffix(suffix.clone()),
                Rewrite::Replace {
                    find,
                    replace,
                    limit,
                } => RewriteRt::Replace {
                    find: find.clone(),
                    replace: replace.clone(),
                    limit: limit.and_then(|n| usize::try_from(n).ok()),
                },
                Rewrite::PathRegexp { find, replace } => RewriteRt::PathRegexp(
                    Regex::new(find).map_err(|e| format!("invalid regular expression: {e}"))?,
                    replace.clone(),
                ),
            })),
            _ => Err("internal: not a site handler".to_owned()),
        }
    }

    /// Runs the handler on the request `x`.
    pub(crate) fn run(&self, x: &mut Exchange) -> Flow {
        match self {
            SiteNode::Headers { ops, deferred } => {
                let ready: Vec<ReadyOp> = ops.iter().filter_map(|op| ready(op, x)).collect();
                if *deferred {
                    x.late_headers.extend(ready);
                } else {
                    x.early_headers.extend(ready);
                }
                Flow::Next
            }
            SiteNode::RequestHeaders(ops) => {
                let ready: Vec<ReadyOp> = ops.iter().filter_map(|op| ready(op, x)).collect();
                apply(&ready, &mut x.headers);
                Flow::Next
            }
            SiteNode::Redirect { to, status, html } => Flow::Answer(redirect(
                &encode(&to.render(x, None), b"?#&=;[]"),
                *status,
                *html,
            )),
            SiteNode::Rewrite(r) => {
                rewrite(r, x);
                Flow::Next
            }
            SiteNode::BasicAuth(guard) => match guard.check(x) {
                Some(user) => {
                    x.auth_user = Some(user);
                    Flow::Next
                }
                None => Flow::Answer(guard.refusal()),
            },
        }
    }
}

/// Applies a `rewrite` or `uri` operation to `x`'s path and query.
fn rewrite(r: &RewriteRt, x: &mut Exchange) {
    let path = match r {
        RewriteRt::Uri(to) => {
            let to = to.render(x, None);
            let path = match to.split_once('?') {
                Some((path, query)) => {
                    x.query = (!query.is_empty()).then(|| encode(query, b"?&=;"));
                    path.to_owned()
                }
                None => to,
            };
            if path.is_empty() {
                return;
            }
            path
        }
        RewriteRt::StripPrefix(prefix) => crate::handler::strip_path(&x.path, prefix),
        RewriteRt::StripSuffix(suffix) => match x.path.strip_suffix(suffix.as_str()) {
            Some(rest) => rest.to_owned(),
            None => return,
        },
        RewriteRt::Replace {
            find,
            replace,
            limit,
        } => match limit {
            Some(n) => x.path.replacen(find.as_str(), replace, *n),
            None => x.path.replace(find.as_str(), replace),
        },
        RewriteRt::PathRegexp(re, with) => re.replace_all(&x.path, with.as_str()).into_owned(),
    };
    let path = encode(&path, b"");
    x.path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
}

/// `text` with every byte a URI path (plus `extra`) cannot hold as it is
/// percent-encoded: what placeholders bring in (spaces, decoded query values,
/// non-ASCII) stays one valid URI.
fn encode(text: &str, extra: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        let plain =
            b.is_ascii_alphanumeric() || b"-._~!$'()*+,:@/%".contains(&b) || extra.contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A redirect to `to` (already a valid URI reference).
fn redirect(to: &str, status: StatusCode, html: bool) -> Response<Body> {
    if html {
        let to = to
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        let page = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<title>Redirecting</title>\n\
             <meta http-equiv=\"refresh\" content=\"0; url={to}\">\n</head>\n\
             <body>Redirecting to <a href=\"{to}\">{to}</a>.</body>\n</html>\n"
        );
        let mut resp = Response::new(crate::handler::full(page));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return resp;
    }
    let mut resp = Response::new(crate::handler::full(bytes::Bytes::new()));
    *resp.status_mut() = status;
    // `encode` left only visible ASCII, which a header value accepts.
    if let Ok(location) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(http::header::LOCATION, location);
    }
    resp
}

fn ops(h: &HeaderOps) -> Result<Vec<Op>, String> {
    let name = |f: &str| {
        HeaderName::from_bytes(f.as_bytes()).map_err(|_| format!("invalid header field `{f}`"))
    };
    h.ops
        .iter()
        .map(|op| {
            Ok(match op {
                HeaderOp::Set { field, value } => Op::Set(name(field)?, Template::new(value)),
                HeaderOp::Add { field, value } => Op::Add(name(field)?, Template::new(value)),
                HeaderOp::Default { field, value } => {
                    Op::Default(name(field)?, Template::new(value))
                }
                HeaderOp::Delete { field } => match field.strip_suffix('*') {
                    Some(prefix) => Op::DeletePrefix(prefix.to_ascii_lowercase()),
                    None => Op::Delete(name(field)?),
                },
                HeaderOp::Replace {
                    field,
                    find,
                    replace,
                } => Op::Replace(
                    name(field)?,
                    Regex::new(find).map_err(|e| format!("invalid regular expression: {e}"))?,
                    replace.clone(),
                ),
            })
        })
        .collect()
}

/// `op` with its value evaluated; `None` when the value is not a valid
/// header value (a placeholder brought in a control character), so nothing
/// from a request can split a header.
fn ready(op: &Op, x: &Exchange) -> Option<ReadyOp> {
    let value = |t: &Template| HeaderValue::from_str(&t.render(x, None)).ok();
    Some(match op {
        Op::Set(n, t) => ReadyOp::Set(n.clone(), value(t)?),
        Op::Add(n, t) => ReadyOp::Add(n.clone(), value(t)?),
        Op::Default(n, t) => ReadyOp::Default(n.clone(), value(t)?),
        Op::Delete(n) => ReadyOp::Delete(n.clone()),
        Op::DeletePrefix(p) => ReadyOp::DeletePrefix(p.clone()),
        Op::Replace(n, re, with) => ReadyOp::Replace(n.clone(), re.clone(), with.clone()),
    })
}

/// Applies `ops` to `headers`, in order.
pub(crate) fn apply(ops: &[ReadyOp], headers: &mut HeaderMap) {
    for op in ops {
        match op {
            ReadyOp::Set(n, v) => {
                headers.insert(n.clone(), v.clone());
            }
            ReadyOp::Add(n, v) => {
                headers.append(n.clone(), v.clone());
            }
            ReadyOp::Default(n, v) => {
                if !headers.contains_key(n) {
                    headers.insert(n.clone(), v.clone());
                }
            }
            ReadyOp::Delete(n) => {
                headers.remove(n);
            }
            ReadyOp::DeletePrefix(p) => {
                let doomed: Vec<HeaderName> = headers
                    .keys()
                    .filter(|k| k.as_str().starts_with(p.as_str()))
                    .cloned()
                    .collect();
                for k in doomed {
                    headers.remove(k);
                }
            }
            ReadyOp::Replace(n, re, with) => {
                let replaced: Vec<HeaderValue> = headers
                    .get_all(n)
                    .iter()
                    .filter_map(|v| {
                        let text = v.to_str().ok()?;
                        HeaderValue::from_str(&re.replace_all(text, with.as_str())).ok()
                    })
                    .collect();
                if !replaced.is_empty() {
                    headers.remove(n);
                    for v in replaced {
                        headers.append(n.clone(), v);
                    }
                }
            }
        }
    }
}

/// Applies the `header` operations gathered on the way to `resp`: the
/// immediate ones as fields the answering handler did not set itself, then
/// the deferred ones on the final fields.
pub(crate) fn finish(resp: &mut Response<Body>, x: &Exchange) {
    if !x.early_headers.is_empty() {
        let mut base = HeaderMap::new();
        apply(&x.early_headers, &mut base);
        let headers = resp.headers_mut();
        for name in base.keys() {
            if !headers.contains_key(name) {
                for v in base.get_all(name) {
                    headers.append(name.clone(), v.clone());
                }
            }
        }
    }
    apply(&x.late_headers, resp.headers_mut());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn exchange(uri: &str) -> Exchange {
        let (mut parts, ()) = http::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts();
        Exchange::new(&mut parts)
    }

    fn rewritten(r: RewriteRt, uri: &str) -> String {
        let mut x = exchange(uri);
        rewrite(&r, &mut x);
        x.uri()
    }

    #[test]
    fn rewrites_keep_or_replace_the_query_and_stay_valid_uris() {
        let to = |t: &str| RewriteRt::Uri(Template::new(t));
        assert_eq!(rewritten(to("/new"), "/old?a=1"), "/new?a=1");
        assert_eq!(rewritten(to("/new?b=2"), "/old?a=1"), "/new?b=2");
        assert_eq!(rewritten(to("/new?"), "/old?a=1"), "/new");
        assert_eq!(rewritten(to("?{query}&c=3"), "/p?a=1"), "/p?a=1&c=3");
        assert_eq!(
            rewritten(to("/q/{query.v}"), "/p?v=a%20b"),
            "/q/a%20b?v=a%20b",
            "a decoded placeholder is encoded again; no `?`, the query stays"
        );
        assert_eq!(rewritten(to("x"), "/p"), "/x");
        let strip = RewriteRt::StripPrefix("/api".into());
        assert_eq!(rewritten(strip, "/API/v1?k"), "/v1?k");
        let suffix = RewriteRt::StripSuffix(".html".into());
        assert_eq!(rewritten(suffix, "/a.html"), "/a");
        let replace = RewriteRt::Replace {
            find: "a".into(),
            replace: "b".into(),
            limit: Some(1),
        };
        assert_eq!(rewritten(replace, "/aaa"), "/baa");
    }

    #[test]
    fn header_operations_in_order() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("one"));
        h.insert("x-debug-1", HeaderValue::from_static("1"));
        h.insert("x-debug-2", HeaderValue::from_static("2"));
        let n = |s: &str| HeaderName::from_bytes(s.as_bytes()).unwrap();
        let v = |s: &'static str| HeaderValue::from_static(s);
        apply(
            &[
                ReadyOp::Add(n("x-a"), v("two")),
                ReadyOp::Default(n("x-a"), v("never")),
                ReadyOp::Default(n("x-b"), v("dflt")),
                ReadyOp::DeletePrefix("x-debug-".into()),
                // `$1O` would name a group `1O`, as in Go: braces end the name.
                ReadyOp::Replace(n("x-a"), Regex::new("^t(.)o$").unwrap(), "T${1}O".into()),
            ],
            &mut h,
        );
        let all: Vec<&str> = h
            .get_all("x-a")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all, vec!["one", "TwO"]);
        assert_eq!(h.get("x-b").unwrap(), "dflt");
        assert!(h.get("x-debug-1").is_none() && h.get("x-debug-2").is_none());
    }
}
