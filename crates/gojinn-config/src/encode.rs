//! `encode [<matcher>] [<formats…>] [{ … }]`: response compression, Caddy's
//! syntax; what Caddy has and gojinn lacks is refused by name.

use serde::{Deserialize, Serialize};

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{leading_matcher, one_arg, split};
use crate::error::{PResult, Pos, PosError};
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;
use crate::units;

/// Default `minimum_length`: responses shorter than 512 bytes are sent as
/// they are, as in Caddy.
pub const DEFAULT_MINIMUM_LENGTH: u64 = 512;

/// One `encode` directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encode {
    /// The encodings offered, as written.
    pub formats: Vec<Format>,
    /// `minimum_length`: a response whose length is known and below this is
    /// not compressed, in bytes.
    #[serde(default = "default_minimum_length")]
    pub minimum_length: u64,
}

/// A content encoding `encode` can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `gzip`.
    Gzip,
    /// `zstd`.
    Zstd,
}

fn default_minimum_length() -> u64 {
    DEFAULT_MINIMUM_LENGTH
}

const FORMATS: &[&str] = &["gzip", "zstd"];
/// Encodings Caddy or its plugins know that gojinn does not produce.
const UNSUPPORTED_FORMATS: &[&str] = &["br", "brotli", "deflate"];
const SUBDIRECTIVES: &[&str] = &["gzip", "zstd", "minimum_length"];
const UNSUPPORTED_SUBDIRECTIVES: &[&str] = &["match", "br"];

fn format(t: &crate::lexer::Token) -> PResult<Format> {
    match t.text.as_str() {
        "gzip" => Ok(Format::Gzip),
        "zstd" => Ok(Format::Zstd),
        s if UNSUPPORTED_FORMATS.contains(&s) => Err(PosError::new(
            t.pos,
            format!("encoding `{s}` is not supported by gojinn; use `gzip` or `zstd`"),
        )),
        s => Err(PosError::new(
            t.pos,
            format!(
                "unknown encoding `{s}`{}",
                hint(s, &[FORMATS, UNSUPPORTED_FORMATS])
            ),
        )),
    }
}

/// Parses one `encode` directive into a route.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (_, args) = split(node)?;
    let (matcher, rest) = leading_matcher(cx, args)?;
    let mut e = Encode {
        formats: Vec::new(),
        minimum_length: DEFAULT_MINIMUM_LENGTH,
    };
    let add = |e: &mut Encode, f: Format| {
        if !e.formats.contains(&f) {
            e.formats.push(f);
        }
    };
    for t in rest {
        add(&mut e, format(t)?);
    }
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    for sub in node.block.iter().flat_map(|b| &b.nodes) {
        let (key, vals) = crate::options::option(
            sub,
            "encode",
            SUBDIRECTIVES,
            UNSUPPORTED_SUBDIRECTIVES,
            &mut seen,
        )?;
        let k = key.text.as_str();
        match k {
            "minimum_length" => {
                let v = one_arg(sub, "minimum_length 512")?;
                e.minimum_length =
                    units::parse_size(&v.text).map_err(|m| PosError::new(v.pos, m))?;
            }
            _ => {
                if let Some(level) = vals.first() {
                    return Err(unexpected(
                        level,
                        "compression levels are not supported by gojinn; write the encoding alone",
                    ));
                }
                add(&mut e, format(key)?);
            }
        }
    }
    if e.formats.is_empty() {
        // Caddy's default since 2.7 when no encoding is named.
        e.formats = vec![Format::Zstd, Format::Gzip];
    }
    Ok(matcher.route(None, Handler::Encode(e)))
}
