//! The `gojinn` import module: guest memory in and out, the rest delegated to
//! [`gojinn_host`].
//!
//! Every function is declared once, in the [`host_abi!`] table below; the linker
//! registrations, the public list [`HOST_FUNCTIONS`] and the table of
//! `docs/abi.md` ([`markdown_table`]) all come from it, and the conformance tests
//! (`tests/all/abi.rs`) hold the C header, the Rust SDK and the Go package to it.
//!
//! Every function is linked for every module (so a module importing an unknown
//! `gojinn` name fails to link, naming it), and every call is checked against the
//! route's grants at call time: an ungranted call is denied and logged, never a
//! link error. Host calls are async: a guest waiting on a store yields its worker
//! thread, and the request deadline (the timeout around the whole call) still
//! cancels it.
//!
//! Two families: Gojinn's original functions with their exact signatures and
//! result conventions, and ABI v1 (`docs/abi.md`), whose results are `>= 0` on
//! success or a negative [`gojinn_host::code`].

#[macro_use]
mod abi;
mod glue;

pub use abi::{markdown_table, AbiType, Family, HostFn, Param};

use glue::{
    fail, invalid_memory, last_error, legacy_flag, legacy_rows, legacy_unit, legacy_value, log,
    narrow, read, result_take, run, v1_bytes, v1_status,
};
use gojinn_host::code;
use std::time::Duration;

/// The ABI version `host_abi_version` reports.
pub const ABI_VERSION: i32 = 1;

