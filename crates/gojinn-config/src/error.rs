//! Public diagnostics and errors, plus the crate-internal positioned error that
//! the parsers return before the file name is known to them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::Config;

/// A message tied to a place in a config file.
///
/// Displays as `{file}:{line}:{col}: {message}`; `line` and `col` are 1-based and
/// `col` counts characters (a tab is one column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The config file, as the caller named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Lower-case message naming the bad value in backticks.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn at(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// The result of loading a config: the config plus non-fatal warnings (for
/// example an unset `{env.X}` placeholder).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The resolved, validated configuration.
    pub config: Config,
    /// Warnings, in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Why a config could not be loaded.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file named by the caller.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The text is not a valid config; Caddyfile and JSON errors alike, with
    /// `file:line:col`.
    #[error("{0}")]
    Invalid(Diagnostic),
}

/// A 1-based position in the source text (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
    /// Which text: 0 is the config file itself, others are what `import`
    /// brought in (see `import::Sources`).
    pub(crate) src: u32,
}

impl Pos {
    pub(crate) const START: Pos = Pos {
        line: 1,
        col: 1,
        src: 0,
    };

    /// A position in the config file itself.
    #[cfg(test)]
    pub(crate) fn at(line: usize, col: usize) -> Pos {
        Pos { line, col, src: 0 }
    }
}

/// An error at a position of the file being parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PosError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

impl PosError {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Self {
        PosError {
            pos,
            message: message.into(),
        }
    }

    pub(crate) fn into_config_error(self, file: &Path) -> ConfigError {
        ConfigError::Invalid(Diagnostic::at(file, self.pos, self.message))
    }
}

/// Result of a parsing step.
pub(crate) type PResult<T> = Result<T, PosError>;
