//! The embedded queue: `jobs.redb` in the storage directory, for one node.
//! Each operation is one redb write transaction (serialised, fsynced at
//! commit) on tokio's blocking pool. Tables: the jobs by id, an index of
//! queued and running jobs by due time (claim takes its first entry), an index
//! by state and creation (listing), waiting jobs per target, cron ticks.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Finish, Job, JobState};

const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const DUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");
const BY_STATE: TableDefinition<(u8, u64, &str), ()> = TableDefinition::new("by_state");
const WAITING: TableDefinition<&str, u64> = TableDefinition::new("waiting");
const TICKS: TableDefinition<&str, u64> = TableDefinition::new("ticks");

fn state_code(s: JobState) -> u8 {
    match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        JobState::Done => 2,
        JobState::Dead => 3,
    }
}

/// The embedded queue, opened on first use: redb locks its file, so a
/// process that never queues a job never takes it (two servers with the same
/// `storage` can run as long as one of them does not use jobs).
pub struct Embedded {
    path: std::path::PathBuf,
    db: std::sync::Mutex<Option<Arc<Database>>>,
}

type Txn = redb::WriteTransaction;

fn err(e: impl std::fmt::Display) -> String {
    format!("job queue: {e}")
}

fn read_job(txn: &Txn, id: &str) -> Result<Option<Job>, String> {
    let jobs = txn.open_table(JOBS).map_err(err)?;
    let Some(bytes) = jobs.get(id).map_err(err)? else {
        return Ok(None);
    };
    serde_json::from_slice(bytes.value()).map(Some).map_err(err)
}

