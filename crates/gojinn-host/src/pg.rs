//! SQL on PostgreSQL (`db_driver postgres`): one `deadpool` pool per DSN, shared by
//! every route naming it. Parameters arrive as JSON and are converted to the type
//! the server inferred for each placeholder (`$1`, `$2`…); rows come back as JSON.
//!
//! A query the caller stops waiting for (the request's deadline) is cancelled on the
//! server, so the connection is free again for the next request.

use crate::sql::{Access, MAX_RESULT_BYTES};
use crate::HostError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::{Map, Value};
use std::error::Error as _;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{CancelToken, NoTls, Row};

/// A pool of connections to one PostgreSQL database.
pub struct PgPool {
    pool: Pool,
}

/// Cancels the running query unless disarmed (see the module doc).
struct CancelOnDrop(Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            // Needs the runtime; the server always has one when a call is dropped.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = token.cancel_query(NoTls).await;
                });
            }
        }
    }
}

fn pg_err(e: tokio_postgres::Error) -> HostError {
    if let Some(db) = e.as_db_error() {
        // 57014: query_canceled; classes 08 (connection) and 57P (shutdown).
        let code = db.code().code();
        if code == "57014" {
            return HostError::Timeout;
        }
        if code.starts_with("08") || code.starts_with("57P") {
            return HostError::Unavailable(format!("postgres: {}", db.message()));
        }
        return HostError::Backend(format!("postgres: {}", db.message()));
    }
    if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) {
        return HostError::Unavailable(format!("postgres: {e}"));
    }
    HostError::Backend(format!("postgres: {e}"))
}

impl PgPool {
    pub(crate) fn new(dsn: &str, size: usize) -> Result<Self, String> {
        let config: tokio_postgres::Config = dsn
            .parse()
            .map_err(|e| format!("invalid postgres db_dsn: {e}"))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(|e| format!("cannot build the postgres pool: {e}"))?;
        Ok(PgPool { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, HostError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg_err(e),
            other => HostError::Unavailable(format!("postgres: {other}")),
        })
    }

    async fn run(
        &self,
        sql: &str,
        params: &[Value],
        access: Access,
    ) -> Result<(Vec<Row>, u64, bool), HostError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        if stmt.params().len() != params.len() {
            return Err(HostError::Invalid(format!(
                "the statement has {} parameter(s), {} given",
                stmt.params().len(),
                params.len()
            )));
        }
        let values: Vec<Param<'_>> = params
            .iter()
            .zip(stmt.params())
            .map(|(v, t)| Param::new(v, t))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let mut guard = CancelOnDrop(Some(client.cancel_token()));
        let result = if access == Access::Read {
            // A read-only transaction: the server refuses any change.
            async {
                client
                    .batch_execute("BEGIN READ ONLY")
                    .await
                    .map_err(pg_err)?;
                let r = client.query(&stmt, &refs).await.map_err(pg_err);
                let _ = client.batch_execute("ROLLBACK").await;
                r.map(|rows| (rows, 0, true))
            }
            .await
        } else if stmt.columns().is_empty() {
            client
                .execute(&stmt, &refs)
                .await
                .map(|n| (Vec::new(), n, false))
                .map_err(pg_err)
        } else {
            client
                .query(&stmt, &refs)
                .await
                .map(|rows| (rows, 0, true))
                .map_err(pg_err)
        };
        guard.0 = None;
        match result {
            Err(HostError::Backend(m)) if access == Access::Read && m.contains("read-only") => Err(
                HostError::Denied("this route may only read the database (`db read`)".to_owned()),
            ),
            other => other,
        }
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[Value],
        access: Access,
    ) -> Result<Vec<u8>, HostError> {
        let (rows, _, _) = self.run(sql, params, access).await?;
        let mut out = Vec::with_capacity(64);
        out.push(b'[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut obj = Map::with_capacity(row.len());
            for (c, col) in row.columns().iter().enumerate() {
                obj.insert(col.name().to_owned(), column(row, c, col.type_())?);
            }
            serde_json::to_writer(&mut out, &obj).map_err(|e| HostError::Backend(e.to_string()))?;
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
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &[Value],
        access: Access,
    ) -> Result<u64, HostError> {
        let (rows, n, returned_rows) = self.run(sql, params, access).await?;
        Ok(if returned_rows { rows.len() as u64 } else { n })
    }
}

/// One column as JSON, by its type; types without a JSON form are an error naming
/// the column (cast them to text in the query).
fn column(row: &Row, i: usize, ty: &Type) -> Result<Value, HostError> {
    let bad = |e: tokio_postgres::Error| HostError::Backend(format!("postgres: {e}"));
    Ok(match *ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::from),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::from),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::from),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::from),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::from),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(bad)?
            .map_or(Value::Null, |f| Value::from(f64::from(f))),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::from),
        Type::JSON | Type::JSONB => row
            .try_get::<_, Option<Value>>(i)
            .map_err(bad)?
            .unwrap_or(Value::Null),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::String),
        ref other => {
            return Err(HostError::Backend(format!(
            "column `{}` has type `{other}`, which has no JSON form here: cast it, e.g. `{}::text`",
            row.columns()[i].name(),
            row.columns()[i].name()
        )))
        }
    })
}

/// A JSON parameter converted for the placeholder's inferred type.
#[derive(Debug)]
enum Param<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(&'a str),
    Owned(String),
    Json(&'a Value),
}

impl<'a> Param<'a> {
    fn new(v: &'a Value, ty: &Type) -> Result<Self, HostError> {
        let mismatch = || {
            HostError::Invalid(format!(
                "parameter {v} does not fit the placeholder's type `{ty}`"
            ))
        };
        if v.is_null() {
            return Ok(Param::Null);
        }
        Ok(match *ty {
            Type::BOOL => Param::Bool(v.as_bool().ok_or_else(mismatch)?),
            Type::INT2 => Param::I16(
                v.as_i64()
                    .and_then(|n| i16::try_from(n).ok())
                    .ok_or_else(mismatch)?,
            ),
            Type::INT4 => Param::I32(
                v.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(mismatch)?,
            ),
            Type::INT8 => Param::I64(v.as_i64().ok_or_else(mismatch)?),
            Type::FLOAT4 => Param::F32(v.as_f64().ok_or_else(mismatch)? as f32),
            Type::FLOAT8 => Param::F64(v.as_f64().ok_or_else(mismatch)?),
            Type::JSON | Type::JSONB => Param::Json(v),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => match v {
                Value::String(s) => Param::Text(s),
                other => Param::Owned(other.to_string()),
            },
            _ => return Err(mismatch()),
        })
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(b) => b.to_sql(ty, out),
            Param::I16(n) => n.to_sql(ty, out),
            Param::I32(n) => n.to_sql(ty, out),
            Param::I64(n) => n.to_sql(ty, out),
            Param::F32(n) => n.to_sql(ty, out),
            Param::F64(n) => n.to_sql(ty, out),
            Param::Text(s) => s.to_sql(ty, out),
            Param::Owned(s) => s.as_str().to_sql(ty, out),
            Param::Json(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // `Param::new` already matched the value to the type.
        true
    }

    to_sql_checked!();
}
