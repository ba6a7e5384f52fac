//! SQL on the route's database: `permissions { db read|write }` with `db_dsn`.
//!
//! Parameters are bound by the database (`?1`, `?2`… for SQLite), never spliced
//! into the SQL text, so user input cannot change the statement.
//!
//! ```no_run
//! use gojinn_sdk::db;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), gojinn_sdk::Error> {
//! db::execute("INSERT INTO notes (text) VALUES (?1)", &[json!("buy milk")])?;
//! let rows = db::query("SELECT id, text FROM notes WHERE id > ?1", &[json!(0)])?;
//! for row in rows {
//!     println!("{} {}", row["id"], row["text"]);
//! }
//! # Ok(()) }
//! ```

use crate::sys;
use crate::Error;
use serde_json::{Map, Value};

/// One result row: column name → value (blobs as base64 strings).
pub type Row = Map<String, Value>;

fn params_json(params: &[Value]) -> Vec<u8> {
    if params.is_empty() {
        Vec::new()
    } else {
        // Serialising a slice of `Value`s cannot fail.
        serde_json::to_vec(params).unwrap_or_default()
    }
}

/// Runs a query and returns its rows.
pub fn query(sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
    query_as(sql, params)
}

/// Runs a query and deserialises each row into `T`.
pub fn query_as<T: serde::de::DeserializeOwned>(
    sql: &str,
    params: &[Value],
) -> Result<Vec<T>, Error> {
    let bytes = sys::db_query(sql.as_bytes(), &params_json(params)).map_err(Error::from_code)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("bad rows: {e}")))
}

/// Runs a statement; the number of rows it changed.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, Error> {
    match sys::db_exec(sql.as_bytes(), &params_json(params)) {
        n if n >= 0 => Ok(n as u64),
        code => Err(Error::from_code(code)),
    }
}
