//! Reloading `gojinn run`: [`Running`] switches the server to a new config, and
//! three things ask it to: SIGHUP (re-reads the file given at start), `--watch`
//! (a change to that file or to a module it references) and the admin
//! listener's `POST /load` (a config in the request body).
//!
//! The switch itself is [`gojinn_http::Server::reload_config`]: everything is
//! parsed and compiled before anything switches, so a bad config is refused
//! with its errors and the previous one keeps serving.

use gojinn_admin::ConfigFormat;
use gojinn_config::Config;
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Quiet time after the last file event before `--watch` reloads: editors and
/// builds write a file in several steps (truncate, write, rename), and a build
/// often writes several modules.
pub(crate) const WATCH_DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the directories of the config file and its modules, and reports a
/// change to one of those files.
pub(crate) struct Watcher {
    inner: notify::RecommendedWatcher,
    /// Directories being watched (non-recursively).
    dirs: HashSet<PathBuf>,
    /// The files whose change triggers a reload.
    files: Arc<Mutex<HashSet<PathBuf>>>,
    changes: mpsc::Receiver<()>,
}

/// Starts watching `config_path` and the modules of `config`.
pub(crate) fn watch(config_path: &Path, config: &gojinn_config::Config) -> anyhow::Result<Watcher> {
    let files: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    // One pending notice is enough: any number of events means "reload once".
    let (tx, changes) = mpsc::channel(1);
    let watched = files.clone();
    let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let files = watched.lock().unwrap_or_else(PoisonError::into_inner);
        if event.paths.iter().any(|p| files.contains(p)) {
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot watch files for --watch: {e}"))?;
    let mut watcher = Watcher {
        inner,
        dirs: HashSet::new(),
        files,
        changes,
    };
    watcher.set_files(referenced_files(config_path, config));
    Ok(watcher)
}

impl Watcher {
    /// Watches exactly `files` from now on (directories are only ever added).
    fn set_files(&mut self, files: HashSet<PathBuf>) {
        for dir in files.iter().filter_map(|f| f.parent()) {
            if self.dirs.contains(dir) {
                continue;
            }
            match self.inner.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir.to_path_buf());
                }
                Err(e) => tracing::warn!(
                    target: "gojinn::reload",
                    dir = %dir.display(),
                    error = %e,
                    "cannot watch directory; changes there will not reload"
                ),
            }
        }
        *self.files.lock().unwrap_or_else(PoisonError::into_inner) = files;
    }

    /// Resolves after a change, once no further change came for [`WATCH_DEBOUNCE`].
    async fn changed(&mut self) {
        if self.changes.recv().await.is_none() {
            return std::future::pending().await;
        }
        while let Ok(Some(())) = tokio::time::timeout(WATCH_DEBOUNCE, self.changes.recv()).await {}
    }
}

/// The config file and every module it names, as absolute paths (file events
/// carry the watched directory's path joined with the file name).
fn referenced_files(config_path: &Path, config: &gojinn_config::Config) -> HashSet<PathBuf> {
    std::iter::once(config_path.to_path_buf())
        .chain(config.functions().iter().map(|f| f.module.clone()))
        .filter_map(|p| std::path::absolute(p).ok())
        .collect()
}

/// The name `POST /load` bodies carry in diagnostics. It has no directory, so
/// relative module paths in a loaded Caddyfile resolve against the server's
/// current directory, as with Caddy's `/load`.
const LOAD_SOURCE: &str = "load-request";

/// The running server as its reload triggers and the admin listener see it.
#[derive(Clone)]
pub(crate) struct Running(Arc<Inner>);

struct Inner {
    server: gojinn_http::Server,
    /// The serving config, redacted, for `/config`.
    shown: Mutex<serde_json::Value>,
    /// The admin address the listener was started with (it does not move on reload).
    admin: Option<String>,
    /// The `storage` the certificate manager was made with (it does not move
    /// on reload either).
    storage: (Option<std::path::PathBuf>, Option<String>),
    /// Serialises switches, so that `shown` ends as the config that serves.
    switching: tokio::sync::Mutex<()>,
}

impl Running {
    /// Wraps a started server serving `config`.
    pub(crate) fn new(server: gojinn_http::Server, config: &Config) -> anyhow::Result<Running> {
        Ok(Running(Arc::new(Inner {
            server,
            shown: Mutex::new(serde_json::to_value(config.redacted())?),
            admin: config.admin.clone(),
            storage: (config.storage.clone(), config.storage_url.clone()),
            switching: tokio::sync::Mutex::new(()),
        })))
    }

