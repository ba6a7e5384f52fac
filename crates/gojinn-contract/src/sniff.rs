//! The Content-Type of a body its function did not label, as Gojinn's Go host
//! answered it: Go's `net/http` runs `http.DetectContentType` (the WHATWG MIME
//! sniffing algorithm, the subset Go implements) on the first 512 bytes. One
//! addition: a body that is a JSON object or array is `application/json`, which
//! Go would have called `text/plain; charset=utf-8`.
//!
//! Written here rather than taken from a crate: the crates on offer either sniff
//! file formats by magic numbers (no `text/html`, no text/binary decision) or
//! implement the whole WHATWG table, whose answers differ from Go's on the
//! inputs that matter (Go's table is smaller and ordered differently). The
//! table below follows Go's `net/http/sniff.go` entry for entry.

/// How many leading bytes the sniffer looks at (Go's `sniffLen`).
pub const SNIFF_LEN: usize = 512;

/// What a JSON object or array body is labelled.
pub(crate) const JSON: &str = "application/json";

/// The type Go gives text that matches nothing more specific.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Go's answer for bytes that look binary.
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// The Content-Type for `body`: `application/json` for a JSON object or array,
/// else what Go's `http.DetectContentType` says.
pub fn content_type_for(body: &[u8]) -> &'static str {
    if is_json_container(body) {
        JSON
    } else {
        detect_content_type(body)
    }
}

/// Whether `body` is one JSON object or array (surrounding whitespace allowed).
fn is_json_container(body: &[u8]) -> bool {
    matches!(first_non_ws(body), Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn first_non_ws(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !is_ws(*b))
}

/// Go's `isWS`: the WHATWG whitespace bytes.
fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// Go's `isTT`: a byte that ends an HTML tag name.
fn is_tag_end(b: u8) -> bool {
    b == b' ' || b == b'>'
}

/// One row of the table, as Go's `sniffSig` implementations.
enum Sig {
    /// An HTML tag (upper-case in the table), case-insensitively, after
    /// whitespace, then a tag-ending byte (Go's `htmlSig`).
    Html(&'static [u8]),
    /// `data & mask == pat`, optionally after whitespace (Go's `maskedSig`).
    Masked {
        mask: &'static [u8],
        pat: &'static [u8],
        skip_ws: bool,
        ct: &'static str,
    },
    /// A literal prefix (Go's `exactSig`).
    Exact(&'static [u8], &'static str),
    /// ISO base media (MP4) by its `ftyp` box (Go's `mp4Sig`).
    Mp4,
    /// Text: no binary byte (Go's `textSig`).
    Text,
}

const HTML: &str = "text/html; charset=utf-8";

/// Go's `sniffSignatures`, in order: the first match wins.
const SIGNATURES: &[Sig] = &[
    Sig::Html(b"<!DOCTYPE HTML"),
    Sig::Html(b"<HTML"),
    Sig::Html(b"<HEAD"),
    Sig::Html(b"<SCRIPT"),
    Sig::Html(b"<IFRAME"),
    Sig::Html(b"<H1"),
    Sig::Html(b"<DIV"),
    Sig::Html(b"<FONT"),
    Sig::Html(b"<TABLE"),
    Sig::Html(b"<A"),
    Sig::Html(b"<STYLE"),
    Sig::Html(b"<TITLE"),
    Sig::Html(b"<B"),
    Sig::Html(b"<BODY"),
    Sig::Html(b"<BR"),
    Sig::Html(b"<P"),
    Sig::Html(b"<!--"),
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\xFF",
        pat: b"<?xml",
        skip_ws: true,
        ct: "text/xml; charset=utf-8",
    },
    Sig::Exact(b"%PDF-", "application/pdf"),
    Sig::Exact(b"%!PS-Adobe-", "application/postscript"),
    // Byte-order marks.
    Sig::Masked {
        mask: b"\xFF\xFF\x00\x00",
        pat: b"\xFE\xFF\x00\x00",
        skip_ws: false,
        ct: "text/plain; charset=utf-16be",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\x00\x00",
        pat: b"\xFF\xFE\x00\x00",
        skip_ws: false,
        ct: "text/plain; charset=utf-16le",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\x00",
        pat: b"\xEF\xBB\xBF\x00",
        skip_ws: false,
        ct: TEXT,
    },
    // Images.
    Sig::Exact(b"\x00\x00\x01\x00", "image/x-icon"),
    Sig::Exact(b"\x00\x00\x02\x00", "image/x-icon"),
    Sig::Exact(b"BM", "image/bmp"),
    Sig::Exact(b"GIF87a", "image/gif"),
    Sig::Exact(b"GIF89a", "image/gif"),
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF",
        pat: b"RIFF\x00\x00\x00\x00WEBPVP",
        skip_ws: false,
        ct: "image/webp",
    },
    Sig::Exact(b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    Sig::Exact(b"\xFF\xD8\xFF", "image/jpeg"),
    // Audio and video.
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        pat: b"FORM\x00\x00\x00\x00AIFF",
        skip_ws: false,
        ct: "audio/aiff",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\xFF",
        pat: b"ID3",
        skip_ws: false,
        ct: "audio/mpeg",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\xFF",
        pat: b"OggS\x00",
        skip_ws: false,
        ct: "application/ogg",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",
        pat: b"MThd\x00\x00\x00\x06",
        skip_ws: false,
        ct: "audio/midi",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        pat: b"RIFF\x00\x00\x00\x00AVI ",
        skip_ws: false,
        ct: "video/avi",
    },
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        pat: b"RIFF\x00\x00\x00\x00WAVE",
        skip_ws: false,
        ct: "audio/wave",
    },
    Sig::Mp4,
    Sig::Exact(b"\x1A\x45\xDF\xA3", "video/webm"),
    // Fonts.
    Sig::Masked {
        // 34 bytes of anything, then "LP".
        mask: b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF",
        pat: b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LP",
        skip_ws: false,
        ct: "application/vnd.ms-fontobject",
    },
    Sig::Exact(b"\x00\x01\x00\x00", "font/ttf"),
    Sig::Exact(b"OTTO", "font/otf"),
    Sig::Exact(b"ttcf", "font/collection"),
    Sig::Exact(b"wOFF", "font/woff"),
    Sig::Exact(b"wOF2", "font/woff2"),
    // Archives.
    Sig::Exact(b"\x1F\x8B\x08", "application/x-gzip"),
    Sig::Exact(b"PK\x03\x04", "application/zip"),
    Sig::Exact(b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    Sig::Exact(b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    Sig::Exact(b"\x00\x61\x73\x6D", "application/wasm"),
    Sig::Text,
];

/// Go's `http.DetectContentType`: the first signature that matches the first
/// [`SNIFF_LEN`] bytes, else `application/octet-stream`.
pub fn detect_content_type(body: &[u8]) -> &'static str {
    let data = &body[..body.len().min(SNIFF_LEN)];
    // Whitespace skipped once, for the signatures that allow it.
    let first = data.iter().position(|b| !is_ws(*b)).unwrap_or(data.len());
    SIGNATURES
        .iter()
        .find_map(|sig| sig.matches(data, first))
        .unwrap_or(OCTET_STREAM)
}

