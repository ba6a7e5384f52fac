//! Crash records (`record_crashes`, Gojinn's format): a failing call writes
//! `{timestamp, error, input, env, wasm_file}` as one JSON file in the route's
//! crash directory, for `gojinn replay`. `env` values that came from `{env.*}`
//! are redacted. At most [`MAX_RECORDS`] files are kept per directory (the
//! oldest go first), so a crash loop cannot fill the disk.

use std::path::Path;

use gojinn_loader::CrashSpec;

use crate::error::Failure;

/// Most records kept in one crash directory.
pub(crate) const MAX_RECORDS: usize = 1000;

/// Writes the record of a failed call (on a blocking thread; errors are logged).
pub(crate) fn record(
    spec: &CrashSpec,
    module: &Path,
    failure: &Failure,
    input: Vec<u8>,
    trace_id: &str,
) {
    let now = chrono::Utc::now();
    let env: serde_json::Map<String, serde_json::Value> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let record = serde_json::json!({
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "error": failure.to_string(),
        "input": String::from_utf8_lossy(&input),
        "env": env,
        "wasm_file": module.display().to_string(),
        "trace_id": trace_id,
    });
    let dir = spec.dir.clone();
    let name = format!(
        "crash-{}-{:08x}.json",
        now.format("%Y%m%dT%H%M%S%.9fZ"),
        rand::random::<u32>()
    );
    let module = module.display().to_string();
    tokio::task::spawn_blocking(move || {
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(&name), record.to_string()))
            .and_then(|()| prune(&dir));
        match written {
            Ok(()) => {
                tracing::info!(target: "gojinn::crash", file = %dir.join(&name).display(), module, "crash recorded; `gojinn replay FILE` runs it again")
            }
            Err(e) => {
                tracing::warn!(target: "gojinn::crash", dir = %dir.display(), error = %e, "cannot write a crash record")
            }
        }
    });
}

/// Removes the oldest records past [`MAX_RECORDS`] (names sort by time).
fn prune(dir: &Path) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("crash-"))
        .collect();
    if names.len() <= MAX_RECORDS {
        return Ok(());
    }
    names.sort();
    for old in &names[..names.len() - MAX_RECORDS] {
        std::fs::remove_file(dir.join(old))?;
    }
    Ok(())
}
