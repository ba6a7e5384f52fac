//! The SDK and the server's `gojinn-contract` must agree on the JSON request and
//! response: each side is exercised on one corpus, encoding with one and decoding
//! with the other, in both directions.
//!
//! Why a conformance test rather than one shared definition: the SDK's sources are
//! vendored into every `gojinn new --lang rust` project (a folder with serde and
//! serde_json only, a pinned Cargo.lock, built offline), and the two sides decode
//! differently on purpose: the server strictly, every fault a 502 with a reason
//! (`ContractError`), the guest leniently (absent fields default, so an old guest
//! survives a newer server). Sharing `gojinn-contract` would add a second vendored
//! crate and base64 and thiserror to every guest's lockfile, and would still need both
//! decoders. So each side keeps its own types and this corpus pins them together:
//! the cases state the expected values too, so both sides drifting the same way
//! fails as well.

use gojinn_contract as contract;
use gojinn_sdk as sdk;
use serde_json::json;
use std::collections::BTreeMap;

/// Every byte value: a body no text encoding survives.
fn all_bytes() -> Vec<u8> {
    (0..=255).collect()
}

/// One request as a client sends it, and what the function must see.
struct RequestCase {
    what: &'static str,
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, &'static [u8])>,
    body: Vec<u8>,
    /// The header map the function sees: canonical names, values in arrival order.
    want_headers: Vec<(&'static str, Vec<&'static str>)>,
    /// Whether the body needs `body_base64` (it is not UTF-8).
    binary: bool,
}

fn request_corpus() -> Vec<RequestCase> {
    vec![
        RequestCase {
            what: "empty body, no headers",
            method: "GET",
            uri: "/",
            headers: vec![],
            body: vec![],
            want_headers: vec![],
            binary: false,
        },
        RequestCase {
            what: "repeated headers in three spellings keep arrival order under one name",
            method: "POST",
            uri: "/api/x?y=1&z=%20",
            headers: vec![
                ("x-request-id", b"one"),
                ("content-type", b"application/json"),
                ("X-REQUEST-ID", b"two"),
                ("X-Request-Id", b"three"),
                ("accept", b""),
            ],
            body: br#"{"a":[1,2,{"b":null}]}"#.to_vec(),
            want_headers: vec![
                ("Accept", vec![""]),
                ("Content-Type", vec!["application/json"]),
                ("X-Request-Id", vec!["one", "two", "three"]),
            ],
            binary: false,
        },
        RequestCase {
            what: "canonical names as Go writes them, odd ones included",
            method: "PUT",
            uri: "/c",
            headers: vec![
                ("www-authenticate", b"Basic"),
                ("x_under", b"1"),
                ("-leading", b"2"),
                ("a1-b2", b"3"),
                ("x--double", b"4"),
            ],
            body: b"text".to_vec(),
            want_headers: vec![
                ("-Leading", vec!["2"]),
                ("A1-B2", vec!["3"]),
                ("Www-Authenticate", vec!["Basic"]),
                ("X--Double", vec!["4"]),
                ("X_under", vec!["1"]),
            ],
            binary: false,
        },
        RequestCase {
            what: "unicode in the uri, a header and the body; JSON escapes in the body",
            method: "POST",
            uri: "/caf%C3%A9?q=\u{e9}t\u{e9}",
            headers: vec![("x-name", "Zo\u{eb} \u{2713}".as_bytes())],
            body: "h\u{e9}llo \u{2713} \u{65e5}\u{672c} \u{1f389} \"q\" \\ \n\t\0 \u{fffd}"
                .as_bytes()
                .to_vec(),
            want_headers: vec![("X-Name", vec!["Zo\u{eb} \u{2713}"])],
            binary: false,
        },
        RequestCase {
            what: "a header value that is not UTF-8 arrives lossy",
            method: "GET",
            uri: "/h",
            headers: vec![("x-latin1", b"caf\xe9")],
            body: vec![],
            want_headers: vec![("X-Latin1", vec!["caf\u{fffd}"])],
            binary: false,
        },
        RequestCase {
            what: "a short binary body",
            method: "POST",
            uri: "/bin",
            headers: vec![("content-type", b"application/octet-stream")],
            body: vec![0xff, 0xfe, 0x00, 0x41],
            want_headers: vec![("Content-Type", vec!["application/octet-stream"])],
            binary: true,
        },
        RequestCase {
            what: "every byte value",
            method: "POST",
            uri: "/all",
            headers: vec![],
            body: all_bytes(),
            want_headers: vec![],
            binary: true,
        },
        RequestCase {
            what: "binary, length 5 (one `=` of base64 padding)",
            method: "POST",
            uri: "/bin5",
            headers: vec![],
            body: vec![0xff, 0xfe, 0x00, 0x41, 0x80],
            want_headers: vec![],
            binary: true,
        },
        RequestCase {
            what: "binary, length 6 (no padding): truncated UTF-8 sequences",
            method: "POST",
            uri: "/bin6",
            headers: vec![],
            body: vec![0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28],
            want_headers: vec![],
            binary: true,
        },
        RequestCase {
            what: "a 64 KiB binary body",
            method: "POST",
            uri: "/large",
            headers: vec![],
            body: all_bytes().repeat(256),
            want_headers: vec![],
            binary: true,
        },
    ]
}

