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
    "reverse_proxy",
    "encode",
    "tls",
    "header",
    "request_header",
    "redir",
    "rewrite",
    "uri",
    "handle_errors",
    "basic_auth",
    "basicauth",
    "log",
    "try_files",
    "queue",
];

/// Caddy's standard directives that gojinn does not implement.
pub(crate) const UNSUPPORTED_DIRECTIVES: &[&str] = &[
    "abort",
    "acme_server",
    "bind",
    "copy_response",
    "copy_response_headers",
    "error",
    "forward_auth",
    "fs",
    "intercept",
    "invoke",
    "log_append",
    "log_name",
    "log_skip",
    "map",
    "method",
    "metrics",
    "php_fastcgi",
    "push",
    "request_body",
    "skip_log",
    "templates",
    "tracing",
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
    "acme_ca",
    "acme_ca_root",
    "acme_eab",
    "admin",
    "auto_https",
    "debug",
    "email",
    "grace_period",
    "http_port",
    "https_port",
    "local_certs",
    "log",
    "order",
    "queue",
    "security",
    "servers",
    "storage",
    "tracing",
];

/// Caddy's global options that gojinn does not implement.
pub(crate) const UNSUPPORTED_GLOBAL_OPTIONS: &[&str] = &[
    "acme_dns",
    "cert_issuer",
    "cert_lifetime",
    "default_bind",
    "default_sni",
    "events",
    "fallback_sni",
    "filesystem",
    "key_type",
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

/// `gojinn` sub-directives, but for the jobs ones (`crate::jobs::SUBDIRECTIVES`).
pub(crate) const GOJINN_SUBDIRECTIVES: &[&str] = &[
    "wasm_file",
    "path",
    "timeout",
    "memory_limit",
    "env",
    "args",
    "pool_size",
    "queue_timeout",
    "fuel_limit",
    "snapshot",
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

/// Sub-directives of upstream Gojinn (the Caddy plugin) for features this server
/// does not have, each with what to do instead: the text after "remove it, or".
/// Families (`nats_*`, `mqtt_*`, `ai_*`, `s3_*`, `cluster_*`, `leaf_*`) match by
/// prefix, so a member added upstream later is still recognised.
const GOJINN_ONLY: &[(&str, &str)] = &[
    ("cluster_", CLUSTER),
    ("leaf_", CLUSTER),
    ("nats_", CLUSTER),
    ("trusted_nats_users", CLUSTER),
    ("server_name", CLUSTER),
    ("consensus", CLUSTER),
    ("mqtt_", "have an MQTT bridge POST each message to a gojinn route"),
    ("ai_", "call the model's HTTP API from the function with `permissions { http api.example.com:443 }`"),
    ("s3_", "keep objects in a mounted directory (`mount ./objects /objects rw`) or in KV"),
    ("sentry_dsn", "ship the log's fault lines or the OpenTelemetry traces (the `tracing` global option) to your error tracker"),
    ("api_key", "check the key in the function (it gets every request header)"),
    ("cors_origin", "set `Access-Control-Allow-Origin` in the function's response headers"),
    ("rate_limit", "rate-limit in a proxy in front of gojinn"),
    ("allow_host", "grant outbound HTTP with `permissions { http host:port }`"),
    ("data_dir", "set the directory of the embedded stores with the `storage` global option"),
    ("db_sync_", "use a local SQLite file, or PostgreSQL (`db_driver postgres`) for data shared between nodes"),
];

/// Several nodes are independent here; what Gojinn's NATS cluster shared, a
/// shared store does.
const CLUSTER: &str = "run several gojinn nodes behind a load balancer and share state through `kv redis://…` and a PostgreSQL `db_dsn` (docs/gojinn.md)";

/// What to do instead of `name`, when it is a sub-directive of upstream Gojinn
/// for a feature this server does not have.
pub(crate) fn gojinn_only(name: &str) -> Option<&'static str> {
    GOJINN_ONLY
        .iter()
        .find(|(n, _)| {
            if n.ends_with('_') {
                name.starts_with(n) && name.len() > n.len()
            } else {
                name == *n
            }
        })
        .map(|(_, instead)| *instead)
}

/// The message for a Gojinn-only sub-directive (or `permissions` entry).
pub(crate) fn gojinn_only_message(name: &str, instead: &str) -> String {
    format!("`{name}` is a Gojinn feature this server does not have: remove it, or {instead}")
}

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
            suggest("templats", UNSUPPORTED_DIRECTIVES),
            Some("templates")
        );
    }

    #[test]
    fn gojinn_features_are_recognised_by_name_and_family() {
        for name in [
            "s3_bucket",
            "nats_port",
            "mqtt_subscribe",
            "ai_tool",
            "cluster_replicas",
            "consensus",
            "sentry_dsn",
            "db_sync_url",
        ] {
            assert!(gojinn_only(name).is_some(), "{name}");
        }
        for name in ["s3_", "timeout", "db_dsn", "aix", "consensus2"] {
            assert_eq!(gojinn_only(name), None, "{name}");
        }
        // No supported sub-directive is mistaken for one of them.
        for name in GOJINN_SUBDIRECTIVES
            .iter()
            .chain(crate::jobs::SUBDIRECTIVES)
        {
            assert_eq!(gojinn_only(name), None, "{name}");
        }
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
        // `gojinn` is ordered by `order`; `tls`, `log`, `queue` and `handle_errors`
        // configure the site, not a route.
        for d in DIRECTIVES
            .iter()
            .filter(|d| !matches!(**d, "gojinn" | "tls" | "log" | "queue" | "handle_errors"))
        {
            assert!(CADDY_ORDER.contains(d), "{d}");
        }
    }
}
