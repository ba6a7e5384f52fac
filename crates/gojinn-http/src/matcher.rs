//! Caddy's request matchers: the path matcher (`/exact`, `/prefix*`,
//! `*suffix`, `*middle*` and `*`, compared case-insensitively as Caddy does)
//! and named matcher sets ([`Conditions`]).

use crate::exchange::{Capture, Exchange};
use gojinn_config::MatcherSet;
use http::{HeaderName, Version};
use ipnet::IpNet;
use regex::Regex;
use std::net::IpAddr;

/// A compiled path pattern.
#[derive(Debug, Clone)]
pub(crate) enum PathPattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl PathPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let lower = pattern.to_ascii_lowercase();
        match (lower.strip_prefix('*'), lower.strip_suffix('*')) {
            _ if lower == "*" => PathPattern::Any,
            (Some(rest), Some(_)) => {
                PathPattern::Contains(rest.strip_suffix('*').unwrap_or(rest).to_owned())
            }
            (Some(rest), None) => PathPattern::Suffix(rest.to_owned()),
            (None, Some(rest)) => PathPattern::Prefix(rest.to_owned()),
            (None, None) => PathPattern::Exact(lower),
        }
    }

    /// Whether `lower_path` (the request path, already ASCII-lower-cased by the
    /// caller, once per request rather than once per route) matches.
    pub(crate) fn matches(&self, lower_path: &str) -> bool {
        let path = lower_path;
        match self {
            PathPattern::Any => true,
            PathPattern::Exact(p) => path == p,
            PathPattern::Prefix(p) => path.starts_with(p.as_str()),
            PathPattern::Suffix(p) => path.ends_with(p.as_str()),
            PathPattern::Contains(p) => path.contains(p.as_str()),
        }
    }
}

/// Caddy's `private_ranges`.
const PRIVATE_RANGES: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fd00::/8",
];

/// A compiled named matcher (one matcher set); see `gojinn_config::MatcherSet`
/// for the semantics.
#[derive(Debug)]
pub(crate) struct Conditions {
    path: Vec<PathPattern>,
    path_regexp: Option<(String, Regex)>,
    method: Vec<String>,
    header: Vec<(HeaderName, Vec<String>, bool)>,
    header_regexp: Vec<(HeaderName, String, Regex)>,
    query: Vec<(String, Vec<String>)>,
    host: Vec<String>,
    protocol: Option<String>,
    remote_ip: Vec<IpNet>,
    client_ip: Vec<IpNet>,
    not: Vec<Conditions>,
}

impl Conditions {
    /// Compiles a set the config crate validated; a value that still does not
    /// compile is an error naming it.
    pub(crate) fn new(set: &MatcherSet) -> Result<Conditions, String> {
        let regex = |r: &gojinn_config::Regexp| {
            Regex::new(&r.pattern)
                .map_err(|e| format!("matcher `{}`: invalid regular expression: {e}", set.name))
        };
        let field = |f: &str| {
            HeaderName::from_bytes(f.as_bytes())
                .map_err(|_| format!("matcher `{}`: invalid header field `{f}`", set.name))
        };
        let ranges =
            |list: &[String]| -> Result<Vec<IpNet>, String> {
                let mut out = Vec::new();
                for r in list {
                    if r == "private_ranges" {
                        out.extend(
                            PRIVATE_RANGES
                                .iter()
                                .filter_map(|p| p.parse::<IpNet>().ok()),
                        );
                    } else if let Ok(ip) = r.parse::<IpAddr>() {
                        out.push(IpNet::from(ip));
                    } else {
                        out.push(r.parse::<IpNet>().map_err(|_| {
                            format!("matcher `{}`: invalid IP range `{r}`", set.name)
                        })?);
                    }
                }
                Ok(out)
            };
        Ok(Conditions {
            path: set.path.iter().map(|p| PathPattern::new(p)).collect(),
            path_regexp: match &set.path_regexp {
                Some(r) => Some((r.name.clone(), regex(r)?)),
                None => None,
            },
            method: set.method.clone(),
            header: set
                .header
                .iter()
                .map(|h| Ok((field(&h.field)?, h.values.clone(), h.absent)))
                .collect::<Result<_, String>>()?,
            header_regexp: set
                .header_regexp
                .iter()
                .map(|h| Ok((field(&h.field)?, h.regexp.name.clone(), regex(&h.regexp)?)))
                .collect::<Result<_, String>>()?,
            query: set
                .query
                .iter()
                .map(|q| (q.key.clone(), q.values.clone()))
                .collect(),
            host: set.host.clone(),
            protocol: set.protocol.clone(),
            remote_ip: ranges(&set.remote_ip)?,
            client_ip: ranges(&set.client_ip)?,
            not: set
                .not
                .iter()
                .map(Conditions::new)
                .collect::<Result<_, String>>()?,
        })
    }

    /// Whether `x` (whose path lower-cased is `lower_path`) meets every
    /// condition. On a match, the regexp captures are added to `x`.
    pub(crate) fn matches(&self, x: &mut Exchange, lower_path: &str) -> bool {
        let mut captures = Vec::new();
        if !self.check(x, lower_path, &mut captures) {
            return false;
        }
        x.captures.extend(captures);
        true
    }

