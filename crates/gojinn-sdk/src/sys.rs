//! The raw `gojinn` imports, and safe wrappers over guest memory. On any target but
//! wasm32 there is no host: every call answers "unavailable", so code using the SDK
//! still builds and unit-tests natively.
#![allow(unsafe_code)] // FFI to the host; each call passes slices it borrows for the call only

/// "The store is unreachable" (ABI v1 code), what every call returns off wasm32.
#[cfg(not(target_arch = "wasm32"))]
const UNAVAILABLE: i64 = crate::code::UNAVAILABLE;

#[cfg(target_arch = "wasm32")]
mod ffi {
    // Every ABI v1 function, and of Gojinn's original ones only `host_log`; the
    // conformance test `rust_sdk_declares_every_v1_entry` (gojinn-runtime) holds
    // these to the host's table. An import the SDK never calls costs nothing:
    // the linker keeps only the ones called.
    #[link(wasm_import_module = "gojinn")]
    extern "C" {
        pub(super) fn host_log(level: i32, ptr: *const u8, len: i32);
        // Declared so every v1 entry is; nothing in the SDK asks for the version yet.
        #[allow(dead_code)]
        pub(super) fn host_abi_version() -> i32;
        pub(super) fn host_last_error(out: *mut u8, max: i32) -> i64;
        pub(super) fn host_result_take(out: *mut u8, max: i32) -> i64;
        pub(super) fn host_kv_get_v1(kp: *const u8, kl: i32, out: *mut u8, max: i32) -> i64;
        pub(super) fn host_kv_set_v1(kp: *const u8, kl: i32, vp: *const u8, vl: i32) -> i32;
        pub(super) fn host_kv_delete(kp: *const u8, kl: i32) -> i32;
        pub(super) fn host_kv_list(pp: *const u8, pl: i32, out: *mut u8, max: i32) -> i64;
        pub(super) fn host_lock_v1(kp: *const u8, kl: i32, ttl_ms: i64) -> i32;
        pub(super) fn host_unlock_v1(kp: *const u8, kl: i32) -> i32;
        pub(super) fn host_db_query_v1(
            qp: *const u8,
            ql: i32,
            pp: *const u8,
            pl: i32,
            out: *mut u8,
            max: i32,
        ) -> i64;
        pub(super) fn host_db_exec(qp: *const u8, ql: i32, pp: *const u8, pl: i32) -> i64;
        pub(super) fn host_http_request(rp: *const u8, rl: i32, out: *mut u8, max: i32) -> i64;
    }
}

/// A length as the ABI's i32; slices in a 32-bit guest always fit.
fn len(b: &[u8]) -> i32 {
    i32::try_from(b.len()).unwrap_or(i32::MAX)
}

/// First try with this much room; a bigger result costs one more host call.
const FIRST_BUFFER: usize = 16 << 10;

/// Calls `f(out_ptr, out_max)` and returns the bytes, fetching a result that did
/// not fit with `host_result_take`; a negative result is returned as the code.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn with_output(f: impl FnOnce(*mut u8, i32) -> i64) -> Result<Vec<u8>, i64> {
    let mut buf = vec![0u8; FIRST_BUFFER];
    let n = f(buf.as_mut_ptr(), len(&buf));
    if n < 0 {
        return Err(n);
    }
    let n = n as usize;
    if n <= buf.len() {
        buf.truncate(n);
        return Ok(buf);
    }
    buf = vec![0u8; n];
    let m = take(&mut buf);
    if m < 0 {
        return Err(m);
    }
    buf.truncate(m as usize);
    Ok(buf)
}

#[cfg(target_arch = "wasm32")]
fn take(buf: &mut [u8]) -> i64 {
    unsafe { ffi::host_result_take(buf.as_mut_ptr(), len(buf)) }
}

