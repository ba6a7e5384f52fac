//! `file_server` options users rely on (issue 17): `browse` (HTML and JSON),
//! `hide`, `index`, the directory redirect, `precompressed` sidecars chosen by
//! `Accept-Encoding`, ETag / Last-Modified / Range, and the `try_files`
//! directive.

use crate::harness::{scratch, Server};
use std::io::Read;
use std::path::Path;

/// A site tree: `public/` with an index-less directory, hidden files, a
/// directory with a custom index, and a script with gzip and zstd sidecars.
fn site(name: &str, file_server: &str) -> Server {
    let dir = scratch(name);
    let public = dir.join("public");
    let put = |rel: &str, bytes: &[u8]| {
        let p = public.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    };
    put("files/a.txt", b"alpha");
    put("files/b <&>.txt", b"bravo");
    put("files/notes.bak", b"old");
    put("files/sub/c.txt", b"charlie");
    put(".git/config", b"[core]");
    put("secret/key.pem", b"KEY");
    put("docs/default.htm", b"<p>default</p>");
    put("docs/index.html", b"<p>index</p>");
    let script = "console.log('hello');\n".repeat(50);
    put("app.js", script.as_bytes());
    put("app.js.gz", &gzip(script.as_bytes()));
    put("app.js.zst", b"pretend-zstd-bytes");
    std::fs::write(
        dir.join("Caddyfile"),
        format!("{{\n    admin off\n}}\n:0 {{\n    root * ./public\n{file_server}\n}}\n"),
    )
    .expect("write Caddyfile");
    Server::start(&dir.join("Caddyfile"), &[])
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

const OPTIONS: &str = "    file_server {\n        browse\n        hide .git *.bak ./public/secret\n        index default.htm index.html\n        precompressed zstd gzip\n    }";

#[test]
fn browse_lists_a_directory_without_index_and_never_hidden_files() {
    let s = site("fs-browse", OPTIONS);
    let r = s.get("/files/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.contains("href=\"./a.txt\""), "{page}");
    assert!(page.contains("href=\"./sub/\""), "{page}");
    assert!(
        page.contains("b &lt;&amp;&gt;.txt"),
        "a name is escaped: {page}"
    );
    assert!(
        !page.contains("notes.bak"),
        "a hidden file is listed: {page}"
    );
    let r = s.request("GET", "/files/", &[("Accept", "application/json")], b"");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let list: serde_json::Value = serde_json::from_slice(&r.body).expect("json listing");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a.txt", "b <&>.txt", "sub"]);
    assert_eq!(list[0]["size"], 5);
    assert_eq!(list[2]["is_dir"], true);
    // The root lists too, without the hidden directories.
    let root = s.get("/").text();
    assert!(
        root.contains("./files/") && !root.contains(".git") && !root.contains("secret"),
        "{root}"
    );
}

#[test]
fn hidden_files_and_directories_answer_404() {
    let s = site("fs-hide", OPTIONS);
    for path in [
        "/.git/config",
        "/files/notes.bak",
        "/secret/key.pem",
        "/secret/",
        "/.git/",
    ] {
        assert_eq!(s.get(path).status, 404, "{path}");
    }
    assert_eq!(s.get("/files/a.txt").text(), "alpha");
}

#[test]
fn index_names_are_tried_in_order_and_directories_get_their_slash() {
    let s = site("fs-index", OPTIONS);
    let r = s.get("/docs/");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>default</p>"));
    let r = s.get("/docs?x=1");
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/docs/?x=1"));
    // Without `browse`, a directory without an index is not found.
    let plain = site("fs-index-plain", "    file_server");
    assert_eq!(plain.get("/files/").status, 404);
    // Caddy's default index names: index.html first.
    assert_eq!(plain.get("/docs/").text(), "<p>index</p>");
}

