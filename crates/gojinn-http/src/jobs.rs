//! The server's side of the job queue (`gojinn-jobs`): the sink `host_enqueue`
//! queues into, the executor that runs a job's target in the app that serves,
//! asynchronous requests (`X-Gojinn-Async: true`), and the job API of the
//! admin listener.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use gojinn_host::{HostError, JobPolicy};
use gojinn_jobs::{EnqueueError, Finish, Job, JobKind, JobState, NewJob, Workers};

use crate::server::Shared;

/// Margin of a job's lease over the longest deadline of any target.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// The header that makes a request asynchronous.
pub(crate) const ASYNC_HEADER: &str = "x-gojinn-async";
/// The header of a 202 answer naming the job.
pub(crate) const JOB_ID_HEADER: &str = "x-gojinn-job-id";

/// The job queues of the process, one per `queue` URL in use (`None`: the
/// embedded queue in the storage directory), each with its workers; made on
/// first use and kept across reloads, all running jobs with one executor.
pub struct JobQueues {
    dir: Option<std::path::PathBuf>,
    events: gojinn_jobs::worker::JobEvents,
    executor: std::sync::OnceLock<Arc<dyn gojinn_jobs::Executor>>,
    queues: std::sync::Mutex<Vec<(Option<String>, Arc<Workers>)>>,
}

impl JobQueues {
    /// No queue yet; the embedded one will live in `dir` (`None`: HOME unset,
    /// so only `queue` URLs can be used).
    pub fn new(
        dir: Option<std::path::PathBuf>,
        events: gojinn_jobs::worker::JobEvents,
    ) -> Arc<JobQueues> {
        Arc::new(JobQueues {
            dir,
            events,
            executor: std::sync::OnceLock::new(),
            queues: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The workers of the queue at `url` (`None`: embedded), made now if new.
    pub fn get(&self, url: Option<&str>) -> Result<Arc<Workers>, String> {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, w)) = queues.iter().find(|(u, _)| u.as_deref() == url) {
            return Ok(w.clone());
        }
        let queue = match (url, &self.dir) {
            (Some(url), _) => gojinn_jobs::Queue::open(Path::new(""), Some(url))?,
            (None, Some(dir)) => gojinn_jobs::Queue::open(dir, None)?,
            (None, None) => {
                return Err("the embedded job queue needs a storage directory: set the `storage` global option (HOME is unset), or a `queue` URL".to_owned())
            }
        };
        let workers = Workers::new(Arc::new(queue), self.events.clone());
        if let Some(executor) = self.executor.get() {
            workers.run(executor.clone());
        }
        queues.push((url.map(str::to_owned), workers.clone()));
        Ok(workers)
    }

    /// Starts every queue's workers with `executor`, and those made later.
    pub(crate) fn run(&self, executor: Arc<dyn gojinn_jobs::Executor>) {
        let _ = self.executor.set(executor.clone());
        for (_, w) in self.all() {
            w.run(executor.clone());
        }
    }

    /// Every queue made so far, with its URL.
    pub(crate) fn all(&self) -> Vec<(Option<String>, Arc<Workers>)> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops every queue's workers (see [`Workers::shutdown`]).
    pub(crate) async fn shutdown(&self, grace: Duration) {
        let mut stops = tokio::task::JoinSet::new();
        for (_, w) in self.all() {
            stops.spawn(async move { w.shutdown(grace).await });
        }
        while stops.join_next().await.is_some() {}
    }
}

/// What `host_enqueue` queues into: the queue of the enqueuing route's site.
pub struct QueueSink(pub Arc<JobQueues>);

impl gojinn_host::JobSink for QueueSink {
    fn enqueue<'a>(
        &'a self,
        target: &'a Path,
        payload: Vec<u8>,
        policy: &'a JobPolicy,
        trace_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), HostError>> + Send + 'a>>
    {
        Box::pin(async move {
            let job = NewJob {
                kind: JobKind::Enqueue,
                target: target.display().to_string(),
                payload,
                max_attempts: policy.max_attempts,
                backoff_ms: policy.backoff_ms,
                traceparent: (!trace_id.is_empty()).then(|| trace_id.to_owned()),
            };
            let workers = self
                .0
                .get(policy.queue.as_deref())
                .map_err(HostError::Unavailable)?;
            match workers.enqueue(job, policy.queue_max).await {
                Ok(id) => {
                    tracing::info!(target: "gojinn::jobs", job_id = %id, target_module = %target.display(), trace_id, "job queued");
                    Ok(())
                }
                Err(e @ EnqueueError::Full(_)) => Err(HostError::Unavailable(format!(
                    "{e} (`queue_max` {})",
                    policy.queue_max
                ))),
                Err(EnqueueError::Store(e)) => Err(HostError::Unavailable(e)),
            }
        })
    }
}

