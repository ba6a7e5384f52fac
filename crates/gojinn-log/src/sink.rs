//! [`Sink`]: log lines handed to one writer thread through a shared buffer.
//!
//! A request thread wakes the writer only when it is idle, and the writer, after
//! each write, waits [`LINGER`] before taking the next batch, so a busy second
//! costs at most about a thousand wake-ups and write calls instead of one per
//! line. A quiet line is written at once. Nothing is dropped: when
//! [`MAX_PENDING_BYTES`] are queued, request threads wait for the writer (memory
//! stays bounded). Each `write` call must be whole lines: the writer hands its
//! output whole batches, which is what keeps a rolled file from cutting a line.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long the writer thread waits after a write before taking the next batch.
const LINGER: Duration = Duration::from_millis(1);

/// Queued log bytes at which request threads wait for the writer.
const MAX_PENDING_BYTES: usize = 4 << 20;

/// Where log lines go: a buffer shared with one writer thread (see the module docs).
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when lines arrive for an idle writer, or at close.
    work: Condvar,
    /// Signalled when the writer takes a batch, for threads waiting on a full buffer.
    room: Condvar,
}

struct State {
    pending: Vec<u8>,
    writer_idle: bool,
    closed: bool,
}

/// Stops the writer thread once everything queued is written.
pub struct SinkGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the buffer whole; keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink {
    /// Starts the writer thread writing to `out`.
    pub fn start(out: impl std::io::Write + Send + 'static) -> (Sink, SinkGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                writer_idle: false,
                closed: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gojinn-log".into())
            .spawn(move || write_loop(&writer, out));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // Without a thread, lines would queue forever: write them inline.
                eprintln!("cannot start the logging thread ({e}); logging synchronously");
                shared.lock().closed = true;
                None
            }
        };
        (
            Sink {
                shared: shared.clone(),
            },
            SinkGuard { shared, thread },
        )
    }
}

fn write_loop(shared: &Shared, mut out: impl std::io::Write) {
    let mut batch = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            while state.pending.is_empty() && !state.closed {
                state.writer_idle = true;
                state = shared
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.pending.is_empty() {
                return;
            }
            std::mem::swap(&mut batch, &mut state.pending);
            shared.room.notify_all();
        }
        // A failed write (stderr closed) loses these lines; there is nowhere else
        // to report that.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        std::thread::sleep(LINGER);
    }
}

impl Sink {
    /// Queues `line` (whole lines) for the writer thread; waits while the queue
    /// is full. After the guard is dropped, writes straight to stderr.
    pub fn push(&self, line: &[u8]) {
        let mut state = self.shared.lock();
        if state.closed {
            drop(state);
            // Nowhere to report a failed write of a log line.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line);
            return;
        }
        while !state.pending.is_empty() && state.pending.len() + line.len() > MAX_PENDING_BYTES {
            state = self
                .shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.pending.extend_from_slice(line);
        if state.writer_idle {
            state.writer_idle = false;
            self.shared.work.notify_one();
        }
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn lines_from_many_threads_all_arrive_in_order() {
        // Through a real file: the writer thread's output as a log file sees it.
        let path = std::env::temp_dir().join(format!("gojinn-log-sink-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let file = crate::RollingFile::open(&path, 0o600, None).unwrap();
        let (sink, guard) = Sink::start(file);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        std::io::Write::write_all(&mut sink, format!("{t} {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut next = [0; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(
                i.parse::<usize>().unwrap(),
                next[t],
                "thread {t} out of order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
    }
}
