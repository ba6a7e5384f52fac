package gojinn

import (
	"encoding/json"
	"math"
	"math/rand"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// Objects of the contract as the server writes them, and the edge cases of JSON
// text it could: escapes, surrogate pairs, non-ASCII, unknown fields.
var requests = []string{
	`{"method":"GET","uri":"/","headers":{},"body":"","trace_id":""}`,
	`{"method":"POST","uri":"/a%20b?x=1&y=%zz","headers":{"Accept":["*/*"],"X-Many":["1","2",""]},"body":"{\"k\":[1,2]}","trace_id":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"method":"PUT","uri":"/u","headers":{"User-Agent":["curl/8"]},"body":"","body_base64":"/w==","trace_id":"t"}`,
	` { "method" : "GET" , "uri" : "/\u00e9\ud83d\ude00\/x" , "body" : "tab\tnl\ncr\rq\"bs\\sl\/b\bf\f" } `,
	`{"body":"lone \ud800 high, lone \udc00 low, pair then lone \ud83d\ude00\ud83d, bad pair \ud83d\u0041"}`,
	`{"body":"ünïcødé 日本 🎉","headers":{"Empty":[],"Null":null}}`,
	`{"method":null,"headers":null,"extra":{"a":[1,-2.5e+3,0.1,1E9,true,false,null,{"b":"c"}],"d":""},"uri":"/z"}`,
	`{"method":"A","method":"B","headers":{"H":["1"],"H":["2","3"]}}`,
	`{}`,
	`{"headers":{"Content-Type":["application/json"]},"body":"` + strings.Repeat(`x\"y`, 1000) + `"}`,
	"{\"body\":\"invalid \xff utf-8 \xe2\x82 cut\"}",
}

// Inputs encoding/json refuses; decodeRequest must refuse them too.
var malformed = []string{
	``, `[]`, `"s"`, `{`, `{"method"}`, `{"method":}`, `{"method":"GET",}`, `{"method":"GET"} x`,
	`{"method":5}`, `{"headers":["a"]}`, `{"headers":{"A":"b"}}`, `{"headers":{"A":[1]}}`,
	`{"body":"ctl ` + "\x01" + `"}`, `{"body":"bad \x escape"}`, `{"body":"\u12"}`, `{"body":"open`,
	`{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":1e}`, `{"x":tru}`, `{"x":[1,]}`, `{"x":{"a" 1}}`,
	`{"method":"GET" "uri":"/"}`, `{method:"GET"}`,
}

func TestDecodeRequestMatchesEncodingJSON(t *testing.T) {
	for _, in := range requests {
		var want, got Request
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("encoding/json refuses %q: %v", in, err)
		}
		if err := decodeRequest([]byte(in), &got); err != nil {
			t.Fatalf("decodeRequest refuses %q: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got  %#v\n want %#v", in, got, want)
		}
	}
	for _, in := range malformed {
		var want, got Request
		if json.Unmarshal([]byte(in), &want) == nil {
			t.Fatalf("encoding/json accepts %q", in)
		}
		if err := decodeRequest([]byte(in), &got); err == nil {
			t.Errorf("decodeRequest accepts %q: %#v", in, got)
		}
	}
}

// Random strings through encoding/json's encoder come back the same, and every
// prefix of a request is refused by both decoders.
func TestDecodeRequestRoundTripsRandomStrings(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []rune("aZ09 \"\\/\b\f\n\r\t\x00\x1f\x7f<>&é日🎉\u2028\ufffd")
	text := func() string {
		var b strings.Builder
		for n := rng.Intn(40); n > 0; n-- {
			if rng.Intn(8) == 0 {
				b.WriteByte(byte(0x80 + rng.Intn(0x80))) // invalid UTF-8
				continue
			}
			b.WriteRune(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	for i := 0; i < 2000; i++ {
		req := Request{Method: text(), URI: text(), Body: text(), TraceID: text(),
			Headers: map[string][]string{text(): {text(), text()}}}
		in, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var want, got Request
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeRequest(in, &got); err != nil {
			t.Fatalf("decodeRequest refuses %q: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got  %#v\n want %#v", in, got, want)
		}
		cut := in[:rng.Intn(len(in))]
		if decodeRequest(cut, &got) == nil {
			t.Fatalf("decodeRequest accepts the prefix %q", cut)
		}
	}
}

// Path and Query give what net/url gives for the URIs it accepts.
func TestSplitURIMatchesNetURL(t *testing.T) {
	for _, uri := range []string{
		"/", "/a/b", "/a%20b", "/a%2Fb?x=1", "/q?", "/q?a=%zz&b", "/p#frag", "/%e6%97%a5",
		"/bad%zz", "/bad%2", "no-slash", "/ctl\x01", "/del\x7f", "/sp ace?q r", "//double",
		"/%00", "/a?b?c", "/ü?ü",
	} {
		r := Request{URI: uri}
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			if _, _, ok := splitURI(uri); ok {
				t.Errorf("%q: net/url refuses it (%v), splitURI accepts it", uri, err)
			}
			continue
		}
		if r.Path() != u.Path || r.Query() != u.RawQuery {
			t.Errorf("%q: got (%q, %q), net/url (%q, %q)", uri, r.Path(), r.Query(), u.Path, u.RawQuery)
		}
	}
}

// The response object is the one encoding/json writes, header names sorted.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, r := range []Response{
		{Body: ""},
		{Status: 201, Headers: map[string][]string{"B": {"2"}, "A": {"1", "x\"y"}, "N": nil}, Body: "<p>&</p>\u2028"},
		{Status: 404, Body: "ctl \x00\x1f\x7f bad \xff é日🎉 \\ \" \n\r\t"},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var wantValue, gotValue any
		if err := json.Unmarshal(want, &wantValue); err != nil {
			t.Fatal(err)
		}
		got := r.appendJSON(nil)
		if err := json.Unmarshal(got, &gotValue); err != nil {
			t.Fatalf("%q is not JSON: %v", got, err)
		}
		if !reflect.DeepEqual(gotValue, wantValue) {
			t.Errorf("got %s, encoding/json %s", got, want)
		}
	}
}

