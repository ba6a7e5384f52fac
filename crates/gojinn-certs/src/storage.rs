//! Where certificates, their keys, ACME accounts and the local CA are kept, and
//! the locks that make one node of many order a certificate: a directory
//! (the `storage` global option), or a Redis or PostgreSQL server shared by
//! several nodes (`storage redis://…` / `storage postgres://…`).
//!
//! Keys are relative paths (`certificates/<issuer>/<name>/<name>.crt`); the
//! directory store writes them as files, private ones with mode 0600; the
//! shared stores keep them under the same names.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::OnceCell;

/// Redis key prefix of every stored value and lock.
const REDIS_PREFIX: &str = "gojinn:certs:";
/// How long a shared store may take to answer before the operation fails.
const SHARED_TIMEOUT: Duration = Duration::from_secs(5);

const REDIS_UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A certificate store.
pub enum Storage {
    /// A directory on this machine.
    Dir(PathBuf),
    /// A Redis server, connected on first use.
    Redis(RedisStore),
    /// A PostgreSQL database, connected on first use (and again after a failure).
    Postgres(Box<PgStore>),
}

/// A held lock; give it back with [`Storage::unlock`]. It expires by itself
/// after the time it was taken for, so a node that dies holding it does not
/// stop the others for long.
#[derive(Debug)]
pub struct Lock {
    name: String,
    token: String,
}

