//! Reading ledgers for a report on every core, in memory that does not grow with
//! the files.
//!
//! The calling thread reads each file in blocks of whole lines (4 MiB), counts
//! their lines and takes the definitions out of them (format 2: a receipt refers
//! to a context defined earlier in the file); one worker thread per core reads
//! the blocks' receipts into a report of its own, and the reports are merged.
//! At most two blocks a worker wait in the queue: memory is a few blocks per
//! core, whatever the size of the files.
//!
//! Receipt lines as the writer writes them (`{"v":2,"c":…`) are read without
//! building the receipt ([`report_row`]); any other line (format 1, definitions)
//! is read whole.

use super::{ReportBuilder, ReportError, ReportOptions};
use crate::ledger::{
    Definitions, LedgerError, LineError, MAX_LINE_BYTES, RECEIPT_PREFIX, TornTail, line_text,
    line_too_long, read_record, report_row, torn_tail,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Bytes read at a time (a block ends at the last whole line in it).
const BLOCK: usize = 4 << 20;

/// Whole lines of one file, and what a worker needs to read them.
struct Block {
    file: usize,
    /// Lines before the block in its file.
    first_line: u64,
    /// Byte offset of the block in its file.
    offset: u64,
    bytes: Vec<u8>,
    /// The definitions made before the block.
    defs: Arc<Definitions>,
}

/// The first error, by file then line.
type FirstError = Mutex<Option<(usize, u64, ReportError)>>;

/// A report builder fed by every receipt of `files`, read on every core.
pub(crate) fn scan(
    files: &[PathBuf],
    options: &ReportOptions,
) -> Result<ReportBuilder, ReportError> {
    scan_in_blocks(files, options, BLOCK)
}

/// [`scan`] with blocks of about `block` bytes.
pub(super) fn scan_in_blocks(
    files: &[PathBuf],
    options: &ReportOptions,
    block: usize,
) -> Result<ReportBuilder, ReportError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let (tx, rx) = sync_channel::<Block>(2 * workers);
    let rx = Mutex::new(rx);
    let failed: FirstError = Mutex::new(None);
    let torn: Mutex<Vec<(usize, TornTail)>> = Mutex::new(Vec::new());
    let removed = std::sync::atomic::AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut builder = ReportBuilder::new(options.clone())?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut builder = ReportBuilder::new(options.clone())?;
                    work(&rx, &mut builder, files, &failed, &torn, &stop);
                    Ok::<_, ReportError>(builder)
                })
            })
            .collect();
        read_files(files, tx, block, &failed, &removed, &stop);
        for handle in handles {
            match handle.join() {
                Ok(Ok(part)) => builder.merge(part).map_err(|e| e.in_ledgers(files, None))?,
                Ok(Err(e)) => return Err(e),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(())
    })?;
    if let Some((_, _, e)) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut torn = torn.into_inner().unwrap_or_else(|e| e.into_inner());
    torn.sort_by_key(|(file, _)| *file);
    for (file, tail) in torn {
        builder.torn_tail_of(&files[file], tail);
    }
    builder.removed_files(removed.into_inner());
    Ok(builder)
}

/// Keeps `e` if it comes before the error already kept.
fn fail(failed: &FirstError, stop: &AtomicBool, file: usize, line: u64, e: ReportError) {
    stop.store(true, Ordering::Relaxed);
    let mut first = failed.lock().unwrap_or_else(|e| e.into_inner());
    if before(&first, file, line) {
        *first = Some((file, line, e));
    }
}

/// Whether line `line` of `file` comes before the error kept in `first` (or
/// none is).
fn before(first: &Option<(usize, u64, ReportError)>, file: usize, line: u64) -> bool {
    first
        .as_ref()
        .is_none_or(|(f, l, _)| (file, line) < (*f, *l))
}

/// Whether a block of `file` whose first line is `first_line + 1` begins before
/// the first error kept.
fn before_first_error(failed: &FirstError, file: usize, first_line: u64) -> bool {
    before(
        &failed.lock().unwrap_or_else(|e| e.into_inner()),
        file,
        first_line + 1,
    )
}

