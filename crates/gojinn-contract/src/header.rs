//! Header names and values: Go's canonical MIME form and RFC 9110 validity.

use std::borrow::Cow;

/// Whether `b` may appear in an HTTP token (RFC 9110 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `name` is a valid HTTP field name (a non-empty token).
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

/// Whether `value` is a valid HTTP field value: no control characters other than
/// horizontal tab (so no CR, LF or NUL that could split a header line).
pub fn is_valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Canonical MIME form of a header name, as Go's `textproto.CanonicalMIMEHeaderKey`
/// writes it: the first letter and every letter after a `-` upper-case, the rest
/// lower-case (`x-request-id` → `X-Request-Id`). Like Go, a name holding a byte that
/// is not a token character is returned unchanged.
pub fn canonical_header_key(name: &str) -> Cow<'_, str> {
    if !is_valid_header_name(name) {
        return Cow::Borrowed(name);
    }
    let mut upper = true;
    let needs_change = name.bytes().any(|b| {
        let wrong = if upper {
            b.is_ascii_lowercase()
        } else {
            b.is_ascii_uppercase()
        };
        upper = b == b'-';
        wrong
    });
    if !needs_change {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_matches_go() {
        for (input, want) in [
            ("content-type", "Content-Type"),
            ("CONTENT-TYPE", "Content-Type"),
            ("x-request-id", "X-Request-Id"),
            ("Accept", "Accept"),
            ("www-authenticate", "Www-Authenticate"),
            ("x--double", "X--Double"),
            ("-leading", "-Leading"),
            ("trailing-", "Trailing-"),
            ("a1-b2", "A1-B2"),
            ("x_under", "X_under"),
            // Not a token: returned unchanged, as Go does.
            ("bad header", "bad header"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("", ""),
        ] {
            assert_eq!(canonical_header_key(input), want, "input {input:?}");
        }
    }

    #[test]
    fn canonical_form_borrows_when_already_canonical() {
        assert!(matches!(
            canonical_header_key("Content-Type"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn header_validity() {
        assert!(is_valid_header_name("X-Ok"));
        assert!(!is_valid_header_name("X Bad"));
        assert!(!is_valid_header_name("X:Bad"));
        assert!(!is_valid_header_name(""));
        assert!(is_valid_header_value("a\tb c"));
        assert!(!is_valid_header_value("a\r\nInjected: 1"));
        assert!(!is_valid_header_value("nul\0"));
    }
}
