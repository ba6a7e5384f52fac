//! `file_server`: static files with Caddy's options. tower-http's `ServeDir`
//! reads the file, with `Content-Type`, `Last-Modified`, `If-Modified-Since`,
//! `Range` and precompressed sidecars; around it this module adds what Caddy
//! does and `ServeDir` does not:
//!
//! - `hide`: a hidden file or directory answers 404 and is never listed;
//! - `index`: the index file names tried for a directory, in order;
//! - a directory asked for without its trailing `/` is redirected (308) to it;
//! - `browse`: a listing of a directory without an index, as HTML, or as JSON
//!   when the client asks for `application/json`;
//! - `ETag` (Caddy's: the served file's modification time in nanoseconds and
//!   its size, both base 36) and `If-None-Match` → 304;
//! - `Vary: Accept-Encoding` when sidecars may be served.

use crate::handler::{full, Body};
use gojinn_config::{FileServerOptions, Precompressed};
use http::header::{
    HeaderValue, ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, VARY,
};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;
use tower::ServiceExt;

/// A `file_server` route, resolved at load.
pub(crate) struct FileServer {
    root: PathBuf,
    options: FileServerOptions,
}

impl FileServer {
    pub(crate) fn new(root: PathBuf, options: FileServerOptions) -> FileServer {
        FileServer { root, options }
    }

    /// Answers `req`, whose path as this route sees it is `path`.
    pub(crate) async fn serve<B: Send + 'static>(
        &self,
        req: Request<B>,
        path: &str,
    ) -> Response<Body> {
        let Some(rel) = relative(path) else {
            return status(StatusCode::NOT_FOUND);
        };
        let full_path = self.root.join(&rel);
        if self.hidden(&rel, &full_path) {
            return status(StatusCode::NOT_FOUND);
        }
        let Ok(meta) = tokio::fs::metadata(&full_path).await else {
            return status(StatusCode::NOT_FOUND);
        };
        if !meta.is_dir() {
            return self.file(req, path).await;
        }
        if !path.ends_with('/') {
            let location = match req.uri().query() {
                Some(q) => format!("{}/?{q}", req.uri().path()),
                None => format!("{}/", req.uri().path()),
            };
            let mut resp = status(StatusCode::PERMANENT_REDIRECT);
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(LOCATION, v);
            }
            return resp;
        }
        for index in &self.options.index {
            let candidate = full_path.join(index);
            if self.hidden(&rel.join(index), &candidate) {
                continue;
            }
            if tokio::fs::metadata(&candidate)
                .await
                .is_ok_and(|m| m.is_file())
            {
                return self.file(req, &format!("{path}{index}")).await;
            }
        }
        if self.options.browse {
            return self.listing(&req, path, &rel, &full_path).await;
        }
        status(StatusCode::NOT_FOUND)
    }

    /// True when `rel` (below the root, at `full`) is hidden.
    fn hidden(&self, rel: &Path, full: &Path) -> bool {
        self.options.hide.iter().any(|h| {
            if h.contains('/') {
                full.starts_with(h)
            } else {
                rel.components().any(|c| match c {
                    Component::Normal(name) => glob(h, &name.to_string_lossy()),
                    _ => false,
                })
            }
        })
    }

    /// The file at `path` (below the root), through `ServeDir`.
    async fn file<B: Send + 'static>(&self, req: Request<B>, path: &str) -> Response<Body> {
        let if_none_match = req.headers().get(IF_NONE_MATCH).cloned();
        let mut req = req;
        let pq = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
        let mut dir =
            tower_http::services::ServeDir::new(&self.root).append_index_html_on_directories(false);
        for p in &self.options.precompressed {
            dir = match p {
                Precompressed::Br => dir.precompressed_br(),
                Precompressed::Zstd => dir.precompressed_zstd(),
                Precompressed::Gzip => dir.precompressed_gzip(),
            };
        }
        let resp = match dir.oneshot(req).await {
            Ok(resp) => resp.map(|b| b.boxed_unsync()),
            Err(never) => match never {},
        };
        let mut resp = resp;
        if !self.options.precompressed.is_empty() {
            resp.headers_mut()
                .append(VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if !matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
            return resp;
        }
        // The ETag of the file actually sent: a sidecar has its own.
        let suffix = resp
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|e| {
                self.options
                    .precompressed
                    .iter()
                    .find(|p| e.as_bytes() == p.encoding().as_bytes())
            })
            .map_or("", |p| p.suffix());
        let Some(rel) = relative(path) else {
            return resp;
        };
        let served = PathBuf::from(format!("{}{suffix}", self.root.join(rel).display()));
        let Some(tag) = etag(&served).await else {
            return resp;
        };
        if let Ok(v) = HeaderValue::from_str(&tag) {
            resp.headers_mut().insert(ETAG, v);
        }
        if if_none_match.is_some_and(|v| matches_etag(v.as_bytes(), &tag)) {
            let mut not_modified = status(StatusCode::NOT_MODIFIED);
            for name in [ETAG, VARY, http::header::LAST_MODIFIED] {
                for v in resp.headers().get_all(&name) {
                    not_modified.headers_mut().append(&name, v.clone());
                }
            }
            return not_modified;
        }
        resp
    }

    /// `browse`: the entries of the directory at `full` (the request's `path`).
    async fn listing<B>(
        &self,
        req: &Request<B>,
        path: &str,
        rel: &Path,
        dir_path: &Path,
    ) -> Response<Body> {
        let Ok(mut dir) = tokio::fs::read_dir(dir_path).await else {
            return status(StatusCode::NOT_FOUND);
        };
        let mut entries = Vec::new();
        while let Ok(Some(e)) = dir.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if self.hidden(&rel.join(&name), &e.path()) {
                continue;
            }
            let Ok(link) = tokio::fs::symlink_metadata(e.path()).await else {
                continue;
            };
            let meta = tokio::fs::metadata(e.path()).await.unwrap_or(link.clone());
            entries.push(Entry {
                name,
                is_dir: meta.is_dir(),
                is_symlink: link.file_type().is_symlink(),
                size: meta.len(),
                mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()),
                modified: meta.modified().ok(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let wants_json = req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        let (body, content_type) = if wants_json {
            (listing_json(&entries), "application/json")
        } else {
            (listing_html(path, &entries), "text/html; charset=utf-8")
        };
        let mut resp = Response::new(full(body));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp
    }
}

/// One entry of a directory listing.
struct Entry {
    name: String,
    is_dir: bool,
    is_symlink: bool,
    size: u64,
    mode: u32,
    modified: Option<std::time::SystemTime>,
}

impl Entry {
    /// The entry's link, relative to the listed directory.
    fn url(&self) -> String {
        let mut url: String =
            percent_encoding::utf8_percent_encode(&self.name, PATH_SEGMENT).to_string();
        if self.is_dir {
            url.push('/');
        }
        format!("./{url}")
    }
}

/// Characters escaped in a path segment of a listing link.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn listing_json(entries: &[Entry]) -> String {
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        let _ = gojinn_log::write_json_str(&mut out, &e.name);
        let _ = write!(out, ",\"size\":{},\"url\":", e.size);
        let _ = gojinn_log::write_json_str(&mut out, &e.url());
        out.push_str(",\"mod_time\":\"");
        if let Some(t) = e.modified {
            let _ = gojinn_log::write_timestamp(&mut out, t);
        }
        let _ = write!(
            out,
            "\",\"mode\":{},\"is_dir\":{},\"is_symlink\":{}}}",
            e.mode, e.is_dir, e.is_symlink
        );
    }
    out.push(']');
    out
}

