//! `gojinn build [DIR…]`: tells each project's language from its files, runs that
//! language's toolchain (64 KiB stack, size-optimised, stripped), writes
//! `DIR/<folder name>.wasm` (or the file `--output` names), and then checks the module
//! the way `gojinn validate` does (the project's `Caddyfile` when it has one).
//! `scripts/build-examples.sh` builds the shipped examples with this command.
//!
//! What is built how is in the language table (`super::LANGUAGES`); this module has
//! the build functions it names and what they share. A missing toolchain is an error
//! naming the command that installs it. On a terminal the current step shows as a
//! spinner line; otherwise each step is a plain line.

use super::{files_with, Module};
use anyhow::{bail, Context as _};
use std::ffi::OsString;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Rust target of Gojinn functions.
const RUST_TARGET: &str = "wasm32-wasip1";

/// A language's build function (`Toolchain::build` in the language table): compiles
/// the project of `job` into `job.module`.
pub(crate) type Recipe = fn(&Job<'_>, &Progress) -> anyhow::Result<()>;

/// One project to build.
pub(crate) struct Job<'a> {
    /// The project folder, canonical.
    dir: &'a Path,
    /// `name (lang)`, for messages.
    label: &'a str,
    /// Where the module goes (its folder exists).
    module: &'a Path,
    /// What installs the language's toolchain.
    install: &'a str,
}

/// Builds every project in `dirs`, stopping at the first failure; with `test`, also
/// runs each project's `tests/request.json` through its module. `out`, for one
/// project only, is where its module goes instead of `DIR/<folder name>.wasm`.
pub(crate) fn build_all(dirs: &[PathBuf], test: bool, out: Option<&Path>) -> anyhow::Result<()> {
    if out.is_some() && dirs.len() != 1 {
        bail!(
            "`--output` names one module file, so it takes one project folder ({} given)",
            dirs.len()
        );
    }
    let progress = Progress::new();
    for dir in dirs {
        build_one(dir, test, out, &progress)?;
    }
    Ok(())
}

fn build_one(
    dir: &Path,
    test: bool,
    out: Option<&Path>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let lang = super::detect(dir)?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve `{}`", dir.display()))?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the project folder needs a UTF-8 name")?
        .to_owned();
    let label = format!("{name} ({})", lang.name());
    let started = Instant::now();
    let module = match lang.module {
        Module::Wasm => output(&dir, &name, out)?,
        Module::Source { main, ext } => {
            if let Some(out) = out {
                bail!(
                    "`--output {}` does not apply to {label}: it builds nothing, the server \
                     compiles its .{ext} source itself",
                    out.display()
                );
            }
            pick(&dir, ext, main)?
        }
    };
    if let Some(toolchain) = lang.toolchain {
        let job = Job {
            dir: &dir,
            label: &label,
            module: &module,
            install: toolchain.install,
        };
        (toolchain.build)(&job, progress)?;
    }
    progress.step(&label, "checking that the module loads");
    let function = progress.while_running(|| check(&dir, &module))?;
    let size = std::fs::metadata(&module).map(|m| m.len()).unwrap_or(0);
    progress.done(&format!(
        "built {label}: {} ({size} bytes) in {:.1}s",
        module.display(),
        started.elapsed().as_secs_f64()
    ));
    if test {
        progress.step(&label, "running tests/request.json");
        let found = progress
            .while_running(|| super::test::run(&dir, &function))
            .with_context(|| format!("test of {label} failed"))?;
        progress.done(&format!(
            "test {label}: passed ({found} expected line(s) in the response)"
        ));
    }
    Ok(())
}

