//! Lexical path resolution: relative config paths become absolute, against the
//! config file's directory, without touching the file system (the module may
//! not exist yet; the runtime checks that and points at `Function::origin`).

use std::path::{Component, Path, PathBuf};

/// The absolute directory relative paths of `file` resolve against: its parent,
/// or the current directory when it has none. If even the current directory is
/// unknown, relative paths stay relative.
pub(crate) fn base_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    if parent.is_absolute() {
        return normalize(parent);
    }
    match std::env::current_dir() {
        Ok(cwd) => normalize(&cwd.join(parent)),
        Err(_) => normalize(parent),
    }
}

/// `path` resolved against `base`, `.` and `..` removed lexically.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    normalize(&base.join(path))
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
                // `..` above the root is the root.
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        let base = Path::new("/srv/app");
        assert_eq!(
            resolve(base, Path::new("./fn/a.wasm")),
            Path::new("/srv/app/fn/a.wasm")
        );
        assert_eq!(resolve(base, Path::new("../x/./y")), Path::new("/srv/x/y"));
        assert_eq!(
            resolve(base, Path::new("/abs/m.wat")),
            Path::new("/abs/m.wat")
        );
        assert_eq!(resolve(base, Path::new("../../../..")), Path::new("/"));
        assert_eq!(normalize(Path::new("a/../../b")), Path::new("../b"));
    }

    #[test]
    fn base_is_absolute() {
        assert!(base_dir(Path::new("Caddyfile")).is_absolute());
        assert!(base_dir(Path::new("conf/Caddyfile")).ends_with("conf"));
        assert_eq!(
            base_dir(Path::new("/etc/gojinn/Caddyfile")),
            Path::new("/etc/gojinn")
        );
    }
}
