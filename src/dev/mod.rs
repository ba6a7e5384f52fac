//! The developer loop: `gojinn new` (project templates for every guest language) and
//! `gojinn build` (detects a project's language, runs its toolchain, checks that the
//! module loads).

pub(crate) mod build;
pub(crate) mod new;
pub(crate) mod test;

use clap::ValueEnum;

/// A guest language with a template and a build recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    /// Rust with gojinn-sdk (cargo, wasm32-wasip1).
    Rust,
    /// C with wasi-libc and gojinn.h (clang).
    C,
    /// Standard Go ≥ 1.21 (GOOS=wasip1).
    Go,
    /// Zig 0.14 (std.os.wasi).
    Zig,
    /// AssemblyScript with @assemblyscript/wasi-shim (npm).
    #[value(name = "assemblyscript", alias = "as")]
    AssemblyScript,
    /// Hand-written WebAssembly text; no build step.
    Wat,
}

impl Lang {
    /// The name used on the command line and in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Go => "go",
            Lang::Zig => "zig",
            Lang::AssemblyScript => "assemblyscript",
            Lang::Wat => "wat",
        }
    }
}
