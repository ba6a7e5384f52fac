//! The handlers around the functions, run while the routes are walked:
//! `header` (response fields, set now or deferred until the answer is
//! written) and `request_header`.

use crate::exchange::Exchange;
use crate::handler::Body;
use crate::placeholder::Template;
use gojinn_config::{Handler, HeaderOp, HeaderOps};
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use regex::Regex;

/// A compiled site handler.
pub(crate) enum SiteNode {
    /// `header`.
    Headers { ops: Vec<Op>, deferred: bool },
    /// `request_header`.
    RequestHeaders(Vec<Op>),
}

/// What a site handler leaves to the walk.
pub(crate) enum Flow {
    /// Go on with the next route.
    Next,
    /// This is the answer.
    // Constructed by `redir` (next commit).
    #[allow(dead_code)]
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
        }
    }
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
