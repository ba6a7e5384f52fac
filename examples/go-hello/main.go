// go-hello: a Gojinn function in standard Go, a hello/echo JSON API on the contract
// helpers in ./gojinn (`gojinn new --lang go` starts new projects from this file).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -o go-hello.wasm .
package main

import (
	"encoding/json"

	"gojinn.example/go-hello/gojinn"
)

func main() {
	gojinn.Run(handle)
}

func handle(req *gojinn.Request) gojinn.Response {
	body, err := req.BodyBytes()
	if err != nil {
		return gojinn.Text(400, "bad body_base64")
	}
	// A body that is not JSON (or is empty) is echoed as null rather than
	// rejected: this endpoint accepts anything. (An empty body is not looked
	// at: json.Valid's error path builds a string replacer on its first use,
	// which in a Go function is every request.)
	var echo json.RawMessage
	if len(body) > 0 && json.Valid(body) {
		echo = body
	}
	var userAgent *string
	if ua := req.Header("User-Agent"); ua != "" {
		userAgent = &ua
	}
	gojinn.Log("go-hello: handled %s %s", req.Method, req.Path())
	gojinn.HostLog(gojinn.LevelInfo, "go-hello: answered through host_log")
	return gojinn.JSON(200, map[string]any{
		"message":    "hello from go",
		"method":     req.Method,
		"path":       req.Path(),
		"query":      req.Query(),
		"user_agent": userAgent,
		"body_bytes": len(body),
		"echo":       echo,
	})
}
