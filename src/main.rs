//! The `gojinn` command: serve, validate and adapt a Caddyfile; print the version.
//!
//! `main` stays thin: it parses the command line, runs one command and turns an
//! error into a message on stderr and exit code 1.

mod dev;
mod environ;
mod hash_password;
mod logging;
mod notify;
mod otel;
mod reload;
mod replay;
mod sign;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "gojinn",
    version,
    about = "Runs WebAssembly functions inside the HTTP request lifecycle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve in the foreground.
    ///
    /// SIGHUP reloads the config file without dropping a connection; SIGTERM or
    /// SIGINT drain in-flight requests (up to `grace_period`) and exit.
    Run {
        /// Caddyfile (or `.json` config) to serve.
        #[arg(long, short, default_value = "Caddyfile")]
        config: PathBuf,
        /// Reload when the config file or a module it references changes.
        #[arg(long)]
        watch: bool,
        /// Print the environment at start (as `caddy run --environ`).
        #[arg(long)]
        environ: bool,
        /// Load `NAME=VALUE` lines from FILE into the environment first (for
        /// `{env.NAME}` placeholders); variables already set win.
        #[arg(long, value_name = "FILE")]
        envfile: Option<PathBuf>,
    },
    /// Parse the config and compile every module, without binding any socket.
    Validate {
        /// Caddyfile (or `.json` config) to check.
        #[arg(long, short, default_value = "Caddyfile")]
        config: PathBuf,
    },
    /// Print the resolved config as JSON.
    Adapt {
        /// Caddyfile to adapt.
        #[arg(long, short, default_value = "Caddyfile")]
        config: PathBuf,
    },
    /// Create an Ed25519 key pair for signing modules: NAME.priv and NAME.pub
    /// (hex text, mode 0600).
    Keygen {
        /// Path prefix of the two key files.
        name: PathBuf,
    },
    /// Sign a module in place (or into `-o OUT`); re-signing replaces an old
    /// signature. Format: module ‖ Ed25519 signature (64 bytes) ‖ "GJSIG".
    Sign {
        /// Private key file (from `gojinn keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The `.wasm` module to sign.
        module: PathBuf,
        /// Write the signed module here instead of replacing MODULE.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check a module's signature: exits 0 only for a good signature by the key.
    Verify {
        /// Public key file (from `gojinn keygen`).
        #[arg(long = "pub", value_name = "PUB")]
        public: PathBuf,
        /// The signed module.
        module: PathBuf,
    },
    /// Replace the config of a running server through its admin listener.
    ///
    /// Loads FILE here (errors show with file:line:col; relative paths resolve against
    /// FILE's folder), sends it as JSON to the admin `POST /load` endpoint and waits:
    /// exits 0 once the new config serves, 1 with the server's errors if it refused it
    /// (the previous config keeps serving).
    Reload {
        /// Caddyfile (or `.json` config) to switch to.
        #[arg(long, short, default_value = "Caddyfile")]
        config: PathBuf,
        /// Admin address of the running server (`host:port`); default: the config's
        /// `admin` option, else localhost:2019.
        #[arg(long)]
        address: Option<String>,
    },
    /// Run a crash record's input (`record_crashes`) through its module again,
    /// with the limits and env of the route in the config; exits 1 when it
    /// faults again, printing the fault.
    Replay {
        /// The crash record (a JSON file in the route's crash directory).
        file: PathBuf,
        /// The config that recorded it.
        #[arg(long, short, default_value = "Caddyfile")]
        config: PathBuf,
    },
    /// Look at and act on the job queue of a running server (its admin listener,
    /// loopback only): `list [--state dead]`, `show ID`, `retry ID`.
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
        /// Caddyfile (or `.json` config) naming the admin address.
        #[arg(long, short, default_value = "Caddyfile", global = true)]
        config: PathBuf,
        /// Admin address of the running server (`host:port`); default: the config's
        /// `admin` option, else localhost:2019.
        #[arg(long, global = true)]
        address: Option<String>,
    },
    /// Print a bcrypt hash of a password for `basic_auth` (as `caddy hash-password`).
    ///
    /// Without --plaintext, reads one line from stdin:
    /// `printf %s "$PASSWORD" | gojinn hash-password`.
    HashPassword {
        /// The password (it shows in the process list and shell history: prefer stdin).
        #[arg(long)]
        plaintext: Option<String>,
        /// Hash algorithm; only `bcrypt`.
        #[arg(long, default_value = "bcrypt")]
        algorithm: String,
        /// bcrypt cost, 4 to 31 (each step doubles the work).
        #[arg(long, default_value_t = hash_password::DEFAULT_COST)]
        cost: u32,
    },
    /// Print the version of gojinn and of its wasm engine.
    Version,
    /// Create a function project from a template: source, README, Caddyfile, test.
    ///
    /// Writes NAME/ in the current directory (never over an existing path). Build it
    /// with `gojinn build NAME`, serve it with `gojinn run --config NAME/Caddyfile`.
    New {
        /// Project name: a lowercase letter, then lowercase letters, digits, `-`, `_`.
        name: String,
        /// Language of the function.
        #[arg(long, short, value_enum)]
        lang: dev::Lang,
    },
    /// Build function projects to wasm and check that each module loads.
    ///
    /// The language is told from the project's files (Cargo.toml, go.mod, package.json
    /// with assemblyscript, *.zig, Makefile or *.c, *.wat); the module is written to
    /// DIR/<folder name>.wasm. A missing toolchain is reported with the command that
    /// installs it.
    Build {
        /// Project folders to build.
        #[arg(default_value = ".")]
        dirs: Vec<PathBuf>,
        /// Then send tests/request.json through the module and check that the 200
        /// response contains every line of tests/expected.txt.
        #[arg(long)]
        test: bool,
        /// Write the module here instead of DIR/<folder name>.wasm (one DIR only).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print a shell completion script.
    ///
    /// bash: `gojinn completions bash > ~/.local/share/bash-completion/completions/gojinn`;
    /// zsh: write `_gojinn` into a folder of $fpath; fish: `gojinn completions fish >
    /// ~/.config/fish/completions/gojinn.fish`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

// mimalloc, set up to return freed memory (crates/gojinn-alloc).
use gojinn_alloc as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!(
                "gojinn {} (wasmtime {})",
                env!("CARGO_PKG_VERSION"),
                gojinn_runtime::WASMTIME_VERSION
            );
            Ok(())
        }
        Command::Adapt { config } => {
            let loaded = load_config(&config)?;
            println!("{}", serde_json::to_string_pretty(&loaded)?);
            Ok(())
        }
        Command::Validate { config } => {
            let loaded = load_config(&config)?;
            let app = gojinn_http::App::check(&loaded)
                .map_err(|errors| anyhow::anyhow!(errors.join("\n")))?;
            for n in app.notices() {
                let kind = if n.warning { "warning" } else { "note" };
                eprintln!("{kind}: {n}");
            }
            println!(
                "{}: valid ({} site(s), {} function(s))",
                config.display(),
                loaded.sites.len(),
                loaded.functions().len()
            );
            Ok(())
        }
        Command::Run {
            config,
            watch,
            environ,
            envfile,
        } => {
            // Before any thread starts (see `load_envfile`).
            if let Some(file) = envfile {
                environ::load_envfile(&file)?;
            }
            if environ {
                environ::print()?;
            }
            serve(&config, watch)
        }
        Command::Reload { config, address } => {
            let loaded = load_config(&config)?;
            reload::send(&loaded, address.as_deref())?;
            println!("{}: reloaded", config.display());
            Ok(())
        }
        Command::Replay { file, config } => {
            if replay::replay(&file, &config)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Jobs {
            action,
            config,
            address,
        } => jobs_command(&action, &config, address.as_deref()),
        Command::New { name, lang } => {
            let dir = dev::new::create(&name, lang, Path::new("."))?;
            println!(
                "created {} ({} function); next: gojinn build {name} && gojinn run --config {name}/Caddyfile",
                dir.display(),
                lang.name()
            );
            Ok(())
        }
        Command::Build { dirs, test, output } => {
            dev::build::build_all(&dirs, test, output.as_deref())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "gojinn", &mut std::io::stdout());
            Ok(())
        }
        Command::Keygen { name } => sign::keygen(&name),
        Command::HashPassword {
            plaintext,
            algorithm,
            cost,
        } => hash_password::run(plaintext, &algorithm, cost),
        Command::Sign {
            key,
            module,
            output,
        } => sign::sign(&key, &module, output.as_deref()),
        Command::Verify { public, module } => sign::verify(&public, &module),
    }
}

