//! The resolved configuration model: what the Caddyfile adapter produces and what
//! `gojinn adapt` prints. Every field is plain data with units already resolved
//! (bytes, milliseconds, absolute paths), so the server never parses text again.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Default deadline of a function call (Gojinn's default).
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Default memory limit of one sandbox: 128 MB (decimal, as Caddy's units are).
pub const DEFAULT_MEMORY_LIMIT: u64 = 128_000_000;
/// Default maximum number of concurrent sandboxes of one route.
pub const DEFAULT_POOL_SIZE: u32 = 64;
/// Default cap on a request body handed to a function: 32 MiB.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 32 << 20;
/// Default cap on what a function may write to stdout: 16 MiB.
pub const DEFAULT_MAX_OUTPUT_SIZE: u64 = 16 << 20;
/// Default time a request waits for a free sandbox when its route is at
/// `pool_size` before it is answered 503 (`queue_timeout`): 200 ms.
pub const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 200;
/// Default admin listener address.
pub const DEFAULT_ADMIN_ADDR: &str = "localhost:2019";

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Admin listener address; `None` when `admin off`.
    #[serde(default = "default_admin")]
    pub admin: Option<String>,
    /// `debug` global option: verbose logging.
    #[serde(default)]
    pub debug: bool,
    /// `storage` global option: the directory of the embedded stores (KV). `None`
    /// means the user data directory (`$XDG_DATA_HOME/gojinn`, else
    /// `$HOME/.local/share/gojinn`), decided by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<PathBuf>,
    /// `storage redis://…` / `storage postgres://…`: certificates, the ACME account and
    /// their locks live in this shared store, so several nodes share them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_url: Option<String>,
    /// `queue redis://…` / `queue postgres://…`: the job queue of every site
    /// that does not name its own; `None` is the embedded queue in `storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Automatic HTTPS global options.
    #[serde(default, skip_serializing_if = "AutoHttpsOptions::is_default")]
    pub auto_https: AutoHttpsOptions,
    /// `log` global option: format and level of the server's own log.
    #[serde(default, skip_serializing_if = "LogConfig::is_default")]
    pub log: LogConfig,
    /// `tracing` global option: OpenTelemetry traces, off when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
    /// Server-wide operational options (global options block).
    #[serde(default, skip_serializing_if = "ServerOptions::is_default")]
    pub server: ServerOptions,
    /// Site blocks, in file order.
    #[serde(default)]
    pub sites: Vec<Site>,
}

/// The `log { output …; format …; level … }` global option.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Where the server's log goes.
    #[serde(default, skip_serializing_if = "crate::LogOutput::is_stderr")]
    pub output: crate::LogOutput,
    /// Line format.
    #[serde(default)]
    pub format: LogFormat,
    /// Least severe level written; `None` means `info` (`debug` with the `debug`
    /// global option).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
}

impl LogConfig {
    fn is_default(&self) -> bool {
        *self == LogConfig::default()
    }
}

/// The `tracing { endpoint …; protocol …; sampler … }` global option.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// OTLP endpoint; `None` leaves it to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the OTLP default for the protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// OTLP transport; `None` leaves it to `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// HTTP/protobuf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtlpProtocol>,
    /// Which traces are recorded.
    #[serde(default)]
    pub sampler: TraceSampler,
}

/// OTLP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP (port 4318).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC (port 4317).
    #[serde(rename = "grpc")]
    Grpc,
}

/// Trace samplers, named as `OTEL_TRACES_SAMPLER` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceSampler {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// Follow the caller's sampled flag; sample root requests (the default).
    #[default]
    ParentbasedAlwaysOn,
    /// This fraction of traces, by trace id.
    Traceidratio(f64),
    /// Follow the caller's sampled flag; sample this fraction of root requests.
    ParentbasedTraceidratio(f64),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line (the default; what log shippers want).
    #[default]
    Json,
    /// Human-readable lines for a terminal.
    Console,
}

/// Log severity levels, least to most verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings (faults, config warnings) and errors.
    Warn,
    /// Access log, guest stderr, start-up and above.
    Info,
    /// Everything gojinn logs.
    Debug,
}

