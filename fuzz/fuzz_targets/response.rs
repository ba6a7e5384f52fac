//! The response decoder on arbitrary guest stdout, as the server applies it
//! (`decode_output`: a response object, or plain output as a 200, with a sniffed
//! Content-Type). Whatever it accepts must be safe to put on the wire: a status
//! hyper accepts, header names that are HTTP tokens, and values without CR, LF
//! or NUL (no header injection or response splitting). The server answers 502
//! for everything it rejects.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = gojinn_contract::decode_output(data) else {
        return;
    };
    assert!((100..=599).contains(&response.status));
    http::StatusCode::from_u16(response.status).expect("status accepted by http");
    for (name, value) in &response.headers {
        assert!(
            gojinn_contract::is_valid_header_name(name),
            "accepted header name {name:?}"
        );
        http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .unwrap_or_else(|e| panic!("accepted header name {name:?} is not an HTTP name: {e}"));
        assert!(
            !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "accepted header value {value:?} could split the response"
        );
        assert!(gojinn_contract::is_valid_header_value(value));
    }
});
