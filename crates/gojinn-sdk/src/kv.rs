//! The route's key-value store: `permissions { kv_read …; kv_write … }`.
//!
//! Keys are UTF-8 (up to 1 KiB), values bytes (up to 1 MiB). Reads need a
//! `kv_read` pattern covering the key; writes, deletes and locks a `kv_write` one.
//!
//! ```no_run
//! use gojinn_sdk::kv;
//!
//! # fn main() -> Result<(), gojinn_sdk::Error> {
//! let visits: u64 = kv::get_string("visits")?.and_then(|v| v.parse().ok()).unwrap_or(0);
//! kv::set("visits", (visits + 1).to_string())?;
//! # Ok(()) }
//! ```

use crate::sys;
use crate::Error;
use std::time::Duration;

/// The value of `key`, or `None` when it is not set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    match sys::kv_get(key.as_bytes()) {
        Ok(v) => Ok(Some(v)),
        Err(-1) => Ok(None),
        Err(code) => Err(Error::from_code(code)),
    }
}

/// The value of `key` as text (lossily decoded), or `None` when it is not set.
pub fn get_string(key: &str) -> Result<Option<String>, Error> {
    Ok(get(key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Sets `key` to `value`; durable when this returns.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
    match sys::kv_set(key.as_bytes(), value.as_ref()) {
        0 => Ok(()),
        code => Err(Error::from_code(code)),
    }
}

/// Removes `key`; whether it was set.
pub fn delete(key: &str) -> Result<bool, Error> {
    match sys::kv_delete(key.as_bytes()) {
        n if n >= 0 => Ok(n == 1),
        code => Err(Error::from_code(code)),
    }
}

/// Keys starting with `prefix`, sorted, that this route may read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct KeyList {
    /// The keys (at most 1000).
    pub keys: Vec<String>,
    /// Whether more keys matched than were returned.
    pub more: bool,
}

/// The readable keys starting with `prefix`.
pub fn list(prefix: &str) -> Result<KeyList, Error> {
    let bytes = sys::kv_list(prefix.as_bytes()).map_err(Error::from_code)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("bad key list: {e}")))
}

/// Takes the lock `key` for `ttl` (rounded up to whole seconds, at least 1);
/// `false` when another request holds it. The lock is released by [`unlock`], or
/// when the TTL passes even if the request that took it ended.
pub fn lock(key: &str, ttl: Duration) -> Result<bool, Error> {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    match sys::lock(key.as_bytes(), ms) {
        n if n >= 0 => Ok(n == 1),
        code => Err(Error::from_code(code)),
    }
}

/// Releases the lock `key` if this request holds it; whether it did.
pub fn unlock(key: &str) -> Result<bool, Error> {
    match sys::unlock(key.as_bytes()) {
        n if n >= 0 => Ok(n == 1),
        code => Err(Error::from_code(code)),
    }
}