impl LogLevel {
    /// The level's name, lower-case.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// Default time in-flight requests get to finish on shutdown: 10 s.
pub const DEFAULT_GRACE_PERIOD_MS: u64 = 10_000;
/// Default time a client has to send a request head, and a TLS handshake to
/// finish (slowloris guard): 10 s.
pub const DEFAULT_READ_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default time a keep-alive connection may sit with no request in flight
/// before it is closed: 5 min, as in Caddy.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 300_000;
/// Default cap on the size of a request head (request line and headers): 64 KiB.
pub const DEFAULT_MAX_HEADER_SIZE: u64 = 64 << 10;
/// Default cap on the number of request headers.
pub const DEFAULT_MAX_HEADERS: u32 = 100;

/// Server-wide operational options: shutdown, protocols and connection limits
/// (the `grace_period` and `servers { … }` global options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerOptions {
    /// `grace_period`: how long in-flight requests may run after a shutdown
    /// signal before their sandboxes are interrupted (answered 503), in ms.
    #[serde(default = "default_grace_period_ms")]
    pub grace_period_ms: u64,
    /// `servers { protocols … }`: the HTTP versions served. HTTP/1.1 is always
    /// among them; `h2` applies to TLS ports (by ALPN), `h2c` to cleartext ones.
    #[serde(
        default = "default_protocols",
        skip_serializing_if = "is_default_protocols"
    )]
    pub protocols: Vec<Protocol>,
    /// `servers { timeouts { read_header … } }`: time to receive a request head
    /// (and to finish a TLS handshake), in ms.
    #[serde(
        default = "default_read_header_timeout_ms",
        skip_serializing_if = "is_default_read_header_timeout_ms"
    )]
    pub read_header_timeout_ms: u64,
    /// `servers { timeouts { idle … } }`: a connection with no request in
    /// flight for this long is closed, in ms.
    #[serde(
        default = "default_idle_timeout_ms",
        skip_serializing_if = "is_default_idle_timeout_ms"
    )]
    pub idle_timeout_ms: u64,
    /// `servers { max_header_size … }`: cap on a request head, in bytes (past
    /// it: 431).
    #[serde(
        default = "default_max_header_size",
        skip_serializing_if = "is_default_max_header_size"
    )]
    pub max_header_size: u64,
    /// `servers { max_headers … }` (a Gojinn extension): cap on the number of
    /// request headers (past it: 431).
    #[serde(
        default = "default_max_headers",
        skip_serializing_if = "is_default_max_headers"
    )]
    pub max_headers: u32,
}

/// An HTTP version a server may speak (`servers { protocols … }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 (and 1.0), always served.
    H1,
    /// HTTP/2 over TLS, negotiated by ALPN.
    H2,
    /// HTTP/2 over cleartext with prior knowledge (no `Upgrade: h2c`).
    H2c,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            grace_period_ms: DEFAULT_GRACE_PERIOD_MS,
            protocols: default_protocols(),
            read_header_timeout_ms: DEFAULT_READ_HEADER_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

impl ServerOptions {
    /// True when every option has its default (then the JSON form leaves it out).
    pub fn is_default(&self) -> bool {
        *self == ServerOptions::default()
    }

    /// True when `protocols` lists `p`.
    pub fn speaks(&self, p: Protocol) -> bool {
        self.protocols.contains(&p)
    }
}

fn default_grace_period_ms() -> u64 {
    DEFAULT_GRACE_PERIOD_MS
}
fn default_protocols() -> Vec<Protocol> {
    vec![Protocol::H1, Protocol::H2]
}
fn is_default_protocols(p: &[Protocol]) -> bool {
    p == [Protocol::H1, Protocol::H2]
}
fn is_default_read_header_timeout_ms(v: &u64) -> bool {
    *v == default_read_header_timeout_ms()
}
fn default_read_header_timeout_ms() -> u64 {
    DEFAULT_READ_HEADER_TIMEOUT_MS
}
fn is_default_idle_timeout_ms(v: &u64) -> bool {
    *v == default_idle_timeout_ms()
}
fn default_idle_timeout_ms() -> u64 {
    DEFAULT_IDLE_TIMEOUT_MS
}
fn is_default_max_header_size(v: &u64) -> bool {
    *v == default_max_header_size()
}
fn default_max_header_size() -> u64 {
    DEFAULT_MAX_HEADER_SIZE
}
fn is_default_max_headers(v: &u32) -> bool {
    *v == default_max_headers()
}
fn default_max_headers() -> u32 {
    DEFAULT_MAX_HEADERS
}

