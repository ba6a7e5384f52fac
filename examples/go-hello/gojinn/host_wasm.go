//go:build wasm

package gojinn

import "unsafe"

// The host ABI's functions (docs/abi.md), imported from the server.

//go:wasmimport gojinn host_log
func hostLog(level int32, ptr unsafe.Pointer, n int32)
