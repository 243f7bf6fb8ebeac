//! What can go wrong opening, writing or reading a ledger.

use std::io;
use std::path::PathBuf;

/// An error of a ledger file or another background sink. Every variant names the
/// file (or `stdout`/the writer) it is about.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be opened or created (missing directory, no permission).
    #[error("cannot open ledger {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// An existing ledger file is readable or writable by others. sagemeter never
    /// widens or narrows the permissions of a file it did not create: it refuses.
    #[error(
        "ledger {} has mode {mode:03o}: ledger files must be owner read/write only; \
         run `chmod 600 {}` or choose another file",
        path.display(), path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An existing directory of a rolling ledger is open to others (group or
    /// other permission bits): its receipts would be too. Refused, as for a file.
    #[error(
        "ledger directory {} has mode {mode:03o}: a rolling ledger's directory must be the \
         owner's alone; run `chmod 700 {}` or choose another directory",
        path.display(), path.display()
    )]
    DirectoryPermissions {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Two ledger files begin with the same receipt: one holds (some of) the
    /// other's receipts, a copy or a conversion to the other format, and reading
    /// both would count them twice. See [`FirstReceipts`](super::FirstReceipts).
    #[error(
        "{} and {} begin with the same receipt ({call_id}): they hold the same receipts (a \
         copy of the ledger, or its conversion to the other format?), and reading both would \
         count them twice; give one of them",
        first.display(), second.display()
    )]
    SameReceipts {
        /// The file noted first.
        first: PathBuf,
        /// The file that begins as it does.
        second: PathBuf,
        /// The call id of the receipt both begin with (`null` when both are
        /// Parquet files another tool rewrote with a null one).
        call_id: String,
    },
    /// The path exists but is not a regular file.
    #[error("ledger {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The ledger's path (or a rolling ledger's lock file) is a symbolic link:
    /// sagemeter writes a ledger only at its own path, never through a link that
    /// someone could point at another file.
    #[error(
        "ledger {} is a symbolic link: give the path of the file itself",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// An existing ledger file, or a rolling ledger's directory, belongs to
    /// another user: receipts are written only where this process's user owns
    /// the file, never into one another user can read or replace. Mostly what root
    /// meets (`sudo`, a container writing to a mounted directory): other users
    /// cannot open such a file at all.
    #[error(
        "ledger {} belongs to user id {owner}, and this process runs as user id {user}: \
         write a ledger of your own, or run as its owner (or `chown` it)",
        path.display()
    )]
    NotOwned {
        /// The file or directory.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
        /// This process's effective user id.
        user: u32,
    },
    /// Another writer holds the ledger: a ledger (a file, or a rolling ledger's
    /// directory) has one writer at a time, in this process or another. Two
    /// writers would each number their definitions from 0, so that a receipt of
    /// one would read back as the other's endpoint and price.
    #[error(
        "ledger {} is being written by another writer (another process, or another \
         ledger opened on it in this one): stop that writer first, or write to another path",
        path.display()
    )]
    Locked {
        /// The file, or the rolling ledger's directory.
        path: PathBuf,
    },
    /// A builder option cannot work: which one, what is wrong and what to do are
    /// in the [`ConfigError`](crate::ConfigError).
    #[error("invalid ledger option: {0}")]
    InvalidOption(crate::ConfigError),
    /// Writing failed; the receipts of the failed write that did not reach the
    /// target are lost (counted). Those written before the failure (such as the
    /// lines a rolling ledger wrote to a file before it could not open the next)
    /// are in the ledger, counted written and not lost. Later receipts are
    /// written again once the target accepts writes.
    #[error(
        "writing {} failed ({lost} receipts lost to write errors so far): {source}",
        path.display()
    )]
    Write {
        /// The file or target.
        path: PathBuf,
        /// Receipts lost to write errors since the sink was opened.
        lost: u64,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The writer thread stopped without being shut down (it panicked).
    #[error("the writer of {} has stopped", path.display())]
    WriterStopped {
        /// The file or target.
        path: PathBuf,
    },
    /// Reading failed part-way.
    #[error("cannot read ledger {} at line {line}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The 1-based line being read.
        line: u64,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A line that is not the last one is not a valid record. (A torn last line,
    /// left by a crash, is skipped and reported instead.)
    #[error(
        "ledger {}, line {line}: not a valid record ({source}); the file is damaged \
         before its end: restore it from a backup or remove that line",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: u64,
        /// Why it did not parse.
        #[source]
        source: ParseError,
    },
    /// The file's first line is not a record: the file is no ledger of
    /// sagemeter's (another JSON file, a text, a Parquet file read as JSON Lines).
    #[error(
        "{} is not a JSON Lines ledger of sagemeter's: its first line is not a receipt \
         ({source})",
        path.display()
    )]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// Why its first line did not parse.
        #[source]
        source: ParseError,
    },
    /// A record was written by a newer sagemeter with a format this one does not know.
    #[error(
        "ledger {}, line {line}: record format version {version} is newer than this \
         sagemeter reads (up to {supported}); upgrade sagemeter",
        path.display(),
        supported = super::LEDGER_FORMAT_VERSION
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: u64,
        /// The version it carries.
        version: u64,
    },
    /// A Parquet ledger file cannot be read as one (not Parquet, no footer because
    /// its writer never closed it, a column of another type, a newer format), or a
    /// receipt cannot be stored in one exactly (feature `parquet`).
    #[cfg(feature = "parquet")]
    #[error(
        "Parquet ledger {}{}: {message}",
        path.display(),
        row.map(|r| format!(", row {r}")).unwrap_or_default()
    )]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The 1-based row it is about, when it is about one.
        row: Option<u64>,
        /// What is wrong.
        message: String,
        /// The Parquet or Arrow error behind it, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The checks of a queue capacity set with the builder option `option`: at
