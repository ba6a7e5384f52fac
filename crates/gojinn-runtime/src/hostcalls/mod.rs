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
//! Three families: Gojinn's original functions with their exact signatures and
//! result conventions, ABI v1 (`docs/abi.md`), whose results are `>= 0` on
//! success or a negative [`gojinn_host::code`], and Gojinn functions this server
//! does not provide, linked as stubs that fail the way Gojinn failed.
//! [`HOST_VARIANTS`] holds the other signatures earlier Gojinn releases gave some
//! imports (`host_kv_get` with a `uint32` result); [`linker_for`] links those for
//! a module that imports them.

#[macro_use]
mod abi;
mod glue;

pub use abi::{markdown_table, AbiType, Family, HostFn, Param};

use glue::{
    fail, invalid_memory, last_error, legacy_flag, legacy_rows, legacy_truncated,
    legacy_unit_or_trap, legacy_value, log, narrow, read, result_take, run, unavailable, v1_bytes,
    v1_status, write,
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

    /// Sets a key (`kv_write`); a failure (denied, too large, store error) traps: the request ends with 502 and the reason in the log.
    legacy async fn host_kv_set(k_ptr: i32, k_len: i32, v_ptr: i32, v_len: i32) = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len), (v_ptr, v_len)], |cx, [k, v]| async move {
            cx.kv_set(k, v).await
        })
        .await;
        legacy_unit_or_trap(&mut caller, call, r)
    }

    /// Reads a key (`kv_read`): the value cut to `out_max` bytes, their count; `-1` on a miss, a denial or an error.
    legacy async fn host_kv_get(k_ptr: i32, k_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move { cx.kv_get(k).await }).await;
        legacy_value(&mut caller, call, (out_ptr, out_max), r)
    }

    /// GETs a URL (`http` grant): the body cut to `out_max` bytes, their count; `0` on a denial or a failure.
    legacy async fn host_http_get(url_ptr: i32, url_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        let max = out_max as u32 as usize; // Gojinn's `uint32`
        let r = run(&mut caller, [(url_ptr, url_len)], |cx, [url]| async move {
            cx.http_get(url, max).await
        })
        .await;
        match r {
            Ok(body) => legacy_truncated(&mut caller, call, (out_ptr, out_max), body).max(0),
            Err(e) => {
                fail(&mut caller, call, &e);
                0
            }
        }
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

    /// Queues a run of a module the `enqueue` permission names, payload as stdin: `0` queued, `1` not (see `host_last_error`).
    legacy async fn host_enqueue(f_ptr: i32, f_len: i32, p_ptr: i32, p_len: i32) -> i32 = |caller, call| {
        let r = run(&mut caller, [(f_ptr, f_len), (p_ptr, p_len)], |cx, [f, p]| async move { cx.enqueue(f, p).await }).await;
        1 - legacy_flag(&mut caller, call, r.map(|()| true))
    }

    // --- Gojinn functions this server does not provide: Gojinn's failure value. ---

    /// Gojinn's S3 upload: returns `1` (failed); not available here.
    unavailable sync fn host_s3_put(k_ptr: i32, k_len: i32, b_ptr: i32, b_len: i32) -> i32 = |caller, call| {
        unavailable(&mut caller, call);
        1
    }

    /// Gojinn's S3 download: returns `0` (nothing read); not available here.
    unavailable sync fn host_s3_get(k_ptr: i32, k_len: i32, out_ptr: i32, out_max: i32) -> i32 = |caller, call| {
        unavailable(&mut caller, call);
        0
    }

    /// Gojinn's AI prompt: writes Gojinn's error object `{"error": …}` (cut to `out_max`) and returns its length; not available here.
    unavailable sync fn host_ask_ai(p_ptr: i32, p_len: i32, out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        ask_ai_unavailable(&mut caller, call, out_ptr, out_max)
    }

    /// Gojinn's WebSocket upgrade: returns `0` (not upgraded); not available here.
    unavailable sync fn host_ws_upgrade() -> i32 = |caller, call| {
        unavailable(&mut caller, call);
        0
    }

    /// Gojinn's WebSocket read: returns `0` (nothing read); not available here.
    unavailable sync fn host_ws_read(out_ptr: i32, out_max: i32) -> i64 = |caller, call| {
        unavailable(&mut caller, call);
        0
    }

    /// Gojinn's WebSocket write: does nothing; not available here.
    unavailable sync fn host_ws_write(ptr: i32, len: i32) = |caller, call| {
        unavailable(&mut caller, call);
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

// Other signatures of the same names, from earlier Gojinn releases: linked for a
// module that imports one of them (see `linker_for`), with the same behaviour.
host_abi_variants! {
    /// `host_kv_get` as Gojinn's Go SDK and v0.5–v0.13 declare it (`uint32` result): as above, `0xFFFFFFFF` on a miss, a denial or an error.
    legacy async fn host_kv_get(k_ptr: i32, k_len: i32, out_ptr: i32, out_max: i32) -> i32 = |caller, call| {
        let r = run(&mut caller, [(k_ptr, k_len)], |cx, [k]| async move { cx.kv_get(k).await }).await;
        // At most `out_max` (an i32) or -1: exact.
        legacy_value(&mut caller, call, (out_ptr, out_max), r) as i32
    }

    /// `host_ask_ai` as earlier Gojinn releases declare it (`uint32` result): as above.
    unavailable sync fn host_ask_ai(p_ptr: i32, p_len: i32, out_ptr: i32, out_max: i32) -> i32 = |caller, call| {
        // At most `out_max`: exact.
        ask_ai_unavailable(&mut caller, call, out_ptr, out_max) as i32
    }
}

/// `host_ask_ai` here: Gojinn answered a failed prompt with an error object in
/// the buffer, so a guest that prints the answer shows why.
fn ask_ai_unavailable(
    caller: &mut wasmtime::Caller<'_, crate::function::Host>,
    call: &'static str,
    out_ptr: i32,
    out_max: i32,
) -> i64 {
    unavailable(caller, call);
    let msg = serde_json::json!({ "error": format!("`{call}` is not available on this server") });
    let mut bytes = msg.to_string().into_bytes();
    bytes.truncate(out_max as u32 as usize);
    if write(caller, out_ptr, &bytes) {
        bytes.len() as i64
    } else {
        0
    }
}

/// The linker for `module`: the shared `base`, or, when the module imports one
/// of Gojinn's other signatures of a function ([`HOST_VARIANTS`]), a copy of it
/// with those linked instead. wasmtime checks an import's type when linking, so
/// the choice is made here, from the module's declared imports.
pub(crate) fn linker_for<'a>(
    base: &'a wasmtime::Linker<crate::function::Host>,
    module: &wasmtime::Module,
) -> wasmtime::Result<std::borrow::Cow<'a, wasmtime::Linker<crate::function::Host>>> {
    let mut variants = Vec::new();
    for import in module.imports().filter(|i| i.module() == abi::MODULE) {
        let wasmtime::ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let named = |f: &&HostFn| f.name() == import.name() && f.matches(&ty);
        if HOST_FUNCTIONS.iter().any(|f| named(&f)) {
            continue;
        }
        if let Some(v) = HOST_VARIANTS.iter().find(named) {
            variants.push(v);
        }
    }
    if variants.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(base));
    }
    let mut linker = base.clone();
    linker.allow_shadowing(true);
    for v in variants {
        add_variant_to_linker(&mut linker, v)?;
    }
    Ok(std::borrow::Cow::Owned(linker))
}

/// The names of the [`Family::Unavailable`] functions `module` imports.
pub(crate) fn unavailable_imports(module: &wasmtime::Module) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = module
        .imports()
        .filter(|i| i.module() == abi::MODULE)
        .filter_map(|i| {
            HOST_FUNCTIONS
                .iter()
                .find(|f| f.name() == i.name() && f.family() == Family::Unavailable)
                .map(HostFn::name)
        })
        .collect();
    names.dedup();
    names
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
