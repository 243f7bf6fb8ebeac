//! `sagemeter ledger convert`: JSON Lines ledgers to Parquet files. A thin wrapper
//! over `sagemeter::ledger::parquet::convert`.

use crate::CliError;
use sagemeter::ledger::ledger_files;
use sagemeter::ledger::parquet::convert;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `sagemeter ledger …`.
#[derive(clap::Subcommand, Debug)]
pub enum LedgerCommand {
    /// Convert JSON Lines ledgers to Parquet files, one per input file, with the
    /// same name ending in `.parquet`:
    /// `sagemeter ledger convert calls.jsonl receipts/ --to parquet out/`.
    Convert(ConvertArgs),
}

/// `sagemeter ledger convert <LEDGER>... --to parquet <DIR>`: all or nothing (a
/// failure leaves no output behind).
#[derive(clap::Args, Debug)]
#[command(override_usage = "sagemeter ledger convert <LEDGER>... --to <FORMAT> <DIR>")]
pub struct ConvertArgs {
    /// JSON Lines ledger files, or directories of them (a rolling ledger's, read
    /// oldest first).
    #[arg(required = true, value_name = "LEDGER")]
    pub ledgers: Vec<PathBuf>,
    /// The format to write (`parquet`) and the directory to write to (created 0700
    /// if missing); existing files are never overwritten.
    #[arg(long = "to", num_args = 2, value_names = ["FORMAT", "DIR"], required = true)]
    pub to: Vec<PathBuf>,
}

/// Runs `sagemeter ledger …`.
pub fn run(command: LedgerCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        LedgerCommand::Convert(args) => run_convert(args, out),
    }
}

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    CliError::Failed(Box::new(e))
}

fn run_convert(args: ConvertArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let [format, dir] = args.to.as_slice() else {
        return Err(CliError::Usage(
            "--to takes a format and a directory".into(),
        ));
    };
    if format.as_os_str() != "parquet" {
        return Err(CliError::Usage(format!(
            "cannot convert to `{}`: the only format is `parquet` (--to parquet DIR)",
            format.display()
        )));
    }
    // Every input and output first: nothing is written if one of them is wrong.
    let mut inputs = Vec::new();
    for path in &args.ledgers {
        let files = ledger_files(path).map_err(failed)?;
        warn_about_current_files(&files);
        inputs.extend(files);
    }
    let mut planned = Vec::new();
    let mut names = HashSet::new();
    for input in inputs {
        let target = dir.join(output_name(&input)?);
        if !names.insert(target.clone()) {
            return Err(CliError::Usage(format!(
                "two inputs would both be written to {}: convert them into different directories",
                target.display()
            )));
        }
        if target.exists() {
            return Err(CliError::Usage(format!(
                "{} exists: remove it or convert into another directory",
                target.display()
            )));
        }
        planned.push((input, target));
    }
    make_dir(dir)?;
    remove_abandoned_staging(dir);
    // All or nothing: each output is written under a hidden name of this run,
    // and given its own name only once every input has converted. A failure
    // leaves no output behind, so that the same command can run again.
    let mut staged = Staged::default();
    let mut converted = Vec::new();
    for (input, target) in &planned {
        let staging = staging_name(target);
        let done = convert(input, &staging).map_err(failed)?;
        staged.files.push((staging, target.clone()));
        converted.push(done);
    }
    staged.commit()?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for ((input, target), converted) in planned.iter().zip(&converted) {
        writeln!(
            out,
            "{} -> {}: {} records, {} bytes",
            input.display(),
            target.display(),
            converted.rows,
            converted.bytes
        )?;
        if let Some(torn) = &converted.torn_tail {
            writeln!(
                out,
                "  skipped a torn last line of {} (line {}, {} bytes: an interrupted write)",
                input.display(),
                torn.line,
                torn.bytes
            )?;
        }
        if converted.price_changes > 0 {
            writeln!(
                out,
                "  {} price change record(s) of {} are not in the Parquet file (it holds \
                 receipts): keep the JSON Lines file for them",
                converted.price_changes,
                input.display()
            )?;
        }
        rows += converted.rows;
        bytes += converted.bytes;
    }
    writeln!(
        out,
        "converted {} file{}: {rows} records, {bytes} bytes of Parquet in {}",
        planned.len(),
        if planned.len() == 1 { "" } else { "s" },
        dir.display()
    )?;
    out.flush()?;
    Ok(())
}

/// The hidden name `target` is written under by this run: `.NAME.<pid>.converting`
/// (hidden, so that no reader of the directory takes it for a ledger file).
fn staging_name(target: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(format!(".{}{STAGING}", std::process::id()));
    target.with_file_name(name)
}

