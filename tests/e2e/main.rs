//! End-to-end tests: the real `gojinn` binary, real HTTP, real wasm guests.
//!
//! Modules:
//! - `harness`: spawn the server on an ephemeral port, raw HTTP/1.1 client, log capture.
//! - `contract`: the JSON request/response contract as a function sees it.
//! - `failures`: every row of the failure → status table, and recovery after each.
//! - `sandbox`: env/args grants, no filesystem, no network.
//! - `load`: big bodies, 256 concurrent requests without cross-talk, memory after faults.
//! - `routing`: handle ordering/exclusivity, handle_path, route, file_server, hosts.
//! - `clients`: malformed and smuggling requests, oversized heads, idle and leaving clients.
//! - `cli`: `validate`, `adapt`, `version`, and "no socket before a valid config".
//! - `lifecycle`: SIGTERM drain, SIGHUP and `--watch` reloads under load, bad reloads.
//! - `signing`: keygen/sign/verify, strict and audit signature policies at load and reload.
//! - `examples`: the shipped examples and the seed Caddyfile, unmodified.

mod cli;
mod clients;
mod contract;
mod examples;
mod failures;
mod harness;
mod lifecycle;
mod load;
mod routing;
mod sandbox;
mod signing;