/// The calling thread: every file, block by block, into the queue.
fn read_files(
    files: &[PathBuf],
    tx: SyncSender<Block>,
    block: usize,
    failed: &FirstError,
    removed: &std::sync::atomic::AtomicU64,
    stop: &AtomicBool,
) {
    for (i, path) in files.iter().enumerate() {
        match read_file(i, path, &tx, block, stop) {
            // Every file was there when the inputs were listed (a path named that
            // is not is refused then): one gone now was removed meanwhile, by a
            // rolling ledger's retention.
            Err(e) if crate::ledger::file::removed_before_read(&e, path) => {
                removed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => fail(failed, stop, i, 0, e.into()),
            Ok(()) => {}
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
    }
}

fn read_file(
    index: usize,
    path: &Path,
    tx: &SyncSender<Block>,
    block: usize,
    stop: &AtomicBool,
) -> Result<(), LedgerError> {
    let mut file = crate::ledger::file::open_to_read(path)?;
    let mut defs = Arc::new(Definitions::default());
    let (mut line, mut offset) = (0u64, 0u64);
    let mut carry: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(block + carry.len());
        bytes.append(&mut carry);
        let eof = match fill(&mut file, &mut bytes, block) {
            Ok(Filled::Block) => false,
            Ok(Filled::End) => true,
            Ok(Filled::LineTooLong) => {
                // `bytes` begins with that line (whole lines before it were sent).
                return Err(LedgerError::Corrupt {
                    path: path.to_owned(),
                    line: line + 1,
                    source: line_too_long().into(),
                });
            }
            Err(source) => {
                return Err(LedgerError::Read {
                    path: path.to_owned(),
                    line: line + 1,
                    source,
                });
            }
        };
        if bytes.is_empty() {
            return Ok(());
        }
        if !eof {
            // Whole lines only; the rest starts the next block.
            let cut = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
            carry.extend_from_slice(&bytes[cut..]);
            bytes.truncate(cut);
        }
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        let len = bytes.len() as u64;
        let before = defs.clone();
        take_definitions(&bytes, &mut defs);
        let block = Block {
            file: index,
            first_line: line,
            offset,
            bytes,
            defs: before,
        };
        if tx.send(block).is_err() {
            return Ok(()); // the workers stopped
        }
        (line, offset) = (line + lines, offset + len);
        if eof {
            return Ok(());
        }
    }
}

/// What [`fill`] read.
#[derive(Debug, PartialEq, Eq)]
enum Filled {
    /// A block and a newline.
    Block,
    /// The rest of the file.
    End,
    /// More than [`MAX_LINE_BYTES`] without a newline, from the start of `bytes`
    /// (which holds no whole line): no ledger line, and not read further.
    LineTooLong,
}

/// Reads into `bytes` until it holds a block and a newline, or the file ends, or
/// it holds a line longer than [`MAX_LINE_BYTES`] (memory stays bounded whatever
/// the file holds).
fn fill(file: &mut impl Read, bytes: &mut Vec<u8>, block: usize) -> std::io::Result<Filled> {
    let mut want = block;
    // Bytes known to hold no newline (each byte is looked at once).
    let mut scanned = 0;
    loop {
        if bytes.len() >= want {
            if memchr::memchr(b'\n', &bytes[scanned..]).is_some() {
                return Ok(Filled::Block);
            }
            scanned = bytes.len();
            if bytes.len() > MAX_LINE_BYTES {
                return Ok(Filled::LineTooLong);
            }
            // A line longer than a block: read on, up to one byte past the limit.
            want = (bytes.len() + block).min(MAX_LINE_BYTES + 1);
        }
        let start = bytes.len();
        bytes.resize(want, 0);
        let n = match file.read(&mut bytes[start..]) {
            Ok(n) => n,
            // A signal during the read (NFS, FUSE mounts): read again. Taken for
            // the end, the rest of the file went unread, unsaid.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                bytes.truncate(start);
                continue;
            }
            Err(e) => {
                bytes.truncate(start);
                return Err(e);
            }
        };
        bytes.truncate(start + n);
        if n == 0 {
            return Ok(Filled::End);
        }
    }
}

