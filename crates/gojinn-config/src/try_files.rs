//! The `try_files <files...> [{ policy … }]` directive: Caddy's shortcut for a
//! rewrite to the first of the listed files that exists below the site root.
//! Each file may use `{path}` and `{query}` (or their long names
//! `{http.request.uri.path}`, `{http.request.uri.query}`), end in `/` to match
//! a directory, and carry a `?query` that replaces the request's; with the
//! `first_exist` policy the last item may be `=<status>`, answered when no file
//! exists. Glob patterns are refused.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{each_once, one_arg, split};
use crate::error::{PResult, PosError};
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;

/// How `try_files` picks among the files that exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TryPolicy {
    /// The first that exists (the default).
    #[default]
    FirstExist,
    /// The first that exists, else the last listed without checking it.
    FirstExistFallback,
    /// The smallest file.
    SmallestSize,
    /// The largest file.
    LargestSize,
    /// The most recently modified file.
    MostRecentlyModified,
}

impl TryPolicy {
    fn is_default(&self) -> bool {
        *self == TryPolicy::FirstExist
    }
}

const POLICIES: &[&str] = &[
    "first_exist",
    "first_exist_fallback",
    "smallest_size",
    "largest_size",
    "most_recently_modified",
];

/// The placeholders a `try_files` entry may use.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("{path}", "{path}"),
    ("{http.request.uri.path}", "{path}"),
    ("{query}", "{query}"),
    ("{http.request.uri.query}", "{query}"),
];

/// `try_files` resolved: what the route tree holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryFiles {
    /// The files to try, placeholders in their short form (`{path}`, `{query}`).
    pub files: Vec<String>,
    /// `=<status>`: answered when no file exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_status: Option<u16>,
    /// How the file is picked.
    #[serde(default, skip_serializing_if = "TryPolicy::is_default")]
    pub policy: TryPolicy,
}

/// `try_files <files...> [{ policy … }]`, files below `root`.
pub(crate) fn parse(_cx: &Ctx<'_>, node: &Node, root: &Path) -> PResult<Route> {
    let (name, args) = split(node)?;
    if args.is_empty() {
        return Err(PosError::new(
            name.pos,
            "`try_files` needs files to try, e.g. `try_files {path} /index.html`",
        ));
    }
    let mut policy = TryPolicy::FirstExist;
    for sub in node
        .block
        .as_ref()
        .map(|b| each_once(b, "try_files"))
        .transpose()?
        .unwrap_or(&[])
    {
        let (key, _) = split(sub)?;
        if key.text != "policy" {
            return Err(PosError::new(
                key.pos,
                format!(
                    "unknown `try_files` option `{}`{}",
                    key.text,
                    hint(&key.text, &[&["policy"]])
                ),
            ));
        }
        let v = one_arg(sub, "policy first_exist")?;
        policy = match v.text.as_str() {
            "first_exist" => TryPolicy::FirstExist,
            "first_exist_fallback" => TryPolicy::FirstExistFallback,
            "smallest_size" => TryPolicy::SmallestSize,
            "largest_size" => TryPolicy::LargestSize,
            "most_recently_modified" => TryPolicy::MostRecentlyModified,
            other => {
                return Err(PosError::new(
                    v.pos,
                    format!(
                        "unknown `try_files` policy `{other}`: use {}{}",
                        POLICIES
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        hint(other, &[POLICIES])
                    ),
                ))
            }
        };
    }
    let mut files = Vec::new();
    let mut fallback_status = None;
    for (i, t) in args.iter().enumerate() {
        if i == 0 && t.text.starts_with('@') {
            return Err(PosError::new(
                t.pos,
                "`try_files` takes no matcher (as in Caddy); nest it in `handle <matcher> { … }`",
            ));
        }
        if let Some(code) = t.text.strip_prefix('=') {
            if i + 1 != args.len() {
                return Err(unexpected(
                    t,
                    "`=<status>` must be the last item of `try_files`",
                ));
            }
            if policy != TryPolicy::FirstExist {
                return Err(PosError::new(
                    t.pos,
                    "`=<status>` works only with the `first_exist` policy",
                ));
            }
            let status: u16 = code
                .parse()
                .ok()
                .filter(|s| (400..=599).contains(s))
                .ok_or_else(|| {
                    PosError::new(
                        t.pos,
                        format!(
                            "invalid `try_files` status `{}`: use an error status such as `=404`",
                            t.text
                        ),
                    )
                })?;
            fallback_status = Some(status);
            continue;
        }
        files.push(entry(t)?);
    }
    if files.is_empty() {
        return Err(PosError::new(
            name.pos,
            "`try_files` needs at least one file before `=<status>`",
        ));
    }
    Ok(Route {
        group: None,
        matcher: None,
        conditions: None,
        handle: Handler::TryFiles {
            root: root.to_path_buf(),
            try_files: TryFiles {
                files,
                fallback_status,
                policy,
            },
        },
    })
}

/// One file entry, its placeholders in their short form.
fn entry(t: &crate::lexer::Token) -> PResult<String> {
    let text = t.text.as_str();
    if text.is_empty() {
        return Err(PosError::new(t.pos, "`try_files` entry is empty"));
    }
    if text.contains('\0') {
        return Err(PosError::new(
            t.pos,
            "`try_files` entry contains a NUL byte",
        ));
    }
    let (path_part, _) = text.split_once('?').unwrap_or((text, ""));
    if path_part.contains(['*', '[']) {
        return Err(PosError::new(
            t.pos,
            format!("glob patterns in `try_files` are not supported by gojinn: `{text}`"),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            return Err(PosError::new(
                t.pos,
                format!("unclosed placeholder in `{text}`"),
            ));
        };
        let ph = &after[..=close];
        let Some((_, short)) = PLACEHOLDERS.iter().find(|(long, _)| *long == ph) else {
            return Err(PosError::new(
                t.pos,
                format!(
                    "placeholder `{ph}` is not supported in `try_files` by gojinn: use `{{path}}` or `{{query}}`"
                ),
            ));
        };
        out.push_str(short);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if !out.starts_with('/') && !out.starts_with("{path}") {
        return Err(PosError::new(
            t.pos,
            format!("`try_files` entry `{text}` must start with `/` or `{{path}}` (paths are below the site root)"),
        ));
    }
    Ok(out)
}
