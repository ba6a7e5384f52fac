// Package gojinn holds the types of Gojinn's JSON contract for functions written in
// standard Go (GOOS=wasip1 GOARCH=wasm), and Run, which reads one request from
// stdin, calls a handler and writes its response to stdout.
//
// It uses only the standard library, so a function builds with GOPROXY=off. A Go
// function runs its program's start-up on every request, so this package keeps
// out what would add to it: it splits the URI itself rather than import net/url
// (whose packages initialise on start), and reads its request, writes its
// response object and encodes JSON's common types itself rather than have
// encoding/json build a decoder and encoders for them by reflection on every
// request.
package gojinn

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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

// Path returns the URI without its query, %-escapes decoded (as net/url's
// URL.Path); a URI net/url would refuse is returned as it is.
func (r *Request) Path() string {
	if path, _, ok := splitURI(r.URI); ok {
		return path
	}
	return r.URI
}

// Query returns the raw query string (without "?"), or "".
func (r *Request) Query() string {
	if _, query, ok := splitURI(r.URI); ok {
		return query
	}
	return ""
}

// splitURI splits a request URI at its first "?" and decodes the path; not ok
// where net/url's ParseRequestURI fails: a URI that does not start with "/", or
// holds a control character or a malformed %-escape in its path.
func splitURI(uri string) (path, query string, ok bool) {
	if !strings.HasPrefix(uri, "/") {
		return "", "", false
	}
	for i := 0; i < len(uri); i++ {
		if uri[i] < 0x20 || uri[i] == 0x7f {
			return "", "", false
		}
	}
	raw, query, _ := strings.Cut(uri, "?")
	if !strings.Contains(raw, "%") {
		return raw, query, true
	}
	decoded := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			decoded = append(decoded, raw[i])
			continue
		}
		if i+2 >= len(raw) {
			return "", "", false
		}
		hi, ok1 := unhex(raw[i+1])
		lo, ok2 := unhex(raw[i+2])
		if !ok1 || !ok2 {
			return "", "", false
		}
		decoded = append(decoded, hi<<4|lo)
		i += 2
	}
	return string(decoded), query, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Response is what the function answers. A zero Status means 200.
type Response struct {
	Status  int                 `json:"status,omitempty"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    string              `json:"body"`
}

// JSON builds a response whose body is v encoded as JSON (what json.Marshal
// writes), with its Content-Type.
func JSON(status int, v any) Response {
	body, err := marshal(v)
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
	if err := decodeRequest(raw, &req); err != nil {
		Log("gojinn: request is not the JSON contract: %v", err)
		os.Exit(1)
	}
	resp := handle(&req)
	out := resp.appendJSON(make([]byte, 0, len(resp.Body)+256))
	if _, err := os.Stdout.Write(out); err != nil {
		Log("gojinn: writing stdout: %v", err)
		os.Exit(1)
	}
}

// appendJSON appends the response as the contract's JSON object and a newline:
// the object encoding/json would write, with the header names sorted.
func (r *Response) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if r.Status != 0 {
		b = append(b, `"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, ',')
	}
	if len(r.Headers) > 0 {
		b = append(b, `"headers":`...)
		b, _ = appendObject(b, r.Headers, false, func(b []byte, values []string) ([]byte, bool) {
			return appendArray(b, values, appendPlain)
		})
		b = append(b, ',')
	}
	b = append(b, `"body":`...)
	b, _ = appendString(b, r.Body, false)
	return append(b, "}\n"...)
}
