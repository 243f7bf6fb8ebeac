//! A ledger that rolls: one file per UTC hour or day (and per size), in a directory.
//!
//! Files are named `sagemeter-YYYY-MM-DDTHH.jsonl` (`HH` is `00` for daily files);
//! a file that reaches the size limit is followed by `sagemeter-YYYY-MM-DDTHH.1.jsonl`,
//! `.2`, and so on. Which file a line goes to is decided when the writer writes it
//! (by the ledger's clock), so a call that starts at 10:59:59.9 and ends after
//! 11:00 may be in the 11:00 file; its `at` is when it started, as always.
//! Each file gets the definitions its receipts refer to (ledger format 2): each
//! file reads on its own.

use super::LedgerError;
use super::compact::Dictionary;
use super::file::{FileTarget, JSONL_DIR_LOCK, lock_dir, open_ledger_file};
use super::writer::{LineMeta, Target, WriteFailure};
use aws_smithy_async::time::SharedTimeSource;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How often a rolling ledger starts a new file (besides its size limit).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollEvery {
    /// One file per UTC hour (the default).
    Hour,
    /// One file per UTC day.
    Day,
}

/// The hour or day a file covers, and its place among that period's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FileName {
    day: NaiveDate,
    hour: u32,
    /// 0 for the period's first file, then 1, 2, ... after size limits.
    pub(crate) seq: u32,
}

impl FileName {
    /// The first name of the period of `at`.
    pub(crate) fn of(at: DateTime<Utc>, every: RollEvery) -> FileName {
        FileName {
            day: at.date_naive(),
            hour: match every {
                RollEvery::Hour => at.hour(),
                RollEvery::Day => 0,
            },
            seq: 0,
        }
    }

    pub(crate) fn same_period(&self, other: &FileName) -> bool {
        self.day == other.day && self.hour == other.hour
    }

    fn file_name(&self) -> String {
        self.with_extension("jsonl")
    }

    /// `sagemeter-YYYY-MM-DDTHH[.N].<extension>` (the Parquet ledger's files too).
    pub(crate) fn with_extension(&self, extension: &str) -> String {
        let (y, m, d) = (self.day.year(), self.day.month(), self.day.day());
        match self.seq {
            0 => format!(
                "sagemeter-{y:04}-{m:02}-{d:02}T{:02}.{extension}",
                self.hour
            ),
            n => format!(
                "sagemeter-{y:04}-{m:02}-{d:02}T{:02}.{n}.{extension}",
                self.hour
            ),
        }
    }

    /// Reads a name this module writes; `None` for any other file.
    pub(crate) fn parse(name: &str) -> Option<FileName> {
        Self::parse_with_extension(name, "jsonl")
    }

    /// Reads the name of a rolling ledger's file of either format (`.jsonl`, or
    /// `.parquet` as the Parquet ledger names its files).
    #[cfg(feature = "account")]
    pub(crate) fn parse_any(name: &str) -> Option<FileName> {
        Self::parse(name).or_else(|| Self::parse_with_extension(name, "parquet"))
    }

    /// Reads a name [`with_extension`](Self::with_extension) writes.
    pub(crate) fn parse_with_extension(name: &str, extension: &str) -> Option<FileName> {
        let stem = name
            .strip_prefix("sagemeter-")?
            .strip_suffix(extension)?
            .strip_suffix('.')?;
        let (stamp, seq) = match stem.split_once('.') {
            Some((stamp, seq)) => (stamp, seq.parse().ok().filter(|n: &u32| *n > 0)?),
            None => (stem, 0),
        };
        let (date, hour) = stamp.split_once('T')?;
        let hour: u32 = hour.parse().ok().filter(|h| *h < 24 && hour.len() == 2)?;
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        Some(FileName { day, hour, seq })
    }
}

/// The rolling ledger (its directory) that `path` is a file of, when the file's
/// name is one a rolling ledger writes (`sagemeter-YYYY-MM-DDTHH[.N].jsonl`, or
/// `.parquet`); `None` for any other file. A bare file name is of the current
/// directory, `.`.
#[cfg(feature = "account")]
pub(crate) fn rolling_dir_of(path: &Path) -> Option<&Path> {
    FileName::parse_any(path.file_name()?.to_str()?)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => Some(dir),
        _ => Some(Path::new(".")),
    }
}

