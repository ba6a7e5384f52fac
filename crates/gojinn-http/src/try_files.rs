//! `try_files`: a rewrite to the first listed file that exists below the root
//! (Caddy's `file` matcher plus `rewrite`). Evaluated while routes are matched
//! (`handler::find`), so the routes after it see the new path.
//!
//! The checks are plain `std::fs` calls on the matching thread: a `stat` of a
//! local file takes microseconds, less than handing it to a blocking thread
//! would cost.

use gojinn_config::{TryFiles, TryPolicy};
use http::StatusCode;
use std::path::PathBuf;
use std::time::SystemTime;

/// A `try_files` route, resolved at load.
pub(crate) struct TryFilesRt {
    root: PathBuf,
    config: TryFiles,
}

/// What a `try_files` route does to a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Go on with this path, and this query when the chosen entry had one.
    Rewrite(String, Option<String>),
    /// No file exists: answer this status (`=404`).
    Status(StatusCode),
    /// No file exists: go on unchanged.
    Unchanged,
}

impl TryFilesRt {
    pub(crate) fn new(root: PathBuf, config: TryFiles) -> TryFilesRt {
        TryFilesRt { root, config }
    }

    /// The outcome for a request with `path` and `query`.
    pub(crate) fn apply(&self, path: &str, query: Option<&str>) -> Outcome {
        let candidates = self.config.files.iter().map(|f| {
            let expanded = f
                .replace("{path}", path)
                .replace("{query}", query.unwrap_or(""));
            match expanded.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (expanded, None),
            }
        });
        let mut best: Option<(String, Option<String>, std::fs::Metadata)> = None;
        let mut last = None;
        for (p, q) in candidates {
            last = Some((p.clone(), q.clone()));
            let Some(meta) = self.existing(&p) else {
                continue;
            };
            let better = match (&best, self.config.policy) {
                (None, _) => true,
                (Some(_), TryPolicy::FirstExist | TryPolicy::FirstExistFallback) => false,
                (Some((_, _, b)), TryPolicy::SmallestSize) => meta.len() < b.len(),
                (Some((_, _, b)), TryPolicy::LargestSize) => meta.len() > b.len(),
                (Some((_, _, b)), TryPolicy::MostRecentlyModified) => modified(&meta) > modified(b),
            };
            if better {
                best = Some((p, q, meta));
                if matches!(
                    self.config.policy,
                    TryPolicy::FirstExist | TryPolicy::FirstExistFallback
                ) {
                    break;
                }
            }
        }
        match (best, last) {
            (Some((p, q, _)), _) => Outcome::Rewrite(p, q),
            (None, Some((p, q))) if self.config.policy == TryPolicy::FirstExistFallback => {
                Outcome::Rewrite(p, q)
            }
            _ => match self
                .config
                .fallback_status
                .and_then(|s| StatusCode::from_u16(s).ok())
            {
                Some(status) => Outcome::Status(status),
                None => Outcome::Unchanged,
            },
        }
    }

    /// The status answered when no file exists (`=<status>`).
    pub(crate) fn status(&self) -> StatusCode {
        self.config
            .fallback_status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::NOT_FOUND)
    }

    /// The metadata of `path` below the root when it exists as asked: a
    /// directory for a path ending in `/`, else a file.
    fn existing(&self, path: &str) -> Option<std::fs::Metadata> {
        let rel = crate::files::relative(path)?;
        let meta = std::fs::metadata(self.root.join(rel)).ok()?;
        (meta.is_dir() == path.ends_with('/')).then_some(meta)
    }
}

fn modified(meta: &std::fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn tree() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gojinn-try-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("index.html"), "index").unwrap();
        std::fs::write(dir.join("big.txt"), "a much larger file").unwrap();
        std::fs::write(dir.join("small.txt"), "s").unwrap();
        dir
    }

    fn rt(
        root: &std::path::Path,
        files: &[&str],
        status: Option<u16>,
        policy: TryPolicy,
    ) -> TryFilesRt {
        TryFilesRt::new(
            root.to_owned(),
            TryFiles {
                files: files.iter().map(|f| (*f).to_owned()).collect(),
                fallback_status: status,
                policy,
            },
        )
    }

    #[test]
    fn policies_pick_as_caddy_documents() {
        let root = tree();
        let spa = rt(
            &root,
            &["{path}", "{path}/", "/index.html?from={path}"],
            None,
            TryPolicy::FirstExist,
        );
        assert_eq!(
            spa.apply("/big.txt", None),
            Outcome::Rewrite("/big.txt".into(), None)
        );
        assert_eq!(
            spa.apply("/docs", None),
            Outcome::Rewrite("/docs/".into(), None)
        );
        assert_eq!(
            spa.apply("/app/route", Some("x=1")),
            Outcome::Rewrite("/index.html".into(), Some("from=/app/route".into()))
        );
        let strict = rt(&root, &["{path}"], Some(404), TryPolicy::FirstExist);
        assert_eq!(
            strict.apply("/nope", None),
            Outcome::Status(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            strict.apply("/../etc/passwd", None),
            Outcome::Status(StatusCode::NOT_FOUND)
        );
        let none = rt(&root, &["{path}.html"], None, TryPolicy::FirstExist);
        assert_eq!(none.apply("/nope", None), Outcome::Unchanged);
        let fallback = rt(
            &root,
            &["{path}", "/missing.php"],
            None,
            TryPolicy::FirstExistFallback,
        );
        assert_eq!(
            fallback.apply("/nope", None),
            Outcome::Rewrite("/missing.php".into(), None)
        );
        let small = rt(
            &root,
            &["/big.txt", "/small.txt"],
            None,
            TryPolicy::SmallestSize,
        );
        assert_eq!(
            small.apply("/", None),
            Outcome::Rewrite("/small.txt".into(), None)
        );
        let large = rt(
            &root,
            &["/small.txt", "/big.txt"],
            None,
            TryPolicy::LargestSize,
        );
        assert_eq!(
            large.apply("/", None),
            Outcome::Rewrite("/big.txt".into(), None)
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
