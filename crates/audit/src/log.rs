//! The audit log backend (`--audit-log-path` and friends): one JSON event per line, written to
//! stdout (path `-`) or to a file rotated like upstream's lumberjack logger.
//!
//! Rotation rules, all from lumberjack as kube-apiserver configures it: a write that would grow
//! the file past `--audit-log-maxsize` megabytes (0 means 100) first renames the file to
//! `<name>-<UTC time>.<ext>` (e.g. `audit-2026-01-02T03-04-05.678.log`) and starts a new one;
//! then backups beyond `--audit-log-maxbackup` (0 keeps all) and backups older than
//! `--audit-log-maxage` days (0 keeps all), judged by the time in their name, are deleted.
//! Pruning also runs once at open, so a restart with tighter limits cleans up.
//!
//! One mutex guards the file, so concurrent request handlers write whole lines and a rotation
//! never interleaves with a write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use crate::event::Event;
use crate::Error;

const MEGABYTE: u64 = 1024 * 1024;
/// lumberjack's size limit when none is configured.
const DEFAULT_MAX_SIZE_MB: u64 = 100;
/// Backup names carry the rotation time at millisecond precision, in UTC.
const BACKUP_TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";

/// A thread-safe audit log sink. Share it behind an `Arc`.
#[derive(Debug)]
pub struct LogWriter {
    sink: Mutex<Sink>,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    File(RotatingFile),
}

impl LogWriter {
    /// Opens (creating it and its directory if needed) the log at `path`, or stdout for `-`.
    /// Limits are the upstream flag values: megabytes, a count, and days; 0 leaves size at
    /// 100 MB and backups or age unlimited.
    pub fn open(
        path: impl AsRef<Path>,
        max_size_mb: u64,
        max_backups: usize,
        max_age_days: u64,
    ) -> Result<Self, Error> {
        let size_mb = if max_size_mb == 0 {
            DEFAULT_MAX_SIZE_MB
        } else {
            max_size_mb
        };
        let max_age = (max_age_days > 0)
            .then(|| i64::try_from(max_age_days).ok())
            .flatten()
            .and_then(Duration::try_days);
        Self::open_with(
            path.as_ref(),
            size_mb.saturating_mul(MEGABYTE),
            max_backups,
            max_age,
        )
    }

    /// Like [`LogWriter::open`] with the size limit in bytes, so tests can rotate tiny files.
    fn open_with(
        path: &Path,
        max_bytes: u64,
        max_backups: usize,
        max_age: Option<Duration>,
    ) -> Result<Self, Error> {
        let sink = if path == Path::new("-") {
            Sink::Stdout
        } else {
            Sink::File(RotatingFile::open(
                path.to_path_buf(),
                max_bytes,
                max_backups,
                max_age,
            )?)
        };
        Ok(LogWriter {
            sink: Mutex::new(sink),
        })
    }

    /// Appends the event as one JSON line, rotating first if the line would overflow the file.
    pub fn write(&self, event: &Event) -> Result<(), Error> {
        let mut line = serde_json::to_vec(event).map_err(Error::Encode)?;
        line.push(b'\n');
        // A panic elsewhere while holding the lock leaves the file usable; keep auditing.
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&line)
                    .and_then(|()| out.flush())
                    .map_err(|source| Error::Io {
                        op: "write",
                        path: "-".into(),
                        source,
                    })
            }
            Sink::File(file) => file.write_line(&line, Utc::now()),
        }
    }
}

#[derive(Debug)]
struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    max_backups: usize,
    max_age: Option<Duration>,
    /// Time used for the newest backup name; later names must sort after it (see `rotate`).
    last_rotation: Option<DateTime<Utc>>,
}

