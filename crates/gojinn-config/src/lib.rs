//! Gojinn configuration: the Caddyfile adapter, the JSON loader and the resolved model.
//!
//! This crate owns turning text into a validated [`Config`]: lexing and parsing
//! the Caddyfile (Caddy's syntax, with the directives gojinn implements),
//! `{env.X}` placeholders, size and duration units, path resolution against the
//! config file's directory, and semantic checks, every error carrying
//! `file:line:col`. It also decides automatic HTTPS (which sites are HTTPS,
//! which issuer each certificate comes from, the HTTP->HTTPS redirects), so
//! the server reads only [`Site::tls`] and never Caddy's address rules; getting
//! the certificates is the server's job. It checks `cron` specs and computes
//! their ticks ([`cron_schedule`]), so that the runtime that runs the jobs
//! and this crate agree on one reading of a spec. It knows nothing of wasmtime or
//! hyper: whether a module
//! exists and compiles is the runtime's job (it reports at
//! [`Function::origin`]), binding sockets the server's.
//!
//! ```
//! use std::path::Path;
//!
//! let src = ":8080 {\n    gojinn ./hello.wasm {\n        timeout 2s\n    }\n}\n";
//! let loaded = gojinn_config::parse_caddyfile(src, Path::new("/srv/Caddyfile"), &|_| None).unwrap();
//! let f = loaded.config.functions()[0];
//! assert_eq!(f.module, Path::new("/srv/hello.wasm"));
//! assert_eq!(f.timeout_ms, 2_000);
//! assert_eq!(f.origin.as_deref(), Some("/srv/Caddyfile:2:5"));
//! ```

use std::path::Path;

mod address;
mod autohttps;
mod basic_auth;
mod caddyfile;
mod conditions;
mod cron;
mod directives;
pub mod encode;
mod error;
mod errors;
mod file_server;
mod gojinn;
mod grants;
mod handlers;
mod headers;
mod https_options;
mod import;
mod jobs;
mod json;
mod lexer;
mod logs;
mod matcher;
mod model;
mod named;
mod names;
mod observe;
mod options;
mod paths;
mod placeholders;
pub mod proxy;
mod redir;
pub mod request_placeholders;
mod rewrite;
mod security;
mod servers;
mod tls;
mod tree;
mod try_files;
mod units;
mod validate;

pub use conditions::{HeaderMatch, HeaderRegexp, MatcherSet, QueryMatch, Regexp};
pub use cron::{cron_schedule, CronSchedule, MIN_EVERY};
pub use error::{ConfigError, Diagnostic, Loaded};
pub use file_server::{FileServerOptions, Precompressed};
pub use handlers::{Account, BasicAuth, ErrorRoutes, HeaderOp, HeaderOps, Redirect, Rewrite};
pub use logs::{
    AccessLog, FileOutput, LogOutput, DEFAULT_FILE_MODE, DEFAULT_ROLL_KEEP, DEFAULT_ROLL_KEEP_DAYS,
    DEFAULT_ROLL_SIZE,
};
pub use model::*;
pub use observe::{redact_url, REDACTED};
pub use proxy::ReverseProxy;
pub use try_files::{TryFiles, TryPolicy};
pub use validate::{
    MAX_IDLE_TIMEOUT_MS, MAX_MAX_HEADERS, MAX_MAX_HEADER_SIZE, MAX_MEMORY_LIMIT, MAX_POOL_SIZE,
    MAX_TIMEOUT_MS, MIN_MAX_HEADER_SIZE, MIN_MEMORY_LIMIT, MIN_POOL_SIZE, MIN_TIMEOUT_MS,
};

/// Loads a config file: a `.json` extension selects the JSON loader, anything
/// else the Caddyfile adapter, whose placeholders read the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        parse_json(&src, path)
    } else {
        parse_caddyfile(&src, path, &|name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }
}

/// Adapts Caddyfile text. `file` names the source in diagnostics and anchors
/// relative paths (its directory, or the current directory if it has none);
/// `env` looks up the variables of `{env.NAME}`, `{$NAME}` and `{$NAME:default}`.
pub fn parse_caddyfile(
    src: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    caddyfile::adapt(src, file, env)
}

/// Loads the JSON form of a [`Config`] (what `gojinn adapt` prints). Unknown
/// fields are errors; relative paths resolve against `file`'s directory; the
/// same semantic checks as the Caddyfile path apply, with positions in the JSON
/// text. [`Function::origin`] points at the function's handler object.
pub fn parse_json(src: &str, file: &Path) -> Result<Loaded, ConfigError> {
    json::load(src, file)
}
