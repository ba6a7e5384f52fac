//! Gojinn's host capabilities: what a guest may reach through the `gojinn` import
//! module, and the stores behind it.
//!
//! This crate owns the grants of a route ([`Capabilities`], deny by default), the
//! embedded KV store (`redb`) and its leases, the SQL pools (SQLite, one pool per
//! DSN shared by every sandbox) and the per-sandbox [`Session`] state (pending
//! results, last error, lock owner). It knows nothing of wasmtime: the runtime
//! crate copies bytes in and out of guest memory and calls these async methods, and
//! the server builds [`Capabilities`] from the configuration.

mod grants;
mod http;
mod kv;
mod pg;
mod redis_kv;
mod sql;

pub use grants::{HttpTarget, KeyGrant, KeyPattern};
pub use http::MAX_HTTP_RESPONSE_BYTES;
pub use kv::{Kv, MAX_LIST_KEYS, MAX_LOCKS, MAX_LOCK_TTL};
pub use pg::PgPool;
pub use sql::{Access, SqlPool, DEFAULT_SQL_POOL_SIZE, MAX_RESULT_BYTES};

use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Largest KV value: 1 MiB.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Largest KV key: 1 KiB.
pub const MAX_KEY_BYTES: usize = 1 << 10;
/// Largest SQL text or JSON parameter list a guest may pass: 1 MiB.
pub const MAX_SQL_BYTES: usize = 1 << 20;
/// Longest `host_log` message kept; the rest is cut.
pub const MAX_LOG_BYTES: usize = 4096;
/// Log bytes one call may produce through `host_log` and failed host calls
/// together (the same budget as its stderr): past it, lines are counted, not
/// written, so a guest looping on `host_log` cannot flood the server's log.
pub const MAX_LOG_BYTES_PER_CALL: usize = 64 << 10;
/// What a line costs the budget beyond its message: about the size of the fields
/// (time, level, route, trace id) a log line carries, so a flood of empty messages
/// is bounded too (to about 500 lines per call).
pub const LOG_LINE_OVERHEAD: usize = 128;

/// Why a host call failed. [`code`](Self::code) is what ABI v1 functions return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The route does not grant this.
    #[error("denied: {0}")]
    Denied(String),
    /// Bad arguments: memory out of bounds, text that is not UTF-8, bad JSON.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A value or result over its limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The store answered with an error (SQL syntax, constraint…).
    #[error("{0}")]
    Backend(String),
    /// The store cannot be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request's deadline passed first.
    #[error("deadline exceeded")]
    Timeout,
}

/// ABI v1 result codes (negative; `>= 0` is success).
pub mod code {
    /// Not found (KV miss, nothing pending).
    pub const NOT_FOUND: i64 = -1;
    /// Not granted to this route.
    pub const DENIED: i64 = -2;
    /// Bad argument (memory range, UTF-8, JSON).
    pub const INVALID: i64 = -3;
    /// Value or result over its limit.
    pub const TOO_LARGE: i64 = -4;
    /// The store reported an error (e.g. malformed SQL).
    pub const BACKEND: i64 = -5;
    /// The store is unreachable.
    pub const UNAVAILABLE: i64 = -6;
    /// The deadline passed.
    pub const TIMEOUT: i64 = -7;
}

impl HostError {
    /// The ABI v1 result code.
    pub fn code(&self) -> i64 {
        match self {
            HostError::Denied(_) => code::DENIED,
            HostError::Invalid(_) => code::INVALID,
            HostError::TooLarge { .. } => code::TOO_LARGE,
            HostError::Backend(_) => code::BACKEND,
            HostError::Unavailable(_) => code::UNAVAILABLE,
            HostError::Timeout => code::TIMEOUT,
        }
    }
}

/// The storage directory of a config: its `storage` option, else
/// [`default_storage_dir`].
pub fn storage_dir(configured: Option<&Path>) -> Option<PathBuf> {
    configured
        .map(Path::to_path_buf)
        .or_else(default_storage_dir)
}

/// The user data directory the embedded stores default to:
/// `$XDG_DATA_HOME/gojinn`, else `$HOME/.local/share/gojinn`.
pub fn default_storage_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("gojinn"))
}

