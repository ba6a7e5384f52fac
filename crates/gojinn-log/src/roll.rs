//! [`RollingFile`]: a log file rolled by size, with Caddy's (lumberjack's) names
//! and retention.
//!
//! Before a write that would take the file past `roll_size`, the file is renamed
//! to `<stem>-<UTC time>.<ext>` (`access-2026-12-03T08-42-10.123.log`) and a new
//! one is opened, so every write, which the [`Sink`](crate::Sink) makes whole
//! lines, lands in one file: no line is cut. A write larger than `roll_size`
//! gets a file of its own. Then, on a thread of its own so that logging does
//! not wait for gzip, the rolled files past `roll_keep` or older than
//! `roll_keep_for` (by the time in their names) are deleted, and the others
//! gzipped (`….log.gz`) unless compression is off.
//!
//! Crates that roll files were considered: `file-rotate` cuts a line at the
//! size limit (or lets the file grow a whole write past it), keeps either a
//! count or an age but not both, and panics when the directory cannot be read;
//! `rolling-file` numbers its files and keeps no age. Neither names files as
//! Caddy does, which users' log shippers and clean-up jobs match on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When a file is rolled and how long rolled files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Size in bytes past which the file is rolled.
    pub max_size: u64,
    /// Rolled files kept (the newest).
    pub keep: u32,
    /// Age past which a rolled file is deleted.
    pub keep_for: Duration,
    /// Gzip rolled files.
    pub compress: bool,
}

/// A log file that rolls itself by size (see the module docs).
pub struct RollingFile {
    path: PathBuf,
    mode: u32,
    file: File,
    size: u64,
    policy: Option<Policy>,
    /// Wakes the clean-up thread after a roll; started at the first roll.
    mill: Option<mpsc::Sender<()>>,
    /// The time last used in a rolled file's name, so two rolls in one
    /// millisecond still get distinct, ordered names.
    last_stamp_ms: u64,
}

impl RollingFile {
    /// Opens (creating it and its directory if needed) the file at `path` for
    /// appending, with `mode` when it is created; rolled by `policy` when given.
    pub fn open(path: &Path, mode: u32, policy: Option<Policy>) -> io::Result<RollingFile> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = open_append(path, mode)?;
        let size = file.metadata()?.len();
        Ok(RollingFile {
            path: path.to_owned(),
            mode,
            file,
            size,
            policy,
            mill: None,
            last_stamp_ms: 0,
        })
    }

    /// Renames the current file to its rolled name and opens a fresh one.
    fn roll(&mut self) -> io::Result<()> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut stamp = u64::try_from(now_ms)
            .unwrap_or(u64::MAX)
            .max(self.last_stamp_ms + 1);
        let mut target = rolled_name(&self.path, stamp);
        while target.exists() {
            stamp += 1;
            target = rolled_name(&self.path, stamp);
        }
        self.last_stamp_ms = stamp;
        self.file.flush()?;
        fs::rename(&self.path, &target)?;
        self.file = open_append(&self.path, self.mode)?;
        self.size = 0;
        self.wake_mill();
        Ok(())
    }

    fn wake_mill(&mut self) {
        let Some(policy) = self.policy else { return };
        if let Some(tx) = &self.mill {
            if tx.send(()).is_ok() {
                return;
            }
        }
        let (tx, rx) = mpsc::channel::<()>();
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("gojinn-log-roll".into())
            .spawn(move || {
                // Several rolls while one clean-up runs need one more pass only.
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    mill(&path, &policy, SystemTime::now());
                }
            });
        match spawned {
            Ok(_) => {
                let _ = tx.send(());
                self.mill = Some(tx);
            }
            // Without a thread, clean up inline: slower, but the files stay bounded.
            Err(_) => mill(&self.path, &policy, SystemTime::now()),
        }
    }
}

impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if let Some(p) = &self.policy {
            if self.size > 0 && self.size.saturating_add(len) > p.max_size {
                self.roll()?;
            }
        }
        self.file.write_all(buf)?;
        self.size = self.size.saturating_add(len);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)
}

/// The name and extension of `path`'s file: `access.log` → (`access`, `.log`).
fn stem_ext(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(i) if i > 0 => (name[..i].to_owned(), name[i..].to_owned()),
        _ => (name, String::new()),
    }
}