/// Where the module of the project `name` in `dir` goes: `dir/name.wasm`, or `out`
/// (relative to the current directory, in a folder that exists) made absolute, so
/// that it compares equal to the module path of a checked config.
fn output(dir: &Path, name: &str, out: Option<&Path>) -> anyhow::Result<PathBuf> {
    let Some(out) = out else {
        return Ok(dir.join(format!("{name}.wasm")));
    };
    let file = out
        .file_name()
        .with_context(|| format!("`--output {}` names no file", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = parent.canonicalize().with_context(|| {
        format!(
            "cannot write `{}`: its folder `{}` does not exist",
            out.display(),
            parent.display()
        )
    })?;
    if parent.join(file).is_dir() {
        bail!(
            "`--output {}` is a folder; name the module file",
            out.display()
        );
    }
    Ok(parent.join(file))
}

/// Checks the module as `gojinn validate` would: the project's `Caddyfile` when it
/// serves this module, else a one-route config around it. Both go through the
/// config parser and the runtime's loader (compile, link, `_start` present).
/// Returns the function's config (limits, env, args) for `--test`.
fn check(dir: &Path, module: &Path) -> anyhow::Result<gojinn_config::Function> {
    let caddyfile = dir.join("Caddyfile");
    let loaded = match gojinn_config::load_file(&caddyfile) {
        Ok(l)
            if l.config
                .functions()
                .iter()
                .any(|f| f.module.canonicalize().is_ok_and(|m| m == module)) =>
        {
            l
        }
        _ => {
            let src = format!(
                "{{\n    admin off\n}}\n:0 {{\n    gojinn \"{}\"\n}}\n",
                module.display()
            );
            gojinn_config::parse_caddyfile(&src, &dir.join("(generated)"), &|_| None)?
        }
    };
    gojinn_http::App::check(&loaded.config).map_err(|errors| {
        anyhow::anyhow!(
            "{} was built but does not load:\n{}",
            module.display(),
            errors.join("\n")
        )
    })?;
    loaded
        .config
        .functions()
        .into_iter()
        .find(|f| f.module.canonicalize().is_ok_and(|m| m == module))
        .cloned()
        .context("the checked config does not serve the module")
}

/// `dir/preferred`, or the only `*.ext` file in `dir`.
fn pick(dir: &Path, ext: &str, preferred: &str) -> anyhow::Result<PathBuf> {
    let main = dir.join(preferred);
    if main.is_file() {
        return Ok(main);
    }
    let mut found = files_with(dir, ext)?;
    found.retain(|p| p.file_name().is_none_or(|n| n != "build.zig"));
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("`{}` has no {preferred} or other .{ext} file", dir.display()),
        _ => bail!(
            "`{}` has several .{ext} files and no {preferred}: cannot tell which is the entry point",
            dir.display()
        ),
    }
}

/// A missing toolchain: the error names what is missing and how to install it.
fn missing(label: &str, what: &str, install: &str) -> anyhow::Error {
    anyhow::anyhow!("cannot build {label}: {what}\n  install it with: {install}")
}

impl Job<'_> {
    /// The language's toolchain is missing: what is missing, and the table's install
    /// command.
    fn missing(&self, what: &str) -> anyhow::Error {
        missing(self.label, what, self.install)
    }
}

/// The executable `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` under the spinner; on failure, its output goes to stderr and the error
/// names the command.
fn run(cmd: &mut Command, label: &str, what: &str, progress: &Progress) -> anyhow::Result<Output> {
    progress.step(label, what);
    let out = progress.while_running(|| cmd.output());
    let out = out.with_context(|| format!("cannot start `{what}`"))?;
    if !out.status.success() {
        progress.clear();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&out.stdout);
        let _ = err.write_all(&out.stderr);
        bail!(
            "building {label} failed: `{what}` exited with {}",
            out.status
        );
    }
    Ok(out)
}

