// Package gojinn holds the types of Gojinn's JSON contract for functions written in
// standard Go (GOOS=wasip1 GOARCH=wasm), and Run, which reads one request from
// stdin, calls a handler and writes its response to stdout.
//
// It uses only the standard library, so a function builds with GOPROXY=off.
package gojinn

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"unsafe"
)

// MaxRequestBytes bounds what Run reads from stdin. The server's own body cap
// (max_body_size) is the real limit; this only keeps a function from buffering
// without end if it is ever run by hand with a large input.
const MaxRequestBytes = 64 << 20

// Request is one HTTP request as the server hands it to the function.
type Request struct {
	Method string `json:"method"`
	// URI is the path and query as received (after handle_path stripped its prefix).
	URI string `json:"uri"`
	// Headers are keyed by canonical name (Content-Type); every value of a
	// repeated header, in arrival order. Host is not among them.
	Headers map[string][]string `json:"headers"`
	// Body is the body as text; invalid UTF-8 is replaced, see BodyBase64.
	Body string `json:"body"`
	// BodyBase64 carries the exact bytes when the body is not valid UTF-8.
	BodyBase64 string `json:"body_base64,omitempty"`
	TraceID    string `json:"trace_id"`
}

// Header returns the first value of a header; name must be in canonical form
// (User-Agent, Content-Type), as the server sends them.
func (r *Request) Header(name string) string {
	if v := r.Headers[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// BodyBytes returns the exact body bytes.
func (r *Request) BodyBytes() ([]byte, error) {
	if r.BodyBase64 != "" {
		return base64.StdEncoding.DecodeString(r.BodyBase64)
	}
	return []byte(r.Body), nil
}

// Path returns the URI without its query.
func (r *Request) Path() string {
	if u, err := url.ParseRequestURI(r.URI); err == nil {
		return u.Path
	}
	return r.URI
}

// Query returns the raw query string (without "?"), or "".
func (r *Request) Query() string {
	if u, err := url.ParseRequestURI(r.URI); err == nil {
		return u.RawQuery
	}
	return ""
}

// Response is what the function answers. A zero Status means 200.
type Response struct {
	Status  int                 `json:"status,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    string              `json:"body"`
}

// JSON builds a response whose body is v encoded as JSON, with its Content-Type.
func JSON(status int, v any) Response {
	body, err := json.Marshal(v)
	if err != nil {
		return Text(500, "cannot encode response: "+err.Error())
	}
	return Response{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    string(body),
	}
}

// Text builds a plain-text response.
func Text(status int, body string) Response {
	return Response{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}},
		Body:    body,
	}
}

// Log writes one line to stderr, which the server forwards to its log with the
// request's trace id.
func Log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Levels for HostLog.
const (
	LevelDebug int32 = 0
	LevelInfo  int32 = 1
	LevelWarn  int32 = 2
	LevelError int32 = 3
)

//go:wasmimport gojinn host_log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

// HostLog sends one message to the server log at a level, through the host ABI's
// host_log (always granted; see docs/abi.md). Unlike stderr lines, it carries its
// level. Messages over 4 KiB are cut by the server.
func HostLog(level int32, msg string) {
	if msg == "" {
		return
	}
	hostLog(level, unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

// Run reads the request from stdin, calls handle and writes its response to stdout.
// A request that cannot be read exits with status 1 and no output, which the server
// answers with 502.
func Run(handle func(*Request) Response) {
	raw, err := io.ReadAll(io.LimitReader(os.Stdin, MaxRequestBytes))
	if err != nil {
		Log("gojinn: reading stdin: %v", err)
		os.Exit(1)
	}
	var req Request
	if err := json.Unmarshal(raw, &req); err != nil {
		Log("gojinn: request is not the JSON contract: %v", err)
		os.Exit(1)
	}
	resp := handle(&req)
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		Log("gojinn: writing stdout: %v", err)
		os.Exit(1)
	}
}
