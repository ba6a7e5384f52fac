//! Structured log lines through the host (`host_log`): they reach the server's log
//! with the level, the route and the request's trace id. No permission needed.
//!
//! ```no_run
//! gojinn_sdk::log::info("cache miss, loading from the database");
//! gojinn_sdk::log::warn("retrying the upstream call");
//! ```

use crate::sys;

/// Logs at debug level (hidden unless the server logs debug).
pub fn debug(msg: &str) {
    sys::log(0, msg.as_bytes());
}

/// Logs at info level.
pub fn info(msg: &str) {
    sys::log(1, msg.as_bytes());
}

/// Logs at warn level.
pub fn warn(msg: &str) {
    sys::log(2, msg.as_bytes());
}

/// Logs at error level.
pub fn error(msg: &str) {
    sys::log(3, msg.as_bytes());
}
