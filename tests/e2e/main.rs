//! End-to-end tests: the real `gojinn` binary, real HTTP, real wasm guests.
//!
//! Modules:
//! - `harness`: spawn the server on an ephemeral port, raw HTTP/1.1 client, log capture.
//! - `contract`: the JSON request/response contract as a function sees it.
//! - `failures`: every row of the failure → status table, and recovery after each.
//! - `sandbox`: env/args grants, no filesystem, no network.
//! - `hostile`: hand-written hostile modules (start loops, host-call loops, huge memories and tables).
//! - `load`: big bodies, 256 concurrent requests without cross-talk, memory after faults.
//! - `routing`: handle ordering/exclusivity, handle_path, route, file_server, hosts.
//! - `file_server`: `browse` (HTML, JSON), `hide`, `index`, the directory redirect,
//!   `precompressed` sidecars by `Accept-Encoding`, ETag/Last-Modified/Range, and
//!   `try_files` (an app shell for routes that are not files, `=<status>`).
//! - `access_log`: a site's `log` in Caddy's access-line shape (file, stderr,
//!   console), a file rolled by size with no line lost or cut, `roll_keep`,
//!   gzipped rolls, the global `log { output file … }`, an unwritable file, a
//!   reload that keeps the open file.
//! - `gojinn_functions`: issue 16, functions as Gojinn users wrote them (a Go
//!   guest, tests/guest-go, built with Gojinn's own host signatures): the
//!   `uint32` `host_kv_get`, `host_http_get`, unavailable functions, a denied
//!   `host_kv_set`, untagged response structs, plain output, sniffed Content-Type.
//! - `host`: the `gojinn` host ABI on real stores (embedded KV, SQLite), grants.
//! - `postgres`: two nodes on a throwaway PostgreSQL cluster; outage and recovery.
//! - `shared`: two nodes sharing KV and locks through a real redis-server; outages.
//! - `pebble`: a throwaway ACME CA (Debian's `pebble` and `pebble-challtestsrv` on
//!   free loopback ports) and the HTTPS client the automatic-HTTPS tests check with.
//! - `clients`: malformed and smuggling requests, oversized heads, idle and leaving clients.
//! - `cli`: `validate`, `adapt`, `version`, and "no socket before a valid config".
//! - `compat`: Caddyfiles, layouts and habits from upstream Gojinn (issue 16):
//!   `wasm_file`, `sqlite3`, DSN grants, prefix KV patterns, load warnings, module
//!   paths relative to the working directory, `queue_timeout`, `fuel_limit`,
//!   Gojinn's metric names through promtool, systemd notify, `--envfile`/`--environ`.
//! - `lifecycle`: SIGTERM drain, SIGHUP and `--watch` reloads under load, bad reloads.
//! - `reload_state`: what a reload keeps: locks (by SIGHUP, `--watch`, `POST /load`)
//!   and the connections of unchanged store URLs.
//! - `tls`: TLS with certificates from a throwaway CA (rcgen), HTTP/2 by ALPN, SNI,
//!   opt-in h2c, slowloris/idle/header limits, bad certificates, reload of a certificate.
//! - `signing`: keygen/sign/verify, strict and audit signature policies at load and reload.
//! - `examples`: the shipped examples and the seed Caddyfile, unmodified.
//! - `snapshot`: a route's `snapshot` option: state from the initialisation in every
//!   request, an initialisation that reads random bytes refused at load.
//! - `observability`: the admin listener, exact metric deltas, promtool, the debug header.
//! - `traces`: OpenTelemetry spans received by real OTLP/HTTP and OTLP/gRPC receivers.
//! - `languages`: each language's example built from source with its own toolchain
//!   (Rust, C, Go, Zig, AssemblyScript; WAT), or SKIPPED with the reason.
//! - `site`: the Caddy directives around the functions (issue 17): named
//!   matchers of every kind.
//! - `backend`: upstreams for `proxy` run in the test process (a hyper server;
//!   raw TCP upstreams that hang, reset, answer garbage or close mid-body).
//! - `proxy`: `reverse_proxy` (issue 17): round robin, header rules, passive and
//!   active health checks, misbehaving upstreams, 100 MB each way in bounded memory.
//! - `encode`: `encode gzip zstd` (issue 17) on function, file and proxied
//!   responses, verified by decompressing.
//! - `devloop`: `gojinn new` + `gojinn build` + `gojinn run` per language, missing
//!   toolchains, `run --watch` after a rebuild, completions and `--help`.

mod access_log;
mod acme;
mod backend;
mod cli;
mod clients;
mod compat;
mod contract;
mod devloop;
mod encode;
mod examples;
mod failures;
mod file_server;
mod gojinn_functions;
mod harness;
mod host;
mod hostile;
mod jobs;
mod languages;
mod lifecycle;
mod load;
mod observability;
mod pebble;
mod postgres;
mod proxy;
mod reload_state;
mod routing;
mod sandbox;
mod shared;
mod signing;
mod site;
mod snapshot;
mod tls;
mod traces;