/// `<dir>/<stem>-YYYY-MM-DDTHH-MM-SS.mmm<ext>` for the unix time `ms`.
fn rolled_name(path: &Path, ms: u64) -> PathBuf {
    let (stem, ext) = stem_ext(path);
    let text = crate::json::date_time_text(ms / 1000);
    // `date_time_text` writes ASCII digits and separators only.
    let stamp = std::str::from_utf8(&text)
        .unwrap_or("1970-01-01T00:00:00")
        .replace(':', "-");
    path.with_file_name(format!("{stem}-{stamp}.{:03}{ext}", ms % 1000))
}

/// The unix time in milliseconds written in a rolled file's name, if `name` is
/// one of `path`'s rolled files (compressed or not).
fn rolled_time(path: &Path, name: &str) -> Option<u64> {
    let (stem, ext) = stem_ext(path);
    let rest = name.strip_prefix(&stem)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let stamp = rest.strip_suffix(ext.as_str())?;
    // YYYY-MM-DDTHH-MM-SS.mmm
    let b = stamp.as_bytes();
    if b.len() != 23
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b'-'
        || b[16] != b'-'
        || b[19] != b'.'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = stamp.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = crate::json::days_from_civil(y, mo, d)?;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms)
}

/// Deletes the rolled files of `path` past `keep` or older than `keep_for`,
/// and gzips the rest when asked. Failures are left for the next roll: there
/// is no log to report them to but this one.
fn mill(path: &Path, policy: &Policy, now: SystemTime) {
    let Some(dir) = path.parent() else { return };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut rolled: Vec<(u64, PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let at = rolled_time(path, &name)?;
            Some((at, e.path(), name.ends_with(".gz")))
        })
        .collect();
    // Newest first. A file and its half-written `.gz` share a time; the plain
    // file sorts first and the stray `.gz` is redone below.
    rolled.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let oldest_kept = now_ms.saturating_sub(policy.keep_for.as_millis());
    let mut kept = 0_u32;
    let mut last_time = None;
    for (at, file, gz) in rolled {
        let same_roll = last_time == Some(at);
        last_time = Some(at);
        if !same_roll {
            kept += 1;
        }
        if same_roll && gz {
            // A `.gz` beside its plain file: a compression that did not finish.
            let _ = fs::remove_file(&file);
            continue;
        }
        if kept > policy.keep || u128::from(at) < oldest_kept {
            let _ = fs::remove_file(&file);
        } else if policy.compress && !gz {
            let _ = compress(&file);
        }
    }
}

