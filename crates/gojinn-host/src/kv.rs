//! The KV store behind `host_kv_*` and the locks behind `host_mutex_*`.
//!
//! Embedded: one `redb` file (`kv.redb` in the storage directory) shared by every
//! route of the process, one table per namespace (a site, by default). redb is a
//! blocking, single-writer B-tree with fsync on commit, so every operation runs on
//! tokio's blocking pool and a waiting sandbox never holds a runtime thread.
//!
//! Locks are leases: a lock is held by one sandbox until it unlocks or the TTL
//! passes, whichever is first. Embedded, they live in process memory; on Redis
//! (see `redis_kv`), in Redis, so every node sees them.

use crate::redis_kv::RedisKv;
use crate::HostError;
use redb::{Database, ReadableDatabase, TableDefinition, TableError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Most keys one `host_kv_list` returns; past it the list is cut (and says so).
pub const MAX_LIST_KEYS: usize = 1000;

/// Most locks held at once per process; past it `host_mutex_lock` fails rather than
/// letting guests grow the table without bound.
pub const MAX_LOCKS: usize = 100_000;

/// Longest lock TTL a guest may ask for: 1 hour.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(3600);

/// An open embedded database file.
pub(crate) struct EmbeddedDb {
    db: Database,
}

impl EmbeddedDb {
    fn open(dir: &Path) -> Result<Arc<Self>, String> {
        let path = dir.join("kv.redb");
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the storage directory `{}`: {e}",
                dir.display()
            )
        })?;
        // redb locks its file: [`crate::Stores`] keeps one handle per directory
        // for the life of the process, so a reload shares the open database.
        let db = Database::create(&path)
            .map_err(|e| format!("cannot open the KV store `{}`: {e}", path.display()))?;
        Ok(Arc::new(EmbeddedDb { db }))
    }
}

/// The embedded store of one storage directory, opened on first use (so that
/// `gojinn validate` never touches it) or by [`EmbeddedHandle::open`].
pub(crate) struct EmbeddedHandle {
    dir: PathBuf,
    db: OnceLock<Result<Arc<EmbeddedDb>, String>>,
}

impl EmbeddedHandle {
    pub(crate) fn new(dir: PathBuf) -> Self {
        EmbeddedHandle {
            dir,
            db: OnceLock::new(),
        }
    }

    /// Opens the store now if it is not yet; the error names the file.
    pub(crate) fn open(&self) -> Result<&Arc<EmbeddedDb>, String> {
        self.db
            .get_or_init(|| EmbeddedDb::open(&self.dir))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A KV namespace on some backend.
#[derive(Clone)]
pub struct Kv {
    backend: Backend,
    /// Table name (embedded) or key prefix (shared stores).
    namespace: Arc<str>,
    locks: Arc<Locks>,
}

#[derive(Clone)]
enum Backend {
    Embedded(Arc<EmbeddedHandle>),
    Redis(Arc<RedisKv>),
}

/// Distinguishes this process's lock owners from other nodes' on a shared store:
/// random per process (std's hasher keys are seeded from the OS).
fn process_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    })
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn backend_err(e: impl std::fmt::Display) -> HostError {
    HostError::Backend(format!("kv store: {e}"))
}

impl Kv {
    pub(crate) fn embedded(db: Arc<EmbeddedHandle>, namespace: &str, locks: Arc<Locks>) -> Self {
        Kv {
            backend: Backend::Embedded(db),
            namespace: Arc::from(format!("kv:{namespace}")),
            locks,
        }
    }

    pub(crate) fn redis(redis: Arc<RedisKv>, namespace: &str, locks: Arc<Locks>) -> Self {
        Kv {
            backend: Backend::Redis(redis),
            namespace: Arc::from(format!("gojinn:{namespace}:")),
            locks,
        }
    }