impl RotatingFile {
    fn open(
        path: PathBuf,
        max_bytes: u64,
        max_backups: usize,
        max_age: Option<Duration>,
    ) -> Result<Self, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| io_err("create directory", dir, source))?;
        }
        let file = open_log_file(&path, false).map_err(|source| io_err("open", &path, source))?;
        let size = file
            .metadata()
            .map_err(|source| io_err("stat", &path, source))?
            .len();
        let this = RotatingFile {
            path,
            file,
            size,
            max_bytes,
            max_backups,
            max_age,
            last_rotation: None,
        };
        this.prune(Utc::now());
        Ok(this)
    }

    fn write_line(&mut self, line: &[u8], now: DateTime<Utc>) -> Result<(), Error> {
        let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
        if len > self.max_bytes {
            return Err(Error::TooLarge {
                len,
                max: self.max_bytes,
            });
        }
        if self.size.saturating_add(len) > self.max_bytes {
            self.rotate(now)?;
        }
        self.file
            .write_all(line)
            .map_err(|source| io_err("write", &self.path, source))?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }

    fn rotate(&mut self, now: DateTime<Utc>) -> Result<(), Error> {
        // Names order backups for pruning, so a rotation in the same millisecond as the last one
        // (or after the clock stepped back) is named just after it, never before.
        let at = match self.last_rotation {
            Some(last) if now <= last => last + Duration::milliseconds(1),
            _ => now,
        };
        let backup = self.free_backup_name(at);
        fs::rename(&self.path, &backup).map_err(|source| io_err("rotate", &self.path, source))?;
        self.file =
            open_log_file(&self.path, true).map_err(|source| io_err("open", &self.path, source))?;
        self.size = 0;
        self.prune(now);
        Ok(())
    }

    /// A name already taken (by a backup of an earlier process) would be silently overwritten by
    /// the rename, so step forward until the name is free.
    fn free_backup_name(&mut self, now: DateTime<Utc>) -> PathBuf {
        let mut at = now;
        let mut candidate = self.backup_name(at);
        for _ in 0..1000 {
            if !candidate.exists() {
                break;
            }
            at += Duration::milliseconds(1);
            candidate = self.backup_name(at);
        }
        self.last_rotation = Some(at);
        candidate
    }

    fn backup_name(&self, at: DateTime<Utc>) -> PathBuf {
        let (prefix, ext) = self.prefix_and_ext();
        let name = format!("{prefix}{}{ext}", at.format(BACKUP_TIME_FORMAT));
        self.path.with_file_name(name)
    }

    /// `audit.log` becomes (`audit-`, `.log`); like Go's `filepath.Ext`, the extension starts at
    /// the last dot of the file name.
    fn prefix_and_ext(&self) -> (String, String) {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.rfind('.') {
            Some(dot) => {
                let (stem, ext) = name.split_at(dot);
                (format!("{stem}-"), ext.to_owned())
            }
            None => (format!("{name}-"), String::new()),
        }
    }

    /// Deletes backups over the count limit (oldest first) and past the age limit. Failures
    /// are ignored: a stale backup must not stop auditing, and the next rotation retries.
    fn prune(&self, now: DateTime<Utc>) {
        if self.max_backups == 0 && self.max_age.is_none() {
            return;
        }
        let mut backups = self.backups();
        backups.sort_by_key(|b| std::cmp::Reverse(b.0));
        let cutoff = self.max_age.and_then(|age| now.checked_sub_signed(age));
        for (i, (at, path)) in backups.iter().enumerate() {
            let over_count = self.max_backups > 0 && i >= self.max_backups;
            let too_old = cutoff.is_some_and(|c| *at < c);
            if over_count || too_old {
                let _ = fs::remove_file(path);
            }
        }
    }

    /// Backups of this log with the time parsed from their names; other files are left alone.
    fn backups(&self) -> Vec<(DateTime<Utc>, PathBuf)> {
        let dir = match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => dir.to_path_buf(),
            None => PathBuf::from("."),
        };
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let (prefix, ext) = self.prefix_and_ext();
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                // lumberjack also prunes the compressed form of a backup.
                let plain = name.strip_suffix(".gz").unwrap_or(&name);
                let stamp = plain.strip_prefix(&prefix)?.strip_suffix(ext.as_str())?;
                let at = NaiveDateTime::parse_from_str(stamp, BACKUP_TIME_FORMAT).ok()?;
                Some((at.and_utc(), e.path()))
            })
            .collect()
    }
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// Audit logs hold request bodies, secrets included, so only the apiserver's user may read them.
fn open_log_file(path: &Path, truncate: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true);
    if truncate {
        opts.write(true).truncate(true);
    } else {
        opts.append(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Level, Stage};
    use chrono::TimeZone;
    use std::sync::Arc;

    fn event(id: usize) -> Event {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default();
        let mut ev = Event::new(format!("id-{id:04}"), Level::Metadata, at);
        ev.set_stage(Stage::ResponseComplete, at);
        ev.verb = "get".into();
        ev
    }

    fn line_len() -> u64 {
        serde_json::to_vec(&event(0)).map_or(0, |v| v.len() as u64 + 1)
    }

    fn read_lines(path: &Path) -> Vec<Event> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn backup_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "audit.log")
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn tempdir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    #[test]
    fn writes_one_json_event_per_line_and_appends_on_reopen() {
        let dir = tempdir();
        let path = dir.path().join("nested/dir/audit.log");
        for round in 0..2 {
            let log = LogWriter::open(&path, 0, 0, 0);
            let Ok(log) = log else {
                panic!("open: {log:?}");
            };
            for i in 0..3 {
                assert!(log.write(&event(round * 3 + i)).is_ok());
            }
        }
        let events = read_lines(&path);
        let ids: Vec<&str> = events.iter().map(|e| e.audit_id.as_str()).collect();
        assert_eq!(
            ids,
            ["id-0000", "id-0001", "id-0002", "id-0003", "id-0004", "id-0005"]
        );
        let text = fs::read_to_string(&path).unwrap_or_default();
        assert!(text.starts_with(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","#));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_max_backups() {
        let dir = tempdir();
        let path = dir.path().join("audit.log");
        // Room for exactly two lines per file.
        let log = LogWriter::open_with(&path, line_len() * 2, 3, None);
        let Ok(log) = log else {
            panic!("open: {log:?}");
        };
        for i in 0..11 {
            assert!(log.write(&event(i)).is_ok(), "write {i}");
        }
        // 11 lines in files of 2: 5 rotations, the current file holds the last line.
        let current: Vec<String> = read_lines(&path).into_iter().map(|e| e.audit_id).collect();
        assert_eq!(current, ["id-0010"]);

        let names = backup_names(dir.path());
        assert_eq!(names.len(), 3, "{names:?}");
        for name in &names {
            let stamp = name
                .strip_prefix("audit-")
                .and_then(|s| s.strip_suffix(".log"))
                .unwrap_or_default();
            assert!(
                NaiveDateTime::parse_from_str(stamp, BACKUP_TIME_FORMAT).is_ok(),
                "bad backup name {name}"
            );
            assert_eq!(stamp.len(), "2026-01-02T03-04-05.678".len(), "{name}");
        }
        // The newest backups survive: names sort by time, so they hold lines 4..=9 in order.
        let kept: Vec<String> = names
            .iter()
            .flat_map(|n| read_lines(&dir.path().join(n)))
            .map(|e| e.audit_id)
            .collect();
        assert_eq!(
            kept,
            ["id-0004", "id-0005", "id-0006", "id-0007", "id-0008", "id-0009"]
        );
    }

    #[test]
    fn prunes_backups_by_age_and_leaves_other_files() {
        let dir = tempdir();
        let path = dir.path().join("audit.log");
        let recent = (Utc::now() - Duration::hours(1)).format(BACKUP_TIME_FORMAT);
        let files = [
            "audit-2020-01-02T03-04-05.678.log".to_owned(),
            "audit-2020-01-02T03-04-05.679.log.gz".to_owned(),
            format!("audit-{recent}.log"),
            "audit-notatime.log".to_owned(),
            "other-2020-01-02T03-04-05.678.log".to_owned(),
        ];
        for f in &files {
            assert!(fs::write(dir.path().join(f), b"x\n").is_ok());
        }
        let log = LogWriter::open_with(&path, line_len(), 0, Duration::try_days(7));
        let Ok(log) = log else {
            panic!("open: {log:?}");
        };
        // Pruning at open removed only the old backups of this log.
        let mut want = vec![
            format!("audit-{recent}.log"),
            "audit-notatime.log".to_owned(),
            "other-2020-01-02T03-04-05.678.log".to_owned(),
        ];
        want.sort();
        assert_eq!(backup_names(dir.path()), want);

        // A rotation adds a backup and keeps everything younger than the limit.
        assert!(log.write(&event(0)).is_ok());
        assert!(log.write(&event(1)).is_ok());
        assert_eq!(backup_names(dir.path()).len(), 4);
    }

    #[test]
    fn zero_limits_mean_upstream_defaults() {
        let dir = tempdir();
        let path = dir.path().join("audit.log");
        let log = LogWriter::open(&path, 0, 0, 0);
        let Ok(log) = log else {
            panic!("open: {log:?}");
        };
        let sink = log.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &*sink {
            Sink::File(f) => {
                assert_eq!(f.max_bytes, 100 * MEGABYTE);
                assert_eq!(f.max_backups, 0);
                assert_eq!(f.max_age, None);
            }
            Sink::Stdout => panic!("expected a file sink"),
        }
    }

    #[test]
    fn oversized_event_is_refused() {
        let dir = tempdir();
        let path = dir.path().join("audit.log");
        let log = LogWriter::open_with(&path, 10, 0, None);
        let Ok(log) = log else {
            panic!("open: {log:?}");
        };
        let err = log.write(&event(0)).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("exceeds maximum file size 10")),
            "{err:?}"
        );
        assert_eq!(backup_names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn concurrent_writers_produce_whole_lines() {
        let dir = tempdir();
        let path = dir.path().join("audit.log");
        let log = LogWriter::open_with(&path, line_len() * 5, 0, None);
        let Ok(log) = log.map(Arc::new) else {
            panic!("open failed");
        };
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || (0..25).all(|i| log.write(&event(t * 100 + i)).is_ok()))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().ok(), Some(true));
        }
        let mut total = read_lines(&path).len();
        for name in backup_names(dir.path()) {
            total += read_lines(&dir.path().join(name)).len();
        }
        assert_eq!(total, 100);
    }

    #[test]
    fn dash_means_stdout() {
        let log = LogWriter::open("-", 1, 1, 1);
        let Ok(log) = log else {
            panic!("open: {log:?}");
        };
        assert!(log.write(&event(0)).is_ok());
    }

    #[test]
    fn backup_name_splits_extension_like_go() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default()
            + Duration::milliseconds(678);
        let cases = [
            (
                "/var/log/audit.log",
                "/var/log/audit-2026-01-02T03-04-05.678.log",
            ),
            ("/var/log/audit", "/var/log/audit-2026-01-02T03-04-05.678"),
            (
                "/var/log/kube.audit.json",
                "/var/log/kube.audit-2026-01-02T03-04-05.678.json",
            ),
        ];
        let dir = tempdir();
        for (path, want) in cases {
            let f = RotatingFile::open(dir.path().join("x.log"), 1, 0, None);
            let Ok(mut f) = f else {
                panic!("open: {f:?}");
            };
            f.path = PathBuf::from(path);
            assert_eq!(f.backup_name(at), PathBuf::from(want));
        }
    }
}
