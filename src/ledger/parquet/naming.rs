//! File names of a rolling Parquet ledger: `sagemeter-YYYY-MM-DDTHH[.N].parquet`,
//! as the JSONL rolling ledger names its files (`HH` is `00` for daily files), and
//! `.sagemeter-….parquet.tmp` while a file is being written.

use super::file::IN_PROGRESS_SUFFIX;
pub(crate) use crate::ledger::rolling::FileName as ParquetName;

/// The final file name of `name`.
pub(crate) fn file_name(name: &ParquetName) -> String {
    name.with_extension("parquet")
}

/// Reads a name this module writes, and whether it is an in-progress one;
/// `None` for any other file.
pub(crate) fn parse(name: &str) -> Option<(ParquetName, bool)> {
    let hidden = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(IN_PROGRESS_SUFFIX));
    let (name, in_progress) = match hidden {
        Some(name) => (name, true),
        None => (name, false),
    };
    Some((
        ParquetName::parse_with_extension(name, "parquet")?,
        in_progress,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RollEvery;
    use chrono::{DateTime, Utc};

    #[test]
    fn names_read_back_sort_by_period_then_sequence_and_mark_files_in_progress() {
        let at: DateTime<Utc> = "2026-12-02T07:30:00Z".parse().unwrap();
        let hour = ParquetName::of(at, RollEvery::Hour);
        assert_eq!(file_name(&hour), "sagemeter-2026-12-02T07.parquet");
        let mut third = hour;
        third.seq = 2;
        assert_eq!(file_name(&third), "sagemeter-2026-12-02T07.2.parquet");
        assert_eq!(
            file_name(&ParquetName::of(at, RollEvery::Day)),
            "sagemeter-2026-12-02T00.parquet"
        );
        assert_eq!(parse(&file_name(&third)), Some((third, false)));
        assert_eq!(
            parse(".sagemeter-2026-12-02T07.2.parquet.tmp"),
            Some((third, true))
        );
        let next = ParquetName::of("2026-12-02T08:00:00Z".parse().unwrap(), RollEvery::Hour);
        let mut names = vec![next, third, hour];
        names.sort();
        assert_eq!(names, [hour, third, next]);
        for other in [
            "calls.parquet",
            "sagemeter-2026-12-02T07.jsonl",
            "sagemeter-2026-12-02T24.parquet",
            "sagemeter-2026-12-02T07.0.parquet",
            "sagemeter-2026-12-02T07.parquet.tmp",
            ".sagemeter-2026-12-02T07.parquet",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
