//! The developer loop: `gojinn new` (project templates for every guest language) and
//! `gojinn build` (detects a project's language, runs its toolchain, checks that the
//! module loads).
//!
//! Everything Gojinn knows about a guest language is one entry of [`LANGUAGES`]: how
//! a project is recognised, its template and README facts, how it is built, what
//! installs its toolchain and which file it serves. `--lang`, `gojinn new`,
//! `gojinn build` and project detection all read that table, so adding a language is
//! one entry there plus its template files and build function.

pub(crate) mod build;
pub(crate) mod new;
pub(crate) mod test;

use anyhow::{bail, Context as _};
use clap::builder::PossibleValue;
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// A guest language: a handle on one entry of [`LANGUAGES`], small enough to pass
/// around by value.
///
/// It is also the value of `gojinn new --lang` (see the [`ValueEnum`] impl), so the
/// command line offers exactly the languages of the table, in its order.
#[derive(Clone, Copy)]
pub(crate) struct Lang(&'static Language);

/// Everything Gojinn knows about one guest language.
pub(crate) struct Language {
    /// The name used on the command line and in messages.
    name: &'static str,
    /// Other names `--lang` accepts (not shown in `--help`).
    aliases: &'static [&'static str],
    /// The line `--help` shows for this value.
    help: &'static str,
    /// A folder is a project in this language when any of these matches.
    markers: &'static [Marker],
    /// The markers as the "cannot tell the language" error lists them.
    markers_text: &'static str,
    /// Detection order, lowest first: the first language whose marker matches wins,
    /// so the manifests that say the most (Cargo.toml, go.mod, package.json) are
    /// tried before loose source files. Separate from the table's order, which is the
    /// order `--help` lists the languages in.
    detect_order: u8,
    /// `gojinn new`: the language's template files (beside `new::COMMON`).
    template: &'static [new::File],
    /// `gojinn new`: what the README and Caddyfile say about the language.
    readme: new::Facts,
    /// `gojinn build`: the build step, or `None` when the server takes the source as
    /// it is.
    toolchain: Option<Toolchain>,
    /// The module file a project serves.
    module: Module,
}

/// How `gojinn build` turns a project into a module.
#[derive(Clone, Copy)]
pub(crate) struct Toolchain {
    /// Runs the compiler; writes the module to the job's output path.
    build: build::Recipe,
    /// The command that installs the toolchain, shown when it is missing.
    install: &'static str,
}

/// The module file a project serves.
#[derive(Clone, Copy)]
pub(crate) enum Module {
    /// Compiled to `<project name>.wasm` in the project folder (or `gojinn build --out`).
    Wasm,
    /// The source itself, which the server compiles: `main`, or the only `*.ext` file.
    Source {
        main: &'static str,
        ext: &'static str,
    },
}

