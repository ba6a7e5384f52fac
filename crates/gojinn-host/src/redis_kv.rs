//! The KV store on Redis (`kv redis://host:port/db`), for several gojinn nodes
//! sharing state. Keys are `gojinn:<namespace>:k:<key>`, locks
//! `gojinn:<namespace>:l:<key>` holding the owner's token with a TTL (`SET NX PX`),
//! renewed and released by scripts that check the token, so a node never frees a
//! lock another holds.
//!
//! The connection is made on first use and re-made after a failure (the
//! connection manager's reconnect), so a Redis restart costs the requests made
//! while it is down (`UNAVAILABLE`), not the server.

use crate::HostError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long connecting to Redis may take before the call is `UNAVAILABLE`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

const LOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
";

const UNLOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// One Redis server (one URL), shared by the routes naming it.
pub(crate) struct RedisKv {
    url: String,
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    lock: Script,
    unlock: Script,
}

fn unavailable(url: &str, e: impl std::fmt::Display) -> HostError {
    HostError::Unavailable(format!("redis `{url}`: {e}"))
}

impl RedisKv {
    /// Checks the URL; connects on first use.
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("invalid redis URL `{url}`: {e}"))?;
        Ok(RedisKv {
            url: url.to_owned(),
            client,
            conn: OnceCell::new(),
            lock: Script::new(LOCK_SCRIPT),
            unlock: Script::new(UNLOCK_SCRIPT),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, HostError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
            .map_err(|e| unavailable(&self.url, e))
    }

    fn err(&self, e: redis::RedisError) -> HostError {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_connection_refusal()
        {
            unavailable(&self.url, e)
        } else {
            HostError::Backend(format!("redis: {e}"))
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        let mut c = self.conn().await?;
        c.get(key).await.map_err(|e| self.err(e))
    }

    pub(crate) async fn set(&self, key: &str, value: &[u8]) -> Result<(), HostError> {
        let mut c = self.conn().await?;
        c.set(key, value).await.map_err(|e| self.err(e))
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<bool, HostError> {
        let mut c = self.conn().await?;
        let n: u64 = c.del(key).await.map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Keys starting with `prefix` (full Redis keys), unsorted, by `SCAN` with a
    /// glob whose special characters are escaped; at most `limit + 1` gathered.
    pub(crate) async fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<String>, HostError> {
        let mut c = self.conn().await?;
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for ch in prefix.chars() {
            if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(ch);
        }
        pattern.push('*');
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .map_err(|e| self.err(e))?;
            keys.extend(batch);
            if next == 0 || keys.len() > limit.saturating_mul(4).max(10_000) {
                break;
            }
            cursor = next;
        }
        Ok(keys)
    }

    pub(crate) async fn lock(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, HostError> {
        let mut c = self.conn().await?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let n: i64 = self
            .lock
            .key(key)
            .arg(token)
            .arg(ms)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    pub(crate) async fn unlock(&self, key: &str, token: &str) -> Result<bool, HostError> {
        let mut c = self.conn().await?;
        let n: i64 = self
            .unlock
            .key(key)
            .arg(token)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }
}
