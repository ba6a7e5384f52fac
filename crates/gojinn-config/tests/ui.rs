//! Golden-file tests: every message a user can see is reviewed here.
//!
//! - `tests/ui/ok/NAME.Caddyfile` must adapt cleanly. `NAME.json` holds the
//!   expected adapt output, with absolute paths below `tests/ui/ok` written
//!   relative to it (`./functions/x.wasm`), so it is machine-independent and is
//!   itself a valid JSON config: loading it must give the same `Config`.
//!   `NAME.warn` holds the expected warnings, one per line (absent when none).
//! - `tests/ui/err/NAME.Caddyfile` and `tests/ui/err/NAME.json` must fail with
//!   exactly the text of `NAME.err`.
//!
//! Lines `# test-env: NAME=VALUE` at the top of a Caddyfile set variables for
//! its placeholders; every other variable is unset.
//!
//! Regenerate with `GOJINN_BLESS=1 cargo test -p gojinn-config --test ui`, then
//! read every changed file: each message must read well to a user.

#![allow(clippy::unwrap_used)] // a failing test should panic

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use gojinn_config::{parse_caddyfile, parse_json, Config};

fn bless() -> bool {
    std::env::var_os("GOJINN_BLESS").is_some()
}

/// Paths in diagnostics are relative to the package root, where cargo runs
/// tests.
fn cases(dir: &str, ext: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = fs::read_dir(root.join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| Path::new(dir).join(p.file_name().unwrap()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {dir}/*.{ext} cases");
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn env_of(src: &str) -> HashMap<String, String> {
    src.lines()
        .map_while(|l| l.strip_prefix("# test-env: "))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Compares `actual` with the expectation file (or writes it when blessing).
fn expect(path: &Path, actual: Option<&str>, failures: &mut Vec<String>) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if bless() {
        match actual {
            Some(a) => fs::write(&full, a).unwrap(),
            None if full.exists() => fs::remove_file(&full).unwrap(),
            None => {}
        }
        return;
    }
    let expected = fs::read_to_string(&full).ok();
    if expected.as_deref() != actual {
        failures.push(format!(
            "{}:\n--- expected\n{}\n--- actual\n{}\n",
            path.display(),
            expected.as_deref().unwrap_or("(no file)"),
            actual.unwrap_or("(nothing)")
        ));
    }
}

/// The adapt output (`to_string_pretty`, fields in model order) with absolute
/// paths below `dir` made relative to it.
fn relative_json(config: &Config, dir: &Path) -> String {
    let json = serde_json::to_string_pretty(config).unwrap();
    let escaped = serde_json::to_string(dir.to_str().unwrap()).unwrap();
    let dir = escaped.trim_end_matches('"');
    json.replace(&format!("{dir}/"), "\"./")
        .replace(&format!("{dir}\""), "\".\"")
        + "\n"
}

fn without_origins(mut c: Config) -> Config {
    fn proxies(routes: &mut [gojinn_config::Route]) {
        for r in routes {
            match &mut r.handle {
                gojinn_config::Handler::ReverseProxy(p) => p.origin = None,
                gojinn_config::Handler::Subroute { routes, .. } => proxies(routes),
                _ => {}
            }
        }
    }
    c.for_each_function_mut(|f| f.origin = None);
    for s in &mut c.sites {
        if let Some(gojinn_config::Tls::Files(tls)) = &mut s.tls {
            tls.origin = None;
        }
        proxies(&mut s.routes);
        if let Some(log) = &mut s.log {
            log.origin = None;
        }
    }
    c
}

fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} golden file(s) differ (GOJINN_BLESS=1 regenerates them):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ok_cases_adapt_to_their_golden_json() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/ok");
    let mut failures = Vec::new();
    for case in cases("tests/ui/ok", "Caddyfile") {
        let src = read(&case);
        let env = env_of(&src);
        let loaded = parse_caddyfile(&src, &case, &|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("{} should adapt: {e}", case.display()));
        let json = relative_json(&loaded.config, &dir);
        expect(&case.with_extension("json"), Some(&json), &mut failures);
        let warnings: Vec<String> = loaded.warnings.iter().map(|w| format!("{w}\n")).collect();
        let warnings = warnings.concat();
        expect(
            &case.with_extension("warn"),
            (!warnings.is_empty()).then_some(warnings.as_str()),
            &mut failures,
        );

        // Every gojinn route says where it was written.
        for f in loaded.config.functions() {
            let origin = f.origin.as_deref().unwrap_or_default();
            assert!(
                origin.starts_with(&format!("{}:", case.display())),
                "{origin}"
            );
        }

        // Round trip: the adapt output (absolute paths) loads back to the same config.
        let absolute = serde_json::to_string_pretty(&loaded.config).unwrap();
        let back = parse_json(&absolute, &case.with_extension("json"))
            .unwrap_or_else(|e| panic!("{}: adapt output should load: {e}", case.display()));
        assert_eq!(
            without_origins(back.config),
            without_origins(loaded.config.clone()),
            "{}: JSON round trip",
            case.display()
        );

        // The golden file is a config too: its relative paths resolve against
        // its directory. (When it differs from the output, the diff above says more.)
        let golden = case.with_extension("json");
        if !bless() && read(&golden) == json {
            let from_golden = parse_json(&read(&golden), &golden)
                .unwrap_or_else(|e| panic!("{} should load: {e}", golden.display()));
            assert_eq!(
                without_origins(from_golden.config),
                without_origins(loaded.config),
                "{}: golden JSON loads to the adapted config",
                golden.display()
            );
        }
    }
    finish(failures);
}

#[test]
fn err_cases_fail_with_their_golden_message() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let mut failures = Vec::new();
    let mut all = cases("tests/ui/err", "Caddyfile");
    all.extend(cases("tests/ui/err", "json"));
    for case in all {
        let src = read(&case);
        let result = if case.extension().is_some_and(|e| e == "json") {
            parse_json(&src, &case)
        } else {
            let env = env_of(&src);
            parse_caddyfile(&src, &case, &|k| env.get(k).cloned())
        };
        let actual = match result {
            Ok(_) => "(adapted without error)\n".to_owned(),
            Err(e) => format!("{e}\n"),
        };
        expect(&case.with_extension("err"), Some(&actual), &mut failures);
    }
    finish(failures);
}
