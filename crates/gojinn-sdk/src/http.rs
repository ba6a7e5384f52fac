//! Outbound HTTP to the hosts the route grants (`permissions { http host:port }`).
//!
//! ```no_run
//! use gojinn_sdk::http;
//!
//! # fn main() -> Result<(), gojinn_sdk::Error> {
//! let resp = http::Request::get("https://api.example.com/v1/items")
//!     .header("Accept", "application/json")
//!     .send()?;
//! assert_eq!(resp.status, 200);
//! let items: serde_json::Value = resp.json()?;
//! # Ok(()) }
//! ```

use crate::base64;
use crate::sys;
use crate::Error;
use serde_json::{json, Map, Value};

/// An outbound request.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Map<String, Value>,
    body: Vec<u8>,
}

/// The answer of the remote host.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header name (lower-case) → values.
    pub headers: Map<String, Value>,
    /// Body bytes (at most 4 MiB).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`).
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Map::new(),
            body: Vec::new(),
        }
    }

    /// `GET url`.
    pub fn get(url: &str) -> Self {
        Request::new("GET", url)
    }

    /// `POST url`.
    pub fn post(url: &str) -> Self {
        Request::new("POST", url)
    }

    /// Adds a header value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let entry = self
            .headers
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(value.to_owned()));
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and waits for the whole response (within the request's
    /// deadline).
    pub fn send(self) -> Result<Response, Error> {
        let mut spec = json!({"method": self.method, "url": self.url, "headers": self.headers});
        match String::from_utf8(self.body) {
            Ok(text) => spec["body"] = Value::String(text),
            Err(e) => spec["body_base64"] = Value::String(base64::encode(e.as_bytes())),
        }
        let spec = serde_json::to_vec(&spec).unwrap_or_default();
        let bytes = sys::http_request(&spec).map_err(Error::from_code)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("bad response: {e}")))?;
        let body = match (&v["body"], &v["body_base64"]) {
            (Value::String(s), _) => s.clone().into_bytes(),
            (_, Value::String(b)) => {
                base64::decode(b).ok_or_else(|| Error::Invalid("bad response body".to_owned()))?
            }
            _ => Vec::new(),
        };
        Ok(Response {
            status: v["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
            headers: v["headers"].as_object().cloned().unwrap_or_default(),
            body,
        })
    }
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())?
            .get(0)?
            .as_str()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Invalid(format!("body is not JSON: {e}")))
    }
}
