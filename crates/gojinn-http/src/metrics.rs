//! Prometheus metrics of the server, recorded on the request path.
//!
//! Every series is labelled with bounded values only: the route is the configured
//! matcher (see [`crate::App`]), the method is one of the standard nine or `OTHER`,
//! the status is its class (`2xx`). Two families keep Gojinn's names and labels
//! so its dashboards work: `gojinn_function_duration_seconds` (also by `path`,
//! the module file, and `status`, the three-digit code: at most 900 values) and
//! `gojinn_active_sandboxes{path}`. Handles are resolved once per route when the
//! app is loaded (or, for the request counters, on the first request of each
//! method and class), so recording a request is a few atomic adds: no label
//! lookup, no allocation, no lock.
//!
//! One [`Metrics`] is made per process (in `main`) and handed to every load of a
//! config, so that series survive a reload; nothing reaches it through a global.

use crate::error::FaultKind;
use gojinn_runtime::{Bounds, CacheStats, CallOutcome, Fault, SandboxReset, WASMTIME_VERSION};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Route label of requests that matched no route.
const UNMATCHED_ROUTE: &str = "(none)";

/// Methods with their own label value; anything else is `OTHER`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
];

/// Status classes, indexed by `status / 100 - 1`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Function wall time: from the request reaching the route to the response,
/// 50 µs to 60 s.
const DURATION_BUCKETS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Instantiation (a pooled slot with copy-on-write memory is tens of µs): 5 µs to 1 s.
const INSTANTIATE_BUCKETS_NS: &[u64] = &[
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Module compile time (a cache hit is milliseconds, a big module seconds).
const COMPILE_BUCKETS_NS: &[u64] = &[
    1_000_000,
    5_000_000,
    25_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// Guest memory high-water mark: one wasm page (64 KiB) to 4 GiB, by fours.
const MEMORY_BUCKETS_BYTES: &[u64] = &[
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    64 << 20,
    256 << 20,
    1 << 30,
    4 << 30,
];

/// Observations in nanoseconds are divided by this to give seconds.
const NANOS: f64 = 1e9;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The labels of `gojinn_function_duration_seconds`: ours (`route`) and
/// Gojinn's (`path`, `status`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: String,
    path: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    route: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResetLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DomainLabels {
    domain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    wasmtime: &'static str,
}

/// The server's metric families and the registry that exposes them. Cheap to
/// clone: clones share the registry and every series.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

/// The families of [`Metrics`].
struct Families {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    instantiate: Family<RouteLabels, Histogram, fn() -> Histogram>,
    memory: Family<RouteLabels, Histogram, fn() -> Histogram>,
    grows: Family<RouteLabels, Counter>,
    checked: Family<RouteLabels, Gauge>,
    in_flight: Family<RouteLabels, Gauge>,
    active: Family<PathLabels, Gauge>,
    faults: Family<FaultLabels, Counter>,
    abandoned: Family<RouteLabels, Counter>,
    compile: Histogram,
    cache_hits: Counter,
    cache_misses: Counter,
    reset: Family<ResetLabels, Gauge>,
    cert_expiry: Family<DomainLabels, Gauge>,
    cert_obtained: Family<DomainLabels, Counter>,
    cert_failures: Family<DomainLabels, Counter>,
    job_depth: Family<TargetLabels, Gauge>,
    job_attempts: Family<AttemptLabels, Counter>,
    job_refused: Family<TargetLabels, Counter>,
    job_duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    cron_lateness: Histogram,
    unmatched: RequestCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every family of the server registered, and no series yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "gojinn_requests",
            "HTTP requests answered, by route, method and status class",
            requests.clone(),
        );
        let duration: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS_NS, NANOS));
        registry.register(
            "gojinn_function_duration_seconds",
            "Wall time of function requests, from routing to the response, by route, module path and status",
            duration.clone(),
        );
        let instantiate: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(INSTANTIATE_BUCKETS_NS, NANOS));
        registry.register(
            "gojinn_sandbox_instantiate_seconds",
            "Time to instantiate a sandbox (store and instance), by route",
            instantiate.clone(),
        );
        let in_flight = Family::<RouteLabels, Gauge>::default();
        registry.register(
            "gojinn_sandboxes_in_flight",
            "Function calls running or waiting for a sandbox, by route",
            in_flight.clone(),
        );
        let active = Family::<PathLabels, Gauge>::default();
        registry.register(
            "gojinn_active_sandboxes",
            "Function calls running or waiting for a sandbox, by module path (Gojinn's name)",
            active.clone(),
        );
        let faults = Family::<FaultLabels, Counter>::default();
        registry.register(
            "gojinn_faults",
            "Function calls that failed, by route and kind",
            faults.clone(),
        );
        let abandoned = Family::<RouteLabels, Counter>::default();
        registry.register(
            "gojinn_requests_abandoned",
            "Function requests whose client closed the connection before the answer (their sandbox was dropped), by route",
            abandoned.clone(),
        );
        let memory: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(MEMORY_BUCKETS_BYTES, 1.0));
        registry.register(
            "gojinn_sandbox_memory_peak_bytes",
            "Largest linear memory a sandbox reached, by route",
            memory.clone(),
        );
        let grows = Family::<RouteLabels, Counter>::default();
        registry.register(
            "gojinn_sandbox_memory_grows",
            "Times guests grew their linear memory during a call, by route (each is an mprotect on guard pages)",
            grows.clone(),
        );
        let checked = Family::<RouteLabels, Gauge>::default();
        registry.register(
            "gojinn_sandbox_bounds_checked",
            "1 when the route's last call ran on code with explicit bounds checks (moved there because its calls grow memory), 0 on guard pages",
            checked.clone(),
        );
        let compile = Histogram::new(COMPILE_BUCKETS_NS, NANOS);
        registry.register(
            "gojinn_module_compile_seconds",
            "Time to compile (or load from the compile cache) one module",
            compile.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "gojinn_compile_cache_hits",
            "Modules loaded from the on-disk compile cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "gojinn_compile_cache_misses",
            "Modules compiled because the on-disk compile cache did not have them",
            cache_misses.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                wasmtime: WASMTIME_VERSION,
            })
            .set(1);
        registry.register(
            "gojinn_build_info",
            "Always 1; the labels name the gojinn and wasmtime versions",
            build,
        );
        let reset = Family::<ResetLabels, Gauge>::default();
        registry.register(
            "gojinn_sandbox_reset",
            "1 for how sandbox memory is reset between calls (pagemap_scan: only the pages a guest wrote; memset: a fixed prefix), 0 for the other",
            reset.clone(),
        );
        let cert_expiry = Family::<DomainLabels, Gauge>::default();
        registry.register(
            "gojinn_tls_certificate_expiry_seconds",
            "When the certificate served for a managed domain expires, in seconds since the Unix epoch",
            cert_expiry.clone(),
        );
        let cert_obtained = Family::<DomainLabels, Counter>::default();
        registry.register(
            "gojinn_tls_certificates_obtained",
            "Certificates this node obtained (first ones and renewals) for a managed domain",
            cert_obtained.clone(),
        );
        let cert_failures = Family::<DomainLabels, Counter>::default();
        registry.register(
            "gojinn_tls_renewal_failures",
            "Failed attempts to obtain or renew the certificate of a managed domain",
            cert_failures.clone(),
        );
        let job_depth = Family::<TargetLabels, Gauge>::default();
        registry.register(
            "gojinn_jobs_waiting",
            "Jobs queued or running, by target module (every node of a shared queue sees all of them)",
            job_depth.clone(),
        );
        let job_attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "gojinn_job_attempts",
            "Job attempts this node finished, by kind (cron, enqueue, async) and outcome (done, retry, dead, lost)",
            job_attempts.clone(),
        );
        let job_refused = Family::<TargetLabels, Counter>::default();
        registry.register(
            "gojinn_jobs_refused",
            "Jobs not queued because their target's queue held `queue_max` jobs, by target module",
            job_refused.clone(),
        );
        let job_duration: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS_NS, NANOS));
        registry.register(
            "gojinn_job_attempt_duration_seconds",
            "Wall time of a job attempt, by kind",
            job_duration.clone(),
        );
        let cron_lateness = Histogram::new(DURATION_BUCKETS_NS, NANOS);
        registry.register(
            "gojinn_cron_lateness_seconds",
            "From a cron tick's scheduled time to its job queued",
            cron_lateness.clone(),
        );
        let unmatched = RequestCounters {
            route: UNMATCHED_ROUTE.to_owned(),
            family: requests.clone(),
            counters: Default::default(),
        };
        Metrics(Arc::new(Families {
            registry: Arc::new(registry),
            requests,
            duration,
            instantiate,
            memory,
            grows,
            checked,
            in_flight,
            active,
            faults,
            abandoned,
            compile,
            cache_hits,
            cache_misses,
            reset,
            cert_expiry,
            cert_obtained,
            cert_failures,
            job_depth,
            job_attempts,
            job_refused,
            job_duration,
            cron_lateness,
            unmatched,
        }))
    }

    /// Records what the job workers tell (their event sink).
    pub fn record_job(&self, event: gojinn_jobs::worker::JobEvent<'_>) {
        use gojinn_jobs::worker::JobEvent;
        match event {
            JobEvent::Attempt {
                kind,
                outcome,
                elapsed,
                ..
            } => {
                self.0
                    .job_attempts
                    .get_or_create(&AttemptLabels {
                        kind: kind.as_str(),
                        outcome,
                    })
                    .inc();
                self.0
                    .job_duration
                    .get_or_create(&KindLabels {
                        kind: kind.as_str(),
                    })
                    .observe(nanos(elapsed));
            }
            JobEvent::CronFired { lateness, .. } => self.0.cron_lateness.observe(nanos(lateness)),
            JobEvent::Refused { target } => {
                self.0
                    .job_refused
                    .get_or_create(&TargetLabels {
                        target: target.to_owned(),
                    })
                    .inc();
            }
            JobEvent::Depth { target, jobs } => {
                self.0
                    .job_depth
                    .get_or_create(&TargetLabels {
                        target: target.to_owned(),
                    })
                    .set(i64::try_from(jobs).unwrap_or(i64::MAX));
            }
        }
    }

    /// Records what the certificate manager tells (its event sink).
    pub fn record_certificate(&self, event: gojinn_certs::CertEvent<'_>) {
        use gojinn_certs::CertEvent;
        let labels = |domain: &str| DomainLabels {
            domain: domain.to_owned(),
        };
        match event {
            CertEvent::Serving {
                domain,
                not_after,
                obtained,
            } => {
                let secs = not_after
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.0
                    .cert_expiry
                    .get_or_create(&labels(domain))
                    .set(i64::try_from(secs).unwrap_or(i64::MAX));
                if obtained {
                    self.0.cert_obtained.get_or_create(&labels(domain)).inc();
                }
            }
            CertEvent::Failed { domain } => {
                self.0.cert_failures.get_or_create(&labels(domain)).inc();
            }
            CertEvent::Dropped { domain } => {
                self.0.cert_expiry.remove(&labels(domain));
            }
        }
    }

    /// The registry, for the admin listener's `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.0.registry.clone()
    }

    /// Counters for requests that matched no route.
    pub(crate) fn unmatched(&self) -> &RequestCounters {
        &self.0.unmatched
    }

    /// Records what loading a config's modules measured.
    pub(crate) fn record_load(
        &self,
        compile_times: &[Duration],
        cache: CacheStats,
        reset: SandboxReset,
    ) {
        for method in [SandboxReset::PagemapScan, SandboxReset::Memset] {
            self.0
                .reset
                .get_or_create(&ResetLabels {
                    method: method.name(),
                })
                .set(i64::from(method == reset));
        }
        for t in compile_times {
            self.0.compile.observe(nanos(*t));
        }
        self.0.cache_hits.inc_by(cache.hits);
        self.0.cache_misses.inc_by(cache.misses);
    }

    /// Request counters of the route labelled `route`.
    pub(crate) fn requests(&self, route: &str) -> RequestCounters {
        RequestCounters {
            route: route.to_owned(),
            family: self.0.requests.clone(),
            counters: Default::default(),
        }
    }

    /// Handles for one function route; `module` is its module file.
    pub(crate) fn function(&self, route: &str, module: &std::path::Path) -> FunctionMetrics {
        let m = &*self.0;
        let labels = RouteLabels {
            route: route.to_owned(),
        };
        let path = module.display().to_string();
        FunctionMetrics {
            route: route.to_owned(),
            active: m
                .active
                .get_or_create(&PathLabels { path: path.clone() })
                .clone(),
            path,
            duration_family: m.duration.clone(),
            durations: Default::default(),
            instantiate: m.instantiate.get_or_create(&labels).clone(),
            memory: m.memory.get_or_create(&labels).clone(),
            grows: m.grows.get_or_create(&labels).clone(),
            checked: m.checked.get_or_create(&labels).clone(),
            in_flight: m.in_flight.get_or_create(&labels).clone(),
            fault_family: m.faults.clone(),
            faults: Default::default(),
            abandoned_family: m.abandoned.clone(),
            abandoned: OnceLock::new(),
        }
    }
}

