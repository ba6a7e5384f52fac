//! Jobs (issue 19) against the real binary and real stores: `host_enqueue`
//! runs its target with the payload; an asynchronous request is answered 202
//! and its response kept; failures are retried with back-off, then dead and
//! re-queueable through the admin API; cron fires once per tick across two
//! nodes sharing Redis; `catch_up once` runs one tick missed while the server
//! was down; a job running when the server is told to stop finishes first; a
//! node killed mid-job loses the job to the other
//! after its lease; 10,000 jobs under load are none lost and none run twice.
//! The test guest's `job` mode marks each run in KV (`dup:<key>` when a key
//! is marked twice), so the tests count runs in the function's own store.

use crate::harness::{guest, scratch, try_get, Server};
use crate::host::one;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a test waits for jobs to run.
const JOBS_TIMEOUT: Duration = Duration::from_secs(60);

/// KV for every key, and `enqueue` of the test guest.
fn grants() -> String {
    format!(
        "            permissions {{\n                kv_read *\n                kv_write *\n                enqueue {}\n            }}",
        guest().display()
    )
}

/// A `job` route at `path` with `extra` sub-directives, and a `/kv` route to
/// read the KV store (`args host`), both on `kv`.
fn routes(path: &str, extra: &str, kv: &str) -> String {
    let g = guest().display();
    let grants = grants();
    format!(
        "    handle {path} {{\n        gojinn {g} {{\n            args job\n            timeout 10s\n{kv}\n{grants}\n{extra}\n        }}\n    }}\n    handle /kv {{\n        gojinn {g} {{\n            args host\n{kv}\n{grants}\n        }}\n    }}\n"
    )
}

/// Starts gojinn with `globals` and the site `:0 { body }`; its admin port.
fn start(dir: &Path, globals: &str, body: &str) -> (Server, u16) {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("Caddyfile");
    std::fs::write(
        &path,
        format!(
            "{{\n    admin 127.0.0.1:0\n    storage {}\n{globals}\n}}\n\n:0 {{\n{body}\n}}\n",
            dir.join("storage").display()
        ),
    )
    .expect("write Caddyfile");
    let server = Server::start(&path, &[]);
    let line = server
        .wait_for_log(|l| l.contains("\"message\":\"admin listening\""))
        .expect("admin listening");
    let v: Value = serde_json::from_str(&line).expect("json");
    let admin = v["fields"]["port"].as_u64().expect("port") as u16;
    (server, admin)
}

/// KV keys starting with `prefix`.
fn keys(server: &Server, prefix: &str) -> Vec<String> {
    let r = one(server, "/kv", json!({"call": "kv_list", "key": prefix}));
    let out: Value = serde_json::from_str(r["out"].as_str().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("kv_list answer ({e}): {r}"));
    assert_eq!(out["more"], false, "a list cut short: {r}");
    let mut keys: Vec<String> = serde_json::from_value(out["keys"].clone()).expect("keys");
    keys.sort();
    keys
}