/// Queues an asynchronous request: the function's request JSON becomes the
/// job's payload; its id is returned.
pub(crate) async fn enqueue_request(
    workers: &Workers,
    module: &Path,
    policy: &JobPolicy,
    request: Vec<u8>,
    trace_id: &str,
) -> Result<String, EnqueueError> {
    workers
        .enqueue(
            NewJob {
                kind: JobKind::Async,
                target: module.display().to_string(),
                payload: request,
                max_attempts: policy.max_attempts,
                backoff_ms: policy.backoff_ms,
                traceparent: (!trace_id.is_empty()).then(|| trace_id.to_owned()),
            },
            policy.queue_max,
        )
        .await
}

/// Runs jobs in the app that serves when they are claimed.
pub(crate) struct AppExecutor {
    shared: Weak<Shared>,
}

impl AppExecutor {
    pub(crate) fn new(shared: &Arc<Shared>) -> AppExecutor {
        AppExecutor {
            shared: Arc::downgrade(shared),
        }
    }
}

impl gojinn_jobs::Executor for AppExecutor {
    fn run<'a>(
        &'a self,
        job: &'a Job,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Finish> + Send + 'a>> {
        Box::pin(async move {
            let Some(shared) = self.shared.upgrade() else {
                return Finish::Failed("the server is stopping".to_owned());
            };
            let app = shared.app.load_full();
            let Some(route) = app.job_target(&job.target) else {
                return Finish::Failed(format!(
                    "no route of the running config runs `{}`",
                    job.target
                ));
            };
            let trace_id = job
                .traceparent
                .clone()
                .unwrap_or_else(crate::trace::fresh_traceparent);
            let span = crate::otel::JobSpan::start(app.tracer.as_ref(), job, &route.label);
            let finish = run_target(&route, job, &trace_id).await;
            if let Some(span) = span {
                span.finish(match &finish {
                    Finish::Failed(e) => Some(e.as_str()),
                    Finish::Done(_) => None,
                });
            }
            finish
        })
    }

    fn lease(&self) -> Duration {
        let longest = self
            .shared
            .upgrade()
            .map(|s| s.app.load().longest_job_deadline())
            .unwrap_or_default();
        longest + LEASE_MARGIN
    }
}

/// One attempt of `job` on `route`'s function.
async fn run_target(route: &crate::app::FunctionRoute, job: &Job, trace_id: &str) -> Finish {
    let outcome = {
        let _in_flight = route.metrics.in_flight();
        route
            .function
            .call_traced(job.payload.clone(), trace_id)
            .await
    };
    route.metrics.record_call(&outcome);
    for line in String::from_utf8_lossy(&outcome.stderr).lines() {
        tracing::info!(target: "gojinn::guest", route = %route.label, job_id = %job.id, trace_id = %trace_id, "{line}");
    }
    let stdout = match outcome.result {
        Ok(stdout) => stdout,
        Err(fault) => return Finish::Failed(fault.to_string()),
    };
    // A function that answers with a server error failed its job.
    match gojinn_contract::decode_output(&stdout) {
        Ok(resp) if resp.status >= 500 => {
            Finish::Failed(format!("the function answered {}", resp.status))
        }
        Ok(resp) => Finish::Done(response_json(&resp).to_string().into_bytes()),
        Err(_) => Finish::Done(stdout),
    }
}