fn default_admin() -> Option<String> {
    Some(DEFAULT_ADMIN_ADDR.to_owned())
}

/// One site block: the addresses it answers on and its routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Addresses of the block (`:8080`, `localhost:8080`, `example.com:9000`).
    pub addresses: Vec<Address>,
    /// The site is served over TLS on all its ports with these certificates;
    /// cleartext when `None`. Resolved: a site that automatic HTTPS made HTTPS
    /// has its implicit issuer here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// `log`: the site's access log; none when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<crate::AccessLog>,
    /// `queue URL`: the job queue of this site's functions, instead of
    /// [`Config::queue`]; `None` uses that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Routes, already sorted in Caddy's directive order; evaluated first to last.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// `handle_errors` blocks, in file order: the first whose statuses cover a
    /// failed request's answers it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::handlers::ErrorRoutes>,
}

/// Default port of cleartext HTTP (`http_port`).
pub const DEFAULT_HTTP_PORT: u16 = 80;
/// Default port of HTTPS (`https_port`).
pub const DEFAULT_HTTPS_PORT: u16 = 443;

/// The automatic HTTPS global options (`email`, `acme_ca`, `http_port`,
/// `auto_https`, …). The Caddyfile adapter has already applied them to every
/// site's [`Site::tls`]; the server reads the ports and the ACME account data
/// from here, the rest from the sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoHttpsOptions {
    /// `email`: the ACME account's contact address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `acme_ca URL`: the ACME directory URL; `None` is Let's Encrypt
    /// production (the server's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_ca: Option<String>,
    /// `acme_ca_root FILE`: absolute path of a PEM file with the root the ACME
    /// server's own HTTPS certificate chains to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_ca_root: Option<PathBuf>,
    /// `acme_eab { key_id …  mac_key … }`: External Account Binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_eab: Option<Eab>,
    /// `http_port`: the port of cleartext HTTP (and of the HTTP->HTTPS
    /// redirects and the ACME HTTP challenge).
    pub http_port: u16,
    /// `https_port`: the port of HTTPS for addresses that give none.
    pub https_port: u16,
    /// `auto_https`: what automatic HTTPS does.
    pub mode: AutoHttps,
    /// `local_certs`: every managed site gets its certificate from the
    /// internal CA instead of ACME.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub local_certs: bool,
}

impl Default for AutoHttpsOptions {
    fn default() -> Self {
        AutoHttpsOptions {
            email: None,
            acme_ca: None,
            acme_ca_root: None,
            acme_eab: None,
            http_port: DEFAULT_HTTP_PORT,
            https_port: DEFAULT_HTTPS_PORT,
            mode: AutoHttps::On,
            local_certs: false,
        }
    }
}

impl AutoHttpsOptions {
    /// True when every option has its default (then the JSON form leaves it out).
    pub fn is_default(&self) -> bool {
        *self == AutoHttpsOptions::default()
    }
}

/// The `auto_https` global option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoHttps {
    /// Sites with a host are HTTPS with managed certificates, and their hosts
    /// are redirected from HTTP.
    #[default]
    On,
    /// `off`: no implicit HTTPS, no managed certificates but those a `tls`
    /// directive asks for, no redirects.
    Off,
    /// `disable_redirects`: as `On`, without the HTTP->HTTPS redirects.
    DisableRedirects,
    /// `disable_certs`: as `On`, but every HTTPS site must give `tls CERT KEY`.
    DisableCerts,
}

