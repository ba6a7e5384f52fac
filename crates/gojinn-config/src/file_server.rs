//! The `file_server` directive and its options, as Caddy writes them:
//!
//! ```text
//! file_server [<matcher>] [browse] {
//!     root          <path>
//!     hide          <files...>
//!     index         <filenames...>
//!     browse
//!     precompressed [<formats...>]
//! }
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{each_once, leading_matcher, no_block, one_arg, split};
use crate::error::{PResult, PosError};
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;
use crate::{paths, validate};

/// What `file_server` does beyond serving files below its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServerOptions {
    /// `browse`: list a directory that has no index file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub browse: bool,
    /// `hide`: files never served nor listed. An entry with a `/` is a path
    /// (absolute, or relative to the config file's directory) and hides that
    /// file or directory; one without is a file name, hidden in every
    /// directory. `*` matches within one path component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hide: Vec<String>,
    /// `index`: file names served for a directory, first found wins.
    #[serde(default = "default_index", skip_serializing_if = "is_default_index")]
    pub index: Vec<String>,
    /// `precompressed`: encodings whose sidecar files (`file.br`, `file.zst`,
    /// `file.gz`) are served when the client accepts them, in preference order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precompressed: Vec<Precompressed>,
}

impl Default for FileServerOptions {
    fn default() -> Self {
        FileServerOptions {
            browse: false,
            hide: Vec::new(),
            index: default_index(),
            precompressed: Vec::new(),
        }
    }
}

impl FileServerOptions {
    /// True when every option has its default.
    pub fn is_default(&self) -> bool {
        *self == FileServerOptions::default()
    }
}

fn default_index() -> Vec<String> {
    vec!["index.html".to_owned(), "index.txt".to_owned()]
}
fn is_default_index(v: &[String]) -> bool {
    v == default_index()
}

/// A precompressed sidecar format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precompressed {
    /// Brotli, `file.br`.
    Br,
    /// Zstandard, `file.zst`.
    Zstd,
    /// Gzip, `file.gz`.
    Gzip,
}

impl Precompressed {
    /// The `Content-Encoding` token.
    pub fn encoding(self) -> &'static str {
        match self {
            Precompressed::Br => "br",
            Precompressed::Zstd => "zstd",
            Precompressed::Gzip => "gzip",
        }
    }

    /// The sidecar file's suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Precompressed::Br => ".br",
            Precompressed::Zstd => ".zst",
            Precompressed::Gzip => ".gz",
        }
    }
}

/// `file_server` sub-directives gojinn implements.
pub(crate) const SUBDIRECTIVES: &[&str] = &["root", "hide", "index", "browse", "precompressed"];

/// Caddy's `file_server` sub-directives that gojinn does not implement.
pub(crate) const UNSUPPORTED_SUBDIRECTIVES: &[&str] = &[
    "disable_canonical_uris",
    "etag_file_extensions",
    "fs",
    "pass_thru",
    "status",
];

