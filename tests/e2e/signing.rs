//! Signed modules: `keygen`/`sign`/`verify`, and the `security` policy at load
//! and at reload (strict refuses, audit runs with a warning).

use crate::harness::{guest, scratch, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gojinn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(args)
        // Shared with the other tests, so a module compiled by one is in the
        // cache: verification must still happen first.
        .env(
            "GOJINN_CACHE_DIR",
            crate::harness::root().join("target/e2e-cache"),
        )
        .output()
        .expect("run gojinn")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A key pair `dir/name.{priv,pub}` and the public key's hex.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let prefix = dir.join(name);
    let out = gojinn(&["keygen", prefix.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out));
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("pub file");
    (dir.join(format!("{name}.priv")), public.trim().to_owned())
}

/// A copy of the test guest at `dir/name`.
fn copy_guest(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(guest(), &path).expect("copy guest");
    path
}

fn sign(key: &Path, module: &Path) {
    let out = gojinn(&[
        "sign",
        "--key",
        key.to_str().expect("utf-8"),
        module.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

fn caddyfile(module: &Path, policy: &str, key: &str) -> String {
    format!(
        "{{\n    admin off\n    security {{\n        policy {policy}\n        trusted_key {key}\n    }}\n}}\n\n:0 {{\n    gojinn {} {{\n        args echo\n    }}\n}}\n",
        module.display()
    )
}

/// Flips one byte inside the module part of a signed file.
fn tamper(module: &Path) {
    let mut bytes = std::fs::read(module).expect("read module");
    bytes[100] ^= 0x01;
    std::fs::write(module, bytes).expect("write module");
}

#[test]
fn keygen_sign_verify_round_trip() {
    let dir = scratch("sign-cli");
    let (private, public_hex) = keygen(&dir, "release");
    assert_eq!(public_hex.len(), 64);
    let private_text = std::fs::read_to_string(&private).expect("priv");
    assert_eq!(private_text.trim().len(), 128);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&private)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Never overwrites a key.
    let again = gojinn(&["keygen", dir.join("release").to_str().expect("utf-8")]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    let module = copy_guest(&dir, "fn.wasm");
    let plain_len = std::fs::metadata(&module).expect("meta").len();
    let public = dir.join("release.pub");
    let verify = |m: &Path| {
        gojinn(&[
            "verify",
            "--pub",
            public.to_str().expect("utf-8"),
            m.to_str().expect("utf-8"),
        ])
    };

    let unsigned = verify(&module);
    assert!(!unsigned.status.success());
    assert!(
        text(&unsigned).contains("not signed"),
        "{}",
        text(&unsigned)
    );

    sign(&private, &module);
    assert_eq!(
        std::fs::metadata(&module).expect("meta").len(),
        plain_len + 69
    );
    let good = verify(&module);
    assert!(good.status.success(), "{}", text(&good));
    assert!(text(&good).contains("good signature"));

    // Re-signing replaces the footer instead of stacking a second one.
    sign(&private, &module);
    assert_eq!(
        std::fs::metadata(&module).expect("meta").len(),
        plain_len + 69
    );

    // `-o` leaves the input alone.
    let other = dir.join("copy.wasm");
    let plain = copy_guest(&dir, "plain.wasm");
    let out = gojinn(&[
        "sign",
        "--key",
        private.to_str().expect("utf-8"),
        plain.to_str().expect("utf-8"),
        "-o",
        other.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::metadata(&plain).expect("meta").len(), plain_len);
    assert!(verify(&other).status.success());

    tamper(&module);
    let bad = verify(&module);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("does not verify"), "{}", text(&bad));

    let (_, _) = keygen(&dir, "other");
    let wrong = gojinn(&[
        "verify",
        "--pub",
        dir.join("other.pub").to_str().expect("utf-8"),
        other.to_str().expect("utf-8"),
    ]);
    assert!(!wrong.status.success());
}

#[test]
fn strict_serves_a_good_signature_and_refuses_tampered_unsigned_and_wrong_key() {
    let dir = scratch("sign-strict");
    let (private, public_hex) = keygen(&dir, "k");
    let (other_private, _) = keygen(&dir, "other");

    let good = copy_guest(&dir, "good.wasm");
    sign(&private, &good);
    let config = dir.join("Caddyfile");
    std::fs::write(&config, caddyfile(&good, "strict", &public_hex)).expect("write");
    let server = Server::start(&config, &[]);
    let r = server.get("/hello");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["uri"], "/hello");
    drop(server);

    // The guest itself was compiled (and cached) above: each refusal below must
    // come from the signature check, not from a compile error or a cache hit.
    let tampered = copy_guest(&dir, "tampered.wasm");
    sign(&private, &tampered);
    tamper(&tampered);
    let unsigned = copy_guest(&dir, "unsigned.wasm");
    let wrong_key = copy_guest(&dir, "wrong.wasm");
    sign(&other_private, &wrong_key);
    for (module, reason) in [
        (&tampered, "does not verify"),
        (&unsigned, "not signed"),
        (&wrong_key, "does not verify"),
    ] {
        std::fs::write(&config, caddyfile(module, "strict", &public_hex)).expect("write");
        let out = gojinn(&["run", "--config", config.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "{}", text(&out));
        let t = text(&out);
        assert!(
            t.contains(&module.display().to_string())
                && t.contains("strict signature policy")
                && t.contains(reason),
            "{t}"
        );
        let out = gojinn(&["validate", "--config", config.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "{}", text(&out));
    }
}

#[test]
fn audit_runs_unsigned_and_badly_signed_modules_with_a_warning() {
    let dir = scratch("sign-audit");
    let (private, public_hex) = keygen(&dir, "k");
    let unsigned = copy_guest(&dir, "unsigned.wasm");
    // Tampered so that it still compiles: one byte of the signature itself.
    let forged = copy_guest(&dir, "forged.wasm");
    sign(&private, &forged);
    let mut bytes = std::fs::read(&forged).expect("read");
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    std::fs::write(&forged, bytes).expect("write");

    let config = dir.join("Caddyfile");
    std::fs::write(
        &config,
        format!(
            "{{\n    admin off\n    security {{\n        policy audit\n        trusted_key {public_hex}\n    }}\n}}\n\n:0 {{\n    handle /u {{\n        gojinn {} {{\n            args echo\n        }}\n    }}\n    handle /f {{\n        gojinn {} {{\n            args echo\n        }}\n    }}\n}}\n",
            unsigned.display(),
            forged.display()
        ),
    )
    .expect("write");
    let server = Server::start(&config, &[]);
    assert_eq!(server.get("/u").status, 200);
    assert_eq!(server.get("/f").status, 200);
    let logs = server.logs();
    let warned = |name: &str, reason: &str| {
        logs.iter()
            .any(|l| l.contains("signature policy audit") && l.contains(name) && l.contains(reason))
    };
    assert!(warned("unsigned.wasm", "not signed"), "{}", logs.join("\n"));
    assert!(
        warned("forged.wasm", "does not verify"),
        "{}",
        logs.join("\n")
    );
}

#[test]
fn strict_refuses_a_tampered_module_at_reload_and_keeps_serving() {
    let dir = scratch("sign-reload");
    let (private, public_hex) = keygen(&dir, "k");
    let module = copy_guest(&dir, "fn.wasm");
    sign(&private, &module);
    let config = dir.join("Caddyfile");
    std::fs::write(&config, caddyfile(&module, "strict", &public_hex)).expect("write");
    let server = Server::start(&config, &[]);
    assert_eq!(server.get("/").status, 200);

    tamper(&module);
    server.signal("HUP");
    let refused = server
        .wait_for_log(|l| l.contains("reload refused"))
        .expect("reload refused");
    assert!(
        refused.contains("fn.wasm") && refused.contains("does not verify"),
        "{refused}"
    );
    assert_eq!(server.get("/").status, 200);
}