    /// The server.
    pub(crate) fn server(&self) -> &gojinn_http::Server {
        &self.0.server
    }

    /// Compiles `config` and switches to it; `/config` shows it from then on.
    /// On error nothing changes.
    async fn switch(&self, config: Config, source: &str) -> Result<(), Vec<String>> {
        if config.sites.is_empty() {
            return Err(vec![format!("{source}: no site blocks to serve")]);
        }
        let shown = serde_json::to_value(config.redacted()).map_err(|e| vec![e.to_string()])?;
        if config.admin != self.0.admin {
            tracing::warn!(
                target: "gojinn::reload",
                running = self.0.admin.as_deref().unwrap_or("off"),
                configured = config.admin.as_deref().unwrap_or("off"),
                "the admin address changes only on restart"
            );
        }
        if (&config.storage, &config.storage_url) != (&self.0.storage.0, &self.0.storage.1) {
            tracing::warn!(
                target: "gojinn::reload",
                "certificates stay in the `storage` the server started with until a restart"
            );
        }
        let _one_at_a_time = self.0.switching.lock().await;
        self.0.server.reload_config(config).await?;
        *self.0.shown.lock().unwrap_or_else(PoisonError::into_inner) = shown;
        Ok(())
    }

    /// Reads, compiles and switches to the config file at `path`, logging the
    /// outcome. Once the file parsed, and before anything else, `watcher` (if
    /// any) is pointed at the files it references, switched or not: so `--watch`
    /// also sees the modules a refused config waits for, even one written the
    /// moment the refusal is logged.
    async fn reload_file(&self, path: &Path, trigger: &str, watcher: Option<&mut Watcher>) {
        let _reloading = crate::notify::Reloading::start();
        let started = Instant::now();
        let loaded = match gojinn_config::load_file(path) {
            Ok(l) => l,
            Err(e) => {
                refused(trigger, &[e.to_string()]);
                return;
            }
        };
        if let Some(w) = watcher {
            w.set_files(referenced_files(path, &loaded.config));
        }
        // The outcome is logged; a refusal changes nothing else here.
        let _ = self
            .switch_logged(loaded, &path.display().to_string(), trigger, started)
            .await;
    }

    /// Parses a `POST /load` body and switches to it.
    async fn load_body(&self, body: bytes::Bytes, format: ConfigFormat) -> Result<(), Vec<String>> {
        let _reloading = crate::notify::Reloading::start();
        let started = Instant::now();
        let trigger = "POST /load";
        let parsed = std::str::from_utf8(&body)
            .map_err(|e| format!("{LOAD_SOURCE}: the body is not UTF-8 text: {e}"))
            .and_then(|src| {
                let source = Path::new(LOAD_SOURCE);
                match format {
                    ConfigFormat::Json => gojinn_config::parse_json(src, source),
                    ConfigFormat::Caddyfile => {
                        gojinn_config::parse_caddyfile(src, source, &|name| {
                            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
                        })
                    }
                }
                .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(loaded) => {
                self.switch_logged(loaded, LOAD_SOURCE, trigger, started)
                    .await
            }
            Err(e) => {
                let errors = vec![e];
                refused(trigger, &errors);
                Err(errors)
            }
        }
    }

    async fn switch_logged(
        &self,
        loaded: gojinn_config::Loaded,
        source: &str,
        trigger: &str,
        started: Instant,
    ) -> Result<(), Vec<String>> {
        for warning in &loaded.warnings {
            tracing::warn!(target: "gojinn::config", "{warning}");
        }
        let functions = loaded.config.functions().len();
        match self.switch(loaded.config, source).await {
            Ok(()) => {
                tracing::info!(
                    target: "gojinn::reload",
                    trigger,
                    functions,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "config reloaded"
                );
                Ok(())
            }
            Err(errors) => {
                refused(trigger, &errors);
                Err(errors)
            }
        }
    }
}

fn refused(trigger: &str, errors: &[String]) {
    tracing::error!(
        target: "gojinn::reload",
        trigger,
        errors = errors.join("; "),
        "reload refused; the previous config keeps serving"
    );
}

impl gojinn_admin::Control for Running {
    fn config_json(&self) -> serde_json::Value {
        let mut shown = self
            .0
            .shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let certificates = self.0.server.certificates();
        if let (Some(object), false) = (shown.as_object_mut(), certificates.is_empty()) {
            object.insert(
                "managed_certificates".to_owned(),
                serde_json::to_value(certificates).unwrap_or_default(),
            );
        }
        shown
    }

