//! Access logs: one line per request of a site with a `log` directive, in the
//! shape of Caddy's `http.log.access` lines, so tools reading Caddy's access
//! logs read these:
//!
//! ```text
//! {"level":"info","ts":1764751330.123456,"logger":"http.log.access.log0","msg":"handled request",
//!  "request":{"remote_ip":"127.0.0.1","remote_port":"50214","client_ip":"127.0.0.1","proto":"HTTP/1.1",
//!  "method":"GET","host":"localhost:8080","uri":"/api/x?q=1","headers":{"User-Agent":["curl/8.5.0"]}},
//!  "bytes_read":0,"user_id":"","duration":0.000412,"size":12,"status":200,"resp_headers":{…}}
//! ```
//!
//! `level` is `error` for a 5xx answer, else `info`. Header names are written in
//! Go's canonical form; `Cookie`, `Set-Cookie`, `Authorization` and
//! `Proxy-Authorization` values are written `REDACTED`, as Caddy does unless
//! told otherwise. `format console` writes Caddy's console layout: time, level,
//! logger and message separated by tabs, then the same fields as JSON.
//!
//! The line is written when the response body is finished or dropped, so
//! `size` is the body bytes actually sent and `duration` runs to the last byte.
//! A request whose client leaves before the answer gets no access line here
//! (the `gojinn::access` line of a function route says `499`).

use crate::conn::Peer;
use crate::handler::Body;
use bytes::Bytes;
use gojinn_config::{AccessLog, LogFormat, LogLevel};
use gojinn_log::{write_json_str, LineWriter};
use http::{HeaderMap, Request, Response};
use hyper::body::{Frame, SizeHint};
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Headers whose values an access line never shows.
const REDACTED_HEADERS: &[&str] = &[
    "cookie",
    "set-cookie",
    "authorization",
    "proxy-authorization",
];

/// A site's access logger, resolved at load.
pub(crate) struct AccessLogger {
    /// `http.log.access.<name>`.
    logger: String,
    writer: LineWriter,
    format: LogFormat,
    /// `level error` or `warn`: only 5xx answers are written.
    errors_only: bool,
}

impl AccessLogger {
    pub(crate) fn new(config: &AccessLog, writer: LineWriter) -> AccessLogger {
        AccessLogger {
            logger: format!("http.log.access.{}", config.logger),
            writer,
            format: config.format,
            errors_only: matches!(config.level, Some(LogLevel::Error | LogLevel::Warn)),
        }
    }

    /// The request half of a line, taken before the request is handled (the
    /// handler consumes it). `None` when the lines go nowhere.
    pub(crate) fn start<B>(self: &Arc<Self>, req: &Request<B>) -> Option<Entry> {
        if self.writer.is_discard() {
            return None;
        }
        let mut request = String::with_capacity(256);
        // Writing to a `String` cannot fail.
        let _ = write_request(&mut request, req);
        Some(Entry {
            logger: self.clone(),
            ts: SystemTime::now(),
            started: Instant::now(),
            request,
        })
    }
}

/// A request being handled: its line waits for the response.
pub(crate) struct Entry {
    logger: Arc<AccessLogger>,
    ts: SystemTime,
    started: Instant,
    /// The `request` object, as JSON.
    request: String,
}

impl Entry {
    /// `resp`, whose body writes the line when it ends or is dropped.
    pub(crate) fn finish(self, resp: Response<Body>) -> Response<Body> {
        let status = resp.status().as_u16();
        if self.logger.errors_only && status < 500 {
            return resp;
        }
        let mut resp_headers = String::with_capacity(128);
        let _ = write_headers(&mut resp_headers, resp.headers());
        let (parts, body) = resp.into_parts();
        let counted = Counted {
            inner: body,
            size: 0,
            pending: Some(Pending {
                entry: self,
                status,
                resp_headers,
            }),
        };
        Response::from_parts(parts, http_body_util::BodyExt::boxed_unsync(counted))
    }
}

/// What the line needs once the body is done.
struct Pending {
    entry: Entry,
    status: u16,
    resp_headers: String,
}

