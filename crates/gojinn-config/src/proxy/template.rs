//! Request-time placeholders in `header_up` / `header_down` values, Caddy's
//! names: `{host}`, `{upstream_hostport}`, `{http.request.header.X-Id}` … A
//! value is parsed once at load into a [`Template`]; the proxy fills it in per
//! request. An unknown placeholder is a config error; `\{` writes a brace.

/// A value with placeholders, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Literal text and placeholders, in order.
    pub parts: Vec<Part>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text written as is.
    Lit(String),
    /// A value of the request or of the upstream.
    Var(Var),
}

/// The request-time values a header template may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `{host}`, `{http.request.host}`: the request's host, without port.
    Host,
    /// `{hostport}`, `{http.request.hostport}`: the request's host and port.
    HostPort,
    /// `{remote_host}`, `{http.request.remote.host}`: the client's IP address.
    RemoteHost,
    /// `{remote_port}`, `{http.request.remote.port}`: the client's port.
    RemotePort,
    /// `{remote}`, `{http.request.remote}`: the client's `ip:port`.
    Remote,
    /// `{scheme}`, `{http.request.scheme}`: `http` or `https`.
    Scheme,
    /// `{method}`, `{http.request.method}`.
    Method,
    /// `{uri}`, `{http.request.uri}`: path and query.
    Uri,
    /// `{path}`, `{http.request.uri.path}`.
    Path,
    /// `{query}`, `{http.request.uri.query}`.
    Query,
    /// `{upstream_hostport}`, `{http.reverse_proxy.upstream.hostport}`.
    UpstreamHostPort,
    /// `{http.reverse_proxy.upstream.host}`.
    UpstreamHost,
    /// `{http.reverse_proxy.upstream.port}`.
    UpstreamPort,
    /// `{header.X}`, `{http.request.header.X}`: the request header's first value.
    Header(String),
}

const NAMES: &[(&str, &str, Var)] = &[
    ("host", "http.request.host", Var::Host),
    ("hostport", "http.request.hostport", Var::HostPort),
    ("remote_host", "http.request.remote.host", Var::RemoteHost),
    ("remote_port", "http.request.remote.port", Var::RemotePort),
    ("remote", "http.request.remote", Var::Remote),
    ("scheme", "http.request.scheme", Var::Scheme),
    ("method", "http.request.method", Var::Method),
    ("uri", "http.request.uri", Var::Uri),
    ("path", "http.request.uri.path", Var::Path),
    ("query", "http.request.uri.query", Var::Query),
    (
        "upstream_hostport",
        "http.reverse_proxy.upstream.hostport",
        Var::UpstreamHostPort,
    ),
    (
        "http.reverse_proxy.upstream.host",
        "http.reverse_proxy.upstream.host",
        Var::UpstreamHost,
    ),
    (
        "http.reverse_proxy.upstream.port",
        "http.reverse_proxy.upstream.port",
        Var::UpstreamPort,
    ),
];

impl Template {
    /// Parses `text`; the error names the unknown placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['\\', '{']) {
            lit.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(escaped) = tail.strip_prefix('\\') {
                match escaped.chars().next() {
                    Some(c @ ('{' | '}')) => {
                        lit.push(c);
                        rest = &escaped[1..];
                    }
                    _ => {
                        lit.push('\\');
                        rest = escaped;
                    }
                }
                continue;
            }
            let Some(end) = tail.find('}') else {
                lit.push_str(tail);
                rest = "";
                break;
            };
            let name = &tail[1..end];
            let var = var(name).ok_or_else(|| {
                format!(
                    "placeholder `{{{name}}}` is not supported in proxy headers; use one of {}",
                    NAMES
                        .iter()
                        .map(|(short, _, _)| format!("`{{{short}}}`"))
                        .chain(std::iter::once("`{http.request.header.NAME}`".to_owned()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(var));
            rest = &tail[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// True when the template is plain text.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }
}

fn var(name: &str) -> Option<Var> {
    if let Some(h) = name
        .strip_prefix("http.request.header.")
        .or_else(|| name.strip_prefix("header."))
    {
        return (!h.is_empty()).then(|| Var::Header(h.to_ascii_lowercase()));
    }
    NAMES
        .iter()
        .find(|(short, long, _)| name == *short || name == *long)
        .map(|(_, _, v)| v.clone())
}

/// Checks `health_uri`: a path starting with `/`, with an optional query.
pub(crate) fn check_uri(uri: &str) -> Result<(), String> {
    if uri.starts_with('/')
        && !uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid health_uri `{uri}`: expected a path such as `/health`"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let t = Template::parse("a {host}-{http.request.header.X-Id}\\{x}").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Lit("a ".into()),
                Part::Var(Var::Host),
                Part::Lit("-".into()),
                Part::Var(Var::Header("x-id".into())),
                Part::Lit("{x}".into()),
            ]
        );
        assert!(Template::parse("plain").unwrap().is_literal());
        assert!(
            Template::parse("{upstream_hostport}").unwrap().parts
                == vec![Part::Var(Var::UpstreamHostPort)]
        );
        assert!(Template::parse("unclosed {").unwrap().is_literal());
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .starts_with("placeholder `{nope}` is not supported"));
        assert!(Template::parse("{header.}").is_err());
    }
}