/// Server → function (the real direction): `contract::encode_request`, parsed by
/// the SDK as a guest does on stdin.
#[test]
fn every_request_the_server_encodes_reads_the_same_in_the_sdk() {
    for case in request_corpus() {
        let what = case.what;
        let host = contract::Request::new(
            case.method,
            case.uri,
            case.headers.iter().copied(),
            &case.body,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        let wire = contract::encode_request(&host);
        let guest: sdk::Request = serde_json::from_slice(&wire).expect(what);

        assert_eq!(guest.method, case.method, "{what}");
        assert_eq!(guest.uri, case.uri, "{what}");
        assert_eq!(guest.trace_id, host.trace_id, "{what}");
        let want: BTreeMap<String, Vec<String>> = case
            .want_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(guest.headers, want, "{what}");
        assert_eq!(guest.headers, host.headers, "{what}");
        // Every spelling the client used finds the first value it sent.
        for (name, _) in &case.headers {
            let canonical = contract::canonical_header_key(name);
            assert_eq!(
                guest.header(name),
                want[canonical.as_ref()].first().map(String::as_str),
                "{what}: header({name:?})"
            );
        }
        // The exact bytes, binary or not; base64 only when the body is not UTF-8.
        assert_eq!(guest.body_bytes(), case.body, "{what}");
        assert_eq!(guest.body_base64.is_some(), case.binary, "{what}");
        assert_eq!(guest.body_base64, host.body_base64, "{what}");
        assert_eq!(guest.body, host.body, "{what}");
        if !case.binary {
            assert_eq!(guest.body.as_bytes(), case.body, "{what}");
        }
    }
}

/// Function → server for requests (a guest that forwards or records a request): the
/// SDK's encoding decodes into the contract's type unchanged.
#[test]
fn every_request_the_sdk_encodes_reads_the_same_on_the_server() {
    for case in request_corpus() {
        let what = case.what;
        let host = contract::Request::new(
            case.method,
            case.uri,
            case.headers.iter().copied(),
            &case.body,
            "trace".to_owned(),
        );
        let guest: sdk::Request =
            serde_json::from_slice(&contract::encode_request(&host)).expect(what);
        let back: contract::Request =
            serde_json::from_slice(&serde_json::to_vec(&guest).expect(what)).expect(what);
        assert_eq!(back, host, "{what}");
    }
}

/// The header lines a server writes for an SDK response: names as the handler wrote
/// them (a response's names are not canonicalised), each value a line, in the SDK
/// map's order.
fn lines(headers: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| (name.clone(), v.clone())))
        .collect()
}

/// Function → server (the real direction): what the SDK writes on stdout, decoded
/// by the server, gives the status, header lines and body bytes the handler meant.
#[test]
fn every_response_the_sdk_writes_decodes_the_same_on_the_server() {
    let unicode = json!({"message": "h\u{e9}llo \u{2713} \u{1f389}", "n": [1, 2.5, null]});
    let corpus: Vec<(&str, sdk::Response, u16, Vec<u8>)> = vec![
        ("text", sdk::Response::text(200, "hi"), 200, b"hi".to_vec()),
        (
            "json with unicode and a repeated header",
            sdk::Response::json(201, &unicode)
                .with_header("Set-Cookie", "a=1")
                .with_header("Set-Cookie", "b=2"),
            201,
            unicode.to_string().into_bytes(),
        ),
        (
            "every byte value",
            sdk::Response::binary(200, "application/octet-stream", &all_bytes()),
            200,
            all_bytes(),
        ),
        (
            "an empty binary body",
            sdk::Response::binary(200, "image/png", &[]),
            200,
            vec![],
        ),
        ("no body, no headers", sdk::Response::new(204), 204, vec![]),
        ("the default", sdk::Response::default(), 200, vec![]),
        (
            "lowest status, lower-case header name kept as written, a tab in a value",
            sdk::Response::new(100).with_header("x-lower", "a\tb"),
            100,
            vec![],
        ),
        (
            "highest status, an error body",
            sdk::Response::error(599, "bad \"x\"\n"),
            599,
            br#"{"error":"bad \"x\"\n"}"#.to_vec(),
        ),
        (
            "status 0 means 200",
            sdk::Response::text(0, "zero"),
            200,
            b"zero".to_vec(),
        ),
        (
            "body_base64 wins over body: only it is written",
            sdk::Response {
                body: "ignored".into(),
                body_base64: Some("AP8=".into()),
                ..sdk::Response::new(200)
            },
            200,
            vec![0x00, 0xff],
        ),
    ];
    for (what, guest, status, body) in corpus {
        let host = contract::decode_response(&guest.to_json()).expect(what);
        assert_eq!(host.status, status, "{what}");
        assert_eq!(host.headers, lines(&guest.headers), "{what}");
        assert_eq!(host.body, body, "{what}");
    }
}

