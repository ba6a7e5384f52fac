// as-hello: a Gojinn function in AssemblyScript, a hello/echo JSON API (`gojinn new
// --lang assemblyscript` starts new projects from this file).
// @assemblyscript/wasi-shim maps `process` and `console` to WASI preview 1, so this
// builds to a WASI command that reads stdin and writes stdout.
//
// AssemblyScript has no JSON in its standard library, so a small strict scanner
// below reads the request: it decodes the few strings it needs and skips the rest.
// The same scanner decides whether the request body is JSON, in which case it is
// echoed verbatim. Nesting is capped at MAX_DEPTH so a hostile body cannot exhaust
// the stack.

const MAX_DEPTH = 128;

// The host ABI's logger (module `gojinn`, always granted; see docs/abi.md):
// level 0 debug, 1 info, 2 warn, 3 error; the message is UTF-8 bytes.
@external("gojinn", "host_log")
declare function host_log(level: i32, ptr: usize, len: i32): void;

function hostLog(level: i32, msg: string): void {
  const bytes = String.UTF8.encode(msg);
  host_log(level, changetype<usize>(bytes), bytes.byteLength);
}
// Largest request read from stdin; the server's max_body_size is the real limit.
const MAX_REQUEST_BYTES = 64 << 20;

class Scanner {
  constructor(public s: string, public i: i32 = 0) {}

  atEnd(): bool {
    return this.i >= this.s.length;
  }

  peek(): i32 {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }

  skipWs(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.i++;
    }
  }

  eat(c: i32): bool {
    this.skipWs();
    if (this.peek() == c) {
      this.i++;
      return true;
    }
    return false;
  }

  hex4(): i32 {
    if (this.i + 4 > this.s.length) return -1;
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.s.charCodeAt(this.i + k);
      let h = -1;
      if (c >= 0x30 && c <= 0x39) h = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) h = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) h = c - 0x41 + 10;
      if (h < 0) return -1;
      v = (v << 4) | h;
    }
    this.i += 4;
    return v;
  }

  // A JSON string, decoded; null when it is not valid JSON. JavaScript strings are
  // UTF-16 like JSON's \u escapes, so surrogate pairs need no special handling.
  string(): string | null {
    if (!this.eat(0x22)) return null;
    let out = "";
    let from = this.i;
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c == 0x22) {
        out += this.s.substring(from, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) return null;
      if (c != 0x5c) {
        this.i++;
        continue;
      }
      out += this.s.substring(from, this.i);
      this.i++;
      const e = this.peek();
      this.i++;
      if (e == 0x22) out += '"';
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        const cp = this.hex4();
        if (cp < 0) return null;
        out += String.fromCharCode(cp);
      } else return null;
      from = this.i;
    }
    return null;
  }

  digits(): bool {
    const from = this.i;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) this.i++;
    return this.i > from;
  }

  number(): bool {
    if (this.peek() == 0x2d) this.i++;
    if (this.peek() == 0x30) this.i++;
    else if (!this.digits()) return false;
    if (this.peek() == 0x2e) {
      this.i++;
      if (!this.digits()) return false;
    }
    if (this.peek() == 0x65 || this.peek() == 0x45) {
      this.i++;
      if (this.peek() == 0x2b || this.peek() == 0x2d) this.i++;
      if (!this.digits()) return false;
    }
    return true;
  }

  literal(word: string): bool {
    if (this.s.substr(this.i, word.length) != word) return false;
    this.i += word.length;
    return true;
  }

  // Checks one JSON value and moves past it.
  skipValue(depth: i32): bool {
    if (depth > MAX_DEPTH) return false;
    this.skipWs();
    const c = this.peek();
    if (c == 0x22) return this.string() != null;
    if (c == 0x7b) {
      this.i++;
      if (this.eat(0x7d)) return true;
      do {
        if (this.string() == null || !this.eat(0x3a) || !this.skipValue(depth + 1)) return false;
      } while (this.eat(0x2c));
      return this.eat(0x7d);
    }
    if (c == 0x5b) {
      this.i++;
      if (this.eat(0x5d)) return true;
      do {
        if (!this.skipValue(depth + 1)) return false;
      } while (this.eat(0x2c));
      return this.eat(0x5d);
    }
    if (c == 0x74) return this.literal("true");
    if (c == 0x66) return this.literal("false");
    if (c == 0x6e) return this.literal("null");
    return this.number();
  }
}

class Request {
  method: string = "";
  uri: string = "";
  body: string = "";
  bodyBase64: string | null = null;
  userAgent: string | null = null;
}

