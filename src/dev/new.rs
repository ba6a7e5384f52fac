//! `gojinn new NAME --lang L`: writes a function project from the templates embedded
//! in the binary (`templates/` in the repository), so it works from an installed
//! binary with no checkout around.
//!
//! Every project gets the function's source, a README, a `Caddyfile` that serves it,
//! and `tests/request.json` + `tests/expected.txt` (a request body and the lines its
//! response must contain). Rust projects get the SDK's sources vendored into
//! `NAME/gojinn-sdk`: a path dependency that builds offline and from anywhere.

use super::Lang;
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// One file of a template: its path inside the project and its text, in which
/// `{{name}}` (and a few other `{{…}}` keys) are replaced.
struct File {
    path: &'static str,
    text: &'static str,
    /// For a file taken from an example (the example *is* the template, so the two
    /// cannot drift apart): the example's name, replaced by the project's.
    example: Option<&'static str>,
}

macro_rules! file {
    ($path:literal, $src:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("../../", $src)),
            example: None,
        }
    };
    ($path:literal, $src:literal, example $name:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("../../", $src)),
            example: Some($name),
        }
    };
}

const COMMON: &[File] = &[
    file!("Caddyfile", "templates/common/Caddyfile"),
    file!("README.md", "templates/common/README.md"),
    file!("tests/request.json", "templates/common/request.json"),
    file!(".gitignore", "templates/common/gitignore"),
];

const RUST: &[File] = &[
    file!("Cargo.toml", "templates/rust/Cargo.toml"),
    file!("Cargo.lock", "templates/rust/Cargo.lock"),
    file!(".cargo/config.toml", "templates/rust/.cargo/config.toml"),
    file!("src/main.rs", "examples/rust-hello/src/main.rs", example "rust-hello"),
    file!(
        "gojinn-sdk/Cargo.toml",
        "templates/rust/gojinn-sdk.Cargo.toml"
    ),
    file!("gojinn-sdk/src/lib.rs", "crates/gojinn-sdk/src/lib.rs"),
    file!(
        "gojinn-sdk/src/base64.rs",
        "crates/gojinn-sdk/src/base64.rs"
    ),
    file!("gojinn-sdk/src/db.rs", "crates/gojinn-sdk/src/db.rs"),
    file!("gojinn-sdk/src/error.rs", "crates/gojinn-sdk/src/error.rs"),
    file!(
        "gojinn-sdk/src/hostlog.rs",
        "crates/gojinn-sdk/src/hostlog.rs"
    ),
    file!("gojinn-sdk/src/http.rs", "crates/gojinn-sdk/src/http.rs"),
    file!("gojinn-sdk/src/kv.rs", "crates/gojinn-sdk/src/kv.rs"),
    file!(
        "gojinn-sdk/src/request.rs",
        "crates/gojinn-sdk/src/request.rs"
    ),
    file!(
        "gojinn-sdk/src/response.rs",
        "crates/gojinn-sdk/src/response.rs"
    ),
    file!("gojinn-sdk/src/sys.rs", "crates/gojinn-sdk/src/sys.rs"),
];

const C: &[File] = &[
    file!("main.c", "examples/c-hello/hello.c", example "c-hello"),
    file!("Makefile", "templates/c/Makefile"),
    file!("gojinn.h", "crates/gojinn-sdk/c/gojinn.h"),
];

const GO: &[File] = &[
    file!("main.go", "examples/go-hello/main.go", example "go-hello"),
    file!("go.mod", "examples/go-hello/go.mod", example "go-hello"),
    file!("gojinn/gojinn.go", "examples/go-hello/gojinn/gojinn.go"),
];

const ZIG: &[File] = &[file!("main.zig", "examples/zig-hello/main.zig", example "zig-hello")];

const ASSEMBLYSCRIPT: &[File] = &[
    file!(
        "assembly/index.ts",
        "examples/as-hello/assembly/index.ts",
        example "as-hello"
    ),
    file!("package.json", "templates/assemblyscript/package.json"),
    file!(
        "package-lock.json",
        "templates/assemblyscript/package-lock.json"
    ),
];

const WAT: &[File] = &[file!("main.wat", "templates/wat/main.wat")];

/// What the README and Caddyfile say about one language.
struct Facts {
    language: &'static str,
    source: &'static str,
    /// Memory limit in the Caddyfile: standard Go's runtime needs far more than the
    /// others (docs/languages.md).
    memory: &'static str,
    toolchain: &'static str,
    files: &'static str,
    /// Lines the response to tests/request.json must contain.
    expected: &'static str,
}