/// Loads and validates the config, printing its warnings to stderr.
fn load_config(path: &Path) -> anyhow::Result<gojinn_config::Config> {
    let loaded = gojinn_config::load_file(path)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(loaded.config)
}

fn load_app(
    config: &gojinn_config::Config,
    services: &gojinn_http::Services,
) -> anyhow::Result<gojinn_http::App> {
    gojinn_http::App::load(config, services).map_err(|errors| anyhow::anyhow!(errors.join("\n")))
}

/// The certificate manager of automatic HTTPS, keeping its certificates in
/// the `storage` directory (or the shared store its URL names); `None` when
/// there is no directory to keep them in (HOME unset), which only a config
/// with managed certificates minds.
fn certificate_manager(
    config: &gojinn_config::Config,
    metrics: &gojinn_http::Metrics,
) -> anyhow::Result<Option<gojinn_certs::Manager>> {
    let Some(dir) = gojinn_host::storage_dir(config.storage.as_deref()) else {
        return Ok(None);
    };
    let storage = gojinn_certs::Storage::open(&dir, config.storage_url.as_deref())
        .map_err(anyhow::Error::msg)?;
    let metrics = metrics.clone();
    Ok(Some(gojinn_certs::Manager::new(
        storage,
        Box::new(move |event| metrics.record_certificate(event)),
    )))
}

