//! The upstreams of one handler, their health and load, and `lb_policy`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use gojinn_config::proxy::{status_covers, LbPolicy};
use gojinn_config::ReverseProxy;
use http::StatusCode;
use rand::Rng;

use crate::ClientInfo;

/// One upstream and what is known of it.
pub(crate) struct Host {
    /// `host:port`.
    pub(crate) dial: String,
    /// Requests in flight (until their response body ends).
    in_flight: AtomicUsize,
    /// Failures remembered by the passive checks (each forgotten after
    /// `fail_duration`).
    fails: AtomicU32,
    /// The last active check passed (true until one fails, as in Caddy).
    pub(crate) healthy: AtomicBool,
}

impl Host {
    /// Counts a request in flight until the guard drops.
    pub(crate) fn start(self: &Arc<Host>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }

    fn available(&self, cfg: &ReverseProxy) -> bool {
        let passive = &cfg.passive_health;
        self.healthy.load(Relaxed)
            && (passive.fail_duration_ms == 0 || self.fails.load(Relaxed) < passive.max_fails)
            && (passive.unhealthy_request_count == 0
                || self.in_flight.load(Relaxed) < passive.unhealthy_request_count as usize)
    }
}

/// A request in flight on a [`Host`].
pub(crate) struct InFlight(Arc<Host>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// The upstreams of a handler.
pub(crate) struct Pool {
    pub(crate) hosts: Vec<Arc<Host>>,
    /// `round_robin`'s turn.
    next: AtomicUsize,
}

impl Pool {
    pub(crate) fn new(cfg: &ReverseProxy) -> Pool {
        Pool {
            hosts: cfg
                .upstreams
                .iter()
                .map(|u| {
                    Arc::new(Host {
                        dial: u.dial.clone(),
                        in_flight: AtomicUsize::new(0),
                        fails: AtomicU32::new(0),
                        healthy: AtomicBool::new(true),
                    })
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The upstream for a request by the handler's `lb_policy`, among the
    /// available ones; `None` when none is.
    pub(crate) fn select(
        &self,
        cfg: &ReverseProxy,
        req: &http::request::Parts,
        client: &ClientInfo,
    ) -> Option<Arc<Host>> {
        let up = |h: &&Arc<Host>| h.available(cfg);
        let picked = match &cfg.lb_policy {
            LbPolicy::Random => self.random(cfg),
            LbPolicy::First => self.hosts.iter().find(up),
            LbPolicy::RoundRobin => {
                let n = self.hosts.len();
                let start = self.next.fetch_add(1, Relaxed);
                (0..n)
                    .filter_map(|i| self.hosts.get((start + i) % n))
                    .find(up)
            }
            LbPolicy::LeastConn => {
                let least = self
                    .hosts
                    .iter()
                    .filter(up)
                    .map(|h| h.in_flight.load(Relaxed))
                    .min()?;
                let ties: Vec<&Arc<Host>> = self
                    .hosts
                    .iter()
                    .filter(up)
                    .filter(|h| h.in_flight.load(Relaxed) == least)
                    .collect();
                ties.get(rand::rng().random_range(0..ties.len())).copied()
            }
            LbPolicy::IpHash => self.hashed(cfg, &client.remote.ip().to_canonical()),
            LbPolicy::UriHash => {
                self.hashed(cfg, &req.uri.path_and_query().map_or("/", |pq| pq.as_str()))
            }
            LbPolicy::Header { field } => match req.headers.get(field.as_str()) {
                Some(v) => self.hashed(cfg, &v.as_bytes()),
                None => self.random(cfg),
            },
        };
        picked.cloned()
    }

    fn random(&self, cfg: &ReverseProxy) -> Option<&Arc<Host>> {
        let count = self.hosts.iter().filter(|h| h.available(cfg)).count();
        if count == 0 {
            return None;
        }
        let k = rand::rng().random_range(0..count);
        self.hosts.iter().filter(|h| h.available(cfg)).nth(k)
    }

    /// Rendezvous (highest random weight) hashing, as Caddy's hash policies: a
    /// key keeps its upstream while that one is available, and only the keys
    /// of an upstream that goes away move.
    fn hashed(&self, cfg: &ReverseProxy, key: &impl Hash) -> Option<&Arc<Host>> {
        self.hosts
            .iter()
            .filter(|h| h.available(cfg))
            .max_by_key(|h| {
                // `DefaultHasher::new` has fixed keys: the same weights in
                // every process, so several gojinn nodes agree.
                let mut s = DefaultHasher::new();
                key.hash(&mut s);
                h.dial.hash(&mut s);
                s.finish()
            })
    }

    /// Whether a response counts as a failure for the passive checks.
    pub(crate) fn unhealthy_response(
        &self,
        status: StatusCode,
        latency: Duration,
        cfg: &ReverseProxy,
    ) -> bool {
        let p = &cfg.passive_health;
        p.fail_duration_ms > 0
            && (p
                .unhealthy_status
                .iter()
                .any(|s| status_covers(*s, status.as_u16()))
                || p.unhealthy_latency_ms
                    .is_some_and(|ms| latency > Duration::from_millis(ms)))
    }

    /// Remembers a failure of `host` for `fail_duration` (passive checks on).
    pub(crate) fn count_failure(&self, host: &Arc<Host>, cfg: &ReverseProxy) {
        let p = &cfg.passive_health;
        if p.fail_duration_ms == 0 {
            return;
        }
        let fails = host.fails.fetch_add(1, Relaxed) + 1;
        if fails == p.max_fails {
            tracing::warn!(target: "gojinn::proxy", upstream = %host.dial, fails, "upstream unavailable: max_fails reached within fail_duration");
        }
        let host = host.clone();
        let forget = Duration::from_millis(p.fail_duration_ms);
        tokio::spawn(async move {
            tokio::time::sleep(forget).await;
            host.fails.fetch_sub(1, Relaxed);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use gojinn_config::proxy::{PassiveHealth, Transport, Upstream};

    fn config(policy: LbPolicy, n: usize) -> ReverseProxy {
        ReverseProxy {
            upstreams: (0..n)
                .map(|i| Upstream {
                    dial: format!("10.0.0.{i}:80"),
                })
                .collect(),
            lb_policy: policy,
            lb_try_duration_ms: 0,
            lb_try_interval_ms: 250,
            lb_retries: 0,
            active_health: None,
            passive_health: PassiveHealth::default(),
            flush_interval_ms: None,
            trusted_proxies: Vec::new(),
            header_up: Vec::new(),
            header_down: Vec::new(),
            transport: Transport::default(),
            origin: None,
        }
    }

    fn request(uri: &str, header: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder().uri(uri);
        if let Some(v) = header {
            b = b.header("x-user", v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn client(ip: &str) -> ClientInfo {
        ClientInfo {
            remote: format!("{ip}:5000").parse().unwrap(),
            tls: false,
        }
    }

    fn pick(pool: &Pool, cfg: &ReverseProxy, uri: &str, ip: &str) -> Option<String> {
        pool.select(cfg, &request(uri, None), &client(ip))
            .map(|h| h.dial.clone())
    }

    #[test]
    fn round_robin_takes_turns_and_skips_the_unavailable() {
        let cfg = config(LbPolicy::RoundRobin, 3);
        let pool = Pool::new(&cfg);
        let turns: Vec<_> = (0..6)
            .map(|_| pick(&pool, &cfg, "/", "1.1.1.1").unwrap())
            .collect();
        assert_eq!(turns[..3], turns[3..]);
        assert_eq!(
            turns.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
        pool.hosts[1].healthy.store(false, Relaxed);
        for _ in 0..6 {
            assert_ne!(pick(&pool, &cfg, "/", "1.1.1.1").unwrap(), "10.0.0.1:80");
        }
        for h in &pool.hosts {
            h.healthy.store(false, Relaxed);
        }
        assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1"), None);
    }

    #[test]
    fn first_takes_the_first_available() {
        let cfg = config(LbPolicy::First, 3);
        let pool = Pool::new(&cfg);
        assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1").unwrap(), "10.0.0.0:80");
        pool.hosts[0].healthy.store(false, Relaxed);
        assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1").unwrap(), "10.0.0.1:80");
    }

    #[test]
    fn least_conn_avoids_the_busy_one() {
        let cfg = config(LbPolicy::LeastConn, 2);
        let pool = Pool::new(&cfg);
        let _busy = pool.hosts[0].start();
        for _ in 0..10 {
            assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1").unwrap(), "10.0.0.1:80");
        }
    }

    #[test]
    fn hash_policies_keep_a_key_on_its_upstream_and_move_only_the_lost_ones() {
        for policy in [LbPolicy::IpHash, LbPolicy::UriHash] {
            let cfg = config(policy.clone(), 4);
            let pool = Pool::new(&cfg);
            let keys: Vec<String> = (0..40).map(|i| format!("{i}")).collect();
            let place = |k: &str| {
                let uri = format!("/item/{k}");
                let ip = format!("192.0.2.{k}");
                pick(&pool, &cfg, &uri, &ip).unwrap()
            };
            let before: Vec<String> = keys.iter().map(|k| place(k)).collect();
            assert_eq!(before, keys.iter().map(|k| place(k)).collect::<Vec<_>>());
            assert!(
                before
                    .iter()
                    .collect::<std::collections::HashSet<_>>()
                    .len()
                    > 1
            );
            pool.hosts[2].healthy.store(false, Relaxed);
            for (k, was) in keys.iter().zip(&before) {
                let now = place(k);
                if was != "10.0.0.2:80" {
                    assert_eq!(&now, was, "{policy:?}: key {k} moved");
                } else {
                    assert_ne!(now, "10.0.0.2:80");
                }
            }
        }
    }

    #[test]
    fn header_policy_hashes_the_header_and_falls_back_to_random() {
        let cfg = config(
            LbPolicy::Header {
                field: "X-User".to_owned(),
            },
            3,
        );
        let pool = Pool::new(&cfg);
        let by = |v: Option<&str>| {
            pool.select(&cfg, &request("/", v), &client("1.1.1.1"))
                .unwrap()
                .dial
                .clone()
        };
        let alice = by(Some("alice"));
        for _ in 0..10 {
            assert_eq!(by(Some("alice")), alice);
        }
        assert!(by(None).starts_with("10.0.0."));
    }

    #[test]
    fn passive_limits_count_against_availability() {
        let mut cfg = config(LbPolicy::First, 2);
        cfg.passive_health.fail_duration_ms = 60_000;
        cfg.passive_health.max_fails = 2;
        cfg.passive_health.unhealthy_request_count = 1;
        let pool = Pool::new(&cfg);
        pool.hosts[0].fails.store(1, Relaxed);
        assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1").unwrap(), "10.0.0.0:80");
        pool.hosts[0].fails.store(2, Relaxed);
        assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1").unwrap(), "10.0.0.1:80");
        let _one = pool.hosts[1].start();
        assert_eq!(pick(&pool, &cfg, "/", "1.1.1.1"), None);
        assert!(
            pool.unhealthy_response(StatusCode::BAD_GATEWAY, Duration::ZERO, &{
                let mut c = cfg.clone();
                c.passive_health.unhealthy_status = vec![5];
                c
            })
        );
        assert!(!pool.unhealthy_response(StatusCode::OK, Duration::ZERO, &cfg));
    }
}
