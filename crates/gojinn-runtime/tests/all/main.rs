//! In-process tests of the sandbox: tiny `.wat` modules loaded through the real
//! [`Runtime`](gojinn_runtime::Runtime), no server binary spawned (the way
//! wasmtime's `tests/all/` tests its engine).
//!
//! One test binary, one module per concern:
//! - `abi`: the host ABI table against everything that restates it (a generated
//!   module that imports every entry, `gojinn.h`, the Rust SDK, the Go package,
//!   `docs/abi.md`, the result codes);
//! - `faults`: one test per [`Fault`](gojinn_runtime::Fault) kind;
//! - `output`: the stdout and stderr caps, at and past their limits;
//! - `isolation`: nothing one call writes is visible to the next, under each
//!   way a pool slot is reset;
//! - `host`: host calls in a sandbox: a deadline passing inside one,
//!   `host_result_take`, lock leases and their TTL, denials;
//! - `legacy`: Gojinn's own signatures and results: both `host_kv_get`
//!   signatures and their truncation, `host_http_get`, a failed `host_kv_set`
//!   trapping, the stubs of the functions this server does not provide;
//! - `snapshot`: requests started from a pre-initialised snapshot: its state
//!   in every request, nothing else crossing between them (secrets, random
//!   bytes), unsafe initialisations refused, the on-disk cache;
//! - `stdio`: the runtime's own `fd_read` and `fd_write` against wasmtime-wasi's,
//!   on good calls, bad ones and moved descriptors;
//! - `support`: the scratch directory, module builder and listeners they share.

mod abi;
mod bounds;
mod faults;
mod host;
mod isolation;
mod legacy;
mod output;
mod snapshot;
mod stdio;
mod support;