/// Gzips `file` to `file.gz`, then removes `file`.
fn compress(file: &Path) -> io::Result<()> {
    let mut gz_name = file.as_os_str().to_owned();
    gz_name.push(".gz");
    let gz_path = PathBuf::from(gz_name);
    let result = (|| {
        let mut input = File::open(file)?;
        let mode = input
            .metadata()
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
        let out = open_append(&gz_path, mode.unwrap_or(crate::DEFAULT_MODE) & 0o777)?;
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        io::copy(&mut input, &mut enc)?;
        enc.finish()?.sync_all()
    })();
    match result {
        Ok(()) => fs::remove_file(file),
        Err(e) => {
            let _ = fs::remove_file(&gz_path);
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use std::io::Read;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gojinn-log-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Every file of `dir` as (name, text), oldest rolled first, the current last.
    fn contents(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let mut text = String::new();
                if name.ends_with(".gz") {
                    flate2::read::GzDecoder::new(File::open(&p).unwrap())
                        .read_to_string(&mut text)
                        .unwrap();
                } else {
                    text = fs::read_to_string(&p).unwrap();
                }
                (name, text)
            })
            .collect();
        // `a.log` sorts after `a-2026-…`, so the current file comes last.
        out.sort_by_key(|(name, _)| name.replace(".log", "~"));
        out
    }

    fn policy(max_size: u64, keep: u32, compress: bool) -> Policy {
        Policy {
            max_size,
            keep,
            keep_for: Duration::from_secs(86_400),
            compress,
        }
    }

    #[test]
    fn names_carry_utc_time_and_parse_back() {
        let p = Path::new("/var/log/caddy/access.log");
        let name = rolled_name(p, 1_795_563_678_123);
        assert_eq!(
            name,
            Path::new("/var/log/caddy/access-2026-11-24T23-41-18.123.log")
        );
        let file = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(rolled_time(p, file), Some(1_795_563_678_123));
        assert_eq!(
            rolled_time(p, &format!("{file}.gz")),
            Some(1_795_563_678_123)
        );
        for other in [
            "access.log",
            "access-x.log",
            "error-2026-11-24T23-41-18.123.log",
            "access-2026-13-24T23-41-18.123.log",
        ] {
            assert_eq!(rolled_time(p, other), None, "{other}");
        }
        let bare = Path::new("/tmp/events");
        let name = rolled_name(bare, 0);
        assert_eq!(name, Path::new("/tmp/events-1970-01-01T00-00-00.000"));
        assert_eq!(rolled_time(bare, "events-1970-01-01T00-00-00.000"), Some(0));
    }

    #[test]
    fn writes_roll_before_the_limit_and_never_split() {
        let dir = scratch("split");
        let path = dir.join("a.log");
        let mut f = RollingFile::open(&path, 0o600, Some(policy(10, 100, false))).unwrap();
        for w in ["1234\n", "5678\n", "9\n", "0123456789abc\n", "x\n"] {
            f.write_all(w.as_bytes()).unwrap();
        }
        drop(f);
        let files = contents(&dir);
        let texts: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, vec!["1234\n5678\n", "9\n", "0123456789abc\n", "x\n"]);
        assert_eq!(files.last().unwrap().0, "a.log");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_existing_file_counts_toward_the_limit() {
        let dir = scratch("existing");
        let path = dir.join("a.log");
        fs::write(&path, "old line\n").unwrap();
        let mut f = RollingFile::open(&path, 0o600, Some(policy(12, 100, false))).unwrap();
        f.write_all(b"new line\n").unwrap();
        drop(f);
        let texts: Vec<String> = contents(&dir).into_iter().map(|(_, t)| t).collect();
        assert_eq!(texts, vec!["old line\n", "new line\n"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn mill_keeps_the_newest_and_compresses_them() {
        let dir = scratch("mill");
        let path = dir.join("a.log");
        let day = 86_400_000;
        let now = 20_000 * day;
        // Four rolled files an hour apart, one ten days old, a stranger, the current.
        for (i, at) in [
            now - 1,
            now - 3_600_000,
            now - 7_200_000,
            now - 10_800_000,
            now - 10 * day,
        ]
        .into_iter()
        .enumerate()
        {
            fs::write(rolled_name(&path, at), format!("file {i}\n")).unwrap();
        }
        fs::write(dir.join("other.log"), "not ours\n").unwrap();
        fs::write(&path, "current\n").unwrap();
        let p = Policy {
            max_size: 1,
            keep: 3,
            keep_for: Duration::from_secs(5 * 86_400),
            compress: true,
        };
        mill(&path, &p, UNIX_EPOCH + Duration::from_millis(now));
        let files = contents(&dir);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(
            names[..3]
                .iter()
                .all(|n| n.starts_with("a-") && n.ends_with(".log.gz")),
            "{names:?}"
        );
        let texts: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "file 2\n",
                "file 1\n",
                "file 0\n",
                "current\n",
                "not ours\n"
            ]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rolls_in_one_millisecond_get_distinct_ordered_names() {
        let dir = scratch("burst");
        let path = dir.join("a.log");
        let mut f = RollingFile::open(&path, 0o600, Some(policy(2, 1000, false))).unwrap();
        for i in 0..50 {
            f.write_all(format!("{i:02}\n").as_bytes()).unwrap();
        }
        drop(f);
        let texts: Vec<String> = contents(&dir).into_iter().map(|(_, t)| t).collect();
        let expected: Vec<String> = (0..50).map(|i| format!("{i:02}\n")).collect();
        assert_eq!(texts, expected);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_is_created_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let path = dir.join("sub/a.log");
        RollingFile::open(&path, 0o640, None).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // The process umask may take bits away, never add them.
        assert_eq!(mode & !0o640, 0, "{mode:o}");
        fs::remove_dir_all(dir).unwrap();
    }
}