/// `file_server [<matcher>] [browse] [{ … }]`; `root` is the directory served
/// unless the block says otherwise.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node, root: &Path) -> PResult<Route> {
    let (_, args) = split(node)?;
    let (matcher, rest) = leading_matcher(cx, args)?;
    let mut options = FileServerOptions::default();
    match rest {
        [] => {}
        [b] if b.text == "browse" => options.browse = true,
        [b, extra, ..] if b.text == "browse" => {
            return Err(unexpected(
                extra,
                "`file_server browse` takes nothing more; options go in a block",
            ))
        }
        [t, ..] => {
            return Err(unexpected(
                t,
                "`file_server` takes a matcher and `browse`; its options go in a block",
            ))
        }
    }
    let mut root = root.to_path_buf();
    for sub in node
        .block
        .as_ref()
        .map(|b| each_once(b, "file_server"))
        .transpose()?
        .unwrap_or(&[])
    {
        let (name, sub_args) = split(sub)?;
        let s = name.text.as_str();
        match s {
            "root" => {
                let dir = one_arg(sub, "root ./public")?;
                if dir.text.is_empty() {
                    return Err(PosError::new(dir.pos, "`root` directory is empty"));
                }
                root = paths::resolve(&cx.base, Path::new(&dir.text));
            }
            "browse" => {
                if let Some(b) = &sub.block {
                    return Err(PosError::new(
                        b.open,
                        "`browse` options (template, sort, reveal_symlinks) are not supported by gojinn",
                    ));
                }
                if let Some(t) = sub_args.first() {
                    return Err(PosError::new(
                        t.pos,
                        format!(
                            "`browse` templates are not supported by gojinn: remove `{}`",
                            t.text
                        ),
                    ));
                }
                options.browse = true;
            }
            "hide" => {
                no_block(sub, "hide")?;
                if sub_args.is_empty() {
                    return Err(PosError::new(
                        name.pos,
                        "`hide` needs files to hide, e.g. `hide .git *.bak`",
                    ));
                }
                for h in sub_args {
                    validate::no_nul("hide entry", &h.text).map_err(|e| PosError::new(h.pos, e))?;
                    if h.text.is_empty() {
                        return Err(PosError::new(h.pos, "`hide` entry is empty"));
                    }
                    options.hide.push(if h.text.contains('/') {
                        paths::resolve(&cx.base, Path::new(&h.text))
                            .to_string_lossy()
                            .into_owned()
                    } else {
                        h.text.clone()
                    });
                }
            }
            "index" => {
                no_block(sub, "index")?;
                if sub_args.is_empty() {
                    return Err(PosError::new(
                        name.pos,
                        "`index` needs file names, e.g. `index index.html default.htm`",
                    ));
                }
                options.index.clear();
                for i in sub_args {
                    if i.text.is_empty()
                        || i.text.contains('/')
                        || i.text == ".."
                        || i.text.contains('\0')
                    {
                        return Err(PosError::new(
                            i.pos,
                            format!("invalid index file name `{}`: use a file name without `/`, e.g. `index.html`", i.text),
                        ));
                    }
                    options.index.push(i.text.clone());
                }
            }
            "precompressed" => {
                no_block(sub, "precompressed")?;
                options.precompressed = if sub_args.is_empty() {
                    // Caddy's order when none is named.
                    vec![Precompressed::Br, Precompressed::Zstd, Precompressed::Gzip]
                } else {
                    let mut out = Vec::new();
                    for f in sub_args {
                        let p = match f.text.as_str() {
                            "br" => Precompressed::Br,
                            "zstd" => Precompressed::Zstd,
                            "gzip" => Precompressed::Gzip,
                            other => {
                                return Err(PosError::new(
                                    f.pos,
                                    format!(
                                        "unknown precompressed format `{other}`: use `br`, `zstd` or `gzip`{}",
                                        hint(other, &[&["br", "zstd", "gzip"]])
                                    ),
                                ))
                            }
                        };
                        if out.contains(&p) {
                            return Err(unexpected(f, "each format is named once"));
                        }
                        out.push(p);
                    }
                    out
                };
            }
            _ if UNSUPPORTED_SUBDIRECTIVES.contains(&s) => {
                return Err(PosError::new(
                    name.pos,
                    format!("file_server sub-directive `{s}` is not supported by gojinn"),
                ))
            }
            _ => {
                return Err(PosError::new(
                    name.pos,
                    format!(
                        "unknown file_server sub-directive `{s}`{}",
                        hint(s, &[SUBDIRECTIVES, UNSUPPORTED_SUBDIRECTIVES])
                    ),
                ))
            }
        }
    }
    // As Caddy does, the config file is never served: it may hold secrets
    // (`env` values, `debug_secret`), and without `root` the served directory
    // is the config file's own.
    if let Some(name) = cx.sources.config_file().file_name() {
        let config = cx.base.join(name);
        let shown = config.to_string_lossy().into_owned();
        if config.starts_with(&root) && !options.hide.contains(&shown) {
            options.hide.push(shown);
        }
    }
    Ok(matcher.route(None, Handler::FileServer { root, options }))
}

/// Resolves the path-like `hide` entries of a JSON config against `base`.
pub(crate) fn resolve_hide(options: &mut FileServerOptions, base: &Path) {
    for h in &mut options.hide {
        if h.contains('/') {
            *h = paths::resolve(base, Path::new(h.as_str()))
                .to_string_lossy()
                .into_owned();
        }
    }
}
