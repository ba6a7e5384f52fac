/*
 * c-hello: a Gojinn function in C, a hello/echo JSON API with no library beyond
 * wasi-libc. (`gojinn new --lang c` starts new projects from this file.)
 *
 * stdin carries one request object ({"method", "uri", "headers", "body", ...}); stdout
 * gets one response object whose "body" is itself a JSON document, so that document
 * is built first and then written as an escaped JSON string.
 *
 * The request is parsed by a small strict scanner rather than a JSON library: it
 * walks the top-level object, decodes the few strings it needs (in place, since a
 * decoded string is never longer than its escaped form) and skips everything else.
 * The same scanner decides whether the request body is JSON, in which case it is
 * echoed verbatim.
 *
 * Memory: the module is linked with a 64 KiB stack (see the Makefile), so nothing
 * large lives on the stack. The input and output buffers are on the heap and grow
 * with the request; a small request keeps linear memory small, and the server's
 * per-request cost follows that size. Recursion into nested JSON is capped at
 * MAX_DEPTH so a hostile body cannot run the small stack out.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest JSON nesting accepted in the body; a frame of skip_value is well under
 * 100 bytes, so this stays far inside the 64 KiB stack. */
#define MAX_DEPTH 128

/* A growable byte buffer. */
struct buf {
    char *data;
    size_t len, cap;
};

/* A decoded string inside the input buffer; data == NULL means "absent". */
struct str {
    const char *data;
    size_t len;
};

/* Scanner state over the input; strings are decoded in place, so it is mutable. */
struct scanner {
    char *p;
    char *end;
};

static void die(const char *what) {
    fprintf(stderr, "c-hello: %s\n", what);
    exit(1); /* no response on stdout: the server answers 502 */
}

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) {
        if (cap > (size_t)-1 / 2)
            die("buffer too large");
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data)
        die("out of memory");
    b->data = data;
    b->cap = cap;
}

static void buf_put(struct buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void buf_puts(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* Appends `s` as a JSON string literal, quotes included. Bytes >= 0x80 are copied as
 * they are: every string here is valid UTF-8 (decoded from JSON, or built by us). */
static void buf_put_json_string(struct buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': buf_put(b, "\\\"", 2); break;
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                buf_put(b, esc, 6);
            } else {
                buf_put(b, (const char *)&c, 1);
            }
        }
    }
    buf_put(b, "\"", 1);
}

static void buf_put_str_or_null(struct buf *b, struct str s) {
    if (s.data)
        buf_put_json_string(b, s.data, s.len);
    else
        buf_puts(b, "null");
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(struct scanner *s) {
    while (s->p < s->end && is_space(*s->p))
        s->p++;
}

/* Consumes `c` (after whitespace) if it is next; returns whether it was. */
static int eat(struct scanner *s, char c) {
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u"; -1 when they are not there. */
static long read_hex4(struct scanner *s) {
    if (s->end - s->p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(s->p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    s->p += 4;
    return v;
}

static char *put_utf8(char *w, unsigned long cp) {
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/*
 * Scans a JSON string (after whitespace). With `out` set, decodes it in place and
 * stores where the text landed; with `out` NULL, only validates and writes nothing.
 * Returns 0 on bad JSON. In-place decoding is safe because the writer never
 * overtakes the reader: every escape is at least as long as the UTF-8 it stands for
 * ("\u00e9" is 6 bytes for 2; a surrogate pair 12 for 4).
 */
static int scan_string(struct scanner *s, struct str *out) {
    if (!eat(s, '"'))
        return 0;
    char *start = s->p;
    char *w = start;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        unsigned long cp = c;
        if (c == '"') {
            if (out) {
                out->data = start;
                out->len = (size_t)(w - start);
            }
            return 1;
        }
        if (c < 0x20)
            return 0; /* raw control characters must be escaped in JSON */
        if (c == '\\') {
            if (s->p >= s->end)
                return 0;
            switch (*s->p++) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                long hi = read_hex4(s);
                if (hi < 0)
                    return 0;
                cp = (unsigned long)hi;
                /* A high surrogate followed by an escaped low one is one code point. */
                if (hi >= 0xd800 && hi < 0xdc00 && s->end - s->p >= 6 && s->p[0] == '\\' &&
                    s->p[1] == 'u') {
                    struct scanner look = {s->p + 2, s->end};
                    long lo = read_hex4(&look);
                    if (lo >= 0xdc00 && lo < 0xe000) {
                        cp = 0x10000 + ((unsigned long)(hi - 0xd800) << 10) +
                             (unsigned long)(lo - 0xdc00);
                        s->p = look.p;
                    }
                }
                if (cp >= 0xd800 && cp < 0xe000)
                    cp = 0xfffd; /* a lone surrogate has no UTF-8 form */
                if (out)
                    w = put_utf8(w, cp);
                continue;
            }
            default:
                return 0;
            }
        }
        /* Raw bytes (UTF-8 included) and one-byte escapes land here. */
        if (out)
            *w++ = (char)cp;
    }
    return 0; /* unterminated */
}

static int scan_digits(struct scanner *s) {
    const char *from = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from;
}

static int scan_number(struct scanner *s) {
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!scan_digits(s))
        return 0;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s))
            return 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!scan_digits(s))
            return 0;
    }
    return 1;
}

