//! Signed modules, in Gojinn's format: `module bytes ‖ Ed25519 signature (64
//! bytes) ‖ "GJSIG"`, the signature taken over the unsigned module bytes.
//!
//! Keys are hex text: a public key is 32 bytes (64 hex digits); a private key is
//! written as Go's `ed25519.PrivateKey`, seed then public key (64 bytes, 128 hex
//! digits), and a bare 32-byte seed is read too.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// The last bytes of a signed module.
pub const MAGIC: &[u8; 5] = b"GJSIG";
/// Length of the Ed25519 signature before the magic.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes a signature adds to a module.
pub const FOOTER_LEN: usize = SIGNATURE_LEN + MAGIC.len();

/// How a function's module signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// `true`: refuse a module that is not signed by a trusted key; `false`
    /// (audit): log it and run it.
    pub strict: bool,
    /// Public keys whose signature is accepted.
    pub trusted_keys: Vec<VerifyingKey>,
}

/// Why a module's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `GJSIG` footer.
    #[error("the module is not signed")]
    Unsigned,
    /// A footer whose signature no trusted key verifies (tampered module,
    /// another key, or a corrupt footer).
    #[error("the signature does not verify with any trusted key (module changed after signing, or signed by another key)")]
    Mismatch,
}

/// Splits a signed module into its unsigned bytes and signature; `None` when
/// `bytes` has no footer.
pub fn split(bytes: &[u8]) -> Option<(&[u8], [u8; SIGNATURE_LEN])> {
    let rest = bytes.strip_suffix(MAGIC.as_slice())?;
    let cut = rest.len().checked_sub(SIGNATURE_LEN)?;
    let (module, sig) = rest.split_at(cut);
    Some((module, sig.try_into().ok()?))
}

/// The module without its signature footer, if it has one.
pub fn unsigned(bytes: &[u8]) -> &[u8] {
    split(bytes).map_or(bytes, |(module, _)| module)
}

/// Checks `bytes` (a module as read from disk) against `keys`, returning the
/// unsigned module bytes on success.
pub fn verify<'a>(bytes: &'a [u8], keys: &[VerifyingKey]) -> Result<&'a [u8], SignatureError> {
    let (module, sig) = split(bytes).ok_or(SignatureError::Unsigned)?;
    let sig = Signature::from_bytes(&sig);
    if keys.iter().any(|k| k.verify_strict(module, &sig).is_ok()) {
        Ok(module)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `module` (signed or not) signed with `key`: any old footer is replaced.
pub fn sign(module: &[u8], key: &SigningKey) -> Vec<u8> {
    let module = unsigned(module);
    let sig = key.sign(module);
    let mut out = Vec::with_capacity(module.len() + FOOTER_LEN);
    out.extend_from_slice(module);
    out.extend_from_slice(&sig.to_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// A public key from hex text (surrounding whitespace ignored).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "a public key is 32 bytes (64 hex digits), this is {} bytes",
            bytes.len()
        )
    })?;
    VerifyingKey::from_bytes(&array).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// A private key from hex text: Go's 64-byte form (seed ‖ public key, whose
/// public half must match) or a 32-byte seed.
pub fn parse_private_key(text: &str) -> Result<SigningKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    match bytes.len() {
        32 => {
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| "bad seed")?;
            Ok(SigningKey::from_bytes(&seed))
        }
        64 => {
            let pair: [u8; 64] = bytes.as_slice().try_into().map_err(|_| "bad key")?;
            SigningKey::from_keypair_bytes(&pair)
                .map_err(|_| "the public half does not belong to the seed".to_owned())
        }
        n => Err(format!(
            "a private key is 64 bytes (128 hex digits) or a 32-byte seed, this is {n} bytes"
        )),
    }
}

/// The hex text of a private key in Go's 64-byte form.
pub fn private_key_hex(key: &SigningKey) -> String {
    hex::encode(key.to_keypair_bytes())
}

/// The hex text of a public key.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn split_never_panics_on_short_or_odd_input() {
        for n in 0..=FOOTER_LEN + 2 {
            let zeros = vec![0u8; n];
            assert_eq!(split(&zeros), None);
            let mut tail = vec![7u8; n];
            let keep = n.min(MAGIC.len());
            tail[n - keep..].copy_from_slice(&MAGIC[MAGIC.len() - keep..]);
            let got = split(&tail);
            // Only a whole signature plus the magic is a footer.
            assert_eq!(got.is_some(), n >= FOOTER_LEN, "length {n}");
        }
        assert_eq!(split(b"GJSIG"), None);
        assert_eq!(split(b"GJSI"), None);
        assert_eq!(split(b""), None);
        // An empty module with a footer splits into nothing and the signature.
        let only_footer = [[1u8; SIGNATURE_LEN].as_slice(), MAGIC].concat();
        assert_eq!(split(&only_footer), Some((&[][..], [1u8; SIGNATURE_LEN])));
    }

    #[test]
    fn sign_then_verify_round_trips_and_resigning_replaces() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        let a = key(1);
        let signed = sign(&module, &a);
        assert_eq!(signed.len(), module.len() + FOOTER_LEN);
        assert_eq!(verify(&signed, &[a.verifying_key()]), Ok(module.as_slice()));
        let b = key(2);
        let resigned = sign(&signed, &b);
        assert_eq!(resigned.len(), signed.len());
        assert_eq!(
            verify(&resigned, &[b.verifying_key()]),
            Ok(module.as_slice())
        );
        assert_eq!(
            verify(&resigned, &[a.verifying_key()]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&resigned, &[a.verifying_key(), b.verifying_key()]),
            Ok(module.as_slice())
        );
    }

    #[test]
    fn tampered_unsigned_and_garbage_footers_are_refused() {
        let a = key(3);
        let keys = [a.verifying_key()];
        let mut signed = sign(b"\0asm\x01\0\0\0", &a);
        signed[5] ^= 1;
        assert_eq!(verify(&signed, &keys), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(b"\0asm\x01\0\0\0", &keys),
            Err(SignatureError::Unsigned)
        );
        let garbage = [[0xffu8; SIGNATURE_LEN].as_slice(), MAGIC].concat();
        assert_eq!(verify(&garbage, &keys), Err(SignatureError::Mismatch));
        assert_eq!(verify(&[], &keys), Err(SignatureError::Unsigned));
    }

    #[test]
    fn key_text_forms() {
        let k = key(4);
        let priv_hex = private_key_hex(&k);
        assert_eq!(priv_hex.len(), 128);
        assert_eq!(parse_private_key(&priv_hex).unwrap(), k);
        assert_eq!(parse_private_key(&hex::encode([4u8; 32])).unwrap(), k);
        let pub_hex = public_key_hex(&k.verifying_key());
        assert_eq!(
            parse_public_key(&format!("{pub_hex}\n")).unwrap(),
            k.verifying_key()
        );
        assert!(parse_public_key("zz").unwrap_err().contains("not hex"));
        assert!(parse_public_key("abcd").unwrap_err().contains("32 bytes"));
        assert!(parse_private_key("abcd").unwrap_err().contains("64 bytes"));
        // Seed of one key, public half of another.
        let mut mixed = k.to_keypair_bytes();
        mixed[32..].copy_from_slice(key(5).verifying_key().as_bytes());
        assert!(parse_private_key(&hex::encode(mixed)).is_err());
    }
}