/// Rust: `cargo build --release` for wasm32-wasip1 inside the project (adding the
/// target with rustup first when it is missing).
pub(crate) fn rust(job: &Job<'_>, progress: &Progress) -> anyhow::Result<()> {
    let (dir, label) = (job.dir, job.label);
    let Some(cargo) = which("cargo") else {
        return Err(job.missing("cargo is not on PATH"));
    };
    if let Some(rustup) = which("rustup") {
        let installed = Command::new(&rustup)
            .args(["target", "list", "--installed"])
            .current_dir(dir)
            .output()
            .context("cannot run `rustup target list`")?;
        let have = String::from_utf8_lossy(&installed.stdout)
            .lines()
            .any(|l| l.trim() == RUST_TARGET);
        if !have {
            run(
                Command::new(&rustup)
                    .args(["target", "add", RUST_TARGET])
                    .current_dir(dir),
                label,
                "rustup target add wasm32-wasip1",
                progress,
            )?;
        }
    }
    if std::env::var_os("RUSTFLAGS").is_some_and(|v| !v.is_empty()) {
        progress.note(
            "warning: RUSTFLAGS is set and replaces the 64 KiB stack flag of .cargo/config.toml",
        );
    }
    // Cargo reads .cargo/config.toml (target, stack size) from the current directory,
    // so it runs inside the project. The JSON messages name the built module, wherever
    // CARGO_TARGET_DIR puts it.
    let out = run(
        Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                RUST_TARGET,
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(dir),
        label,
        "cargo build --release --target wasm32-wasip1",
        progress,
    )?;
    let built = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm executable: does the package have a binary target?")?;
    install(&built, job.module, label)
}

/// C: the project's Makefile (`make OUT=…`), or clang on every `*.c` file.
pub(crate) fn c(job: &Job<'_>, progress: &Progress) -> anyhow::Result<()> {
    let (dir, label) = (job.dir, job.label);
    let Some(clang) = which("clang") else {
        return Err(job.missing("clang is not on PATH"));
    };
    let staged = staging(job.module);
    if dir.join("Makefile").is_file() {
        let Some(make) = which("make") else {
            return Err(job.missing("make is not on PATH"));
        };
        let mut out = OsString::from("OUT=");
        out.push(staged.as_os_str());
        run(
            Command::new(make).arg(out).current_dir(dir),
            label,
            "make",
            progress,
        )?;
    } else {
        let sysroot = std::env::var("WASI_SYSROOT").unwrap_or_else(|_| "/usr".to_owned());
        run(
            Command::new(clang)
                .arg("--target=wasm32-wasi")
                .arg(format!("--sysroot={sysroot}"))
                .args(["-O2", "-Wl,-z,stack-size=65536", "-Wl,--strip-all", "-o"])
                .arg(&staged)
                .args(files_with(dir, "c")?)
                .current_dir(dir),
            label,
            "clang --target=wasm32-wasi",
            progress,
        )?;
    }
    finish(&staged, job.module, label)
}

/// Go: `go build` with GOOS=wasip1, never downloading a toolchain or a module.
pub(crate) fn go(job: &Job<'_>, progress: &Progress) -> anyhow::Result<()> {
    let (dir, label) = (job.dir, job.label);
    let Some(go) = go_binary() else {
        return Err(job.missing(
            "go is not on PATH (nor /usr/lib/go-1.23/bin/go); Go 1.21 or later is needed",
        ));
    };
    let staged = staging(job.module);
    // GOTOOLCHAIN=local: never download another Go; GOPROXY=off: a function uses the
    // standard library and its own packages only.
    run(
        Command::new(go)
            .args(["build", "-trimpath", "-ldflags=-s", "-o"])
            .arg(&staged)
            .arg(".")
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .current_dir(dir),
        label,
        "GOOS=wasip1 GOARCH=wasm go build",
        progress,
    )?;
    finish(&staged, job.module, label)
}

/// The Go a Go build uses: `$GO`, else `go` on PATH, else Debian's
/// golang-1.23-go.
pub(crate) fn go_binary() -> Option<PathBuf> {
    std::env::var_os("GO")
        .filter(|g| !g.is_empty())
        .map(PathBuf::from)
        .or_else(|| which("go"))
        .or_else(|| {
            let debian = PathBuf::from("/usr/lib/go-1.23/bin/go");
            debian.is_file().then_some(debian)
        })
}

/// The version of the Go a build uses (`1.27.3`), if it is a release that can
/// build for wasip1 (1.21 or later).
pub(crate) fn go_version() -> Option<String> {
    let out = Command::new(go_binary()?)
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.trim().strip_prefix("go")?;
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (parts.len() >= 2 && (parts[0], parts[1]) >= (1, 21)).then(|| version.to_owned())
}