/// Something in a folder that tells its language.
#[derive(Clone, Copy)]
enum Marker {
    /// A file with this name.
    File(&'static str),
    /// A file with this name whose text contains the second string.
    FileNaming(&'static str, &'static str),
    /// Any file (not folder) ending in `.ext`.
    Extension(&'static str),
}

/// Every guest language, in the order `--help` lists them.
pub(crate) static LANGUAGES: &[Language] = &[
    Language {
        name: "rust",
        aliases: &[],
        help: "Rust with gojinn-sdk (cargo, wasm32-wasip1)",
        markers: &[Marker::File("Cargo.toml")],
        markers_text: "Cargo.toml (Rust)",
        detect_order: 0,
        template: new::RUST,
        readme: new::Facts {
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
            expected: new::HELLO_EXPECTED,
        },
        toolchain: Some(Toolchain {
            build: build::rust,
            install: "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh, \
                then: rustup target add wasm32-wasip1",
        }),
        module: Module::Wasm,
    },
    Language {
        name: "c",
        aliases: &[],
        help: "C with wasi-libc and gojinn.h (clang)",
        markers: &[Marker::File("Makefile"), Marker::Extension("c")],
        markers_text: "Makefile or *.c (C)",
        detect_order: 4,
        template: new::C,
        readme: new::Facts {
            language: "C",
            source: "main.c",
            memory: "16MB",
            toolchain: "clang, lld and wasi-libc (Debian/Ubuntu: `apt-get install clang lld \
                wasi-libc libclang-rt-14-dev-wasm32`, with the clang major version in the last \
                name). `gojinn build` runs `make`; the Makefile links a 64 KiB stack.",
            files: "- `main.c`: the handler, with a small strict JSON scanner (no library)\n\
                - `gojinn.h`: the `gojinn` host imports (`gojinn_log`, KV, SQL, HTTP)\n\
                - `Makefile`: the clang command line",
            expected: new::HELLO_EXPECTED,
        },
        toolchain: Some(Toolchain {
            build: build::c,
            install: "apt-get install clang lld wasi-libc make && \
                apt-get install libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev-wasm32",
        }),
        module: Module::Wasm,
    },
    Language {
        name: "go",
        aliases: &[],
        help: "Standard Go ≥ 1.21 (GOOS=wasip1)",
        markers: &[Marker::File("go.mod")],
        markers_text: "go.mod (Go)",
        detect_order: 1,
        template: new::GO,
        readme: new::Facts {
            language: "standard Go",
            source: "main.go",
            memory: "64MB",
            toolchain: "Go 1.21 or later (Debian: `golang-1.23-go` from bookworm-backports). \
                `gojinn build` runs `GOTOOLCHAIN=local GOPROXY=off GOOS=wasip1 GOARCH=wasm go \
                build -trimpath -ldflags=-s`. Standard Go's runtime needs about 28 MB for the \
                smallest request, hence `memory_limit 64MB` in the Caddyfile.",
            files: "- `main.go`: the handler\n\
                - `gojinn/`: the contract's helper types (Request, Response, Run, Log), its request decoder, JSON encoder and \
                HostLog (`host_log`); `go test ./gojinn` runs its tests on your machine",
            expected: new::HELLO_EXPECTED,
        },
        toolchain: Some(Toolchain {
            build: build::go,
            install: "apt-get install -t bookworm-backports golang-1.23-go (on Debian 12, after \
                adding bookworm-backports to the apt sources; a Gojinn checkout's \
                scripts/toolchains.sh go does both)",
        }),
        module: Module::Wasm,
    },
    Language {
        name: "zig",
        aliases: &[],
        help: "Zig 0.14 (std.os.wasi)",
        markers: &[Marker::File("build.zig"), Marker::Extension("zig")],
        markers_text: "build.zig or *.zig (Zig)",
        detect_order: 3,
        template: new::ZIG,
        readme: new::Facts {
            language: "Zig",
            source: "main.zig",
            memory: "16MB",
            toolchain: "Zig 0.14 (`python3 -m pip install ziglang==0.14.1` in a venv, then \
                `python -m ziglang` or set `ZIG`). `gojinn build` runs `zig build-exe main.zig \
                -target wasm32-wasi -O ReleaseSmall -fstrip --stack 65536`.",
            files: "- `main.zig`: the handler, on `std.os.wasi` and `std.json`",
            expected: new::HELLO_EXPECTED,
        },
        toolchain: Some(Toolchain {
            build: build::zig,
            install: "python3 -m venv ~/.zig && ~/.zig/bin/pip install ziglang==0.14.1, \
                then: export ZIG=\"$HOME/.zig/bin/python -m ziglang\"",
        }),
        module: Module::Wasm,
    },
    Language {
        name: "assemblyscript",
        aliases: &["as"],
        help: "AssemblyScript with @assemblyscript/wasi-shim (npm)",
        markers: &[Marker::FileNaming("package.json", "\"assemblyscript\"")],
        markers_text: "package.json naming assemblyscript",
        detect_order: 2,
        template: new::ASSEMBLYSCRIPT,
        readme: new::Facts {
            language: "AssemblyScript",
            source: "assembly/index.ts",
            memory: "16MB",
            toolchain: "Node.js 18 or later, then `npm ci` in this folder (installs the pinned \
                `assemblyscript` and `@assemblyscript/wasi-shim`). `gojinn build` runs `asc` \
                with the wasi-shim config.",
            files: "- `assembly/index.ts`: the handler, with a small strict JSON scanner\n\
                - `package.json`, `package-lock.json`: the pinned compiler and shim",
            expected: new::HELLO_EXPECTED,
        },
        toolchain: Some(Toolchain {
            build: build::assemblyscript,
            install: "apt-get install nodejs npm",
        }),
        module: Module::Wasm,
    },
    Language {
        name: "wat",
        aliases: &[],
        help: "Hand-written WebAssembly text; no build step",
        markers: &[Marker::Extension("wat")],
        markers_text: "*.wat file",
        detect_order: 5,
        template: new::WAT,
        readme: new::Facts {
            language: "WebAssembly text",
            source: "main.wat",
            memory: "1MB",
            toolchain: "None: the server compiles `.wat` itself. `gojinn build` only checks that \
                the module loads. This function answers a fixed JSON object without reading the \
                request; reading and parsing JSON by hand in WAT is possible but long.",
            files: "- `main.wat`: the whole function",
            expected: "",
        },
        toolchain: None,
        module: Module::Source {
            main: "main.wat",
            ext: "wat",
        },
    },
];

impl Language {
    /// The name used on the command line and in messages.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }
}

impl Lang {
    /// Every language of the table, in its order.
    pub(crate) fn all() -> impl Iterator<Item = Lang> {
        LANGUAGES.iter().map(Lang)
    }
}

impl std::ops::Deref for Lang {
    type Target = Language;

    fn deref(&self) -> &Language {
        self.0
    }
}

impl std::fmt::Debug for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl ValueEnum for Lang {
    fn value_variants<'a>() -> &'a [Self] {
        // Handles on the table's entries, made once (clap asks on every parse).
        static ALL: LazyLock<Vec<Lang>> = LazyLock::new(|| Lang::all().collect());
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(
            PossibleValue::new(self.name)
                .aliases(self.aliases.iter().copied())
                .help(self.help),
        )
    }
}

impl Marker {
    fn matches(self, dir: &Path) -> anyhow::Result<bool> {
        Ok(match self {
            Marker::File(name) => dir.join(name).is_file(),
            Marker::FileNaming(name, needle) => {
                let path = dir.join(name);
                path.is_file()
                    && std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?
                        .contains(needle)
            }
            Marker::Extension(ext) => !files_with(dir, ext)?.is_empty(),
        })
    }
}

/// Tells the language of the project in `dir` from its files.
pub(crate) fn detect(dir: &Path) -> anyhow::Result<Lang> {
    if !dir.is_dir() {
        bail!("`{}` is not a directory", dir.display());
    }
    let mut langs: Vec<Lang> = Lang::all().collect();
    langs.sort_by_key(|l| l.detect_order);
    for lang in &langs {
        for marker in lang.markers {
            if marker.matches(dir)? {
                return Ok(*lang);
            }
        }
    }
    let mut markers: Vec<&str> = langs.iter().map(|l| l.markers_text).collect();
    let last = markers.pop().unwrap_or_default();
    bail!(
        "cannot tell the language of `{}`: it has no {}, or {last}",
        dir.display(),
        markers.join(", ")
    )
}

/// The files of `dir` (not its subfolders) ending in `.ext`, sorted.
fn files_with(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?
    {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and aliases are what `--lang` parses: two languages must never claim
    /// the same word, and detection must never tie.
    #[test]
    fn names_aliases_and_detection_order_are_unique() {
        let mut words: Vec<&str> = LANGUAGES
            .iter()
            .flat_map(|l| std::iter::once(l.name).chain(l.aliases.iter().copied()))
            .collect();
        let count = words.len();
        words.sort_unstable();
        words.dedup();
        assert_eq!(
            words.len(),
            count,
            "a name or alias is used twice: {words:?}"
        );
        let mut order: Vec<u8> = LANGUAGES.iter().map(|l| l.detect_order).collect();
        order.sort_unstable();
        order.dedup();
        assert_eq!(
            order.len(),
            LANGUAGES.len(),
            "two languages share a detect_order"
        );
    }

    /// A language without a build step serves its source, and one with a build step
    /// serves what it built: the two fields must agree.
    #[test]
    fn only_languages_without_a_toolchain_serve_their_source() {
        for lang in LANGUAGES {
            assert_eq!(
                lang.toolchain.is_none(),
                matches!(lang.module, Module::Source { .. }),
                "{}",
                lang.name
            );
        }
    }

    #[test]
    fn detects_each_language_from_its_files() {
        let base = std::env::temp_dir().join(format!("gojinn-detect-{}", std::process::id()));
        let cases: &[(&str, &str, &str)] = &[
            ("Cargo.toml", "", "rust"),
            ("go.mod", "module x", "go"),
            (
                "package.json",
                r#"{"devDependencies":{"assemblyscript":"0.28"}}"#,
                "assemblyscript",
            ),
            ("build.zig", "", "zig"),
            ("main.zig", "", "zig"),
            ("Makefile", "", "c"),
            ("fn.c", "", "c"),
            ("fn.wat", "(module)", "wat"),
        ];
        for (i, (file, text, lang)) in cases.iter().enumerate() {
            let dir = base.join(i.to_string());
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join(file), text).expect("write");
            assert_eq!(detect(&dir).expect(file).name(), *lang, "{file}");
        }
        let empty = base.join("empty");
        std::fs::create_dir_all(&empty).expect("mkdir");
        std::fs::write(empty.join("package.json"), "{}").expect("write");
        let err = detect(&empty).expect_err("no language").to_string();
        assert_eq!(
            err,
            format!(
                "cannot tell the language of `{}`: it has no Cargo.toml (Rust), go.mod (Go), \
                 package.json naming assemblyscript, build.zig or *.zig (Zig), Makefile or *.c \
                 (C), or *.wat file",
                empty.display()
            )
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    /// The manifests win over loose sources: a Rust project with a C helper and a
    /// Makefile is Rust, a Go module with a Makefile is Go, an AssemblyScript project
    /// with a .wat fixture is AssemblyScript.
    #[test]
    fn manifests_win_over_loose_sources() {
        let base = std::env::temp_dir().join(format!("gojinn-detect-order-{}", std::process::id()));
        let cases: &[(&[&str], &str)] = &[
            (&["Cargo.toml", "Makefile", "helper.c"], "rust"),
            (&["go.mod", "Makefile", "x.zig"], "go"),
            (&["package.json", "x.wat", "y.c"], "assemblyscript"),
            (&["main.zig", "Makefile"], "zig"),
            (&["Makefile", "x.wat"], "c"),
        ];
        for (i, (files, lang)) in cases.iter().enumerate() {
            let dir = base.join(i.to_string());
            std::fs::create_dir_all(&dir).expect("mkdir");
            for file in *files {
                let text = if *file == "package.json" {
                    r#"{"devDependencies":{"assemblyscript":"0.28"}}"#
                } else {
                    ""
                };
                std::fs::write(dir.join(file), text).expect("write");
            }
            assert_eq!(detect(&dir).expect("detect").name(), *lang, "{files:?}");
        }
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
