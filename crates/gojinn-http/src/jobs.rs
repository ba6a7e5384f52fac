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

/// What `host_enqueue` queues into.
pub struct QueueSink(pub Arc<Workers>);

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
            match self.0.enqueue(job, policy.queue_max).await {
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
    workers: &Workers,
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> (http::StatusCode, serde_json::Value) {
    use http::{Method, StatusCode};
    let queue = workers.queue();
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
            match queue.list(state, 1000).await {
                Ok(jobs) => (StatusCode::OK, serde_json::json!({ "jobs": jobs })),
                Err(e) => store_error(e),
            }
        }
        (&Method::GET, [id]) => match queue.get(id).await {
            Ok(Some(job)) => (StatusCode::OK, job_json(&job)),
            Ok(None) => not_found(id),
            Err(e) => store_error(e),
        },
        (&Method::POST, [id, "retry"]) => match queue.retry(id).await {
            Ok(true) => (
                StatusCode::OK,
                serde_json::json!({ "status": "queued", "job_id": id }),
            ),
            Ok(false) => (
                StatusCode::CONFLICT,
                serde_json::json!({ "error": format!("job `{id}` is not dead (or does not exist)") }),
            ),
            Err(e) => store_error(e),
        },
        (&Method::DELETE, [id]) => match queue.delete(id).await {
            Ok(true) => (StatusCode::OK, serde_json::json!({ "deleted": id })),
            Ok(false) => (
                StatusCode::CONFLICT,
                serde_json::json!({ "error": format!("job `{id}` is running (or does not exist)") }),
            ),
            Err(e) => store_error(e),
        },
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