const HELLO_EXPECTED: &str =
    "\"method\":\"POST\"\n\"echo\":{\"greeting\":\"hi\",\"items\":[1,2,3]}\n";

fn facts(lang: Lang) -> Facts {
    match lang {
        Lang::Rust => Facts {
            language: "Rust",
            source: "src/main.rs",
            memory: "16MB",
            toolchain: "Rust with the `wasm32-wasip1` target (`gojinn build` adds the target with \
                rustup when it is missing). `.cargo/config.toml` selects the target and links a \
                64 KiB stack instead of Rust's 1 MiB default: a smaller memory makes each request \
                cheaper.\n\nThe SDK is vendored in `gojinn-sdk/` (a copy of Gojinn's \
                `crates/gojinn-sdk` from the `gojinn` binary that made this project), so the \
                project builds offline and outside a Gojinn checkout. To follow a checkout instead, \
                set `gojinn-sdk = { path = \"/path/to/gojinn/crates/gojinn-sdk\" }` in \
                `Cargo.toml` and delete `gojinn-sdk/`.",
            files: "- `src/main.rs`: the handler, on `gojinn_sdk::{run, Request, Response, log}`\n\
                - `gojinn-sdk/`: the vendored SDK (request/response types, host capabilities)\n\
                - `Cargo.lock`: pinned dependency versions (serde, serde_json)",
            expected: HELLO_EXPECTED,
        },
        Lang::C => Facts {
            language: "C",
            source: "main.c",
            memory: "16MB",
            toolchain: "clang, lld and wasi-libc (Debian/Ubuntu: `apt-get install clang lld \
                wasi-libc libclang-rt-14-dev-wasm32`, with the clang major version in the last \
                name). `gojinn build` runs `make`; the Makefile links a 64 KiB stack.",
            files: "- `main.c`: the handler, with a small strict JSON scanner (no library)\n\
                - `gojinn.h`: the `gojinn` host imports (`gojinn_log`, KV, SQL, HTTP)\n\
                - `Makefile`: the clang command line",
            expected: HELLO_EXPECTED,
        },
        Lang::Go => Facts {
            language: "standard Go",
            source: "main.go",
            memory: "64MB",
            toolchain: "Go 1.21 or later (Debian: `golang-1.23-go` from bookworm-backports). \
                `gojinn build` runs `GOTOOLCHAIN=local GOPROXY=off GOOS=wasip1 GOARCH=wasm go \
                build -trimpath -ldflags=-s`. Standard Go's runtime needs about 28 MB for the \
                smallest request, hence `memory_limit 64MB` in the Caddyfile.",
            files: "- `main.go`: the handler\n\
                - `gojinn/gojinn.go`: the contract's helper types (Request, Response, Run, Log) and HostLog (`host_log`)",
            expected: HELLO_EXPECTED,
        },
        Lang::Zig => Facts {
            language: "Zig",
            source: "main.zig",
            memory: "16MB",
            toolchain: "Zig 0.14 (`python3 -m pip install ziglang==0.14.1` in a venv, then \
                `python -m ziglang` or set `ZIG`). `gojinn build` runs `zig build-exe main.zig \
                -target wasm32-wasi -O ReleaseSmall -fstrip --stack 65536`.",
            files: "- `main.zig`: the handler, on `std.os.wasi` and `std.json`",
            expected: HELLO_EXPECTED,
        },
        Lang::AssemblyScript => Facts {
            language: "AssemblyScript",
            source: "assembly/index.ts",
            memory: "16MB",
            toolchain: "Node.js 18 or later, then `npm ci` in this folder (installs the pinned \
                `assemblyscript` and `@assemblyscript/wasi-shim`). `gojinn build` runs `asc` \
                with the wasi-shim config.",
            files: "- `assembly/index.ts`: the handler, with a small strict JSON scanner\n\
                - `package.json`, `package-lock.json`: the pinned compiler and shim",
            expected: HELLO_EXPECTED,
        },
        Lang::Wat => Facts {
            language: "WebAssembly text",
            source: "main.wat",
            memory: "1MB",
            toolchain: "None: the server compiles `.wat` itself. `gojinn build` only checks that \
                the module loads. This function answers a fixed JSON object without reading the \
                request; reading and parsing JSON by hand in WAT is possible but long.",
            files: "- `main.wat`: the whole function",
            expected: "",
        },
    }
}

