//! The Gojinn sandbox: everything between "here are the request bytes" and "here is
//! what the guest wrote".
//!
//! This crate owns the wasmtime [`Engine`](wasmtime::Engine) and its pooling
//! allocator, module loading, one pre-linked [`InstancePre`](wasmtime::InstancePre)
//! per function, the fresh [`Store`](wasmtime::Store) made for every call, memory
//! limits, deadlines (epoch interruption driven by one ticker thread per engine) and
//! the WASI preview 1 context with its bounded stdio pipes. It does not know HTTP:
//! mapping a [`Fault`] to a status is the server's job.

mod engine;
mod function;
mod limits;
mod pipes;

/// The wasmtime release this crate is built against (kept in step with the
/// workspace's pinned dependency).
pub const WASMTIME_VERSION: &str = "48";

pub use engine::{
    default_cache_dir, CacheStats, Runtime, RuntimeOptions, EPOCH_TICK, MAX_TOTAL_SLOTS,
};
pub use function::{
    CallOutcome, Fault, Function, FunctionSpec, LoadError, DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_QUEUE_WAIT,
};