impl Storage {
    /// The store a `storage` value names: a `redis://`, `postgres://` or
    /// `postgresql://` URL, else a directory.
    pub fn open(dir: &Path, url: Option<&str>) -> Result<Storage, String> {
        let Some(url) = url else {
            return Ok(Storage::Dir(dir.to_owned()));
        };
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            let client = redis::Client::open(url)
                .map_err(|e| format!("invalid storage URL `{url}`: {e}"))?;
            Ok(Storage::Redis(RedisStore {
                client,
                conn: OnceCell::new(),
            }))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let config: tokio_postgres::Config = url
                .parse()
                .map_err(|e| format!("invalid storage URL: {e}"))?;
            Ok(Storage::Postgres(Box::new(PgStore {
                config,
                client: tokio::sync::Mutex::new(None),
            })))
        } else {
            Err(format!(
                "unknown storage URL `{url}`: use a directory, `redis://…` or `postgres://…`"
            ))
        }
    }

    /// Says where things are kept, for log lines.
    pub fn describe(&self) -> String {
        match self {
            Storage::Dir(dir) => dir.display().to_string(),
            Storage::Redis(_) => "redis (shared)".to_owned(),
            Storage::Postgres(_) => "postgres (shared)".to_owned(),
        }
    }

    /// The file a key is kept in, for a directory store.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        match self {
            Storage::Dir(dir) => Some(dir.join(key)),
            _ => None,
        }
    }

    /// The value of `key`, `None` when absent.
    pub async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Storage::Dir(dir) => match tokio::fs::read(dir.join(key)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read `{}`: {e}", dir.join(key).display())),
            },
            Storage::Redis(r) => {
                let mut c = r.conn().await?;
                timed(c.get(format!("{REDIS_PREFIX}{key}")))
                    .await?
                    .map_err(|e| format!("redis storage: {e}"))
            }
            Storage::Postgres(p) => {
                let rows = p
                    .query("SELECT value FROM gojinn_storage WHERE key = $1", &[&key])
                    .await?;
                Ok(rows.first().map(|r| r.get::<_, Vec<u8>>(0)))
            }
        }
    }

    /// Stores `value` under `key`; `private` values (keys) are readable by the
    /// owner only in a directory store. Written whole: a reader never sees half.
    pub async fn store(&self, key: &str, value: &[u8], private: bool) -> Result<(), String> {
        match self {
            Storage::Dir(dir) => {
                let path = dir.join(key);
                let value = value.to_vec();
                tokio::task::spawn_blocking(move || write_file(&path, &value, private))
                    .await
                    .map_err(|e| format!("storage write task: {e}"))?
            }
            Storage::Redis(r) => {
                let mut c = r.conn().await?;
                timed(c.set::<_, _, ()>(format!("{REDIS_PREFIX}{key}"), value))
                    .await?
                    .map_err(|e| format!("redis storage: {e}"))
            }
            Storage::Postgres(p) => p
                .execute(
                    "INSERT INTO gojinn_storage (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[&key, &value],
                )
                .await
                .map(drop),
        }
    }

    /// Whether several nodes may share this store.
    pub fn is_shared(&self) -> bool {
        !matches!(self, Storage::Dir(_))
    }

    /// Removes `key` (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        match self {
            Storage::Dir(dir) => match tokio::fs::remove_file(dir.join(key)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("cannot remove `{}`: {e}", dir.join(key).display()))
                }
                _ => Ok(()),
            },
            Storage::Redis(r) => {
                let mut c = r.conn().await?;
                timed(c.del::<_, ()>(format!("{REDIS_PREFIX}{key}")))
                    .await?
                    .map_err(|e| format!("redis storage: {e}"))
            }
            Storage::Postgres(p) => p
                .execute("DELETE FROM gojinn_storage WHERE key = $1", &[&key])
                .await
                .map(drop),
        }
    }

    /// Takes the lock `name` for `ttl`, or `None` while another holder has it.
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>, String> {
        let token = format!("{:032x}", rand::random::<u128>());
        let taken = match self {
            Storage::Dir(dir) => {
                let path = dir.join("locks").join(format!("{name}.lock"));
                let token = token.clone();
                tokio::task::spawn_blocking(move || file_lock(&path, &token, ttl))
                    .await
                    .map_err(|e| format!("storage lock task: {e}"))??
            }
            Storage::Redis(r) => {
                let mut c = r.conn().await?;
                let set: Option<String> = timed(
                    redis::cmd("SET")
                        .arg(format!("{REDIS_PREFIX}locks:{name}"))
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                        .query_async(&mut c),
                )
                .await?
                .map_err(|e| format!("redis storage: {e}"))?;
                set.is_some()
            }
            Storage::Postgres(p) => {
                let ms = ttl.as_secs_f64() * 1000.0;
                let n = p
                    .execute(
                        "INSERT INTO gojinn_locks (name, token, expires) \
                         VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
                         ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, expires = EXCLUDED.expires \
                         WHERE gojinn_locks.expires < now()",
                        &[&name, &token, &ms],
                    )
                    .await?;
                n == 1
            }
        };
        Ok(taken.then(|| Lock {
            name: name.to_owned(),
            token,
        }))
    }

    /// Gives a lock back (a no-op when it expired and someone else took it).
    pub async fn unlock(&self, lock: Lock) -> Result<(), String> {
        match self {
            Storage::Dir(dir) => {
                let path = dir.join("locks").join(format!("{}.lock", lock.name));
                if std::fs::read_to_string(&path)
                    .is_ok_and(|held| held.split_whitespace().nth(1) == Some(&lock.token))
                {
                    std::fs::remove_file(&path)
                        .map_err(|e| format!("cannot remove `{}`: {e}", path.display()))?;
                }
                Ok(())
            }
            Storage::Redis(r) => {
                let mut c = r.conn().await?;
                timed(
                    Script::new(REDIS_UNLOCK)
                        .key(format!("{REDIS_PREFIX}locks:{}", lock.name))
                        .arg(&lock.token)
                        .invoke_async::<i64>(&mut c),
                )
                .await?
                .map(drop)
                .map_err(|e| format!("redis storage: {e}"))
            }
            Storage::Postgres(p) => p
                .execute(
                    "DELETE FROM gojinn_locks WHERE name = $1 AND token = $2",
                    &[&lock.name, &lock.token],
                )
                .await
                .map(drop),
        }
    }
}