/// Waits until `done` holds, or panics with `what` and the log.
fn wait_until(server: &Server, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + JOBS_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            server.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `method` on the admin job API; status and JSON.
fn api(admin: u16, method: &str, path: &str) -> (u16, Value) {
    let resp = crate::harness::request_to(admin, method, path, &[], b"");
    let json = serde_json::from_str(&resp.text()).unwrap_or(Value::Null);
    (resp.status, json)
}

/// Waits until job `id` is in `state`; its record.
fn wait_state(server: &Server, admin: u16, id: &str, state: &str) -> Value {
    let mut job = Value::Null;
    wait_until(server, &format!("job {id} to be {state}"), || {
        job = api(admin, "GET", &format!("/jobs/{id}")).1;
        job["state"] == state
    });
    job
}

/// Posts `payload` asynchronously to `path`; the job id.
fn post_async(server: &Server, path: &str, payload: Value) -> String {
    let resp = server.request(
        "POST",
        path,
        &[("X-Gojinn-Async", "true")],
        payload.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp
        .header("x-gojinn-job-id")
        .expect("job id header")
        .to_owned();
    assert_eq!(resp.json()["job_id"], id.as_str());
    assert_eq!(resp.json()["status"], "queued");
    id
}

#[test]
fn host_enqueue_runs_the_target_with_its_payload() {
    let dir = scratch("jobs-enqueue");
    let (server, _) = start(&dir, "", &routes("/job", "", ""));
    let name = guest()
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    let resp = server.request(
        "POST",
        "/job",
        &[],
        json!({"do": "enqueue", "module": name, "payload": {"key": "from-enqueue"}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json();
    assert_eq!(body["rets"], json!([0]), "queued");
    wait_until(&server, "the enqueued job's mark", || {
        keys(&server, "from-enqueue") == ["from-enqueue"]
    });
    // A module the grant does not name is refused (1), and nothing runs.
    let resp = server.request(
        "POST",
        "/job",
        &[],
        json!({"do": "enqueue", "module": "other.wasm", "payload": {"key": "never"}})
            .to_string()
            .as_bytes(),
    );
    let body: Value = resp.json();
    assert_eq!(body["rets"], json!([1]));
    assert!(server
        .wait_for_log(|l| l.contains("not in this route's `enqueue` permission"))
        .is_some());
}

#[test]
fn an_async_request_is_answered_202_and_its_response_kept() {
    let dir = scratch("jobs-async");
    let (server, admin) = start(&dir, "", &routes("/job", "", ""));
    let id = post_async(&server, "/job", json!({"key": "async-one"}));
    let job = wait_state(&server, admin, &id, "done");
    assert_eq!(job["kind"], "async");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["result"]["status"], 200, "{job}");
    let body: Value =
        serde_json::from_str(job["result"]["body"].as_str().expect("body")).expect("json");
    assert_eq!(body["marked"], "async-one");
    assert_eq!(keys(&server, "async-one"), ["async-one"]);
    // Unknown ids and states are named.
    assert_eq!(api(admin, "GET", "/jobs/nope").0, 404);
    assert_eq!(api(admin, "GET", "/jobs?state=lost").0, 400);
}

#[test]
fn failures_are_retried_then_dead_and_a_dead_job_is_retried_through_the_api() {
    let dir = scratch("jobs-retry");
    let (server, admin) = start(
        &dir,
        "",
        &routes(
            "/job",
            "            retries 2\n            retry_backoff 100ms",
            "",
        ),
    );
    let flaky = post_async(&server, "/job", json!({"do": "flaky", "key": "flaky"}));
    let failing = post_async(&server, "/job", json!({"do": "fail"}));
    let job = wait_state(&server, admin, &flaky, "done");
    assert_eq!(job["attempts"], 3, "failed twice, then succeeded: {job}");
    let dead = wait_state(&server, admin, &failing, "dead");
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert!(
        dead["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{dead}"
    );
    let (status, list) = api(admin, "GET", "/jobs?state=dead");
    assert_eq!(status, 200);
    assert!(list["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .any(|j| j["id"] == failing.as_str()));
    // The CLI lists it and re-queues it with its attempts reset; it fails
    // again, three more times.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gojinn"))
            .arg("jobs")
            .args(args)
            .args(["--address", &format!("127.0.0.1:{admin}")])
            .output()
            .expect("run gojinn jobs");
        assert!(
            out.status.success(),
            "gojinn jobs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = cli(&["list", "--state", "dead"]);
    assert!(
        listed.contains(&failing) && listed.contains("attempts 3/3"),
        "{listed}"
    );
    assert!(cli(&["show", &failing]).contains("\"state\": \"dead\""));
    cli(&["retry", &failing]);
    assert_eq!(
        api(admin, "POST", &format!("/jobs/{flaky}/retry")).0,
        409,
        "only dead jobs"
    );
    wait_until(&server, "the retried job to die again", || {
        let job = api(admin, "GET", &format!("/jobs/{failing}")).1;
        job["state"] == "dead" && job["finished_ms"] != dead["finished_ms"]
    });
    assert_eq!(api(admin, "DELETE", &format!("/jobs/{failing}")).0, 200);
    assert_eq!(api(admin, "GET", &format!("/jobs/{failing}")).0, 404);
    assert!(keys(&server, "dup:").is_empty());
}

/// Two nodes on `queue` (a shared store URL) with a cron trigger every
/// second: each tick runs once.
fn cron_once_per_tick(name: &str, queue: &str, kv: &str) {
    let dir = scratch(name);
    let g = guest().display();
    let cron = format!("            cron \"@every 1s\" {g}");
    let globals = format!("    queue {queue}");
    let (a, _) = start(&dir.join("a"), &globals, &routes("/job", &cron, kv));
    let (b, _) = start(&dir.join("b"), &globals, &routes("/job", &cron, kv));
    wait_until(&a, "three cron ticks", || keys(&a, "cron:").len() >= 3);
    assert!(
        keys(&a, "dup:").is_empty(),
        "a tick ran twice: {:?}",
        keys(&a, "dup:")
    );
    drop(b);
}

#[test]
fn cron_fires_once_per_tick_on_one_node() {
    let dir = scratch("jobs-cron-one");
    let g = guest().display();
    let (server, _) = start(
        &dir,
        "",
        &routes("/job", &format!("            cron \"@every 1s\" {g}"), ""),
    );
    wait_until(&server, "two cron ticks", || {
        keys(&server, "cron:").len() >= 2
    });
    let ticks = keys(&server, "cron:");
    assert!(
        ticks[0].ends_with('Z'),
        "scheduled_at is RFC 3339: {ticks:?}"
    );
    assert!(keys(&server, "dup:").is_empty());
}

#[test]
fn catch_up_once_runs_one_tick_missed_while_the_server_was_down() {
    let dir = scratch("jobs-cron-catch-up");
    let g = guest().display();
    let cron = format!(
        "            cron \"@every 1s\" {g} {{\n                catch_up once\n            }}"
    );
    let catching_up = |l: &str| l.contains("catching up a missed cron tick");
    let first = start(&dir, "", &routes("/job", &cron, "")).0;
    wait_until(&first, "a cron tick", || !keys(&first, "cron:").is_empty());
    assert!(
        !first.logs().iter().any(|l| catching_up(l)),
        "a fresh queue has no tick to catch up"
    );
    let before = keys(&first, "cron:");
    drop(first);
    // The downtime under test: ticks of an `@every 1s` trigger fall in it.
    std::thread::sleep(Duration::from_millis(2500));

    let second = start(&dir, "", &routes("/job", &cron, "")).0;
    let line = second
        .wait_for_log(catching_up)
        .expect("the restarted server catches up a missed tick");
    let v: Value = serde_json::from_str(&line).expect("json");
    let missed = v["fields"]["scheduled_at"]
        .as_str()
        .expect("scheduled_at")
        .to_owned();
    let last_before = before.last().expect("a tick before the downtime");
    assert!(
        format!("cron:{missed}") > *last_before,
        "the caught-up tick {missed} is after the last one run, {last_before}"
    );
    let key = format!("cron:{missed}");
    wait_until(&second, "the caught-up tick to run", || {
        keys(&second, "cron:").contains(&key)
    });
    // Then the schedule goes on, and only one missed tick was run.
    wait_until(&second, "a tick after the catch-up", || {
        keys(&second, "cron:").last() > Some(&key)
    });
    let caught_up = second.logs().iter().filter(|l| catching_up(l)).count();
    assert_eq!(
        caught_up, 1,
        "one missed tick, however many fell in the downtime"
    );
    assert!(keys(&second, "dup:").is_empty());
}

/// A server told to stop (SIGTERM) lets a job that is running finish within its
/// `grace_period` before it exits: started again on the same storage, the job is
/// done after one attempt, its mark made once.
#[test]
fn a_job_running_at_shutdown_finishes_within_the_grace_period() {
    let dir = scratch("jobs-graceful");
    let body = routes("/job", "", "");
    let (mut first, admin) = start(&dir, "    grace_period 20s", &body);
    let sleep = Duration::from_millis(3000);
    let posted = Instant::now();
    let id = post_async(
        &first,
        "/job",
        json!({"do": "sleep", "ms": sleep.as_millis() as u64, "key": "graceful"}),
    );
    wait_state(&first, admin, &id, "running");
    first.signal("TERM");
    assert!(
        first.wait_exit(Duration::from_secs(30)).is_some(),
        "the server did not exit; log:\n{}",
        first.logs().join("\n")
    );
    // The job started after it was posted, so it ends no sooner than this.
    assert!(
        posted.elapsed() >= sleep,
        "the server exited {:?} after the post, before the job's {sleep:?} of work",
        posted.elapsed()
    );
    assert!(
        !first
            .logs()
            .iter()
            .any(|l| l.contains("jobs still running after the grace period")),
        "the job was cut off"
    );

    let (second, admin) = start(&dir, "", &body);
    let (status, job) = api(admin, "GET", &format!("/jobs/{id}"));
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(keys(&second, "graceful"), ["graceful"]);
    assert!(keys(&second, "dup:").is_empty(), "ran once");
}

#[test]
fn cron_fires_once_per_tick_across_two_nodes_sharing_redis() {
    let dir = scratch("jobs-cron-redis");
    let Some(redis) = crate::shared::Redis::start(&dir, 0) else {
        return;
    };
    let url = redis.url();
    cron_once_per_tick(
        "jobs-cron-redis-nodes",
        &url,
        &format!("            kv {url}"),
    );
}

#[test]
fn cron_fires_once_per_tick_across_two_nodes_sharing_postgres() {
    let dir = scratch("jobs-cron-pg");
    let (Some(redis), Some(pg)) = (
        crate::shared::Redis::start(&dir, 0),
        crate::postgres::Postgres::start(),
    ) else {
        return;
    };
    // The queue in PostgreSQL; the marks in Redis, which both nodes read.
    cron_once_per_tick(
        "jobs-cron-pg-nodes",
        &pg.url(),
        &format!("            kv {}", redis.url()),
    );
}

#[test]
fn a_node_killed_mid_job_loses_it_to_the_other_after_its_lease() {
    let dir = scratch("jobs-kill");
    let Some(redis) = crate::shared::Redis::start(&dir, 0) else {
        return;
    };
    let url = redis.url();
    let globals = format!("    queue {url}");
    let kv = format!("            kv {url}");
    let body = routes("/job", "            timeout 3s", &kv).replace("timeout 10s\n", "");
    let (mut a, admin_a) = start(&dir.join("a"), &globals, &body);
    // Node A takes the job and sleeps in it.
    let id = post_async(
        &a,
        "/job",
        json!({"do": "sleep", "ms": 2500, "key": "survivor"}),
    );
    wait_state(&a, admin_a, &id, "running");
    a.signal("KILL");
    assert!(
        a.wait_exit(Duration::from_secs(10)).is_some(),
        "node A died"
    );
    // Node B starts after A died; the job is leased to A until its lease ends
    // (the longest deadline, 3 s, plus 10 s), then B runs it to completion.
    let (b, admin_b) = start(&dir.join("b"), &globals, &body);
    let job = wait_state(&b, admin_b, &id, "done");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(keys(&b, "survivor"), ["survivor"]);
    assert!(keys(&b, "dup:").is_empty(), "ran once to completion");
}

#[test]
fn ten_thousand_jobs_under_load_are_none_lost_and_none_run_twice() {
    let dir = scratch("jobs-10k");
    let Some(redis) = crate::shared::Redis::start(&dir, 0) else {
        return;
    };
    let url = redis.url();
    let globals = format!("    queue {url}");
    let kv = format!("            kv {url}");
    let (a, _) = start(&dir.join("a"), &globals, &routes("/job", "", &kv));
    let (b, _) = start(&dir.join("b"), &globals, &routes("/job", "", &kv));
    let name = guest()
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    // Ten requests of 1,000 host_enqueue calls each, split between the nodes,
    // while both also serve plain requests.
    let load = std::thread::spawn({
        let (pa, pb) = (a.port, b.port);
        move || {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut served = 0;
            while Instant::now() < deadline {
                for port in [pa, pb] {
                    if try_get(port, "/kv").is_ok_and(|r| r.status < 500) {
                        served += 1;
                    }
                }
            }
            served
        }
    });
    for batch in 0..10 {
        let server = if batch % 2 == 0 { &a } else { &b };
        let resp = server.request(
            "POST",
            "/job",
            &[],
            json!({"do": "enqueue", "module": name, "count": 1000, "payload": {"key": format!("k{batch}")}})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(resp.status, 200, "{}", resp.text());
        let body: Value = resp.json();
        let rets = body["rets"].as_array().expect("rets");
        assert!(rets.iter().all(|r| r == 0), "every enqueue succeeded");
    }
    assert!(load.join().expect("load") > 0);
    wait_until(&a, "10,000 marks", || {
        (0..10)
            .map(|batch| keys(&a, &format!("k{batch}:")).len())
            .sum::<usize>()
            == 10_000
    });
    assert!(keys(&a, "dup:").is_empty(), "none ran twice");
}

#[test]
fn a_crash_record_replayed_shows_the_same_fault_and_hides_env_secrets() {
    let dir = scratch("jobs-crash");
    let crashes = dir.join("crashes");
    let g = guest().display();
    let body = format!(
        "    gojinn {g} {{\n        args panic\n        env TOKEN {{env.CRASH_TEST_TOKEN}}\n        env PLAIN visible\n        record_crashes\n        crash_path {}\n    }}\n",
        crashes.display()
    );
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("Caddyfile");
    std::fs::write(
        &config,
        format!("{{\n    admin off\n}}\n\n:0 {{\n{body}}}\n"),
    )
    .expect("write");
    let server = Server::start(&config, &[("CRASH_TEST_TOKEN", "hunter2")]);
    let resp = server.request("POST", "/boom?x=1", &[], b"payload");
    assert_eq!(resp.status, 502, "{}", resp.text());
    let line = server
        .wait_for_log(|l| l.contains("crash recorded"))
        .unwrap_or_else(|| panic!("no crash record; log:\n{}", server.logs().join("\n")));
    let v: Value = serde_json::from_str(&line).expect("json");
    let file = v["fields"]["file"].as_str().expect("file").to_owned();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("record")).expect("json");
    assert_eq!(record["env"]["TOKEN"], gojinn_config_redacted(), "{record}");
    assert_eq!(record["env"]["PLAIN"], "visible");
    assert_eq!(record["wasm_file"], guest().display().to_string());
    assert!(
        record["input"]
            .as_str()
            .is_some_and(|i| i.contains("/boom?x=1") && i.contains("payload")),
        "{record}"
    );
    assert!(!std::fs::read_to_string(&file)
        .expect("record")
        .contains("hunter2"));
    let error = record["error"].as_str().expect("error");
    drop(server);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["replay", &file, "--config"])
        .arg(&config)
        .env("CRASH_TEST_TOKEN", "hunter2")
        .env(
            "GOJINN_CACHE_DIR",
            crate::harness::root().join("target/e2e-cache"),
        )
        .output()
        .expect("run gojinn replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "faults again: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("replayed: {error}")),
        "the same fault `{error}`: {stdout}"
    );
}

/// How `/config` and crash records show a secret.
fn gojinn_config_redacted() -> &'static str {
    "[redacted]"
}

#[test]
fn a_site_level_queue_takes_that_sites_jobs() {
    let dir = scratch("jobs-site-queue");
    let Some(redis) = crate::shared::Redis::start(&dir, 0) else {
        return;
    };
    let url = redis.url();
    // Node A names the Redis queue in its site only; node B globally.
    let site = format!("    queue {url}\n{}", routes("/job", "", ""));
    let (a, _) = start(&dir.join("a"), "", &site);
    let (_b, admin_b) = start(
        &dir.join("b"),
        &format!("    queue {url}"),
        &routes("/job", "", ""),
    );
    let id = post_async(&a, "/job", json!({"key": "site-queued"}));
    let job = wait_state(&a, admin_b, &id, "done");
    assert_eq!(
        job["kind"], "async",
        "node B sees node A's job in the shared queue: {job}"
    );
}
