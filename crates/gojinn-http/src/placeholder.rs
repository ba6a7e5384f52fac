//! Request placeholders, evaluated per request: Caddy's names
//! (`{http.request.uri.path}`, `{http.request.header.X}`, …) and its
//! shorthands (`{path}`, `{header.X}`, …), named in
//! `gojinn_config::request_placeholders`. A text is compiled once at load
//! into literal parts and placeholders; a `{…}` that names no known
//! placeholder stays as written, as Caddy's `respond` and `header` leave it.

use crate::exchange::Exchange;
use gojinn_config::request_placeholders::{parse, ErrorField, Placeholder};

/// A text with placeholders, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// The error being handled by `handle_errors`, for `{err.*}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorInfo {
    /// The status of the error.
    pub(crate) status: u16,
    /// A short description, safe to show a client.
    pub(crate) message: String,
}

impl Template {
    /// Compiles `text`.
    pub(crate) fn new(text: &str) -> Template {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            let (before, from) = rest.split_at(start);
            literal.push_str(before);
            let known = from
                .find('}')
                .and_then(|end| Some((end, site_placeholder(from.get(1..end)?)?)));
            match known {
                Some((end, p)) => {
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Value(p));
                    rest = from.get(end + 1..).unwrap_or("");
                }
                None => {
                    literal.push('{');
                    rest = from.get(1..).unwrap_or("");
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Template { parts }
    }

    /// The text for the request `x` (and the error being handled, if any:
    /// `err`, else the one `x` carries).
    pub(crate) fn render(&self, x: &Exchange, err: Option<&ErrorInfo>) -> String {
        let err = err.or(x.error.as_ref());
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(p) => value(p, x, err, &mut out),
            }
        }
        out
    }
}

/// The placeholder named `name` where a site evaluates it: the proxy's
/// upstream names mean nothing there and stay as written.
fn site_placeholder(name: &str) -> Option<Placeholder> {
    parse(name).filter(|p| {
        !matches!(
            p,
            Placeholder::UpstreamHostPort | Placeholder::UpstreamHost | Placeholder::UpstreamPort
        )
    })
}

fn value(p: &Placeholder, x: &Exchange, err: Option<&ErrorInfo>, out: &mut String) {
    use std::fmt::Write;
    use Placeholder as P;
    let host = x.host.as_deref().unwrap_or("");
    match p {
        P::Method => out.push_str(x.method.as_str()),
        P::Uri => out.push_str(&x.uri()),
        P::Path => out.push_str(&x.path),
        P::PathSegment(n) => {
            let segment = x.path.split('/').filter(|s| !s.is_empty()).nth(*n);
            out.push_str(segment.unwrap_or(""));
        }
        P::Dir => match x.path.rfind('/') {
            Some(i) => out.push_str(&x.path[..=i]),
            None => out.push('/'),
        },
        P::File => out.push_str(x.path.rsplit('/').next().unwrap_or("")),
        P::Query => out.push_str(x.query.as_deref().unwrap_or("")),
        P::QueryParam(key) => {
            let q = x.query.as_deref().unwrap_or("");
            if let Some((_, v)) = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key) {
                out.push_str(&v);
            }
        }
        P::Host => out.push_str(host),
        P::HostPort => out.push_str(
            x.headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(host),
        ),
        P::Port => {
            let hostport = x
                .headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let port = hostport
                .rsplit_once(':')
                .map(|(_, p)| p.to_owned())
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
            match port {
                Some(p) => out.push_str(&p),
                None => out.push_str(if x.tls() { "443" } else { "80" }),
            }
        }
        P::Scheme => out.push_str(if x.tls() { "https" } else { "http" }),
        P::Proto => out.push_str(match x.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        }),
        P::Remote => {
            if let Some(peer) = x.peer {
                let _ = write!(out, "{}", peer.addr);
            }
        }
        P::RemoteHost => {
            if let Some(ip) = x.peer_ip() {
                let _ = write!(out, "{ip}");
            }
        }
        P::RemotePort => {
            if let Some(peer) = x.peer {
                let _ = write!(out, "{}", peer.addr.port());
            }
        }
        P::Header(name) => {
            let values: Vec<&str> = x
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            out.push_str(&values.join(","));
        }
        P::AuthUser => out.push_str(x.auth_user.as_deref().unwrap_or("")),
        P::Regexp { name, group } => {
            // The latest match of that name wins, as later matchers overwrite
            // earlier ones in Caddy.
            let found = x
                .captures
                .iter()
                .rev()
                .filter(|c| c.name == *name)
                .find_map(|c| c.groups.iter().find(|(g, _)| g == group));
            if let Some((_, v)) = found {
                out.push_str(v);
            }
        }
        P::Error(field) => {
            if let Some(e) = err {
                match field {
                    ErrorField::StatusCode => {
                        let _ = write!(out, "{}", e.status);
                    }
                    ErrorField::StatusText => out.push_str(
                        http::StatusCode::from_u16(e.status)
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or(""),
                    ),
                    ErrorField::Message => out.push_str(&e.message),
                }
            }
        }
        // Left out by `site_placeholder`: the proxy fills these in.
        P::UpstreamHostPort | P::UpstreamHost | P::UpstreamPort => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn exchange(uri: &str, headers: &[(&str, &str)]) -> Exchange {
        let mut req = http::Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        Exchange::new(&mut parts)
    }

    #[test]
    fn request_placeholders() {
        let x = exchange(
            "/a/b/c.txt?x=1&y=two%20words",
            &[("host", "Example.test:8080"), ("x-id", "7")],
        );
        let r = |t: &str| Template::new(t).render(&x, None);
        assert_eq!(r("{path}|{http.request.uri.path}"), "/a/b/c.txt|/a/b/c.txt");
        assert_eq!(r("{uri}"), "/a/b/c.txt?x=1&y=two%20words");
        assert_eq!(r("{query}"), "x=1&y=two%20words");
        assert_eq!(r("{query.y}/{http.request.uri.query.x}"), "two words/1");
        assert_eq!(
            r("{host} {hostport} {port}"),
            "example.test Example.test:8080 8080"
        );
        assert_eq!(r("{method} {scheme}"), "GET http");
        assert_eq!(r("{dir} {file} {path.1}"), "/a/b/ c.txt b");
        assert_eq!(r("{header.X-Id}{http.request.header.x-id}"), "77");
        assert_eq!(r("{unknown} {env.X} {"), "{unknown} {env.X} {");
        let err = ErrorInfo {
            status: 404,
            message: "not found".into(),
        };
        let t = Template::new("{err.status_code} {err.status_text}: {http.error.message}");
        assert_eq!(t.render(&x, Some(&err)), "404 Not Found: not found");
    }
}
