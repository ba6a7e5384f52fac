//! `gojinn replay FILE`: runs the input of a crash record (`record_crashes`)
//! through its module again, here, with the limits and environment of the
//! route that recorded it (read from the config), and says what happened.

use std::path::Path;

use anyhow::{bail, Context};

/// Replays `record` with the routes of `config`; `Ok(true)` when the call
/// faulted again.
pub(crate) fn replay(record: &Path, config: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(record)
        .with_context(|| format!("cannot read the crash record `{}`", record.display()))?;
    let rec: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a crash record (JSON)", record.display()))?;
    let (Some(module), Some(input)) = (rec["wasm_file"].as_str(), rec["input"].as_str()) else {
        bail!(
            "`{}` is not a crash record: it needs `wasm_file` and `input`",
            record.display()
        );
    };
    let loaded = gojinn_config::load_file(config)?.config;
    let stores = gojinn_host::Stores::new();
    let joined = |errors: Vec<gojinn_loader::LoadError>| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(lines.join("\n"))
    };
    let compiled = gojinn_loader::Plan::new(&loaded, &stores)
        .map_err(joined)?
        .compile(gojinn_loader::Mode::Serve)
        .map_err(joined)?;
    let Some(function) = compiled
        .functions
        .iter()
        .find(|f| f.module == Path::new(module))
    else {
        bail!(
            "no route of `{}` runs `{module}`: replay with the config that recorded the crash (its limits and env apply)",
            config.display()
        );
    };
    println!(
        "recorded at {}: {}",
        rec["timestamp"].as_str().unwrap_or("?"),
        rec["error"].as_str().unwrap_or("?")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(function.function.call(input.as_bytes().to_vec()));
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    if !stderr.trim().is_empty() {
        println!("stderr:\n{}", stderr.trim_end());
    }
    match outcome.result {
        Err(fault) => {
            println!("replayed: {fault}");
            Ok(true)
        }
        Ok(stdout) => {
            match gojinn_contract::decode_output(&stdout) {
                Ok(resp) => println!(
                    "replayed: no fault; status {}, {} body bytes",
                    resp.status,
                    resp.body.len()
                ),
                Err(e) => println!("replayed: the output breaks the contract: {e}"),
            }
            Ok(false)
        }
    }
}