/// least 1 and at most [`MAX_CAPACITY`](super::MAX_CAPACITY), either of which
/// the queue's channel would panic on.
pub(crate) fn capacity_checks(
    capacity: usize,
    option: &'static str,
) -> [(bool, &'static str, &'static str); 2] {
    [
        (
            capacity == 0,
            option,
            "the queue capacity must be at least 1",
        ),
        (
            capacity > super::MAX_CAPACITY,
            option,
            "the queue capacity must be at most ledger::MAX_CAPACITY (usize::MAX >> 3)",
        ),
    ]
}

/// The first of `checks` that fails (whether an option cannot work, the builder
/// option, what is wrong with it), as [`LedgerError::InvalidOption`], found in
/// `within` (the ledger it is about) when given. What every ledger and EMF
/// builder checks its options with before touching anything.
pub(crate) fn check_options(
    within: Option<&dyn std::fmt::Display>,
    checks: impl IntoIterator<Item = (bool, &'static str, &'static str)>,
) -> Result<(), LedgerError> {
    match checks.into_iter().find(|(bad, ..)| *bad) {
        None => Ok(()),
        Some((_, option, problem)) => {
            let error = crate::ConfigError::new(option, problem);
            Err(LedgerError::InvalidOption(match within {
                Some(what) => error.within(what),
                None => error,
            }))
        }
    }
}

impl From<LedgerError> for io::Error {
    fn from(e: LedgerError) -> io::Error {
        let kind = match &e {
            LedgerError::Open { source, .. }
            | LedgerError::Read { source, .. }
            | LedgerError::Write { source, .. } => source.kind(),
            LedgerError::Permissions { .. }
            | LedgerError::DirectoryPermissions { .. }
            | LedgerError::Symlink { .. }
            | LedgerError::NotOwned { .. } => io::ErrorKind::PermissionDenied,
            LedgerError::Locked { .. } => io::ErrorKind::ResourceBusy,
            LedgerError::Corrupt { .. }
            | LedgerError::NotALedger { .. }
            | LedgerError::UnsupportedVersion { .. } => io::ErrorKind::InvalidData,
            LedgerError::InvalidOption(_) | LedgerError::SameReceipts { .. } => {
                io::ErrorKind::InvalidInput
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Why a ledger line did not parse: the JSON parser's error, without the value
/// it quotes and in at most [`ParseError::MAX_SAID`] characters (and its
/// position). The parser quotes the value it could not take (`invalid type:
/// string "…", expected …`), which can be anything the line holds: a file given
/// by mistake (a request log) would have its payloads or tokens printed. What is
/// said is the kind of value and what was expected (`invalid type: string,
/// expected struct Usage at line 1 column 30`). The whole error is
/// [`inner`](Self::inner) (and `Deref`).
pub struct ParseError(serde_json::Error);

impl ParseError {
    /// The most characters of the parser's message said.
    pub const MAX_SAID: usize = 240;

    /// The parser's error, whole.
    pub fn inner(&self) -> &serde_json::Error {
        &self.0
    }
}

impl From<serde_json::Error> for ParseError {
    fn from(error: serde_json::Error) -> Self {
        ParseError(error)
    }
}

impl std::ops::Deref for ParseError {
    type Target = serde_json::Error;

    fn deref(&self) -> &serde_json::Error {
        &self.0
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        // serde_json ends its message with " at line L column C".
        let (message, position) = text
            .rfind(" at line ")
            .map_or((text.as_str(), ""), |at| text.split_at(at));
        // serde quotes what the line holds in "" or `` in these (`invalid type:
        // string "…", expected …`, `unknown field `…`, expected …`): said up to
        // the quote. Other messages (sagemeter's own, `missing field `lat``)
        // quote only names of the format's.
        const QUOTING: &[&str] = &[
            "invalid type: ",
            "invalid value: ",
            "unknown variant ",
            "unknown field ",
        ];
        let quotes_the_line = self.0.classify() == serde_json::error::Category::Data
            && QUOTING.iter().any(|start| message.starts_with(start));
        let message = if quotes_the_line {
            let (found, expected) = message
                .rfind(", expected ")
                .map_or((message, ""), |at| message.split_at(at));
            let kind = found.find(['"', '`']).map_or(found, |q| &found[..q]);
            let withheld = if expected.is_empty() {
                " (the value is not shown)"
            } else {
                ""
            };
            format!("{}{withheld}{expected}", kind.trim_end())
        } else {
            message.to_owned()
        };
        match message.char_indices().nth(Self::MAX_SAID) {
            Some((cut, _)) => write!(f, "{}…{position}", &message[..cut]),
            None => write!(f, "{message}{position}"),
        }
    }
}

impl std::fmt::Debug for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ParseError")
            .field(&format_args!("{self}"))
            .finish()
    }
}

impl std::error::Error for ParseError {}