/// The files of a rolling ledger in `dir`, oldest first.
pub(crate) fn rolled_files(dir: &Path) -> io::Result<Vec<(FileName, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(FileName::parse) else {
            continue;
        };
        if is_listed_file(entry.file_type())? {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Whether a rolled file's directory entry, of the type given, is listed: a file
/// is; one removed since the directory was read (retention, on a file system
/// that does not give entries' types, so that they are looked up one by one) is
/// not there to list; any other error finding its type is the listing's.
fn is_listed_file(file_type: io::Result<std::fs::FileType>) -> io::Result<bool> {
    match file_type {
        Ok(file_type) => Ok(file_type.is_file()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a rolling ledger needs to pick and open its files.
pub(crate) struct Rolling {
    pub(crate) dir: PathBuf,
    pub(crate) every: RollEvery,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) keep_files: Option<usize>,
    pub(crate) time: SharedTimeSource,
}

/// Lines go to the file of the current period; a new period or the size limit
/// opens the next file, and the oldest beyond the retention count are removed.
///
/// The file rolled away from is synced (`sync_data`) when it has lines written
/// since its last sync, before it is closed: [`sync`](Target::sync) reaches only
/// the current file, and a ledger's `sync()` vouches for every line written
/// before it. A failure of that sync is returned by the next `sync`.
pub(crate) struct RollingTarget {
    rolling: Rolling,
    dict: Arc<Dictionary>,
    current: Option<(FileName, FileTarget)>,
    /// The first failure to sync a file rolled away from, for the next `sync`.
    sync_error: Option<io::Error>,
    hooks: RollHooks,
    /// The directory's lock file, locked while this target lives: one writer
    /// per rolling ledger.
    _lock: std::fs::File,
}

/// Seams for tests: none in a ledger's own target.
#[derive(Clone, Default)]
pub(crate) struct RollHooks {
    /// Called with a file's path before it is opened; an error fails the open
    /// (and so the roll) as one from the OS would.
    before_open: Option<FileHook>,
    /// Called with a file's path before its data is synced; an error fails the
    /// sync as one from the OS would.
    before_sync: Option<FileHook>,
}

/// A hook of [`RollHooks`]: called with a file's path, it may fail the operation.
type FileHook = Arc<dyn Fn(&Path) -> io::Result<()> + Send + Sync>;

impl RollingTarget {
    /// Makes the directory (0700) if needed, locks it ([`LedgerError::Locked`]
    /// when another writer has it) and opens the current period's file
    /// (repairing a torn tail left by a crash), so that a bad directory fails now.
    pub(crate) fn open(
        rolling: Rolling,
        dict: Arc<Dictionary>,
    ) -> Result<RollingTarget, LedgerError> {
        make_dir(&rolling.dir)?;
        let lock = lock_dir(&rolling.dir, JSONL_DIR_LOCK)?;
        let mut target = RollingTarget {
            _lock: lock,
            rolling,
            dict,
            current: None,
            sync_error: None,
            hooks: RollHooks::default(),
        };
        let now = target.now();
        target.roll(now, 0).map_err(|source| LedgerError::Open {
            path: target.rolling.dir.clone(),
            source,
        })?;
        Ok(target)
    }

    fn now(&self) -> FileName {
        FileName::of(self.rolling.time.now().into(), self.rolling.every)
    }

    /// Opens the file for `period`: the last existing one of that period if it has
    /// room for `need` more bytes, else the next. The last one is opened first,
    /// repairing a torn tail a crash left (`open_ledger_file`), and judged by its
    /// length after the repair: the zeros of a power loss or a torn fragment do
    /// not make it full, and a file that is full once repaired is still repaired
    /// (and synced, `sync_repair`) before the next one starts, so that no file is
    /// left torn for ever.
    fn roll(&mut self, period: FileName, need: u64) -> io::Result<()> {
        let existing = rolled_files(&self.rolling.dir)?;
        let last = existing
            .iter()
            .rev()
            .find(|(name, _)| name.same_period(&period));
        let mut name = last.map_or(period, |(n, _)| *n);
        let mut opened = None;
        if let Some((_, path)) = last {
            let len = match &self.current {
                // The file being written (it filled up): open already, and
                // repaired when it was opened.
                Some((current, file)) if *current == name => file.len(),
                _ => {
                    let (file, len, created) = self.open_file(path)?;
                    opened = Some((file, len, created));
                    len
                }
            };
            if self.full(len, need) {
                if let Some((file, ..)) = opened.take() {
                    sync_repair(path, &file);
                }
                // A file named with the last number there is (put there by
                // hand) leaves no next one: said, never wrapped onto the first.
                name.seq = name.seq.checked_add(1).ok_or_else(|| {
                    io::Error::other(format!(
                        "{} is full and is numbered {}, the last number a ledger file can \
                         have: move it away",
                        path.display(),
                        u32::MAX
                    ))
                })?;
            } else if opened.is_none() {
                // The file being written has room: nothing to roll.
                return Ok(());
            }
        }
        let path = self.rolling.dir.join(name.file_name());
        let (file, len, created) = match opened {
            Some(opened) => opened,
            None => self.open_file(&path)?,
        };
        let outgoing = self.current.replace((
            name,
            FileTarget::new(path, file, len, created, self.dict.clone()),
        ));
        if let Some((old, mut file)) = outgoing
            && file.unsynced()
        {
            // Its lines were reported written; once it is closed no `sync`
            // reaches them, so they are made durable now.
            let old_path = self.rolling.dir.join(old.file_name());
            if let Err(e) = sync_file(&self.hooks, &old_path, &mut file) {
                tracing::warn!(target: "sagemeter", path = %old_path.display(), error = %e,
                    "rolling ledger: could not sync the file it rolled away from; \
                     the next sync reports it");
                self.sync_error.get_or_insert(e);
            }
        }
        self.remove_old(&name);
        Ok(())
    }

    /// Opens (or creates) the ledger file at `path`, repairing a torn tail;
    /// returns it, its length after the repair and whether this created it.
    fn open_file(&self, path: &Path) -> io::Result<(std::fs::File, u64, bool)> {
        if let Some(before_open) = &self.hooks.before_open {
            before_open(path)?;
        }
        open_ledger_file(path).map_err(|e| match e {
            LedgerError::Open { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })
    }

    /// Whether a file of `len` bytes has no room for `need` more (a file always
    /// takes at least one line).
    fn full(&self, len: u64, need: u64) -> bool {
        self.rolling
            .max_bytes
            .is_some_and(|max| len > 0 && len.saturating_add(need) > max)
    }

    /// Removes the oldest files beyond the retention count, never `current`.
    ///
    /// Only files named at or before `current` are counted (and removed): a file
    /// named later was written while the clock was ahead (it was stepped back),
    /// and counting it as the newest would remove the files being written now.
    /// It counts once the clock reaches its period (and the writer reopens it).
    fn remove_old(&self, current: &FileName) {
        let Some(keep) = self.rolling.keep_files else {
            return;
        };
        let Ok(mut files) = rolled_files(&self.rolling.dir) else {
            return;
        };
        files.retain(|(name, _)| name <= current);
        let excess = files.len().saturating_sub(keep);
        for (name, path) in files.into_iter().take(excess) {
            if name == *current {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(target: "sagemeter", path = %path.display(),
                    "rolling ledger: removed a file beyond the retention count"),
                Err(e) => tracing::warn!(target: "sagemeter", path = %path.display(), error = %e,
                    "rolling ledger: could not remove a file beyond the retention count"),
            }
        }
    }
}

impl Target for RollingTarget {
    /// Lines go to the current file until one does not fit, then to the next;
    /// when a roll or a write fails part-way through, the lines written before
    /// it (to the files rolled away from, or to the current one) are said to
    /// be written.
    fn write_lines(&mut self, bytes: &[u8], lines: &[LineMeta]) -> Result<(), WriteFailure> {
        let period = self.now();
        let (mut rest, mut rest_lines) = (bytes, lines);
        // Lines of `lines` written whole so far.
        let mut done = 0;
        let failed = |done: usize| {
            move |source: io::Error| WriteFailure {
                written: done,
                source,
            }
        };
        while !rest_lines.is_empty() {
            let stale = match &self.current {
                Some((name, _)) => !name.same_period(&period),
                None => true,
            };
            if stale {
                self.roll(period, 0).map_err(failed(done))?;
            }
            let Some((_, file)) = &mut self.current else {
                return Err(failed(done)(io::Error::other("no ledger file open")));
            };
            // As many whole lines as fit under the size limit (at least one).
            let take = match self.rolling.max_bytes {
                None => rest_lines.len(),
                Some(max) => {
                    let room = max.saturating_sub(file.len());
                    fitting_lines(rest_lines, room, file.len() == 0)
                }
            };
            if take == 0 {
                let name = self.current.as_ref().map_or(period, |(n, _)| *n);
                self.roll(name, rest_lines[0].len as u64)
                    .map_err(failed(done))?;
                continue;
            }
            let (now_lines, later_lines) = rest_lines.split_at(take);
            let (now, later) = rest.split_at(now_lines.iter().map(|l| l.len).sum());
            if let Some((_, file)) = &mut self.current {
                file.write_lines(now, now_lines).map_err(|e| WriteFailure {
                    written: done + e.written,
                    source: e.source,
                })?;
            }
            done += take;
            (rest, rest_lines) = (later, later_lines);
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let current = match &mut self.current {
            Some((name, file)) => {
                let path = self.rolling.dir.join(name.file_name());
                sync_file(&self.hooks, &path, file)
            }
            None => Ok(()),
        };
        match self.sync_error.take() {
            Some(e) => Err(e),
            None => current,
        }
    }
}

/// Syncs the data of `file` at `path`, a full file opened only to repair its
/// torn tail and closed again: no `sync` reaches it later, and unsynced, its cut
/// could be undone by a power loss, bringing the torn tail back. Best effort: a
/// failure is a WARN, not the next `sync`'s error, as the lines at stake are an
/// earlier writer's (and a torn tail is skipped and reported by every reader).
fn sync_repair(path: &Path, file: &std::fs::File) {
    if let Err(e) = file.sync_data() {
        tracing::warn!(target: "sagemeter", path = %path.display(), error = %e,
            "rolling ledger: could not sync the repair of a full file's torn tail; \
             a power loss may bring the torn tail back (readers skip and report it)");
    }
}

/// Syncs the data of `file` at `path`.
fn sync_file(hooks: &RollHooks, path: &Path, file: &mut FileTarget) -> io::Result<()> {
    if let Some(before_sync) = &hooks.before_sync {
        before_sync(path)?;
    }
    file.sync()
}

/// How many whole lines from the start of `lines` fit in `room` bytes; at least
/// one when `empty` (a line longer than the limit gets a file of its own).
fn fitting_lines(lines: &[LineMeta], room: u64, empty: bool) -> usize {
    let mut used = 0u64;
    let mut n = 0;
    for line in lines {
        used += line.len as u64;
        if used > room {
            break;
        }
        n += 1;
    }
    if n == 0 && empty && !lines.is_empty() {
        n = 1;
    }
    n
}

/// Creates the directory 0700 if it does not exist, its entry (and each new
/// level's) made durable; refuses one that others can read or enter (as for
/// ledger files, its mode is not changed for you).
pub(crate) fn make_dir(dir: &Path) -> Result<(), LedgerError> {
    make_dir_syncing(dir, &super::file::fsync_parent_dir)
}

/// [`make_dir`], `sync_parent` called with each directory it created (the top
/// one first), once it is there: a seam for tests. Its failure fails this
/// (with [`sync_entry`]'s rule for a parent that cannot be read), and the
/// levels it created are removed, so that the next open makes them again and
/// tries again, rather than finding them there and trusting their entries.
///
/// [`sync_entry`]: super::file::sync_entry
fn make_dir_syncing(
    dir: &Path,
    sync_parent: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<(), LedgerError> {
    let open_err = |source| LedgerError::Open {
        path: dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let existed = dir.is_dir();
    // The levels missing, the top one first: each new directory's entry is in
    // its parent, made durable only by fsyncing the parent.
    let mut missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|level| {
            !level.as_os_str().is_empty()
                && matches!(std::fs::symlink_metadata(level), Err(e) if e.kind() == io::ErrorKind::NotFound)
        })
        .collect();
    missing.reverse();
    // Made one by one, so that a level another opener made meanwhile (two
    // ledgers opened at once under a new parent) is not taken for this call's,
    // to be synced or removed.
    let mut created: Vec<&Path> = Vec::with_capacity(missing.len());
    let mut one_level = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut one_level, 0o700);
    for level in missing {
        match one_level.create(level) {
            Ok(()) => created.push(level),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_err(e)),
        }
    }
    // There now (a directory, not a file of that name), whoever made it.
    builder.create(dir).map_err(open_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir).map_err(open_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if !existed && mode != 0o700 {
            // The umask may have taken bits away; make it exactly 0700.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(open_err)?;
        } else if existed && mode & 0o077 != 0 {
            return Err(LedgerError::DirectoryPermissions {
                path: dir.to_owned(),
                mode,
            });
        } else if existed {
            super::file::check_owner(&meta, dir)?;
        }
    }
    #[cfg(not(unix))]
    let _ = existed;
    // Without it, a power loss after a `sync()` that said Ok may take the new
    // directory, and every file in it, away.
    for level in &created {
        if let Err(e) = super::file::sync_entry(level, sync_parent) {
            // Deepest first: each is empty once the one below it is gone.
            for made in created.iter().rev() {
                let _ = std::fs::remove_dir(made);
            }
            return Err(open_err(e));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use aws_smithy_async::test_util::ManualTimeSource;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, SystemTime};

    /// A rolled file that retention removed between the directory's read and the
    /// look-up of its type is not listed; any other error is the listing's, so
    /// that `report` does not leave a directory's receipts out without a word.
    #[test]
    fn a_file_removed_while_listed_is_left_out_and_other_errors_are_passed_on() {
        let kind = |k: io::ErrorKind| Err::<std::fs::FileType, _>(io::Error::from(k));
        assert!(!is_listed_file(kind(io::ErrorKind::NotFound)).unwrap());
        let denied = is_listed_file(kind(io::ErrorKind::PermissionDenied)).unwrap_err();
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(is_listed_file(std::fs::metadata(&file).map(|m| m.file_type())).unwrap());
        assert!(!is_listed_file(std::fs::metadata(dir.path()).map(|m| m.file_type())).unwrap());
    }

    /// A clock set by hand that, unlike `ManualTimeSource`, can be set back.
    #[derive(Debug, Clone)]
    pub(in crate::ledger) struct SteppedClock(Arc<Mutex<SystemTime>>);

    /// Receipts a1, b1, c1 (0.0042 USD) and d1, each with the time a clock 3
    /// hours fast, then stepped back, shows when it is written: 09:30, 10:30,
    /// 07:30 and 08:00:01 on 2026-12-02.
    pub(in crate::ledger) fn written_across_a_step_back()
    -> Vec<(&'static str, crate::billing::Cost)> {
        use crate::ledger::writer::tests::cost;
        let mut c1 = cost("c1");
        c1.cost_usd = "0.0042".parse().unwrap();
        vec![
            ("2026-12-02T09:30:00Z", cost("a1")),
            ("2026-12-02T10:30:00Z", cost("b1")),
            ("2026-12-02T07:30:00Z", c1),
            ("2026-12-02T08:00:01Z", cost("d1")),
        ]
    }

    impl SteppedClock {
        /// A clock showing `now` (RFC 3339).
        pub(in crate::ledger) fn at(now: &str) -> SteppedClock {
            let clock = SteppedClock(Arc::new(Mutex::new(SystemTime::UNIX_EPOCH)));
            clock.set(now);
            clock
        }

        /// Sets it to `now` (RFC 3339), forward or back.
        pub(in crate::ledger) fn set(&self, now: &str) {
            let now: DateTime<Utc> = now.parse().unwrap();
            *self.0.lock().unwrap() = now.into();
        }
    }

    impl aws_smithy_async::time::TimeSource for SteppedClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    /// A rolling ledger's target in `dir` (made 0700) at 2026-12-02T07:30Z, files
    /// of at most `max_bytes`, and its clock.
    fn target(dir: &Path, max_bytes: u64) -> (RollingTarget, ManualTimeSource) {
        let (opened, clock) = opened(dir, max_bytes);
        (opened.unwrap(), clock)
    }

    /// The opening of [`target`]'s rolling ledger, as it ended, and its clock.
    fn opened(
        dir: &Path,
        max_bytes: u64,
    ) -> (Result<RollingTarget, LedgerError>, ManualTimeSource) {
        let at: DateTime<Utc> = "2026-12-02T07:30:00Z".parse().unwrap();
        let clock = ManualTimeSource::new(SystemTime::from(at));
        let opened = RollingTarget::open(
            Rolling {
                dir: dir.to_owned(),
                every: RollEvery::Hour,
                max_bytes: Some(max_bytes),
                keep_files: None,
                time: SharedTimeSource::new(clock.clone()),
            },
            Arc::new(Dictionary::default()),
        );
        (opened, clock)
    }

    use crate::ledger::writer::test_lines as lines;

    /// A rolling ledger opened on a directory that does not exist yet makes it
    /// and the missing levels above it, and fsyncs each new level's parent:
    /// otherwise a power loss after a `sync()` that said Ok may take the
    /// directory, and every file in it, away.
    #[test]
    fn a_new_directory_and_each_new_level_above_it_have_their_entries_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("b");
        let synced = Mutex::new(Vec::new());
        let record = |created: &Path| {
            synced
                .lock()
                .unwrap()
                .push(created.parent().unwrap().to_owned());
            Ok(())
        };
        make_dir_syncing(&dir, &record).unwrap();
        assert!(dir.is_dir());
        // a's entry is in the temporary directory, b's in a.
        assert_eq!(
            *synced.lock().unwrap(),
            [tmp.path().to_owned(), tmp.path().join("a")]
        );
        // A directory that is there already has nothing new to sync.
        synced.lock().unwrap().clear();
        make_dir_syncing(&dir, &record).unwrap();
        assert!(synced.lock().unwrap().is_empty());
        // A new level whose entry cannot be made durable fails the open, not
        // an Ok that a power loss may undo, and the levels it made are gone:
        // the next open makes them again and syncs their entries, rather than
        // finding them there and trusting them.
        let deeper = dir.join("c").join("d");
        let failing = |_: &Path| Err(io::Error::from_raw_os_error(libc::EIO));
        let err = make_dir_syncing(&deeper, &failing).unwrap_err();
        assert!(
            matches!(&err, LedgerError::Open { source, .. }
            if source.raw_os_error() == Some(libc::EIO)),
            "{err:?}"
        );
        assert!(!dir.join("c").exists());
        synced.lock().unwrap().clear();
        make_dir_syncing(&deeper, &record).unwrap();
        assert_eq!(*synced.lock().unwrap(), [dir.clone(), dir.join("c")]);
        // A parent that cannot be opened for reading (a write-and-enter-only
        // drop directory) cannot be fsynced by any means: not an error.
        let unreadable = |_: &Path| Err(io::Error::from_raw_os_error(libc::EACCES));
        make_dir_syncing(&dir.join("e"), &unreadable).unwrap();
        assert!(dir.join("e").is_dir());
    }

    /// The names of the files synced, in order, as the hook saw them.
    fn record_syncs(target: &mut RollingTarget) -> Arc<Mutex<Vec<String>>> {
        let synced = Arc::new(Mutex::new(Vec::new()));
        let seen = synced.clone();
        target.hooks.before_sync = Some(Arc::new(move |path: &Path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            seen.lock().unwrap().push(name);
            Ok(())
        }));
        synced
    }

    #[test]
    fn the_file_rolled_away_from_is_synced_when_it_has_unsynced_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let (mut target, clock) = target(&dir, 6);
        let synced = record_syncs(&mut target);
        let (a, a_lines) = lines('a', 2);
        target.write_lines(&a, &a_lines).unwrap();
        assert!(synced.lock().unwrap().is_empty());

        // The size limit: `b` goes to the next file, and the full one is synced
        // before it is closed (no `sync` reaches it after).
        let (b, b_lines) = lines('b', 2);
        target.write_lines(&b, &b_lines).unwrap();
        assert_eq!(*synced.lock().unwrap(), ["sagemeter-2026-12-02T07.jsonl"]);
        target.sync().unwrap();
        assert_eq!(
            *synced.lock().unwrap(),
            [
                "sagemeter-2026-12-02T07.jsonl",
                "sagemeter-2026-12-02T07.1.jsonl"
            ]
        );

        // A new hour: the file rolled away from has nothing unsynced (the sync
        // above), so it is not synced again; `c`'s file is, by the next sync.
        clock.advance(Duration::from_secs(3600));
        let (c, c_lines) = lines('c', 1);
        target.write_lines(&c, &c_lines).unwrap();
        assert_eq!(synced.lock().unwrap().len(), 2);
        target.sync().unwrap();
        assert_eq!(
            synced.lock().unwrap().last().unwrap(),
            "sagemeter-2026-12-02T08.jsonl"
        );
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("sagemeter-2026-12-02T07.jsonl"), "a1\na2\n");
        assert_eq!(read("sagemeter-2026-12-02T07.1.jsonl"), "b1\nb2\n");
        assert_eq!(read("sagemeter-2026-12-02T08.jsonl"), "c1\n");
    }

    #[test]
    fn a_failed_sync_of_the_file_rolled_away_from_is_reported_by_the_next_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut target, _clock) = target(&tmp.path().join("ledger"), 6);
        let (a, a_lines) = lines('a', 2);
        target.write_lines(&a, &a_lines).unwrap();
        target.hooks.before_sync = Some(Arc::new(|path: &Path| {
            match path.ends_with("sagemeter-2026-12-02T07.jsonl") {
                true => Err(io::Error::other("disk on fire")),
                false => Ok(()),
            }
        }));
        // The roll itself goes on: `b` is written to the next file.
        let (b, b_lines) = lines('b', 2);
        target.write_lines(&b, &b_lines).unwrap();
        let err = target.sync().unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        // Reported once; the next sync is of the current file only.
        target.sync().unwrap();
    }

    /// A clock 3 hours fast, stepped back: `keep_files(2)` keeps the files the
    /// clock has reached, and never removes the file just written for one named
    /// later. Hourly files: a1 at 09:30 (T09), b1 at 10:30 (T10); NTP steps the
    /// clock back to 07:30: c1 goes to T07, and at 08:00:01 d1 to T08. Of the
    /// files at or before T08 there are 2 (T07, T08): none is beyond 2, so c1,
    /// written 30 s before, stays; T09 and T10 are not counted yet (they are
    /// reopened when the clock reaches 09:00 and 10:00).
    #[tokio::test]
    async fn a_clock_stepped_back_keeps_the_files_it_writes_not_the_ones_named_later() {
        use crate::ledger::JsonlLedger;
        use crate::ledger::writer::tests::cost;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let clock = SteppedClock::at("2026-12-02T09:30:00Z");
        let ledger = JsonlLedger::rolling(&dir)
            .keep_files(2)
            .time_source(SharedTimeSource::new(clock.clone()))
            .open()
            .unwrap();
        // A line's file is picked by the clock when the writer writes it: each
        // flush writes the receipt before the clock moves on.
        for (now, receipt) in written_across_a_step_back() {
            clock.set(now);
            ledger.try_record(&receipt).unwrap();
            ledger.flush().await.unwrap();
        }
        ledger.shutdown().await.unwrap();
        let file = |hour: &str| dir.join(format!("sagemeter-2026-12-02T{hour}.jsonl"));
        for hour in ["07", "08", "09", "10"] {
            assert!(file(hour).exists(), "T{hour} removed");
        }
        let read = crate::ledger::read_all(file("07")).unwrap().records;
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].call_id, "c1");
        assert_eq!(read[0].cost_usd, "0.0042".parse().unwrap());

        // At 10:00:01 the clock has reached every file: T10 is reopened (for
        // e1), and the files at or before it are T07 to T10, 2 beyond 2: the
        // oldest two, T07 and T08, are removed.
        clock.set("2026-12-02T10:00:01Z");
        let ledger = JsonlLedger::rolling(&dir)
            .keep_files(2)
            .time_source(SharedTimeSource::new(clock.clone()))
            .open()
            .unwrap();
        ledger.try_record(&cost("e1")).unwrap();
        ledger.shutdown().await.unwrap();
        let kept: Vec<bool> = ["07", "08", "09", "10"]
            .iter()
            .map(|hour| file(hour).exists())
            .collect();
        assert_eq!(kept, [false, false, true, true]);
    }

    /// A rolling ledger's current file removed under the writer (an `rm`) is
    /// made again for the period before the next write: b1 is in the period's
    /// file, with the definitions it needs.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_current_file_removed_under_the_writer_is_made_again_for_its_period() {
        use crate::ledger::JsonlLedger;
        use crate::ledger::writer::tests::cost;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let clock = SteppedClock::at("2026-12-02T07:30:00Z");
        let ledger = JsonlLedger::rolling(&dir)
            .time_source(SharedTimeSource::new(clock.clone()))
            .open()
            .unwrap();
        ledger.try_record(&cost("a1")).unwrap();
        ledger.flush().await.unwrap();
        let file = dir.join("sagemeter-2026-12-02T07.jsonl");
        std::fs::remove_file(&file).unwrap();

        ledger.try_record(&cost("b1")).unwrap();
        ledger.sync().await.unwrap();
        let read = crate::ledger::read_all(&file).unwrap().records;
        let ids: Vec<&str> = read.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["b1"]);
        ledger.shutdown().await.unwrap();
    }

    #[test]
    fn file_names_read_back_and_sort_by_period_then_sequence() {
        let at: DateTime<Utc> = "2026-12-02T07:30:00Z".parse().unwrap();
        let hour = FileName::of(at, RollEvery::Hour);
        assert_eq!(hour.file_name(), "sagemeter-2026-12-02T07.jsonl");
        let second = FileName { seq: 2, ..hour };
        assert_eq!(second.file_name(), "sagemeter-2026-12-02T07.2.jsonl");
        assert_eq!(
            FileName::of(at, RollEvery::Day).file_name(),
            "sagemeter-2026-12-02T00.jsonl"
        );
        for name in [hour, second] {
            assert_eq!(FileName::parse(&name.file_name()), Some(name));
        }
        let next_hour = FileName::of("2026-12-02T08:00:00Z".parse().unwrap(), RollEvery::Hour);
        let mut names = vec![next_hour, second, hour];
        names.sort();
        assert_eq!(names, [hour, second, next_hour]);
        for other in [
            "calls.jsonl",
            "sagemeter-2026-12-02T24.jsonl",
            "sagemeter-2026-12-02T7.jsonl",
            "sagemeter-2026-12-02T07.0.jsonl",
            "sagemeter-2026-12-02T07.jsonl.tmp",
        ] {
            assert_eq!(FileName::parse(other), None, "{other}");
        }
    }

    /// A full file numbered u32::MAX (put there by hand) leaves no next number:
    /// an error saying so, not an overflow (a panic in debug builds; in release,
    /// writing on into the period's first file past its limit).
    #[test]
    fn a_full_file_with_the_last_number_is_an_error_not_an_overflow() {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let last = dir.join(format!("sagemeter-2026-12-02T07.{}.jsonl", u32::MAX));
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&last)
            .unwrap();
        // A ledger line (a price change) of 26 bytes, over the limit of 6.
        std::io::Write::write_all(&mut file, b"{\"v\":2,\"price_change\":{}}\n").unwrap();
        drop(file);
        let (opened, _clock) = opened(&dir, 6);
        let err = match opened {
            Err(err) => err.to_string(),
            Ok(mut target) => {
                let (a, a_lines) = lines('a', 1);
                format!("{:?}", target.write_lines(&a, &a_lines).unwrap_err())
            }
        };
        assert!(
            err.contains("the last number a ledger file can have"),
            "{err}"
        );
        let ledger_files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".jsonl")
            })
            .count();
        assert_eq!(ledger_files, 1, "no other ledger file");
    }

    /// A file of the current hour named as a ledger's but holding a text
    /// (`this is no ledger: a note` and its newline, 25 + 1 = 26 bytes), over the
    /// limit of 6: the writer opens the period's last file before judging it
    /// full, so the file is refused, named, and left as it is, not passed over
    /// for a `.1` file (its size says nothing of what it is).
    #[test]
    fn an_over_the_limit_file_of_the_period_that_is_no_ledger_is_refused_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let text = b"this is no ledger: a note\n";
        assert_eq!(text.len(), 26);
        let path = crashed_in(&dir, text);
        let (opened, _clock) = opened(&dir, 6);
        let Err(err) = opened else {
            panic!("a file that is no ledger was passed over");
        };
        let err = err.to_string();
        assert!(
            err.contains(&format!(
                "{} is not a JSON Lines ledger of sagemeter's",
                path.display()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), text);
        assert!(!dir.join("sagemeter-2026-12-02T07.1.jsonl").exists());
    }

    /// A receipt line of format 1, of call `c{id}`: every one as long for a
    /// one-digit id, 339 bytes with its newline (`RECEIPT_LINE_LEN`).
    fn receipt_line(id: u32) -> String {
        format!(
            r#"{{"v":1,"call_id":"c{id}","at":"2026-12-02T07:30:00Z","endpoint":"rt","variant":"AllTraffic","allocation":"busy_time","usage":{{"operation":"invoke_endpoint","latency_us":1000,"bytes_in":1,"bytes_out":2,"variant":"AllTraffic","outcome":"ok"}},"lines":[],"cost_usd":"0.5","currency":"USD","running_client_usd":"0.5","running_endpoint_usd":"0.5"}}"#
        ) + "\n"
    }

    /// The receipt lines of calls `ids`, for `write_lines`.
    fn receipt_lines(ids: &[u32]) -> (Vec<u8>, Vec<LineMeta>) {
        let text: String = ids.iter().map(|&id| receipt_line(id)).collect();
        let meta = LineMeta {
            len: receipt_line(ids[0]).len(),
            refs: Default::default(),
            receipt: true,
        };
        (text.into_bytes(), vec![meta; ids.len()])
    }

    /// A rolling ledger directory (0700) at `dir` whose 07:00 file
    /// (`sagemeter-2026-12-02T07.jsonl`) holds `text`, left by a crash.
    fn crashed_in(dir: &Path, text: &[u8]) -> PathBuf {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("sagemeter-2026-12-02T07.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, text).unwrap();
        path
    }

    /// The call ids of the receipts of every file of the ledger in `dir`, in
    /// order, and the torn tails reported.
    fn read_calls(dir: &Path) -> (Vec<String>, usize) {
        let (mut calls, mut torn) = (Vec::new(), 0);
        for path in crate::ledger::ledger_files(dir).unwrap() {
            let read = crate::ledger::read_all(&path).unwrap();
            calls.extend(read.records.into_iter().map(|c| c.call_id));
            torn += usize::from(read.torn_tail.is_some());
        }
        (calls, torn)
    }

    /// Every receipt line here is 339 bytes with its newline: 7 (`{"v":1,`) + 15
    /// (`"call_id":"c1",`) + 28 (`at`) + 16 (`endpoint`) + 23 (`variant`) + 25
    /// (`allocation`) + 9 (`"usage":{`) + 30 + 18 + 13 + 14 + 23 + 16 (its
    /// members and `}`,) + 11 (`lines`) + 17 (`cost_usd`) + 17 (`currency`) + 27
    /// + 29 (the running totals and `}`) + 1 (the newline).
    const RECEIPT_LINE_LEN: u64 = 339;

    #[test]
    fn receipt_lines_are_as_long_as_said() {
        assert_eq!(receipt_line(1).len() as u64, RECEIPT_LINE_LEN);
        assert_eq!(receipt_line(9).len() as u64, RECEIPT_LINE_LEN);
    }

    /// The rolling ledger at `dir`, opened under a limit of `max_bytes` (at 07:30,
    /// as [`target`]), with the receipts of calls `ids` written to it in one batch.
    fn reopened_and_written(dir: &Path, max_bytes: u64, ids: &[u32]) -> RollingTarget {
        let (mut target, _clock) = target(dir, max_bytes);
        let (text, lines) = receipt_lines(ids);
        target.write_lines(&text, &lines).unwrap();
        target
    }

    /// The ledger at `dir` is its 07:00 file, `path`, alone, holding the whole
    /// receipt lines of calls `ids` in order and nothing else: no torn tail, no
    /// second file.
    fn assert_one_file_holding(dir: &Path, path: &Path, ids: &[u32]) {
        let want: String = ids.iter().map(|&id| receipt_line(id)).collect();
        assert_eq!(std::fs::read_to_string(path).unwrap(), want);
        assert!(!dir.join("sagemeter-2026-12-02T07.1.jsonl").exists());
        let calls = ids.iter().map(|id| format!("c{id}")).collect();
        assert_eq!(read_calls(dir), (calls, 0));
    }

    /// A power loss left 4 KiB of zeros after c1 (its size reached the disk, its
    /// last data did not): 339 + 4,096 = 4,435 bytes on disk, over a limit of
    /// three lines (1,017 bytes). Repaired, the file is 339 bytes with room for
    /// two more lines (339 + 2 × 339 = 1,017 ≤ 1,017): c2 and c3 go on in it,
    /// after the zeros are cut, and no second file starts.
    #[test]
    fn a_file_over_the_limit_only_by_power_loss_zeros_is_repaired_and_written_on() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let mut text = receipt_line(1).into_bytes();
        text.resize(text.len() + 4096, 0);
        let path = crashed_in(&dir, &text);
        let _target = reopened_and_written(&dir, 3 * RECEIPT_LINE_LEN, &[2, 3]);
        assert_one_file_holding(&dir, &path, &[1, 2, 3]);
    }

    /// c2's write was torn after 200 bytes: 339 + 200 = 539 bytes, over a limit
    /// of 400. Cut back to c1 (339 bytes), the file has room for 61 more: a
    /// price change (`{"v":2,"price_change":{}}` and its newline, 26 bytes: 365
    /// ≤ 400) goes on in it; c3 (365 + 339 = 704 > 400) starts the next file.
    #[test]
    fn a_file_over_the_limit_only_by_a_torn_fragment_is_repaired_and_written_on() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let text = receipt_line(1) + &receipt_line(2)[..200];
        let path = crashed_in(&dir, text.as_bytes());
        assert_eq!(read_calls(&dir), (vec!["c1".into()], 1));
        let (mut target, _clock) = target(&dir, 400);
        let change = "{\"v\":2,\"price_change\":{}}\n";
        let (c3, c3_lines) = receipt_lines(&[3]);
        let bytes = [change.as_bytes(), &c3].concat();
        let change_line = LineMeta {
            len: 26,
            refs: Default::default(),
            receipt: false,
        };
        target
            .write_lines(&bytes, &[change_line, c3_lines[0]])
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            receipt_line(1) + change
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("sagemeter-2026-12-02T07.1.jsonl")).unwrap(),
            receipt_line(3)
        );
        assert_eq!(read_calls(&dir), (vec!["c1".into(), "c3".into()], 0));
    }

    /// Two whole lines (678 bytes) and c3 torn after 100 bytes (778 bytes in
    /// all), under a limit of one line (339): the file is over the limit even
    /// repaired (678 > 339), so c4 starts the next file, but the torn tail is
    /// cut first: the file reads with no torn tail, and `cat` of the files
    /// glues nothing onto c4.
    #[test]
    fn a_torn_file_still_over_the_limit_is_repaired_and_the_next_file_started() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let text = receipt_line(1) + &receipt_line(2) + &receipt_line(3)[..100];
        let path = crashed_in(&dir, text.as_bytes());
        let _target = reopened_and_written(&dir, RECEIPT_LINE_LEN, &[4]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            receipt_line(1) + &receipt_line(2)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("sagemeter-2026-12-02T07.1.jsonl")).unwrap(),
            receipt_line(4)
        );
        assert_eq!(
            read_calls(&dir),
            (vec!["c1".into(), "c2".into(), "c4".into()], 0)
        );
    }

    /// c2 is whole but its newline was lost, and 4 KiB of zeros follow: 339 +
    /// 338 + 4,096 = 4,773 bytes, over a limit of three lines (1,017). The
    /// reader reads c2 (the zeros cut); the writer keeps it, with its newline
    /// added (678 bytes, room for one more line: 678 + 339 = 1,017 ≤ 1,017), and goes on
    /// with c3 after it: c2 is in the ledger once, never cut, never twice.
    #[test]
    fn a_whole_last_record_missing_its_newline_is_kept_once_when_its_file_is_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let mut text = (receipt_line(1) + receipt_line(2).trim_end()).into_bytes();
        text.resize(text.len() + 4096, 0);
        let path = crashed_in(&dir, &text);
        assert_eq!(read_calls(&dir), (vec!["c1".into(), "c2".into()], 0));
        let _target = reopened_and_written(&dir, 3 * RECEIPT_LINE_LEN, &[3]);
        assert_one_file_holding(&dir, &path, &[1, 2, 3]);
    }

    #[test]
    fn whole_lines_fit_under_the_limit_and_a_long_line_gets_an_empty_file() {
        let line = LineMeta {
            len: 5,
            refs: Default::default(),
            receipt: true,
        };
        let lines = [line; 3];
        assert_eq!(fitting_lines(&lines, 10, false), 2);
        assert_eq!(fitting_lines(&lines, 9, false), 1);
        assert_eq!(fitting_lines(&lines, 4, false), 0);
        assert_eq!(fitting_lines(&lines, 4, true), 1);
        assert_eq!(fitting_lines(&lines, 100, false), 3);
    }
    /// Fails the opening of the period's second file (`….1.jsonl`) while the
    /// flag returned is set (it is).
    fn fail_opening_the_second_file(target: &mut RollingTarget) -> Arc<AtomicBool> {
        let fail = Arc::new(AtomicBool::new(true));
        let failing = fail.clone();
        target.hooks.before_open = Some(Arc::new(move |path: &Path| {
            let second = path.ends_with("sagemeter-2026-12-02T07.1.jsonl");
            match second && failing.load(Ordering::SeqCst) {
                true => Err(io::Error::other("no room for a new file")),
                false => Ok(()),
            }
        }));
        fail
    }

    #[test]
    fn a_failed_roll_part_way_through_says_how_many_lines_were_written_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let (mut target, _clock) = target(&dir, 6);
        let fail = fail_opening_the_second_file(&mut target);
        let (a, a_lines) = lines('a', 3);
        let failure = target.write_lines(&a, &a_lines).unwrap_err();
        assert_eq!(failure.written, 2, "a1 and a2 fit the first file");
        assert!(
            failure.source.to_string().contains("no room"),
            "{failure:?}"
        );
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("sagemeter-2026-12-02T07.jsonl"), "a1\na2\n");

        // Once files open again, the line not written goes to the next file.
        fail.store(false, Ordering::SeqCst);
        target.write_lines(&a[6..], &a_lines[2..]).unwrap();
        assert_eq!(read("sagemeter-2026-12-02T07.jsonl"), "a1\na2\n");
        assert_eq!(read("sagemeter-2026-12-02T07.1.jsonl"), "a3\n");
    }

    /// The whole path: a ledger's writer whose batch is cut short by a failed
    /// roll counts the receipts written before it as written, and only the rest
    /// as lost, so re-recording the lost ones duplicates none.
    #[tokio::test]
    async fn a_batch_cut_short_by_a_failed_roll_loses_only_the_receipts_after_it() {
        use crate::billing::Cost;
        use crate::ledger::{BackgroundWriter, Encode, Options, Refs};
        use std::sync::mpsc;

        /// The rolling target, each write held until the test lets it through.
        struct Gated {
            target: RollingTarget,
            entered: mpsc::Sender<()>,
            gate: mpsc::Receiver<()>,
        }
        impl Target for Gated {
            fn write_lines(
                &mut self,
                bytes: &[u8],
                lines: &[LineMeta],
            ) -> Result<(), WriteFailure> {
                let _ = self.entered.send(());
                let _ = self.gate.recv();
                self.target.write_lines(bytes, lines)
            }
            fn sync(&mut self) -> io::Result<()> {
                self.target.sync()
            }
        }
        let call_id: Encode = Box::new(|cost: &Cost, out: &mut Vec<u8>, _: &mut Refs| {
            out.extend_from_slice(cost.call_id.as_bytes());
            out.push(b'\n');
            Ok(())
        });
        let receipt = |id: &str| -> Cost {
            serde_json::from_value(serde_json::json!({
                "call_id": id, "at": "2026-12-02T07:30:00Z", "endpoint": "rt",
                "allocation": "busy_time",
                "usage": {"operation": "invoke_endpoint", "latency_us": 1000,
                          "bytes_in": 1, "bytes_out": 1, "outcome": "ok"},
                "lines": [], "cost_usd": "0", "currency": "USD",
                "running_client_usd": "0", "running_endpoint_usd": "0"
            }))
            .unwrap()
        };

        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        // Room for three 3-byte lines a file.
        let (mut target, _clock) = target(&dir, 9);
        let fail = fail_opening_the_second_file(&mut target);
        let (open, gate) = mpsc::sync_channel(0);
        let (entered_tx, entered) = mpsc::channel();
        let writer = BackgroundWriter::start(
            Options {
                kind: "ledger",
                name: dir.clone(),
                capacity: 8,
                sync_every: None,
            },
            call_id,
            Gated {
                target,
                entered: entered_tx,
                gate,
            },
        )
        .unwrap();
        // `r1` is being written (held at the gate) while r2, r3 and r4 queue:
        // they are the next batch, of which r2 and r3 fit the first file.
        writer.try_record(&receipt("r1")).unwrap();
        entered.recv().unwrap();
        for id in ["r2", "r3", "r4"] {
            writer.try_record(&receipt(id)).unwrap();
        }
        std::thread::spawn(move || while open.send(()).is_ok() {});
        let err = writer.flush(false).await.unwrap_err();
        assert!(matches!(err, LedgerError::Write { lost: 1, .. }), "{err:?}");
        let stats = writer.stats();
        assert_eq!(
            (stats.accepted, stats.written, stats.lost_on_error),
            (4, 3, 1)
        );
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("sagemeter-2026-12-02T07.jsonl"), "r1\nr2\nr3\n");

        // The caller records the one receipt lost again: every receipt is in
        // the ledger once.
        fail.store(false, Ordering::SeqCst);
        writer.try_record(&receipt("r4")).unwrap();
        writer.flush(false).await.unwrap();
        assert_eq!(read("sagemeter-2026-12-02T07.jsonl"), "r1\nr2\nr3\n");
        assert_eq!(read("sagemeter-2026-12-02T07.1.jsonl"), "r4\n");
        let stats = writer.stats();
        assert_eq!(
            (stats.accepted, stats.written, stats.lost_on_error),
            (5, 4, 1)
        );
    }
}
