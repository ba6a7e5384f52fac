//! The loaded application: every site's routes with their functions compiled, ready
//! to serve. Built completely before any socket is bound, from what
//! `gojinn-loader` makes of the config, with the process's long-lived
//! [`Services`].

use crate::conn::ConnOptions;
use crate::matcher::{Conditions, PathPattern};
use crate::metrics::{FunctionMetrics, Metrics, RequestCounters};
use crate::otel::Tracer;
use crate::tls::Certificates;
use gojinn_config::Config;
use gojinn_host::Stores;
use gojinn_loader::{
    LoadError, LoadNotice, Loaded, LoadedFunction, Mode, Node as Tree, Plan, RouteNode,
};
use gojinn_runtime::{Function, Runtime};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What outlives a config: made once per process (in `main`) and handed to
/// every load, so a reload keeps the stores and their locks, the metric series
/// and the tracer.
#[derive(Clone, Default)]
pub struct Services {
    /// The stores, reconciled by [`Stores::prune`] after each switch.
    pub stores: Arc<Stores>,
    /// The metrics registry.
    pub metrics: Metrics,
    /// Request spans are made with it when tracing is on.
    pub tracer: Option<Tracer>,
    /// The open log outputs; the sites' access logs write through them.
    pub logs: gojinn_log::Outputs,
    /// The certificate manager of the sites with managed TLS (ACME, `tls
    /// internal`); `None` where nothing is served (`gojinn validate`).
    pub certs: Option<gojinn_certs::Manager>,
    /// The job queues and their workers; `None` where nothing is served.
    pub jobs: Option<Arc<crate::jobs::JobQueues>>,
}

/// A configuration, loaded: sites grouped by port, functions compiled.
pub struct App {
    /// Configured port → the sites answering on it.
    pub(crate) ports: BTreeMap<u16, Vec<Arc<SiteRt>>>,
    /// TLS ports → their rustls config (certificate by SNI). A port absent here
    /// is cleartext. Looked up per accepted connection, so a reload changes the
    /// certificate of a kept port for the next handshake.
    pub(crate) tls: BTreeMap<u16, Arc<rustls::ServerConfig>>,
    /// Protocols and limits of the connections accepted while this app is current.
    pub(crate) conn: ConnOptions,
    /// Where requests that match no route are counted.
    pub(crate) metrics: Metrics,
    /// Request spans, when tracing is on.
    pub(crate) tracer: Option<Tracer>,
    /// What the load found worth telling the operator (logged by
    /// [`load`](Self::load); `gojinn validate` prints them).
    notices: Vec<LoadNotice>,
    /// The certificate manager, when any site's certificate is managed.
    pub(crate) certs: Option<gojinn_certs::Manager>,
    /// The names whose certificates are managed, with their issuers.
    managed: Vec<(String, gojinn_certs::IssuerSpec)>,
    /// What runs the jobs of each target (a module path).
    job_targets: std::collections::HashMap<String, Arc<FunctionRoute>>,
    /// The `cron` triggers of this config.
    crons: Vec<gojinn_loader::LoadedCron>,
    /// Kept alive for the functions' engine and its epoch ticker.
    _runtime: Runtime,
}

pub(crate) struct SiteRt {
    /// Hosts this site answers for on its ports; empty means any host.
    pub(crate) hosts: Vec<String>,
    pub(crate) routes: Vec<RouteRt>,
    /// `handle_errors` blocks.
    pub(crate) errors: Vec<ErrorRoutesRt>,
    /// The site's access log (`log`), if any.
    pub(crate) log: Option<Arc<crate::access::AccessLogger>>,
}

/// One `handle_errors` block, compiled.
pub(crate) struct ErrorRoutesRt {
    /// `404`, `4xx`, `5xx`…; empty for every status.
    pub(crate) status: Vec<String>,
    pub(crate) routes: Vec<RouteRt>,
}

pub(crate) struct RouteRt {
    pub(crate) group: Option<String>,
    pub(crate) matcher: Option<PathPattern>,
    /// A named matcher's conditions.
    pub(crate) conditions: Option<Conditions>,
    pub(crate) node: Node,
    /// `gojinn_requests_total` of this route (used when it is a leaf).
    pub(crate) requests: RequestCounters,
}

