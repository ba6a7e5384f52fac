//! The workers that run queued jobs and the cron schedulers that queue them.
//! Made once per process (like the stores) and kept across reloads: what runs
//! a job is the server's [`Executor`], which finds the target in the config
//! that serves at the time; a reload replaces the cron entries.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::{now_ms, EnqueueError, Finish, Finished, Job, JobKind, NewJob, Queue};

/// What a job's attempt ended as.
pub type Outcome = Finish;

/// Runs jobs for the workers: the server's side.
pub trait Executor: Send + Sync + 'static {
    /// Runs one attempt of `job` within its target's deadline.
    fn run<'a>(&'a self, job: &'a Job) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
    /// How long a claimed job is leased: longer than any target's deadline.
    fn lease(&self) -> Duration;
}

/// Something the workers tell, for metrics and logs.
#[derive(Debug, Clone, Copy)]
pub enum JobEvent<'a> {
    /// An attempt finished: `outcome` is `done`, `retry`, `dead`, or `lost`
    /// (its lease had passed and another node took the job).
    Attempt {
        /// The job's kind.
        kind: JobKind,
        /// The job's target.
        target: &'a str,
        /// See above.
        outcome: &'static str,
        /// How long the attempt ran.
        elapsed: Duration,
    },
    /// A cron tick queued its job this late after its scheduled time.
    CronFired {
        /// The trigger's target.
        target: &'a str,
        /// From the scheduled time to the job queued.
        lateness: Duration,
    },
    /// A job for `target` was not queued: its queue was full.
    Refused {
        /// The target.
        target: &'a str,
    },
    /// Jobs waiting (queued or running) for `target`.
    Depth {
        /// The target.
        target: &'a str,
        /// Its jobs queued or running.
        jobs: u64,
    },
}