/// ACME External Account Binding credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eab {
    /// The key identifier the CA gave.
    pub key_id: String,
    /// The HMAC key the CA gave, as written (base64url).
    pub mac_key: String,
}

/// How a TLS site gets its certificate.
///
/// The JSON form is either `{"cert": …, "key": …}` or `{"issuer": …}`;
/// deserializing picks the form by the `issuer` key, so errors name the bad
/// field of that form (a derived `untagged` would only say that nothing matched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Tls {
    /// `tls <cert.pem> <key.pem>`: files the user gives.
    Files(TlsFiles),
    /// A certificate gojinn obtains and renews.
    Managed(Issuer),
}

impl<'de> Deserialize<'de> for Tls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        // serde's internally tagged unit variants ignore other keys, even
        // with `deny_unknown_fields`: refuse them here.
        if let Some(map) = value.as_object() {
            if map.get("issuer").and_then(|i| i.as_str()) == Some("internal") {
                if let Some(extra) = map.keys().find(|k| *k != "issuer") {
                    return Err(D::Error::custom(format!(
                        "unknown field `{extra}`, expected `issuer` (the internal issuer takes no options)"
                    )));
                }
            }
        }
        if value.get("issuer").is_some() {
            Issuer::deserialize(value).map(Tls::Managed)
        } else {
            TlsFiles::deserialize(value).map(Tls::Files)
        }
        .map_err(D::Error::custom)
    }
}

/// `tls <cert.pem> <key.pem>`: a certificate chain and its private key, both
/// PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Absolute path of the certificate chain (leaf first).
    pub cert: PathBuf,
    /// Absolute path of the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Where the directive was written (`file:line:col`), for error messages
    /// about the files; not part of the JSON form.
    #[serde(skip)]
    pub origin: Option<String>,
}

/// Who issues a managed certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "issuer", rename_all = "snake_case", deny_unknown_fields)]
pub enum Issuer {
    /// An ACME CA (Let's Encrypt unless `dir` says otherwise).
    Acme(AcmeIssuer),
    /// Gojinn's own local CA (`tls internal`, `local_certs`): trusted only by
    /// clients that were given its root.
    Internal,
}

/// The ACME issuer of a site, the global options already applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeIssuer {
    /// The account's contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// ACME directory URL; `None` is Let's Encrypt production (the server's
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// PEM of the CA's root for the ACME server's own HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_root: Option<PathBuf>,
    /// External Account Binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab: Option<Eab>,
    /// `disable_http_challenge`: never answer the HTTP-01 challenge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_http_challenge: bool,
    /// `disable_tlsalpn_challenge`: never answer the TLS-ALPN-01 challenge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_tlsalpn_challenge: bool,
}

/// A site address. Gojinn listens on all interfaces at `port` (as Caddy does);
/// `host`, when present, restricts the block to requests whose `Host` matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Host name to match (case-insensitive), or `None` for any host. A
    /// leading `*.` (`*.example.com`) stands for any one label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// TCP port; `0` asks the OS for a free port (used by tests).
    pub port: u16,
}

/// A route: an optional path matcher and the handler it leads to.
///
/// Routes sharing a `group` are mutually exclusive (Caddy's `handle` semantics):
/// once one of them matched, the others of the group are skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Mutual-exclusion group name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Path pattern (`/exact`, `/prefix*`, `*suffix`, `*`), Caddy semantics:
    /// case-insensitive; `None` matches every request.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
    /// A named matcher's conditions (`@name`), all of which must hold too;
    /// `None` adds none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<crate::conditions::MatcherSet>,
    /// What to do with a matching request.
    pub handle: Handler,
}