/// Zig: `zig build-exe` on `main.zig` (or the only `*.zig` file).
pub(crate) fn zig(job: &Job<'_>, progress: &Progress) -> anyhow::Result<()> {
    let (dir, label) = (job.dir, job.label);
    // ZIG may be a command with arguments (`python -m ziglang`).
    let zig: Vec<String> = match std::env::var("ZIG") {
        Ok(z) if !z.trim().is_empty() => z.split_whitespace().map(str::to_owned).collect(),
        _ => match which("zig") {
            Some(z) => vec![z.to_string_lossy().into_owned()],
            None => return Err(job.missing("zig is not on PATH and ZIG is not set")),
        },
    };
    let source = pick(dir, "zig", "main.zig")?;
    let staged = staging(job.module);
    let mut emit = OsString::from("-femit-bin=");
    emit.push(staged.as_os_str());
    let mut cmd = Command::new(&zig[0]);
    cmd.args(&zig[1..])
        .arg("build-exe")
        .arg(&source)
        .args([
            "-target",
            "wasm32-wasi",
            "-O",
            "ReleaseSmall",
            "-fstrip",
            "--stack",
            "65536",
        ])
        .arg(emit)
        .current_dir(dir);
    // Zig's local cache would otherwise land in the project as .zig-cache.
    if std::env::var_os("ZIG_LOCAL_CACHE_DIR").is_none() {
        cmd.env(
            "ZIG_LOCAL_CACHE_DIR",
            std::env::temp_dir().join("gojinn-zig-cache"),
        );
    }
    let built = run(
        &mut cmd,
        label,
        "zig build-exe -target wasm32-wasi",
        progress,
    );
    // Zig 0.14 leaves the wasm object it linked beside the binary (`<bin>.o`); with a
    // staging name that is a new file in the project on every build.
    let mut object = staged.clone().into_os_string();
    object.push(".o");
    let _ = std::fs::remove_file(object);
    built?;
    finish(&staged, job.module, label)
}

/// AssemblyScript: the project's own `asc` (from `npm ci`) with the wasi-shim config.
pub(crate) fn assemblyscript(job: &Job<'_>, progress: &Progress) -> anyhow::Result<()> {
    let (dir, label) = (job.dir, job.label);
    if which("node").is_none() {
        return Err(job.missing("node is not on PATH (Node.js 18 or later is needed)"));
    }
    let asc = dir.join("node_modules/.bin/asc");
    let shim = dir.join("node_modules/@assemblyscript/wasi-shim/asconfig.json");
    if !asc.is_file() || !shim.is_file() {
        return Err(missing(
            label,
            "assemblyscript and @assemblyscript/wasi-shim are not installed in its node_modules",
            &format!("cd {} && npm ci", dir.display()),
        ));
    }
    let staged = staging(job.module);
    run(
        Command::new(asc)
            .arg("assembly/index.ts")
            // Relative on purpose: asc resolves the shim's `lib` against the config
            // path as given, and an absolute path makes it miss the shim's library.
            .arg("--config")
            .arg("node_modules/@assemblyscript/wasi-shim/asconfig.json")
            .arg("--optimize")
            .arg("--outFile")
            .arg(&staged)
            .current_dir(dir),
        label,
        "asc assembly/index.ts (wasi-shim)",
        progress,
    )?;
    finish(&staged, job.module, label)
}

/// Where a compiler writes `module` first. Modules are compiled next to their final
/// place and then renamed over it, so a server watching the module (`run --watch`)
/// never loads half a file.
fn staging(module: &Path) -> PathBuf {
    module.with_extension(format!("wasm.tmp.{}", std::process::id()))
}

/// Moves the staged module into place.
fn finish(staged: &Path, module: &Path, label: &str) -> anyhow::Result<()> {
    if !staged.is_file() {
        bail!(
            "building {label} wrote no module (expected `{}`)",
            staged.display()
        );
    }
    std::fs::rename(staged, module).with_context(|| format!("cannot write `{}`", module.display()))
}

