//! The site around the functions (issue 17): named matchers of every kind on
//! `respond`, `handle`, `file_server` and `gojinn`.

use crate::harness::{guest, scratch, Server};

/// Writes `Caddyfile` (admin off, one site on `:0` with `body`) into a
/// scratch directory with `public/index.txt`, and serves it.
fn serve(name: &str, body: &str) -> Server {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("public")).expect("mkdir");
    std::fs::write(dir.join("public/index.txt"), "static file").expect("write");
    let caddyfile = format!("{{\n    admin off\n}}\n:0 {{\n{body}\n}}\n");
    std::fs::write(dir.join("Caddyfile"), caddyfile).expect("write Caddyfile");
    Server::start(&dir.join("Caddyfile"), &[])
}

#[test]
fn named_matchers_of_every_kind_select_routes() {
    let body = format!(
        r#"
    @path path /p/*
    @re path_regexp ^/re/[0-9]+$
    @post method POST
    @hdr header X-Kind hdr
    @absent {{
        path /absent
        header !X-Kind
    }}
    @hdrre header_regexp X-Token ^tok-[a-z]+$
    @q query kind=q kind=qq
    @host host other.test *.wild.test
    @https {{
        path /proto
        protocol https
    }}
    @h11 {{
        path /proto
        protocol http/1.1
    }}
    @far {{
        path /ip
        client_ip 10.0.0.0/8
    }}
    @local {{
        path /ip
        remote_ip 127.0.0.1 ::1
    }}
    @cip client_ip private_ranges
    @notadmin {{
        path /n/*
        not path /n/admin*
    }}
    @static {{
        path /index.txt
        header X-Static yes
    }}
    @fn {{
        path /fn/*
        method PUT
    }}
    root * ./public
    route {{
        respond @hdr "header"
        respond @absent "absent"
        respond @hdrre "header_regexp"
        respond @q "query"
        respond @host "host"
        respond @path "path"
        respond @re "path_regexp"
        respond @post "method"
        respond @https "https"
        respond @h11 "protocol"
        respond @far "far"
        respond @local "remote_ip"
        respond @notadmin "not"
    }}
    handle @cip {{
        respond /cip "client_ip"
    }}
    file_server @static
    gojinn @fn {} {{
        args echo
    }}"#,
        guest().display()
    );
    let s = serve("site-named", &body);
    let get = |path: &str, headers: &[(&str, &str)]| {
        let r = s.request("GET", path, headers, b"");
        (r.status, r.text())
    };
    let ok = |text: &str| (200, text.to_owned());
    assert_eq!(get("/x", &[("X-Kind", "hdr")]), ok("header"));
    assert_eq!(get("/absent", &[]), ok("absent"));
    assert_ne!(get("/absent", &[("X-Kind", "other")]), ok("absent"));
    assert_eq!(get("/x", &[("X-Token", "tok-abc")]), ok("header_regexp"));
    assert_eq!(get("/x", &[("X-Token", "tok-ABC")]).0, 404);
    assert_eq!(get("/x?kind=qq", &[]), ok("query"));
    assert_eq!(get("/x?kind=z", &[]).0, 404);
    let host = |h: &str| {
        let r =
            s.raw(format!("GET /x HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n").as_bytes());
        (r.status, r.text())
    };
    assert_eq!(host("other.test"), ok("host"));
    assert_eq!(host("a.wild.test:1234"), ok("host"));
    assert_eq!(host("a.b.wild.test").0, 404, "`*` is one label");
    assert_eq!(get("/P/a", &[]), ok("path"), "paths are case-insensitive");
    assert_eq!(get("/re/42", &[]), ok("path_regexp"));
    assert_eq!(get("/re/4x", &[]).0, 404);
    assert_eq!(s.request("POST", "/m", &[], b"").text(), "method");
    assert_eq!(get("/proto", &[]), ok("protocol"), "cleartext HTTP/1.1");
    assert_eq!(get("/ip", &[]), ok("remote_ip"));
    assert_eq!(get("/cip", &[]), ok("client_ip"));
    assert_eq!(get("/n/x", &[]), ok("not"));
    assert_eq!(get("/n/admin/x", &[]).0, 404);
    assert_eq!(get("/index.txt", &[("X-Static", "yes")]), ok("static file"));
    assert_eq!(
        get("/index.txt", &[]).0,
        404,
        "file_server only for @static"
    );
    let r = s.request("PUT", "/fn/call?a=1", &[], b"payload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["uri"], "/fn/call?a=1");
    assert_eq!(s.request("GET", "/fn/call", &[], b"").status, 404);
}

#[test]
fn header_sets_adds_defers_replaces_and_request_header_changes_what_a_function_sees() {
    let g = guest().display().to_string();
    let body = format!(
        r#"
    header X-Frame-Options DENY
    header X-Single early
    header /h/* {{
        +X-Added yes
        >X-Multi z
        ?X-Default dflt
        ?X-Single never
        X-Single o(n)e 0$1
        -X-Drop-*
    }}
    @json header Accept *json*
    header @json X-Json "for {{path}}"
    request_header X-Seen "from {{method}} {{query.q}}"
    request_header -X-Drop
    request_header +X-Two second
    route {{
        respond /plain "plain"
        gojinn /h/* {g} {{
            args headers
        }}
        gojinn /echo {g} {{
            args echo
        }}
    }}"#
    );
    let s = serve("site-header", &body);
    let r = s.get("/plain");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-single"), Some("early"));
    assert_eq!(r.header("x-added"), None, "`header /h/*` only there");
    let r = s.request("GET", "/plain", &[("Accept", "application/json")], b"");
    assert_eq!(
        r.header("x-json"),
        Some("for /plain"),
        "placeholder in a value"
    );

    // The guest answers `X-Multi: a, b` and `X-Single: one`.
    let r = s.get("/h/x");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-added"), Some("yes"));
    assert_eq!(
        r.header_all("x-multi"),
        vec!["z"],
        "`>` sets after the guest"
    );
    assert_eq!(r.header("x-default"), Some("dflt"));
    assert_eq!(
        r.header("x-single"),
        Some("0n"),
        "the guest's value wins over `header X-Single early`, then the replacement"
    );

    let r = s.request(
        "GET",
        "/echo?q=1",
        &[("X-Drop", "secret"), ("X-Two", "first")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = &r.json()["headers"];
    let text = headers.to_string();
    assert!(text.contains("from GET 1"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("x-drop"), "{text}");
    assert!(text.contains("first") && text.contains("second"), "{text}");
}

#[test]
fn redir_rewrite_and_uri_change_where_a_request_goes() {
    let body = format!(
        r#"
    redir /old /new permanent
    redir /moved https://example.test{{uri}}
    redir /page /new.html html
    redir /code /x 308
    rewrite /r/* /echo/r?from={{path}}&{{query}}
    rewrite /keep /echo/keep
    @cap path_regexp item ^/item/([0-9]+)$
    rewrite @cap /echo/item?id={{re.item.1}}
    uri /strip/* strip_prefix /strip
    uri /suffix/* strip_suffix .html
    uri /repl/* replace /a/ /b/ 1
    uri /re/* path_regexp ^/re/v([0-9]+)/(.*)$ /echo/v$1/$2
    gojinn {} {{
        args echo
    }}"#,
        guest().display()
    );
    let s = serve("site-redir", &body);
    let r = s.get("/old");
    assert_eq!((r.status, r.header("location")), (301, Some("/new")));
    let r = s.get("/moved?a=1");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("https://example.test/moved?a=1"))
    );
    let r = s.get("/page");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("url=/new.html"), "{}", r.text());
    assert_eq!(s.get("/code").status, 308);

    let uri = |path: &str| {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()["uri"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(uri("/r/a?k=v"), "/echo/r?from=/r/a&k=v");
    assert_eq!(
        uri("/keep?x=1"),
        "/echo/keep?x=1",
        "a path-only rewrite keeps the query"
    );
    assert_eq!(
        uri("/item/42"),
        "/echo/item?id=42",
        "regexp capture placeholder"
    );
    assert_eq!(uri("/strip/x?q"), "/x?q");
    assert_eq!(uri("/suffix/p.html"), "/suffix/p");
    assert_eq!(uri("/repl/a/a/"), "/repl/b/a/", "limit 1");
    assert_eq!(uri("/re/v2/x"), "/echo/v2/x");
    assert_eq!(uri("/untouched"), "/untouched");
}

#[test]
fn import_of_a_snippet_with_arguments_and_of_a_glob() {
    let dir = scratch("site-import");
    std::fs::create_dir_all(dir.join("sites")).expect("mkdir");
    std::fs::write(
        dir.join("sites/10-hello.caddy"),
        "respond /hello \"hello {args[0]}\"\n",
    )
    .expect("write");
    std::fs::write(dir.join("sites/20-fn.caddy"), "import fn /fn/* echo\n").expect("write");
    std::fs::write(dir.join("sites/README.txt"), "not imported").expect("write");
    let caddyfile = format!(
        "(security) {{\n    header X-Frame-Options {{args[0]}}\n    header X-Extra {{args[1:]}}\n}}\n\
         (fn) {{\n    gojinn {{args[0]}} {} {{\n        args {{args[1]}}\n    }}\n}}\n\
         {{\n    admin off\n}}\n:0 {{\n    import security DENY \"a b\"\n    import sites/*.caddy world\n}}\n",
        guest().display()
    );
    std::fs::write(dir.join("Caddyfile"), caddyfile).expect("write Caddyfile");
    let s = Server::start(&dir.join("Caddyfile"), &[]);
    let r = s.get("/hello");
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-extra"), Some("a b"));
    let r = s.get("/fn/x?y=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["uri"],
        "/fn/x?y=1",
        "a snippet imported from a globbed file"
    );
}

#[test]
fn handle_errors_renders_a_404_and_a_functions_502() {
    let dir = scratch("site-errors");
    std::fs::create_dir_all(dir.join("public/files")).expect("mkdir");
    std::fs::write(dir.join("public/404.html"), "<h1>no such file</h1>").expect("write");
    std::fs::write(dir.join("public/files/here.txt"), "here").expect("write");
    let caddyfile = format!(
        r#"{{
    admin off
}}
:0 {{
    root * ./public
    route {{
        gojinn /boom {} {{
            args panic
        }}
        respond /ok "fine"
        file_server /files/*
    }}
    handle_errors 5xx {{
        respond "oops {{err.status_code}} {{err.status_text}}: {{err.message}}"
    }}
    handle_errors 404 {{
        header X-Error handled
        @files path /files/*
        handle @files {{
            rewrite * /{{err.status_code}}.html
            file_server
        }}
        respond "{{err.status_code}} {{err.status_text}} at {{path}}"
    }}
}}
"#,
        guest().display()
    );
    std::fs::write(dir.join("Caddyfile"), caddyfile).expect("write Caddyfile");
    let s = Server::start(&dir.join("Caddyfile"), &[]);
    let r = s.get("/ok");
    assert_eq!(
        (r.status, r.text().as_str(), r.header("x-error")),
        (200, "fine", None)
    );
    let r = s.get("/missing");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "404 Not Found at /missing")
    );
    assert_eq!(r.header("x-error"), Some("handled"));
    let r = s.get("/files/nope.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "<h1>no such file</h1>")
    );
    assert_eq!(s.get("/files/here.txt").text(), "here");
    let r = s.get("/boom");
    assert_eq!(
        (r.status, r.text().as_str()),
        (502, "oops 502 Bad Gateway: function failed")
    );
}

/// Standard base64 (the test crate has no base64 dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `gojinn hash-password` with `args`, and `stdin` piped in.
fn hash_password(args: &[&str], stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .arg("hash-password")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gojinn hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("hash-password");
    assert!(out.status.success(), "hash-password failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn basic_auth_lets_the_right_user_in_and_refuses_a_wrong_password_and_an_unknown_user() {
    let alice = hash_password(&["--plaintext", "s3cret", "--cost", "4"], "");
    assert!(alice.starts_with("$2a$04$"), "{alice}");
    // From stdin, written base64-encoded as older Caddy versions did.
    let bob = base64(hash_password(&["--cost", "4"], "hunter2\n").as_bytes());
    let body = format!(
        "    basic_auth /private/* bcrypt \"Staff only\" {{\n        alice {alice}\n        bob {bob}\n    }}\n    respond \"ok {{path}} {{http.auth.user.id}}\""
    );
    let s = serve("site-basic-auth", &body);
    let get = |auth: Option<&str>| {
        let header = auth.map(|a| format!("Basic {}", base64(a.as_bytes())));
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("Authorization", h)])
            .unwrap_or_default();
        s.request("GET", "/private/x", &headers, b"")
    };
    let r = get(None);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"Staff only\"")
    );
    assert_eq!(get(Some("alice:s3cret")).text(), "ok /private/x alice");
    assert_eq!(get(Some("alice:s3cret")).status, 200, "again, remembered");
    assert_eq!(get(Some("bob:hunter2")).status, 200, "base64 hash form");
    assert_eq!(get(Some("alice:wrong")).status, 401);
    assert_eq!(get(Some("mallory:s3cret")).status, 401, "unknown user");
    assert_eq!(
        get(Some("bob:s3cret")).status,
        401,
        "another user's password"
    );
    assert_eq!(
        s.get("/public").text(),
        "ok /public ",
        "outside the matcher"
    );
}
