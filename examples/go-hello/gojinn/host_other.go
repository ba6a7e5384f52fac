//go:build !wasm

package gojinn

import (
	"fmt"
	"os"
	"unsafe"
)

// Outside the server (a handler's unit tests, built for the machine running
// them with `go test`), host_log writes its message to stderr after its level.
func hostLog(level int32, ptr unsafe.Pointer, n int32) {
	name := [...]string{"debug", "info", "warn", "error"}
	label := "info"
	if 0 <= level && int(level) < len(name) {
		label = name[level]
	}
	fmt.Fprintf(os.Stderr, "host_log %s: %s\n", label, unsafe.String((*byte)(ptr), n))
}
