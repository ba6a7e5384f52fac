//! `gojinn build --test`: sends a project's `tests/request.json` through its module,
//! in process, on the server's own request path: the loader builds the function
//! with its route's grants (KV, SQL, HTTP, mounts) and limits from the project's
//! Caddyfile, and [`gojinn_runtime::Function::invoke`] runs it, as for a served
//! request. The response must be a 200 whose body contains every line of
//! `tests/expected.txt`.
//!
//! Embedded stores (the KV file) live in a throwaway storage directory, so a test
//! never writes into a server's data; shared stores (Redis, PostgreSQL, SQLite
//! files) are the ones the Caddyfile names.

use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// The request line and headers of the test request; the body is tests/request.json.
const METHOD: &str = "POST";
const URI: &str = "/hello?from=gojinn-build-test";
const HEADERS: &[(&str, &[u8])] = &[
    ("User-Agent", b"gojinn-build-test"),
    ("Content-Type", b"application/json"),
];

/// Runs the test of the project in `dir`; returns how many expected lines matched.
pub(crate) fn run(dir: &Path, function: &gojinn_config::Function) -> anyhow::Result<usize> {
    let request_path = dir.join("tests/request.json");
    let expected_path = dir.join("tests/expected.txt");
    let body = std::fs::read(&request_path)
        .with_context(|| format!("cannot read `{}`", request_path.display()))?;
    let expected = std::fs::read_to_string(&expected_path)
        .with_context(|| format!("cannot read `{}`", expected_path.display()))?;
    let lines: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        bail!("`{}` has no expected line", expected_path.display());
    }

    let request = gojinn_contract::Request::new(
        METHOD,
        URI,
        HEADERS.iter().copied(),
        &body,
        "gojinn-build-test".to_owned(),
    );
    let storage = Storage::new()?;
    // No signature policy: the module was just built here.
    let function = gojinn_config::Function {
        security: None,
        ..function.clone()
    };
    let config = one_route_config(function, storage.0.clone())?;
    let stores = gojinn_host::Stores::new();
    let loaded = gojinn_loader::Plan::new(&config, &stores)
        .and_then(|plan| plan.compile(gojinn_loader::Mode::Serve))
        .map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(lines.join("\n"))
        })?;
    let function = &loaded
        .functions
        .first()
        .context("the test config has no function")?
        .function;
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start an async runtime")?
        .block_on(function.invoke(&request, "gojinn-build-test"));

    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let with_log = |msg: String| {
        if stderr.trim().is_empty() {
            anyhow::anyhow!(msg)
        } else {
            anyhow::anyhow!("{msg}\nthe function's stderr:\n{}", stderr.trim_end())
        }
    };
    let response = outcome.result.map_err(|fault| match fault {
        gojinn_runtime::Fault::Contract { error, .. } => {
            with_log(format!("the function broke the contract: {error}"))
        }
        fault => with_log(format!("the function failed: {fault}")),
    })?;
    let text = String::from_utf8_lossy(&response.body);
    if response.status != 200 {
        return Err(with_log(format!(
            "{METHOD} {URI} answered {} (expected 200): {text}",
            response.status
        )));
    }
    let missing: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !text.contains(l))
        .collect();
    if !missing.is_empty() {
        return Err(with_log(format!(
            "the response lacks {} expected line(s) of {}:\n  {}\nthe response body:\n  {text}",
            missing.len(),
            expected_path.display(),
            missing.join("\n  ")
        )));
    }
    Ok(lines.len())
}

/// A config serving only `function`, at `/`, with its grants, limits and
/// stores, and embedded stores under `storage`.
fn one_route_config(
    function: gojinn_config::Function,
    storage: PathBuf,
) -> anyhow::Result<gojinn_config::Config> {
    let mut config: gojinn_config::Config = serde_json::from_value(serde_json::json!({
        "admin": null,
        "sites": [{ "addresses": [{ "port": 0 }] }],
    }))?;
    config.storage = Some(storage);
    config.sites[0].routes.push(gojinn_config::Route {
        group: None,
        matcher: None,
        conditions: None,
        handle: gojinn_config::Handler::Gojinn(function),
    });
    Ok(config)
}

/// A storage directory of this test run, removed when dropped.
struct Storage(PathBuf);

impl Storage {
    fn new() -> anyhow::Result<Storage> {
        let dir = std::env::temp_dir().join(format!("gojinn-build-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        Ok(Storage(dir))
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
