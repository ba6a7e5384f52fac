//! [`Outputs`]: the process's open log outputs, by destination.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gojinn_config::{FileOutput, LogOutput};

use crate::roll::{Policy, RollingFile};
use crate::sink::{Sink, SinkGuard};

/// The open log outputs of the process. Made once (in `main`) and handed to
/// every config load: an output already open is shared, never opened twice, so
/// two writers never roll one file. Outputs stay open until [`close`](Self::close).
#[derive(Clone, Default)]
pub struct Outputs {
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    stderr: Option<Sink>,
    stdout: Option<Sink>,
    files: HashMap<PathBuf, (FileOutput, Sink)>,
    guards: Vec<SinkGuard>,
}

/// Where one logger writes: hand it whole lines.
#[derive(Clone)]
pub struct LineWriter(Option<Sink>);

impl LineWriter {
    /// A writer that drops every line (`output discard`).
    pub fn discard() -> LineWriter {
        LineWriter(None)
    }

    /// True for `output discard`: callers skip formatting.
    pub fn is_discard(&self) -> bool {
        self.0.is_none()
    }

    /// Queues `line` (one or more whole lines, each ending in `\n`).
    pub fn write_line(&self, line: &[u8]) {
        if let Some(sink) = &self.0 {
            sink.push(line);
        }
    }
}

impl Outputs {
    /// The writer for `output`, opening it if this process has not yet. A file
    /// already open keeps the roll options it was opened with; the returned
    /// note says so when `output` asks for others (they apply after a restart).
    pub fn open(&self, output: &LogOutput) -> Result<(LineWriter, Option<String>), String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let open = &mut *open;
        let sink = match output {
            LogOutput::Discard => return Ok((LineWriter::discard(), None)),
            LogOutput::Stderr => open
                .stderr
                .get_or_insert_with(|| {
                    let (sink, guard) = Sink::start(std::io::stderr());
                    open.guards.push(guard);
                    sink
                })
                .clone(),
            LogOutput::Stdout => open
                .stdout
                .get_or_insert_with(|| {
                    let (sink, guard) = Sink::start(std::io::stdout());
                    open.guards.push(guard);
                    sink
                })
                .clone(),
            LogOutput::File(f) => {
                if let Some((was, sink)) = open.files.get(&f.path) {
                    let note = (was != f).then(|| {
                        format!(
                            "log file `{}` is already open with other options; the new ones apply after a restart",
                            f.path.display()
                        )
                    });
                    return Ok((LineWriter(Some(sink.clone())), note));
                }
                let policy = f.roll.then(|| Policy {
                    max_size: f.roll_size,
                    keep: f.roll_keep,
                    keep_for: Duration::from_secs(u64::from(f.roll_keep_days) * 86_400),
                    compress: f.roll_compress,
                });
                let file = RollingFile::open(&f.path, f.mode, policy)
                    .map_err(|e| format!("cannot open log file `{}`: {e}", f.path.display()))?;
                let (sink, guard) = Sink::start(file);
                open.guards.push(guard);
                open.files.insert(f.path.clone(), (f.clone(), sink.clone()));
                sink
            }
        };
        Ok((LineWriter(Some(sink)), None))
    }

    /// Writes out what every output has queued and stops their threads; lines
    /// written after this go straight to stderr.
    pub fn close(&self) {
        let guards = std::mem::take(
            &mut self
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .guards,
        );
        drop(guards);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn one_file_is_opened_once_and_shared() {
        let dir = std::env::temp_dir().join(format!("gojinn-log-outputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut f = FileOutput::new(dir.join("a.log"));
        let outputs = Outputs::default();
        let (a, note) = outputs.open(&LogOutput::File(f.clone())).unwrap();
        assert!(note.is_none());
        f.roll_size = 1;
        let (b, note) = outputs.open(&LogOutput::File(f.clone())).unwrap();
        assert!(note.unwrap().contains("after a restart"));
        a.write_line(b"one\n");
        b.write_line(b"two\n");
        outputs.close();
        assert_eq!(
            std::fs::read_to_string(dir.join("a.log")).unwrap(),
            "one\ntwo\n"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unopenable_file_is_an_error_naming_it() {
        let f = FileOutput::new("/proc/version/gojinn.log".into());
        let err = Outputs::default().open(&LogOutput::File(f)).err().unwrap();
        assert!(
            err.starts_with("cannot open log file `/proc/version/gojinn.log`"),
            "{err}"
        );
    }
}