/// The stores of one server process: opened on first use, shared by every route,
/// and kept across config reloads.
///
/// Built once (in `main`) and handed to every load of a config, so that a reload
/// keeps what the new config still uses: the embedded KV file and its lock table
/// (a lock taken under the old config still excludes requests on the new one),
/// and every Redis connection and SQL pool whose URL or DSN is unchanged.
/// [`prune`](Self::prune) closes what no loaded config holds any more.
#[derive(Default)]
pub struct Stores {
    embedded: Mutex<HashMap<PathBuf, Arc<kv::EmbeddedHandle>>>,
    sqlite: Mutex<HashMap<PathBuf, Arc<SqlPool>>>,
    redis: Mutex<HashMap<String, Arc<redis_kv::RedisKv>>>,
    postgres: Mutex<HashMap<String, Arc<PgPool>>>,
    /// Embedded locks: process memory, so one table for the process's life.
    locks: Arc<kv::Locks>,
    /// The job queue `host_enqueue` puts into, once the server made it.
    jobs: std::sync::OnceLock<Arc<dyn JobSink>>,
}

/// How many stores of each kind a [`Stores`] holds open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Embedded KV files.
    pub embedded: usize,
    /// SQLite pools.
    pub sqlite: usize,
    /// Redis connections.
    pub redis: usize,
    /// PostgreSQL pools.
    pub postgres: usize,
}

/// The entry of `map` under `key`, made by `make` when absent.
fn shared<K, V, Q, E>(
    map: &Mutex<HashMap<K, Arc<V>>>,
    key: &Q,
    make: impl FnOnce() -> Result<V, E>,
) -> Result<Arc<V>, E>
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = map.get(key) {
        return Ok(v.clone());
    }
    let v = Arc::new(make()?);
    map.insert(key.to_owned(), v.clone());
    Ok(v)
}

/// Drops the entries of `map` that nothing else holds; returns how many remain.
fn prune_map<K, V>(map: &Mutex<HashMap<K, Arc<V>>>) -> usize {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    map.retain(|_, v| Arc::strong_count(v) > 1);
    map.len()
}

impl Stores {
    /// No store open yet.
    pub fn new() -> Self {
        Stores::default()
    }

    /// Sets the job queue of `host_enqueue` (once, when the server starts).
    pub fn set_job_sink(&self, sink: Arc<dyn JobSink>) {
        let _ = self.jobs.set(sink);
    }

    /// The job queue of `host_enqueue`; `None` where the server runs no jobs
    /// (`gojinn validate`).
    pub fn job_sink(&self) -> Option<Arc<dyn JobSink>> {
        self.jobs.get().cloned()
    }

    /// The KV namespace `namespace` on `backend`: `None` or `embedded`, the
    /// embedded store under `storage` (the `storage` option, else
    /// [`default_storage_dir`]; opened on first use or by [`open`](Self::open));
    /// a `redis://` URL, that server (connected on first use, one connection per
    /// URL).
    pub fn kv(
        &self,
        storage: Option<&Path>,
        backend: Option<&str>,
        namespace: &str,
    ) -> Result<Kv, String> {
        match backend {
            None | Some("embedded") => {
                let dir = storage_dir(storage).ok_or(
                    "no storage directory: set the `storage` global option (HOME is unset)",
                )?;
                let Ok(db) = shared(&self.embedded, &dir, || {
                    Ok::<_, Infallible>(kv::EmbeddedHandle::new(dir.clone()))
                });
                Ok(Kv::embedded(db, namespace, self.locks.clone()))
            }
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                let server = shared(&self.redis, url, || redis_kv::RedisKv::new(url))?;
                Ok(Kv::redis(server, namespace, self.locks.clone()))
            }
            Some(other) => Err(format!("unknown kv backend `{other}`")),
        }
    }

    /// Opens every embedded store handed out so far, so that a server reports a
    /// store it cannot open before it serves. (`validate` skips this and touches
    /// nothing.)
    pub fn open(&self) -> Result<(), String> {
        let handles: Vec<_> = self
            .embedded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for handle in handles {
            handle.open()?;
        }
        Ok(())
    }

    /// The pool of the PostgreSQL database `dsn`, shared by every route naming it;
    /// connections are made on use.
    pub fn postgres(&self, dsn: &str) -> Result<Arc<PgPool>, String> {
        shared(&self.postgres, dsn, || {
            PgPool::new(dsn, DEFAULT_SQL_POOL_SIZE)
        })
    }

    /// The pool of the SQLite file `path`, shared by every route naming it.
    pub fn sqlite(&self, path: &Path) -> Arc<SqlPool> {
        let Ok(pool) = shared(&self.sqlite, path, || {
            Ok::<_, Infallible>(SqlPool::sqlite(path.to_path_buf(), DEFAULT_SQL_POOL_SIZE))
        });
        pool
    }

    /// Closes every store that no route of a loaded config holds any more: call
    /// after a reload switched. A store still held by requests in flight on the
    /// previous config is kept until a later prune finds it unused.
    pub fn prune(&self) -> StoreCounts {
        StoreCounts {
            embedded: prune_map(&self.embedded),
            sqlite: prune_map(&self.sqlite),
            redis: prune_map(&self.redis),
            postgres: prune_map(&self.postgres),
        }
    }
}

