//! The systemd notification protocol (`Type=notify`, as Gojinn's unit uses):
//! one datagram per state change to the socket named by `$NOTIFY_SOCKET`.
//!
//! A few lines of `UnixDatagram` rather than a crate: the protocol is a
//! datagram of `KEY=VALUE` lines, and an abstract socket (`@name`) is the only
//! subtlety. Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent;
//! a failed send is logged and never stops the server.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `READY=1`) to `$NOTIFY_SOCKET`, if set.
pub(crate) fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&path, state) {
        tracing::warn!(
            target: "gojinn::notify",
            socket = %path.to_string_lossy(),
            error = %e,
            "cannot notify systemd"
        );
    }
}

fn send_to(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path);
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(name)?
        }
        None => SocketAddr::from_pathname(path)?,
    };
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// `READY=1`: serving (after start, and after each reload).
pub(crate) fn ready() {
    send("READY=1");
}

/// `STOPPING=1`: shutting down.
pub(crate) fn stopping() {
    send("STOPPING=1");
}

/// `RELOADING=1` now and `READY=1` when dropped: brackets one reload, refused
/// or not (the previous config then keeps serving, so the service is ready).
/// No `MONOTONIC_USEC`: `Type=notify` (Gojinn's unit) does not need it, and the
/// standard library does not expose `CLOCK_MONOTONIC` without `unsafe`.
pub(crate) struct Reloading;

impl Reloading {
    pub(crate) fn start() -> Reloading {
        send("RELOADING=1");
        Reloading
    }
}

impl Drop for Reloading {
    fn drop(&mut self) {
        ready();
    }
}
