//go:build wasip1

// Package sdk declares the host functions the way Gojinn's Go SDK and
// functions do, so the end-to-end tests run modules built against Gojinn's own
// signatures: host_kv_get with a uint32 result (0xFFFFFFFF on a miss),
// host_kv_set with none, host_http_get and host_ask_ai with a uint64 result.
// Written for the tests from Gojinn's documented signatures; it uses only the
// standard library, so it builds with GOPROXY=off.
package sdk

import "unsafe"

//go:wasmimport gojinn host_kv_set
func hostKVSet(kPtr, kLen, vPtr, vLen uint32)

//go:wasmimport gojinn host_kv_get
func hostKVGet(kPtr, kLen, outPtr, outMax uint32) uint32

//go:wasmimport gojinn host_http_get
func hostHTTPGet(urlPtr, urlLen, outPtr, outMax uint32) uint64

//go:wasmimport gojinn host_ask_ai
func hostAskAI(promptPtr, promptLen, outPtr, outMax uint32) uint64

// Miss is what host_kv_get returns for a missing or unreadable key.
const Miss = 0xFFFFFFFF

func ptr(s string) uint32 {
	if s == "" {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func buf(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// Set stores value under key. Gojinn's host_kv_set returns nothing.
func Set(key, value string) {
	hostKVSet(ptr(key), uint32(len(key)), ptr(value), uint32(len(value)))
}

// Get reads key into a buffer of max bytes (max >= 1): the bytes the host
// wrote, and the host's raw result (Miss on a miss or a denial).
func Get(key string, max int) (string, uint32) {
	out := make([]byte, max)
	n := hostKVGet(ptr(key), uint32(len(key)), buf(out), uint32(max))
	if n == Miss {
		return "", n
	}
	return string(out[:n]), n
}

// HTTPGet fetches url into a buffer of max bytes (max >= 1), as Gojinn's
// SDK does: 0 means nothing (or a failure).
func HTTPGet(url string, max int) (string, uint64) {
	out := make([]byte, max)
	n := hostHTTPGet(ptr(url), uint32(len(url)), buf(out), uint32(max))
	return string(out[:n]), n
}

// AskAI sends a prompt; the answer (or Gojinn's error object) is returned.
func AskAI(prompt string) string {
	out := make([]byte, 4096)
	n := hostAskAI(ptr(prompt), uint32(len(prompt)), buf(out), uint32(len(out)))
	return string(out[:n])
}