impl Sig {
    fn matches(&self, data: &[u8], first: usize) -> Option<&'static str> {
        match *self {
            Sig::Html(tag) => {
                let data = &data[first..];
                // The tag and one more byte, which must end it.
                let end = *data.get(tag.len())?;
                let same = data[..tag.len()]
                    .iter()
                    .zip(tag)
                    .all(|(d, t)| d.to_ascii_uppercase() == *t);
                (same && is_tag_end(end)).then_some(HTML)
            }
            Sig::Masked {
                mask,
                pat,
                skip_ws,
                ct,
            } => {
                let data = if skip_ws { &data[first..] } else { data };
                let head = data.get(..pat.len())?;
                head.iter()
                    .zip(mask)
                    .zip(pat)
                    .all(|((d, m), p)| d & m == *p)
                    .then_some(ct)
            }
            Sig::Exact(sig, ct) => data.starts_with(sig).then_some(ct),
            Sig::Mp4 => is_mp4(data).then_some("video/mp4"),
            Sig::Text => {
                // Leading whitespace is skipped here too (Go's textSig).
                (!data[first..].iter().any(|b| is_binary(*b))).then_some(TEXT)
            }
        }
    }
}

/// Go's `isBinary` (the WHATWG "binary data byte").
fn is_binary(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F)
}

