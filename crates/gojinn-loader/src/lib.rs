//! From a validated config to what serves it: every function compiled and
//! indexed by a [`FunctionId`], and each site's route tree with ids at its
//! function leaves.
//!
//! This crate owns the one traversal of the config's routes, the grants of each
//! function (its [`Capabilities`], with stores taken from the process's
//! long-lived [`Stores`]), the runtime spec of each function, parallel
//! compilation, and the typed list of [`LoadError`]s, each with the
//! `file:line:col` of its directive. It leaves listening, routing and the HTTP
//! mapping to `gojinn-http`, and running a call to `gojinn-runtime`.
//!
//! Loading is two steps so the server can check its certificates between them,
//! before anything compiles: [`Plan::new`] (grants and specs; cheap, fails fast)
//! and [`Plan::compile`].

use bytes::Bytes;
use gojinn_config::{Config, DbAccess, DbDriver, Function as FunctionConfig, Handler, Route};
use gojinn_host::{Access, Capabilities, Stores};
use gojinn_runtime::{
    signature, CacheStats, Function, FunctionSpec, MountSpec, Runtime, RuntimeOptions,
    SignaturePolicy, Snapshot, DEFAULT_MAX_STDERR_BYTES,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The label of a route with no enclosing matcher.
pub const ANY_ROUTE: &str = "*";

/// Why a config could not be loaded; [`Display`](std::fmt::Display) starts with
/// the `file:line:col` of the directive when known.
#[derive(Debug)]
pub struct LoadError {
    /// Where the offending directive was written.
    pub origin: Option<String>,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

/// What went wrong while loading.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// A store named by the config cannot be used (bad URL, no storage directory,
    /// a file that cannot be opened).
    #[error("{0}")]
    Store(String),
    /// A `mount` whose host directory is missing.
    #[error("mount host directory `{}` does not exist or is not a directory", .0.display())]
    MountMissing(PathBuf),
    /// A `trusted_key` that is not an Ed25519 public key in hex.
    #[error("trusted_key `{key}`: {reason}")]
    TrustedKey {
        /// The key as written.
        key: String,
        /// Why it is not a key.
        reason: String,
    },
    /// A `respond` status HTTP cannot carry.
    #[error("invalid status `{0}` in respond")]
    Status(u16),
    /// The engine could not be set up, or a module could not be loaded.
    #[error(transparent)]
    Runtime(#[from] gojinn_runtime::LoadError),
    /// Compiling a module panicked (a bug; reported instead of aborting).
    #[error("module compilation panicked")]
    Panicked,
}

impl LoadError {
    fn at(origin: Option<&str>, kind: LoadErrorKind) -> Self {
        LoadError {
            origin: origin.map(str::to_owned),
            kind,
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}", self.kind),
            None => self.kind.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Something a load found worth telling the operator that does not stop it:
/// where Gojinn behaved differently, and the line that restores its behaviour.
/// [`Display`](std::fmt::Display) starts with the `file:line:col` of the
/// directive when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadNotice {
    /// Where the directive concerned was written.
    pub origin: Option<String>,
    /// A warning (requests will be denied or fail) rather than information.
    pub warning: bool,
    /// What was found and what to write instead.
    pub message: String,
}

impl std::fmt::Display for LoadNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Whether `name` (imported from `gojinn`) is a KV call: reads, writes and
/// locks, which need a `kv_read`/`kv_write` grant.
fn is_kv_import(name: &str) -> bool {
    name.starts_with("host_kv_") || name.starts_with("host_mutex_")
}

/// The index of a function in [`Loaded::functions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FunctionId(usize);

impl FunctionId {
    /// The position of the function, in file order (depth first).
    pub fn index(self) -> usize {
        self.0
    }
}

/// One `gojinn` route, compiled.
pub struct LoadedFunction {
    /// The function, ready to call.
    pub function: Function,
    /// The nearest enclosing matcher (a bounded label for logs and metrics,
    /// never the URI).
    pub label: Arc<str>,
    /// Request body cap, in bytes.
    pub max_body_size: u64,
    /// `debug_secret`, if set.
    pub debug_secret: Option<String>,
    /// The module's path as configured.
    pub module: PathBuf,
    /// The route's job settings (asynchronous requests, its triggers' jobs).
    pub jobs: gojinn_host::JobPolicy,
    /// `record_crashes`: where a failing call's record goes.
    pub crashes: Option<CrashSpec>,
}

/// What a route's crash records hold besides the call: the directory and the
/// module's environment, values from `{env.*}` redacted.
#[derive(Debug, Clone)]
pub struct CrashSpec {
    /// The directory records are written to.
    pub dir: PathBuf,
    /// `env` as records show it.
    pub env: Vec<(String, String)>,
}

/// One `handle_errors` block: the statuses it handles and its routes.
pub struct ErrorTree {
    /// `404`, `4xx`, `5xx`…; empty for every status.
    pub status: Vec<String>,
    /// The routes.
    pub routes: Vec<RouteNode>,
}

/// A node of a site's route tree.
pub struct RouteNode {
    /// Routes sharing a group are mutually exclusive.
    pub group: Option<String>,
    /// The path pattern, if any.
    pub matcher: Option<String>,
    /// A named matcher's conditions, if any.
    pub conditions: Option<gojinn_config::MatcherSet>,
    /// The nearest enclosing matcher, for logs and metrics.
    pub label: Arc<str>,
    /// What the route does.
    pub node: Node,
}

/// What a route does.
pub enum Node {
    /// Nested routes (`handle`, `handle_path`, `route`).
    Subroute {
        /// Prefix removed from the path before the nested routes see it.
        strip_prefix: Option<String>,
        /// The nested routes.
        routes: Vec<RouteNode>,
    },
    /// `respond`.
    Respond {
        /// The status.
        status: http::StatusCode,
        /// The body.
        body: Bytes,
    },
    /// `file_server` from `root`.
    Files {
        /// The directory served.
        root: PathBuf,
        /// Its `browse`, `hide`, `index` and `precompressed` options.
        options: gojinn_config::FileServerOptions,
    },
    /// `try_files`: a rewrite to the first listed file below `root` that exists.
    TryFiles {
        /// The directory the files are looked up in.
        root: PathBuf,
        /// The files, status and policy.
        try_files: gojinn_config::TryFiles,
    },
    /// `gojinn`: the function with this id.
    Function(FunctionId),
    /// A handler around the functions (`header`, `request_header`, …), as
    /// configured; the server compiles it.
    Site(Box<Handler>),
    /// `reverse_proxy`: served by `gojinn-proxy`.
    Proxy(Box<gojinn_config::ReverseProxy>),
    /// `encode`: not an answer; compresses the answer of a later route.
    Encode(gojinn_config::encode::Encode),
}

/// A config, loaded: what [`Plan::compile`] returns.
pub struct Loaded {
    /// Every function, indexed by [`FunctionId`].
    pub functions: Vec<LoadedFunction>,
    /// The route tree of each site, in the order of `Config::sites`.
    pub sites: Vec<Vec<RouteNode>>,
    /// The `handle_errors` blocks of each site, in the order of `Config::sites`.
    pub errors: Vec<Vec<ErrorTree>>,
    /// How long each module took to compile (or to load from the cache).
    pub compile_times: Vec<Duration>,
    /// Compile-cache activity of this load.
    pub cache: CacheStats,
    /// What the operator should know about this config, in file order.
    pub notices: Vec<LoadNotice>,
    /// The functions jobs run, by module path: every route's own module
    /// (asynchronous requests), and the modules of its `cron` triggers and
    /// `enqueue` grant, run with that route's settings. A module named by
    /// several routes runs with the first one's.
    pub job_targets: Vec<(PathBuf, FunctionId)>,
    /// Every `cron` trigger, with the route it belongs to.
    pub crons: Vec<LoadedCron>,
    /// The engine and its epoch ticker; the functions need it alive.
    pub runtime: Runtime,
}

/// One `cron` trigger of a route.
pub struct LoadedCron {
    /// The trigger as written.
    pub cron: gojinn_config::Cron,
    /// The route's job settings.
    pub policy: gojinn_host::JobPolicy,
}

impl Loaded {
    /// The function with id `id`.
    pub fn function(&self, id: FunctionId) -> &LoadedFunction {
        &self.functions[id.0]
    }
}

/// Whether a load opens the stores it grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Open every store before compiling: a store that cannot be opened fails
    /// the load (`gojinn run`, a reload).
    Serve,
    /// Touch no store (`gojinn validate`, next to a serving process).
    Check,
}

/// One function of the config before it is compiled.
struct Pending {
    spec: FunctionSpec,
    /// Whether the route grants any KV access.
    kv_granted: bool,
    origin: Option<String>,
    label: Arc<str>,
    max_body_size: u64,
    debug_secret: Option<String>,
    jobs: gojinn_host::JobPolicy,
    crashes: Option<CrashSpec>,
}

/// A config walked once: grants resolved and specs made, nothing compiled yet.
pub struct Plan<'a> {
    stores: &'a Stores,
    pending: Vec<Pending>,
    sites: Vec<Vec<RouteNode>>,
    errors: Vec<Vec<ErrorTree>>,
    notices: Vec<LoadNotice>,
    job_targets: Vec<(PathBuf, FunctionId)>,
    crons: Vec<LoadedCron>,
}

impl<'a> Plan<'a> {
    /// Walks `config` once: builds each site's route tree and the spec and
    /// grants of every function, taking stores from `stores`. Returns every
    /// error found, not just the first.
    pub fn new(config: &Config, stores: &'a Stores) -> Result<Plan<'a>, Vec<LoadError>> {
        let mut walk = Walk {
            config,
            stores,
            pending: Vec::new(),
            errors: Vec::new(),
            notices: Vec::new(),
            namespace: String::new(),
            queue: None,
            job_targets: Vec::new(),
            crons: Vec::new(),
        };
        let mut sites = Vec::with_capacity(config.sites.len());
        let mut errors = Vec::with_capacity(config.sites.len());
        for site in &config.sites {
            // The KV namespace is the site's addresses, so two sites never share keys.
            walk.namespace = site
                .addresses
                .iter()
                .map(|a| format!("{}:{}", a.host.as_deref().unwrap_or(""), a.port))
                .collect::<Vec<_>>()
                .join(",");
            walk.queue = site.queue.clone().or_else(|| config.queue.clone());
            sites.push(walk.routes(&site.routes, &Arc::from(ANY_ROUTE)));
            let label = Arc::from("handle_errors");
            errors.push(
                site.errors
                    .iter()
                    .map(|e| ErrorTree {
                        status: e.status.clone(),
                        routes: walk.routes(&e.routes, &label),
                    })
                    .collect(),
            );
        }
        if !walk.errors.is_empty() {
            return Err(walk.errors);
        }
        Ok(Plan {
            stores,
            pending: walk.pending,
            sites,
            errors,
            notices: walk.notices,
            job_targets: walk.job_targets,
            crons: walk.crons,
        })
    }

    /// Opens the stores (in [`Mode::Serve`]), sets up the engine and compiles
    /// every module in parallel.
    pub fn compile(self, mode: Mode) -> Result<Loaded, Vec<LoadError>> {
        if mode == Mode::Serve {
            self.stores
                .open()
                .map_err(|e| vec![LoadError::at(None, LoadErrorKind::Store(e))])?;
        }
        let runtime = Runtime::new(&RuntimeOptions::for_functions(
            self.pending.iter().map(|p| &p.spec),
        ))
        .map_err(|e| vec![LoadError::at(None, e.into())])?;

        // Modules are independent and compiling is CPU-bound.
        let compiled: Vec<Result<Function, LoadError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .pending
                .iter()
                .map(|p| {
                    let runtime = &runtime;
                    scope.spawn(move || {
                        runtime
                            .load(p.spec.clone())
                            .map_err(|e| LoadError::at(p.origin.as_deref(), e.into()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .zip(&self.pending)
                .map(|(h, p)| {
                    h.join().unwrap_or_else(|_| {
                        Err(LoadError::at(p.origin.as_deref(), LoadErrorKind::Panicked))
                    })
                })
                .collect()
        });
        let mut functions = Vec::with_capacity(compiled.len());
        let mut errors = Vec::new();
        let mut notices = self.notices;
        for (result, p) in compiled.into_iter().zip(self.pending) {
            match result {
                Ok(function) => {
                    if let Some(notice) = kv_without_grant(&function, &p) {
                        notices.push(notice);
                    }
                    functions.push(LoadedFunction {
                        function,
                        label: p.label,
                        max_body_size: p.max_body_size,
                        debug_secret: p.debug_secret,
                        module: p.spec.module,
                        jobs: p.jobs,
                        crashes: p.crashes,
                    })
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Loaded {
            compile_times: functions
                .iter()
                .map(|f| f.function.compile_time())
                .collect(),
            cache: runtime.cache_stats(),
            notices,
            functions,
            sites: self.sites,
            errors: self.errors,
            job_targets: self.job_targets,
            crons: self.crons,
            runtime,
        })
    }
}

/// A warning for a module that imports KV calls on a route granting no KV:
/// Gojinn up to v0.22 granted KV to every route, so such a module worked there
/// and has each of those calls denied here.
fn kv_without_grant(function: &Function, p: &Pending) -> Option<LoadNotice> {
    if p.kv_granted {
        return None;
    }
    let kv: Vec<String> = function
        .host_imports()
        .iter()
        .filter(|n| is_kv_import(n))
        .map(|n| format!("`{n}`"))
        .collect();
    if kv.is_empty() {
        return None;
    }
    Some(LoadNotice {
        origin: p.origin.clone(),
        warning: true,
        message: format!(
            "module `{}` imports {} but this route grants no KV access, so those calls are denied (Gojinn up to v0.22 let every route use KV): grant it with `permissions {{ kv_read <prefix> kv_write <prefix> }}`, e.g. `kv_read *` and `kv_write *` for every key",
            p.spec.module.display(),
            kv.join(", ")
        ),
    })
}

/// The state of [`Plan::new`]'s traversal.
struct Walk<'c, 's> {
    config: &'c Config,
    stores: &'s Stores,
    pending: Vec<Pending>,
    errors: Vec<LoadError>,
    notices: Vec<LoadNotice>,
    /// The KV namespace of the site being walked.
    namespace: String,
    /// The job queue of the site being walked (its `queue`, else the global one).
    queue: Option<String>,
    job_targets: Vec<(PathBuf, FunctionId)>,
    crons: Vec<LoadedCron>,
}

impl Walk<'_, '_> {
    /// The tree of `routes`; `label` is the nearest enclosing matcher, so a
    /// function inside `handle /api/*` is labelled `/api/*`.
    fn routes(&mut self, routes: &[Route], label: &Arc<str>) -> Vec<RouteNode> {
        let mut out = Vec::with_capacity(routes.len());
        for route in routes {
            let named = route.conditions.as_ref().map(|c| c.name.as_str());
            let label = match route.matcher.as_deref().or(named) {
                Some(m) => Arc::from(m),
                None => label.clone(),
            };
            let node = match &route.handle {
                Handler::Subroute {
                    strip_prefix,
                    routes,
                } => Node::Subroute {
                    strip_prefix: strip_prefix.clone(),
                    routes: self.routes(routes, &label),
                },
                Handler::StaticResponse { status, body } => {
                    match http::StatusCode::from_u16(*status) {
                        Ok(status) => Node::Respond {
                            status,
                            body: Bytes::from(body.clone()),
                        },
                        Err(_) => {
                            self.errors
                                .push(LoadError::at(None, LoadErrorKind::Status(*status)));
                            continue;
                        }
                    }
                }
                Handler::TryFiles { root, try_files } => Node::TryFiles {
                    root: root.clone(),
                    try_files: try_files.clone(),
                },
                Handler::FileServer { root, options } => Node::Files {
                    root: root.clone(),
                    options: options.clone(),
                },
                Handler::Gojinn(f) => Node::Function(self.function(f, &label)),
                site @ (Handler::Headers(_)
                | Handler::RequestHeaders(_)
                | Handler::Redirect(_)
                | Handler::Rewrite(_)
                | Handler::BasicAuth(_)) => Node::Site(Box::new(site.clone())),
                Handler::ReverseProxy(p) => Node::Proxy(Box::new(p.clone())),
                Handler::Encode(e) => Node::Encode(e.clone()),
            };
            out.push(RouteNode {
                group: route.group.clone(),
                matcher: route.matcher.clone(),
                conditions: route.conditions.clone(),
                label,
                node,
            });
        }
        out
    }

    /// A route's function, and the job targets it brings: its own module, its
    /// `cron` modules and `enqueue` modules, each run with its settings.
    fn function(&mut self, f: &FunctionConfig, label: &Arc<str>) -> FunctionId {
        let id = self.one_function(f, label);
        let known =
            |targets: &[(PathBuf, FunctionId)], m: &Path| targets.iter().any(|(t, _)| t == m);
        if !known(&self.job_targets, &f.module) {
            self.job_targets.push((f.module.clone(), id));
        }
        let extra: Vec<PathBuf> = f
            .crons
            .iter()
            .map(|c| c.module.clone())
            .chain(f.permissions.enqueue.iter().cloned())
            .collect();
        for module in extra {
            if known(&self.job_targets, &module) {
                continue;
            }
            let target = FunctionConfig {
                module: module.clone(),
                crons: Vec::new(),
                ..f.clone()
            };
            let target_id = self.one_function(&target, label);
            self.job_targets.push((module, target_id));
        }
        for cron in &f.crons {
            self.crons.push(LoadedCron {
                cron: cron.clone(),
                policy: job_policy(&f.jobs, self.queue.as_deref()),
            });
        }
        id
    }

    /// Resolves the grants and spec of one function. Its id is its place among
    /// the pending functions; after an error no id is used (the plan fails).
    fn one_function(&mut self, f: &FunctionConfig, label: &Arc<str>) -> FunctionId {
        let id = FunctionId(self.pending.len());
        let origin = f.origin.as_deref();
        let caps = match capabilities(
            f,
            self.config,
            self.stores,
            label,
            &self.namespace,
            self.queue.as_deref(),
        ) {
            Ok(caps) => caps,
            Err(kind) => {
                self.errors.push(LoadError::at(origin, kind));
                return id;
            }
        };
        // Gojinn mounted directories read-write; here `rw` must be written.
        for m in f.mounts.iter().filter(|m| !m.writable) {
            self.notices.push(LoadNotice {
                origin: f.origin.clone(),
                warning: false,
                message: format!(
                    "mount `{}` (`{}`) is read-only, the default here (Gojinn mounted directories read-write): write `mount {} {} rw` to let the function change it",
                    m.guest,
                    m.host.display(),
                    m.host.display(),
                    m.guest
                ),
            });
        }
        match function_spec(f, Some(Arc::new(caps))) {
            Ok(spec) => self.pending.push(Pending {
                spec,
                kv_granted: !f.permissions.kv_read.is_empty() || !f.permissions.kv_write.is_empty(),
                origin: f.origin.clone(),
                label: label.clone(),
                max_body_size: f.max_body_size,
                debug_secret: f.debug_secret.clone(),
                jobs: job_policy(&f.jobs, self.queue.as_deref()),
                crashes: crash_spec(f, self.config),
            }),
            Err(e) => self.errors.push(e),
        }
        id
    }
}

/// The host capabilities of a function, with its stores.
fn capabilities(
    f: &FunctionConfig,
    config: &Config,
    stores: &Stores,
    label: &str,
    namespace: &str,
    queue: Option<&str>,
) -> Result<Capabilities, LoadErrorKind> {
    let p = &f.permissions;
    let mut caps = Capabilities::none(label);
    if !p.kv_read.is_empty() || !p.kv_write.is_empty() {
        let kv = stores
            .kv(config.storage.as_deref(), f.kv.as_deref(), namespace)
            .map_err(LoadErrorKind::Store)?;
        caps = caps.with_kv(kv, &p.kv_read, &p.kv_write);
    }
    if let (Some(access), Some(dsn)) = (p.db, &f.db_dsn) {
        let access = match access {
            DbAccess::Read => Access::Read,
            DbAccess::Write => Access::Write,
        };
        match f.db_driver.unwrap_or(DbDriver::Sqlite) {
            DbDriver::Sqlite => caps = caps.with_db(stores.sqlite(Path::new(dsn)), access),
            DbDriver::Postgres => {
                let pool = stores.postgres(dsn).map_err(LoadErrorKind::Store)?;
                caps = caps.with_postgres(pool, access);
            }
        }
    }
    if !p.http.is_empty() {
        caps = caps.with_http(&p.http);
    }
    if let (false, Some(sink)) = (p.enqueue.is_empty(), stores.job_sink()) {
        caps = caps.with_enqueue(&p.enqueue, job_policy(&f.jobs, queue), sink);
    }
    if let Some(m) = f.mounts.iter().find(|m| !m.host.is_dir()) {
        return Err(LoadErrorKind::MountMissing(m.host.clone()));
    }
    Ok(caps)
}

/// Where a route with `record_crashes` writes: `crash_path`, else `crashes`
/// in the storage directory.
fn crash_spec(f: &FunctionConfig, config: &Config) -> Option<CrashSpec> {
    if !f.record_crashes {
        return None;
    }
    let dir = f.crash_path.clone().or_else(|| {
        gojinn_host::storage_dir(config.storage.as_deref()).map(|d| d.join("crashes"))
    })?;
    let env = f
        .env
        .iter()
        .map(|e| {
            let value = if e.from_env {
                gojinn_config::REDACTED.to_owned()
            } else {
                e.value.clone()
            };
            (e.name.clone(), value)
        })
        .collect();
    Some(CrashSpec { dir, env })
}

/// A route's job settings as the host applies them.
pub fn job_policy(p: &gojinn_config::JobPolicy, queue: Option<&str>) -> gojinn_host::JobPolicy {
    gojinn_host::JobPolicy {
        max_attempts: p.retries.saturating_add(1),
        backoff_ms: p.retry_backoff_ms,
        queue_max: p.queue_max,
        payload_max: p.payload_max,
        queue: queue.map(str::to_owned),
    }
}

/// The runtime's spec of a configured function: its limits, grants
/// (`capabilities`), mounts and signature policy.
fn function_spec(
    f: &FunctionConfig,
    capabilities: Option<Arc<Capabilities>>,
) -> Result<FunctionSpec, LoadError> {
    let signature = match &f.security {
        None => None,
        Some(sec) => Some(SignaturePolicy {
            strict: sec.policy == gojinn_config::SignaturePolicy::Strict,
            trusted_keys: sec
                .trusted_keys
                .iter()
                .map(|k| {
                    signature::parse_public_key(k).map_err(|reason| {
                        LoadError::at(
                            Some(f.origin.as_deref().unwrap_or("security")),
                            LoadErrorKind::TrustedKey {
                                key: k.clone(),
                                reason,
                            },
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        }),
    };
    Ok(FunctionSpec {
        module: f.module.clone(),
        timeout: Duration::from_millis(f.timeout_ms),
        memory_limit: f.memory_limit,
        env: f
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect(),
        args: f.args.clone(),
        pool_size: f.pool_size,
        max_output_bytes: usize::try_from(f.max_output_size).unwrap_or(usize::MAX),
        max_stderr_bytes: DEFAULT_MAX_STDERR_BYTES,
        queue_wait: Duration::from_millis(f.queue_timeout_ms),
        fuel: f.fuel_limit,
        snapshot: if f.snapshot {
            Snapshot::On
        } else {
            Snapshot::Off
        },
        capabilities,
        mounts: f
            .mounts
            .iter()
            .map(|m| MountSpec {
                host: m.host.clone(),
                guest: m.guest.clone(),
                writable: m.writable,
            })
            .collect(),
        signature,
    })
}
