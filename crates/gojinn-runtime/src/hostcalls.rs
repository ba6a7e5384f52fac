//! The `gojinn` import module: guest memory in and out, the rest delegated to
//! [`gojinn_host`].
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

use crate::function::Host;
use gojinn_host::{code, CallCx, HostError};
use std::time::Duration;
use wasmtime::{Caller, Linker};

/// The ABI version `host_abi_version` reports.
pub const ABI_VERSION: i32 = 1;

/// Every function of the `gojinn` module, for docs and tests.
pub const FUNCTIONS: &[&str] = &[
    "host_log",
    "host_kv_set",
    "host_kv_get",
    "host_db_query",
    "host_mutex_lock",
    "host_mutex_unlock",
    "host_abi_version",
    "host_last_error",
    "host_result_take",
    "host_kv_get_v1",
    "host_kv_set_v1",
    "host_kv_delete",
    "host_kv_list",
    "host_db_query_v1",
    "host_db_exec",
    "host_http_request",
    "host_lock_v1",
    "host_unlock_v1",
];

type LinkResult = wasmtime::Result<()>;

/// Bytes `[ptr, ptr+len)` of the guest's memory; `None` if out of bounds or the
/// module exports no memory.
fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = caller.get_export("memory")?.into_memory()?;
    let start = usize::try_from(ptr).ok()?;
    let len = usize::try_from(len).ok()?;
    mem.data(&*caller)
        .get(start..start.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr`; false if out of bounds.
fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(mem) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
        return false;
    };
    let Ok(start) = usize::try_from(ptr) else {
        return false;
    };
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match mem.data_mut(&mut *caller).get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// The call handle, or a denial when the sandbox has no session (cannot happen
/// for a module that imports `gojinn`, which always gets one).
fn cx(caller: &Caller<'_, Host>) -> Result<CallCx, HostError> {
    caller
        .data()
        .session
        .as_ref()
        .map(|s| s.cx())
        .ok_or_else(|| HostError::Denied("no host session".to_owned()))
}

/// Records a failure in the session (log + last error).
fn fail(caller: &mut Caller<'_, Host>, call: &'static str, e: &HostError) {
    if let Some(s) = caller.data_mut().session.as_mut() {
        s.fail(call, e);
    }
}

/// ABI v1 delivery of a result: written when it fits `out_max` (returns its
/// length); otherwise kept for `host_result_take` and its length returned, which
/// is then larger than `out_max`: the guest can tell the two apart.
fn deliver(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    out: i32,
    max: i32,
    bytes: Vec<u8>,
) -> i64 {
    let len = bytes.len() as i64;
    if len > i64::from(max.max(0)) {
        if let Some(s) = caller.data_mut().session.as_mut() {
            s.pending = Some(bytes);
        }
        return len;
    }
    if write(caller, out, &bytes) {
        len
    } else {
        let e = HostError::Invalid("output buffer is outside guest memory".to_owned());
        fail(caller, call, &e);
        e.code()
    }
}

fn invalid_memory() -> HostError {
    HostError::Invalid("pointer and length are outside guest memory".to_owned())
}

/// Links the `gojinn` module.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> LinkResult {
    legacy(linker)?;
    v1(linker)?;
    Ok(())
}

/// Gojinn's original functions, exact signatures and results.
fn legacy(linker: &mut Linker<Host>) -> LinkResult {
    linker.func_wrap(
        "gojinn",
        "host_log",
        |mut caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32| {
            if let Some(msg) = read(&mut caller, ptr, len) {
                if let Some(s) = caller.data_mut().session.as_mut() {
                    s.log(level, &msg);
                }
            }
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_kv_set",
        |mut caller: Caller<'_, Host>, (kp, kl, vp, vl): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    let v = read(&mut caller, vp, vl).ok_or_else(invalid_memory)?;
                    cx.kv_set(k, v).await
                }
                .await;
                if let Err(e) = r {
                    fail(&mut caller, "host_kv_set", &e);
                }
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_kv_get",
        |mut caller: Caller<'_, Host>, (kp, kl, out, max): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    cx.kv_get(k).await
                }
                .await;
                match r {
                    // Gojinn: -1 on a miss or a denial.
                    Ok(None) => -1i64,
                    Ok(Some(v)) => match deliver(&mut caller, "host_kv_get", out, max, v) {
                        n if n < 0 => -1,
                        n => n,
                    },
                    Err(e) => {
                        fail(&mut caller, "host_kv_get", &e);
                        -1
                    }
                }
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_db_query",
        |mut caller: Caller<'_, Host>, (qp, ql, out, max): (i32, i32, i32, i32)| {
            Box::new(async move {
                let Some(sql) = read(&mut caller, qp, ql) else {
                    fail(&mut caller, "host_db_query", &invalid_memory());
                    return 0i32;
                };
                let r = match cx(&caller) {
                    Ok(cx) => cx.db_query(sql, b"").await,
                    Err(e) => Err(e),
                };
                let json = match r {
                    Ok(rows) => rows,
                    Err(e) => {
                        fail(&mut caller, "host_db_query", &e);
                        error_rows(&e.to_string())
                    }
                };
                let max_len = usize::try_from(max).unwrap_or(0);
                let json = if json.len() > max_len {
                    let msg = format!(
                        "result is {} bytes, over the buffer of {max_len}; call host_result_take with a bigger buffer",
                        json.len()
                    );
                    if let Some(s) = caller.data_mut().session.as_mut() {
                        s.pending = Some(json);
                    }
                    error_rows(&msg)
                } else {
                    json
                };
                if json.len() > max_len || !write(&mut caller, out, &json) {
                    return 0;
                }
                i32::try_from(json.len()).unwrap_or(0)
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_mutex_lock",
        |mut caller: Caller<'_, Host>, (kp, kl, ttl): (i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    let secs = u64::try_from(ttl).unwrap_or(0);
                    cx.lock(k, Duration::from_secs(secs)).await
                }
                .await;
                match r {
                    Ok(taken) => i32::from(taken),
                    Err(e) => {
                        fail(&mut caller, "host_mutex_lock", &e);
                        0
                    }
                }
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_mutex_unlock",
        |mut caller: Caller<'_, Host>, (kp, kl): (i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    cx.unlock(k).await
                }
                .await;
                match r {
                    Ok(released) => i32::from(released),
                    Err(e) => {
                        fail(&mut caller, "host_mutex_unlock", &e);
                        0
                    }
                }
            })
        },
    )?;
    Ok(())
}

/// `[{"error": "…"}]`, escaped by serde_json.
fn error_rows(msg: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([{ "error": msg }]))
        .unwrap_or_else(|_| b"[{\"error\":\"error\"}]".to_vec())
}

/// What an ABI v1 call produced before delivery.
enum Out {
    /// Bytes for the guest's `out` buffer.
    Bytes(Vec<u8>),
    /// A plain result code (`>= 0` success, or `NOT_FOUND` which is no failure).
    Code(i64),
}

/// Turns an ABI v1 result into the value returned to the guest.
fn finish(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    out: i32,
    max: i32,
    r: Result<Out, HostError>,
) -> i64 {
    match r {
        Ok(Out::Bytes(bytes)) => deliver(caller, call, out, max, bytes),
        Ok(Out::Code(c)) => c,
        Err(e) => {
            fail(caller, call, &e);
            e.code()
        }
    }
}

/// ABI v1: every result `>= 0` or a negative code; details in `host_last_error`.
fn v1(linker: &mut Linker<Host>) -> LinkResult {
    linker.func_wrap("gojinn", "host_abi_version", || ABI_VERSION)?;

    linker.func_wrap(
        "gojinn",
        "host_last_error",
        |mut caller: Caller<'_, Host>, out: i32, max: i32| -> i64 {
            let msg = caller
                .data()
                .session
                .as_ref()
                .map(|s| s.last_error.clone())
                .unwrap_or_default();
            if msg.len() > usize::try_from(max).unwrap_or(0) {
                return msg.len() as i64;
            }
            if write(&mut caller, out, msg.as_bytes()) {
                msg.len() as i64
            } else {
                code::INVALID
            }
        },
    )?;

    linker.func_wrap(
        "gojinn",
        "host_result_take",
        |mut caller: Caller<'_, Host>, out: i32, max: i32| -> i64 {
            let pending = caller
                .data_mut()
                .session
                .as_mut()
                .and_then(|s| s.pending.take());
            match pending {
                Some(bytes) => deliver(&mut caller, "host_result_take", out, max, bytes),
                None => code::NOT_FOUND,
            }
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_kv_get_v1",
        |mut caller: Caller<'_, Host>, (kp, kl, out, max): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    Ok(match cx.kv_get(k).await? {
                        Some(v) => Out::Bytes(v),
                        None => Out::Code(code::NOT_FOUND),
                    })
                }
                .await;
                finish(&mut caller, "host_kv_get_v1", out, max, r)
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_kv_set_v1",
        |mut caller: Caller<'_, Host>, (kp, kl, vp, vl): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    let v = read(&mut caller, vp, vl).ok_or_else(invalid_memory)?;
                    cx.kv_set(k, v).await.map(|()| Out::Code(0))
                }
                .await;
                // A status, small enough for an i32 by construction.
                finish(&mut caller, "host_kv_set_v1", 0, 0, r) as i32
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_kv_delete",
        |mut caller: Caller<'_, Host>, (kp, kl): (i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    cx.kv_delete(k).await.map(|d| Out::Code(i64::from(d)))
                }
                .await;
                // A status, small enough for an i32 by construction.
                finish(&mut caller, "host_kv_delete", 0, 0, r) as i32
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_kv_list",
        |mut caller: Caller<'_, Host>, (pp, pl, out, max): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let p = read(&mut caller, pp, pl).ok_or_else(invalid_memory)?;
                    cx.kv_list(p).await.map(Out::Bytes)
                }
                .await;
                finish(&mut caller, "host_kv_list", out, max, r)
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_db_query_v1",
        |mut caller: Caller<'_, Host>,
         (qp, ql, pp, pl, out, max): (i32, i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let q = read(&mut caller, qp, ql).ok_or_else(invalid_memory)?;
                    let p = read(&mut caller, pp, pl).ok_or_else(invalid_memory)?;
                    cx.db_query(q, &p).await.map(Out::Bytes)
                }
                .await;
                finish(&mut caller, "host_db_query_v1", out, max, r)
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_db_exec",
        |mut caller: Caller<'_, Host>, (qp, ql, pp, pl): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let q = read(&mut caller, qp, ql).ok_or_else(invalid_memory)?;
                    let p = read(&mut caller, pp, pl).ok_or_else(invalid_memory)?;
                    cx.db_exec(q, &p)
                        .await
                        .map(|n| Out::Code(i64::try_from(n).unwrap_or(i64::MAX)))
                }
                .await;
                finish(&mut caller, "host_db_exec", 0, 0, r)
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_http_request",
        |mut caller: Caller<'_, Host>, (rp, rl, out, max): (i32, i32, i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let spec = read(&mut caller, rp, rl).ok_or_else(invalid_memory)?;
                    cx.http_request(spec).await.map(Out::Bytes)
                }
                .await;
                finish(&mut caller, "host_http_request", out, max, r)
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_lock_v1",
        |mut caller: Caller<'_, Host>, (kp, kl, ttl_ms): (i32, i32, i64)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    let ms = u64::try_from(ttl_ms).unwrap_or(0);
                    cx.lock(k, Duration::from_millis(ms))
                        .await
                        .map(|taken| Out::Code(i64::from(taken)))
                }
                .await;
                finish(&mut caller, "host_lock_v1", 0, 0, r) as i32
            })
        },
    )?;

    linker.func_wrap_async(
        "gojinn",
        "host_unlock_v1",
        |mut caller: Caller<'_, Host>, (kp, kl): (i32, i32)| {
            Box::new(async move {
                let r = async {
                    let cx = cx(&caller)?;
                    let k = read(&mut caller, kp, kl).ok_or_else(invalid_memory)?;
                    cx.unlock(k).await.map(|r| Out::Code(i64::from(r)))
                }
                .await;
                finish(&mut caller, "host_unlock_v1", 0, 0, r) as i32
            })
        },
    )?;
    Ok(())
}
