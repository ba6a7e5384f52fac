//! What triggers a reload of `gojinn run`: SIGHUP, and with `--watch` a change
//! to the config file or to a module it references.
//!
//! The reload itself is [`gojinn_http::Server::reload_config`]: everything is
//! parsed and compiled before anything switches, so a bad config is refused
//! (logged with its errors) and the previous one keeps serving.

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

/// Reloads on every SIGHUP and, with a watcher, on every change. Never returns.
pub(crate) async fn on_signal_or_change(
    server: &gojinn_http::Server,
    config_path: &Path,
    mut watcher: Option<Watcher>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by signal is off");
            None
        }
    };
    loop {
        let trigger = tokio::select! {
            Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
            () = async {
                match watcher.as_mut() {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            } => "file change",
        };
        if let Some(files) = reload(server, config_path, trigger).await {
            if let Some(w) = watcher.as_mut() {
                w.set_files(files);
            }
        }
    }
}

/// Reads, compiles and switches to the config at `config_path`, logging the
/// outcome. Returns the files the new config references when it switched.
async fn reload(
    server: &gojinn_http::Server,
    config_path: &Path,
    trigger: &str,
) -> Option<HashSet<PathBuf>> {
    let started = Instant::now();
    let refused = |errors: &str| {
        tracing::error!(
            target: "gojinn::reload",
            trigger,
            errors,
            "reload refused; the previous config keeps serving"
        );
    };
    let loaded = match gojinn_config::load_file(config_path) {
        Ok(l) => l,
        Err(e) => {
            refused(&e.to_string());
            return None;
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!(target: "gojinn::config", "{warning}");
    }
    let config = loaded.config;
    if config.sites.is_empty() {
        refused(&format!(
            "{}: no site blocks to serve",
            config_path.display()
        ));
        return None;
    }
    let files = referenced_files(config_path, &config);
    let functions = config.functions().len();
    match server.reload_config(config).await {
        Ok(()) => {
            tracing::info!(
                target: "gojinn::reload",
                trigger,
                functions,
                duration_ms = started.elapsed().as_millis() as u64,
                "config reloaded"
            );
            Some(files)
        }
        Err(errors) => {
            refused(&errors.join("; "));
            None
        }
    }
}