fn listing_html(path: &str, entries: &[Entry]) -> String {
    let title = html(path);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
    );
    if path != "/" {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        let mut modified = String::new();
        if let Some(t) = e.modified {
            let _ = gojinn_log::write_timestamp(&mut modified, t);
        }
        let shown = if e.is_dir {
            format!("{}/", e.name)
        } else {
            e.name.clone()
        };
        let size = if e.is_dir {
            String::new()
        } else {
            e.size.to_string()
        };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{size}</td><td>{modified}</td></tr>",
            html(&e.url()),
            html(&shown)
        );
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

/// `s` escaped for HTML text and attribute values.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The request path as a relative filesystem path (percent-decoded); `None`
/// when it climbs out of the root or is not valid UTF-8 after decoding.
pub(crate) fn relative(path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut out = PathBuf::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p if p.contains('\\') || p.contains('\0') => return None,
            p => out.push(p),
        }
    }
    Some(out)
}

/// A `hide` name pattern: `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(head) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for p in parts {
        match tail.find(p) {
            Some(i) => tail = &tail[i + p.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// Caddy's ETag of a file: its modification time in nanoseconds and its size,
/// base 36, quoted; none for a file dated at the epoch (no real time).
async fn etag(path: &Path) -> Option<String> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    let nanos = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    if nanos < 2_000_000_000 {
        return None;
    }
    Some(format!(
        "\"{}{}\"",
        base36(nanos),
        base36(u128::from(meta.len()))
    ))
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// True when an `If-None-Match` value names `tag` (or is `*`); weak
/// comparison, as RFC 9110 asks for this header.
fn matches_etag(header: &[u8], tag: &str) -> bool {
    let Ok(text) = std::str::from_utf8(header) else {
        return false;
    };
    text.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(full(bytes::Bytes::new()));
    *resp.status_mut() = code;
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_a_name() {
        for (p, n) in [
            ("*.bak", "a.bak"),
            (".git", ".git"),
            ("a*c", "abc"),
            ("*", "x"),
            ("a*b*c", "aXbYc"),
        ] {
            assert!(glob(p, n), "{p} {n}");
        }
        for (p, n) in [
            ("*.bak", "a.bako"),
            (".git", ".github"),
            ("a*c", "ab"),
            ("ab*b", "ab"),
        ] {
            assert!(!glob(p, n), "{p} {n}");
        }
    }

    #[test]
    fn request_paths_stay_below_the_root() {
        assert_eq!(relative("/a/b%20c/"), Some(PathBuf::from("a/b c")));
        assert_eq!(relative("/"), Some(PathBuf::new()));
        for bad in ["/../etc/passwd", "/a/%2e%2e/%2e%2e/x", "/a\\..\\b", "/%ff"] {
            assert_eq!(relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn etags_are_base36_and_if_none_match_compares_weakly() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert!(matches_etag(b"\"x\", W/\"abc\"", "\"abc\""));
        assert!(matches_etag(b"*", "\"abc\""));
        assert!(!matches_etag(b"\"abd\"", "\"abc\""));
    }

    #[test]
    fn listing_escapes_names() {
        let e = Entry {
            name: "<a b>\".txt".into(),
            is_dir: false,
            is_symlink: false,
            size: 3,
            mode: 0o644,
            modified: None,
        };
        let page = listing_html("/x/", std::slice::from_ref(&e));
        assert!(page.contains("href=\"./%3Ca%20b%3E%22.txt\""), "{page}");
        assert!(page.contains("&lt;a b&gt;&quot;.txt"), "{page}");
        let json: serde_json::Value = serde_json::from_str(&listing_json(&[e])).unwrap();
        assert_eq!(json[0]["name"], "<a b>\".txt");
        assert_eq!(json[0]["url"], "./%3Ca%20b%3E%22.txt");
    }
}