pub(crate) enum Node {
    Subroute {
        strip_prefix: Option<String>,
        routes: Vec<RouteRt>,
    },
    Respond {
        status: http::StatusCode,
        body: crate::placeholder::Template,
    },
    Files(Arc<crate::files::FileServer>),
    TryFiles(Arc<crate::try_files::TryFilesRt>),
    Function(Arc<FunctionRoute>),
    /// `header`, `request_header`, …: run on the way, see `site`.
    Site(crate::site::SiteNode),
    Proxy(Arc<ProxyRoute>),
    /// `encode`: not a leaf; compresses the answer of a later route.
    Encode(crate::encode::EncodeRt),
}

/// A `reverse_proxy` route.
pub(crate) struct ProxyRoute {
    pub(crate) proxy: gojinn_proxy::Proxy,
    /// The route's matcher as configured, for logs.
    pub(crate) label: Arc<str>,
}

/// One warning per import of a Gojinn function this server does not provide.
fn unavailable_import_warnings(functions: &[LoadedFunction]) -> Vec<LoadNotice> {
    functions
        .iter()
        .flat_map(|f| {
            f.function
                .unavailable_imports()
                .iter()
                .map(move |name| LoadNotice {
                    origin: None,
                    warning: true,
                    message: format!(
                        "module `{}` (route `{}`) imports `{name}`, a Gojinn host function this \
                     server does not provide: the module loads, and each call of `{name}` \
                     returns Gojinn's failure value and logs a warning",
                        f.module.display(),
                        f.label
                    ),
                })
        })
        .collect()
}

/// A `gojinn` route: the function plus what the HTTP side needs to know about it.
pub(crate) struct FunctionRoute {
    pub(crate) function: Function,
    /// The route's matcher as configured (a bounded label for logs, never the URI).
    pub(crate) label: Arc<str>,
    pub(crate) max_body_size: u64,
    /// The route's metric handles, resolved at load.
    pub(crate) metrics: FunctionMetrics,
    /// `debug_secret`: a request carrying it in `X-Gojinn-Debug` gets the guest's
    /// stderr back in `X-Gojinn-Logs`.
    pub(crate) debug_secret: Option<String>,
    /// The job queue and this route's job settings, for asynchronous requests.
    pub(crate) jobs: Option<(Arc<gojinn_jobs::Workers>, gojinn_host::JobPolicy)>,
    /// `record_crashes`: where failing calls are recorded.
    pub(crate) crashes: Option<gojinn_loader::CrashSpec>,
}

impl App {
    /// Compiles every function of `config` (in parallel) and builds the route
    /// tables, with stores, metrics and tracer from `services`. On failure,
    /// returns every error found, each starting with the `file:line:col` of its
    /// directive when known.
    pub fn load(config: &Config, services: &Services) -> Result<App, Vec<String>> {
        App::build(config, services, Mode::Serve)
    }

    /// [`load`](Self::load) with stores of its own that it never opens (the KV
    /// file, databases): what `gojinn validate` does, so it can run next to a
    /// serving process.
    pub fn check(config: &Config) -> Result<App, Vec<String>> {
        App::build(config, &Services::default(), Mode::Check)
    }

