use crate::harness::{guest_route, Server};

#[test]
fn one_mib_request_and_four_mib_response_bodies() {
    let mut routes = guest_route("/measure", "measure", "");
    routes.push_str(&guest_route("/big", "big", ""));
    let s = Server::with_routes("load-bodies", &routes);
    let body: Vec<u8> = (0..(1 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    let v = s.request("POST", "/measure", &[], &body).json();
    assert_eq!(v["len"], 1 << 20);
    assert_eq!(v["sum"], sum);
    let r = s.get(&format!("/big?size={}", 4 << 20));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 4 << 20);
    assert!(r.body.iter().all(|&b| b == b'z'));
}

#[test]
fn two_hundred_fifty_six_concurrent_requests_without_cross_talk() {
    let s = Server::with_routes("load-256", &guest_route("/*", "echo", ""));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..256)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let id = format!("client-{i}");
                    let body = format!("body of {i} ").repeat(i % 7 + 1);
                    let r = s.request(
                        "POST",
                        &format!("/c/{i}?n={i}"),
                        &[("x-client", &id)],
                        body.as_bytes(),
                    );
                    assert_eq!(r.status, 200, "client {i}: {}", r.text());
                    let req: serde_json::Value = serde_json::from_str(&r.text()).expect("json");
                    assert_eq!(req["uri"], format!("/c/{i}?n={i}"));
                    assert_eq!(req["headers"]["X-Client"], serde_json::json!([id]));
                    assert_eq!(req["body"], body);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("client thread");
        }
    });
}

#[test]
fn memory_does_not_grow_with_faults() {
    let mut routes = guest_route("/panic", "panic", "");
    routes.push_str(&guest_route(
        "/grow",
        "grow",
        "            memory_limit 16MB",
    ));
    routes.push_str(&guest_route("/bad", "text-around", ""));
    let s = Server::with_routes("load-faults", &routes);
    let round = |n: usize| {
        for _ in 0..n {
            for path in ["/panic", "/grow", "/bad"] {
                assert_eq!(s.get(path).status, 502);
            }
        }
    };
    round(30); // warm-up: pool slots, allocator arenas, log buffers
    let before = s.rss_kib();
    round(150);
    let after = s.rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 450 faults"
    );
}
