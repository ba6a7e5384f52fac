//! `gojinn new NAME --lang L`: writes a function project from the templates embedded
//! in the binary (`templates/` in the repository), so it works from an installed
//! binary with no checkout around.
//!
//! Every project gets the function's source, a README, a `Caddyfile` that serves it,
//! and `tests/request.json` + `tests/expected.txt` (a request body and the lines its
//! response must contain). Rust projects get the SDK's sources vendored into
//! `NAME/gojinn-sdk`: a path dependency that builds offline and from anywhere.

use super::{Lang, Module};
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// One file of a template: its path inside the project and its text, in which
/// `{{name}}` (and a few other `{{…}}` keys) are replaced.
pub(crate) struct File {
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

pub(crate) const RUST: &[File] = &[
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

pub(crate) const C: &[File] = &[
    file!("main.c", "examples/c-hello/hello.c", example "c-hello"),
    file!("Makefile", "templates/c/Makefile"),
    file!("gojinn.h", "crates/gojinn-sdk/c/gojinn.h"),
];

pub(crate) const GO: &[File] = &[
    file!("main.go", "examples/go-hello/main.go", example "go-hello"),
    file!("go.mod", "examples/go-hello/go.mod", example "go-hello"),
    file!("gojinn/gojinn.go", "examples/go-hello/gojinn/gojinn.go"),
    file!("gojinn/decode.go", "examples/go-hello/gojinn/decode.go"),
    file!("gojinn/encode.go", "examples/go-hello/gojinn/encode.go"),
    file!(
        "gojinn/host_wasm.go",
        "examples/go-hello/gojinn/host_wasm.go"
    ),
    file!(
        "gojinn/host_other.go",
        "examples/go-hello/gojinn/host_other.go"
    ),
    file!(
        "gojinn/gojinn_test.go",
        "examples/go-hello/gojinn/gojinn_test.go"
    ),
];

pub(crate) const ZIG: &[File] =
    &[file!("main.zig", "examples/zig-hello/main.zig", example "zig-hello")];

pub(crate) const ASSEMBLYSCRIPT: &[File] = &[
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

pub(crate) const WAT: &[File] = &[file!("main.wat", "templates/wat/main.wat")];

/// What the README and Caddyfile say about one language (`{{…}}` keys of the
/// templates), held by the language's entry in [`LANGUAGES`](super::LANGUAGES).
#[derive(Clone, Copy)]
pub(crate) struct Facts {
    /// `{{language}}`: the language's name in prose.
    pub(crate) language: &'static str,
    /// `{{source}}`: the handler's file.
    pub(crate) source: &'static str,
    /// `{{memory}}`: memory limit in the Caddyfile. Standard Go's runtime needs far
    /// more than the others (docs/languages.md).
    pub(crate) memory: &'static str,
    /// `{{toolchain}}`: the README's toolchain section.
    pub(crate) toolchain: &'static str,
    /// `{{files}}`: the README's list of files.
    pub(crate) files: &'static str,
    /// Lines the response to tests/request.json must contain.
    pub(crate) expected: &'static str,
}

/// The lines every hello template's answer to tests/request.json contains.
pub(crate) const HELLO_EXPECTED: &str =
    "\"method\":\"POST\"\n\"echo\":{\"greeting\":\"hi\",\"items\":[1,2,3]}\n";

/// The module file a project serves, relative to its folder.
pub(crate) fn module_name(name: &str, lang: &Lang) -> String {
    match lang.module {
        Module::Source { main, .. } => main.to_owned(),
        Module::Wasm => format!("{name}.wasm"),
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
    let f = &lang.readme;
    let module = module_name(name, &lang);
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
    // go.mod names the Go installed, as `go mod init` writes it: an older `go`
    // line runs the program with that version's GODEBUG defaults, which Go parses
    // at every start (`go 1.21` costs Go 1.27 15 % a request). The example says
    // 1.21 so that every supported Go builds it.
    let go_line = (lang.name() == "go")
        .then(super::build::go_version)
        .flatten()
        .map(|v| format!("\ngo {v}\n"));
    let result = (|| -> anyhow::Result<()> {
        for file in COMMON.iter().chain(lang.template) {
            let mut text = match file.example {
                Some(example) => fill(&file.text.replace(example, name)),
                None => fill(file.text),
            };
            if let (Some(line), "go.mod") = (&go_line, file.path) {
                text = text.replace("\ngo 1.21\n", line);
            }
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
        for lang in Lang::all() {
            let dir = create(&format!("p-{}", lang.name()), lang, &base).expect("create");
            for file in COMMON.iter().chain(lang.template) {
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
