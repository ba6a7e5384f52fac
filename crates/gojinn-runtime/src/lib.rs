//! The Gojinn sandbox: everything between "here are the request bytes" and "here is
//! what the guest wrote".
//!
//! This crate owns the wasmtime [`Engine`](wasmtime::Engine) and its pooling
//! allocator, module loading, one pre-linked [`InstancePre`](wasmtime::InstancePre)
//! per function, the fresh [`Store`](wasmtime::Store) made for every call, memory
//! limits, deadlines (epoch interruption driven by one ticker thread per engine) and
//! the WASI preview 1 context with its bounded stdio pipes, and the check of
//! signed modules ([`signature`]) before anything is compiled. It does not know HTTP:
//! mapping a [`Fault`] to a status is the server's job.

mod engine;
mod function;
mod limits;
mod pipes;
pub mod signature;

pub use engine::{default_cache_dir, Runtime, RuntimeOptions, EPOCH_TICK, MAX_TOTAL_SLOTS};
pub use function::{
    CallOutcome, Fault, Function, FunctionSpec, LoadError, DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_QUEUE_WAIT,
};
pub use signature::{SignatureError, SignaturePolicy};
