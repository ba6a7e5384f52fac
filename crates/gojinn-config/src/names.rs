//! The names the Caddyfile adapter knows: what gojinn supports, what Caddy has
//! that gojinn does not, and near-miss hints for everything else.

/// Site directives gojinn implements.
pub(crate) const DIRECTIVES: &[&str] = &[
    "root",
    "handle",
    "handle_path",
    "route",
    "respond",
    "file_server",
    "gojinn",
    "tls",
];

/// Caddy's standard directives that gojinn does not implement.
pub(crate) const UNSUPPORTED_DIRECTIVES: &[&str] = &[
    "abort",
    "acme_server",
    "basic_auth",
    "basicauth",
    "bind",
    "copy_response",
    "copy_response_headers",
    "encode",
    "error",
    "forward_auth",
    "fs",
    "handle_errors",
    "header",
    "import",
    "intercept",
    "invoke",
    "log",
    "log_append",
    "log_name",
    "log_skip",
    "map",
    "method",
    "metrics",
    "php_fastcgi",
    "push",
    "redir",
    "request_body",
    "request_header",
    "reverse_proxy",
    "rewrite",
    "skip_log",
    "templates",
    "tracing",
    "try_files",
    "uri",
    "vars",
];

/// Caddy's default directive order (standard distribution). Gojinn keeps the
/// whole list so that `order gojinn before reverse_proxy` means what it means in
/// Caddy; only the relative order of the supported directives matters.
pub(crate) const CADDY_ORDER: &[&str] = &[
    "tracing",
    "map",
    "vars",
    "fs",
    "root",
    "log_append",
    "skip_log",
    "log_skip",
    "log_name",
    "header",
    "copy_response_headers",
    "request_body",
    "redir",
    "method",
    "rewrite",
    "uri",
    "try_files",
    "basicauth",
    "basic_auth",
    "forward_auth",
    "request_header",
    "encode",
    "push",
    "intercept",
    "templates",
    "invoke",
    "handle",
    "handle_path",
    "route",
    "abort",
    "error",
    "copy_response",
    "respond",
    "metrics",
    "reverse_proxy",
    "php_fastcgi",
    "file_server",
    "acme_server",
];

/// Global options gojinn implements.
pub(crate) const GLOBAL_OPTIONS: &[&str] = &[
    "admin",
    "debug",
    "grace_period",
    "log",
    "order",
    "security",
    "servers",
    "storage",
    "tracing",
];

/// Caddy's global options that gojinn does not implement.
pub(crate) const UNSUPPORTED_GLOBAL_OPTIONS: &[&str] = &[
    "acme_ca",
    "acme_ca_root",
    "acme_dns",
    "acme_eab",
    "auto_https",
    "cert_issuer",
    "cert_lifetime",
    "default_bind",
    "default_sni",
    "email",
    "events",
    "fallback_sni",
    "filesystem",
    "http_port",
    "https_port",
    "key_type",
    "local_certs",
    "metrics",
    "ocsp_interval",
    "ocsp_stapling",
    "on_demand_tls",
    "persist_config",
    "pki",
    "preferred_chains",
    "renew_interval",
    "shutdown_delay",
    "skip_install_trust",
    "storage_check",
    "storage_clean_interval",
];

/// `servers { … }` options gojinn implements.
pub(crate) const SERVERS_OPTIONS: &[&str] =
    &["protocols", "timeouts", "max_header_size", "max_headers"];

/// Caddy's `servers { … }` options that gojinn does not implement.
pub(crate) const UNSUPPORTED_SERVERS_OPTIONS: &[&str] = &[
    "client_ip_headers",
    "enable_full_duplex",
    "keepalive_interval",
    "listener_wrappers",
    "log_credentials",
    "metrics",
    "name",
    "strict_sni_host",
    "trace",
    "trusted_proxies",
    "trusted_proxies_strict",
];

/// `gojinn` sub-directives.
pub(crate) const GOJINN_SUBDIRECTIVES: &[&str] = &[
    "timeout",
    "memory_limit",
    "env",
    "args",
    "pool_size",
    "max_body_size",
    "max_output_size",
    "permissions",
    "mount",
    "kv",
    "db_driver",
    "db_dsn",
    "debug_secret",
    "security",
];

/// `file_server` sub-directives gojinn implements.
pub(crate) const FILE_SERVER_SUBDIRECTIVES: &[&str] = &["root"];

/// Caddy's `file_server` sub-directives that gojinn does not implement.
pub(crate) const UNSUPPORTED_FILE_SERVER_SUBDIRECTIVES: &[&str] = &[
    "browse",
    "disable_canonical_uris",
    "etag_file_extensions",
    "fs",
    "hide",
    "index",
    "pass_thru",
    "precompressed",
    "status",
];

/// The candidate closest to `word`, if it is close enough to be a likely typo:
/// at most two edits apart, or a Jaro-Winkler similarity of at least 0.9 (which
/// catches longer names with a few slips, e.g. `max_bdy_size`).
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                *c,
                strsim::levenshtein(&word, c),
                strsim::jaro_winkler(&word, c),
            )
        })
        .filter(|&(c, lev, jw)| (lev <= 2 && lev < c.len().max(word.len())) || jw >= 0.9)
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)))
        .map(|(c, _, _)| c)
}

/// ` (did you mean `x`?)` when a candidate is close, else nothing.
pub(crate) fn hint(word: &str, lists: &[&[&'static str]]) -> String {
    let all: Vec<&str> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    suggest(word, &all)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        assert_eq!(suggest("timeot", GOJINN_SUBDIRECTIVES), Some("timeout"));
        assert_eq!(
            suggest("max_bdy_size", GOJINN_SUBDIRECTIVES),
            Some("max_body_size")
        );
        assert_eq!(
            suggest("memorylimit", GOJINN_SUBDIRECTIVES),
            Some("memory_limit")
        );
        assert_eq!(suggest("gojin", DIRECTIVES), Some("gojinn"));
        assert_eq!(suggest("Respond", DIRECTIVES), Some("respond"));
        assert_eq!(suggest("admn", GLOBAL_OPTIONS), Some("admin"));
        assert_eq!(
            suggest("reverse_prxy", UNSUPPORTED_DIRECTIVES),
            Some("reverse_proxy")
        );
    }

    #[test]
    fn far_words_get_no_hint() {
        assert_eq!(suggest("banana", DIRECTIVES), None);
        assert_eq!(suggest("x", GOJINN_SUBDIRECTIVES), None);
        assert_eq!(suggest("ab", &["cd"]), None);
        assert_eq!(hint("zzz", &[DIRECTIVES]), "");
        assert_eq!(hint("rout", &[DIRECTIVES]), " (did you mean `route`?)");
    }

    #[test]
    fn order_covers_supported_directives() {
        // `gojinn` is ordered by `order`; `tls` configures the site, not a route.
        for d in DIRECTIVES
            .iter()
            .filter(|d| !matches!(**d, "gojinn" | "tls"))
        {
            assert!(CADDY_ORDER.contains(d), "{d}");
        }
    }
}
