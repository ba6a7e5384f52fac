package gojinn

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeRequest fills req from one JSON object of the contract. It does what
// json.Unmarshal into a Request does for every object the server sends, without
// encoding/json building its decoder by reflection, which in a Go function is
// repeated on every request: a field that is null or absent is left empty,
// unknown fields are skipped, a field of the wrong type or input that is not one
// JSON object is an error, invalid UTF-8 and lone surrogates become U+FFFD.
// Field names match exactly (the server writes them in lower case).
func decodeRequest(data []byte, req *Request) error {
	d := decoder{data: data}
	d.space()
	if err := d.object(func(key []byte) error {
		switch string(key) {
		case "method":
			return d.stringField(&req.Method)
		case "uri":
			return d.stringField(&req.URI)
		case "body":
			return d.stringField(&req.Body)
		case "body_base64":
			return d.stringField(&req.BodyBase64)
		case "trace_id":
			return d.stringField(&req.TraceID)
		case "headers":
			return d.headers(&req.Headers)
		}
		return d.skip(0)
	}); err != nil {
		return err
	}
	d.space()
	if d.pos != len(d.data) {
		return d.fail("after the request object")
	}
	return nil
}

// maxDepth bounds the nesting of skipped values, as encoding/json does (10000).
const maxDepth = 10000

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) fail(what string) error {
	return errors.New("gojinn: invalid request JSON at byte " + strconv.Itoa(d.pos) + ": " + what)
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (d *decoder) peek() byte {
	d.space()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// literal consumes word (null, true, false) at the current position.
func (d *decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.fail("expected " + word)
	}
	d.pos += len(word)
	return nil
}

// object reads `{ "key": value, ... }`, calling field with each key; field must
// consume the value.
func (d *decoder) object(field func(key []byte) error) error {
	if d.peek() != '{' {
		return d.fail("expected an object")
	}
	d.pos++
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	var key []byte
	for {
		if d.peek() != '"' {
			return d.fail("expected a field name")
		}
		var err error
		if key, err = d.str(key[:0]); err != nil {
			return err
		}
		if d.peek() != ':' {
			return d.fail("expected ':'")
		}
		d.pos++
		d.space()
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.fail("expected ',' or '}'")
		}
	}
}

// stringField reads a string or null into *s (null leaves it as it is).
func (d *decoder) stringField(s *string) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '"':
		b, err := d.str(nil)
		if err != nil {
			return err
		}
		*s = string(b)
		return nil
	}
	return d.fail("expected a string")
}

// headers reads an object of string arrays (or null) into *h.
func (d *decoder) headers(h *map[string][]string) error {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	if *h == nil {
		*h = make(map[string][]string)
	}
	return d.object(func(key []byte) error {
		name := string(key)
		if d.peek() == 'n' {
			(*h)[name] = nil
			return d.literal("null")
		}
		if d.peek() != '[' {
			return d.fail("expected an array of strings")
		}
		d.pos++
		var values []string
		if d.peek() == ']' {
			d.pos++
			(*h)[name] = []string{}
			return nil
		}
		for {
			var v string
			if err := d.stringField(&v); err != nil {
				return err
			}
			values = append(values, v)
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				(*h)[name] = values
				return nil
			default:
				return d.fail("expected ',' or ']'")
			}
		}
	})
}

// str reads a JSON string at the current position (its opening quote) and
// appends its text to buf.
func (d *decoder) str(buf []byte) ([]byte, error) {
	d.pos++ // the opening quote
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			buf = append(buf, d.data[start:d.pos]...)
			d.pos++
			return buf, nil
		case c == '\\':
			buf = append(buf, d.data[start:d.pos]...)
			var err error
			if buf, err = d.escape(buf); err != nil {
				return nil, err
			}
			start = d.pos
		case c < 0x20:
			return nil, d.fail("control character in a string")
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, d.data[start:d.pos]...)
				buf = utf8.AppendRune(buf, utf8.RuneError)
				d.pos++
				start = d.pos
				continue
			}
			d.pos += size
		}
	}
	return nil, d.fail("unterminated string")
}

// escape decodes the escape sequence at the current position (its backslash).
func (d *decoder) escape(buf []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return nil, d.fail("unterminated escape")
	}
	c := d.data[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		r, ok := d.hex4()
		if !ok {
			return nil, d.fail("bad \\u escape")
		}
		if utf16.IsSurrogate(r) {
			// A pair is two escapes; anything else leaves a lone surrogate.
			if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
				save := d.pos
				d.pos += 2
				if r2, ok := d.hex4(); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						return utf8.AppendRune(buf, pair), nil
					}
				}
				d.pos = save
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(buf, r), nil
	}
	d.pos--
	return nil, d.fail("bad escape")
}

// hex4 reads four hex digits.
func (d *decoder) hex4() (rune, bool) {
	if len(d.data)-d.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		v, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	d.pos += 4
	return r, true
}

// skip consumes any JSON value, checking its syntax.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.fail("nested too deeply")
	}
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		d.pos++
		if d.peek() == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return nil
			default:
				return d.fail("expected ',' or ']'")
			}
		}
	case c == '"':
		_, err := d.str(nil)
		return err
	case c == 'n':
		return d.literal("null")
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == '-' || ('0' <= c && c <= '9'):
		return d.number()
	}
	return d.fail("expected a value")
}

// number consumes a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	if d.data[d.pos] == '-' {
		d.pos++
	}
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case digits() == 0:
		return d.fail("bad number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.fail("bad number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.fail("bad number")
		}
	}
	return nil
}
