//! The WASI calls every function makes on every request — `fd_read` on stdin,
//! `fd_write` on stdout and stderr — answered straight from guest memory.
//!
//! wasmtime-wasi implements WASI preview 1 on top of preview 2's streams: each
//! call looks the descriptor up in a resource table, enters a tracing span, polls
//! an async stream (through a future the call's fiber blocks on) and copies the
//! bytes through a `Vec` in 4 KiB pieces. For a hello function that was about
//! 2 µs of a 25 µs request under load (docs/performance.md, "The server around
//! the sandbox"). The calls here read the same pipes the WASI context holds (the
//! clones in [`Stdio`] share their buffers), so a guest that mixes these calls
//! with any other WASI call on its stdio sees one stream.
//!
//! Only the plain case is answered here: descriptor 0, 1 or 2 as the call
//! started them, a first non-empty buffer of at most [`MAX_FAST_BYTES`] within
//! memory, aligned pointers, and for stdout room for the whole write. Anything
//! else — another descriptor, a bad pointer, a write past stdout's cap, a memory
//! the guest shares between threads — goes to wasmtime-wasi's own function, so
//! its errors (`EBADF`, `EFAULT`, `EINVAL`, a partial write) are exactly WASI's.
//! Once the guest closes or renumbers one of descriptors 0–2, every call goes
//! there.

use crate::function::Host;
use crate::pipes::CappedSink;
use bytes::Bytes;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1 as _};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::p2::{InputStream, OutputStream, StreamError};
use wasmtime_wasi::WasiCtxBuilder;

const MODULE: &str = "wasi_snapshot_preview1";

/// The largest buffer answered here. wasmtime-wasi refuses a single call that
/// copies more than the store's host-call fuel (128 MiB by default) with
/// `ENOMEM`; staying far below it means the two paths never disagree.
const MAX_FAST_BYTES: usize = 16 << 20;

/// The most I/O vectors scanned for the first non-empty one.
const MAX_FAST_IOVECS: usize = 1024;

/// WASI's `errno::success`.
const SUCCESS: i32 = 0;

/// The call's stdio pipes, shared with its WASI context.
pub(crate) struct Stdio {
    stdin: MemoryInputPipe,
    stdout: MemoryOutputPipe,
    stderr: CappedSink,
    /// The guest closed or renumbered one of descriptors 0–2: they may no
    /// longer be these pipes, so only WASI's functions answer.
    moved: bool,
}

impl Stdio {
    /// Gives `builder` the three pipes (`stdin` holds the request) and returns
    /// the handles the fast calls use.
    pub(crate) fn attach(
        builder: &mut WasiCtxBuilder,
        stdin: Bytes,
        stdout: MemoryOutputPipe,
        stderr: CappedSink,
    ) -> Stdio {
        let stdin = MemoryInputPipe::new(stdin);
        builder
            .stdin(stdin.clone())
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        Stdio {
            stdin,
            stdout,
            stderr,
            moved: false,
        }
    }
}

/// Calls wasmtime-wasi's own implementation of a preview 1 function, as its
/// linker entry does: with the guest's memory and the store's host-call fuel.
macro_rules! wasi {
    ($caller:ident, $func:ident($($arg:expr),*)) => {{
        let fuel = $caller.as_context_mut().hostcall_fuel();
        match $caller.get_export("memory") {
            Some(Extern::Memory(m)) => {
                let (mem, host) = m.data_and_store_mut(&mut $caller);
                host.wasi.set_hostcall_fuel(fuel);
                let mut mem = wiggle::GuestMemory::Unshared(mem);
                p1::$func(&mut host.wasi, &mut mem, $($arg),*).await
            }
            Some(Extern::SharedMemory(m)) => {
                let host = $caller.data_mut();
                host.wasi.set_hostcall_fuel(fuel);
                let mut mem = wiggle::GuestMemory::Shared(m.data());
                p1::$func(&mut host.wasi, &mut mem, $($arg),*).await
            }
            _ => Err(wasmtime::format_err!("missing required memory export")),
        }
    }};
}

