//! The JSON loader and `load_file`.

#![allow(clippy::unwrap_used)] // a failing test should panic

use std::fs;
use std::path::{Path, PathBuf};

use gojinn_config::{load_file, parse_caddyfile, parse_json, ConfigError, Handler};

const SEED: &str = r#"
{
    order gojinn last
    admin :2019
}

:8080 {
    handle /api/* {
        gojinn ./functions/processor.wasm {
            timeout 2s
            memory_limit 128MB
            env DB_HOST "localhost"
            env API_KEY {env.SECRET_KEY}
        }
    }
}
"#;

#[test]
fn adapt_output_round_trips() {
    let file = Path::new("/etc/gojinn/Caddyfile");
    let env = |k: &str| (k == "SECRET_KEY").then(|| "s3cr3t".to_owned());
    let adapted = parse_caddyfile(SEED, file, &env).unwrap();
    assert!(adapted.warnings.is_empty());
    let json = serde_json::to_string_pretty(&adapted.config).unwrap();
    let back = parse_json(&json, Path::new("/elsewhere/config.json")).unwrap();
    let (mut a, mut b) = (adapted.config, back.config);
    assert_eq!(
        a.functions()[0].origin.as_deref(),
        Some("/etc/gojinn/Caddyfile:9:9")
    );
    assert_eq!(
        b.functions()[0].origin.as_deref(),
        Some("/elsewhere/config.json:19:27")
    );
    for c in [&mut a, &mut b] {
        if let Handler::Subroute { routes, .. } = &mut c.sites[0].routes[0].handle {
            if let Handler::Gojinn(f) = &mut routes[0].handle {
                f.origin = None;
            }
        }
    }
    assert_eq!(a, b);
}

#[test]
fn unknown_field_points_at_the_key() {
    let src = "{\n  \"sites\": [],\n  \"admn\": \"x\"\n}";
    let Err(ConfigError::Invalid(d)) = parse_json(src, Path::new("c.json")) else {
        panic!("expected an invalid config");
    };
    assert_eq!((d.line, d.col), (3, 3));
    assert_eq!(
        d.message,
        "unknown field `admn`, expected one of `admin`, `debug`, `storage`, `storage_url`, `queue`, `auto_https`, `log`, `tracing`, `server`, `sites`"
    );
    assert_eq!(d.to_string(), format!("c.json:3:3: {}", d.message));
}

#[test]
fn defaults_and_relative_paths() {
    let src = r#"{"sites": [{"addresses": [{"port": 0}], "routes": [
        {"handle": {"handler": "gojinn", "module": "fn/a.wasm"}},
        {"handle": {"handler": "file_server", "root": "../www"}}
    ]}]}"#;
    let c = parse_json(src, Path::new("/srv/conf/gojinn.json"))
        .unwrap()
        .config;
    assert_eq!(c.admin.as_deref(), Some("localhost:2019"));
    let f = c.functions()[0];
    assert_eq!(f.module, Path::new("/srv/conf/fn/a.wasm"));
    assert_eq!(f.timeout_ms, gojinn_config::DEFAULT_TIMEOUT_MS);
    assert_eq!(
        c.sites[0].routes[1].handle,
        Handler::FileServer {
            root: PathBuf::from("/srv/www"),
            options: Default::default(),
        }
    );
}

#[test]
fn load_file_picks_the_loader_by_extension() {
    let dir = std::env::temp_dir().join(format!("gojinn-config-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let caddyfile = dir.join("Caddyfile");
    fs::write(&caddyfile, ":8080 {\n    gojinn ./a.wasm\n}\n").unwrap();
    let loaded = load_file(&caddyfile).unwrap();
    assert_eq!(loaded.config.functions()[0].module, dir.join("a.wasm"));

    let json = dir.join("gojinn.JSON");
    fs::write(&json, serde_json::to_string(&loaded.config).unwrap()).unwrap();
    assert_eq!(
        load_file(&json).unwrap().config.functions()[0].module,
        dir.join("a.wasm")
    );

    let missing = dir.join("nope");
    let err = load_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read `{}`: ", missing.display())));
    fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19: every jobs option, Caddyfile → JSON → `Config`, with the values
/// the runtime reads.
#[test]
fn every_job_option_round_trips_through_json() {
    use gojinn_config::{CatchUp, Cron, JobPolicy};
    let src = r#"{
    queue rediss://worker:pw@cache.internal:6380/1
}
:8080 {
    queue postgresql://app@db.internal/jobs
    gojinn ./fn/api.wasm {
        cron "0 */2 * * *" ./fn/sweep.wasm
        cron "15 0 3 * * 1-5" ./fn/nightly.wat {
            catch_up once
        }
        cron "@every 90s" ../shared/tick.wasm
        retries 5
        retry_backoff 1m30s
        queue_max 20
        job_payload_max 2MiB
        record_crashes true
        crash_path ../crashes
        permissions {
            enqueue ./fn/worker.wasm /opt/mail.wasm
        }
    }
}
"#;
    let file = Path::new("/etc/gojinn/Caddyfile");
    let adapted = parse_caddyfile(src, file, &|_| None).unwrap().config;
    assert_eq!(
        adapted.queue.as_deref(),
        Some("rediss://worker:pw@cache.internal:6380/1")
    );
    assert_eq!(
        adapted.sites[0].queue.as_deref(),
        Some("postgresql://app@db.internal/jobs")
    );
    let f = adapted.functions()[0];
    assert_eq!(
        f.crons,
        [
            Cron {
                spec: "0 */2 * * *".into(),
                module: "/etc/gojinn/fn/sweep.wasm".into(),
                catch_up: CatchUp::None,
            },
            Cron {
                spec: "15 0 3 * * 1-5".into(),
                module: "/etc/gojinn/fn/nightly.wat".into(),
                catch_up: CatchUp::Once,
            },
            Cron {
                spec: "@every 90s".into(),
                module: "/etc/shared/tick.wasm".into(),
                catch_up: CatchUp::None,
            },
        ]
    );
    assert_eq!(
        f.jobs,
        JobPolicy {
            retries: 5,
            retry_backoff_ms: 90_000,
            queue_max: 20,
            payload_max: 2 << 20,
        }
    );
    assert!(f.record_crashes);
    assert_eq!(f.crash_path.as_deref(), Some(Path::new("/etc/crashes")));
    assert_eq!(
        f.permissions.enqueue,
        [
            PathBuf::from("/etc/gojinn/fn/worker.wasm"),
            PathBuf::from("/opt/mail.wasm")
        ]
    );
    for c in &f.crons {
        assert!(gojinn_config::cron_schedule(&c.spec).is_ok(), "{}", c.spec);
    }

    let json = serde_json::to_string_pretty(&adapted).unwrap();
    let back = parse_json(&json, Path::new("/elsewhere/config.json"))
        .unwrap()
        .config;
    let (mut a, mut b) = (adapted, back);
    for c in [&mut a, &mut b] {
        c.for_each_function_mut(|f| f.origin = None);
    }
    assert_eq!(a, b);

    // Defaults: absent from the JSON form, and read back as defaults.
    let plain = parse_caddyfile(":8080 {\n    gojinn ./a.wasm\n}\n", file, &|_| None)
        .unwrap()
        .config;
    let json = serde_json::to_string(&plain).unwrap();
    for key in [
        "crons",
        "jobs",
        "record_crashes",
        "crash_path",
        "queue",
        "enqueue",
    ] {
        assert!(!json.contains(&format!("\"{key}\"")), "{key} in {json}");
    }
    assert_eq!(plain.functions()[0].jobs, JobPolicy::default());
    assert_eq!(JobPolicy::default().payload_max, 1_048_576);
    // A partial `jobs` object takes the other fields' defaults.
    let src = r#"{"sites": [{"addresses": [{"port": 8080}], "routes": [
        {"handle": {"handler": "gojinn", "module": "a.wasm", "jobs": {"retries": 2}}}
    ]}]}"#;
    let c = parse_json(src, Path::new("/srv/c.json")).unwrap().config;
    assert_eq!(
        c.functions()[0].jobs,
        JobPolicy {
            retries: 2,
            ..JobPolicy::default()
        }
    );
}