/// A future bounded by [`SHARED_TIMEOUT`].
async fn timed<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(SHARED_TIMEOUT, f)
        .await
        .map_err(|_| format!("storage did not answer within {SHARED_TIMEOUT:?}"))
}

/// Writes `value` to a temporary file beside `path`, then renames it over.
fn write_file(path: &Path, value: &[u8], private: bool) -> Result<(), String> {
    use std::io::Write;
    let parent = path.parent().ok_or("a storage key without a directory")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(&tmp)
        .map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    file.write_all(value)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A lock file holding `<expiry unix seconds> <token>`, created exclusively; an
/// expired one is taken over.
fn file_lock(path: &Path, token: &str, ttl: Duration) -> Result<bool, String> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    }
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let expires = unix_now() + ttl.as_secs().max(1);
                file.write_all(format!("{expires} {token}\n").as_bytes())
                    .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held = std::fs::read_to_string(path).unwrap_or_default();
                let expires: u64 = held
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if expires > unix_now() {
                    return Ok(false);
                }
                // Expired (or half-written by a writer that died): take it over.
                let _ = std::fs::remove_file(path);
            }
            Err(e) => return Err(format!("cannot create `{}`: {e}", path.display())),
        }
    }
    Ok(false)
}

/// The Redis store.
pub struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
}

impl RedisStore {
    async fn conn(&self) -> Result<ConnectionManager, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(SHARED_TIMEOUT)
            .set_response_timeout(SHARED_TIMEOUT)
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
            .map_err(|e| format!("redis storage: {e}"))
    }
}

/// The PostgreSQL store: one connection, made (and its tables created) on
/// first use, made again after it fails.
pub struct PgStore {
    config: tokio_postgres::Config,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl PgStore {
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, String> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            let (client, conn) = timed(self.config.connect(tokio_postgres::NoTls))
                .await?
                .map_err(|e| format!("postgres storage: {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(target: "gojinn::tls", "postgres storage connection ended: {e}");
                }
            });
            timed(client.batch_execute(
                "CREATE TABLE IF NOT EXISTS gojinn_storage (key text PRIMARY KEY, value bytea NOT NULL); \
                 CREATE TABLE IF NOT EXISTS gojinn_locks (name text PRIMARY KEY, token text NOT NULL, expires timestamptz NOT NULL);",
            ))
            .await?
            .map_err(|e| format!("postgres storage: {e}"))?;
            *slot = Some(client);
        }
        let client = slot.as_ref().ok_or("postgres storage: no connection")?;
        timed(f(client))
            .await?
            .map_err(|e| format!("postgres storage: {e}"))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, String> {
        self.with(async |c| c.query(sql, params).await).await
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, String> {
        self.with(async |c| c.execute(sql, params).await).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gojinn-certs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn a_directory_store_keeps_values_and_private_ones_owner_only() {
        let d = dir("store");
        let s = Storage::open(&d, None).unwrap();
        assert_eq!(s.load("a/b.crt").await.unwrap(), None);
        s.store("a/b.crt", b"cert", false).await.unwrap();
        s.store("a/b.key", b"key", true).await.unwrap();
        assert_eq!(s.load("a/b.crt").await.unwrap().unwrap(), b"cert");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join("a/b.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_lock_is_held_until_given_back_or_expired() {
        let d = dir("lock");
        let s = Storage::open(&d, None).unwrap();
        let held = s
            .try_lock("x", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(s
            .try_lock("x", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none());
        s.unlock(held).await.unwrap();
        let again = s.try_lock("x", Duration::from_secs(60)).await.unwrap();
        assert!(again.is_some());
        // An expired lock (written as expired) is taken over.
        std::fs::write(d.join("locks/y.lock"), "1 old\n").unwrap();
        assert!(s
            .try_lock("y", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some());
    }

    #[test]
    fn an_unknown_url_is_refused_by_name() {
        let e = Storage::open(Path::new("/tmp"), Some("s3://bucket"))
            .err()
            .unwrap();
        assert!(e.contains("s3://bucket"), "{e}");
    }
}