    fn build(config: &Config, services: &Services, mode: Mode) -> Result<App, Vec<String>> {
        let strings = |errors: Vec<LoadError>| errors.iter().map(ToString::to_string).collect();
        let plan = Plan::new(config, &services.stores);
        let managed = managed_names(config);
        let certs = match (&services.certs, managed.is_empty(), mode) {
            (_, true, _) | (_, _, Mode::Check) => None,
            (Some(m), false, Mode::Serve) => Some(m.clone()),
            (None, false, Mode::Serve) => {
                return Err(vec![
                    "sites with automatic HTTPS need a directory to keep their certificates in: \
                     set the `storage` global option (HOME is unset)"
                        .to_owned(),
                ])
            }
        };
        // Certificates are checked before anything compiles: a bad one fails fast.
        let certificates = Certificates::load(&config.sites, certs.clone());
        let (plan, certificates) = match (plan, certificates) {
            (Ok(plan), Ok(certificates)) => (plan, certificates),
            (plan, certificates) => {
                let mut errors: Vec<String> = plan.err().map(strings).unwrap_or_default();
                errors.extend(certificates.err().unwrap_or_default());
                return Err(errors);
            }
        };
        let loaded = plan.compile(mode).map_err(strings)?;
        services
            .metrics
            .record_load(&loaded.compile_times, loaded.cache, loaded.runtime.reset());
        let Loaded {
            functions,
            sites,
            errors,
            runtime,
            mut notices,
            job_targets,
            crons,
            ..
        } = loaded;
        notices.extend(unavailable_import_warnings(&functions));
        let logs = access_loggers(config, services, mode, &mut notices)?;
        if mode == Mode::Serve {
            for n in &notices {
                if n.warning {
                    tracing::warn!(target: "gojinn::load", "{n}");
                } else {
                    tracing::info!(target: "gojinn::load", "{n}");
                }
            }
        }
        // Each route's job queue (its site's `queue`), made now if new; a
        // `queue` that cannot be used fails the load.
        let mut queue_errors = Vec::new();
        let functions: Vec<Arc<FunctionRoute>> = functions
            .into_iter()
            .map(|f| {
                let workers = match (&services.jobs, mode) {
                    (Some(q), Mode::Serve) => q
                        .get(f.jobs.queue.as_deref())
                        .map_err(|e| queue_errors.push(e))
                        .ok(),
                    _ => None,
                };
                Arc::new(FunctionRoute::new(f, &services.metrics, workers))
            })
            .collect();
        if !queue_errors.is_empty() {
            queue_errors.dedup();
            return Err(queue_errors);
        }
        let job_targets = job_targets
            .into_iter()
            .filter_map(|(module, id)| {
                let route = functions.get(id.index())?.clone();
                Some((module.display().to_string(), route))
            })
            .collect();

        let mut ports: BTreeMap<u16, Vec<Arc<SiteRt>>> = BTreeMap::new();
        let mut proxies = Vec::new();
        // Proxies this server cannot build, each with its directive's place.
        let mut failures = Vec::new();
        for (((site, routes), errors), log) in config.sites.iter().zip(sites).zip(errors).zip(logs)
        {
            let mut rt = RtBuild {
                functions: &functions,
                metrics: &services.metrics,
                proxies: &mut proxies,
                errors: &mut failures,
            };
            let routes = rt.routes(routes);
            let errors = errors
                .into_iter()
                .map(|e| ErrorRoutesRt {
                    status: e.status,
                    routes: rt.routes(e.routes),
                })
                .collect();
            let hosts = site
                .addresses
                .iter()
                .filter_map(|a| a.host.as_ref().map(|h| h.to_ascii_lowercase()))
                .collect::<Vec<_>>();
            // A block with both host-specific and hostless addresses answers any host.
            let any_host = site.addresses.iter().any(|a| a.host.is_none());
            let rt = Arc::new(SiteRt {
                hosts: if any_host { Vec::new() } else { hosts },
                routes,
                errors,
                log,
            });
            for port in site.addresses.iter().map(|a| a.port) {
                let list = ports.entry(port).or_default();
                if !list.iter().any(|s| Arc::ptr_eq(s, &rt)) {
                    list.push(rt.clone());
                }
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        if mode == Mode::Serve {
            for p in &proxies {
                p.proxy.start_health_checks();
            }
        }
        let conn = ConnOptions::new(&config.server);
        let mut tls_sites: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (i, site) in config.sites.iter().enumerate() {
            if site.tls.is_some() {
                for port in site.addresses.iter().map(|a| a.port) {
                    let list = tls_sites.entry(port).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
        // The HTTP port answers ACME HTTP-01 validations even where no site
        // (and no redirect) is served on it.
        let http_validated = managed
            .iter()
            .any(|(_, spec)| matches!(spec, gojinn_certs::IssuerSpec::Acme(a) if a.http_challenge));
        if http_validated && mode == Mode::Serve {
            ports.entry(config.auto_https.http_port).or_default();
        }
        let mut tls = BTreeMap::new();
        for (port, on_port) in tls_sites {
            let config = certificates
                .server_config(&config.sites, &on_port, conn.h2)
                .map_err(|e| vec![e])?;
            tls.insert(port, config);
        }
        Ok(App {
            ports,
            tls,
            conn,
            metrics: services.metrics.clone(),
            tracer: services.tracer.clone(),
            notices,
            certs,
            managed,
            job_targets,
            crons,
            _runtime: runtime,
        })
    }

    /// Hands the managed names to the certificate manager: stored certificates
    /// are loaded (local ones issued) before this returns, and missing ones
    /// are ordered in the background. Call before serving this app; names of
    /// an app being replaced stay until [`retain_certificates`](Self::retain_certificates).
    pub async fn start_certificates(&self) {
        let Some(m) = &self.certs else { return };
        m.manage(self.managed.clone()).await;
        let internal = self
            .managed
            .iter()
            .any(|(_, spec)| *spec == gojinn_certs::IssuerSpec::Internal);
        if internal {
            match m.local_root().await {
                Ok((_, Some(path))) => {
                    tracing::info!(target: "gojinn::tls", root = %path.display(),
                    "sites with `tls internal` have certificates from the local CA: trust this root to trust them")
                }
                Ok((_, None)) => tracing::info!(target: "gojinn::tls",
                    "sites with `tls internal` have certificates from the local CA, whose root is in the shared storage"),
                Err(e) => {
                    tracing::error!(target: "gojinn::tls", error = %e, "the local CA is unavailable")
                }
            }
        }
    }

    /// What runs the jobs of `target` (a module path).
    pub(crate) fn job_target(&self, target: &str) -> Option<Arc<FunctionRoute>> {
        self.job_targets.get(target).cloned()
    }

    /// The longest deadline of any job target.
    pub(crate) fn longest_job_deadline(&self) -> std::time::Duration {
        self.job_targets
            .values()
            .map(|r| r.function.spec().timeout)
            .max()
            .unwrap_or_default()
    }

    /// Hands this config's `cron` triggers to the workers of their queues
    /// (replacing the old config's): call once it is the app being served.
    pub fn start_crons(&self, queues: Option<&crate::jobs::JobQueues>) {
        let Some(queues) = queues else { return };
        for c in &self.crons {
            // Makes the queue of a trigger whose route serves no request yet.
            if let Err(e) = queues.get(c.policy.queue.as_deref()) {
                tracing::error!(target: "gojinn::jobs", cron = %c.cron.spec, error = %e, "cron trigger not started");
            }
        }
        for (url, workers) in queues.all() {
            let entries = self
                .crons
                .iter()
                .filter(|c| c.policy.queue == url)
                .filter_map(|c| {
                    let schedule = gojinn_config::cron_schedule(&c.cron.spec).ok()?;
                    let target = c.cron.module.display().to_string();
                    Some(gojinn_jobs::CronEntry {
                        key: format!("{}|{}", c.cron.spec, target),
                        target,
                        next_after: Box::new(move |ms| {
                            let after =
                                chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
                            let next = schedule.next_after(after)?;
                            u64::try_from(next.timestamp_millis()).ok()
                        }),
                        catch_up_once: c.cron.catch_up == gojinn_config::CatchUp::Once,
                        max_attempts: c.policy.max_attempts,
                        backoff_ms: c.policy.backoff_ms,
                        queue_max: c.policy.queue_max,
                    })
                })
                .collect();
            workers.set_crons(entries);
        }
    }

    /// Forgets the managed names this app does not serve: call once it is the
    /// app being served.
    pub fn retain_certificates(&self, certs: Option<&gojinn_certs::Manager>) {
        if let Some(m) = certs {
            m.retain(&self.managed);
        }
    }

    /// What the load found worth telling the operator: Gojinn behaviours this
    /// config gets differently, each with the line that restores it.
    pub fn notices(&self) -> &[LoadNotice] {
        &self.notices
    }

    /// The site for a request on `port` with `host` (lower-case, without port):
    /// a site naming the host wins over a site for any host.
    pub(crate) fn site(&self, port: u16, host: Option<&str>) -> Option<&SiteRt> {
        let sites = self.ports.get(&port)?;
        host.and_then(|h| {
            sites
                .iter()
                .find(|s| s.hosts.iter().any(|x| x.eq_ignore_ascii_case(h)))
        })
        .or_else(|| sites.iter().find(|s| s.hosts.is_empty()))
        .map(|s| &**s)
    }
}

/// The names of the sites whose certificates are managed, lower-case, with
/// their issuers; a name in two sites keeps the first site's issuer.
fn managed_names(config: &Config) -> Vec<(String, gojinn_certs::IssuerSpec)> {
    use gojinn_config::{Issuer, Tls};
    let mut out: Vec<(String, gojinn_certs::IssuerSpec)> = Vec::new();
    for site in &config.sites {
        let Some(Tls::Managed(issuer)) = &site.tls else {
            continue;
        };
        let spec = match issuer {
            Issuer::Internal => gojinn_certs::IssuerSpec::Internal,
            Issuer::Acme(a) => gojinn_certs::IssuerSpec::Acme(gojinn_certs::AcmeSpec {
                directory: a
                    .dir
                    .clone()
                    .unwrap_or_else(|| gojinn_certs::LETS_ENCRYPT.to_owned()),
                email: a.email.clone(),
                ca_root: a.ca_root.clone(),
                eab: a
                    .eab
                    .as_ref()
                    .map(|e| (e.key_id.clone(), e.mac_key.clone())),
                http_challenge: !a.disable_http_challenge,
                tlsalpn_challenge: !a.disable_tlsalpn_challenge,
            }),
        };
        for host in site.addresses.iter().filter_map(|a| a.host.as_deref()) {
            let name = host.to_ascii_lowercase();
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, spec.clone()));
            }
        }
    }
    out
}

/// Each site's access logger, its output opened through the process's
/// outputs (`validate` opens none: its lines would go nowhere).
fn access_loggers(
    config: &Config,
    services: &Services,
    mode: Mode,
    notices: &mut Vec<LoadNotice>,
) -> Result<Vec<Option<Arc<crate::access::AccessLogger>>>, Vec<String>> {
    let mut out = Vec::with_capacity(config.sites.len());
    for log in config.sites.iter().map(|s| s.log.as_ref()) {
        let Some(log) = log else {
            out.push(None);
            continue;
        };
        let writer = if mode == Mode::Serve {
            let (writer, note) = services
                .logs
                .open(&log.output)
                .map_err(|e| vec![format!("{}{e}", origin_prefix(log.origin.as_deref()))])?;
            if let Some(message) = note {
                notices.push(LoadNotice {
                    origin: log.origin.clone(),
                    warning: true,
                    message,
                });
            }
            writer
        } else {
            gojinn_log::LineWriter::discard()
        };
        out.push(Some(Arc::new(crate::access::AccessLogger::new(
            log, writer,
        ))));
    }
    Ok(out)
}

/// `file:line:col: ` when the place is known.
fn origin_prefix(origin: Option<&str>) -> String {
    origin.map(|o| format!("{o}: ")).unwrap_or_default()
}

impl FunctionRoute {
    fn new(f: LoadedFunction, metrics: &Metrics, jobs: Option<Arc<gojinn_jobs::Workers>>) -> Self {
        FunctionRoute {
            jobs: jobs.map(|w| (w, f.jobs.clone())),
            crashes: f.crashes,
            metrics: metrics.function(&f.label, &f.module),
            function: f.function,
            label: f.label,
            max_body_size: f.max_body_size,
            debug_secret: f.debug_secret,
        }
    }
}

/// What building the serving form of the route trees needs and collects.
struct RtBuild<'a> {
    functions: &'a [Arc<FunctionRoute>],
    metrics: &'a Metrics,
    /// Every proxy made, for starting their health checks.
    proxies: &'a mut Vec<Arc<ProxyRoute>>,
    /// What could not be built (a proxy, a matcher's or handler's pattern),
    /// each with its place when known.
    errors: &'a mut Vec<String>,
}

impl RtBuild<'_> {
    /// The serving form of a site's route tree: path patterns and conditions
    /// compiled, request counters resolved, function ids replaced by their
    /// routes, proxies built.
    fn routes(&mut self, routes: Vec<RouteNode>) -> Vec<RouteRt> {
        let mut out = Vec::with_capacity(routes.len());
        for route in routes {
            let node = match route.node {
                Tree::Subroute {
                    strip_prefix,
                    routes,
                } => Node::Subroute {
                    strip_prefix,
                    routes: self.routes(routes),
                },
                Tree::Respond { status, body } => Node::Respond {
                    status,
                    body: crate::placeholder::Template::new(&String::from_utf8_lossy(&body)),
                },
                Tree::TryFiles { root, try_files } => {
                    Node::TryFiles(Arc::new(crate::try_files::TryFilesRt::new(root, try_files)))
                }
                Tree::Files { root, options } => {
                    Node::Files(Arc::new(crate::files::FileServer::new(root, options)))
                }
                Tree::Function(id) => Node::Function(self.functions[id.index()].clone()),
                Tree::Site(h) => match crate::site::SiteNode::new(&h) {
                    Ok(node) => Node::Site(node),
                    Err(e) => {
                        self.errors.push(e);
                        continue;
                    }
                },
                Tree::Encode(e) => Node::Encode(crate::encode::EncodeRt::new(&e)),
                Tree::Proxy(config) => match gojinn_proxy::Proxy::new(&config) {
                    Ok(proxy) => {
                        let p = Arc::new(ProxyRoute {
                            proxy,
                            label: route.label.clone(),
                        });
                        self.proxies.push(p.clone());
                        Node::Proxy(p)
                    }
                    Err(e) => {
                        let at = config.origin.as_deref().unwrap_or("reverse_proxy");
                        self.errors.push(format!("{at}: {e}"));
                        continue;
                    }
                },
            };
            let conditions = match route.conditions.as_ref().map(Conditions::new).transpose() {
                Ok(c) => c,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            out.push(RouteRt {
                group: route.group,
                matcher: route.matcher.as_deref().map(PathPattern::new),
                conditions,
                requests: self.metrics.requests(&route.label),
                node,
            });
        }
        out
    }
}