/// `def` in a read transaction, or `None` if no write has created it yet.
fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, String> {
    match txn.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// Up to `limit` done jobs that finished before `before`, oldest created first.
fn done_before(
    by_state: &impl ReadableTable<(u8, u64, &'static str), ()>,
    jobs: &impl ReadableTable<&'static str, &'static [u8]>,
    before: u64,
    limit: usize,
) -> Result<Vec<Job>, String> {
    let done = state_code(JobState::Done);
    let mut old = Vec::new();
    for entry in by_state
        .range((done, 0u64, "")..=(done, u64::MAX, "\u{10ffff}"))
        .map_err(err)?
    {
        if old.len() >= limit {
            break;
        }
        let entry = entry.map_err(err)?;
        let Some(bytes) = jobs.get(entry.0.value().2).map_err(err)? else {
            continue;
        };
        let job: Job = serde_json::from_slice(bytes.value()).map_err(err)?;
        if job.finished_ms.is_some_and(|f| f < before) {
            old.push(job);
        }
    }
    Ok(old)
}

/// Writes `job`, moving its index entries from `old` (its previous record).
fn write_job(txn: &Txn, job: &Job, old: Option<&Job>) -> Result<(), String> {
    let mut due = txn.open_table(DUE).map_err(err)?;
    let mut by_state = txn.open_table(BY_STATE).map_err(err)?;
    if let Some(old) = old {
        due.remove((old.due_ms, old.id.as_str())).map_err(err)?;
        by_state
            .remove((state_code(old.state), old.created_ms, old.id.as_str()))
            .map_err(err)?;
    }
    if matches!(job.state, JobState::Queued | JobState::Running) {
        due.insert((job.due_ms, job.id.as_str()), ()).map_err(err)?;
    }
    by_state
        .insert((state_code(job.state), job.created_ms, job.id.as_str()), ())
        .map_err(err)?;
    let bytes = serde_json::to_vec(job).map_err(err)?;
    txn.open_table(JOBS)
        .map_err(err)?
        .insert(job.id.as_str(), bytes.as_slice())
        .map_err(err)?;
    Ok(())
}

/// Adds `delta` to the waiting count of `target`.
fn add_waiting(txn: &Txn, target: &str, delta: i64) -> Result<u64, String> {
    let mut waiting = txn.open_table(WAITING).map_err(err)?;
    let n = waiting.get(target).map_err(err)?.map_or(0, |v| v.value());
    let n = n.saturating_add_signed(delta);
    if n == 0 {
        waiting.remove(target).map_err(err)?;
    } else {
        waiting.insert(target, n).map_err(err)?;
    }
    Ok(n)
}

impl Embedded {
    pub(crate) fn open(dir: &Path) -> Result<Embedded, String> {
        Ok(Embedded {
            path: dir.join("jobs.redb"),
            db: std::sync::Mutex::new(None),
        })
    }

    /// The database, opened now if it was not (a failure is retried at the
    /// next use).
    pub(crate) fn db(&self) -> Result<Arc<Database>, String> {
        let mut slot = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "cannot create the storage directory `{}`: {e}",
                    dir.display()
                )
            })?;
        }
        let db = Database::create(&self.path)
            .map(Arc::new)
            .map_err(|e| format!("cannot open the job queue `{}`: {e}", self.path.display()))?;
        *slot = Some(db.clone());
        Ok(db)
    }

    /// Whether this process opened the queue (by queueing a job, or at start
    /// for a config with `cron` triggers or `enqueue` grants).
    fn in_use(&self) -> bool {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Runs `f` in one write transaction on the blocking pool; commits on `Ok`.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Txn) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let db = self.db()?;
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(err)?;
            let out = f(&txn)?;
            txn.commit().map_err(err)?;
            Ok(out)
        })
        .await
        .map_err(err)?
    }

    /// Runs `f` in one read transaction on the blocking pool: nothing is
    /// written, so nothing is synced to disk.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let db = self.db()?;
        tokio::task::spawn_blocking(move || f(&db.begin_read().map_err(err)?))
            .await
            .map_err(err)?
    }

    pub(crate) async fn enqueue(&self, job: Job, cap: u64) -> Result<bool, String> {
        self.write(move |txn| {
            let waiting = txn.open_table(WAITING).map_err(err)?;
            let n = waiting
                .get(job.target.as_str())
                .map_err(err)?
                .map_or(0, |v| v.value());
            drop(waiting);
            if n >= cap {
                return Ok(false);
            }
            add_waiting(txn, &job.target, 1)?;
            write_job(txn, &job, None)?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn claim(
        &self,
        now: u64,
        lease_ms: u64,
        token: String,
    ) -> Result<Option<Job>, String> {
        // Idle workers look every POLL: a commit there, even an empty one,
        // writes and syncs the file (20 times a second for an idle server).
        // So look first; a write transaction only when a job is due.
        let any_due = self
            .read(move |txn| {
                let Some(due) = open_read(txn, DUE)? else {
                    return Ok(false);
                };
                let mut first = due.range((0u64, "")..=(now, "\u{10ffff}")).map_err(err)?;
                Ok(first.next().is_some())
            })
            .await?;
        if !any_due {
            return Ok(None);
        }
        self.write(move |txn| {
            let first = {
                let due = txn.open_table(DUE).map_err(err)?;
                let first = due
                    .range((0u64, "")..=(now, "\u{10ffff}"))
                    .map_err(err)?
                    .next()
                    .transpose()
                    .map_err(err)?
                    .map(|(k, _)| k.value().1.to_owned());
                first
            };
            let Some(id) = first else { return Ok(None) };
            let Some(old) = read_job(txn, &id)? else {
                return Err(err(format!("index names a missing job `{id}`")));
            };
            let mut job = old.clone();
            job.state = JobState::Running;
            job.attempts += 1;
            job.due_ms = now + lease_ms;
            job.token = token;
            write_job(txn, &job, Some(&old))?;
            Ok(Some(job))
        })
        .await
    }

    pub(crate) async fn finish(
        &self,
        claimed: &Job,
        finish: &Finish,
        next: Option<u64>,
        now: u64,
    ) -> Result<bool, String> {
        let (id, token, finish) = (claimed.id.clone(), claimed.token.clone(), finish.clone());
        self.write(move |txn| {
            let Some(old) = read_job(txn, &id)? else {
                return Ok(false);
            };
            if old.state != JobState::Running || old.token != token {
                return Ok(false);
            }
            let mut job = old.clone();
            job.token.clear();
            match (finish, next) {
                (Finish::Done(result), _) => {
                    job.state = JobState::Done;
                    job.result = Some(result);
                    job.finished_ms = Some(now);
                    add_waiting(txn, &job.target, -1)?;
                }
                (Finish::Failed(e), Some(due)) => {
                    job.state = JobState::Queued;
                    job.due_ms = due;
                    job.last_error = Some(e);
                }
                (Finish::Failed(e), None) => {
                    job.state = JobState::Dead;
                    job.last_error = Some(e);
                    job.finished_ms = Some(now);
                    add_waiting(txn, &job.target, -1)?;
                }
            }
            write_job(txn, &job, Some(&old))?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        if !self.in_use() {
            return Ok(None);
        }
        let id = id.to_owned();
        self.read(move |txn| {
            let Some(jobs) = open_read(txn, JOBS)? else {
                return Ok(None);
            };
            let Some(bytes) = jobs.get(id.as_str()).map_err(err)? else {
                return Ok(None);
            };
            serde_json::from_slice(bytes.value()).map(Some).map_err(err)
        })
        .await
    }

    pub(crate) async fn list(&self, state: JobState, limit: usize) -> Result<Vec<Job>, String> {
        if !self.in_use() {
            return Ok(Vec::new());
        }
        self.read(move |txn| {
            let (Some(by_state), Some(jobs)) = (open_read(txn, BY_STATE)?, open_read(txn, JOBS)?)
            else {
                return Ok(Vec::new());
            };
            let code = state_code(state);
            let mut out = Vec::new();
            for entry in by_state
                .range((code, 0u64, "")..=(code, u64::MAX, "\u{10ffff}"))
                .map_err(err)?
                .take(limit)
            {
                let entry = entry.map_err(err)?;
                let id = entry.0.value().2;
                if let Some(bytes) = jobs.get(id).map_err(err)? {
                    out.push(serde_json::from_slice(bytes.value()).map_err(err)?);
                }
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn retry(&self, id: &str, now: u64) -> Result<bool, String> {
        let id = id.to_owned();
        self.write(move |txn| {
            let Some(old) = read_job(txn, &id)? else {
                return Ok(false);
            };
            if old.state != JobState::Dead {
                return Ok(false);
            }
            let mut job = old.clone();
            job.state = JobState::Queued;
            job.attempts = 0;
            job.due_ms = now;
            job.finished_ms = None;
            add_waiting(txn, &job.target, 1)?;
            write_job(txn, &job, Some(&old))?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<bool, String> {
        let id = id.to_owned();
        self.write(move |txn| {
            let Some(old) = read_job(txn, &id)? else {
                return Ok(false);
            };
            if old.state == JobState::Running {
                return Ok(false);
            }
            if old.state == JobState::Queued {
                add_waiting(txn, &old.target, -1)?;
            }
            txn.open_table(DUE)
                .map_err(err)?
                .remove((old.due_ms, old.id.as_str()))
                .map_err(err)?;
            txn.open_table(BY_STATE)
                .map_err(err)?
                .remove((state_code(old.state), old.created_ms, old.id.as_str()))
                .map_err(err)?;
            txn.open_table(JOBS)
                .map_err(err)?
                .remove(old.id.as_str())
                .map_err(err)?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn prune_done(&self, before: u64) -> Result<usize, String> {
        if !self.in_use() {
            return Ok(0);
        }
        // Every PRUNE_EVERY: look first, so that a store with nothing to remove
        // is not written (and synced).
        let any_old = self
            .read(move |txn| {
                let (Some(by_state), Some(jobs)) =
                    (open_read(txn, BY_STATE)?, open_read(txn, JOBS)?)
                else {
                    return Ok(false);
                };
                Ok(!done_before(&by_state, &jobs, before, 1)?.is_empty())
            })
            .await?;
        if !any_old {
            return Ok(0);
        }
        self.write(move |txn| {
            let mut by_state = txn.open_table(BY_STATE).map_err(err)?;
            let mut jobs = txn.open_table(JOBS).map_err(err)?;
            let old = done_before(&by_state, &jobs, before, 1000)?;
            let done = state_code(JobState::Done);
            for job in &old {
                by_state
                    .remove((done, job.created_ms, job.id.as_str()))
                    .map_err(err)?;
                jobs.remove(job.id.as_str()).map_err(err)?;
            }
            Ok(old.len())
        })
        .await
    }

    pub(crate) async fn depths(&self) -> Result<Vec<(String, u64)>, String> {
        if !self.in_use() {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let Some(waiting) = open_read(txn, WAITING)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in waiting.iter().map_err(err)? {
                let (k, v) = entry.map_err(err)?;
                out.push((k.value().to_owned(), v.value()));
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn claim_tick(&self, key: &str, tick_ms: u64) -> Result<bool, String> {
        let key = key.to_owned();
        self.write(move |txn| {
            let mut ticks = txn.open_table(TICKS).map_err(err)?;
            let last = ticks.get(key.as_str()).map_err(err)?.map(|v| v.value());
            if last.is_some_and(|l| l >= tick_ms) {
                return Ok(false);
            }
            ticks.insert(key.as_str(), tick_ms).map_err(err)?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn last_tick(&self, key: &str) -> Result<Option<u64>, String> {
        let key = key.to_owned();
        self.read(move |txn| {
            let Some(ticks) = open_read(txn, TICKS)? else {
                return Ok(None);
            };
            let last = ticks.get(key.as_str()).map_err(err)?.map(|v| v.value());
            Ok(last)
        })
        .await
    }
}