/// The project's template files.
fn files(lang: Lang) -> &'static [File] {
    match lang {
        Lang::Rust => RUST,
        Lang::C => C,
        Lang::Go => GO,
        Lang::Zig => ZIG,
        Lang::AssemblyScript => ASSEMBLYSCRIPT,
        Lang::Wat => WAT,
    }
}

/// The module file a project serves, relative to its folder.
pub(crate) fn module_name(name: &str, lang: Lang) -> String {
    match lang {
        Lang::Wat => "main.wat".to_owned(),
        _ => format!("{name}.wasm"),
    }
}

/// Checks NAME: it becomes a folder, a Cargo package, a Go module path, an npm
/// package name and a file name, so it must be safe for all of them.
pub(crate) fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok_start || !ok_rest || name.len() > 64 {
        bail!(
            "invalid project name `{name}`: use 1 to 64 characters, a lowercase letter first, \
             then lowercase letters, digits, `-` or `_` (it names the folder, the package and \
             the module)"
        );
    }
    Ok(())
}

/// `gojinn new`: creates `parent/name` for `lang`. Refuses an existing path.
pub(crate) fn create(name: &str, lang: Lang, parent: &Path) -> anyhow::Result<PathBuf> {
    validate_name(name)?;
    let dir = parent.join(name);
    if dir.symlink_metadata().is_ok() {
        bail!(
            "`{}` already exists; `gojinn new` never overwrites: pick another name or remove it",
            dir.display()
        );
    }
    let f = facts(lang);
    let module = module_name(name, lang);
    let mut expected = format!("\"message\":\"hello from {}\"\n", lang.name());
    expected.push_str(f.expected);
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{lang}}", lang.name())
            .replace("{{language}}", f.language)
            .replace("{{source}}", f.source)
            .replace("{{module}}", &module)
            .replace("{{memory}}", f.memory)
            .replace("{{toolchain}}", f.toolchain)
            .replace("{{files}}", f.files)
            .replace("{{sdk_version}}", env!("CARGO_PKG_VERSION"))
    };
    // Written into a temporary sibling and renamed at the end, so a failure halfway
    // leaves no half project behind (and a second `new` still refuses a real one).
    let tmp = parent.join(format!(".{name}.gojinn-new.{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        for file in COMMON.iter().chain(files(lang)) {
            let text = match file.example {
                Some(example) => fill(&file.text.replace(example, name)),
                None => fill(file.text),
            };
            write(&tmp.join(file.path), &text)?;
        }
        write(&tmp.join("tests/expected.txt"), &expected)?;
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["x", "hello-world", "a_1", "fn2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1x",
            "X",
            "a/b",
            "..",
            "-a",
            "a b",
            "héllo",
            &"a".repeat(65),
        ] {
            let err = validate_name(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    /// The vendored SDK must carry every source file of crates/gojinn-sdk: a module
    /// added there and missing from `RUST` would break every new Rust project.
    #[test]
    fn vendored_sdk_is_complete() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/gojinn-sdk/src");
        for entry in std::fs::read_dir(&src).expect("list the SDK") {
            let name = entry.expect("entry").file_name();
            let name = name.to_str().expect("utf-8");
            let vendored = format!("gojinn-sdk/src/{name}");
            assert!(
                RUST.iter().any(|f| f.path == vendored),
                "crates/gojinn-sdk/src/{name} is not vendored by `gojinn new --lang rust`: add it to RUST in src/dev/new.rs"
            );
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let base = std::env::temp_dir().join(format!("gojinn-new-unit-{}", std::process::id()));
        std::fs::create_dir_all(&base).expect("mkdir");
        for lang in [
            Lang::Rust,
            Lang::C,
            Lang::Go,
            Lang::Zig,
            Lang::AssemblyScript,
            Lang::Wat,
        ] {
            let dir = create(&format!("p-{}", lang.name()), lang, &base).expect("create");
            for file in COMMON.iter().chain(files(lang)) {
                let text = std::fs::read_to_string(dir.join(file.path)).expect("read");
                assert!(!text.contains("{{"), "{}: {}", lang.name(), file.path);
            }
            let err = create(&format!("p-{}", lang.name()), lang, &base)
                .expect_err("second create")
                .to_string();
            assert!(err.contains("already exists"), "{err}");
        }
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