// The table. To add a host function: add an entry here (its doc line is its row
// in docs/abi.md), implement the store side on `gojinn_host::CallCx`, declare it
// in crates/gojinn-sdk/c/gojinn.h and crates/gojinn-sdk/src/sys.rs, and bless
// docs/abi.md (`GOJINN_BLESS=1 cargo test -p gojinn-runtime --test all abi`).
host_abi! {
    // --- Gojinn's original functions: exact signatures and results. ---

    /// Writes the message at a level (0 debug, 1 info, 2 warn, 3+ error) to the server log; always allowed.
    legacy sync fn host_log(level: i32, ptr: i32, len: i32) = |caller, call| {
        log(&mut caller, level, ptr, len)
    }

    /// Sets a key (`kv_write`); failures are logged and kept for `host_last_error`.
    legacy async fn host_kv_set(k_ptr: i32, k_len: i32, v_ptr: i32, v_len: i32) = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len), (v_ptr, v_len)], |cx, [k, v]| async move {
            cx.kv_set(k, v).await
        })
        .await;
        legacy_unit(&mut caller, call, r)
    }

    /// Reads a key (`kv_read`): bytes written, `-1` on a miss, a denial or an error.
    legacy async fn host_kv_get(k_ptr: i32, k_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move { cx.kv_get(k).await }).await;
        legacy_value(&mut caller, call, (out_ptr, out_max), r)
    }

    /// Runs a query (`db`): bytes of JSON rows or `[{"error": …}]` written, `0` on a memory fault.
    legacy async fn host_db_query(q_ptr: i32, q_len: i32, out_ptr: i32, out_max: i32) -> i32 = |caller, call| {
        // Memory first, and a bad range is `0` rather than an error row: Gojinn's order.
        let Some(sql) = read(&mut caller, q_ptr, q_len) else {
            fail(&mut caller, call, &invalid_memory());
            return 0;
        };
        let r = run(&mut caller, [], |cx, []| async move { cx.db_query(sql, b"").await }).await;
        legacy_rows(&mut caller, call, (out_ptr, out_max), r)
    }

    /// Takes a lock for `ttl_seconds` (`kv_write`): `1` taken, `0` not (held elsewhere, denied, TTL ≤ 0).
    legacy async fn host_mutex_lock(k_ptr: i32, k_len: i32, ttl_seconds: i32) -> i32 = |caller, call| {
        let ttl = Duration::from_secs(u64::try_from(ttl_seconds).unwrap_or(0));
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move { cx.lock(k, ttl).await }).await;
        legacy_flag(&mut caller, call, r)
    }

    /// Releases a lock: `1` released, `0` not held by this request.
    legacy async fn host_mutex_unlock(k_ptr: i32, k_len: i32) -> i32 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move { cx.unlock(k).await }).await;
        legacy_flag(&mut caller, call, r)
    }

    // --- ABI v1: `>= 0` or a negative code; details in `host_last_error`. ---

    /// The ABI version: `1`.
    v1 sync fn host_abi_version() -> i32 = |caller, call| {
        ABI_VERSION
    }

    /// The last failure's message: its length, written if it fits `out_max`.
    v1 sync fn host_last_error(out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        last_error(&mut caller, out_ptr, out_max)
    }

    /// Copies (once) a result that did not fit its buffer: its length, or `-1` when none is pending.
    v1 sync fn host_result_take(out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        result_take(&mut caller, call, out_ptr, out_max)
    }

    /// Reads a key (`kv_read`): the value's length, `-1` on a miss, or a negative code.
    v1 async fn host_kv_get_v1(k_ptr: i32, k_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move { cx.kv_get(k).await }).await;
        match r {
            Ok(None) => code::NOT_FOUND,
            r => v1_bytes(&mut caller, call, (out_ptr, out_max), r.map(Option::unwrap_or_default)),
        }
    }

    /// Sets a key (`kv_write`), durable on return: `0` or a negative code.
    v1 async fn host_kv_set_v1(k_ptr: i32, k_len: i32, v_ptr: i32, v_len: i32) -> i32 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len), (v_ptr, v_len)], |cx, [k, v]| async move {
            cx.kv_set(k, v).await.map(|()| 0)
        })
        .await;
        narrow(v1_status(&mut caller, call, r))
    }

    /// Deletes a key (`kv_write`): `1` deleted, `0` absent, or a negative code.
    v1 async fn host_kv_delete(k_ptr: i32, k_len: i32) -> i32 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move {
            cx.kv_delete(k).await.map(i64::from)
        })
        .await;
        narrow(v1_status(&mut caller, call, r))
    }

    /// Lists the readable keys with a prefix as JSON `{"keys": […], "more": bool}`.
    v1 async fn host_kv_list(p_ptr: i32, p_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(p_ptr, p_len)], |cx, [p]| async move { cx.kv_list(p).await }).await;
        v1_bytes(&mut caller, call, (out_ptr, out_max), r)
    }

    /// Runs a query with JSON array parameters (`db`): the rows as JSON, or a negative code.
    v1 async fn host_db_query_v1(q_ptr: i32, q_len: i32, p_ptr: i32, p_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(q_ptr, q_len), (p_ptr, p_len)], |cx, [q, p]| async move {
            cx.db_query(q, &p).await
        })
        .await;
        v1_bytes(&mut caller, call, (out_ptr, out_max), r)
    }

    /// Runs a statement with JSON array parameters (`db write`): rows changed, or a negative code.
    v1 async fn host_db_exec(q_ptr: i32, q_len: i32, p_ptr: i32, p_len: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(q_ptr, q_len), (p_ptr, p_len)], |cx, [q, p]| async move {
            cx.db_exec(q, &p).await.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        })
        .await;
        v1_status(&mut caller, call, r)
    }

    /// Sends an HTTP request described as JSON to a granted `host:port`: the response as JSON, or a negative code.
    v1 async fn host_http_request(r_ptr: i32, r_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(r_ptr, r_len)], |cx, [spec]| async move {
            cx.http_request(spec).await
        })
        .await;
        v1_bytes(&mut caller, call, (out_ptr, out_max), r)
    }

    /// Takes a lock for `ttl_ms` (`kv_write`): `1` taken, `0` held elsewhere, or a negative code.
    v1 async fn host_lock_v1(k_ptr: i32, k_len: i32, ttl_ms: i64) -> i32 = |caller, call| {
        let ttl = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move {
            cx.lock(k, ttl).await.map(i64::from)
        })
        .await;
        narrow(v1_status(&mut caller, call, r))
    }

    /// Releases a lock: `1` released, `0` not held by this request, or a negative code.
    v1 async fn host_unlock_v1(k_ptr: i32, k_len: i32) -> i32 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move {
            cx.unlock(k).await.map(i64::from)
        })
        .await;
        narrow(v1_status(&mut caller, call, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for f in HOST_FUNCTIONS {
            assert!(f.name().starts_with("host_"), "`{}` lacks host_", f.name());
            assert!(seen.insert(f.name()), "`{}` is declared twice", f.name());
            assert!(!f.doc().is_empty(), "`{}` has no doc line", f.name());
        }
    }

    #[test]
    fn wat_import_spells_the_signature() {
        let lock = HOST_FUNCTIONS
            .iter()
            .find(|f| f.name() == "host_lock_v1")
            .map(HostFn::wat_import);
        assert_eq!(
            lock.as_deref(),
            Some(
                r#"(import "gojinn" "host_lock_v1" (func $host_lock_v1 (param i32 i32 i64) (result i32)))"#
            )
        );
        let log = HOST_FUNCTIONS
            .iter()
            .find(|f| f.name() == "host_log")
            .map(HostFn::wat_import);
        assert_eq!(
            log.as_deref(),
            Some(r#"(import "gojinn" "host_log" (func $host_log (param i32 i32 i32)))"#)
        );
    }
}
