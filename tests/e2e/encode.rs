//! `encode` (issue 17): function responses, files and proxied responses
//! compressed by the client's `Accept-Encoding`, each verified by
//! decompressing; what must not be compressed is not.

use std::io::Read;

use crate::backend::{text_of, Backend};
use crate::harness::{guest, scratch, Resp, Server};

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unzstd(body: &[u8]) -> Vec<u8> {
    zstd::stream::decode_all(body).expect("valid zstd")
}

fn get(s: &Server, path: &str, accept: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
    s.request("GET", path, &headers, b"")
}

/// The body as the client reads it once decoded by its `Content-Encoding`.
fn decoded(r: &Resp) -> Vec<u8> {
    match r.header("content-encoding") {
        Some("gzip") => gunzip(&r.body),
        Some("zstd") => unzstd(&r.body),
        None => r.body.clone(),
        Some(other) => panic!("unexpected encoding `{other}`"),
    }
}

#[test]
fn encode_compresses_functions_files_and_proxied_responses_by_accept_encoding() {
    let app = Backend::start("app");
    let files = scratch("encode_files");
    let page = text_of(6000);
    std::fs::write(files.join("page.html"), &page).expect("write page");
    std::fs::write(files.join("small.txt"), "tiny").expect("write small");
    let s = Server::with_routes(
        "encode",
        &format!(
            "    encode gzip zstd {{
        minimum_length 256
    }}
    handle /fn/* {{
        gojinn {} {{
            args big
        }}
    }}
    handle_path /files/* {{
        root * {}
        file_server
    }}
    handle {{
        reverse_proxy 127.0.0.1:{}
    }}",
            guest().display(),
            files.display(),
            app.port
        ),
    );

    // Proxied text: each encoding the client takes, and identity.
    let text = text_of(5000).into_bytes();
    for (accept, expect) in [
        (Some("gzip"), Some("gzip")),
        (Some("zstd"), Some("zstd")),
        (Some("gzip;q=0.5, zstd"), Some("zstd")),
        (Some("zstd;q=0, gzip"), Some("gzip")),
        (Some("br"), None),
        (None, None),
    ] {
        let r = get(&s, "/text?5000", accept);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), expect, "{accept:?}");
        // Field names in `Vary` are case-insensitive.
        assert_eq!(
            r.header("vary").map(str::to_ascii_lowercase).as_deref(),
            Some("accept-encoding"),
            "{accept:?}"
        );
        assert_eq!(decoded(&r), text, "{accept:?}");
        if expect.is_some() {
            assert!(
                r.body.len() < text.len() / 4,
                "{accept:?}: {} bytes",
                r.body.len()
            );
        }
    }

    // A function's answer and a file, both compressible and long enough.
    let r = get(&s, "/fn/x?size=3000", Some("gzip"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&r), "z".repeat(3000).into_bytes());
    let r = get(&s, "/files/page.html", Some("zstd"));
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(decoded(&r), page.as_bytes());

    // Left alone: under minimum_length, incompressible types, already encoded.
    for path in ["/text?100", "/files/small.txt", "/fn/x?size=10"] {
        let r = get(&s, path, Some("gzip, zstd"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-encoding"), None, "{path}");
    }
    let r = get(&s, "/blob?5000", Some("gzip"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body.len(), 5000);
    let r = get(&s, "/pre-encoded", Some("gzip, zstd"));
    assert_eq!(r.header_all("content-encoding"), vec!["gzip"]);
    assert_eq!(r.body, vec![b'e'; 4096]);
}
