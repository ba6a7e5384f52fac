//! Request-time placeholders in `header_up` / `header_down` values, Caddy's
//! names: `{host}`, `{upstream_hostport}`, `{http.request.header.X-Id}` … A
//! value is parsed once at load into a [`Template`]; the proxy fills it in per
//! request. An unknown placeholder is a config error; `\{` writes a brace.

use crate::request_placeholders::parse;
pub use crate::request_placeholders::Placeholder;

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
    /// A value of the request or of the upstream: one of [`SUPPORTED`].
    Var(Placeholder),
}

/// The placeholders a proxy header may use, by their short names; each has
/// its long name too (`{http.request.host}` …).
const SUPPORTED: &[&str] = &[
    "host",
    "hostport",
    "remote_host",
    "remote_port",
    "remote",
    "scheme",
    "method",
    "uri",
    "path",
    "query",
    "upstream_hostport",
    "http.reverse_proxy.upstream.host",
    "http.reverse_proxy.upstream.port",
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
                    SUPPORTED
                        .iter()
                        .map(|short| format!("`{{{short}}}`"))
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

/// The placeholder `name`, if a proxy header may use it: a request header,
/// or one of [`SUPPORTED`] by either of its names.
fn var(name: &str) -> Option<Placeholder> {
    match parse(name)? {
        Placeholder::Header(h) => Some(Placeholder::Header(h.to_ascii_lowercase())),
        p => SUPPORTED
            .iter()
            .any(|s| parse(s).as_ref() == Some(&p))
            .then_some(p),
    }
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
                Part::Var(Placeholder::Host),
                Part::Lit("-".into()),
                Part::Var(Placeholder::Header("x-id".into())),
                Part::Lit("{x}".into()),
            ]
        );
        assert!(Template::parse("plain").unwrap().is_literal());
        assert!(
            Template::parse("{upstream_hostport}").unwrap().parts
                == vec![Part::Var(Placeholder::UpstreamHostPort)]
        );
        assert!(Template::parse("unclosed {").unwrap().is_literal());
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .starts_with("placeholder `{nope}` is not supported"));
        assert!(Template::parse("{header.}").is_err());
        // Long names work; request placeholders a proxy has no value for do not.
        assert_eq!(
            Template::parse("{http.request.host}").unwrap().parts,
            vec![Part::Var(Placeholder::Host)]
        );
        assert!(Template::parse("{path.1}").is_err());
        assert!(Template::parse("{err.message}").is_err());
    }
}