/// What one route may do, and the stores it does it with.
pub struct Capabilities {
    route: String,
    kv_read: KeyGrant,
    kv_write: KeyGrant,
    kv: Option<Kv>,
    db: Option<(Db, Access)>,
    http: Vec<HttpTarget>,
    enqueue: Option<EnqueueGrant>,
}

/// Where `host_enqueue` puts jobs: the server's job queue.
pub trait JobSink: Send + Sync {
    /// Queues a run of the module `target` with `payload` as its stdin, under
    /// `policy`; `trace_id` is the enqueuing call's.
    fn enqueue<'a>(
        &'a self,
        target: &'a Path,
        payload: Vec<u8>,
        policy: &'a JobPolicy,
        trace_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HostError>> + Send + 'a>>;
}

/// How the jobs a route queues are run and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPolicy {
    /// Attempts per job (`retries` + 1).
    pub max_attempts: u32,
    /// Wait before a retry, doubled each time, in ms.
    pub backoff_ms: u64,
    /// Cap on the jobs waiting for one target.
    pub queue_max: u64,
    /// Cap on one job's payload, in bytes.
    pub payload_max: u64,
    /// The `queue` URL of the route's site (else the global one); `None`: the
    /// embedded queue.
    pub queue: Option<String>,
}

/// `permissions { enqueue <module>… }`: the modules a route may queue.
#[derive(Clone)]
struct EnqueueGrant {
    /// Absolute module paths.
    modules: Vec<PathBuf>,
    policy: JobPolicy,
    sink: Arc<dyn JobSink>,
}

/// The database a route's `db` grant reaches.
#[derive(Clone)]
enum Db {
    Sqlite(Arc<SqlPool>),
    Postgres(Arc<PgPool>),
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capabilities")
            .field("route", &self.route)
            .field("kv_read", &self.kv_read)
            .field("kv_write", &self.kv_write)
            .field("db", &self.db.as_ref().map(|(_, a)| a))
            .field("http", &self.http)
            .finish()
    }
}

impl Capabilities {
    /// Nothing granted; `route` labels the log lines of denied calls.
    pub fn none(route: &str) -> Self {
        Capabilities {
            route: route.to_owned(),
            kv_read: KeyGrant::default(),
            kv_write: KeyGrant::default(),
            kv: None,
            db: None,
            http: Vec::new(),
            enqueue: None,
        }
    }

    /// Grants `host_enqueue` of `modules` (absolute paths) into `sink`, under
    /// `policy`.
    pub fn with_enqueue(
        mut self,
        modules: &[PathBuf],
        policy: JobPolicy,
        sink: Arc<dyn JobSink>,
    ) -> Self {
        self.enqueue = Some(EnqueueGrant {
            modules: modules.to_vec(),
            policy,
            sink,
        });
        self
    }

    /// Grants KV access to keys matching `read` / `write` patterns in `kv`.
    pub fn with_kv(mut self, kv: Kv, read: &[String], write: &[String]) -> Self {
        self.kv_read = KeyGrant::new(read);
        self.kv_write = KeyGrant::new(write);
        self.kv = Some(kv);
        self
    }

    /// Grants SQL `access` through the SQLite `pool`.
    pub fn with_db(mut self, pool: Arc<SqlPool>, access: Access) -> Self {
        self.db = Some((Db::Sqlite(pool), access));
        self
    }

