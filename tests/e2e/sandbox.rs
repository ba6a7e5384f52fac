use crate::harness::{guest_route, Server};

#[test]
fn guest_sees_only_granted_env_and_args() {
    let routes = guest_route(
        "/*",
        "env",
        "            env DB_HOST \"localhost\"\n            env FROM_HOST {env.GOJINN_E2E_SECRET}\n            args --flag value",
    );
    let s = Server::with_routes_env(
        "sandbox-env",
        &routes,
        &[("GOJINN_E2E_SECRET", "s3cret"), ("HOST_ONLY", "leak")],
    );
    let v = s.get("/").json();
    assert_eq!(
        v["env"],
        serde_json::json!([["DB_HOST", "localhost"], ["FROM_HOST", "s3cret"]]),
        "no inherited environment"
    );
    assert_eq!(
        v["args"],
        serde_json::json!(["gojinn-test-guest.wasm", "env", "--flag", "value"])
    );
}

#[test]
fn guest_has_no_filesystem_and_no_network() {
    let s = Server::with_routes("sandbox-fs", &guest_route("/*", "sandbox", ""));
    let v = s.get("/").json();
    for probe in ["fs_root", "fs_cwd", "passwd", "create", "net"] {
        assert_eq!(v[probe], "denied", "{probe}: {v}");
    }
}

#[test]
fn unset_env_placeholder_is_empty_with_a_warning() {
    let routes = guest_route(
        "/*",
        "env",
        "            env MISSING {env.GOJINN_E2E_NEVER_SET}",
    );
    let s = Server::with_routes("sandbox-unset", &routes);
    let v = s.get("/").json();
    assert_eq!(v["env"], serde_json::json!([["MISSING", ""]]));
    s.wait_for_log(|l| l.contains("GOJINN_E2E_NEVER_SET") && l.contains("WARN"))
        .expect("warning about the unset variable");
}
