//! OpenTelemetry traces against real OTLP receivers (HTTP/protobuf over HTTP/1.1,
//! and gRPC over HTTP/2): small servers in this test that decode each export
//! with the `opentelemetry-proto` types, as a collector would.

use crate::harness::{guest_route, Server};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Spans received so far, and the request paths they came on.
#[derive(Default)]
struct Received {
    spans: Mutex<(Vec<Span>, Vec<String>)>,
    changed: Condvar,
}

/// An OTLP/HTTP receiver on `127.0.0.1:0`; its threads end with the test process.
struct Receiver {
    port: u16,
    received: Arc<Received>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Received::default());
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let sink = sink.clone();
                std::thread::spawn(move || serve_exports(stream, &sink));
            }
        });
        Receiver { port, received }
    }

    /// Waits until `pred` holds for the spans received, or 30 s pass.
    fn wait_for(&self, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = self.received.spans.lock().expect("lock");
        loop {
            if pred(&got.0) {
                return got.0.clone();
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("spans never arrived; got {:#?}", got.0));
            got = self
                .received
                .changed
                .wait_timeout(got, left)
                .expect("lock")
                .0;
        }
    }

    fn paths(&self) -> Vec<String> {
        self.received.spans.lock().expect("lock").1.clone()
    }
}

/// Answers exports on one keep-alive connection until the client closes it.
fn serve_exports(stream: TcpStream, sink: &Received) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().expect("content-length");
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("export body");
        let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        {
            let mut got = sink.spans.lock().expect("lock");
            for rs in export.resource_spans {
                for ss in rs.scope_spans {
                    got.0.extend(ss.spans);
                }
            }
            got.1.push(path);
        }
        sink.changed.notify_all();
        // An empty ExportTraceServiceResponse is zero bytes of protobuf.
        let _ = out.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        );
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const TRACE_OK: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_OK: &str = "00f067aa0ba902b7";
const TRACE_EXIT: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_EXIT: &str = "b7ad6b7169203331";

