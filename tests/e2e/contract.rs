use crate::harness::{guest_route, Server};

#[test]
fn request_reaches_the_guest_in_the_exact_contract_shape() {
    let s = Server::with_routes("contract-echo", &guest_route("/echo/*", "echo", ""));
    let r = s.request(
        "POST",
        "/echo/path?a=1&b=two",
        &[
            ("x-custom", "first"),
            ("X-CUSTOM", "second"),
            ("content-type", "application/json"),
            ("x-request-id", "req-42"),
        ],
        br#"{"hello":"world"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let req: serde_json::Value = serde_json::from_str(&r.text()).expect("echoed request json");
    assert_eq!(req["method"], "POST");
    assert_eq!(req["uri"], "/echo/path?a=1&b=two");
    assert_eq!(req["body"], r#"{"hello":"world"}"#);
    assert_eq!(
        req["headers"]["X-Custom"],
        serde_json::json!(["first", "second"])
    );
    assert_eq!(
        req["headers"]["Content-Type"],
        serde_json::json!(["application/json"])
    );
    assert_eq!(
        req["trace_id"], "req-42",
        "X-Request-Id is the trace id when no traceparent"
    );
    assert!(
        req.get("body_base64").is_none(),
        "only for non-UTF-8 bodies"
    );
    assert!(
        req["headers"].get("Host").is_none(),
        "Go keeps Host out of the header map"
    );
}

#[test]
fn trace_id_prefers_traceparent_then_request_id_then_a_fresh_traceparent() {
    let s = Server::with_routes("contract-trace", &guest_route("/*", "echo", ""));
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let echoed = |headers: &[(&str, &str)]| -> String {
        let r = s.request("GET", "/", headers, b"");
        let req: serde_json::Value = serde_json::from_str(&r.text()).expect("json");
        req["trace_id"]
            .as_str()
            .expect("trace_id string")
            .to_owned()
    };
    assert_eq!(echoed(&[("traceparent", tp), ("x-request-id", "r1")]), tp);
    assert_eq!(echoed(&[("x-request-id", "r1")]), "r1");
    let fresh = echoed(&[]);
    let parts: Vec<&str> = fresh.split('-').collect();
    assert_eq!(parts.len(), 4, "{fresh}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len(), parts[3]),
        ("00", 32, 16, "01")
    );
    assert!(parts[1].chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(fresh, echoed(&[]), "each request gets its own id");
    // The guest's stderr reaches the log with the trace id and route.
    let line = s
        .wait_for_log(|l| l.contains("echo guest") && l.contains(tp))
        .expect("guest stderr line with trace id");
    assert!(line.contains("\"route\":\"/*\""), "{line}");
}

#[test]
fn response_headers_keep_every_value_and_accept_the_string_form() {
    let s = Server::with_routes("contract-headers", &guest_route("/*", "headers", ""));
    let r = s.get("/");
    assert_eq!(r.status, 201);
    assert_eq!(r.header_all("x-multi"), ["a", "b"]);
    assert_eq!(r.header_all("x-single"), ["one"]);
    assert_eq!(r.text(), "ok");
}

#[test]
fn go_encoder_output_with_trailing_newline_and_no_status_is_200() {
    let s = Server::with_routes("contract-go", &guest_route("/*", "go-style", ""));
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "go");
}

#[test]
fn binary_bodies_round_trip_exactly_through_body_base64() {
    let s = Server::with_routes("contract-binary", &guest_route("/*", "binary", ""));
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    let r = s.request("POST", "/", &[], &bytes);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes);
    // UTF-8 bodies still arrive as text in `body`.
    let r = s.request("POST", "/", &[], "héllo".as_bytes());
    assert_eq!(r.text(), "héllo");
}