/// What `gojinn jobs` does.
#[derive(clap::Subcommand, Debug)]
enum JobsAction {
    /// List jobs in a state: queued (default), running, done or dead.
    List {
        #[arg(long, default_value = "queued")]
        state: String,
    },
    /// Show one job: state, attempts, last error, the function's response.
    Show { id: String },
    /// Put a dead job back in the queue.
    Retry { id: String },
}

fn jobs_command(action: &JobsAction, config: &Path, address: Option<&str>) -> anyhow::Result<()> {
    let address = match address {
        Some(a) => a.to_owned(),
        None => reload::admin_address(&load_config(config)?, None)?,
    };
    let (method, path) = match action {
        JobsAction::List { state } => (http::Method::GET, format!("/jobs?state={state}")),
        JobsAction::Show { id } => (http::Method::GET, format!("/jobs/{id}")),
        JobsAction::Retry { id } => (http::Method::POST, format!("/jobs/{id}/retry")),
    };
    let (status, text) = reload::admin_call(&address, method, &path, None)?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if status != 200 {
        bail!(
            "{}",
            json["error"]
                .as_str()
                .map_or(text.trim().to_owned(), str::to_owned)
        );
    }
    match action {
        JobsAction::List { .. } => {
            for job in json["jobs"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<7}  {:<7}  attempts {}/{}  {}{}",
                    job["id"].as_str().unwrap_or(""),
                    job["state"].as_str().unwrap_or(""),
                    job["kind"].as_str().unwrap_or(""),
                    job["attempts"],
                    job["max_attempts"],
                    job["target"].as_str().unwrap_or(""),
                    job["last_error"]
                        .as_str()
                        .map(|e| format!("  error: {e}"))
                        .unwrap_or_default()
                );
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(())
}

/// The job queues (each site's `queue` URL, else the global one, else
/// `jobs.redb` in the storage directory) and their workers, which start with
/// the server. A config that schedules or queues jobs opens their queues at
/// start; others only when a request asks (`X-Gojinn-Async`).
fn job_queues(
    config: &gojinn_config::Config,
    metrics: &gojinn_http::Metrics,
) -> anyhow::Result<Arc<gojinn_http::jobs::JobQueues>> {
    let dir = gojinn_host::storage_dir(config.storage.as_deref());
    let metrics = metrics.clone();
    let queues =
        gojinn_http::jobs::JobQueues::new(dir, Arc::new(move |event| metrics.record_job(event)));
    for site in &config.sites {
        let uses_jobs = site
            .functions()
            .iter()
            .any(|f| !f.crons.is_empty() || !f.permissions.enqueue.is_empty());
        if uses_jobs {
            let url = site.queue.as_deref().or(config.queue.as_deref());
            let workers = queues.get(url).map_err(anyhow::Error::msg)?;
            workers.queue().open_now().map_err(anyhow::Error::msg)?;
        }
    }
    Ok(queues)
}

fn serve(config_path: &Path, watch: bool) -> anyhow::Result<()> {
    let loaded = gojinn_config::load_file(config_path)?;
    // The config's `log` and `debug` options set the level, so logging starts
    // after parsing.
    // Made once, like the `Services` below: access logs of every config share
    // the outputs the server log opened.
    let outputs = gojinn_log::Outputs::default();
    let _log_guard = logging::init(&loaded.config, &outputs).map_err(anyhow::Error::msg)?;
    for warning in &loaded.warnings {
        tracing::warn!(target: "gojinn::config", "{warning}");
    }
    let config = loaded.config;
    if config.sites.is_empty() {
        bail!("{}: no site blocks to serve", config_path.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let traces = config.tracing.as_ref().map(otel::start).transpose()?;
        // Made once: every reload loads with the same stores (and their locks),
        // metrics and tracer.
        let metrics = gojinn_http::Metrics::new();
        let stores = Arc::new(gojinn_host::Stores::new());
        let jobs = job_queues(&config, &metrics)?;
        stores.set_job_sink(Arc::new(gojinn_http::jobs::QueueSink(jobs.clone())));
        let jobs = Some(jobs);
        let services = gojinn_http::Services {
            stores,
            certs: certificate_manager(&config, &metrics)?,
            jobs,
            metrics,
            tracer: traces.as_ref().map(|_| gojinn_http::Tracer::from_global()),
            logs: outputs,
        };
        let app = load_app(&config, &services)?;
        // Stored certificates are loaded before the ports open.
        app.start_certificates().await;
        let app = Arc::new(app);
        let listeners = gojinn_http::bind(&app).await?;
        let admin_listener = match &config.admin {
            Some(addr) => Some(gojinn_admin::bind(addr).await?),
            None => None,
        };
        let registry = services.metrics.registry();
        let running = reload::Running::new(
            gojinn_http::Server::new(app, services, listeners, &config.server),
            &config,
        )?;
        let ready = gojinn_admin::Ready::new();
        if let Some(listener) = admin_listener {
            let admin = gojinn_admin::Admin {
                control: Arc::new(running.clone()),
                registry,
                ready: ready.clone(),
            };
            tokio::spawn(gojinn_admin::serve(listener, admin));
        }
        // Reload triggers start before "ready": a SIGHUP or a change made once
        // the server says it is ready must reload it.
        let triggers = reload::Triggers::new(config_path, &config, watch)?;
        tracing::info!(
            functions = config.functions().len(),
            sandbox_reset = gojinn_runtime::SandboxReset::detect().name(),
            bounds = gojinn_runtime::Bounds::from_env()
                .unwrap_or_default()
                .name(),
            stdio = gojinn_runtime::StdioCalls::from_env()
                .unwrap_or_default()
                .name(),
            "gojinn {} ready",
            env!("CARGO_PKG_VERSION")
        );
        // Listeners are bound, accepting, the config is loaded, reloads are heard.
        ready.set();
        notify::ready();
        tokio::select! {
            () = shutdown_signal() => {}
            () = triggers.run(&running, config_path) => {}
        }
        tracing::info!("shutting down");
        notify::stopping();
        running.server().shutdown().await;
        if let Some(provider) = traces {
            otel::shutdown(provider).await;
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
