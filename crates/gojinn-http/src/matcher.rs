//! Caddy's path matcher: `/exact`, `/prefix*`, `*suffix`, `*middle*` and `*`,
//! compared case-insensitively as Caddy does.

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
}
