//! The signed-module footer and key text on arbitrary bytes: never a panic; a
//! footer found is exactly the last 69 bytes; nothing forged verifies; signing any input and verifying
//! gives back its unsigned bytes; a footer of other bytes does not verify; key
//! text is accepted only in the documented forms and round-trips.
#![no_main]

use gojinn_signature::{
    parse_private_key, parse_public_key, private_key_hex, public_key_hex, sign, split, unsigned,
    verify, SignatureError, FOOTER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let trusted = [key.verifying_key()];

    match split(data) {
        Some((module, _)) => assert_eq!(module.len() + FOOTER_LEN, data.len()),
        None => assert_eq!(unsigned(data), data),
    }
    // Arbitrary bytes carry no signature of the key (the fuzzer cannot forge
    // one): an error, never a panic.
    assert!(verify(data, &trusted).is_err());

    let signed = sign(data, &key);
    assert_eq!(verify(&signed, &trusted), Ok(unsigned(data)));
    assert_eq!(sign(&signed, &key), signed, "re-signing must replace the footer");
    // Any one flipped byte of the signed module breaks the signature.
    if let Some(first) = data.first() {
        let mut tampered = signed.clone();
        let at = usize::from(*first) % tampered.len();
        tampered[at] ^= 1;
        assert_ne!(verify(&tampered, &trusted), Ok(unsigned(data)));
        if at < signed.len() - 5 {
            // The magic still stands, so this is a bad signature, not a missing one.
            assert_eq!(verify(&tampered, &trusted), Err(SignatureError::Mismatch));
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(k) = parse_public_key(text) {
            assert_eq!(parse_public_key(&public_key_hex(&k)), Ok(k));
        }
        if let Ok(k) = parse_private_key(text) {
            let again = parse_private_key(&private_key_hex(&k)).expect("own output parses");
            assert_eq!(again.to_bytes(), k.to_bytes());
        }
    }
});
