//! Where Gojinn's log lines go. This crate owns the outputs a config names
//! (`stderr`, `stdout`, `discard`, rolled files) as one registry per process,
//! [`Outputs`], so that the server log and every site's access log writing to
//! the same place share one writer thread and one file handle, also across
//! reloads; the batching writer thread ([`Sink`]); the size-rolled file
//! ([`RollingFile`]); and the hand-written JSON helpers of the line formats.
//! What a line says is left to its writers: the binary formats the server log,
//! `gojinn-http` the access lines.

mod json;
mod outputs;
mod roll;
mod sink;

pub use json::{write_json_str, write_timestamp, Escaped};
pub use outputs::{LineWriter, Outputs};
pub use roll::{Policy, RollingFile};
pub use sink::{Sink, SinkGuard};

/// Permissions of a file this crate creates when no mode is known.
const DEFAULT_MODE: u32 = gojinn_config::DEFAULT_FILE_MODE;