#[test]
fn server_span_is_parented_to_the_incoming_traceparent_with_sandbox_children() {
    let receiver = Receiver::start();
    let mut routes = guest_route("/ok", "echo", "");
    routes.push_str(&guest_route("/exit", "exit", ""));
    let globals = format!(
        "    admin off\n    tracing {{\n        endpoint http://127.0.0.1:{}\n    }}",
        receiver.port
    );
    let s = Server::with_globals(
        "traces",
        &globals,
        &routes,
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    );
    let ok = s.request(
        "GET",
        "/ok",
        &[("traceparent", &format!("00-{TRACE_OK}-{PARENT_OK}-01"))],
        b"",
    );
    assert_eq!(ok.status, 200);
    // The guest still sees the incoming traceparent as its trace id.
    assert_eq!(
        ok.json()["trace_id"],
        format!("00-{TRACE_OK}-{PARENT_OK}-01")
    );
    let exit = s.request(
        "GET",
        "/exit",
        &[("traceparent", &format!("00-{TRACE_EXIT}-{PARENT_EXIT}-01"))],
        b"",
    );
    assert_eq!(exit.status, 502);
    // A caller that asked not to be sampled is not traced.
    let unsampled = s.request(
        "GET",
        "/ok",
        &[(
            "traceparent",
            "00-11111111111111111111111111111111-2222222222222222-00",
        )],
        b"",
    );
    assert_eq!(unsampled.status, 200);

    // Without a traceparent, the function's fresh trace id is the server span.
    let root = s.get("/ok");
    let root_tp = root.json()["trace_id"]
        .as_str()
        .expect("trace_id")
        .to_owned();
    let parts: Vec<&str> = root_tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{root_tp}");
    let (root_trace, root_span) = (parts[1].to_owned(), parts[2].to_owned());

    let spans = receiver.wait_for(|spans| spans.len() >= 9);
    let root_server = spans
        .iter()
        .find(|sp| hex(&sp.trace_id) == root_trace && sp.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span for {root_tp}"));
    assert_eq!(hex(&root_server.span_id), root_span);
    assert!(
        root_server.parent_span_id.is_empty(),
        "a root request has no parent"
    );
    assert!(
        receiver.paths().iter().all(|p| p == "/v1/traces"),
        "{:?}",
        receiver.paths()
    );
    assert!(
        spans
            .iter()
            .all(|sp| hex(&sp.trace_id) != "11111111111111111111111111111111"),
        "an unsampled request was exported"
    );

    for (trace, parent, route, status) in [
        (TRACE_OK, PARENT_OK, "/ok", 200),
        (TRACE_EXIT, PARENT_EXIT, "/exit", 502),
    ] {
        let in_trace: Vec<&Span> = spans
            .iter()
            .filter(|sp| hex(&sp.trace_id) == trace)
            .collect();
        assert_eq!(in_trace.len(), 3, "{route}: {in_trace:#?}");
        let server = in_trace
            .iter()
            .find(|sp| sp.kind == SpanKind::Server as i32)
            .unwrap_or_else(|| panic!("{route}: no server span"));
        assert_eq!(hex(&server.parent_span_id), parent, "{route}");
        assert_eq!(server.name, format!("GET {route}"));
        assert_eq!(str_attr(server, "http.request.method"), Some("GET"));
        assert_eq!(str_attr(server, "http.route"), Some(route));
        assert_eq!(str_attr(server, "gojinn.route"), Some(route));
        assert_eq!(
            str_attr(server, "gojinn.module"),
            Some("gojinn-test-guest.wasm")
        );
        assert_eq!(
            attr(server, "http.response.status_code"),
            Some(&Value::IntValue(status))
        );
        for name in ["instantiate", "run"] {
            let child = in_trace
                .iter()
                .find(|sp| sp.name == name)
                .unwrap_or_else(|| panic!("{route}: no {name} span"));
            assert_eq!(child.parent_span_id, server.span_id, "{route} {name}");
            assert!(child.start_time_unix_nano <= child.end_time_unix_nano);
            assert!(child.start_time_unix_nano >= server.start_time_unix_nano);
            assert!(child.end_time_unix_nano <= server.end_time_unix_nano);
            assert_eq!(str_attr(child, "gojinn.route"), Some(route));
        }
        let code = server.status.as_ref().map_or(0, |st| st.code);
        if status == 502 {
            assert_eq!(str_attr(server, "gojinn.fault"), Some("exit"));
            assert_eq!(code, StatusCode::Error as i32);
        } else {
            assert_eq!(str_attr(server, "gojinn.fault"), None);
            assert_ne!(code, StatusCode::Error as i32);
        }
    }
}

/// The body of a gRPC answer: one empty message, then `grpc-status: 0`.
struct GrpcOk {
    sent: u8,
}

impl hyper::body::Body for GrpcOk {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.sent += 1;
        std::task::Poll::Ready(match self.sent {
            // Uncompressed, zero-length ExportTraceServiceResponse.
            1 => Some(Ok(hyper::body::Frame::data(bytes::Bytes::from_static(&[
                0, 0, 0, 0, 0,
            ])))),
            2 => {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                Some(Ok(hyper::body::Frame::trailers(trailers)))
            }
            _ => None,
        })
    }
}