/// `gojinn_requests_total` handles of one route, made on first use of each
/// method and class so that only series that happened are exposed.
pub(crate) struct RequestCounters {
    route: String,
    family: Family<RequestLabels, Counter>,
    counters: [[OnceLock<Counter>; CLASSES.len()]; METHODS.len()],
}

impl RequestCounters {
    /// Counts one answered request.
    pub(crate) fn record(&self, method: &http::Method, status: http::StatusCode) {
        let m = method_index(method);
        let c = usize::from(status.as_u16() / 100)
            .saturating_sub(1)
            .min(CLASSES.len() - 1);
        self.counters[m][c]
            .get_or_init(|| {
                self.family
                    .get_or_create(&RequestLabels {
                        route: self.route.clone(),
                        method: METHODS[m],
                        class: CLASSES[c],
                    })
                    .clone()
            })
            .inc();
    }
}

fn method_index(method: &http::Method) -> usize {
    use http::Method;
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => 9,
    }
}

/// How many statuses of one route have a resolved duration handle; a route
/// answering with more distinct statuses looks the rest up in the family.
const DURATION_SLOTS: usize = 8;

/// The per-route handles of a function route.
pub(crate) struct FunctionMetrics {
    route: String,
    /// The module file, Gojinn's `path` label.
    path: String,
    duration_family: Family<DurationLabels, Histogram, fn() -> Histogram>,
    /// Duration handles by status, made on first use of each status.
    durations: [OnceLock<(u16, Histogram)>; DURATION_SLOTS],
    active: Gauge,
    instantiate: Histogram,
    memory: Histogram,
    grows: Counter,
    checked: Gauge,
    in_flight: Gauge,
    fault_family: Family<FaultLabels, Counter>,
    /// Made on first use of each kind, indexed by its place in [`FaultKind::ALL`].
    faults: [OnceLock<Counter>; FaultKind::ALL.len()],
    abandoned_family: Family<RouteLabels, Counter>,
    /// Made on first use, so routes no client left do not expose the series.
    abandoned: OnceLock<Counter>,
}