    fn check(&self, x: &Exchange, lower_path: &str, captures: &mut Vec<Capture>) -> bool {
        if !self.path.is_empty() && !self.path.iter().any(|p| p.matches(lower_path)) {
            return false;
        }
        if let Some((name, re)) = &self.path_regexp {
            match capture(name, re, &x.path) {
                Some(c) => captures.push(c),
                None => return false,
            }
        }
        if !self.method.is_empty() && !self.method.iter().any(|m| m == x.method.as_str()) {
            return false;
        }
        for (field, values, absent) in &self.header {
            let found = header_values(x, field);
            let ok = if *absent {
                found.is_empty()
            } else if values.is_empty() {
                !found.is_empty()
            } else {
                found
                    .iter()
                    .any(|have| values.iter().any(|want| value_matches(want, have)))
            };
            if !ok {
                return false;
            }
        }
        for (field, name, re) in &self.header_regexp {
            match header_values(x, field)
                .iter()
                .find_map(|v| capture(name, re, v))
            {
                Some(c) => captures.push(c),
                None => return false,
            }
        }
        if !self.query.is_empty() {
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(x.query.as_deref().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let all = self.query.iter().all(|(key, values)| {
                pairs
                    .iter()
                    .any(|(k, v)| k == key && values.iter().any(|want| want == "*" || want == v))
            });
            if !all {
                return false;
            }
        }
        if !self.host.is_empty() {
            let host = x.host.as_deref().unwrap_or("");
            if !self.host.iter().any(|h| host_matches(h, host)) {
                return false;
            }
        }
        if let Some(p) = &self.protocol {
            if !protocol_matches(p, x) {
                return false;
            }
        }
        for ranges in [&self.remote_ip, &self.client_ip] {
            if !ranges.is_empty() {
                let ip = x.peer_ip();
                if !ip.is_some_and(|ip| ranges.iter().any(|r| r.contains(&ip))) {
                    return false;
                }
            }
        }
        // A negated set's captures are not kept: it matched by not matching.
        self.not
            .iter()
            .all(|n| !n.check(x, lower_path, &mut Vec::new()))
    }
}

/// The values of `field`; `Host` is the request's host (HTTP/2 sends none).
fn header_values(x: &Exchange, field: &HeaderName) -> Vec<String> {
    if field == http::header::HOST {
        if let Some(raw) = x.headers.get(field).and_then(|v| v.to_str().ok()) {
            return vec![raw.to_owned()];
        }
        return x.host.iter().cloned().collect();
    }
    x.headers
        .get_all(field)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Caddy's header value patterns: `*` any, `*x*` contains, `*x` suffix, `x*`
/// prefix, else exact (case-sensitive).
fn value_matches(want: &str, have: &str) -> bool {
    if want == "*" {
        return true;
    }
    match (want.strip_prefix('*'), want.strip_suffix('*')) {
        (Some(rest), Some(_)) => have.contains(rest.strip_suffix('*').unwrap_or(rest)),
        (Some(suffix), None) => have.ends_with(suffix),
        (None, Some(prefix)) => have.starts_with(prefix),
        (None, None) => have == want,
    }
}

/// `*` in a host pattern stands for exactly one label.
fn host_matches(pattern: &str, host: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == host;
    }
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
}

fn protocol_matches(p: &str, x: &Exchange) -> bool {
    let rank = |v: Version| match v {
        Version::HTTP_09 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_11 => 2,
        Version::HTTP_2 => 3,
        _ => 4,
    };
    let (name, or_later) = match p.strip_suffix('+') {
        Some(n) => (n, true),
        None => (p, false),
    };
    let want = match name {
        "http" => return !x.tls(),
        "https" => return x.tls(),
        "grpc" => {
            return x
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/grpc"))
        }
        "http/1.0" => Version::HTTP_10,
        "http/1.1" => Version::HTTP_11,
        "http/2" => Version::HTTP_2,
        _ => Version::HTTP_3,
    };
    if or_later {
        rank(x.version) >= rank(want)
    } else {
        x.version == want
    }
}

/// The captures of `re` on `text`, if it matches.
fn capture(name: &str, re: &Regex, text: &str) -> Option<Capture> {
    let caps = re.captures(text)?;
    let mut groups = Vec::new();
    for (i, group) in caps.iter().enumerate() {
        let value = group.map_or("", |m| m.as_str()).to_owned();
        groups.push((i.to_string(), value));
    }
    for group_name in re.capture_names().flatten() {
        if let Some(m) = caps.name(group_name) {
            groups.push((group_name.to_owned(), m.as_str().to_owned()));
        }
    }
    Some(Capture {
        name: name.to_owned(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caddy_path_semantics() {
        let m = |p: &str, path: &str| PathPattern::new(p).matches(&path.to_ascii_lowercase());
        assert!(m("/api/*", "/api/x"));
        assert!(m("/api/*", "/API/x"));
        assert!(!m("/api/*", "/api"));
        assert!(m("/api*", "/api"));
        assert!(m("/api*", "/apix"));
        assert!(m("/exact", "/exact"));
        assert!(!m("/exact", "/exact/"));
        assert!(m("*.json", "/a/b.json"));
        assert!(!m("*.json", "/a/b.jsonx"));
        assert!(m("*mid*", "/a/mid/b"));
        assert!(m("*", "/anything"));
    }

    #[test]
    fn header_values_and_hosts() {
        assert!(value_matches("*", "x"));
        assert!(value_matches("*json*", "application/json; charset=utf-8"));
        assert!(value_matches("text/*", "text/html"));
        assert!(value_matches("*/html", "text/html"));
        assert!(!value_matches("text/html", "Text/html"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("example.com", "example.com"));
    }
}