/// An OTLP/gRPC receiver (HTTP/2 without TLS, as a collector on :4317 serves).
fn start_grpc_receiver() -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Received::default());
    let sink = received.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let sink = sink.clone();
                            async move {
                                use http_body_util::BodyExt as _;
                                let path = req.uri().path().to_owned();
                                let body =
                                    req.into_body().collect().await.expect("body").to_bytes();
                                let mut rest = &body[..];
                                let mut spans = Vec::new();
                                while rest.len() >= 5 {
                                    assert_eq!(rest[0], 0, "compressed gRPC message");
                                    let len =
                                        u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]])
                                            as usize;
                                    let export =
                                        ExportTraceServiceRequest::decode(&rest[5..5 + len])
                                            .expect("OTLP protobuf");
                                    for rs in export.resource_spans {
                                        for ss in rs.scope_spans {
                                            spans.extend(ss.spans);
                                        }
                                    }
                                    rest = &rest[5 + len..];
                                }
                                {
                                    let mut got = sink.spans.lock().expect("lock");
                                    got.0.extend(spans);
                                    got.1.push(path);
                                }
                                sink.changed.notify_all();
                                let mut resp = http::Response::new(GrpcOk { sent: 0 });
                                resp.headers_mut().insert(
                                    "content-type",
                                    http::HeaderValue::from_static("application/grpc"),
                                );
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
    });
    Receiver { port, received }
}

#[test]
fn grpc_export_reaches_a_grpc_receiver() {
    let receiver = start_grpc_receiver();
    let globals = format!(
        "    admin off\n    tracing {{\n        endpoint http://127.0.0.1:{}\n        protocol grpc\n    }}",
        receiver.port
    );
    let s = Server::with_globals(
        "traces-grpc",
        &globals,
        &guest_route("/ok", "echo", ""),
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    );
    let ok = s.request(
        "GET",
        "/ok",
        &[("traceparent", &format!("00-{TRACE_OK}-{PARENT_OK}-01"))],
        b"",
    );
    assert_eq!(ok.status, 200);
    let spans = receiver.wait_for(|spans| spans.len() >= 3);
    assert!(
        receiver
            .paths()
            .iter()
            .all(|p| p == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
        "{:?}",
        receiver.paths()
    );
    let server = spans
        .iter()
        .find(|sp| sp.kind == SpanKind::Server as i32)
        .expect("server span");
    assert_eq!(hex(&server.trace_id), TRACE_OK);
    assert_eq!(hex(&server.parent_span_id), PARENT_OK);
    assert!(spans
        .iter()
        .filter(|sp| sp.name == "instantiate" || sp.name == "run")
        .all(|sp| sp.parent_span_id == server.span_id));
}

#[test]
fn a_job_span_links_to_the_request_span_that_queued_it() {
    let receiver = Receiver::start();
    let globals = format!(
        "    admin off\n    tracing {{\n        endpoint http://127.0.0.1:{}\n    }}",
        receiver.port
    );
    let s = Server::with_globals(
        "traces-job",
        &globals,
        &guest_route("/async", "echo", ""),
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    );
    let queued = s.request(
        "POST",
        "/async",
        &[
            ("X-Gojinn-Async", "true"),
            ("traceparent", &format!("00-{TRACE_OK}-{PARENT_OK}-01")),
        ],
        b"{}",
    );
    assert_eq!(queued.status, 202, "{}", queued.text());
    let job_id = queued.header("x-gojinn-job-id").expect("job id").to_owned();
    let spans = receiver.wait_for(|spans| {
        spans
            .iter()
            .any(|sp| str_attr(sp, "gojinn.job.id") == Some(job_id.as_str()))
    });
    let server = spans
        .iter()
        .find(|sp| hex(&sp.trace_id) == TRACE_OK && sp.kind == SpanKind::Server as i32)
        .expect("the request's server span");
    let job = spans
        .iter()
        .find(|sp| str_attr(sp, "gojinn.job.id") == Some(job_id.as_str()))
        .expect("the job's span");
    assert_eq!(job.kind, SpanKind::Consumer as i32);
    assert_eq!(str_attr(job, "gojinn.job.kind"), Some("async"));
    assert_ne!(hex(&job.trace_id), TRACE_OK, "a trace of its own");
    assert_eq!(job.links.len(), 1, "{job:#?}");
    assert_eq!(hex(&job.links[0].trace_id), TRACE_OK);
    assert_eq!(
        hex(&job.links[0].span_id),
        hex(&server.span_id),
        "linked to the request's span"
    );
}
