//! Go-style header canonicalisation on arbitrary text: never a panic, the same
//! length and letters (only ASCII case changes), idempotent, and valid names stay
//! valid.
#![no_main]

use gojinn_contract::{canonical_header_key, is_valid_header_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let canonical = canonical_header_key(name);
    assert!(
        canonical.eq_ignore_ascii_case(name),
        "{name:?} became {canonical:?}"
    );
    assert_eq!(
        canonical_header_key(&canonical),
        canonical,
        "not idempotent"
    );
    assert_eq!(
        is_valid_header_name(name),
        is_valid_header_name(&canonical),
        "validity changed for {name:?}"
    );
});
