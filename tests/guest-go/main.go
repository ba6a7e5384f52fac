//go:build wasip1

// The Go test guest of the end-to-end tests (tests/e2e/gojinn_functions.rs):
// functions written the way Gojinn users wrote them, one per mode (the route's
// `args`). Each mode is one behaviour Gojinn had that this server must keep.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"

	"gojinn.test/guest-go/sdk"
)

// The request fields the modes read (the contract has more).
type request struct {
	URI  string `json:"uri"`
	Body string `json:"body"`
}

// A response struct without json tags: encoding/json writes "Status",
// "Headers", "Body", and Gojinn matched them case-insensitively.
type Reply struct {
	Status  int
	Headers map[string][]string
	Body    string
}

func main() {
	raw, _ := io.ReadAll(os.Stdin)
	var req request
	_ = json.Unmarshal(raw, &req)
	query := url.Values{}
	if u, err := url.ParseRequestURI(req.URI); err == nil {
		query = u.Query()
	}
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "", "greet":
		// Gojinn's quickstart function: a name in the JSON body, a greeting
		// back as JSON, with the route's `env`.
		var in struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal([]byte(req.Body), &in)
		if in.Name == "" {
			in.Name = "stranger"
		}
		reply(Reply{
			Status:  200,
			Headers: map[string][]string{"Content-Type": {"application/json"}},
			Body:    mustJSON(map[string]string{"message": "Hello, " + in.Name + "!", "env": os.Getenv("ENV")}),
		})
	case "kv":
		// Gojinn's SDK: host_kv_get with a uint32 result.
		sdk.Set("greeting", "hello world")
		cut, cutN := sdk.Get("greeting", 5)
		whole, wholeN := sdk.Get("greeting", 4096)
		_, missN := sdk.Get("missing", 16)
		reply(Reply{Status: 200, Body: mustJSON(map[string]any{
			"cut": cut, "cut_n": cutN, "whole": whole, "whole_n": wholeN, "miss_n": missN,
		})})
	case "kv-set":
		// Gojinn's fn-kv: set, then report success; the host decides.
		sdk.Set(query.Get("key"), "v")
		fmt.Println("SET OK")
	case "untagged":
		reply(Reply{
			Status:  201,
			Headers: map[string][]string{"X-Go": {"untagged"}, "Content-Type": {"text/plain; charset=utf-8"}},
			Body:    "made by an untagged struct",
		})
	case "untagged-html":
		// No Content-Type: Go's net/http sniffed one.
		reply(Reply{Status: 200, Body: "<!DOCTYPE html><html><body><h1>hi</h1></body></html>"})
	case "plain":
		fmt.Println("hello from plain Go output")
	case "message":
		_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"message": "hi"})
	case "array":
		fmt.Print("[]")
	case "broken":
		fmt.Print(`{"status": 200, "body": `)
	case "empty":
	case "http-get":
		max, _ := strconv.Atoi(query.Get("max"))
		body, n := sdk.HTTPGet(req.Body, max)
		fmt.Printf("n=%d body=%s", n, body)
	case "ask-ai":
		fmt.Print(sdk.AskAI("why wasm?"))
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
		os.Exit(2)
	}
}

func reply(r Reply) {
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
