//! The Gojinn HTTP server: how a URL finds a function and how a function's output
//! becomes a response.
//!
//! This crate owns the listeners and accept loop (hyper on tokio; TLS with rustls,
//! HTTP/2 by ALPN, opt-in h2c, per-connection head and idle limits), site selection by
//! port and `Host`, route matching with Caddy's semantics, the handlers (`respond`,
//! `file_server`, `gojinn`), body and header limits, the sites' access logs, and the one place where every
//! failure is mapped to an HTTP status ([`error`]). It leaves parsing the config to
//! `gojinn-config`, running guests to `gojinn-runtime` and the JSON shapes to
//! `gojinn-contract`.
//!
//! Typical use, as the `gojinn` binary does it:
//!
//! ```no_run
//! # async fn demo(config: gojinn_config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let services = gojinn_http::Services::default();
//! let app = gojinn_http::App::load(&config, &services).map_err(|e| e.join("\n"))?;
//! let app = std::sync::Arc::new(app);
//! let listeners = gojinn_http::bind(&app).await?;
//! gojinn_http::serve(app, services, listeners, std::future::pending()).await;
//! # Ok(()) }
//! ```

mod access;
mod app;
mod basic_auth;
mod conn;
mod crash;
mod debug;
mod encode;
pub mod error;
mod exchange;
mod files;
mod handle_errors;
mod handler;
pub mod jobs;
mod matcher;
pub mod metrics;
pub mod otel;
mod placeholder;
mod proxy;
mod server;
mod site;
mod tls;
mod trace;
mod try_files;

pub use app::{App, Services};
pub use debug::{MAX_LOGS_HEADER_BYTES, TRUNCATED_MARKER};
pub use error::FaultKind;
pub use gojinn_loader::LoadNotice;
pub use metrics::Metrics;
pub use otel::Tracer;
pub use server::{bind, serve, BoundListener, Server, HARD_STOP_FLUSH};