/// The job API of the admin listener: `GET /jobs/{id}`, `GET /jobs?state=…`,
/// `POST /jobs/{id}/retry`, `DELETE /jobs/{id}`. Answers status and JSON.
pub async fn api(
    queues: &JobQueues,
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> (http::StatusCode, serde_json::Value) {
    use http::{Method, StatusCode};
    let all = queues.all();
    let rest = path.strip_prefix("/jobs").unwrap_or(path);
    let store_error = |e: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": e }),
        )
    };
    let not_found = |id: &str| {
        (
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": format!("no job `{id}`") }),
        )
    };
    // The queue holding job `id`, if any.
    let holder = async |id: &str| -> Result<Option<(Arc<Workers>, Job)>, String> {
        for (_, w) in &all {
            if let Some(job) = w.queue().get(id).await? {
                return Ok(Some((w.clone(), job)));
            }
        }
        Ok(None)
    };
    match (
        method,
        rest.trim_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        (&Method::GET, [""]) => {
            let state = query
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("state="))
                .unwrap_or("queued");
            let Some(state) = JobState::parse(state) else {
                return (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": format!("unknown state `{state}`: use queued, running, done or dead") }),
                );
            };
            let mut jobs = Vec::new();
            for (_, w) in &all {
                match w.queue().list(state, 1000).await {
                    Ok(list) => jobs.extend(list),
                    Err(e) => return store_error(e),
                }
            }
            jobs.sort_by(|a, b| a.id.cmp(&b.id));
            jobs.truncate(1000);
            (StatusCode::OK, serde_json::json!({ "jobs": jobs }))
        }
        (&Method::GET, [id]) => match holder(id).await {
            Ok(Some((_, job))) => (StatusCode::OK, job_json(&job)),
            Ok(None) => not_found(id),
            Err(e) => store_error(e),
        },
        (&Method::POST, [id, "retry"]) => {
            let retried = match holder(id).await {
                Ok(Some((w, _))) => w.queue().retry(id).await,
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            match retried {
                Ok(true) => (
                    StatusCode::OK,
                    serde_json::json!({ "status": "queued", "job_id": id }),
                ),
                Ok(false) => (
                    StatusCode::CONFLICT,
                    serde_json::json!({ "error": format!("job `{id}` is not dead (or does not exist)") }),
                ),
                Err(e) => store_error(e),
            }
        }
        (&Method::DELETE, [id]) => {
            let deleted = match holder(id).await {
                Ok(Some((w, _))) => w.queue().delete(id).await,
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            match deleted {
                Ok(true) => (StatusCode::OK, serde_json::json!({ "deleted": id })),
                Ok(false) => (
                    StatusCode::CONFLICT,
                    serde_json::json!({ "error": format!("job `{id}` is running (or does not exist)") }),
                ),
                Err(e) => store_error(e),
            }
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({ "error": "use GET /jobs?state=…, GET /jobs/{id}, POST /jobs/{id}/retry or DELETE /jobs/{id}" }),
        ),
    }
}

/// The function's response as a job keeps it: status, headers, body (text).
fn response_json(resp: &gojinn_contract::Response) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &resp.headers {
        let values = headers
            .entry(name.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = values.as_array_mut() {
            list.push(serde_json::Value::String(value.clone()));
        }
    }
    serde_json::json!({
        "status": resp.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&resp.body),
    })
}

/// A job as the API shows it: the record, with the function's response as
/// JSON when it is JSON.
fn job_json(job: &Job) -> serde_json::Value {
    let mut v = serde_json::to_value(job).unwrap_or_default();
    if let (Some(obj), Some(result)) = (v.as_object_mut(), &job.result) {
        if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(result) {
            obj.insert("result".to_owned(), parsed);
        }
    }
    v
}
