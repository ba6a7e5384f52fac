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
