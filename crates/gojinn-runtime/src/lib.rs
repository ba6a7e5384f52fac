//! The Gojinn sandbox: everything between "here are the request bytes" and "here is
//! what the guest wrote".
//!
//! This crate owns the wasmtime [`Engine`](wasmtime::Engine) and its pooling
//! allocator, module loading, one pre-linked [`InstancePre`](wasmtime::InstancePre)
//! per function, the fresh [`Store`](wasmtime::Store) made for every call, memory
//! limits, deadlines (epoch interruption driven by one ticker thread per engine) and
//! the WASI preview 1 context with its bounded stdio pipes, the `gojinn` host
//! import module (guest memory marshalling; the capabilities themselves live in
//! `gojinn-host`), and the check of signed modules ([`signature`]) before
//! anything is compiled. It does not know HTTP:
//! mapping a [`Fault`] to a status is the server's job.

mod engine;
mod function;
mod hostcalls;
mod limits;
mod pipes;
pub mod snapshot;
mod stdio;
pub use gojinn_signature as signature;

/// The wasmtime release this crate is built against (kept in step with the
/// workspace's pinned dependency).
pub const WASMTIME_VERSION: &str = "48";

pub use engine::{
    default_cache_dir, Bounds, CacheStats, Runtime, RuntimeOptions, SandboxReset, StdioCalls,
    EPOCH_TICK, MAX_TOTAL_SLOTS,
};
pub use function::{
    CallOutcome, Fault, Function, FunctionSpec, LoadError, MountSpec, DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_QUEUE_WAIT, MAX_QUOTED_STDOUT_CHARS, OBSERVED_CALLS as ADAPTIVE_OBSERVED_CALLS,
};
pub use hostcalls::{
    markdown_table as abi_markdown_table, AbiType, Family, HostFn, Param, ABI_VERSION,
    HOST_FUNCTIONS, HOST_VARIANTS,
};
pub use signature::{SignatureError, SignaturePolicy};
pub use snapshot::Snapshot;