// marshal writes what json.Marshal writes, byte for byte, and fails where it fails.
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	text := "quote\" back\\ ctl\b\f\n\r\t\x00\x1f del\x7f html<>& seps\u2028\u2029 é日🎉"
	values := []any{
		nil, true, false, "", text, (*string)(nil), &text,
		0, -1, int8(-128), int16(300), int32(-7), int64(math.MinInt64), uint(7), uint8(255),
		uint16(65535), uint32(1 << 31), uint64(math.MaxUint64),
		0.0, 1.0, -2.5, 1e21, 1e20, 1e-6, 1e-7, 123456789.0, 3.14159, math.MaxFloat64,
		math.SmallestNonzeroFloat64, float32(0.1), float32(1e21), float32(1e-7), float32(3.4e38),
		json.RawMessage(nil), json.RawMessage(` { "a" : "<&>" , "b" : [ 1 , 2.50 ] } `),
		json.RawMessage(`"\u2028"`), json.RawMessage(`{"k":"é"}`), json.RawMessage(``), json.RawMessage(`{bad`),
		[]any(nil), []any{}, []any{1, "a", nil, []any{true}}, []string(nil), []string{"<", text},
		map[string]any(nil), map[string]any{}, map[string]string(nil), map[string]string{"b": "1", "a": "&"},
		map[string]any{"z": 1, "a": map[string]any{"y": []any{}, "x": nil}, "<k>": text, "": 0},
		"invalid \xff utf-8", map[string]any{"k": "\xfe"}, map[string]any{"\xff": 1},
		math.NaN(), math.Inf(1), []any{math.Inf(-1)}, struct{ A int }{1}, map[string]int{"a": 1},
		[]byte("bytes"), json.Number("12"), map[string]any{"n": json.Number("1e3")},
	}
	cycle := map[string]any{}
	cycle["self"] = cycle
	values = append(values, cycle)
	for _, v := range values {
		checkMarshal(t, v)
	}
}

func checkMarshal(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, gotErr := marshal(v)
	if (wantErr == nil) != (gotErr == nil) || string(got) != string(want) {
		t.Errorf("%#v:\n got  %s (%v)\n want %s (%v)", v, got, gotErr, want, wantErr)
	}
}

// Random nested values of the types written here match json.Marshal too.
func TestMarshalRandomValuesMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	alphabet := []rune("aZ09 \"\\/\b\f\n\r\t\x00\x1f\x7f<>&é日🎉\u2028\u2029\ufffd")
	text := func() string {
		var b strings.Builder
		for n := rng.Intn(12); n > 0; n-- {
			b.WriteRune(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	var value func(depth int) any
	value = func(depth int) any {
		switch k := rng.Intn(10); {
		case k == 0 && depth < 4:
			m := map[string]any{}
			for n := rng.Intn(5); n > 0; n-- {
				m[text()] = value(depth + 1)
			}
			return m
		case k == 1 && depth < 4:
			var s []any
			for n := rng.Intn(5); n > 0; n-- {
				s = append(s, value(depth+1))
			}
			return s
		case k == 2:
			return math.Float64frombits(rng.Uint64())
		case k == 3:
			return float32(math.Float32frombits(rng.Uint32()))
		case k == 4:
			return rng.Int63() - rng.Int63()
		case k == 5:
			return rng.NormFloat64() * math.Pow(10, float64(rng.Intn(50)-25))
		case k == 6:
			return rng.Intn(2) == 0
		case k == 7:
			return nil
		}
		return text()
	}
	for i := 0; i < 3000; i++ {
		checkMarshal(t, value(0))
	}
}