/// A route's handler.
// `Gojinn` is much larger than the other variants; boxing it would only save memory
// in a tree built once per config load, at the cost of every match site.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "handler", rename_all = "snake_case", deny_unknown_fields)]
pub enum Handler {
    /// Nested routes (`handle`, `handle_path`, `route`). When none of them answers,
    /// evaluation continues after this route.
    Subroute {
        /// Prefix removed from the request path before the nested routes see it
        /// (`handle_path`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strip_prefix: Option<String>,
        /// The nested routes, in evaluation order.
        routes: Vec<Route>,
    },
    /// `respond`: a fixed status and body.
    StaticResponse {
        /// HTTP status.
        status: u16,
        /// Response body.
        #[serde(default)]
        body: String,
    },
    /// `file_server`: static files below `root`.
    FileServer {
        /// Absolute directory served.
        root: PathBuf,
        /// `browse`, `hide`, `index`, `precompressed`.
        #[serde(default, skip_serializing_if = "crate::FileServerOptions::is_default")]
        options: crate::FileServerOptions,
    },
    /// `try_files`: rewrites the path to the first listed file that exists
    /// below `root`, then evaluation goes on.
    TryFiles {
        /// Absolute directory the files are looked up in.
        root: PathBuf,
        /// The files, status and policy.
        try_files: crate::TryFiles,
    },
    /// `gojinn`: a WebAssembly function.
    Gojinn(Function),
    /// `header`: response header operations.
    Headers(crate::handlers::HeaderOps),
    /// `request_header`: request header operations.
    RequestHeaders(crate::handlers::HeaderOps),
    /// `redir`: a redirect.
    Redirect(crate::handlers::Redirect),
    /// `rewrite`, `uri`: a change to the request's path and query.
    Rewrite(crate::handlers::Rewrite),
    /// `reverse_proxy`: forwards the request to upstreams.
    ReverseProxy(crate::proxy::ReverseProxy),
    /// `basic_auth`: HTTP Basic authentication.
    BasicAuth(crate::handlers::BasicAuth),
    /// `encode`: compresses the response of the routes after it. Not an
    /// answer: evaluation continues with the next route.
    Encode(crate::encode::Encode),
}

/// One `gojinn` directive: a module and its sandbox limits and grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// Absolute path of the `.wasm` or `.wat` module.
    pub module: PathBuf,
    /// Deadline of one call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Maximum linear memory of one sandbox, in bytes.
    #[serde(default = "default_memory_limit")]
    pub memory_limit: u64,
    /// Environment variables given to the guest, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Arguments given to the guest after `argv[0]` (the module file name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Maximum number of concurrent sandboxes of this route.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// `queue_timeout`: how long a request waits for a free sandbox when the
    /// route is at `pool_size`, in milliseconds (past it: 503).
    #[serde(
        default = "default_queue_timeout_ms",
        skip_serializing_if = "is_default_queue_timeout_ms"
    )]
    pub queue_timeout_ms: u64,
    /// `fuel_limit`: wasm fuel one call may consume (about one unit per wasm
    /// instruction; past it: 504); `None` for no limit but the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_limit: Option<u64>,
    /// `snapshot`: requests start from a snapshot of the module taken after its
    /// initialisation function ran (see docs/performance.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
    /// Request body cap, in bytes (past it: 413).
    #[serde(default = "default_max_body_size")]
    pub max_body_size: u64,
    /// Guest stdout cap, in bytes (past it: 502).
    #[serde(default = "default_max_output_size")]
    pub max_output_size: u64,
    /// Host capabilities granted to the function; nothing by default.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
    /// Host directories visible to the guest (`mount HOST GUEST [ro|rw]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// KV backend: `embedded` (the default) or a `redis://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<String>,
    /// SQL driver of `db_dsn`; SQLite when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_driver: Option<DbDriver>,
    /// SQL data source: a file path for SQLite (resolved against the config file's
    /// directory), a connection string for PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_dsn: Option<String>,
    /// `debug_secret`: a request whose `X-Gojinn-Debug` header equals it gets the
    /// guest's stderr in `X-Gojinn-Logs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_secret: Option<String>,
    /// `cron "<spec>" <module>`: runs of `module` on a schedule, with this route's
    /// limits and grants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crons: Vec<Cron>,
    /// How jobs of this route are retried and bounded.
    #[serde(default, skip_serializing_if = "JobPolicy::is_default")]
    pub jobs: JobPolicy,
    /// `record_crashes`: a failing call writes a crash record into `crash_path`
    /// (`None`: the `crashes` directory of the storage, decided by the server).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_crashes: bool,
    /// `crash_path DIR`: absolute directory of the crash records, resolved
    /// against the config file's directory; only set with `record_crashes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_path: Option<PathBuf>,
    /// Signature policy of the module (a `security` block in the `gojinn`
    /// block, else the global one); `None` checks no signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    /// Where the directive was written (`file:line:col`), for error messages about
    /// the module; not part of the JSON form.
    #[serde(skip)]
    pub origin: Option<String>,
}