/// What an SDK handler can build but the server refuses (a 502 for the client): the
/// SDK does not check these, so the server's check is the one that counts.
#[test]
fn responses_the_sdk_can_build_and_the_server_refuses() {
    type IsExpected = fn(&contract::ContractError) -> bool;
    let refused: Vec<(&str, sdk::Response, IsExpected)> = vec![
        ("status 99", sdk::Response::new(99), |e| {
            *e == contract::ContractError::Status(99)
        }),
        ("status 600", sdk::Response::new(600), |e| {
            *e == contract::ContractError::Status(600)
        }),
        (
            "a header name that is not a token",
            sdk::Response::new(200).with_header("Bad Name", "x"),
            |e| *e == contract::ContractError::HeaderName("Bad Name".into()),
        ),
        (
            "CR LF in a header value",
            sdk::Response::new(200).with_header("X-A", "a\r\nSet-Cookie: x"),
            |e| matches!(e, contract::ContractError::HeaderValue { name, .. } if name == "X-A"),
        ),
        (
            "body_base64 that is not base64",
            sdk::Response {
                body_base64: Some("!!".into()),
                ..sdk::Response::new(200)
            },
            |e| matches!(e, contract::ContractError::Body(_)),
        ),
    ];
    for (what, guest, expected) in refused {
        let err = contract::decode_response(&guest.to_json()).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
    }
}

/// Server → function direction for responses: the server has no response encoder,
/// so the corpus is the wire text the contract allows (docs/contract.md), decoded by
/// both sides; they must agree on status, header lines and body bytes.
#[test]
fn every_response_the_contract_allows_decodes_the_same_on_both_sides() {
    /// Wire text, then the status, header lines and body bytes it stands for.
    type Case<'a> = (&'a str, u16, &'a [(&'a str, &'a str)], &'a [u8]);
    let corpus: &[Case<'_>] = &[
        (
            r#"{"status":201,"headers":{"X-A":["1","2"],"X-B":"3"},"body":"hi"}"#,
            201,
            &[("X-A", "1"), ("X-A", "2"), ("X-B", "3")],
            b"hi",
        ),
        (r#"{"body":"x"}"#, 200, &[], b"x"),
        ("  {\"status\":0}\n", 200, &[], b""),
        (r#"{"headers":{}}"#, 200, &[], b""),
        (r#"{"headers":{"X-Empty":[]}}"#, 200, &[], b""),
        (r#"{"body_base64":"AP8="}"#, 200, &[], &[0x00, 0xff]),
        (r#"{"body_base64":""}"#, 200, &[], b""),
        (
            r#"{"body":"\u00e9\ud83c\udf89\n","headers":{"X-U":"\u2713"}}"#,
            200,
            &[("X-U", "\u{2713}")],
            "\u{e9}\u{1f389}\n".as_bytes(),
        ),
        (
            r#"{"status":404,"extra":{"a":[1]},"body":"b","more":null}"#,
            404,
            &[],
            b"b",
        ),
        (
            r#"{"status":null,"headers":null,"body":null,"body_base64":null}"#,
            200,
            &[],
            b"",
        ),
    ];
    for &(wire, status, headers, body) in corpus {
        let host = contract::decode_response(wire.as_bytes()).expect(wire);
        let guest: sdk::Response = serde_json::from_str(wire).expect(wire);
        let want: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(host.status, status, "server: {wire}");
        assert_eq!(guest.status, status, "sdk: {wire}");
        assert_eq!(host.headers, want, "server: {wire}");
        assert_eq!(lines(&guest.headers), want, "sdk: {wire}");
        assert_eq!(host.body, body, "server: {wire}");
        // The SDK keeps body_base64 encoded; the bytes it stands for are the body.
        let guest_body = match &guest.body_base64 {
            Some(b64) => {
                let as_request = sdk::Request {
                    body_base64: Some(b64.clone()),
                    ..sdk::Request::default()
                };
                as_request.body_bytes()
            }
            None => guest.body.clone().into_bytes(),
        };
        assert_eq!(guest_body, body, "sdk: {wire}");
    }
}
