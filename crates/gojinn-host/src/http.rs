//! Outbound HTTP behind `host_http_request` and Gojinn's `host_http_get`: one shared hyper client (HTTP/1.1,
//! rustls with the Mozilla roots), only to the `host:port` pairs the route grants,
//! with a response size cap. The request's deadline bounds the whole exchange (the
//! sandbox's timeout drops this future, and with it the connection).

use crate::{Capabilities, HostError};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// Largest response body a guest can receive: 4 MiB.
pub const MAX_HTTP_RESPONSE_BYTES: usize = 4 << 20;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The process's client, built on first use (its pool is shared by every route;
/// the grant check comes before any connection).
fn client() -> Result<&'static HttpsClient, HostError> {
    static CLIENT: OnceLock<Result<HttpsClient, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(Client::builder(TokioExecutor::new()).build(https))
        })
        .as_ref()
        .map_err(|e| HostError::Unavailable(e.clone()))
}

fn invalid(msg: impl Into<String>) -> HostError {
    HostError::Invalid(msg.into())
}

/// The URI of `url` and its `host` and `port`, if the route grants them.
fn granted_target(caps: &Capabilities, url: &str) -> Result<(Uri, String, u16), HostError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| invalid(format!("invalid url `{url}`: {e}")))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => {
            return Err(invalid(format!(
                "url `{url}` must start with http:// or https://"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| invalid(format!("url `{url}` has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(default_port);
    if !caps.http_allows(&host, port) {
        return Err(HostError::Denied(format!(
            "`{host}:{port}` is not in this route's http grants"
        )));
    }
    Ok((uri, host, port))
}

/// Gojinn's `host_http_get`: a GET of `url` (granted like any request), and the
/// first `max` bytes of the response body whatever its status, as Gojinn's
/// `http.Get` did. The rest of the body is not read.
pub(crate) async fn get(caps: &Capabilities, url: &[u8], max: usize) -> Result<Vec<u8>, HostError> {
    let url = std::str::from_utf8(url).map_err(|_| invalid("url is not UTF-8"))?;
    let (uri, host, port) = granted_target(caps, url)?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| invalid(e.to_string()))?;
    let resp = client()?
        .request(req)
        .await
        .map_err(|e| HostError::Unavailable(format!("`{host}:{port}`: {e}")))?;
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while out.len() < max {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(HostError::Unavailable(format!("`{host}:{port}`: {e}"))),
        }
    }
    out.truncate(max);
    Ok(out)
}

/// Parses the guest's request object, checks the grant and sends it. The answer is
/// `{"status": n, "headers": {name: [values]}, "body": "…"}`, with `body_base64`
/// instead of `body` when the body is not UTF-8.
pub(crate) async fn request(caps: &Capabilities, spec: &[u8]) -> Result<Vec<u8>, HostError> {
    let spec: Value =
        serde_json::from_slice(spec).map_err(|e| invalid(format!("request is not JSON: {e}")))?;
    let url = spec["url"]
        .as_str()
        .ok_or_else(|| invalid("request needs a string `url`"))?;
    let (uri, host, port) = granted_target(caps, url)?;

    let method = match spec["method"].as_str() {
        None => Method::GET,
        Some(m) => Method::from_bytes(m.as_bytes())
            .map_err(|_| invalid(format!("invalid method `{m}`")))?,
    };
    let body = match (&spec["body"], &spec["body_base64"]) {
        (Value::String(s), _) => Bytes::from(s.clone()),
        (_, Value::String(b)) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| invalid(format!("body_base64 is not base64: {e}")))?,
        ),
        _ => Bytes::new(),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body))
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(headers) = spec["headers"].as_object() {
        for (name, values) in headers {
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("invalid header name `{name}`")))?;
            let list: Vec<&Value> = match values {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for v in list {
                let text = v
                    .as_str()
                    .ok_or_else(|| invalid(format!("header `{name}` values must be strings")))?;
                let hv = HeaderValue::from_str(text)
                    .map_err(|_| invalid(format!("invalid value for header `{name}`")))?;
                req.headers_mut().append(hname.clone(), hv);
            }
        }
    }

    let resp = client()?
        .request(req)
        .await
        .map_err(|e| HostError::Unavailable(format!("`{host}:{port}`: {e}")))?;
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in resp.headers() {
        let entry = headers
            .entry(name.as_str())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    let body = match Limited::new(resp.into_body(), MAX_HTTP_RESPONSE_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(HostError::TooLarge {
                what: "response body",
                size: MAX_HTTP_RESPONSE_BYTES + 1,
                limit: MAX_HTTP_RESPONSE_BYTES,
            })
        }
        Err(e) => return Err(HostError::Unavailable(format!("`{host}:{port}`: {e}"))),
    };
    let mut out = json!({"status": status, "headers": headers});
    match std::str::from_utf8(&body) {
        Ok(text) => out["body"] = Value::String(text.to_owned()),
        Err(_) => {
            out["body_base64"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(&body))
        }
    }
    serde_json::to_vec(&out).map_err(|e| HostError::Backend(e.to_string()))
}
