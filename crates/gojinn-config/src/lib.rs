//! Gojinn configuration: the Caddyfile adapter, the JSON loader and the resolved model.
//!
//! This crate owns turning text into a validated [`Config`]; it knows nothing of
//! wasmtime or hyper (compiling modules is the runtime's job, binding sockets the
//! server's).

mod model;
pub use model::*;