    fn jobs(
        &self,
        method: http::Method,
        path: String,
        query: Option<String>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = (http::StatusCode, serde_json::Value)> + Send>,
    > {
        let running = self.clone();
        Box::pin(async move {
            match running.0.server.jobs() {
                Some(queues) => {
                    gojinn_http::jobs::api(queues, &method, &path, query.as_deref()).await
                }
                None => (
                    http::StatusCode::NOT_FOUND,
                    serde_json::json!({ "error": "this server runs no job queue" }),
                ),
            }
        })
    }

    fn load(
        &self,
        body: bytes::Bytes,
        format: ConfigFormat,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Vec<String>>> + Send>> {
        let running = self.clone();
        Box::pin(async move { running.load_body(body, format).await })
    }
}

/// What asks a running server to reload itself: SIGHUP and, with `--watch`, a
/// change to a watched file. Made before the server says it is ready, so that
/// neither a signal nor a change after that point is missed.
pub(crate) struct Triggers {
    hangup: Option<tokio::signal::unix::Signal>,
    watcher: Option<Watcher>,
}

impl Triggers {
    /// Listens for SIGHUP and, when `watch` is set, watches `config_path` and
    /// the modules of `config`.
    pub(crate) fn new(config_path: &Path, config: &Config, watch: bool) -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by signal is off");
                None
            }
        };
        let watcher = watch
            .then(|| self::watch(config_path, config))
            .transpose()?;
        Ok(Triggers { hangup, watcher })
    }

    /// Reloads `config_path` on every trigger. Never returns.
    pub(crate) async fn run(mut self, running: &Running, config_path: &Path) {
        loop {
            let trigger = tokio::select! {
                Some(()) = async { self.hangup.as_mut()?.recv().await } => "SIGHUP",
                () = async {
                    match self.watcher.as_mut() {
                        Some(w) => w.changed().await,
                        None => std::future::pending().await,
                    }
                } => "file change",
            };
            running
                .reload_file(config_path, trigger, self.watcher.as_mut())
                .await;
        }
    }
}

/// Time `gojinn reload` waits for the server to compile and switch.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// `gojinn reload`: posts `config` as JSON to the admin `/load` of a running
/// server at `address` (else the config's admin address) and waits for the answer.
/// The admin address to reach: `address`, else the config's `admin` option.
pub(crate) fn admin_address(config: &Config, address: Option<&str>) -> anyhow::Result<String> {
    match (address, &config.admin) {
        (Some(a), _) => Ok(a.to_owned()),
        (None, Some(a)) => Ok(a.clone()),
        (None, None) => anyhow::bail!(
            "the config turns the admin listener off (`admin off`); give the running server's admin address with --address"
        ),
    }
}

pub(crate) fn send(config: &Config, address: Option<&str>) -> anyhow::Result<()> {
    let address = admin_address(config, address)?;
    let body = serde_json::to_vec(config)?;
    let (status, text) = admin_call(&address, hyper::Method::POST, "/load", Some(body))?;
    match status {
        200 => Ok(()),
        400 => anyhow::bail!(
            "the server refused the config (it keeps serving the previous one):\n{}",
            text.trim_end()
        ),
        _ => anyhow::bail!(
            "the admin listener at {address} answered {status}: {}",
            text.trim_end()
        ),
    }
}

/// One request to the admin listener at `address`; its status and body.
pub(crate) fn admin_call(
    address: &str,
    method: hyper::Method,
    path: &str,
    json_body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, String)> {
    // Caddy's `:2019` form means every interface; this machine is one of them.
    let connect = match address.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => address.to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            tokio::time::timeout(SEND_TIMEOUT, request(&connect, method, path, json_body)).await
        })
        .map_err(|_| {
            anyhow::anyhow!(
                "the server at {address} did not answer within {} s",
                SEND_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| anyhow::anyhow!("cannot reach the admin listener at {address}: {e}"))
}

async fn request(
    connect: &str,
    method: hyper::Method,
    path: &str,
    json_body: Option<Vec<u8>>,
) -> Result<(u16, String), Box<dyn std::error::Error + Send + Sync>> {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(connect).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, connect)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            json_body.unwrap_or_default(),
        )))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let text = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}