/// Told of every [`JobEvent`].
pub type JobEvents = Arc<dyn Fn(JobEvent<'_>) + Send + Sync>;

/// A cron trigger: when it fires, a job for `target`.
pub struct CronEntry {
    /// Unique per trigger and stable across restarts and nodes (the tick
    /// lease is kept under it).
    pub key: String,
    /// What the job runs.
    pub target: String,
    /// The first tick strictly after a time (ms since the epoch).
    pub next_after: Box<dyn Fn(u64) -> Option<u64> + Send + Sync>,
    /// After downtime, fire one job for the ticks missed (else none).
    pub catch_up_once: bool,
    /// Attempts per job (`retries` + 1).
    pub max_attempts: u32,
    /// Wait before a retry, doubled each time.
    pub backoff_ms: u64,
    /// Cap on the target's waiting jobs.
    pub queue_max: u64,
}

/// How many jobs one node runs at once.
const CONCURRENCY: usize = 4;
/// How often an idle worker looks at the queue (jobs other nodes queued,
/// retries that came due).
const POLL: Duration = Duration::from_millis(200);
/// How long a done job (and the response it keeps) stays in the store.
pub const DONE_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How often done jobs past [`DONE_KEPT`] are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How often the depth of each target's queue is told.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// The process's workers and cron schedulers.
pub struct Workers {
    queue: Arc<Queue>,
    executor: std::sync::OnceLock<Arc<dyn Executor>>,
    events: JobEvents,
    /// Wakes an idle worker when this node queued a job.
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    workers: Mutex<JoinSet<()>>,
    crons: Mutex<JoinSet<()>>,
}

impl Workers {
    /// Workers on `queue`, not yet running: jobs can be queued at once, and
    /// run once [`run`](Self::run) gives them an executor.
    pub fn new(queue: Arc<Queue>, events: JobEvents) -> Arc<Workers> {
        Arc::new(Workers {
            queue,
            executor: std::sync::OnceLock::new(),
            events,
            wake: Arc::new(Notify::new()),
            stop: watch::Sender::new(false),
            workers: Mutex::new(JoinSet::new()),
            crons: Mutex::new(JoinSet::new()),
        })
    }

    /// Starts running jobs with `executor` (once; later calls do nothing).
    /// Must be called inside a tokio runtime.
    pub fn run(&self, executor: Arc<dyn Executor>) {
        if self.executor.set(executor).is_err() {
            return;
        }
        let mut set = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..CONCURRENCY {
            if let Some(p) = self.parts() {
                set.spawn(work(p));
            }
        }
        if let Some(p) = self.parts() {
            set.spawn(report_depths(p));
        }
    }

    fn parts(&self) -> Option<Parts> {
        Some(Parts {
            queue: self.queue.clone(),
            executor: self.executor.get()?.clone(),
            events: self.events.clone(),
            wake: self.wake.clone(),
            stop: self.stop.subscribe(),
        })
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Queues `job` unless its target has `cap` waiting, and wakes a worker.
    pub async fn enqueue(&self, job: NewJob, cap: u64) -> Result<String, EnqueueError> {
        match self.queue.enqueue(job, cap).await {
            Ok(id) => {
                self.wake.notify_one();
                Ok(id)
            }
            Err(EnqueueError::Full(target)) => {
                (self.events)(JobEvent::Refused { target: &target });
                Err(EnqueueError::Full(target))
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces the cron triggers (each reload hands the new config's).
    pub fn set_crons(&self, entries: Vec<CronEntry>) {
        let mut crons = self.crons.lock().unwrap_or_else(|e| e.into_inner());
        crons.abort_all();
        for entry in entries {
            if let Some(p) = self.parts() {
                crons.spawn(schedule(p, entry));
            }
        }
    }

    /// Stops claiming jobs and firing triggers; running attempts get `grace`
    /// to finish, then are dropped (their jobs stay leased and run again
    /// after the lease). Queued jobs stay queued.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        self.crons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
        let mut set = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let finished =
            tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(target: "gojinn::jobs", "jobs still running after the grace period were stopped; they run again after their lease");
            set.abort_all();
        }
    }
}

/// What each task of the workers holds.
struct Parts {
    queue: Arc<Queue>,
    executor: Arc<dyn Executor>,
    events: JobEvents,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

impl Parts {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `d`, or less when woken or stopped.
    async fn idle(&mut self, d: Duration) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.wake.notified() => {}
            _ = self.stop.changed() => {}
        }
    }
}

/// One worker: claims and runs jobs until stopped.
async fn work(mut p: Parts) {
    while !p.stopping() {
        match p.queue.claim(p.executor.lease()).await {
            Ok(Some(job)) => run_one(&p, job).await,
            Ok(None) => p.idle(POLL).await,
            Err(e) => {
                tracing::warn!(target: "gojinn::jobs", error = %e, "cannot claim a job");
                p.idle(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn run_one(p: &Parts, job: Job) {
    let started = std::time::Instant::now();
    tracing::debug!(target: "gojinn::jobs", job_id = %job.id, kind = job.kind.as_str(), target_key = %job.target, attempt = job.attempts, "job attempt started");
    let finish = p.executor.run(&job).await;
    let fault = match &finish {
        Finish::Failed(e) => Some(e.clone()),
        Finish::Done(_) => None,
    };
    let outcome = match p.queue.finish(&job, finish).await {
        Ok(finished) => finished,
        Err(e) => {
            tracing::error!(target: "gojinn::jobs", job_id = %job.id, error = %e, "cannot record a job's outcome; it runs again after its lease");
            Finished::Lost
        }
    };
    match (fault, outcome) {
        (Some(e), Finished::Dead) => {
            tracing::warn!(target: "gojinn::jobs", job_id = %job.id, kind = job.kind.as_str(), attempts = job.attempts, error = %e, "job failed for good: dead")
        }
        (Some(e), Finished::Retry) => {
            tracing::info!(target: "gojinn::jobs", job_id = %job.id, kind = job.kind.as_str(), attempt = job.attempts, error = %e, "job attempt failed; retrying")
        }
        _ => {}
    }
    (p.events)(JobEvent::Attempt {
        kind: job.kind,
        target: &job.target,
        outcome: outcome.as_str(),
        elapsed: started.elapsed(),
    });
}

async fn report_depths(mut p: Parts) {
    let mut last_prune = std::time::Instant::now();
    while !p.stopping() {
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = std::time::Instant::now();
            let before = now_ms().saturating_sub(u64::try_from(DONE_KEPT.as_millis()).unwrap_or(0));
            match p.queue.prune_done(before).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(target: "gojinn::jobs", removed = n, "done jobs past their keeping time removed")
                }
                Err(e) => {
                    tracing::debug!(target: "gojinn::jobs", error = %e, "cannot remove old done jobs")
                }
            }
        }
        match p.queue.depths().await {
            Ok(depths) => {
                for (target, jobs) in &depths {
                    (p.events)(JobEvent::Depth {
                        target,
                        jobs: *jobs,
                    });
                }
            }
            Err(e) => {
                tracing::debug!(target: "gojinn::jobs", error = %e, "cannot read queue depths")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(DEPTH_EVERY) => {}
            _ = p.stop.changed() => {}
        }
    }
}

/// The stdin of a cron job (Gojinn's, with the tick's time).
fn cron_payload(tick_ms: u64) -> Vec<u8> {
    let at = time_rfc3339(tick_ms);
    serde_json::json!({
        "event_type": "cron",
        "source": "gojinn_scheduler",
        "scheduled_at": at,
    })
    .to_string()
    .into_bytes()
}

fn time_rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let nanos = u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// One cron trigger: at each tick, the node that claims it queues the job.
async fn schedule(p: Parts, entry: CronEntry) {
    if entry.catch_up_once {
        catch_up(&p, &entry).await;
    }
    let mut after = now_ms();
    while !p.stopping() {
        let Some(tick) = (entry.next_after)(after) else {
            return;
        };
        let wait = Duration::from_millis(tick.saturating_sub(now_ms()));
        tokio::time::sleep(wait).await;
        fire(&p, &entry, tick).await;
        after = tick;
    }
}

/// Fires one job for the ticks missed since the last one any node claimed.
async fn catch_up(p: &Parts, entry: &CronEntry) {
    let last = match p.queue.last_tick(&entry.key).await {
        Ok(Some(last)) => last,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(target: "gojinn::jobs", cron = %entry.key, error = %e, "cannot read the last tick; no catch-up");
            return;
        }
    };
    if let Some(missed) = (entry.next_after)(last).filter(|&t| t < now_ms()) {
        tracing::info!(target: "gojinn::jobs", cron = %entry.key, scheduled_at = %time_rfc3339(missed), "catching up a missed cron tick");
        fire(p, entry, missed).await;
    }
}

async fn fire(p: &Parts, entry: &CronEntry, tick: u64) {
    match p.queue.claim_tick(&entry.key, tick).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(target: "gojinn::jobs", cron = %entry.key, error = %e, "cannot claim a cron tick; skipped");
            return;
        }
    }
    let job = NewJob {
        kind: JobKind::Cron,
        target: entry.target.clone(),
        payload: cron_payload(tick),
        max_attempts: entry.max_attempts,
        backoff_ms: entry.backoff_ms,
        traceparent: None,
    };
    match p.queue.enqueue(job, entry.queue_max).await {
        Ok(id) => {
            p.wake.notify_one();
            (p.events)(JobEvent::CronFired {
                target: &entry.target,
                lateness: Duration::from_millis(now_ms().saturating_sub(tick)),
            });
            tracing::debug!(target: "gojinn::jobs", cron = %entry.key, job_id = %id, "cron tick queued");
        }
        Err(e) => {
            tracing::warn!(target: "gojinn::jobs", cron = %entry.key, error = %e, "cron tick not queued")
        }
    }
}