/// One `cron "<spec>" <module> [{ catch_up none|once }]` trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cron {
    /// The schedule as written, already checked: see [`crate::cron_schedule`].
    pub spec: String,
    /// Absolute path of the `.wasm` or `.wat` module run at each tick,
    /// resolved as the route's module is.
    pub module: PathBuf,
    /// What happens to the ticks missed while no node ran.
    #[serde(default, skip_serializing_if = "CatchUp::is_none")]
    pub catch_up: CatchUp,
}

/// `catch_up`: what a `cron` trigger does about ticks missed while no node ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed ticks are skipped; the next run is the next tick (the default).
    #[default]
    None,
    /// One run makes up for all the ticks missed, however many.
    Once,
}

impl CatchUp {
    /// True for [`CatchUp::None`], the default (then the JSON form leaves it out).
    pub fn is_none(&self) -> bool {
        *self == CatchUp::None
    }
}

/// Default number of retries of a failed job: none, one attempt only.
pub const DEFAULT_JOB_RETRIES: u32 = 0;
/// Most retries a route may ask for (`retries`).
pub const MAX_JOB_RETRIES: u32 = 100;
/// Default delay before a failed job is retried: 1 s.
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 1_000;
/// Longest `retry_backoff`: 1 day.
pub const MAX_RETRY_BACKOFF_MS: u64 = 86_400_000;
/// Default cap on the jobs waiting for one route.
pub const DEFAULT_QUEUE_MAX: u64 = 10_000;
/// Default cap on a job's payload: 1 MiB.
pub const DEFAULT_JOB_PAYLOAD_MAX: u64 = 1 << 20;

/// How the jobs of a route are retried and bounded (`retries`,
/// `retry_backoff`, `queue_max`, `job_payload_max`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPolicy {
    /// `retries N`: how many times a failed job is tried again (0: one attempt).
    #[serde(default = "default_job_retries")]
    pub retries: u32,
    /// `retry_backoff`: the delay before a failed job is tried again, in ms.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// `queue_max N`: jobs that may wait for this route; past it, enqueueing fails.
    #[serde(default = "default_queue_max")]
    pub queue_max: u64,
    /// `job_payload_max SIZE`: the largest payload of one job, in bytes.
    #[serde(default = "default_job_payload_max")]
    pub payload_max: u64,
}

impl Default for JobPolicy {
    fn default() -> Self {
        JobPolicy {
            retries: DEFAULT_JOB_RETRIES,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            queue_max: DEFAULT_QUEUE_MAX,
            payload_max: DEFAULT_JOB_PAYLOAD_MAX,
        }
    }
}

impl JobPolicy {
    /// True when every field has its default (then the JSON form leaves it out).
    pub fn is_default(&self) -> bool {
        *self == JobPolicy::default()
    }
}

fn default_job_retries() -> u32 {
    DEFAULT_JOB_RETRIES
}
fn default_retry_backoff_ms() -> u64 {
    DEFAULT_RETRY_BACKOFF_MS
}
fn default_queue_max() -> u64 {
    DEFAULT_QUEUE_MAX
}
fn default_job_payload_max() -> u64 {
    DEFAULT_JOB_PAYLOAD_MAX
}

/// `security { policy strict|audit; trusted_key <hex> … }`: which signatures a
/// module needs (Gojinn's `module ‖ Ed25519 signature ‖ "GJSIG"` format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// What happens to a module without a valid signature.
    pub policy: SignaturePolicy,
    /// Ed25519 public keys (64 hex digits each) whose signatures are accepted.
    pub trusted_keys: Vec<String>,
}

