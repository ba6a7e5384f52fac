//! OpenTelemetry trace export, on when the config has the `tracing` global
//! option: an OTLP exporter (HTTP/protobuf or gRPC) behind a batch processor on
//! the tokio runtime, the W3C Trace Context propagator, and the sampler. The
//! standard `OTEL_EXPORTER_OTLP_*` variables fill in what the option leaves out
//! (endpoint, headers, timeout, compression); `OTEL_SERVICE_NAME` names the
//! service (default `gojinn`).

use anyhow::Context as _;
use gojinn_config::{OtlpProtocol, TraceSampler, TracingConfig};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::time::Duration;

/// Longest wait for queued spans to be exported at shutdown.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Sets up export through the global tracer provider and propagator; request
/// spans are on once the server has a [`gojinn_http::Tracer`] of it. Call inside
/// the tokio runtime.
pub(crate) fn start(config: &TracingConfig) -> anyhow::Result<SdkTracerProvider> {
    let protocol = config.protocol.unwrap_or_else(protocol_from_env);
    let exporter = match protocol {
        OtlpProtocol::HttpProtobuf => {
            let mut b = SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary);
            if let Some(url) = &config.endpoint {
                b = b.with_endpoint(http_traces_url(url));
            }
            b.build()
        }
        OtlpProtocol::Grpc => {
            let mut b = SpanExporter::builder().with_tonic();
            if let Some(url) = &config.endpoint {
                b = b.with_endpoint(url.clone());
            }
            b.build()
        }
    }
    .context("cannot set up the OTLP trace exporter")?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("gojinn");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler(config.sampler))
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing::info!(
        target: "gojinn::otel",
        protocol = match protocol {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::Grpc => "grpc",
        },
        endpoint = config.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"),
        "exporting traces"
    );
    Ok(provider)
}

/// Exports what is still queued, waiting at most [`SHUTDOWN_FLUSH`].
pub(crate) async fn shutdown(provider: SdkTracerProvider) {
    // The flush blocks until the batch task (on this runtime) answers, so it
    // must not block a runtime worker.
    let done = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_FLUSH));
    if let Ok(Err(e)) = done.await {
        tracing::warn!(target: "gojinn::otel", error = %e, "traces not all exported at shutdown");
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`;
/// HTTP/protobuf when neither says `grpc`.
fn protocol_from_env() -> OtlpProtocol {
    let named = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match named.as_deref() {
        Ok("grpc") => OtlpProtocol::Grpc,
        _ => OtlpProtocol::HttpProtobuf,
    }
}

/// The traces URL for a configured HTTP endpoint: a bare `http://host:4318`
/// gets the standard `/v1/traces` path, as `OTEL_EXPORTER_OTLP_ENDPOINT` does;
/// a URL with a path is used as written.
fn http_traces_url(endpoint: &str) -> String {
    let after_scheme = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    match after_scheme.find('/') {
        Some(i) if after_scheme.len() > i + 1 => endpoint.to_owned(),
        _ => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
    }
}

fn sampler(s: TraceSampler) -> Sampler {
    match s {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::ParentbasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        TraceSampler::Traceidratio(r) => Sampler::TraceIdRatioBased(r),
        TraceSampler::ParentbasedTraceidratio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_http_endpoints_get_the_traces_path() {
        assert_eq!(http_traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(http_traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            http_traces_url("https://c/otlp/v1/traces"),
            "https://c/otlp/v1/traces"
        );
    }
}
