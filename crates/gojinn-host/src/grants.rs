//! What a route may touch: KV key patterns and outbound HTTP targets, matched the
//! way Gojinn does (every KV pattern is a key prefix).

/// One `kv_read`/`kv_write` pattern: a key prefix. Gojinn (v0.23 and later)
/// matched every pattern as a prefix, so `users:` covers `users:alice`; a
/// trailing `*` says the same explicitly (`users:*`), and `*` alone is the
/// empty prefix, every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern(String);

impl KeyPattern {
    /// Parses a pattern already checked by the config loader.
    pub fn new(pattern: &str) -> Self {
        KeyPattern(pattern.strip_suffix('*').unwrap_or(pattern).to_owned())
    }

    /// Whether `key` is covered.
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(self.0.as_str())
    }
}

/// A list of patterns; empty grants nothing.
#[derive(Debug, Clone, Default)]
pub struct KeyGrant(Vec<KeyPattern>);

impl KeyGrant {
    /// The grant of `patterns`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        KeyGrant(
            patterns
                .iter()
                .map(|p| KeyPattern::new(p.as_ref()))
                .collect(),
        )
    }

    /// Whether any pattern covers `key`.
    pub fn allows(&self, key: &str) -> bool {
        self.0.iter().any(|p| p.matches(key))
    }

    /// True when nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One `http host:port` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Lower-case host; for `*.example.com` this is `.example.com`.
    host: String,
    wildcard: bool,
    port: u16,
}

impl HttpTarget {
    /// Parses a grant already checked by the config loader (`host:port`,
    /// `*.domain:port`, `[v6]:port`); `None` if it is not one.
    pub fn new(grant: &str) -> Option<Self> {
        let (host, port) = grant.rsplit_once(':')?;
        let port = port.parse().ok()?;
        let host = host.to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some(match host.strip_prefix('*') {
            Some(rest) => HttpTarget {
                host: rest.to_owned(),
                wildcard: true,
                port,
            },
            None => HttpTarget {
                host,
                wildcard: false,
                port,
            },
        })
    }

    /// Whether a request to `host` (lower-case, no brackets) on `port` is covered.
    /// `*.example.com` covers `a.example.com` and `a.b.example.com`, not
    /// `example.com` itself.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        port == self.port
            && if self.wildcard {
                host.len() > self.host.len() && host.ends_with(self.host.as_str())
            } else {
                host == self.host
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns() {
        let g = KeyGrant::new(&["users:*", "config"]);
        assert!(g.allows("users:alice"));
        assert!(g.allows("users:"));
        assert!(g.allows("config"));
        assert!(!g.allows("sessions:1"));
        assert!(!g.allows("user"));
        // Gojinn's patterns are prefixes without a `*` too.
        assert!(g.allows("config2"));
        let g = KeyGrant::new(&["users:"]);
        assert!(g.allows("users:alice"));
        assert!(!g.allows("users"));
        assert!(!g.allows("admins:alice"));
        assert!(KeyGrant::new(&["*"]).allows("anything"));
        assert!(!KeyGrant::new::<&str>(&[]).allows("a"));
    }

    #[test]
    fn http_targets() {
        let t = HttpTarget::new("*.internal.example:8443").unwrap_or_else(|| unreachable!());
        assert!(t.allows("a.internal.example", 8443));
        assert!(t.allows("a.b.internal.example", 8443));
        assert!(!t.allows("internal.example", 8443));
        assert!(!t.allows("a.internal.example", 443));
        assert!(!t.allows("evilinternal.example", 8443));
        let t = HttpTarget::new("127.0.0.1:9000").unwrap_or_else(|| unreachable!());
        assert!(t.allows("127.0.0.1", 9000));
        assert!(!t.allows("127.0.0.2", 9000));
        let t = HttpTarget::new("[::1]:80").unwrap_or_else(|| unreachable!());
        assert!(t.allows("::1", 80));
    }
}
