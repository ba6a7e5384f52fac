//! The loaded application: every site's routes with their functions compiled, ready
//! to serve. Built completely before any socket is bound.

use crate::conn::ConnOptions;
use crate::matcher::PathPattern;
use crate::metrics::{FunctionMetrics, Metrics, RequestCounters};
use crate::tls::Certificates;
use bytes::Bytes;
use gojinn_config::{Config, DbAccess, DbDriver, Function as FunctionConfig, Handler, Route};
use gojinn_host::{Access, Capabilities, Stores};
use gojinn_runtime::{
    signature, Function, FunctionSpec, MountSpec, Runtime, RuntimeOptions, SignaturePolicy,
    DEFAULT_MAX_STDERR_BYTES, DEFAULT_QUEUE_WAIT,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower_http::services::ServeDir;

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
    /// Kept alive for the functions' engine and its epoch ticker.
    _runtime: Runtime,
}

pub(crate) struct SiteRt {
    /// Hosts this site answers for on its ports; empty means any host.
    pub(crate) hosts: Vec<String>,
    pub(crate) routes: Vec<RouteRt>,
}

pub(crate) struct RouteRt {
    pub(crate) group: Option<String>,
    pub(crate) matcher: Option<PathPattern>,
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
        body: Bytes,
    },
    Files(ServeDir),
    Function(Arc<FunctionRoute>),
}

/// A `gojinn` route: the function plus what the HTTP side needs to know about it.
pub(crate) struct FunctionRoute {
    pub(crate) function: Function,
    /// The route's matcher as configured (a bounded label for logs, never the URI).
    pub(crate) label: String,
    pub(crate) max_body_size: u64,
    /// The route's metric handles, resolved at load.
    pub(crate) metrics: FunctionMetrics,
    /// `debug_secret`: a request carrying it in `X-Gojinn-Debug` gets the guest's
    /// stderr back in `X-Gojinn-Logs`.
    pub(crate) debug_secret: Option<String>,
}

impl App {
    /// Compiles every function of `config` (in parallel) and builds the route tables.
    /// On failure, returns one message per broken function or route, each starting
    /// with the `file:line:col` of its directive when known.
    pub fn load(config: &Config) -> Result<App, Vec<String>> {
        App::build(config, true)
    }

    /// [`load`](Self::load) without opening the stores (the KV file, databases):
    /// what `gojinn validate` does, so it can run next to a serving process.
    pub fn check(config: &Config) -> Result<App, Vec<String>> {
        App::build(config, false)
    }