    /// Grants SQL `access` through the PostgreSQL `pool`.
    pub fn with_postgres(mut self, pool: Arc<PgPool>, access: Access) -> Self {
        self.db = Some((Db::Postgres(pool), access));
        self
    }

    /// Grants outbound HTTP to `targets` (`host:port`).
    pub fn with_http(mut self, targets: &[String]) -> Self {
        self.http = targets.iter().filter_map(|t| HttpTarget::new(t)).collect();
        self
    }

    /// The route label used in logs.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Whether outbound HTTP to `host:port` is granted.
    pub fn http_allows(&self, host: &str, port: u16) -> bool {
        self.http.iter().any(|t| t.allows(host, port))
    }

    fn kv_for(&self, write: bool, key: &str) -> Result<&Kv, HostError> {
        let grant = if write { &self.kv_write } else { &self.kv_read };
        match &self.kv {
            Some(kv) if grant.allows(key) => Ok(kv),
            _ => Err(HostError::Denied(format!(
                "key `{}` is not in this route's {}",
                key.escape_debug(),
                if write { "kv_write" } else { "kv_read" }
            ))),
        }
    }

    fn db(&self) -> Result<&(Db, Access), HostError> {
        self.db
            .as_ref()
            .ok_or_else(|| HostError::Denied("this route has no `db` permission".to_owned()))
    }
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// The host-side state of one sandbox (one request).
pub struct Session {
    caps: Arc<Capabilities>,
    trace_id: Arc<str>,
    owner: u64,
    /// A result too big for the guest's buffer, waiting for `host_result_take`.
    pub pending: Option<Vec<u8>>,
    /// The message of the last failed call, for `host_last_error`.
    pub last_error: String,
    /// Log bytes this call may still write.
    log_budget: usize,
    /// Lines not written because the budget ran out.
    log_dropped: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.log_dropped > 0 {
            let route = self.caps.route.as_str();
            let trace_id = &*self.trace_id;
            let dropped = self.log_dropped;
            tracing::warn!(
                target: "gojinn::host",
                route,
                trace_id,
                dropped,
                "host log lines dropped: over {MAX_LOG_BYTES_PER_CALL} bytes in one call"
            );
        }
    }
}

/// A cheap handle for one async host call: what it needs without borrowing the
/// sandbox's store across an `await`.
#[derive(Clone)]
pub struct CallCx {
    caps: Arc<Capabilities>,
    trace_id: Arc<str>,
    owner: u64,
}

impl Session {
    /// A session for one call of a route with `caps`.
    pub fn new(caps: Arc<Capabilities>, trace_id: &str) -> Self {
        Session {
            caps,
            trace_id: Arc::from(trace_id),
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            pending: None,
            last_error: String::new(),
            log_budget: MAX_LOG_BYTES_PER_CALL,
            log_dropped: 0,
        }
    }

    /// A handle for one host call.
    pub fn cx(&self) -> CallCx {
        CallCx {
            caps: self.caps.clone(),
            trace_id: self.trace_id.clone(),
            owner: self.owner,
        }
    }

    /// Logs a guest message at `level` (0 debug, 1 info, 2 warn, 3+ error).
    pub fn log(&mut self, level: i32, message: &[u8]) {
        let cut = &message[..message.len().min(MAX_LOG_BYTES)];
        if !self.spend_log_budget(cut.len()) {
            return;
        }
        let text = String::from_utf8_lossy(cut);
        let route = self.caps.route.as_str();
        let trace_id = &*self.trace_id;
        match level {
            i32::MIN..=0 => {
                tracing::debug!(target: "gojinn::guest", route, trace_id, "{text}")
            }
            1 => tracing::info!(target: "gojinn::guest", route, trace_id, "{text}"),
            2 => tracing::warn!(target: "gojinn::guest", route, trace_id, "{text}"),
            _ => tracing::error!(target: "gojinn::guest", route, trace_id, "{text}"),
        }
    }

