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

/// `sagemeter ledger convert <LEDGER>... --to parquet <DIR>`.
#[derive(clap::Args, Debug)]
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
        inputs.extend(ledger_files(path).map_err(failed)?);
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
    let (mut rows, mut bytes) = (0u64, 0u64);
    for (input, target) in &planned {
        let converted = convert(input, target).map_err(failed)?;
        writeln!(
            out,
            "{} -> {}: {} records, {} bytes",
            input.display(),
            converted.to.display(),
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
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    Ok(())
}
