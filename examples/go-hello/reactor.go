//go:build gojinn_reactor

// The same function as a WASI reactor, for a route's `snapshot` option: built with
//
//	GOOS=wasip1 GOARCH=wasm go build -tags gojinn_reactor -buildmode=c-shared -o go-hello-reactor.wasm .
//
// (Go 1.24 or later), the Go runtime initialises in `_initialize` and each request
// calls gojinn_handle. Gojinn refuses to snapshot it today: the Go runtime seeds
// its random state (map hashes, math/rand) from random_get while it initialises,
// so every request would share those seeds (see docs/performance.md).

package main

import "gojinn.example/go-hello/gojinn"

//go:wasmexport gojinn_handle
func gojinnHandle() {
	gojinn.Run(handle)
}
