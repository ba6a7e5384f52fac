//! The Gojinn JSON contract between the server and a function.
//!
//! A function reads one [`Request`] object on stdin and writes one response object on
//! stdout (or plain output, the body of a 200: [`decode_output`]). This crate owns
//! both shapes, their encoding and decoding (keys matched as Go's `encoding/json`
//! does), the Content-Type Go's `net/http` would have sniffed for an unlabelled
//! body ([`detect_content_type`]), and the
//! header-name canonicalisation Gojinn inherited from Go (`content-type` →
//! `Content-Type`). It knows nothing of HTTP libraries or wasm engines: the server
//! hands it bytes and gets bytes or a [`ContractError`] back.
//!
//! Binary bodies: a request body that is not valid UTF-8 is passed lossily in `body`
//! (invalid sequences become U+FFFD, as Gojinn's Go host did) *and* exactly in
//! `body_base64`. A response may set `body_base64` instead of `body` to return bytes.

mod header;
mod request;
mod response;
mod sniff;

pub use header::{canonical_header_key, is_valid_header_name, is_valid_header_value};
pub use request::{encode_request, Request};
pub use response::{decode_output, decode_response, ContractError, Response};
pub use sniff::{content_type_for, detect_content_type, SNIFF_LEN};
