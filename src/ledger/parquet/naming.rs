//! File names of a rolling Parquet ledger: `sagemeter-YYYY-MM-DDTHH[.N].parquet`,
//! as the JSONL rolling ledger names its files (`HH` is `00` for daily files), and
//! `.sagemeter-….parquet.tmp` while a file is being written.

use super::file::IN_PROGRESS_SUFFIX;
use crate::ledger::RollEvery;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// The hour or day a file covers, and its place among that period's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ParquetName {
    day: NaiveDate,
    hour: u32,
    /// 0 for the period's first file, then 1, 2, ...
    pub(crate) seq: u32,
}

impl ParquetName {
    /// The first name of the period of `at`.
    pub(crate) fn of(at: DateTime<Utc>, every: RollEvery) -> ParquetName {
        ParquetName {
            day: at.date_naive(),
            hour: match every {
                RollEvery::Hour => at.hour(),
                RollEvery::Day => 0,
            },
            seq: 0,
        }
    }

    pub(crate) fn same_period(&self, other: &ParquetName) -> bool {
        self.day == other.day && self.hour == other.hour
    }

    /// The final file name.
    pub(crate) fn file_name(&self) -> String {
        let (y, m, d) = (self.day.year(), self.day.month(), self.day.day());
        match self.seq {
            0 => format!("sagemeter-{y:04}-{m:02}-{d:02}T{:02}.parquet", self.hour),
            n => format!(
                "sagemeter-{y:04}-{m:02}-{d:02}T{:02}.{n}.parquet",
                self.hour
            ),
        }
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
        let stem = name.strip_prefix("sagemeter-")?.strip_suffix(".parquet")?;
        let (stamp, seq) = match stem.split_once('.') {
            Some((stamp, seq)) => (stamp, seq.parse().ok().filter(|n: &u32| *n > 0)?),
            None => (stem, 0),
        };
        let (date, hour) = stamp.split_once('T')?;
        let hour: u32 = hour.parse().ok().filter(|h| *h < 24 && hour.len() == 2)?;
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        Some((ParquetName { day, hour, seq }, in_progress))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_sort_by_period_then_sequence_and_mark_files_in_progress() {
        let at: DateTime<Utc> = "2026-12-02T07:30:00Z".parse().unwrap();
        let hour = ParquetName::of(at, RollEvery::Hour);
        assert_eq!(hour.file_name(), "sagemeter-2026-12-02T07.parquet");
        let third = ParquetName { seq: 2, ..hour };
        assert_eq!(third.file_name(), "sagemeter-2026-12-02T07.2.parquet");
        assert_eq!(
            ParquetName::of(at, RollEvery::Day).file_name(),
            "sagemeter-2026-12-02T00.parquet"
        );
        assert_eq!(ParquetName::parse(&third.file_name()), Some((third, false)));
        assert_eq!(
            ParquetName::parse(".sagemeter-2026-12-02T07.2.parquet.tmp"),
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
            assert_eq!(ParquetName::parse(other), None, "{other}");
        }
    }
}
