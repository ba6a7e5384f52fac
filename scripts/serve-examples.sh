#!/usr/bin/env bash
# Installs the example toolchains that are missing (scripts/toolchains.sh: apt, pip
# into a venv, npm into the example folder), builds the gojinn binary (release) and
# with it the example functions (`gojinn build`), then serves examples/Caddyfile on
# :8080 in the foreground. Ctrl-C stops it.
#
# Usage: scripts/serve-examples.sh [path/to/Caddyfile]   (default: examples/Caddyfile)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${1:-$root/examples/Caddyfile}"

# examples/Caddyfile serves every language, so every toolchain is needed.
"$root/scripts/toolchains.sh"
echo "serve-examples: building gojinn (release; the first build takes several minutes)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
# The release binary builds the examples too, so no second (debug) gojinn is built.
GOJINN="$root/target/release/gojinn" "$root/scripts/build-examples.sh"

cat >&2 <<MSG

  Gojinn is starting with $config
  Send requests to:
    curl http://localhost:8080/rust/hello?name=you
    curl -d '{"x":1}' http://localhost:8080/c/echo
    curl -d '{"x":1}' http://localhost:8080/go/hello     (also /zig/hello, /as/hello)
    curl http://localhost:8080/wat/hello
  Logs (JSON) follow. Ctrl-C stops the server.

MSG
exec "$root/target/release/gojinn" run --config "$config"
