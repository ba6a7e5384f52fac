//! Gojinn's durable job queue: what `host_enqueue`, asynchronous requests
//! (`X-Gojinn-Async: true`) and cron triggers put in, and the workers that run
//! it with the same sandbox, limits and grants as an HTTP request.
//!
//! One [`Queue`] per store: embedded (a redb file in `storage`, one node), or
//! Redis or PostgreSQL shared by any number of nodes. Every backend keeps the
//! same record per job and the same rules:
//! - a job is *queued* with a due time; a worker *claims* the oldest due job,
//!   which makes it *running* under a lease (a deadline and a random token);
//! - the worker *finishes* it with its token: *done* (with the result kept),
//!   or back to *queued* after a back-off while attempts remain, else *dead*
//!   (input and last fault kept, re-queueable);
//! - a running job whose lease passed is claimable again: a node that died
//!   mid-job loses it to another after the lease, and its late finish is
//!   refused (the token changed), so no job runs twice while its lease holds
//!   and none is lost;
//! - each target (a route's function) has a cap on its waiting jobs;
//! - a cron tick is claimed once across all nodes sharing the store.

mod embedded;
mod pg;
mod redis_queue;
pub mod worker;

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use worker::{CronEntry, Executor, Outcome, Workers};

/// What a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Fired by a cron trigger.
    Cron,
    /// Put in by a function's `host_enqueue`.
    Enqueue,
    /// An HTTP request sent with `X-Gojinn-Async: true`.
    Async,
}

impl JobKind {
    /// The name used in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Cron => "cron",
            JobKind::Enqueue => "enqueue",
            JobKind::Async => "async",
        }
    }

    fn parse(s: &str) -> JobKind {
        match s {
            "cron" => JobKind::Cron,
            "async" => JobKind::Async,
            _ => JobKind::Enqueue,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its due time and a worker.
    Queued,
    /// Claimed by a worker under a lease.
    Running,
    /// Finished; its result is kept.
    Done,
    /// Out of attempts; its input and last fault are kept.
    Dead,
}

impl JobState {
    /// The name used in the API (`?state=dead`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// One job, as every backend keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique, time-ordered id.
    pub id: String,
    /// What put it in.
    pub kind: JobKind,
    /// What runs it: a key the server maps to a compiled function.
    pub target: String,
    /// The function's stdin.
    #[serde(with = "bytes_text")]
    pub payload: Vec<u8>,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed in all (`retries` + 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub backoff_ms: u64,
    /// Queued: not before this (ms since the epoch); running: the lease's end.
    pub due_ms: u64,
    /// When it was queued (ms since the epoch).
    pub created_ms: u64,
    /// When it became done or dead (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// The last attempt's fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the function answered (its response JSON), when done.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_bytes_text"
    )]
    pub result: Option<Vec<u8>>,
    /// W3C `traceparent` of the request that enqueued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The lease token of the running attempt; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

/// Payloads and results are JSON text in practice; kept as bytes, shown as a
/// string (lossy where not UTF-8).
mod bytes_text {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(b))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

mod opt_bytes_text {
    use serde::{Deserialize, Deserializer, Serializer};
    #[allow(clippy::ref_option)] // serde's `with` hands a reference to the field
    pub(super) fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_str(&String::from_utf8_lossy(b)),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(String::into_bytes))
    }
}

/// A job to put in the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What puts it in.
    pub kind: JobKind,
    /// What runs it (see [`Job::target`]).
    pub target: String,
    /// The function's stdin.
    pub payload: Vec<u8>,
    /// `retries` + 1.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub backoff_ms: u64,
    /// W3C `traceparent` of the span that queues it.
    pub traceparent: Option<String>,
}

/// Why a job was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The target has `queue_max` jobs waiting already.
    #[error("the queue of `{0}` is full")]
    Full(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// What becomes of a claimed job.
#[derive(Debug, Clone)]
pub enum Finish {
    /// It succeeded; keep `result`.
    Done(Vec<u8>),
    /// It failed with this fault: retried after its back-off while attempts
    /// remain, else dead.
    Failed(String),
}

/// What [`Queue::finish`] made of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The job is done.
    Done,
    /// It failed and is queued again after its back-off.
    Retry,
    /// It failed for the last time.
    Dead,
    /// Its lease had passed and another claim took it: nothing recorded.
    Lost,
}