/// Copies cargo's output next to `to` and renames it into place.
fn install(from: &Path, to: &Path, label: &str) -> anyhow::Result<()> {
    let staged = staging(to);
    std::fs::copy(from, &staged)
        .with_context(|| format!("cannot copy `{}` to `{}`", from.display(), staged.display()))?;
    finish(&staged, to, label)
}

/// Progress on stderr: a spinner line redrawn in place on a terminal, plain lines
/// otherwise (logs, CI, pipes).
pub(crate) struct Progress {
    tty: bool,
    line: Arc<std::sync::Mutex<String>>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            line: Arc::default(),
        }
    }

    fn step(&self, label: &str, what: &str) {
        let text = format!("{label}: {what}");
        if self.tty {
            if let Ok(mut line) = self.line.lock() {
                *line = text;
            }
        } else {
            eprintln!("gojinn build: {text}");
        }
    }

    /// Runs `f` while a spinner turns in front of the current step (on a terminal).
    fn while_running<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.tty {
            return f();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            let line = self.line.clone();
            std::thread::spawn(move || {
                const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let started = Instant::now();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = line.lock().map(|l| l.clone()).unwrap_or_default();
                    eprint!(
                        "\r\x1b[2K{} {text} ({}s)",
                        FRAMES[i % FRAMES.len()],
                        started.elapsed().as_secs()
                    );
                    i += 1;
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            })
        };
        let result = f();
        stop.store(true, Ordering::Relaxed);
        spinner.thread().unpark();
        let _ = spinner.join();
        // Whatever comes next (the next step, an error, cargo's output) starts on a
        // clean line.
        self.clear();
        result
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }

    fn note(&self, text: &str) {
        self.clear();
        eprintln!("{text}");
    }

    fn done(&self, text: &str) {
        if self.tty {
            eprintln!("\r\x1b[2K✓ {text}");
        } else {
            eprintln!("gojinn build: {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_goes_into_the_project_unless_out_names_a_file() {
        let base = std::env::temp_dir().join(format!("gojinn-output-{}", std::process::id()));
        let project = base.join("fn");
        std::fs::create_dir_all(&project).expect("mkdir");
        let base = base.canonicalize().expect("canonical");
        let project = project.canonicalize().expect("canonical");

        assert_eq!(
            output(&project, "fn", None).expect("default"),
            project.join("fn.wasm")
        );
        // Another name, in another folder; `..` and `.` are resolved, so the path
        // compares equal to the one a Caddyfile names.
        assert_eq!(
            output(&project, "fn", Some(&project.join("../hello.wasm"))).expect("out"),
            base.join("hello.wasm")
        );
        assert_eq!(
            output(&project, "fn", Some(&base.join("./fn/x.wasm"))).expect("out"),
            project.join("x.wasm")
        );

        let err = |out: &Path| {
            output(&project, "fn", Some(out))
                .expect_err("refused")
                .to_string()
        };
        let e = err(&base.join("missing/x.wasm"));
        assert!(e.contains("does not exist"), "{e}");
        let e = err(&project);
        assert!(e.contains("is a folder"), "{e}");
        let e = err(&project.join(".."));
        assert!(e.contains("names no file"), "{e}");
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    /// A WAT project builds nothing, so there is nothing to write elsewhere: refused
    /// before any work, and nothing is written.
    #[test]
    fn out_is_refused_for_a_project_that_serves_its_source() {
        let dir = std::env::temp_dir().join(format!("gojinn-out-wat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("main.wat"), "(module)").expect("write");
        let out = dir.join("copy.wasm");
        let e = build_all(std::slice::from_ref(&dir), false, Some(&out))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("does not apply to"), "{e}");
        assert!(e.contains("(wat)"), "{e}");
        assert!(!out.exists());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn out_takes_exactly_one_project() {
        let out = Path::new("x.wasm");
        for dirs in [vec![], vec![PathBuf::from("a"), PathBuf::from("b")]] {
            let e = build_all(&dirs, false, Some(out))
                .expect_err("refused")
                .to_string();
            assert!(
                e.contains(&format!("takes one project folder ({} given)", dirs.len())),
                "{e}"
            );
        }
    }
}
