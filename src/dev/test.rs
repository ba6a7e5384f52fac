//! `gojinn build --test`: sends a project's `tests/request.json` through its module,
//! in process, as the server would (same contract encoding, same sandbox limits from
//! the project's Caddyfile), and checks that the response is a 200 whose body
//! contains every line of `tests/expected.txt`.
//!
//! Host capabilities are not granted here: a function that needs KV, SQL or HTTP
//! grants is tested through `gojinn run` instead.

use anyhow::{bail, Context as _};
use gojinn_runtime::{Runtime, RuntimeOptions};
use std::path::Path;

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

    // One sandbox, and no signature policy: the module was just built here.
    let unsigned = gojinn_config::Function {
        security: None,
        ..function.clone()
    };
    let mut spec = gojinn_http::function_spec(&unsigned, None).map_err(anyhow::Error::msg)?;
    spec.pool_size = 1;
    let runtime = Runtime::new(&RuntimeOptions::for_functions([&spec]))?;
    let loaded = runtime.load(spec)?;
    let request = gojinn_contract::Request::new(
        METHOD,
        URI,
        HEADERS.iter().copied(),
        &body,
        "gojinn-build-test".to_owned(),
    );
    let stdin = gojinn_contract::encode_request(&request);
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start an async runtime")?
        .block_on(loaded.call(stdin));

    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let with_log = |msg: String| {
        if stderr.trim().is_empty() {
            anyhow::anyhow!(msg)
        } else {
            anyhow::anyhow!("{msg}\nthe function's stderr:\n{}", stderr.trim_end())
        }
    };
    let stdout = outcome
        .result
        .map_err(|fault| with_log(format!("the function failed: {fault}")))?;
    let response = gojinn_contract::decode_response(&stdout)
        .map_err(|e| with_log(format!("the function broke the contract: {e}")))?;
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