impl Finished {
    /// The name used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Finished::Done => "done",
            Finished::Retry => "retry",
            Finished::Dead => "dead",
            Finished::Lost => "lost",
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh job id: 48 bits of milliseconds, then 80 random bits, in hex —
/// sortable by creation time, also within one millisecond of one process (an
/// id is never below the last one made: the Redis queue orders jobs due in the
/// same millisecond by id, so random bits alone could put a newer job first).
pub fn new_id() -> String {
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let fresh = (u128::from(now_ms() & 0xffff_ffff_ffff) << 80)
        | (rand::random::<u128>() & ((1u128 << 80) - 1));
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *last = fresh.max(last.wrapping_add(1));
    format!("{:032x}", *last)
}

fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// When a failed job's next attempt is due: `backoff` doubled per attempt
/// already made beyond the first, capped at one hour.
fn retry_due(now: u64, backoff_ms: u64, attempts: u32) -> u64 {
    let factor = 1u64 << attempts.saturating_sub(1).min(20);
    now + backoff_ms.saturating_mul(factor).min(3_600_000)
}

impl NewJob {
    fn into_job(self, now: u64) -> Job {
        Job {
            id: new_id(),
            kind: self.kind,
            target: self.target,
            payload: self.payload,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: self.max_attempts.max(1),
            backoff_ms: self.backoff_ms,
            due_ms: now,
            created_ms: now,
            finished_ms: None,
            last_error: None,
            result: None,
            traceparent: self.traceparent,
            token: String::new(),
        }
    }
}

/// A job store (see the module documentation).
pub enum Queue {
    /// `jobs.redb` in the storage directory.
    Embedded(embedded::Embedded),
    /// A Redis server shared by nodes.
    Redis(redis_queue::RedisQueue),
    /// A PostgreSQL database shared by nodes.
    Postgres(Box<pg::PgQueue>),
}

impl Queue {
    /// The queue a `queue` URL names, or the embedded one in `dir`.
    pub fn open(dir: &Path, url: Option<&str>) -> Result<Queue, String> {
        match url {
            None => embedded::Embedded::open(dir).map(Queue::Embedded),
            Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                redis_queue::RedisQueue::new(u).map(Queue::Redis)
            }
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                pg::PgQueue::new(u).map(|q| Queue::Postgres(Box::new(q)))
            }
            Some(u) => Err(format!(
                "unknown queue URL `{u}`: use `redis://…` or `postgres://…`"
            )),
        }
    }

    /// Opens the store now (the embedded queue opens on first use otherwise,
    /// so that a process that never uses jobs never locks its file); jobs left
    /// from an earlier run then run.
    pub fn open_now(&self) -> Result<(), String> {
        match self {
            Queue::Embedded(q) => q.db().map(drop),
            _ => Ok(()),
        }
    }

    /// Puts `job` in unless its target has `cap` jobs waiting; its id.
    pub async fn enqueue(&self, job: NewJob, cap: u64) -> Result<String, EnqueueError> {
        let job = job.into_job(now_ms());
        let (id, target) = (job.id.clone(), job.target.clone());
        let queued = match self {
            Queue::Embedded(q) => q.enqueue(job, cap).await,
            Queue::Redis(q) => q.enqueue(job, cap).await,
            Queue::Postgres(q) => q.enqueue(job, cap).await,
        }
        .map_err(EnqueueError::Store)?;
        if queued {
            Ok(id)
        } else {
            Err(EnqueueError::Full(target))
        }
    }

    /// Claims the oldest due job (or one whose lease passed) for `lease`.
    pub async fn claim(&self, lease: Duration) -> Result<Option<Job>, String> {
        let (now, token) = (now_ms(), new_token());
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        match self {
            Queue::Embedded(q) => q.claim(now, lease_ms, token).await,
            Queue::Redis(q) => q.claim(now, lease_ms, token).await,
            Queue::Postgres(q) => q.claim(now, lease_ms, token).await,
        }
    }

    /// Finishes a claimed job; [`Finished::Lost`] when its lease had passed
    /// and it was claimed again (this attempt's outcome is dropped).
    pub async fn finish(&self, job: &Job, finish: Finish) -> Result<Finished, String> {
        let now = now_ms();
        let (next, finished) = match &finish {
            Finish::Done(_) => (None, Finished::Done),
            Finish::Failed(_) if job.attempts < job.max_attempts => (
                Some(retry_due(now, job.backoff_ms, job.attempts)),
                Finished::Retry,
            ),
            Finish::Failed(_) => (None, Finished::Dead),
        };
        let recorded = match self {
            Queue::Embedded(q) => q.finish(job, &finish, next, now).await,
            Queue::Redis(q) => q.finish(job, &finish, next, now).await,
            Queue::Postgres(q) => q.finish(job, &finish, next, now).await,
        }?;
        Ok(if recorded { finished } else { Finished::Lost })
    }

    /// The job `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        match self {
            Queue::Embedded(q) => q.get(id).await,
            Queue::Redis(q) => q.get(id).await,
            Queue::Postgres(q) => q.get(id).await,
        }
    }

    /// Up to `limit` jobs in `state`, oldest first.
    pub async fn list(&self, state: JobState, limit: usize) -> Result<Vec<Job>, String> {
        match self {
            Queue::Embedded(q) => q.list(state, limit).await,
            Queue::Redis(q) => q.list(state, limit).await,
            Queue::Postgres(q) => q.list(state, limit).await,
        }
    }

    /// Puts a dead job back in the queue with its attempts reset; `false`
    /// when there is no dead job `id`.
    pub async fn retry(&self, id: &str) -> Result<bool, String> {
        let now = now_ms();
        match self {
            Queue::Embedded(q) => q.retry(id, now).await,
            Queue::Redis(q) => q.retry(id, now).await,
            Queue::Postgres(q) => q.retry(id, now).await,
        }
    }

    /// Removes a job that is not running; `false` when there is none such.
    pub async fn delete(&self, id: &str) -> Result<bool, String> {
        match self {
            Queue::Embedded(q) => q.delete(id).await,
            Queue::Redis(q) => q.delete(id).await,
            Queue::Postgres(q) => q.delete(id).await,
        }
    }

    /// Removes up to 1,000 done jobs finished before `before` (ms since the
    /// epoch); how many. Dead jobs stay until retried or deleted.
    pub async fn prune_done(&self, before: u64) -> Result<usize, String> {
        match self {
            Queue::Embedded(q) => q.prune_done(before).await,
            Queue::Redis(q) => q.prune_done(before).await,
            Queue::Postgres(q) => q.prune_done(before).await,
        }
    }

    /// Jobs queued or running, by target.
    pub async fn depths(&self) -> Result<Vec<(String, u64)>, String> {
        match self {
            Queue::Embedded(q) => q.depths().await,
            Queue::Redis(q) => q.depths().await,
            Queue::Postgres(q) => q.depths().await,
        }
    }

    /// Claims the cron tick `tick_ms` of `key`: `true` for exactly one caller
    /// across the nodes sharing the store.
    pub async fn claim_tick(&self, key: &str, tick_ms: u64) -> Result<bool, String> {
        match self {
            Queue::Embedded(q) => q.claim_tick(key, tick_ms).await,
            Queue::Redis(q) => q.claim_tick(key, tick_ms).await,
            Queue::Postgres(q) => q.claim_tick(key, tick_ms).await,
        }
    }

    /// The last tick of `key` any node claimed.
    pub async fn last_tick(&self, key: &str) -> Result<Option<u64>, String> {
        match self {
            Queue::Embedded(q) => q.last_tick(key).await,
            Queue::Redis(q) => q.last_tick(key).await,
            Queue::Postgres(q) => q.last_tick(key).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_retries_back_off() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert_eq!(retry_due(1000, 500, 1), 1500);
        assert_eq!(retry_due(1000, 500, 3), 3000);
        assert_eq!(retry_due(0, 1000, 40), 3_600_000);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod queue_tests {
    use super::*;

    fn job(target: &str, attempts: u32) -> NewJob {
        NewJob {
            kind: JobKind::Enqueue,
            target: target.to_owned(),
            payload: b"{\"n\":1}".to_vec(),
            max_attempts: attempts,
            backoff_ms: 0,
            traceparent: None,
        }
    }

    /// The rules every backend keeps (see the module documentation).
    async fn keeps_the_rules(q: &Queue) {
        let lease = Duration::from_secs(60);
        // Cap per target.
        let a = q.enqueue(job("t", 2), 2).await.unwrap();
        let b = q.enqueue(job("t", 1), 2).await.unwrap();
        assert_eq!(
            q.enqueue(job("t", 1), 2).await,
            Err(EnqueueError::Full("t".into()))
        );
        assert_eq!(q.depths().await.unwrap(), vec![("t".to_owned(), 2)]);
        // Oldest first; a claimed job is not claimed again while leased.
        let first = q.claim(lease).await.unwrap().unwrap();
        assert_eq!(
            (first.id.as_str(), first.attempts, first.state),
            (a.as_str(), 1, JobState::Running)
        );
        let second = q.claim(lease).await.unwrap().unwrap();
        assert_eq!(second.id, b);
        assert!(q.claim(lease).await.unwrap().is_none());
        // A failure with attempts left is queued again; the last one is dead.
        assert_eq!(
            q.finish(&first, Finish::Failed("boom".into()))
                .await
                .unwrap(),
            Finished::Retry
        );
        let again = q.claim(lease).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (a.as_str(), 2));
        assert_eq!(
            q.finish(&first, Finish::Done(b"stale".to_vec()))
                .await
                .unwrap(),
            Finished::Lost,
            "an old token is refused"
        );
        assert_eq!(
            q.finish(&again, Finish::Failed("boom twice".into()))
                .await
                .unwrap(),
            Finished::Dead
        );
        let dead = q.get(&a).await.unwrap().unwrap();
        assert_eq!(
            (dead.state, dead.last_error.as_deref()),
            (JobState::Dead, Some("boom twice"))
        );
        assert_eq!(q.list(JobState::Dead, 10).await.unwrap().len(), 1);
        // Done keeps the result.
        assert_eq!(
            q.finish(&second, Finish::Done(b"{\"ok\":true}".to_vec()))
                .await
                .unwrap(),
            Finished::Done
        );
        let done = q.get(&b).await.unwrap().unwrap();
        assert_eq!(
            (done.state, done.result.as_deref()),
            (JobState::Done, Some(&b"{\"ok\":true}"[..]))
        );
        assert_eq!(
            q.depths()
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.1)
                .sum::<u64>(),
            0
        );
        // A dead job is re-queued with its attempts reset, then deletable.
        assert!(q.retry(&a).await.unwrap());
        assert!(!q.retry(&b).await.unwrap(), "only dead jobs are retried");
        let revived = q.claim(lease).await.unwrap().unwrap();
        assert_eq!((revived.id.as_str(), revived.attempts), (a.as_str(), 1));
        assert!(!q.delete(&a).await.unwrap(), "a running job is not deleted");
        // A lease that passed makes the job claimable again, with a new token.
        let c = q.enqueue(job("u", 1), 10).await.unwrap();
        let leased = q.claim(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(leased.id, c);
        let taken = q.claim(lease).await.unwrap().unwrap();
        assert_eq!((taken.id.as_str(), taken.attempts), (c.as_str(), 2));
        assert_eq!(
            q.finish(&leased, Finish::Done(Vec::new())).await.unwrap(),
            Finished::Lost
        );
        assert_eq!(
            q.finish(&taken, Finish::Done(Vec::new())).await.unwrap(),
            Finished::Done
        );
        assert!(q.delete(&c).await.unwrap());
        assert!(q.get(&c).await.unwrap().is_none());
        // Done jobs go after their keeping time; dead ones stay.
        assert_eq!(q.prune_done(now_ms() + 1).await.unwrap(), 1);
        assert!(q.get(&b).await.unwrap().is_none());
        assert_eq!(q.prune_done(now_ms() + 1).await.unwrap(), 0);
        // A tick is claimed once.
        assert_eq!(q.last_tick("k").await.unwrap(), None);
        assert!(q.claim_tick("k", 1000).await.unwrap());
        assert!(!q.claim_tick("k", 1000).await.unwrap());
        assert!(q.claim_tick("k", 2000).await.unwrap());
        assert_eq!(q.last_tick("k").await.unwrap(), Some(2000));
    }

    #[tokio::test]
    async fn the_embedded_queue_keeps_the_rules() {
        let dir = std::env::temp_dir().join(format!("gojinn-jobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        keeps_the_rules(&Queue::open(&dir, None).unwrap()).await;
    }

    /// Idle workers claim every POLL, read depths and prune: none of that may
    /// write the file (a commit syncs it to disk, even an empty one).
    #[tokio::test]
    async fn an_idle_embedded_queue_leaves_its_file_untouched() {
        let dir = std::env::temp_dir().join(format!("gojinn-jobs-idle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = Queue::open(&dir, None).unwrap();
        let lease = Duration::from_secs(60);
        // Empty, then holding only a job due later and a finished one.
        assert!(q.claim(lease).await.unwrap().is_none());
        let later = NewJob {
            backoff_ms: 3_600_000,
            ..job("t", 2)
        };
        q.enqueue(later, 10).await.unwrap();
        let running = q.claim(lease).await.unwrap().unwrap();
        assert_eq!(
            q.finish(&running, Finish::Failed("boom".into()))
                .await
                .unwrap(),
            Finished::Retry
        );
        q.enqueue(job("t", 1), 10).await.unwrap();
        let done = q.claim(lease).await.unwrap().unwrap();
        q.finish(&done, Finish::Done(Vec::new())).await.unwrap();
        let file = dir.join("jobs.redb");
        let before = std::fs::read(&file).unwrap();
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        for _ in 0..20 {
            assert!(q.claim(lease).await.unwrap().is_none());
            // The done job is younger than the cut: nothing to remove.
            assert_eq!(q.prune_done(now_ms() - 60_000).await.unwrap(), 0);
            assert_eq!(q.depths().await.unwrap(), vec![("t".to_owned(), 1)]);
            assert_eq!(q.last_tick("k").await.unwrap(), None);
        }
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            modified
        );
        assert!(std::fs::read(&file).unwrap() == before, "jobs.redb changed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_redis_queue_keeps_the_rules() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("SKIPPED: no redis-server (install Debian's `redis-server`)");
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let q = Queue::open(
            Path::new("/nonexistent"),
            Some(&format!("redis://127.0.0.1:{port}/0")),
        )
        .unwrap();
        keeps_the_rules(&q).await;
        let _ = child.kill();
        let _ = child.wait();
    }
}
