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
    // The limit is below the guest's first 8 MiB allocation, so the call fails
    // without writing it: under `pagemap_scan` every pool slot that ran a call
    // keeps what it wrote resident (by design, up to 32 MiB a slot), and which
    // slots a run of sequential calls lands on varies, so a large write here
    // would add 8 MiB steps that say nothing about the server's own memory.
    routes.push_str(&guest_route(
        "/grow",
        "grow",
        "            memory_limit 4MB",
    ));
    routes.push_str(&guest_route("/bad", "text-after", ""));
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

#[test]
fn a_burst_of_ten_times_capacity_is_shed_with_503_then_fully_served_again() {
    // Capacity 4 (pool_size); each call holds its slot for 1.5 s (`nap`), far longer
    // than the 200 ms a request may queue for a slot.
    let s = Server::with_routes(
        "load-burst",
        &guest_route("/nap", "nap", "            pool_size 4"),
    );
    let warm = s.get("/nap");
    assert_eq!(warm.status, 200);
    let before = s.rss_kib();
    let order = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..40 {
            scope.spawn(|| {
                let r = s.get("/nap");
                let retry_after = r.header("retry-after").map(str::to_owned);
                order
                    .lock()
                    .expect("order lock")
                    .push((r.status, retry_after));
            });
        }
    });
    let order = order.into_inner().expect("order lock");
    let ok = order.iter().filter(|(st, _)| *st == 200).count();
    let shed = order.iter().filter(|(st, _)| *st == 503).count();
    assert_eq!(ok + shed, 40, "only 200 or 503 expected: {order:?}");
    assert!(ok >= 4, "at least the 4 slots must serve: {order:?}");
    assert!(shed >= 20, "most of a 10x burst must be shed: {order:?}");
    // Shedding is quick: every 503 came back before the first admitted call
    // finished its nap.
    let first_ok = order.iter().position(|(st, _)| *st == 200).expect("a 200");
    let last_shed = order.iter().rposition(|(st, _)| *st == 503).expect("a 503");
    assert!(last_shed < first_ok, "a 503 waited for a nap: {order:?}");
    for (status, retry_after) in &order {
        if *status == 503 {
            assert_eq!(retry_after.as_deref(), Some("1"));
        }
    }
    let after = s.rss_kib();
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB over one burst"
    );
    // Full recovery: the 4 slots serve again.
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| s.get("/nap").status))
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("client"), 200);
        }
    });
}
