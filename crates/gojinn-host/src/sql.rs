//! SQL behind `host_db_*`: one connection pool per DSN, shared by every sandbox
//! that names it, so a burst of requests cannot open a connection each.
//!
//! SQLite connections are blocking; each statement runs on tokio's blocking pool.
//! When the caller stops waiting (the request's deadline passed and its future was
//! dropped), a guard interrupts the statement (`sqlite3_interrupt`), so the
//! connection comes back to the pool promptly instead of finishing a slow query
//! nobody reads.

use crate::HostError;
use base64::Engine as _;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, InterruptHandle, OpenFlags};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections per DSN.
pub const DEFAULT_SQL_POOL_SIZE: usize = 8;

/// Largest JSON result of one query; a bigger one is an error, never truncated.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

/// How long SQLite retries a locked database before giving up (within the deadline).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of connections to one SQLite file.
pub struct SqlPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for SqlPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlPool")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a statement may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only statements SQLite reports as read-only.
    Read,
    /// Anything.
    Write,
}

/// Interrupts the running statement unless disarmed: the future that owned it
/// was dropped (deadline) before the statement finished.
struct InterruptOnDrop(Option<InterruptHandle>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.interrupt();
        }
    }
}

impl SqlPool {
    /// A pool for the SQLite file `path` (created on first use).
    pub fn sqlite(path: PathBuf, size: usize) -> Self {
        SqlPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    fn open(&self) -> Result<Connection, HostError> {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| {
            HostError::Unavailable(format!("cannot open `{}`: {e}", self.path.display()))
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .map_err(|e| {
                HostError::Unavailable(format!("cannot set up `{}`: {e}", self.path.display()))
            })?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection in the blocking pool.
    async fn with_conn<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<R, HostError> + Send + 'static,
    ) -> Result<R, HostError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HostError::Unavailable("sql pool closed".to_owned()))?;
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let pool = self.clone();
        let conn = match pooled {
            Some(c) => c,
            None => tokio::task::spawn_blocking(move || pool.open())
                .await
                .map_err(|e| HostError::Backend(format!("sql task failed: {e}")))??,
        };
        let mut guard = InterruptOnDrop(Some(conn.get_interrupt_handle()));
        let pool = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            // Back to the pool whatever happened; an interrupted statement leaves
            // the connection usable.
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(conn);
            }
            // The permit goes with the connection, so a caller that gave up
            // cannot let the pool grow past its size.
            drop(permit);
            r
        })
        .await;
        guard.0 = None;
        result.map_err(|e| HostError::Backend(format!("sql task failed: {e}")))?
    }

    /// Runs one query with JSON `params` (an array, or empty) and returns its rows
    /// as a JSON array of objects (column → value).
    pub async fn query(
        self: &Arc<Self>,
        sql: String,
        params: Vec<Value>,
        access: Access,
    ) -> Result<Vec<u8>, HostError> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
            check_access(&stmt, access)?;
            let names: Vec<String> = stmt
                .column_names()
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let values: Vec<SqlValue> = params.iter().map(to_sql).collect();
            let mut rows = stmt
                .query(rusqlite::params_from_iter(values.iter()))
                .map_err(sql_err)?;
            let mut out = Vec::with_capacity(64);
            out.push(b'[');
            let mut first = true;
            while let Some(row) = rows.next().map_err(sql_err)? {
                let mut obj = serde_json::Map::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    obj.insert(name.clone(), from_sql(row.get_ref(i).map_err(sql_err)?));
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut out, &obj)
                    .map_err(|e| HostError::Backend(e.to_string()))?;
                if out.len() > MAX_RESULT_BYTES {
                    return Err(HostError::TooLarge {
                        what: "query result",
                        size: out.len(),
                        limit: MAX_RESULT_BYTES,
                    });
                }
            }
            out.push(b']');
            Ok(out)
        })
        .await
    }

    /// Runs one statement with JSON `params`; the number of rows it changed.
    pub async fn execute(
        self: &Arc<Self>,
        sql: String,
        params: Vec<Value>,
        access: Access,
    ) -> Result<u64, HostError> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
            check_access(&stmt, access)?;
            let values: Vec<SqlValue> = params.iter().map(to_sql).collect();
            let n = stmt
                .execute(rusqlite::params_from_iter(values.iter()))
                .map_err(sql_err)?;
            Ok(n as u64)
        })
        .await
    }
}

fn check_access(stmt: &rusqlite::Statement<'_>, access: Access) -> Result<(), HostError> {
    if access == Access::Read && !stmt.readonly() {
        return Err(HostError::Denied(
            "this route may only read the database (`db read`)".to_owned(),
        ));
    }
    Ok(())
}

fn sql_err(e: rusqlite::Error) -> HostError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            HostError::Timeout
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::SystemIoFailure
            ) =>
        {
            HostError::Unavailable(e.to_string())
        }
        _ => HostError::Backend(e.to_string()),
    }
}

/// A JSON parameter as an SQL value: arrays and objects bind as their JSON text.
fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// An SQL value as JSON: blobs as base64 strings, text that is not UTF-8 lossily.
fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(name: &str) -> Arc<SqlPool> {
        let dir = std::env::temp_dir().join(format!("gojinn-sql-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Arc::new(SqlPool::sqlite(dir.join("t.db"), 2))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parameters_bind_as_values_not_sql() {
        let p = pool("bind");
        p.execute(
            "CREATE TABLE t (name TEXT, n INTEGER)".into(),
            vec![],
            Access::Write,
        )
        .await
        .unwrap();
        let evil = "x'); DROP TABLE t; --";
        p.execute(
            "INSERT INTO t VALUES (?1, ?2)".into(),
            vec![json!(evil), json!(7)],
            Access::Write,
        )
        .await
        .unwrap();
        let rows = p
            .query("SELECT name, n FROM t".into(), vec![], Access::Read)
            .await
            .unwrap();
        let rows: Value = serde_json::from_slice(&rows).unwrap();
        assert_eq!(rows, json!([{"name": evil, "n": 7}]));
        let denied = p
            .execute("DELETE FROM t".into(), vec![], Access::Read)
            .await;
        assert!(matches!(denied, Err(HostError::Denied(_))), "{denied:?}");
        let multi = p
            .query("SELECT 1; DROP TABLE t".into(), vec![], Access::Write)
            .await;
        assert!(matches!(multi, Err(HostError::Backend(_))), "{multi:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_query_is_interrupted_and_its_connection_returns() {
        let p = pool("interrupt");
        let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
        let r = tokio::time::timeout(
            Duration::from_millis(100),
            p.query(slow.into(), vec![], Access::Read),
        )
        .await;
        assert!(r.is_err(), "the endless query finished");
        // Both connections must serve again: the interrupted one came back.
        for _ in 0..4 {
            let rows = tokio::time::timeout(
                Duration::from_secs(10),
                p.query("SELECT 1 AS one".into(), vec![], Access::Read),
            )
            .await
            .expect("pool never got its connection back")
            .unwrap();
            assert_eq!(rows, br#"[{"one":1}]"#);
        }
    }
}