/// Adds the definitions written in `bytes` to `defs`, in the order written: a
/// line naming a definition's key (`"context"`, `"price"`, `"origin"`), however
/// spaced or ordered (a ledger rewritten by a JSON tool), that is not a receipt.
/// A definition that does not read is left to the worker to report.
fn take_definitions(bytes: &[u8], defs: &mut Arc<Definitions>) {
    let mut starts: Vec<usize> = DEFINITION_KEYS
        .iter()
        .flat_map(|key| memchr::memmem::find_iter(bytes, key))
        .map(|at| memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1))
        .collect();
    starts.sort_unstable();
    starts.dedup();
    for start in starts {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let line = bytes[start..end].trim_ascii();
        if !line.starts_with(RECEIPT_PREFIX) && is_definition(line) {
            let _ = read_record(line, Arc::make_mut(defs));
        }
    }
}

/// Whether `line` has a definition's key at its top level: a receipt has them
/// only nested (a format-1 line's `"price"` objects), and is not built twice
/// (here, and by the worker) for it.
fn is_definition(line: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Keys {
        context: Option<serde::de::IgnoredAny>,
        price: Option<serde::de::IgnoredAny>,
        origin: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Keys>(line)
        .is_ok_and(|k| k.context.is_some() || k.price.is_some() || k.origin.is_some())
}

/// The keys only a definition line has (a receipt's are one or two letters).
const DEFINITION_KEYS: [&[u8]; 3] = [b"\"context\"", b"\"price\"", b"\"origin\""];

/// A worker: blocks from the queue into `builder`, until the queue closes.
fn work(
    rx: &Mutex<Receiver<Block>>,
    builder: &mut ReportBuilder,
    files: &[PathBuf],
    failed: &FirstError,
    torn: &Mutex<Vec<(usize, TornTail)>>,
    stop: &AtomicBool,
) {
    loop {
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(block) = next else { return };
        // After an error, a block that begins after it is drained unread (the
        // reader never waits on a full queue); one that begins before it is read,
        // as it may hold an earlier error, which is the one to report (a worker
        // can fail on a later block before another has read an earlier one).
        if stop.load(Ordering::Relaxed) && !before_first_error(failed, block.file, block.first_line)
        {
            continue;
        }
        let Block {
            file,
            first_line,
            offset,
            bytes,
            defs,
        } = block;
        let header = Header {
            first_line,
            offset,
            defs,
        };
        match read_block(header, &bytes, builder, &files[file]) {
            Ok(None) => {}
            Ok(Some(tail)) => torn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((file, tail)),
            Err((line, e)) => fail(failed, stop, file, line, e),
        }
    }
}

/// What `read_block` needs of a block besides its bytes.
struct Header {
    first_line: u64,
    offset: u64,
    defs: Arc<Definitions>,
}

/// The receipts of one block into `builder`; a torn last line (only the file's
/// last block can end without a newline) is returned, any other bad line (or
/// one whose receipt overflows a sum) is an error with its line number.
fn read_block(
    mut header: Header,
    bytes: &[u8],
    builder: &mut ReportBuilder,
    path: &Path,
) -> Result<Option<TornTail>, (u64, ReportError)> {
    let by = builder.options().by.clone();
    // The file's first block, until a line reads: a bad line is the file's first.
    let mut first_of_file = header.first_line == 0;
    let (mut line, mut offset) = (header.first_line, header.offset);
    let mut rest = bytes;
    while !rest.is_empty() {
        let (text, complete) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..=i], true),
            None => (rest, false),
        };
        rest = &rest[text.len()..];
        line += 1;
        let line_offset = offset;
        offset += text.len() as u64;
        let (trimmed, zeros) = line_text(text, complete);
        if trimmed.is_empty() {
            if zeros {
                // Only zeros: whatever was written there never reached the disk.
                return Ok(Some(torn_tail(path, line, line_offset, text.len() as u64)));
            }
            continue;
        }
        let read = if trimmed.starts_with(RECEIPT_PREFIX) {
            report_row(trimmed, &header.defs, &by)
                .map(|row| builder.add_row(&row))
                .map_err(LineError::Corrupt)
        } else {
            read_record(trimmed, Arc::make_mut(&mut header.defs))
                .map(|cost| cost.map_or(Ok(()), |cost| builder.add(&cost)))
        };
        if read.is_ok() {
            first_of_file = false;
        }
        match read {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((line, e.in_ledgers(&[path.to_owned()], Some(line)))),
            Err(LineError::Corrupt(source)) if !complete && source.is_eof() => {
                return Ok(Some(torn_tail(path, line, line_offset, text.len() as u64)));
            }
            Err(LineError::Corrupt(source)) if first_of_file => {
                let e = LedgerError::NotALedger {
                    path: path.to_owned(),
                    source: source.into(),
                };
                return Err((line, e.into()));
            }
            Err(LineError::Corrupt(source)) => {
                let e = LedgerError::Corrupt {
                    path: path.to_owned(),
                    line,
                    source: source.into(),
                };
                return Err((line, e.into()));
            }
            Err(LineError::Version(version)) => {
                let e = LedgerError::UnsupportedVersion {
                    path: path.to_owned(),
                    line,
                    version,
                };
                return Err((line, e.into()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cost;
    use crate::ledger::{JsonlLedger, read_all};
    use crate::report::{GroupBy, Report, summarize};
    use serde_json::json;

    fn receipt(i: u64, endpoint: &str) -> Cost {
        let cost = format!("0.{:012}", 1_000 + i * 7);
        let team = ["a", "b\"c", "d"][i as usize % 3];
        serde_json::from_value(json!({
            "call_id": format!("call-{i}"), "at": format!("2026-12-0{}T{:02}:{:02}:00Z", 1 + i % 3, i % 24, i % 60),
            "endpoint": endpoint, "variant": "AllTraffic",
            "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge", "instance_count": 1},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1_000 + i % 997, "bytes_in": 100,
                      "bytes_out": 200 + i, "variant": "AllTraffic", "input_tokens": i % 50,
                      "outcome": if i.is_multiple_of(11) { "error" } else { "ok" }},
            "lines": [{"item": "compute", "quantity": "1", "unit": "calls",
                       "price": if i.is_multiple_of(13) {
                           json!({"status": "unpriced", "reason": "no rate"})
                       } else {
                           json!({"status": "priced", "usd_per_unit": cost, "cost_usd": cost,
                                  "provenance": {"source": "live", "sku": "S", "effective_date": "2026-11-01",
                                                 "fetched_at": null, "note": null}})
                       }}],
            "cost_usd": if i.is_multiple_of(13) { "0".to_owned() } else { cost.clone() }, "currency": "USD",
            "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null,
            "tags": {"team": team}
        }))
        .unwrap()
    }

    /// A ledger of `n` receipts from two processes (the second one's ids mean
    /// other things), and the receipts.
    fn ledger(path: &Path, n: u64) -> Vec<Cost> {
        let mut written = Vec::new();
        for (from, to, endpoint) in [(0, n / 2, "first"), (n / 2, n, "second")] {
            let ledger = JsonlLedger::open(path).unwrap();
            for i in from..to {
                let r = receipt(i, endpoint);
                ledger.try_record(&r).unwrap();
                written.push(r);
            }
            drop(ledger); // writes everything, without a runtime
        }
        written
    }

    fn report(path: &Path, by: GroupBy, block: usize) -> Result<Report, ReportError> {
        let options = ReportOptions::new(by);
        scan_in_blocks(&[path.to_owned()], &options, block).and_then(ReportBuilder::finish)
    }

    #[test]
    fn blocks_of_any_size_give_the_report_of_the_receipts_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let written = ledger(&path, 600);
        assert_eq!(read_all(&path).unwrap().records, written);
        for by in [
            GroupBy::Endpoint,
            GroupBy::Tag("team".into()),
            GroupBy::Hour,
            GroupBy::Variant,
        ] {
            let expected = summarize(&written, &ReportOptions::new(by.clone())).unwrap();
            assert_eq!(expected.total.calls, 600);
            // A block shorter than a line, a few lines, a few hundred, all of it.
            for block in [10, 1_000, 100_000, 10 << 20] {
                assert_eq!(
                    report(&path, by.clone(), block).unwrap(),
                    expected,
                    "{by} in blocks of {block}"
                );
            }
        }
    }

    /// A ledger rewritten by a JSON tool (spaces after `:` and `,`, as Python's
    /// `json.dumps` writes) is read as the writer's own: its definitions reach
    /// every later block, a second process's redefinitions included.
    #[test]
    fn definitions_spaced_as_json_tools_write_them_reach_every_later_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let written = ledger(&path, 600);
        let text = std::fs::read_to_string(&path).unwrap();
        let respaced: String = text
            .lines()
            .map(|line| match line.as_bytes().starts_with(RECEIPT_PREFIX) {
                true => format!("{line}\n"),
                false => format!("{}\n", line.replace("\":", "\": ").replace(",\"", ", \"")),
            })
            .collect();
        assert_ne!(respaced, text);
        std::fs::write(&path, respaced).unwrap();
        let expected = summarize(&written, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        assert_eq!(expected.groups.len(), 2);
        for block in [1_000, 100_000] {
            assert_eq!(
                report(&path, GroupBy::Endpoint, block).unwrap(),
                expected,
                "blocks of {block}"
            );
        }
    }

    /// Zeros a power loss left at the end are skipped as the writer cuts them:
    /// the report is that of the receipts before them, with a torn tail.
    #[test]
    fn zeros_at_the_end_are_a_torn_tail_not_a_damaged_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let written = ledger(&path, 40);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, &[0u8; 4096]).unwrap();
        drop(file);
        let expected = summarize(&written, &ReportOptions::new(GroupBy::Endpoint)).unwrap();
        for block in [1_000, BLOCK] {
            let report = report(&path, GroupBy::Endpoint, block).unwrap();
            assert_eq!(report.total, expected.total, "blocks of {block}");
            assert_eq!(report.torn_tails, 1, "blocks of {block}");
        }
    }

    /// A listed file removed before its turn (a rolling ledger's retention) is
    /// not counted and is said; the others are reported as without it.
    #[test]
    fn a_file_removed_before_its_turn_is_said_and_the_others_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, removed) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        let written = ledger(&kept, 40);
        let options = ReportOptions::new(GroupBy::Endpoint);
        let report = scan_in_blocks(&[kept.clone(), removed], &options, BLOCK)
            .and_then(ReportBuilder::finish)
            .unwrap();
        assert_eq!(report.removed_files, 1);
        let expected = summarize(&written, &options).unwrap();
        assert_eq!(report.total, expected.total);
        assert!(
            crate::report::render_table(&report).contains("1 ledger file(s) were removed"),
            "{}",
            crate::report::render_table(&report)
        );
    }

    /// A reader that counts the bytes read from it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    /// A read a signal interrupts (`EINTR`, as NFS and FUSE mounts give) is
    /// read again: taken for the end of the file, the lines after it went
    /// unread, unsaid.
    #[test]
    fn a_read_a_signal_interrupts_is_read_again_not_taken_for_the_end() {
        struct Interrupted<R> {
            inner: R,
            reads: u32,
        }
        impl<R: Read> Read for Interrupted<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.reads += 1;
                if self.reads.is_multiple_of(2) {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
                let most = buf.len().min(7);
                self.inner.read(&mut buf[..most])
            }
        }
        let text = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        let mut source = Interrupted {
            inner: &text[..],
            reads: 0,
        };
        let mut bytes = Vec::new();
        // Blocks of a whole file's size: one fill reads it all, through the
        // interruptions.
        assert_eq!(
            fill(&mut source, &mut bytes, text.len()).unwrap(),
            Filled::Block
        );
        assert_eq!(bytes, text);
    }

    /// 64 MiB without a newline: the block stops one byte past the 16 MiB limit
    /// (whatever the block size), not at the end of the file.
    #[test]
    fn a_line_longer_than_the_limit_is_not_read_whole() {
        for block in [100_000, BLOCK] {
            let mut source = Counting {
                inner: std::io::repeat(0).take(64 << 20),
                read: 0,
            };
            let mut bytes = Vec::new();
            let filled = fill(&mut source, &mut bytes, block).unwrap();
            assert_eq!(filled, Filled::LineTooLong, "blocks of {block}");
            assert_eq!(source.read, MAX_LINE_BYTES as u64 + 1, "blocks of {block}");
            assert_eq!(bytes.len(), MAX_LINE_BYTES + 1);
        }
    }

    /// A ledger whose receipts are followed by a zero-filled run longer than the
    /// limit (no newline): an error naming that line, not a torn tail skipped.
    #[test]
    fn a_ledger_ending_in_a_run_past_the_limit_is_corrupt_at_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        ledger(&path, 10);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::copy(
            &mut std::io::repeat(0).take(MAX_LINE_BYTES as u64 + 4096),
            &mut file,
        )
        .unwrap();
        drop(file);
        for block in [100_000, BLOCK] {
            match report(&path, GroupBy::Endpoint, block) {
                Err(ReportError::Ledger(LedgerError::Corrupt { line, source, .. })) => {
                    assert_eq!(line, lines + 1, "blocks of {block}");
                    assert!(source.to_string().contains("16 MiB"), "{source}");
                }
                other => panic!("blocks of {block}: {other:?}"),
            }
        }
    }

    /// A worker can fail on a later block before another has read an earlier
    /// one: the earlier block is still read, and its error is the one reported
    /// (the race made the test below name line 251 for a ledger bad at 250).
    #[test]
    fn an_earlier_blocks_error_wins_over_a_later_one_found_first() {
        let files = vec![PathBuf::from("calls.jsonl")];
        let bad = b"{\"v\":2,\"c\":0,\"oops\"\n".to_vec();
        let block = |first_line| Block {
            file: 0,
            first_line,
            offset: 0,
            bytes: bad.clone(),
            defs: Arc::new(Definitions::default()),
        };
        let options = ReportOptions::default();
        let (failed, stop) = (Mutex::new(None), AtomicBool::new(false));
        let torn = Mutex::new(Vec::new());
        // Line 20 failed first, in a later block.
        let (tx, rx) = sync_channel::<Block>(2);
        tx.send(block(19)).unwrap();
        drop(tx);
        let mut builder = ReportBuilder::new(options.clone()).unwrap();
        work(&Mutex::new(rx), &mut builder, &files, &failed, &torn, &stop);
        assert!(stop.load(Ordering::Relaxed));
        // Then the blocks of lines 11 and 30 come to a worker.
        let (tx, rx) = sync_channel::<Block>(2);
        tx.send(block(10)).unwrap();
        tx.send(block(29)).unwrap();
        drop(tx);
        work(&Mutex::new(rx), &mut builder, &files, &failed, &torn, &stop);
        match failed.into_inner().unwrap() {
            Some((0, 11, ReportError::Ledger(LedgerError::Corrupt { line: 11, .. }))) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_line_in_a_later_block_is_the_error_with_its_line_and_a_torn_end_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        ledger(&path, 300);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Line 250 damaged: every block size names it.
        let mut damaged = lines.clone();
        damaged[249] = "{\"v\":2,\"c\":0,\"oops\"";
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, damaged.join("\n") + "\n").unwrap();
        for block in [10, 5_000, 10 << 20] {
            match report(&bad, GroupBy::Endpoint, block) {
                Err(ReportError::Ledger(LedgerError::Corrupt { line: 250, .. })) => {}
                other => panic!("{block}: {other:?}"),
            }
        }
        // The last line cut short: skipped and reported, with its place.
        let cut = text.len() - 20;
        let torn = dir.path().join("torn.jsonl");
        std::fs::write(&torn, &text[..cut]).unwrap();
        let last_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
        for block in [10, 5_000, 10 << 20] {
            let report = report(&torn, GroupBy::Endpoint, block).unwrap();
            assert_eq!(report.total.calls, 299);
            assert_eq!(
                report.torn_tail,
                Some(TornTail::new(
                    lines.len() as u64,
                    last_start as u64,
                    (cut - last_start) as u64
                ))
            );
        }
    }

    #[test]
    fn a_file_whose_first_line_is_no_record_is_not_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        // A request body without its final newline: whole JSON, not a torn write.
        let body = dir.path().join("body.json");
        std::fs::write(&body, r#"{"inputs":"hi"}"#).unwrap();
        let text = dir.path().join("notes.md");
        std::fs::write(&text, "# notes\n\nnot a ledger\n").unwrap();
        for path in [&body, &text] {
            for block in [4, 10 << 20] {
                match report(path, GroupBy::Endpoint, block) {
                    Err(ReportError::Ledger(LedgerError::NotALedger { path: p, .. })) => {
                        assert_eq!(&p, path)
                    }
                    other => panic!("{path:?}, {block}: {other:?}"),
                }
            }
        }
    }
}
