//! The shapes every host function shares: guest memory in and out, the call
//! handle, and the result conventions of the two families. The table in
//! `hostcalls/mod.rs` composes these; nothing here knows a particular call.

use crate::function::Host;
use gojinn_host::{code, CallCx, HostError};
use std::future::Future;
use wasmtime::Caller;

/// Bytes `[ptr, ptr+len)` of the guest's memory; `None` if out of bounds or the
/// module exports no memory.
pub(super) fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = caller.get_export("memory")?.into_memory()?;
    let start = usize::try_from(ptr).ok()?;
    let len = usize::try_from(len).ok()?;
    mem.data(&*caller)
        .get(start..start.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr`; false if out of bounds.
pub(super) fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> bool {
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
pub(super) fn fail(caller: &mut Caller<'_, Host>, call: &'static str, e: &HostError) {
    if let Some(s) = caller.data_mut().session.as_mut() {
        s.fail(call, e);
    }
}

pub(super) fn invalid_memory() -> HostError {
    HostError::Invalid("pointer and length are outside guest memory".to_owned())
}

/// The shape of every store call: take the call handle, copy each `(ptr, len)`
/// input out of guest memory (the first range outside it is an invalid
/// argument), then run `op`. Nothing borrows the store across the `await`, so
/// the guest's worker thread is free while the store works.
pub(super) async fn run<const N: usize, T, F, Fut>(
    caller: &mut Caller<'_, Host>,
    inputs: [(i32, i32); N],
    op: F,
) -> Result<T, HostError>
where
    F: FnOnce(CallCx, [Vec<u8>; N]) -> Fut,
    Fut: Future<Output = Result<T, HostError>>,
{
    let cx = cx(caller)?;
    let mut bytes = [const { Vec::new() }; N];
    for (slot, (ptr, len)) in bytes.iter_mut().zip(inputs) {
        *slot = read(caller, ptr, len).ok_or_else(invalid_memory)?;
    }
    op(cx, bytes).await
}

/// Delivery of a result into `out[..max]`: written when it fits (returns its
/// length); otherwise kept for `host_result_take` and its length returned, which
/// is then larger than `max`, so the guest can tell the two apart. A buffer
/// outside memory is `INVALID`.
pub(super) fn deliver(
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

// ABI v1 conventions: `>= 0` or a negative code; a failure is recorded for
// `host_last_error` and logged.

/// A v1 status or count.
pub(super) fn v1_status(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    r: Result<i64, HostError>,
) -> i64 {
    r.unwrap_or_else(|e| {
        fail(caller, call, &e);
        e.code()
    })
}

/// A v1 result delivered into the guest's `out[..max]` buffer.
pub(super) fn v1_bytes(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    (out, max): (i32, i32),
    r: Result<Vec<u8>, HostError>,
) -> i64 {
    match r {
        Ok(bytes) => deliver(caller, call, out, max, bytes),
        Err(e) => {
            fail(caller, call, &e);
            e.code()
        }
    }
}

/// A v1 status declared `i32`: every value is 0, 1 or a code, so the cast is
/// exact.
pub(super) fn narrow(status: i64) -> i32 {
    status as i32
}

// Legacy conventions: Gojinn's own results, failures only recorded.

/// A legacy yes/no: `1` or `0`, and `0` on any failure.
pub(super) fn legacy_flag(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    r: Result<bool, HostError>,
) -> i32 {
    match r {
        Ok(yes) => i32::from(yes),
        Err(e) => {
            fail(caller, call, &e);
            0
        }
    }
}

/// A legacy call that returns nothing but whose failure loses the guest's data
/// (`host_kv_set`): Gojinn's signature cannot report it, so the call traps
/// rather than look like success. The request fails (502) and the log says why.
pub(super) fn legacy_unit_or_trap(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    r: Result<(), HostError>,
) -> wasmtime::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => {
            fail(caller, call, &e);
            Err(wasmtime::Error::msg(format!(
                "`{call}` failed and its Gojinn signature has no result to report it, \
                 so the call traps instead of losing the write: {e} \
                 (host_kv_set_v1 returns an error code instead)"
            )))
        }
    }
}

/// Gojinn's truncating delivery (legacy `host_kv_get`, `host_http_get`): the
/// first `max` bytes written (`max` read as Gojinn's `uint32`), their count
/// returned; `-1` when the buffer is outside memory.
pub(super) fn legacy_truncated(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    (out, max): (i32, i32),
    mut bytes: Vec<u8>,
) -> i64 {
    // Gojinn declared out_max `uint32`: a length past 2 GiB arrives negative.
    bytes.truncate(max as u32 as usize);
    if write(caller, out, &bytes) {
        bytes.len() as i64
    } else {
        fail(caller, call, &invalid_memory());
        -1
    }
}

/// Legacy `host_kv_get`, either of Gojinn's signatures: the value cut to
/// `out_max` bytes and their count, or `-1` (all ones) on a miss, a denial or
/// any error.
pub(super) fn legacy_value(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    out: (i32, i32),
    r: Result<Option<Vec<u8>>, HostError>,
) -> i64 {
    match r {
        Ok(None) => -1,
        Ok(Some(v)) => legacy_truncated(caller, call, out, v),
        Err(e) => {
            fail(caller, call, &e);
            -1
        }
    }
}

/// A call of a Gojinn function this server does not provide: logged (route,
/// trace id); the caller returns Gojinn's failure value.
pub(super) fn unavailable(caller: &mut Caller<'_, Host>, call: &'static str) {
    if let Some(s) = caller.data_mut().session.as_mut() {
        s.unavailable(call);
    }
}

/// Legacy `host_db_query`: the rows, or `[{"error": "…"}]` for any failure,
/// written into `out[..max]`; a result over `max` is kept for
/// `host_result_take` and answered with an error row saying so; `0` when
/// nothing could be written.
pub(super) fn legacy_rows(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    (out, max): (i32, i32),
    r: Result<Vec<u8>, HostError>,
) -> i32 {
    let json = match r {
        Ok(rows) => rows,
        Err(e) => {
            fail(caller, call, &e);
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
    if json.len() > max_len || !write(caller, out, &json) {
        return 0;
    }
    i32::try_from(json.len()).unwrap_or(0)
}

/// `[{"error": "…"}]`, escaped by serde_json.
fn error_rows(msg: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([{ "error": msg }]))
        .unwrap_or_else(|_| b"[{\"error\":\"error\"}]".to_vec())
}

// Calls on the session itself (no store).

/// `host_log`: the message, if its range is inside memory, to the session's log.
pub(super) fn log(caller: &mut Caller<'_, Host>, level: i32, ptr: i32, len: i32) {
    if let Some(msg) = read(caller, ptr, len) {
        if let Some(s) = caller.data_mut().session.as_mut() {
            s.log(level, &msg);
        }
    }
}

/// `host_last_error`: the last failure's message, written if it fits; its length.
pub(super) fn last_error(caller: &mut Caller<'_, Host>, out: i32, max: i32) -> i64 {
    let msg = caller
        .data()
        .session
        .as_ref()
        .map(|s| s.last_error.clone())
        .unwrap_or_default();
    if msg.len() > usize::try_from(max).unwrap_or(0) {
        return msg.len() as i64;
    }
    if write(caller, out, msg.as_bytes()) {
        msg.len() as i64
    } else {
        code::INVALID
    }
}

/// `host_result_take`: the pending result delivered (once), or `NOT_FOUND`.
pub(super) fn result_take(
    caller: &mut Caller<'_, Host>,
    call: &'static str,
    out: i32,
    max: i32,
) -> i64 {
    let pending = caller
        .data_mut()
        .session
        .as_mut()
        .and_then(|s| s.pending.take());
    match pending {
        Some(bytes) => deliver(caller, call, out, max, bytes),
        None => code::NOT_FOUND,
    }
}