    fn build(config: &Config, open_stores: bool) -> Result<App, Vec<String>> {
        let functions = config.functions();
        let stores = Stores::new(config.storage.clone());
        let mut specs: Vec<FunctionSpec> = Vec::with_capacity(functions.len());
        let mut errors = Vec::new();
        for (f, (label, namespace)) in functions.iter().zip(function_places(config)) {
            match capabilities(f, &stores, &label, &namespace) {
                Ok(caps) => match function_spec(f, caps) {
                    Ok(spec) => specs.push(spec),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(match &f.origin {
                    Some(origin) => format!("{origin}: {e}"),
                    None => e,
                }),
            }
        }
        // Certificates are checked before anything compiles: a bad one fails fast.
        let certificates = Certificates::load(&config.sites);
        if let Err(e) = &certificates {
            errors.extend(e.iter().cloned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let certificates = certificates?;
        if open_stores {
            stores.open().map_err(|e| vec![e])?;
        }
        let runtime = Runtime::new(&RuntimeOptions::for_functions(&specs))
            .map_err(|e| vec![e.to_string()])?;

        // Compile in parallel: modules are independent and compilation is CPU-bound.
        let loaded: Vec<Result<Function, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = functions
                .iter()
                .zip(specs)
                .map(|(f, spec)| {
                    let runtime = &runtime;
                    scope.spawn(move || {
                        runtime.load(spec).map_err(|e| match &f.origin {
                            Some(origin) => format!("{origin}: {e}"),
                            None => e.to_string(),
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("module compilation panicked".to_owned()))
                })
                .collect()
        });
        let errors: Vec<String> = loaded
            .iter()
            .filter_map(|r| r.as_ref().err().cloned())
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let compile_times: Vec<Duration> = loaded
            .iter()
            .flatten()
            .map(Function::compile_time)
            .collect();
        Metrics::global().record_load(&compile_times, runtime.cache_stats());
        let mut compiled = loaded.into_iter().flatten();

        let mut ports: BTreeMap<u16, Vec<Arc<SiteRt>>> = BTreeMap::new();
        for site in &config.sites {
            let routes = build_routes(&site.routes, &mut compiled, "*")?;
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
            });
            for port in site.addresses.iter().map(|a| a.port) {
                let list = ports.entry(port).or_default();
                if !list.iter().any(|s| Arc::ptr_eq(s, &rt)) {
                    list.push(rt.clone());
                }
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
            _runtime: runtime,
        })
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

/// The log label and KV namespace of every function, in [`Config::functions`]
/// order. The label is the nearest enclosing matcher (as [`build_routes`] uses);
/// the namespace is the site's addresses, so two sites never share keys.
fn function_places(config: &Config) -> Vec<(String, String)> {
    fn walk(routes: &[Route], label: &str, ns: &str, out: &mut Vec<(String, String)>) {
        for r in routes {
            let label = r.matcher.as_deref().unwrap_or(label);
            match &r.handle {
                Handler::Gojinn(_) => out.push((label.to_owned(), ns.to_owned())),
                Handler::Subroute { routes, .. } => walk(routes, label, ns, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for site in &config.sites {
        let ns: Vec<String> = site
            .addresses
            .iter()
            .map(|a| format!("{}:{}", a.host.as_deref().unwrap_or(""), a.port))
            .collect();
        walk(&site.routes, "*", &ns.join(","), &mut out);
    }
    out
}

/// The host capabilities of a function, its stores opened.
fn capabilities(
    f: &FunctionConfig,
    stores: &Stores,
    label: &str,
    namespace: &str,
) -> Result<Option<Arc<Capabilities>>, String> {
    let p = &f.permissions;
    let mut caps = Capabilities::none(label);
    if !p.kv_read.is_empty() || !p.kv_write.is_empty() {
        let kv = stores.kv(f.kv.as_deref(), namespace)?;
        caps = caps.with_kv(kv, &p.kv_read, &p.kv_write);
    }
    if let (Some(access), Some(dsn)) = (p.db, &f.db_dsn) {
        let access = match access {
            DbAccess::Read => Access::Read,
            DbAccess::Write => Access::Write,
        };
        match f.db_driver.unwrap_or(DbDriver::Sqlite) {
            DbDriver::Sqlite => caps = caps.with_db(stores.sqlite(Path::new(dsn)), access),
            DbDriver::Postgres => caps = caps.with_postgres(stores.postgres(dsn)?, access),
        }
    }
    if !p.http.is_empty() {
        caps = caps.with_http(&p.http);
    }
    for m in &f.mounts {
        if !m.host.is_dir() {
            return Err(format!(
                "mount host directory `{}` does not exist or is not a directory",
                m.host.display()
            ));
        }
    }
    Ok(Some(Arc::new(caps)))
}

/// The runtime's spec of a configured function: its limits, grants (`capabilities`),
/// mounts and signature policy. Also used by `gojinn build --test`.
pub fn function_spec(
    f: &FunctionConfig,
    capabilities: Option<Arc<Capabilities>>,
) -> Result<FunctionSpec, String> {
    let signature = match &f.security {
        None => None,
        Some(sec) => Some(SignaturePolicy {
            strict: sec.policy == gojinn_config::SignaturePolicy::Strict,
            trusted_keys: sec
                .trusted_keys
                .iter()
                .map(|k| {
                    signature::parse_public_key(k).map_err(|e| {
                        let at = f.origin.as_deref().unwrap_or("security");
                        format!("{at}: trusted_key `{k}`: {e}")
                    })
                })
                .collect::<Result<_, _>>()?,
        }),
    };
    Ok(FunctionSpec {
        module: f.module.clone(),
        timeout: Duration::from_millis(f.timeout_ms),
        memory_limit: f.memory_limit,
        env: f
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect(),
        args: f.args.clone(),
        pool_size: f.pool_size,
        max_output_bytes: usize::try_from(f.max_output_size).unwrap_or(usize::MAX),
        max_stderr_bytes: DEFAULT_MAX_STDERR_BYTES,
        queue_wait: DEFAULT_QUEUE_WAIT,
        capabilities,
        mounts: f
            .mounts
            .iter()
            .map(|m| MountSpec {
                host: m.host.clone(),
                guest: m.guest.clone(),
                writable: m.writable,
            })
            .collect(),
        signature,
    })
}

/// Builds the runtime tree, taking compiled functions in the order
/// [`Config::functions`] listed them (depth first, file order).
///
/// `label` is the nearest enclosing matcher, so a function inside `handle /api/*`
/// is labelled `/api/*` in logs.
fn build_routes(
    routes: &[Route],
    compiled: &mut impl Iterator<Item = Function>,
    label: &str,
) -> Result<Vec<RouteRt>, Vec<String>> {
    let mut out = Vec::with_capacity(routes.len());
    for route in routes {
        let label = route.matcher.as_deref().unwrap_or(label);
        let node = match &route.handle {
            Handler::Subroute {
                strip_prefix,
                routes,
            } => Node::Subroute {
                strip_prefix: strip_prefix.clone(),
                routes: build_routes(routes, compiled, label)?,
            },
            Handler::StaticResponse { status, body } => Node::Respond {
                status: http::StatusCode::from_u16(*status)
                    .map_err(|_| vec![format!("invalid status `{status}` in respond")])?,
                body: Bytes::from(body.clone()),
            },
            Handler::FileServer { root } => Node::Files(ServeDir::new(root)),
            Handler::Gojinn(f) => {
                let function = compiled
                    .next()
                    .ok_or_else(|| vec!["internal error: function count mismatch".to_owned()])?;
                Node::Function(Arc::new(FunctionRoute {
                    function,
                    label: label.to_owned(),
                    max_body_size: f.max_body_size,
                    metrics: Metrics::global().function(label),
                    debug_secret: f.debug_secret.clone(),
                }))
            }
        };
        out.push(RouteRt {
            group: route.group.clone(),
            matcher: route.matcher.as_deref().map(PathPattern::new),
            node,
            requests: RequestCounters::new(label),
        });
    }
    Ok(out)
}
