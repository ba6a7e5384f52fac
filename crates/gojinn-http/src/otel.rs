//! OpenTelemetry spans of function requests: a server span per request, parented
//! to the incoming W3C `traceparent`, with `instantiate` and `run` child spans.
//!
//! Off unless the binary hands the server a [`Tracer`] (the `tracing` global
//! option). When off, a request pays one `Option` check: no span, context or
//! attribute is built. The exporter and the propagator are set up by the binary
//! through the `opentelemetry` globals; this module only uses the API.

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
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