/// The end of a [`staging_name`], after the run's process id.
const STAGING: &str = ".converting";

/// The process id in a file name made by [`staging_name`] (or the Parquet
/// writer's `….tmp` of one); `None` for any other name.
fn staging_pid(name: &str) -> Option<u32> {
    let stem = name
        .strip_suffix(STAGING)
        .or_else(|| name.strip_suffix(".tmp")?.strip_suffix(STAGING))
        .filter(|_| name.starts_with('.'))?;
    stem.rsplit('.').next()?.parse().ok()
}

/// Removes the staging files (see [`staging_name`]) in `dir` of runs that are no
/// longer running: a run killed part-way (a signal, a crash) cannot remove its
/// own, and they would stay, hidden, for good. One WARN each. Only a file whose
/// process this host can tell is gone (Linux's /proc) and that nothing has
/// written for [`ABANDONED_AFTER`] (a run on another host sharing the directory
/// writes on); elsewhere they are left.
fn remove_abandoned_staging(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(staging_pid) else {
            continue;
        };
        let idle = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|idle| idle >= ABANDONED_AFTER);
        if pid == std::process::id() || !idle || !process_gone(pid) {
            continue;
        }
        let path = entry.path();
        if std::fs::remove_file(&path).is_ok() {
            tracing::warn!(target: "sagemeter::cli", path = %path.display(), pid,
                "removed the staging file of a `ledger convert` that did not finish");
        }
    }
}

/// How long a staging file must have gone unwritten to be taken for abandoned.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether process `pid` is known not to be running (Linux: no `/proc/<pid>`).
fn process_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// The outputs of this run written so far, under their staging names, and the
/// names they are to get; removed when dropped (a failed run leaves nothing).
#[derive(Default)]
struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    /// Gives every output its own name, never over an existing file; on a
    /// failure, removes the ones already given theirs and fails.
    fn commit(mut self) -> Result<(), CliError> {
        let mut named: Vec<&Path> = Vec::new();
        for (staging, target) in &self.files {
            if let Err(e) = link_new(staging, target) {
                for done in named {
                    let _ = std::fs::remove_file(done);
                }
                return Err(CliError::failed(format!(
                    "cannot name {}: {e}; nothing was converted",
                    target.display()
                )));
            }
            named.push(target);
        }
        for (staging, _) in std::mem::take(&mut self.files) {
            let _ = std::fs::remove_file(staging);
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (staging, _) in &self.files {
            let _ = std::fs::remove_file(staging);
        }
    }
}

/// `target` becomes a name of `staging`'s file, refused if `target` exists.
fn link_new(staging: &Path, target: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(staging, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        // A file system without hard links: check, then rename.
        Err(_) if target.exists() => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the file exists",
        )),
        Err(_) => std::fs::rename(staging, target),
    }
}

/// Warns about the files of a directory input that a rolling ledger may still be
/// appending to: those of the current UTC hour (or day, `T00`). Their Parquet
/// files hold the receipts written so far, not those written after.
fn warn_about_current_files(files: &[PathBuf]) {
    let now = chrono::Utc::now();
    let hour = now.format("sagemeter-%Y-%m-%dT%H").to_string();
    let day = now.format("sagemeter-%Y-%m-%dT00").to_string();
    for file in files {
        if sagemeter::ledger::is_being_written(file) {
            crate::output::eprint(&format!(
                "warning: {} is being written by a running ledger (it holds the file's \
                 lock): the receipts it writes from now on are not in its Parquet file, and \
                 its last line may be one not written whole yet (to convert it again later, \
                 remove that output first)",
                file.display()
            ));
            continue;
        }
        let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let current = [&hour, &day].iter().any(|period| {
            name.strip_prefix(period.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        });
        if current {
            crate::output::eprint(&format!(
                "warning: {} is a file of the current hour or day: if a ledger is still \
                 writing to it, the receipts it writes from now on are not in its Parquet \
                 file (to convert it again later, remove that output first)",
                file.display()
            ));
        }
    }
}

/// `calls.jsonl` → `calls.parquet`.
fn output_name(input: &Path) -> Result<PathBuf, CliError> {
    let stem = input
        .file_stem()
        .ok_or_else(|| CliError::Usage(format!("{} has no file name", input.display())))?;
    let mut name = stem.to_owned();
    name.push(".parquet");
    Ok(PathBuf::from(name))
}

/// Creates `dir` 0700 if missing, as ledger directories are.
fn make_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(CliError::Usage(format!(
            "{} is not a directory: the output of `ledger convert` is a directory (made if \
             missing)",
            dir.display()
        )));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        CliError::failed(format!("cannot make the directory {}: {e}", dir.display()))
    })?;
    Ok(())
}