impl Pending {
    fn write(self, size: u64) {
        let Pending {
            entry,
            status,
            resp_headers,
        } = self;
        let duration = entry.started.elapsed().as_secs_f64();
        let mut fields = String::with_capacity(entry.request.len() + resp_headers.len() + 128);
        let _ = write!(
            fields,
            "\"request\":{},\"bytes_read\":0,\"user_id\":\"\",\"duration\":{duration},\"size\":{size},\"status\":{status},\"resp_headers\":{resp_headers}",
            entry.request
        );
        let level = if status >= 500 { "error" } else { "info" };
        let logger = &entry.logger;
        let mut line = String::with_capacity(fields.len() + 128);
        let ts = entry.ts.duration_since(UNIX_EPOCH).unwrap_or_default();
        match logger.format {
            LogFormat::Json => {
                let _ = write!(
                    line,
                    "{{\"level\":\"{level}\",\"ts\":{}.{:06},\"logger\":",
                    ts.as_secs(),
                    ts.subsec_micros()
                );
                let _ = write_json_str(&mut line, &logger.logger);
                let _ = writeln!(line, ",\"msg\":\"handled request\",{fields}}}");
            }
            LogFormat::Console => {
                let _ = gojinn_log::write_timestamp(&mut line, entry.ts);
                let _ = writeln!(
                    line,
                    "\t{}\t{}\thandled request\t{{{fields}}}",
                    level.to_ascii_uppercase(),
                    logger.logger
                );
            }
        }
        logger.writer.write_line(line.as_bytes());
    }
}

/// A response body that counts what passes and writes the access line at its end.
struct Counted {
    inner: Body,
    size: u64,
    pending: Option<Pending>,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.size += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.done(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Counted {
    fn done(&mut self) {
        if let Some(p) = self.pending.take() {
            p.write(self.size);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // hyper does not poll a body it knows is empty (HEAD, 204, 304): the line
        // is written here then, as when a client leaves mid-body.
        self.done();
    }
}

/// The `request` object of a line.
fn write_request<B>(out: &mut String, req: &Request<B>) -> std::fmt::Result {
    let (ip, port) = match req.extensions().get::<Peer>() {
        Some(Peer { addr, .. }) => (
            addr.ip().to_canonical().to_string(),
            addr.port().to_string(),
        ),
        None => (String::new(), String::new()),
    };
    let proto = match req.version() {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    let uri = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path(), |pq| pq.as_str());
    out.push_str("{\"remote_ip\":");
    write_json_str(out, &ip)?;
    out.push_str(",\"remote_port\":");
    write_json_str(out, &port)?;
    out.push_str(",\"client_ip\":");
    write_json_str(out, &ip)?;
    write!(out, ",\"proto\":\"{proto}\",\"method\":")?;
    write_json_str(out, req.method().as_str())?;
    out.push_str(",\"host\":");
    write_json_str(out, &host)?;
    out.push_str(",\"uri\":");
    write_json_str(out, uri)?;
    out.push_str(",\"headers\":");
    write_headers(out, req.headers())?;
    out.push('}');
    Ok(())
}

/// Headers as a JSON object of arrays, names in Go's canonical form, in the
/// order they came (repeated names gathered under the first).
fn write_headers(out: &mut String, headers: &HeaderMap) -> std::fmt::Result {
    out.push('{');
    for (i, name) in headers.keys().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, &gojinn_contract::canonical_header_key(name.as_str()))?;
        out.push_str(":[");
        let redact = REDACTED_HEADERS.contains(&name.as_str());
        if redact {
            out.push_str("\"REDACTED\"");
        } else {
            for (j, v) in headers.get_all(name).iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_json_str(out, &String::from_utf8_lossy(v.as_bytes()))?;
            }
        }
        out.push(']');
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn request_object_has_caddys_keys_canonical_names_and_redactions() {
        let mut req = Request::builder()
            .method("POST")
            .uri("/api/x?q=1")
            .header("host", "example.com:8080")
            .header("user-agent", "t\"est")
            .header("x-many", "a")
            .header("x-many", "b")
            .header("cookie", "secret=1")
            .header("authorization", "Basic abc")
            .body(())
            .unwrap();
        req.extensions_mut().insert(Peer {
            addr: "[::ffff:127.0.0.1]:50214".parse().unwrap(),
            tls: false,
        });
        let mut out = String::new();
        write_request(&mut out, &req).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["remote_ip"], "127.0.0.1");
        assert_eq!(v["remote_port"], "50214");
        assert_eq!(v["client_ip"], "127.0.0.1");
        assert_eq!(v["proto"], "HTTP/1.1");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["host"], "example.com:8080");
        assert_eq!(v["uri"], "/api/x?q=1");
        assert_eq!(v["headers"]["User-Agent"][0], "t\"est");
        assert_eq!(v["headers"]["X-Many"], serde_json::json!(["a", "b"]));
        assert_eq!(v["headers"]["Cookie"], serde_json::json!(["REDACTED"]));
        assert_eq!(
            v["headers"]["Authorization"],
            serde_json::json!(["REDACTED"])
        );
        assert!(!out.contains("secret") && !out.contains("abc"), "{out}");
    }
}