// The first "User-Agent" value in the headers object ({"Name": ["v", ...]}).
function scanHeaders(sc: Scanner, req: Request): bool {
  if (!sc.eat(0x7b)) return false;
  if (sc.eat(0x7d)) return true;
  do {
    const name = sc.string();
    if (name == null || !sc.eat(0x3a)) return false;
    if (name != "User-Agent") {
      if (!sc.skipValue(1)) return false;
      continue;
    }
    if (!sc.eat(0x5b)) return false;
    if (sc.eat(0x5d)) continue;
    do {
      const v = sc.string();
      if (v == null) return false;
      if (req.userAgent == null) req.userAgent = v;
    } while (sc.eat(0x2c));
    if (!sc.eat(0x5d)) return false;
  } while (sc.eat(0x2c));
  return sc.eat(0x7d);
}

function parseRequest(text: string): Request | null {
  const sc = new Scanner(text);
  const req = new Request();
  if (!sc.eat(0x7b)) return null;
  if (!sc.eat(0x7d)) {
    do {
      const key = sc.string();
      if (key == null || !sc.eat(0x3a)) return null;
      if (key == "headers") {
        if (!scanHeaders(sc, req)) return null;
        continue;
      }
      if (key == "method" || key == "uri" || key == "body" || key == "body_base64") {
        const v = sc.string();
        if (v == null) return null;
        if (key == "method") req.method = v;
        else if (key == "uri") req.uri = v;
        else if (key == "body") req.body = v;
        else req.bodyBase64 = v;
        continue;
      }
      if (!sc.skipValue(1)) return null;
    } while (sc.eat(0x2c));
    if (!sc.eat(0x7d)) return null;
  }
  sc.skipWs();
  return sc.atEnd() ? req : null;
}

function isJson(text: string): bool {
  const sc = new Scanner(text);
  if (!sc.skipValue(0)) return false;
  sc.skipWs();
  return sc.atEnd();
}

// Decoded size of standard base64 text.
function base64Len(b64: string): i32 {
  let n = b64.length;
  let pad = 0;
  while (pad < 2 && n > 0 && b64.charCodeAt(n - 1 - pad) == 0x3d) pad++;
  return (n / 4) * 3 - pad;
}

function jsonString(s: string): string {
  let out = '"';
  let from = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c != 0x22 && c != 0x5c && c >= 0x20) continue;
    out += s.substring(from, k);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    from = k + 1;
  }
  return out + s.substring(from) + '"';
}

function readStdin(): string {
  const chunks = new Array<ArrayBuffer>();
  let total = 0;
  while (true) {
    const chunk = new ArrayBuffer(16 * 1024);
    const n = process.stdin.read(chunk);
    if (n <= 0) break;
    chunks.push(chunk.slice(0, n));
    total += n;
    if (total > MAX_REQUEST_BYTES) throw new Error("request too large");
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (let k = 0; k < chunks.length; k++) {
    all.set(Uint8Array.wrap(chunks[k]), at);
    at += chunks[k].byteLength;
  }
  return String.UTF8.decode(all.buffer);
}

function main(): void {
  const req = parseRequest(readStdin());
  if (req == null) {
    process.stderr.write("as-hello: request is not the JSON contract\n");
    process.exit(1);
    return;
  }
  const q = req.uri.indexOf("?");
  const path = q < 0 ? req.uri : req.uri.substring(0, q);
  const query = q < 0 ? "" : req.uri.substring(q + 1);
  // A body that is not valid UTF-8 arrives as lossy text plus body_base64; such a
  // body cannot be JSON, so only its size is needed from the base64 form.
  const b64 = req.bodyBase64;
  const bodyBytes = b64 != null ? base64Len(b64) : String.UTF8.byteLength(req.body);
  // A body that is not JSON (or is empty) is echoed as null rather than rejected.
  const echo = b64 == null && isJson(req.body) ? req.body.trim() : "null";
  const ua = req.userAgent;

  const reply =
    '{"message":"hello from assemblyscript","method":' + jsonString(req.method) +
    ',"path":' + jsonString(path) +
    ',"query":' + jsonString(query) +
    ',"user_agent":' + (ua != null ? jsonString(ua) : "null") +
    ',"body_bytes":' + bodyBytes.toString() +
    ',"echo":' + echo + "}";
  process.stdout.write(
    '{"status":200,"headers":{"Content-Type":["application/json"]},"body":' +
      jsonString(reply) + "}\n",
  );
  process.stderr.write("as-hello: handled " + req.method + " " + path + "\n");
  hostLog(1, "as-hello: answered through host_log");
}

main();