static int scan_literal(struct scanner *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

/* Validates and skips one JSON value of any kind. */
static int skip_value(struct scanner *s, int depth) {
    if (depth > MAX_DEPTH)
        return 0;
    skip_ws(s);
    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '"':
        return scan_string(s, NULL);
    case '{':
        s->p++;
        if (eat(s, '}'))
            return 1;
        do {
            if (!scan_string(s, NULL) || !eat(s, ':') || !skip_value(s, depth + 1))
                return 0;
        } while (eat(s, ','));
        return eat(s, '}');
    case '[':
        s->p++;
        if (eat(s, ']'))
            return 1;
        do {
            if (!skip_value(s, depth + 1))
                return 0;
        } while (eat(s, ','));
        return eat(s, ']');
    case 't': return scan_literal(s, "true");
    case 'f': return scan_literal(s, "false");
    case 'n': return scan_literal(s, "null");
    default: return scan_number(s);
    }
}

static int str_is(struct str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.data, lit, s.len) == 0;
}

static int str_is_nocase(struct str s, const char *lit) {
    if (s.len != strlen(lit))
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        char a = s.data[i], b = lit[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

/* What this function needs from the request. */
struct request {
    struct str method, uri, body, body_base64, user_agent;
};

/* Reads a header value array, keeping its first string in `first`. */
static int scan_header_values(struct scanner *s, struct str *first) {
    if (!eat(s, '['))
        return 0;
    if (eat(s, ']'))
        return 1;
    if (!scan_string(s, first))
        return 0;
    while (eat(s, ','))
        if (!skip_value(s, 0))
            return 0;
    return eat(s, ']');
}

static int scan_headers(struct scanner *s, struct request *req) {
    if (!eat(s, '{'))
        return 0;
    if (eat(s, '}'))
        return 1;
    do {
        struct str name;
        if (!scan_string(s, &name) || !eat(s, ':'))
            return 0;
        struct str first = {0};
        if (str_is_nocase(name, "User-Agent")) {
            if (!scan_header_values(s, &first))
                return 0;
            if (!req->user_agent.data)
                req->user_agent = first;
        } else if (!skip_value(s, 0)) {
            return 0;
        }
    } while (eat(s, ','));
    return eat(s, '}');
}

/* Parses the request object; unknown fields are skipped, as the contract asks. */
static int scan_request(struct scanner *s, struct request *req) {
    if (!eat(s, '{'))
        return 0;
    if (eat(s, '}'))
        return 1;
    do {
        struct str key;
        if (!scan_string(s, &key) || !eat(s, ':'))
            return 0;
        int ok;
        if (str_is(key, "method"))
            ok = scan_string(s, &req->method);
        else if (str_is(key, "uri"))
            ok = scan_string(s, &req->uri);
        else if (str_is(key, "body"))
            ok = scan_string(s, &req->body);
        else if (str_is(key, "body_base64"))
            ok = scan_string(s, &req->body_base64);
        else if (str_is(key, "headers"))
            ok = scan_headers(s, req);
        else
            ok = skip_value(s, 0);
        if (!ok)
            return 0;
    } while (eat(s, ','));
    if (!eat(s, '}'))
        return 0;
    skip_ws(s);
    return s->p == s->end;
}

/* Whether the bytes are exactly one JSON value (surrounding whitespace allowed). */
static int is_json(const char *data, size_t len) {
    /* skip_value never writes (scan_string only validates there), so casting
     * away const is sound. */
    struct scanner s = {(char *)data, (char *)data + len};
    if (!skip_value(&s, 0))
        return 0;
    skip_ws(&s);
    return s.p == s.end;
}

/* Size of the bytes a standard-base64 text decodes to. */
static size_t base64_decoded_len(struct str b64) {
    size_t pad = 0;
    while (pad < 2 && pad < b64.len && b64.data[b64.len - 1 - pad] == '=')
        pad++;
    return b64.len / 4 * 3 - pad;
}

/* Writes the response object: `inner` becomes its JSON-string "body". */
static void respond(int status, const struct buf *inner) {
    struct buf out = {0};
    char head[96];
    snprintf(head, sizeof head,
             "{\"status\":%d,\"headers\":{\"Content-Type\":[\"application/json\"]},\"body\":",
             status);
    buf_puts(&out, head);
    buf_put_json_string(&out, inner->data, inner->len);
    buf_puts(&out, "}\n");
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
        die("writing the response failed");
    free(out.data);
}

int main(void) {
    struct buf in = {0};
    for (;;) {
        buf_reserve(&in, 4096);
        size_t n = fread(in.data + in.len, 1, in.cap - in.len, stdin);
        in.len += n;
        if (n == 0) {
            if (ferror(stdin))
                die("reading stdin failed");
            break;
        }
    }

    struct request req = {0};
    struct scanner s = {in.data, in.data + in.len};
    struct buf inner = {0};
    if (!scan_request(&s, &req)) {
        fprintf(stderr, "c-hello: request is not a valid JSON object\n");
        buf_puts(&inner, "{\"error\":\"invalid request JSON\"}");
        respond(400, &inner);
        return 0;
    }

    struct str path = req.uri.data ? req.uri : (struct str){"", 0};
    struct str query = {"", 0};
    const char *mark = memchr(path.data, '#', path.len);
    if (mark)
        path.len = (size_t)(mark - path.data);
    mark = memchr(path.data, '?', path.len);
    if (mark) {
        query.data = mark + 1;
        query.len = path.len - (size_t)(mark + 1 - path.data);
        path.len = (size_t)(mark - path.data);
    }
    struct str method = req.method.data ? req.method : (struct str){"", 0};
    struct str body = req.body.data ? req.body : (struct str){"", 0};

    buf_puts(&inner, "{\"message\":\"hello from c\",\"method\":");
    buf_put_json_string(&inner, method.data, method.len);
    buf_puts(&inner, ",\"path\":");
    buf_put_json_string(&inner, path.data, path.len);
    buf_puts(&inner, ",\"query\":");
    buf_put_json_string(&inner, query.data, query.len);
    buf_puts(&inner, ",\"user_agent\":");
    buf_put_str_or_null(&inner, req.user_agent);

    char num[32];
    size_t body_bytes = req.body_base64.data ? base64_decoded_len(req.body_base64) : body.len;
    snprintf(num, sizeof num, ",\"body_bytes\":%zu", body_bytes);
    buf_puts(&inner, num);

    /* A body that is JSON is valid JSON text already, so it is embedded as is. With
     * body_base64 present the bytes are not UTF-8, hence not JSON. */
    buf_puts(&inner, ",\"echo\":");
    if (!req.body_base64.data && is_json(body.data, body.len)) {
        struct scanner trim = {(char *)body.data, (char *)body.data + body.len};
        skip_ws(&trim);
        while (trim.end > trim.p && is_space(trim.end[-1]))
            trim.end--;
        buf_put(&inner, trim.p, (size_t)(trim.end - trim.p));
    } else
        buf_puts(&inner, "null");
    buf_puts(&inner, "}");

    respond(200, &inner);
    fprintf(stderr, "c-hello: handled %.*s %.*s\n", (int)method.len, method.data,
            (int)path.len, path.data);
    return 0;
}
