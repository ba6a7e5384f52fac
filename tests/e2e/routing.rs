//! How a URL finds its handler: Caddy's `handle` ordering and exclusivity,
//! `handle_path` stripping, `route` order, `respond`, `file_server`, and sites
//! chosen by `Host`.

use crate::harness::{guest, scratch, Server};

fn get_with_host(s: &Server, host: &str, path: &str) -> crate::harness::Resp {
    s.raw(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
}

#[test]
fn handle_blocks_are_most_specific_first_and_mutually_exclusive() {
    let s = Server::with_routes(
        "routing-handle",
        r#"
    handle /api/* {
        respond "api"
    }
    handle /api/v2/* {
        respond "v2"
    }
    handle {
        respond "fallback" 418
    }
    handle /exact {
        respond "exact" 201
    }"#,
    );
    let check = |path: &str, status: u16, body: &str| {
        let r = s.get(path);
        assert_eq!((r.status, r.text().as_str()), (status, body), "{path}");
    };
    check("/api/v2/x", 200, "v2");
    check("/API/V2/x", 200, "v2"); // case-insensitive, as in Caddy
    check("/api/x", 200, "api");
    check("/exact", 201, "exact");
    check("/exact/no", 418, "fallback");
    check("/", 418, "fallback");
}

#[test]
fn handle_path_strips_its_prefix_before_the_function_and_file_server_see_it() {
    let dir = scratch("routing-strip");
    std::fs::create_dir_all(dir.join("public/css")).expect("mkdir");
    std::fs::write(dir.join("public/css/site.css"), "body{}").expect("write");
    std::fs::write(
        dir.join("Caddyfile"),
        format!(
            "{{\n    admin off\n}}\n:0 {{\n    handle_path /fn/* {{\n        gojinn {} {{\n            args echo\n        }}\n    }}\n    handle_path /static/* {{\n        root ./public\n        file_server\n    }}\n}}\n",
            guest().display()
        ),
    )
    .expect("write Caddyfile");
    let s = Server::start(&dir.join("Caddyfile"), &[]);
    let r = s.get("/fn/inner/path?q=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let req: serde_json::Value = serde_json::from_str(&r.text()).expect("json");
    assert_eq!(req["uri"], "/inner/path?q=1");
    let r = s.get("/static/css/site.css");
    assert_eq!((r.status, r.text().as_str()), (200, "body{}"));
    assert_eq!(s.get("/static/css/missing.css").status, 404);
    assert_eq!(
        s.get("/static/../Caddyfile").status,
        404,
        "no escape from root"
    );
}

#[test]
fn route_keeps_written_order_and_first_match_answers() {
    let s = Server::with_routes(
        "routing-route",
        r#"
    route {
        respond /a* "first"
        respond /ab "never reached"
    }"#,
    );
    assert_eq!(s.get("/ab").text(), "first");
    assert_eq!(s.get("/zzz").status, 404);
}

#[test]
fn a_site_naming_the_host_wins_over_a_site_for_any_host() {
    let dir = scratch("routing-hosts");
    std::fs::write(
        dir.join("Caddyfile"),
        "{\n    admin off\n}\n:0 {\n    respond \"any\"\n}\nhttp://api.test:0, http://other.test:0 {\n    respond \"named\"\n}\n",
    )
    .expect("write");
    let s = Server::start(&dir.join("Caddyfile"), &[]);
    assert_eq!(get_with_host(&s, "api.test", "/").text(), "named");
    assert_eq!(get_with_host(&s, "OTHER.test:1234", "/").text(), "named");
    assert_eq!(get_with_host(&s, "elsewhere", "/").text(), "any");
}