/// What happens to a module without a valid signature by a trusted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignaturePolicy {
    /// The module is refused at load and at reload.
    Strict,
    /// The module runs; a warning is logged.
    Audit,
}

/// One `env KEY VALUE` grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Value, placeholders already substituted.
    pub value: String,
    /// The value came from an `{env.X}` placeholder: crash records redact it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_env: bool,
}

/// The `permissions { … }` block of a function. Every list empty and `db` unset
/// (the default) grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Keys the function may read. Every pattern is a prefix, as in Gojinn:
    /// `users:` covers `users:alice`; a trailing `*` (`users:*`, `*`) says the
    /// same explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv_read: Vec<String>,
    /// Keys the function may write, delete and lock; same patterns as `kv_read`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv_write: Vec<String>,
    /// SQL access to `db_dsn`. A function with a `db_dsn` and no `db` entry
    /// gets `write` (Gojinn granted the database to any route with a DSN); the
    /// loaders fill it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<DbAccess>,
    /// Outbound HTTP targets, `host:port`; a host may start with `*.` (any
    /// subdomain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Modules the function may enqueue jobs for (`enqueue ./worker.wasm`):
    /// absolute paths, resolved as module paths are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enqueue: Vec<PathBuf>,
}

impl Permissions {
    /// True when nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.kv_read.is_empty()
            && self.kv_write.is_empty()
            && self.db.is_none()
            && self.http.is_empty()
            && self.enqueue.is_empty()
    }
}

/// SQL access granted by `permissions { db … }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbAccess {
    /// Statements that do not change the database.
    Read,
    /// Any statement.
    Write,
}

/// SQL driver (`db_driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbDriver {
    /// Embedded SQLite; the DSN is a file path. Gojinn's names `sqlite3` and
    /// `libsql` are accepted for it.
    #[serde(alias = "sqlite3", alias = "libsql")]
    Sqlite,
    /// PostgreSQL; the DSN is a connection string or URL.
    Postgres,
}

/// One `mount HOST GUEST [ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Absolute host directory.
    pub host: PathBuf,
    /// Absolute path the guest sees it at.
    pub guest: String,
    /// `rw`: the guest may create and change files; read-only otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub writable: bool,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_memory_limit() -> u64 {
    DEFAULT_MEMORY_LIMIT
}
fn default_pool_size() -> u32 {
    DEFAULT_POOL_SIZE
}
fn default_queue_timeout_ms() -> u64 {
    DEFAULT_QUEUE_TIMEOUT_MS
}
fn is_default_queue_timeout_ms(v: &u64) -> bool {
    *v == DEFAULT_QUEUE_TIMEOUT_MS
}
fn default_max_body_size() -> u64 {
    DEFAULT_MAX_BODY_SIZE
}
fn default_max_output_size() -> u64 {
    DEFAULT_MAX_OUTPUT_SIZE
}

impl Config {
    /// Calls `visit` on every function of the config, in file order (depth
    /// first), for changing them in place.
    pub fn for_each_function_mut(&mut self, mut visit: impl FnMut(&mut Function)) {
        fn walk(routes: &mut [Route], visit: &mut impl FnMut(&mut Function)) {
            for r in routes {
                match &mut r.handle {
                    Handler::Gojinn(f) => visit(f),
                    Handler::Subroute { routes, .. } => walk(routes, visit),
                    _ => {}
                }
            }
        }
        for s in &mut self.sites {
            walk(&mut s.routes, &mut visit);
        }
    }

    /// Every function of the config, in file order (depth first).
    pub fn functions(&self) -> Vec<&Function> {
        self.sites.iter().flat_map(Site::functions).collect()
    }
}

impl Site {
    /// Every function of the site's routes, in file order (depth first).
    pub fn functions(&self) -> Vec<&Function> {
        fn walk<'a>(routes: &'a [Route], out: &mut Vec<&'a Function>) {
            for r in routes {
                match &r.handle {
                    Handler::Gojinn(f) => out.push(f),
                    Handler::Subroute { routes, .. } => walk(routes, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.routes, &mut out);
        out
    }
}