    /// Records a failed call: kept for `host_last_error`, and logged (denials at
    /// warn, the rest at info: a guest handles those itself).
    pub fn fail(&mut self, call: &'static str, e: &HostError) {
        self.last_error = e.to_string();
        if !self.spend_log_budget(self.last_error.len()) {
            return;
        }
        let route = self.caps.route.as_str();
        let trace_id = &*self.trace_id;
        match e {
            HostError::Denied(_) => {
                tracing::warn!(target: "gojinn::host", route, trace_id, call, "{e}")
            }
            _ => tracing::info!(target: "gojinn::host", route, trace_id, call, "{e}"),
        }
    }

    /// Records a call of a Gojinn host function this server does not provide:
    /// a warning naming it, with the route and trace id (and the message for
    /// `host_last_error`).
    pub fn unavailable(&mut self, call: &'static str) {
        self.last_error = format!("`{call}` is not available on this server");
        if !self.spend_log_budget(self.last_error.len()) {
            return;
        }
        let route = self.caps.route.as_str();
        let trace_id = &*self.trace_id;
        tracing::warn!(target: "gojinn::host", route, trace_id, call, "{}", self.last_error);
    }

    /// Takes a line of `bytes` from the call's log budget; false, and the line
    /// counted as dropped, when it is spent.
    fn spend_log_budget(&mut self, bytes: usize) -> bool {
        let cost = bytes + LOG_LINE_OVERHEAD;
        if cost > self.log_budget {
            self.log_budget = 0;
            self.log_dropped += 1;
            return false;
        }
        self.log_budget -= cost;
        true
    }
}

fn utf8(what: &str, bytes: Vec<u8>) -> Result<String, HostError> {
    String::from_utf8(bytes).map_err(|_| HostError::Invalid(format!("{what} is not UTF-8")))
}

fn key(bytes: Vec<u8>) -> Result<String, HostError> {
    if bytes.len() > MAX_KEY_BYTES {
        return Err(HostError::TooLarge {
            what: "key",
            size: bytes.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    utf8("key", bytes)
}

/// JSON parameters: empty means none; otherwise a JSON array.
fn params(bytes: &[u8]) -> Result<Vec<Value>, HostError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Array(v)) => Ok(v),
        Ok(_) => Err(HostError::Invalid(
            "parameters must be a JSON array".to_owned(),
        )),
        Err(e) => Err(HostError::Invalid(format!("parameters are not JSON: {e}"))),
    }
}

impl CallCx {
    /// `host_enqueue`: queues a run of the granted module named `name` with
    /// `payload` as its stdin.
    pub async fn enqueue(&self, name: Vec<u8>, payload: Vec<u8>) -> Result<(), HostError> {
        let name = utf8("module name", name)?;
        let Some(grant) = &self.caps.enqueue else {
            return Err(HostError::Denied(format!(
                "this route may not enqueue (`permissions {{ enqueue {name} }}`)"
            )));
        };
        // An absolute name is the module's path; a relative one (`worker.wasm`,
        // `./jobs/worker.wasm`) names the granted module whose path ends with it.
        let path = Path::new(&name);
        let path = path.strip_prefix("./").unwrap_or(path);
        let found = if path.is_absolute() {
            grant.modules.iter().find(|m| *m == path)
        } else {
            grant
                .modules
                .iter()
                .find(|m| !path.as_os_str().is_empty() && m.ends_with(path))
        };
        let Some(target) = found else {
            return Err(HostError::Denied(format!(
                "module `{}` is not in this route's `enqueue` permission",
                name.escape_debug()
            )));
        };
        let limit = usize::try_from(grant.policy.payload_max).unwrap_or(usize::MAX);
        if payload.len() > limit {
            return Err(HostError::TooLarge {
                what: "job payload",
                size: payload.len(),
                limit,
            });
        }
        grant
            .sink
            .enqueue(target, payload, &grant.policy, &self.trace_id)
            .await
    }

    /// `host_kv_get`.
    pub async fn kv_get(&self, k: Vec<u8>) -> Result<Option<Vec<u8>>, HostError> {
        let k = key(k)?;
        self.caps.kv_for(false, &k)?.get(k).await
    }