impl FunctionMetrics {
    /// Marks a call as in flight until the guard is dropped (also when the client
    /// goes away and the request future is dropped mid-call).
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        self.active.inc();
        InFlight(&self.in_flight, &self.active)
    }

    /// Records what the sandbox measured about one call.
    pub(crate) fn record_call<T>(&self, outcome: &CallOutcome<T>) {
        // An overloaded call never got a sandbox: nothing was instantiated.
        if !matches!(outcome.result, Err(Fault::Overload)) {
            self.instantiate.observe(nanos(outcome.instantiate_time));
        }
        // A call cut off by its deadline loses its store before the mark is read:
        // no data is better than a zero.
        if outcome.memory_peak > 0 {
            self.memory.observe(outcome.memory_peak);
            self.checked
                .set(i64::from(outcome.bounds == Bounds::Checked));
        }
        if outcome.memory_grows > 0 {
            self.grows.inc_by(u64::from(outcome.memory_grows));
        }
    }

    /// Records the wall time of a function request answered with `status`.
    pub(crate) fn record_duration(&self, elapsed: Duration, status: http::StatusCode) {
        let status = status.as_u16();
        let make = || {
            self.duration_family
                .get_or_create(&DurationLabels {
                    route: self.route.clone(),
                    path: self.path.clone(),
                    status,
                })
                .clone()
        };
        // The first statuses of a route claim a slot each; two threads racing
        // for one slot with different statuses both end in the family's series.
        for slot in &self.durations {
            let (s, h) = slot.get_or_init(|| (status, make()));
            if *s == status {
                h.observe(nanos(elapsed));
                return;
            }
        }
        make().observe(nanos(elapsed));
    }

    /// Counts a request whose client left before the answer.
    pub(crate) fn record_abandoned(&self) {
        self.abandoned
            .get_or_init(|| {
                self.abandoned_family
                    .get_or_create(&RouteLabels {
                        route: self.route.clone(),
                    })
                    .clone()
            })
            .inc();
    }

    /// Counts a failed call of `kind` (kinds that are not call faults, such as
    /// a body over its cap, are not counted here).
    pub(crate) fn record_fault(&self, kind: FaultKind) {
        if !kind.is_call_fault() {
            return;
        }
        let Some(i) = FaultKind::ALL.iter().position(|k| *k == kind) else {
            return;
        };
        self.faults[i]
            .get_or_init(|| {
                self.fault_family
                    .get_or_create(&FaultLabels {
                        route: self.route.clone(),
                        kind: kind.name(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// Decrements the in-flight gauges (by route, by module) when dropped.
pub(crate) struct InFlight<'a>(&'a Gauge, &'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
        self.1.dec();
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A histogram with atomic buckets over integer observations (nanoseconds or
/// bytes), scaled to base units when encoded. `prometheus-client`'s own histogram
/// takes a lock per observation; this one is lock-free, which matters because a
/// busy route observes from every worker thread at once.
#[derive(Clone, Debug)]
pub(crate) struct Histogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    /// Upper bounds, ascending, in the observation's unit.
    bounds: &'static [u64],
    /// Observation units per base unit (1e9 for nanoseconds to seconds). A
    /// divisor rather than a factor, so bounds print exactly (`30`, not
    /// `30.000000000000004`).
    per_unit: f64,
    /// Per-bucket counts (not cumulative); the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// Sum of observations, in the observation's unit.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64], per_unit: f64) -> Histogram {
        Histogram(Arc::new(HistogramInner {
            bounds,
            per_unit,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }))
    }

    fn observe(&self, v: u64) {
        let h = &*self.0;
        let i = h.bounds.partition_point(|b| *b < v);
        h.counts[i].fetch_add(1, Ordering::Relaxed);
        h.sum.fetch_add(v, Ordering::Relaxed);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &*self.0;
        let mut buckets = Vec::with_capacity(h.counts.len());
        let mut count = 0;
        for (i, c) in h.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count += n;
            let bound = h.bounds.get(i).map_or(f64::MAX, |b| *b as f64 / h.per_unit);
            buckets.push((bound, n));
        }
        let sum = h.sum.load(Ordering::Relaxed) as f64 / h.per_unit;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_bounds_inclusive() {
        let h = Histogram::new(&[10, 20], 1.0);
        for v in [0, 10, 11, 20, 21, 1000] {
            h.observe(v);
        }
        let counts: Vec<u64> =
            h.0.counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
        assert_eq!(counts, [2, 2, 2]);
        assert_eq!(h.0.sum.load(Ordering::Relaxed), 1062);
    }

    #[test]
    fn status_classes_and_methods_are_bounded() {
        assert_eq!(method_index(&http::Method::GET), 0);
        let odd = http::Method::from_bytes(b"BREW").expect("valid method");
        assert_eq!(METHODS[method_index(&odd)], "OTHER");
    }
}