/// Replaces `fd_read`, `fd_write`, `fd_close` and `fd_renumber` in `linker`
/// (which already has wasmtime-wasi's) with the versions here.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, Host>, (fd, iovs, iovs_len, nread): (i32, i32, i32, i32)| {
            Box::new(async move {
                if fd == 0 && fast_read(&mut caller, iovs, iovs_len, nread).is_some() {
                    return Ok(SUCCESS);
                }
                wasi!(caller, fd_read(fd, iovs, iovs_len, nread))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, Host>, (fd, iovs, iovs_len, nwritten): (i32, i32, i32, i32)| {
            Box::new(async move {
                if (fd == 1 || fd == 2)
                    && fast_write(&mut caller, fd, iovs, iovs_len, nwritten).is_some()
                {
                    return Ok(SUCCESS);
                }
                wasi!(caller, fd_write(fd, iovs, iovs_len, nwritten))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_close",
        |mut caller: Caller<'_, Host>, (fd,): (i32,)| {
            Box::new(async move {
                if is_stdio(fd) {
                    caller.data_mut().stdio.moved = true;
                }
                wasi!(caller, fd_close(fd))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, Host>, (from, to): (i32, i32)| {
            Box::new(async move {
                if is_stdio(from) || is_stdio(to) {
                    caller.data_mut().stdio.moved = true;
                }
                wasi!(caller, fd_renumber(from, to))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

/// A stdio call in the plain case: the guest's memory, the call's pipes, the
/// buffer of the call's first non-empty I/O vector and the slot for its count.
struct Plain<'a> {
    data: &'a mut [u8],
    stdio: &'a mut Stdio,
    buf: std::ops::Range<usize>,
    count_at: usize,
}

impl<'a> Plain<'a> {
    /// The call with these arguments, if it is the plain case: stdio as the call
    /// started it, an exported (unshared) memory, the vectors, their first
    /// non-empty buffer and the 4-byte count slot in memory and aligned.
    fn of(caller: &'a mut Caller<'_, Host>, iovs: i32, iovs_len: i32, count: i32) -> Option<Self> {
        let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
            return None;
        };
        let (data, host) = memory.data_and_store_mut(&mut *caller);
        if host.stdio.moved {
            return None;
        }
        let (start, len) = first_non_empty(data, iovs, iovs_len)?;
        let count_at = u32_slot(data, count)?;
        let buf = start..start.checked_add(len)?;
        data.get(buf.clone())?;
        Some(Plain {
            data,
            stdio: &mut host.stdio,
            buf,
            count_at,
        })
    }

    /// Stores the call's count of bytes read or written.
    fn done(self, n: usize) {
        self.data[self.count_at..self.count_at + 4].copy_from_slice(&(n as u32).to_le_bytes());
    }
}

/// `fd_read` on stdin into the first non-empty buffer; `None` (nothing read)
/// when this is not the plain case.
fn fast_read(caller: &mut Caller<'_, Host>, iovs: i32, iovs_len: i32, nread: i32) -> Option<()> {
    // Everything is checked before the pipe is read: from here on the call
    // cannot fail.
    let call = Plain::of(caller, iovs, iovs_len, nread)?;
    let bytes = match call.stdio.stdin.read(call.buf.len()) {
        Ok(bytes) => bytes,
        // The request is all read: end of file.
        Err(StreamError::Closed) => Bytes::new(),
        // A memory pipe fails in no other way; should it, nothing was read.
        Err(_) => return None,
    };
    call.data[call.buf.start..][..bytes.len()].copy_from_slice(&bytes);
    call.done(bytes.len());
    Some(())
}

/// `fd_write` of the first non-empty buffer to stdout (`fd` 1), when all of it
/// fits under the cap, or to stderr (2), which keeps what fits and drops the
/// rest as WASI's writes to it do; `None` (nothing written) when this is not
/// the plain case.
fn fast_write(
    caller: &mut Caller<'_, Host>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> Option<()> {
    let call = Plain::of(caller, iovs, iovs_len, nwritten)?;
    let bytes = &call.data[call.buf.clone()];
    if fd == 1 {
        if call.stdio.stdout.check_write().ok()? < bytes.len() {
            return None;
        }
        call.stdio
            .stdout
            .write(Bytes::copy_from_slice(bytes))
            .ok()?;
    } else {
        call.stdio.stderr.push(bytes);
    }
    let n = call.buf.len();
    call.done(n);
    Some(())
}

/// The first I/O vector (`{ buf: u32, buf_len: u32 }`, 8 bytes, 4-aligned) of
/// the `count` at `iovs` whose length is not zero, as an offset and a length;
/// `None` if every one is empty, the array is misaligned or out of memory, or
/// the buffer is larger than [`MAX_FAST_BYTES`]. The buffer itself is not
/// checked.
fn first_non_empty(data: &[u8], iovs: i32, count: i32) -> Option<(usize, usize)> {
    let iovs = iovs as u32 as usize;
    let count = count as u32 as usize;
    if !iovs.is_multiple_of(4) || count > MAX_FAST_IOVECS {
        return None;
    }
    let array = data.get(iovs..iovs.checked_add(count * 8)?)?;
    array
        .chunks_exact(8)
        .find_map(|iov| {
            let word = |i: usize| u32::from_le_bytes([iov[i], iov[i + 1], iov[i + 2], iov[i + 3]]);
            let (buf, len) = (word(0) as usize, word(4) as usize);
            (len != 0).then_some((buf, len))
        })
        .filter(|&(_, len)| len <= MAX_FAST_BYTES)
}

/// The offset of a 4-byte result slot at `ptr`, if it is aligned and in memory.
fn u32_slot(data: &[u8], ptr: i32) -> Option<usize> {
    let ptr = ptr as u32 as usize;
    (ptr.is_multiple_of(4) && data.len() >= ptr.checked_add(4)?).then_some(ptr)
}