    /// `host_kv_set`.
    pub async fn kv_set(&self, k: Vec<u8>, value: Vec<u8>) -> Result<(), HostError> {
        let k = key(k)?;
        let kv = self.caps.kv_for(true, &k)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(HostError::TooLarge {
                what: "value",
                size: value.len(),
                limit: MAX_VALUE_BYTES,
            });
        }
        kv.set(k, value).await
    }

    /// `host_kv_delete`: whether the key existed.
    pub async fn kv_delete(&self, k: Vec<u8>) -> Result<bool, HostError> {
        let k = key(k)?;
        self.caps.kv_for(true, &k)?.delete(k).await
    }

    /// `host_kv_list`: a JSON object `{"keys": [...], "more": bool}` of the readable
    /// keys starting with `prefix`.
    pub async fn kv_list(&self, prefix: Vec<u8>) -> Result<Vec<u8>, HostError> {
        let prefix = key(prefix)?;
        let Some(kv) = &self.caps.kv else {
            return Err(HostError::Denied(
                "this route has no kv_read permission".to_owned(),
            ));
        };
        if self.caps.kv_read.is_empty() {
            return Err(HostError::Denied(
                "this route has no kv_read permission".to_owned(),
            ));
        }
        let caps = self.caps.clone();
        let (keys, more) = kv
            .list(prefix, MAX_LIST_KEYS, move |k| caps.kv_read.allows(k))
            .await?;
        serde_json::to_vec(&serde_json::json!({"keys": keys, "more": more}))
            .map_err(|e| HostError::Backend(e.to_string()))
    }

    /// `host_mutex_lock` (TTL in seconds) and `host_lock_v1` (in milliseconds):
    /// whether the lock was taken.
    pub async fn lock(&self, k: Vec<u8>, ttl: Duration) -> Result<bool, HostError> {
        let k = key(k)?;
        let kv = self.caps.kv_for(true, &k)?;
        if ttl.is_zero() {
            return Err(HostError::Invalid("lock TTL must be positive".to_owned()));
        }
        kv.lock(&k, self.owner, ttl.min(MAX_LOCK_TTL)).await
    }

    /// `host_mutex_unlock`: whether this sandbox held the lock.
    pub async fn unlock(&self, k: Vec<u8>) -> Result<bool, HostError> {
        let k = key(k)?;
        self.caps.kv_for(true, &k)?.unlock(&k, self.owner).await
    }

    /// `host_db_query`: rows as a JSON array of objects.
    pub async fn db_query(&self, sql: Vec<u8>, params_json: &[u8]) -> Result<Vec<u8>, HostError> {
        let (db, access) = self.caps.db()?;
        let sql = sql_text(sql)?;
        match db {
            Db::Sqlite(pool) => pool.query(sql, params(params_json)?, *access).await,
            Db::Postgres(pool) => pool.query(&sql, &params(params_json)?, *access).await,
        }
    }

    /// `host_db_exec`: the number of rows changed.
    pub async fn db_exec(&self, sql: Vec<u8>, params_json: &[u8]) -> Result<u64, HostError> {
        let (db, access) = self.caps.db()?;
        let sql = sql_text(sql)?;
        match db {
            Db::Sqlite(pool) => pool.execute(sql, params(params_json)?, *access).await,
            Db::Postgres(pool) => pool.execute(&sql, &params(params_json)?, *access).await,
        }
    }

    /// `host_http_request`: the response as JSON.
    pub async fn http_request(&self, spec: Vec<u8>) -> Result<Vec<u8>, HostError> {
        if self.caps.http.is_empty() {
            return Err(HostError::Denied(
                "this route has no http permission".to_owned(),
            ));
        }
        http::request(&self.caps, &spec).await
    }

    /// Gojinn's `host_http_get`: the first `max` bytes of the body of a GET of
    /// `url`, whatever the status (`http` grant, as for `host_http_request`).
    pub async fn http_get(&self, url: Vec<u8>, max: usize) -> Result<Vec<u8>, HostError> {
        if self.caps.http.is_empty() {
            return Err(HostError::Denied(
                "this route has no http permission".to_owned(),
            ));
        }
        http::get(&self.caps, &url, max.min(http::MAX_HTTP_RESPONSE_BYTES)).await
    }

    /// The trace id of the request.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The route's capabilities.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }
}

fn sql_text(sql: Vec<u8>) -> Result<String, HostError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(HostError::TooLarge {
            what: "SQL text",
            size: sql.len(),
            limit: MAX_SQL_BYTES,
        });
    }
    utf8("SQL text", sql)
}