#[cfg(not(target_arch = "wasm32"))]
fn take(_: &mut [u8]) -> i64 {
    UNAVAILABLE
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: i32, msg: &[u8]) {
    unsafe { ffi::host_log(level, msg.as_ptr(), len(msg)) }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn log(_: i32, msg: &[u8]) {
    // No host: stderr is the closest thing.
    eprintln!("{}", String::from_utf8_lossy(msg));
}

/// The message of the last failed call.
#[cfg(target_arch = "wasm32")]
pub(crate) fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    let mut n = unsafe { ffi::host_last_error(buf.as_mut_ptr(), len(&buf)) };
    if n as usize > buf.len() {
        buf = vec![0u8; n as usize];
        n = unsafe { ffi::host_last_error(buf.as_mut_ptr(), len(&buf)) };
    }
    buf.truncate(n.clamp(0, buf.len() as i64) as usize);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn last_error() -> String {
    "no gojinn host: not running in a gojinn sandbox".to_owned()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn kv_get(key: &[u8]) -> Result<Vec<u8>, i64> {
    with_output(|o, m| unsafe { ffi::host_kv_get_v1(key.as_ptr(), len(key), o, m) })
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn kv_set(key: &[u8], value: &[u8]) -> i64 {
    unsafe { ffi::host_kv_set_v1(key.as_ptr(), len(key), value.as_ptr(), len(value)) }.into()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn kv_delete(key: &[u8]) -> i64 {
    unsafe { ffi::host_kv_delete(key.as_ptr(), len(key)) }.into()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn kv_list(prefix: &[u8]) -> Result<Vec<u8>, i64> {
    with_output(|o, m| unsafe { ffi::host_kv_list(prefix.as_ptr(), len(prefix), o, m) })
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn lock(key: &[u8], ttl_ms: i64) -> i64 {
    unsafe { ffi::host_lock_v1(key.as_ptr(), len(key), ttl_ms) }.into()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn unlock(key: &[u8]) -> i64 {
    unsafe { ffi::host_unlock_v1(key.as_ptr(), len(key)) }.into()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn db_query(sql: &[u8], params: &[u8]) -> Result<Vec<u8>, i64> {
    with_output(|o, m| unsafe {
        ffi::host_db_query_v1(sql.as_ptr(), len(sql), params.as_ptr(), len(params), o, m)
    })
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn db_exec(sql: &[u8], params: &[u8]) -> i64 {
    unsafe { ffi::host_db_exec(sql.as_ptr(), len(sql), params.as_ptr(), len(params)) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn http_request(spec: &[u8]) -> Result<Vec<u8>, i64> {
    with_output(|o, m| unsafe { ffi::host_http_request(spec.as_ptr(), len(spec), o, m) })
}

#[cfg(not(target_arch = "wasm32"))]
mod fallback {
    use super::UNAVAILABLE;
    pub(crate) fn kv_get(_: &[u8]) -> Result<Vec<u8>, i64> {
        Err(UNAVAILABLE)
    }
    pub(crate) fn kv_set(_: &[u8], _: &[u8]) -> i64 {
        UNAVAILABLE
    }
    pub(crate) fn kv_delete(_: &[u8]) -> i64 {
        UNAVAILABLE
    }
    pub(crate) fn kv_list(_: &[u8]) -> Result<Vec<u8>, i64> {
        Err(UNAVAILABLE)
    }
    pub(crate) fn lock(_: &[u8], _: i64) -> i64 {
        UNAVAILABLE
    }
    pub(crate) fn unlock(_: &[u8]) -> i64 {
        UNAVAILABLE
    }
    pub(crate) fn db_query(_: &[u8], _: &[u8]) -> Result<Vec<u8>, i64> {
        Err(UNAVAILABLE)
    }
    pub(crate) fn db_exec(_: &[u8], _: &[u8]) -> i64 {
        UNAVAILABLE
    }
    pub(crate) fn http_request(_: &[u8]) -> Result<Vec<u8>, i64> {
        Err(UNAVAILABLE)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use fallback::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_that_fits_is_returned_as_is() {
        let r = with_output(|out, max| {
            assert!(max as usize >= 3);
            unsafe { std::ptr::copy_nonoverlapping(b"abc".as_ptr(), out, 3) };
            3
        });
        assert_eq!(r, Ok(b"abc".to_vec()));
        assert_eq!(with_output(|_, _| -2), Err(-2));
    }
}