#[test]
fn precompressed_sidecars_follow_accept_encoding() {
    let s = site("fs-precompressed", OPTIONS);
    let script = "console.log('hello');\n".repeat(50);
    let r = s.request("GET", "/app.js", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r
        .header_all("vary")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("accept-encoding")));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(r.body.as_slice())
        .read_to_string(&mut plain)
        .expect("gunzip the body");
    assert_eq!(plain, script);
    let r = s.request("GET", "/app.js", &[("Accept-Encoding", "zstd, gzip")], b"");
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(r.body, b"pretend-zstd-bytes");
    let r = s.get("/app.js");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.text(), script);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.contains("javascript")),
        "{:?}",
        r.headers
    );
}

#[test]
fn etag_last_modified_and_range() {
    let s = site("fs-conditional", "    file_server");
    let r = s.get("/files/a.txt");
    let etag = r.header("etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 4,
        "{etag}"
    );
    let modified = r.header("last-modified").expect("Last-Modified").to_owned();
    let r = s.request("GET", "/files/a.txt", &[("If-None-Match", &etag)], b"");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = s.request(
        "GET",
        "/files/a.txt",
        &[("If-None-Match", "\"other\"")],
        b"",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "alpha"));
    let r = s.request(
        "GET",
        "/files/a.txt",
        &[("If-Modified-Since", &modified)],
        b"",
    );
    assert_eq!(r.status, 304);
    let r = s.request("GET", "/files/a.txt", &[("Range", "bytes=1-3")], b"");
    assert_eq!((r.status, r.text().as_str()), (206, "lph"));
    assert_eq!(r.header("content-range"), Some("bytes 1-3/5"));
    // A change of the file changes its tag.
    let file = Path::new(&crate::harness::root())
        .join("target/e2e")
        .join(format!("fs-conditional-{}", std::process::id()))
        .join("public/files/a.txt");
    std::fs::write(&file, b"alpha, longer").expect("rewrite");
    let r = s.request("GET", "/files/a.txt", &[("If-None-Match", &etag)], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "alpha, longer"));
    assert_ne!(r.header("etag"), Some(etag.as_str()));
}

#[test]
fn try_files_serves_the_app_shell_for_routes_that_are_not_files() {
    let s = site(
        "fs-try-files",
        "    handle /files/* {\n        try_files {path} =410\n        respond \"exists\"\n    }\n    handle {\n        try_files {path} {path}/ /docs/index.html\n        file_server\n    }",
    );
    let r = s.get("/app.js");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("console.log"), "{}", r.text());
    // A directory entry (`{path}/`) wins over the shell; `index` applies there.
    let r = s.get("/docs/");
    assert_eq!(r.text(), "<p>index</p>");
    for route in ["/app/settings", "/deep/link?tab=2"] {
        let r = s.get(route);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "<p>index</p>"),
            "{route}"
        );
    }
    // `=<status>` answers when nothing exists; an existing file only rewrites.
    let r = s.get("/files/nothing");
    assert_eq!((r.status, r.text().as_str()), (410, ""));
    let r = s.get("/files/a.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "exists"));
}

/// `try_files … =<status>` is an error, as in Caddy: `handle_errors` answers it.
#[test]
fn a_try_files_status_is_handled_by_handle_errors() {
    let s = site(
        "fs-try-files-errors",
        "    try_files {path} =410
    file_server
    handle_errors 4xx {
        respond \"{err.status_code} {err.status_text}\"
    }",
    );
    let r = s.get("/nothing/here");
    assert_eq!((r.status, r.text().as_str()), (410, "410 Gone"));
    assert_eq!(s.get("/app.js").status, 200);
}

#[test]
fn the_caddyfile_is_never_served() {
    let dir = scratch("fs-own-config");
    std::fs::write(dir.join("page.txt"), "public").expect("write");
    std::fs::write(
        dir.join("Caddyfile"),
        "{\n    admin off\n}\n:0 {\n    # No root: the config file's directory.\n    file_server browse\n}\n",
    )
    .expect("write Caddyfile");
    let s = Server::start(&dir.join("Caddyfile"), &[]);
    assert_eq!(s.get("/page.txt").text(), "public");
    assert_eq!(s.get("/Caddyfile").status, 404);
    let listing = s.get("/").text();
    assert!(
        listing.contains("page.txt") && !listing.contains("Caddyfile"),
        "{listing}"
    );
}
