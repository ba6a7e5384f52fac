//! OpenTelemetry spans of function requests: a server span per request, parented
//! to the incoming W3C `traceparent`, with `instantiate` and `run` child spans.
//!
//! Off unless the binary hands the server a [`Tracer`] (the `tracing` global
//! option). When off, a request pays one `Option` check: no span, context or
//! attribute is built. The exporter and the propagator are set up by the binary
//! through the `opentelemetry` globals; this module only uses the API.

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The tracer request spans are made with. Cheap to clone.
#[derive(Clone)]
pub struct Tracer(Arc<BoxedTracer>);

impl Tracer {
    /// A tracer of the global tracer provider; its spans are parented through
    /// the global text-map propagator (set both first).
    pub fn from_global() -> Tracer {
        Tracer(Arc::new(global::tracer("gojinn")))
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The server span of one request, while it runs.
pub(crate) struct RequestSpan {
    tracer: Tracer,
    cx: Context,
    route: String,
    module: String,
}

/// What the sandbox reported, for the child spans.
pub(crate) struct SandboxTimes {
    /// When the call returned.
    pub(crate) end: SystemTime,
    pub(crate) instantiate: Duration,
    pub(crate) run: Duration,
}

impl RequestSpan {
    /// Starts the server span, or `None` when tracing is off.
    pub(crate) fn start(
        tracer: Option<&Tracer>,
        headers: &http::HeaderMap,
        method: &http::Method,
        path: &str,
        route: &str,
        module: &std::path::Path,
    ) -> Option<RequestSpan> {
        let handle = tracer?.clone();
        let tracer = &*handle.0;
        let parent = global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
        let module = module
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let span = tracer
            .span_builder(format!("{method} {route}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method.as_str().to_owned()),
                KeyValue::new("url.path", path.to_owned()),
                KeyValue::new("url.scheme", "http"),
                KeyValue::new("http.route", route.to_owned()),
                KeyValue::new("gojinn.route", route.to_owned()),
                KeyValue::new("gojinn.module", module.clone()),
            ])
            .start_with_context(tracer, &parent);
        Some(RequestSpan {
            tracer: handle.clone(),
            cx: parent.with_span(span),
            route: route.to_owned(),
            module,
        })
    }

    /// The server span as a W3C traceparent.
    pub(crate) fn traceparent(&self) -> String {
        let span = self.cx.span();
        let sc = span.span_context();
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    }

    /// Ends the span: the sandbox's child spans (from its measured times), the
    /// response status and the fault, if any.
    pub(crate) fn finish(
        self,
        status: http::StatusCode,
        fault: Option<&'static str>,
        sandbox: Option<SandboxTimes>,
    ) {
        if let Some(t) = sandbox {
            let tracer = &*self.tracer.0;
            let run_start = t.end.checked_sub(t.run).unwrap_or(t.end);
            let inst_start = run_start.checked_sub(t.instantiate).unwrap_or(run_start);
            self.child(tracer, "instantiate", inst_start, run_start, None);
            self.child(tracer, "run", run_start, t.end, fault);
        }
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if let Some(kind) = fault {
            span.set_attribute(KeyValue::new("gojinn.fault", kind));
        }
        // OTel HTTP conventions: a server span is an error for 5xx only.
        if status.is_server_error() {
            span.set_status(Status::error(fault.unwrap_or("server error")));
        }
        span.end();
    }

    fn child(
        &self,
        tracer: &BoxedTracer,
        name: &'static str,
        start: SystemTime,
        end: SystemTime,
        fault: Option<&'static str>,
    ) {
        let mut attributes = vec![
            KeyValue::new("gojinn.route", self.route.clone()),
            KeyValue::new("gojinn.module", self.module.clone()),
        ];
        if let Some(kind) = fault {
            attributes.push(KeyValue::new("gojinn.fault", kind));
        }
        let mut span: BoxedSpan = tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(tracer, &self.cx);
        if fault.is_some() {
            span.set_status(Status::error(fault.unwrap_or_default()));
        }
        span.end_with_timestamp(end);
    }
}

/// The span of one job attempt: a consumer span that starts a trace of its
/// own, linked (an OTel link, not a parent) to the span of the request that
/// queued the job, when the job kept its `traceparent`.
pub(crate) struct JobSpan {
    span: BoxedSpan,
}

/// A W3C `traceparent` as a remote span context.
fn remote_context(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.split('-');
    let (_version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

impl JobSpan {
    /// Starts the span of an attempt of `job`, or `None` when tracing is off.
    pub(crate) fn start(
        tracer: Option<&Tracer>,
        job: &gojinn_jobs::Job,
        route: &str,
    ) -> Option<JobSpan> {
        let tracer = &*tracer?.0;
        let links: Vec<Link> = job
            .traceparent
            .as_deref()
            .and_then(remote_context)
            .map(|cx| vec![Link::with_context(cx)])
            .unwrap_or_default();
        let span = tracer
            .span_builder(format!("job {}", job.kind.as_str()))
            .with_kind(SpanKind::Consumer)
            .with_links(links)
            .with_attributes([
                KeyValue::new("gojinn.job.id", job.id.clone()),
                KeyValue::new("gojinn.job.kind", job.kind.as_str()),
                KeyValue::new("gojinn.job.attempt", i64::from(job.attempts)),
                KeyValue::new("gojinn.route", route.to_owned()),
                KeyValue::new("gojinn.module", job.target.clone()),
            ])
            .start_with_context(tracer, &Context::new());
        Some(JobSpan { span })
    }

    /// Ends the span; `fault` marks a failed attempt.
    pub(crate) fn finish(mut self, fault: Option<&str>) {
        if let Some(f) = fault {
            self.span
                .set_attribute(KeyValue::new("gojinn.fault", f.to_owned()));
            self.span.set_status(Status::error(f.to_owned()));
        }
        self.span.end();
    }
}