/// Go's `mp4Sig`: a big-endian box size at 0, `ftyp` at 4, and `mp4` as the
/// major brand or one of the compatible brands.
fn is_mp4(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if data.len() < size || !size.is_multiple_of(4) {
        return false;
    }
    if &data[4..8] != b"ftyp" {
        return false;
    }
    (8..size)
        .step_by(4)
        .filter(|&st| st != 12) // the minor version, not a brand
        .any(|st| data.get(st..st + 3) == Some(b"mp4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from Go's `net/http/sniff_test.go` (the subset that covers each
    /// kind of signature), with Go's answers.
    #[test]
    fn matches_go_detect_content_type() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("empty", b"", TEXT),
            ("binary", b"\x01\x02\x03", OCTET_STREAM),
            (
                "html document #1",
                b"<HtMl><bOdY>blah blah blah</body></html>",
                HTML,
            ),
            ("html document #2", b"<HTML></HTML>", HTML),
            (
                "html document #3 (leading whitespace)",
                b"   <!DOCTYPE HTML>...",
                HTML,
            ),
            ("html document #4 (leading CRLF)", b"\r\n<html>...", HTML),
            (
                "plain text",
                b"This is not HTML. It has \xe2\x98\x83 though.",
                TEXT,
            ),
            ("xml", b"\n<?xml!", "text/xml; charset=utf-8"),
            ("windows icon", b"\x00\x00\x01\x00", "image/x-icon"),
            ("windows cursor", b"\x00\x00\x02\x00", "image/x-icon"),
            (
                "bmp",
                b"BMA\x1a\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00",
                "image/bmp",
            ),
            ("gif 87a", b"GIF87a", "image/gif"),
            ("gif 89a", b"GIF89a...", "image/gif"),
            ("webp", b"RIFF\x00\x00\x00\x00WEBPVP", "image/webp"),
            ("png", b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
            ("jpeg", b"\xFF\xD8\xFF", "image/jpeg"),
            ("pdf", b"%PDF-1.7", "application/pdf"),
            ("postscript", b"%!PS-Adobe-3.0", "application/postscript"),
            (
                "utf-16be bom",
                b"\xFE\xFF\x00\x41",
                "text/plain; charset=utf-16be",
            ),
            (
                "utf-16le bom",
                b"\xFF\xFE\x41\x00",
                "text/plain; charset=utf-16le",
            ),
            ("utf-8 bom", b"\xEF\xBB\xBFhello", TEXT),
            ("mp3 with id3", b"ID3\x03\x00\x00\x00\x00\x0f", "audio/mpeg"),
            ("ogg", b"OggS\x00", "application/ogg"),
            ("midi", b"MThd\x00\x00\x00\x06\x00\x01", "audio/midi"),
            ("wav", b"RIFF\x00\x00\x00\x00WAVE", "audio/wave"),
            ("avi", b"RIFF\x00\x00\x00\x00AVI ", "video/avi"),
            ("aiff", b"FORM\x00\x00\x00\x00AIFFCOMM", "audio/aiff"),
            ("webm", b"\x1A\x45\xDF\xA3\x01\x00", "video/webm"),
            (
                "mp4",
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom<\x06t\xbfmdat",
                "video/mp4",
            ),
            (
                "mp4 (isom major brand, mp41 compatible)",
                b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41",
                "video/mp4",
            ),
            ("ttf", b"\x00\x01\x00\x00\x00", "font/ttf"),
            ("otf", b"OTTO\x00", "font/otf"),
            ("woff", b"wOFF\x00", "font/woff"),
            ("woff2", b"wOF2\x00", "font/woff2"),
            ("gzip", b"\x1F\x8B\x08\x00", "application/x-gzip"),
            ("zip", b"PK\x03\x04\x14\x00", "application/zip"),
            (
                "rar 1.5",
                b"Rar!\x1A\x07\x00",
                "application/x-rar-compressed",
            ),
            (
                "rar 5",
                b"Rar!\x1A\x07\x01\x00",
                "application/x-rar-compressed",
            ),
            ("wasm", b"\x00\x61\x73\x6D\x01\x00", "application/wasm"),
        ];
        for (name, body, want) in cases {
            assert_eq!(detect_content_type(body), *want, "{name}");
        }
    }

    #[test]
    fn every_mask_is_as_long_as_its_pattern() {
        for sig in SIGNATURES {
            if let Sig::Masked { mask, pat, ct, .. } = sig {
                assert_eq!(mask.len(), pat.len(), "{ct}");
            }
        }
        // The font signature: 34 bytes of anything, then "LP".
        let mut eot = vec![0xAB; 34];
        eot.extend_from_slice(b"LP");
        assert_eq!(detect_content_type(&eot), "application/vnd.ms-fontobject");
    }

    #[test]
    fn html_tags_need_a_tag_ending_byte() {
        // `<a` then a space or `>`: HTML; `<ab`: not a known tag, so text.
        assert_eq!(detect_content_type(b"<a href=x>"), HTML);
        assert_eq!(detect_content_type(b"<p>hi</p>"), HTML);
        assert_eq!(detect_content_type(b"<abbr>x</abbr>"), TEXT);
        // The tag alone, with nothing after it, is not enough.
        assert_eq!(detect_content_type(b"<html"), TEXT);
        assert_eq!(detect_content_type(b"<!-- comment -->"), HTML);
    }

    #[test]
    fn only_the_first_512_bytes_count() {
        let mut body = vec![b'a'; SNIFF_LEN];
        body.push(0x00);
        assert_eq!(detect_content_type(&body), TEXT, "a NUL past 512 bytes");
        body[SNIFF_LEN - 1] = 0x00;
        assert_eq!(detect_content_type(&body), OCTET_STREAM);
    }

    #[test]
    fn json_objects_and_arrays_are_json_other_text_is_sniffed() {
        assert_eq!(content_type_for(b"{\"message\":\"hi\"}\n"), JSON);
        assert_eq!(content_type_for(b" [1, 2]"), JSON);
        assert_eq!(content_type_for(b"[]"), JSON);
        // Scalars are JSON too, but read as text, as Go labels them.
        assert_eq!(content_type_for(b"42"), TEXT);
        assert_eq!(content_type_for(b"\"hi\""), TEXT);
        // Looks like JSON, is not.
        assert_eq!(content_type_for(b"{not json"), TEXT);
        assert_eq!(content_type_for(b"[1,"), TEXT);
        assert_eq!(content_type_for(b"<h1>x</h1>"), HTML);
    }
}
