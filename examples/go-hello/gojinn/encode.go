package gojinn

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// marshal returns what json.Marshal(v) returns. Values built from the types a
// handler usually answers with (maps and slices of any, strings, numbers, bools,
// nil, json.RawMessage) are written here, byte for byte as encoding/json writes
// them; anything else goes to json.Marshal. encoding/json builds an encoder for
// each type by reflection on its first use, and in a Go function every request is
// a first use: for go-hello's map that was about a seventh of the call.
func marshal(v any) ([]byte, error) {
	if b, ok := appendValue(make([]byte, 0, 256), v, 0); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// maxEncodeDepth bounds the nesting written here; deeper values (or a map that
// holds itself) are left to json.Marshal, which reports the cycle.
const maxEncodeDepth = 1000

// appendValue appends v as JSON; false if v holds a type, or a value, it leaves
// to json.Marshal (a string with invalid UTF-8, which Go versions write
// differently; a NaN or infinite float, which is an error there).
func appendValue(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxEncodeDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, x, true)
	case *string:
		if x == nil {
			return append(b, "null"...), true
		}
		return appendString(b, *x, true)
	case bool:
		return strconv.AppendBool(b, x), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case float64:
		return appendFloat(b, x, 64)
	case float32:
		return appendFloat(b, float64(x), 32)
	case json.RawMessage:
		return appendRaw(b, x)
	case []any:
		return appendArray(b, x, func(b []byte, e any) ([]byte, bool) { return appendValue(b, e, depth+1) })
	case []string:
		return appendArray(b, x, appendHTMLSafe)
	case map[string]any:
		return appendObject(b, x, true, func(b []byte, e any) ([]byte, bool) { return appendValue(b, e, depth+1) })
	case map[string]string:
		return appendObject(b, x, true, appendHTMLSafe)
	}
	return b, false
}

// appendArray appends xs as a JSON array (nil: null), each element by elem.
func appendArray[E any](b []byte, xs []E, elem func([]byte, E) ([]byte, bool)) ([]byte, bool) {
	if xs == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, e := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = elem(b, e); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// appendObject appends m as a JSON object (nil: null) with its keys sorted, as
// json.Marshal orders them, quoted by appendString with html, each value by
// value.
func appendObject[V any](b []byte, m map[string]V, html bool, value func([]byte, V) ([]byte, bool)) ([]byte, bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendString(b, k, html); !ok {
			return b, false
		}
		b = append(b, ':')
		if b, ok = value(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendHTMLSafe(b []byte, s string) ([]byte, bool) { return appendString(b, s, true) }

func appendPlain(b []byte, s string) ([]byte, bool) { return appendString(b, s, false) }

// appendString appends s as a JSON string. With html, as json.Marshal writes it:
// <, > and & escaped (so the JSON can sit inside HTML), as are U+2028 and U+2029,
// and false for invalid UTF-8 (Go versions write it differently); without, the
// contract's envelope: invalid UTF-8 becomes U+FFFD and nothing else is escaped
// beyond what JSON requires.
func appendString(b []byte, s string, html bool) ([]byte, bool) {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // s[start:i] is appended in one copy
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			if html {
				return b, false
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			start = i + size
		case html && (r == '\u2028' || r == '\u2029'):
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

// appendFloat writes f as encoding/json does: the shortest representation that
// reads back as the same float of that size, in exponent form only below 1e-6
// and from 1e21 up, with a one-digit negative exponent not padded (1e-7).
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b, true
}

// appendRaw appends a json.RawMessage as json.Marshal does: compacted, with the
// HTML-sensitive characters in its strings escaped; nil is null. Anything but
// ASCII, and anything json.Compact refuses, is left to json.Marshal.
func appendRaw(b []byte, raw json.RawMessage) ([]byte, bool) {
	if raw == nil {
		return append(b, "null"...), true
	}
	for _, c := range raw {
		if c >= utf8.RuneSelf {
			return b, false
		}
	}
	var compact, escaped bytes.Buffer
	if json.Compact(&compact, raw) != nil {
		return b, false
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return append(b, escaped.Bytes()...), true
}
