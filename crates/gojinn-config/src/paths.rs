//! Path resolution: relative config paths become absolute, against the config
//! file's directory, lexically (the runtime checks that a module exists and
//! points at `Function::origin`). A module path alone also looks at the working
//! directory, where Gojinn and Caddy resolve it ([`module`]).

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

/// A relative module path resolved against both the config file's directory
/// (`base`) and the working directory (`cwd`), where Gojinn resolved it, so
/// that configs written for either layout load: when exactly one of the two
/// files exists it is the module; when both exist and are different files the
/// path is ambiguous (the message names both); when neither does, the config's
/// directory is kept and the runtime reports the missing module.
pub(crate) fn module(base: &Path, cwd: Option<&Path>, path: &Path) -> Result<PathBuf, String> {
    let by_config = resolve(base, path);
    let Some(by_cwd) = cwd.filter(|_| path.is_relative()).map(|c| resolve(c, path)) else {
        return Ok(by_config);
    };
    if by_cwd == by_config {
        return Ok(by_config);
    }
    match (by_config.is_file(), by_cwd.is_file()) {
        (false, true) => Ok(by_cwd),
        (true, true) if !same_file(&by_config, &by_cwd) => Err(format!(
            "module `{}` is ambiguous: both `{}` (next to the config file) and `{}` (in the working directory) exist; write the path of the one you mean, or remove the other",
            path.display(),
            by_config.display(),
            by_cwd.display()
        )),
        _ => Ok(by_config),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
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

    /// Gojinn's layouts: a module next to the Caddyfile, or under the working
    /// directory (its benchmark repo runs `--config configs/Caddyfile` from its
    /// root with `gojinn bin/rust.wasm`).
    #[test]
    fn module_paths_resolve_where_the_file_is() {
        let root = std::env::temp_dir().join(format!("gojinn-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let conf = root.join("configs");
        std::fs::create_dir_all(conf.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let rel = Path::new("bin/rust.wasm");
        let cwd = Some(root.as_path());

        // Neither exists: the config's directory, as before.
        assert_eq!(module(&conf, cwd, rel).unwrap(), conf.join(rel));
        // Only under the working directory.
        std::fs::write(root.join(rel), b"a").unwrap();
        assert_eq!(module(&conf, cwd, rel).unwrap(), root.join(rel));
        // Both, different files: refused, naming both.
        std::fs::write(conf.join(rel), b"b").unwrap();
        let err = module(&conf, cwd, rel).unwrap_err();
        assert!(err.contains(&conf.join(rel).display().to_string()), "{err}");
        assert!(err.contains(&root.join(rel).display().to_string()), "{err}");
        assert!(
            err.starts_with("module `bin/rust.wasm` is ambiguous"),
            "{err}"
        );
        // Only next to the config.
        std::fs::remove_file(root.join(rel)).unwrap();
        assert_eq!(module(&conf, cwd, rel).unwrap(), conf.join(rel));
        // Both names for one file (the working directory is the config's).
        assert_eq!(module(&conf, Some(&conf), rel).unwrap(), conf.join(rel));
        // Absolute paths are taken as written.
        let abs = root.join("x.wasm");
        assert_eq!(module(&conf, cwd, &abs).unwrap(), abs);
        std::fs::remove_dir_all(&root).unwrap();
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