    fn redis_key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.namespace)
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, TableDefinition<'_, &str, &[u8]>) -> Result<R, HostError>
            + Send
            + 'static,
    ) -> Result<R, HostError> {
        let db = match &self.backend {
            Backend::Embedded(handle) => handle.open().map_err(HostError::Unavailable)?.clone(),
            Backend::Redis(_) => {
                return Err(HostError::Backend(
                    "internal: not an embedded store".to_owned(),
                ))
            }
        };
        let ns = self.namespace.clone();
        tokio::task::spawn_blocking(move || f(&db.db, TableDefinition::new(&ns)))
            .await
            .map_err(|e| HostError::Backend(format!("kv task failed: {e}")))?
    }

    /// The value of `key`, if any.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        if let Backend::Redis(r) = &self.backend {
            return r.get(&self.redis_key("k", &key)).await;
        }
        self.blocking(move |db, table| {
            let txn = db.begin_read().map_err(backend_err)?;
            let t = match txn.open_table(table) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(backend_err(e)),
            };
            let v = t.get(key.as_str()).map_err(backend_err)?;
            Ok(v.map(|g| g.value().to_vec()))
        })
        .await
    }

    /// Stores `value` under `key` (durably: the commit is synced to disk).
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        if let Backend::Redis(r) = &self.backend {
            return r.set(&self.redis_key("k", &key), &value).await;
        }
        self.blocking(move |db, table| {
            let txn = db.begin_write().map_err(backend_err)?;
            {
                let mut t = txn.open_table(table).map_err(backend_err)?;
                t.insert(key.as_str(), value.as_slice())
                    .map_err(backend_err)?;
            }
            txn.commit().map_err(backend_err)
        })
        .await
    }

    /// Removes `key`; whether it existed.
    pub async fn delete(&self, key: String) -> Result<bool, HostError> {
        if let Backend::Redis(r) = &self.backend {
            return r.delete(&self.redis_key("k", &key)).await;
        }
        self.blocking(move |db, table| {
            let txn = db.begin_write().map_err(backend_err)?;
            let existed = {
                let mut t = txn.open_table(table).map_err(backend_err)?;
                let old = t.remove(key.as_str()).map_err(backend_err)?;
                old.is_some()
            };
            txn.commit().map_err(backend_err)?;
            Ok(existed)
        })
        .await
    }

    /// Keys starting with `prefix` that `keep` accepts, sorted, at most `limit`;
    /// the flag says whether more were left out.
    pub async fn list(
        &self,
        prefix: String,
        limit: usize,
        keep: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(Vec<String>, bool), HostError> {
        if let Backend::Redis(r) = &self.backend {
            let full = self.redis_key("k", "");
            let mut keys: Vec<String> = r
                .scan(&format!("{full}{prefix}"), limit)
                .await?
                .into_iter()
                .filter_map(|k| k.strip_prefix(full.as_str()).map(str::to_owned))
                .filter(|k| keep(k))
                .collect();
            keys.sort();
            keys.dedup();
            let more = keys.len() > limit;
            keys.truncate(limit);
            return Ok((keys, more));
        }
        self.blocking(move |db, table| {
            let txn = db.begin_read().map_err(backend_err)?;
            let t = match txn.open_table(table) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), false)),
                Err(e) => return Err(backend_err(e)),
            };
            let mut keys = Vec::new();
            for entry in t.range(prefix.as_str()..).map_err(backend_err)? {
                let (k, _) = entry.map_err(backend_err)?;
                let k = k.value();
                if !k.starts_with(prefix.as_str()) {
                    break;
                }
                if keep(k) {
                    if keys.len() == limit {
                        return Ok((keys, true));
                    }
                    keys.push(k.to_owned());
                }
            }
            Ok((keys, false))
        })
        .await
    }

    /// Takes the lock `key` for `owner` for `ttl`; false when another owner holds it.
    /// Taking a lock one already holds renews it.
    pub async fn lock(&self, key: &str, owner: u64, ttl: Duration) -> Result<bool, HostError> {
        if let Backend::Redis(r) = &self.backend {
            let token = format!("{:x}-{owner:x}", process_token());
            return r.lock(&self.redis_key("l", key), &token, ttl).await;
        }
        self.locks.lock(&self.namespace, key, owner, ttl)
    }

    /// Releases the lock `key` if `owner` holds it; whether it did.
    pub async fn unlock(&self, key: &str, owner: u64) -> Result<bool, HostError> {
        if let Backend::Redis(r) = &self.backend {
            let token = format!("{:x}-{owner:x}", process_token());
            return r.unlock(&self.redis_key("l", key), &token).await;
        }
        Ok(self.locks.unlock(&self.namespace, key, owner))
    }
}

/// A lock's identity: (namespace, key).
type LockId = (Arc<str>, String);

/// In-process leases: lock → (owner, expiry).
#[derive(Default)]
pub(crate) struct Locks {
    held: Mutex<HashMap<LockId, (u64, Instant)>>,
}

impl Locks {
    fn lock(&self, ns: &Arc<str>, key: &str, owner: u64, ttl: Duration) -> Result<bool, HostError> {
        let now = Instant::now();
        let mut held = self
            .held
            .lock()
            .map_err(|_| HostError::Backend("lock table poisoned".to_owned()))?;
        let id = (ns.clone(), key.to_owned());
        if let Some((holder, until)) = held.get(&id) {
            if *until > now && *holder != owner {
                return Ok(false);
            }
        }
        if held.len() >= MAX_LOCKS {
            held.retain(|_, (_, until)| *until > now);
            if held.len() >= MAX_LOCKS {
                return Err(HostError::Backend(format!(
                    "too many locks held (limit {MAX_LOCKS})"
                )));
            }
        }
        held.insert(id, (owner, now + ttl.min(MAX_LOCK_TTL)));
        Ok(true)
    }

    fn unlock(&self, ns: &Arc<str>, key: &str, owner: u64) -> bool {
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let id = (ns.clone(), key.to_owned());
        match held.get(&id) {
            Some((holder, until)) if *holder == owner && *until > Instant::now() => {
                held.remove(&id);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn leases_expire_and_belong_to_their_owner() {
        let locks = Locks::default();
        let ns: Arc<str> = Arc::from("kv:a");
        let short = Duration::from_millis(30);
        assert!(locks.lock(&ns, "k", 1, short).unwrap());
        assert!(!locks.lock(&ns, "k", 2, short).unwrap());
        assert!(!locks.unlock(&ns, "k", 2));
        // Another namespace is another lock.
        assert!(locks.lock(&Arc::from("kv:b"), "k", 2, short).unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !locks.lock(&ns, "k", 2, short).unwrap() {
            assert!(Instant::now() < deadline, "the lease never expired");
            std::thread::yield_now();
        }
        assert!(locks.unlock(&ns, "k", 2));
        assert!(locks.lock(&ns, "k", 1, short).unwrap());
    }
}
