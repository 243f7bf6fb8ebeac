//! Shared output pieces: money and latency formatting, JSON lines, stderr lines.

use rust_decimal::Decimal;
use sagemeter::billing::QuantityUnit;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// `$0.000123` with no trailing zeros (the exact decimal, never a float); a
/// negative amount with its sign first, `-$0.5`, as the AWS Billing console writes it.
pub fn usd(amount: Decimal) -> String {
    let amount = amount.normalize();
    if amount.is_sign_negative() && !amount.is_zero() {
        format!("-${}", -amount)
    } else {
        format!("${}", amount.abs())
    }
}

/// A receipt line's unit in words, after its quantity: compute in `instance-hours`
/// (an instance variant) or `seconds` (serverless), data in `GB` (2³⁰ bytes).
pub fn quantity_unit(unit: QuantityUnit) -> &'static str {
    match unit {
        QuantityUnit::InstanceHours => "instance-hours",
        QuantityUnit::Seconds => "seconds",
        QuantityUnit::Gigabytes => "GB",
        QuantityUnit::Calls => "calls",
        QuantityUnit::Tokens => "tokens",
        // A unit this CLI does not know yet: said plainly, never left out.
        _ => "units",
    }
}

/// The model's output as the CLI prints it: its bytes as they came when stdout is
/// a file or a pipe; on a terminal, with its control characters shown escaped
/// (`\u{1b}`, [`printable_lines`](sagemeter::redact::printable_lines)), newlines
/// kept, so that an escape sequence in what a model
/// wrote cannot move the cursor, retitle the window or hide text. Text split
/// across a stream's parts in the middle of a character is carried to the next.
pub struct ModelText {
    terminal: bool,
    /// The start of a character whose end is in the next part.
    carry: Vec<u8>,
}

impl ModelText {
    /// For stdout: escaped if it is a terminal.
    pub fn for_stdout() -> Self {
        use std::io::IsTerminal;
        ModelText::new(std::io::stdout().is_terminal())
    }

    pub fn new(terminal: bool) -> Self {
        ModelText {
            terminal,
            carry: Vec::new(),
        }
    }

    /// Writes `bytes`, the next part of the output.
    pub fn write(&mut self, out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
        if !self.terminal {
            return out.write_all(bytes);
        }
        let joined;
        let mut rest = if self.carry.is_empty() {
            bytes
        } else {
            self.carry.extend_from_slice(bytes);
            joined = std::mem::take(&mut self.carry);
            &joined[..]
        };
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => return write_escaped(out, text),
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // Checked valid up to here by from_utf8.
                    write_escaped(out, std::str::from_utf8(valid).unwrap_or_default())?;
                    match e.error_len() {
                        Some(len) => {
                            out.write_all("\u{fffd}".as_bytes())?;
                            rest = &after[len..];
                        }
                        None => {
                            self.carry = after.to_vec();
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Writes what is carried, the output having ended (a character cut short).
    pub fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if std::mem::take(&mut self.carry).is_empty() {
            Ok(())
        } else {
            out.write_all("\u{fffd}".as_bytes())
        }
    }
}

/// `text` with its control characters but newlines escaped.
fn write_escaped(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    out.write_all(sagemeter::redact::printable_lines(text).as_bytes())
}

/// Milliseconds with one decimal, e.g. `12.3`.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The library's advice, addressed to a program that builds a client, and what a
/// CLI user can do instead: the CLI has no price override. Each is the whole of
/// the advice the library ends a message with (see [`for_cli`]); the tests below
/// take every message they come from from the library itself.
const LIBRARY_ADVICE: [(&str, &str); 6] = [
    (
        "check the instance type and region, or set a price override",
        "check the instance type and the region (--region)",
    ),
    (
        "the live Price List is needed, or set a price override",
        "the live AWS Price List is needed: run with credentials allowed \
         pricing:GetProducts",
    ),
    (
        "so set a USD price override for it",
        "so the CLI cannot price it (a program using the sagemeter library can, with a \
         USD price override)",
    ),
    (
        "set a USD price override",
        "the CLI cannot price them (a program using the sagemeter library can, with a USD \
         price override)",
    ),
    (
        "set price overrides for its rates",
        "the CLI cannot price it (a program using the sagemeter library can, with price \
         overrides)",
    ),
    (
        "set price overrides, or give ClientBuilder::pricing_config a configuration of the \
         commercial partition",
        "the CLI cannot price it (a program using the sagemeter library can, with price \
         overrides or a Price List configuration of the commercial partition)",
    ),
];

/// The library's advice on an inference component whose share of its instance is
/// unknown: state the instance's resources on the client builder, which the CLI has
/// no option for.
const STATE_RESOURCES: &str = "state them with ClientBuilder::instance_resources";

/// What a CLI user can do instead: have the live Price List answer, whose answer
/// carries an instance's resources (the snapshot's rates carry none).
const STATE_RESOURCES_CLI: &str = "run with the live AWS Price List reachable (credentials \
     allowed pricing:GetProducts): its answer carries them";

/// The same when the Price List was asked and did not say: nothing the CLI can do.
const STATE_RESOURCES_CLI_UNSAID: &str = "the CLI cannot state them (a program using the \
     sagemeter library can, with ClientBuilder::instance_resources)";

/// `text` (a library error or unpriced reason) with the library's advice to set a
/// price override or to state an instance's resources, options a program has and
/// the CLI has not, replaced by what a CLI user can do.
///
/// Only advice in the place the library puts it is replaced: a whole clause (`; `
/// apart), or the end of one after `: ` or `, `, each ending where the clause does.
/// A name, a path or a quoted message that merely contains the words (anywhere
/// else in a clause) is left as it is.
pub fn for_cli(text: &str) -> std::borrow::Cow<'_, str> {
    let clauses: Vec<&str> = text.split("; ").collect();
    let mut changed = false;
    let mut mapped = Vec::with_capacity(clauses.len());
    for (i, clause) in clauses.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| clauses[p]);
        match cli_advice(clause, previous) {
            Some(advice) => {
                changed = true;
                mapped.push(std::borrow::Cow::Owned(advice));
            }
            None => mapped.push(std::borrow::Cow::Borrowed(*clause)),
        }
    }
    if changed {
        std::borrow::Cow::Owned(mapped.join("; "))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `clause` with the library's advice it ends with replaced, or `None` when it
/// ends with none (`previous`: the clause before it, which says why an instance's
/// resources are unknown).
fn cli_advice(clause: &str, previous: Option<&str>) -> Option<String> {
    if clause == STATE_RESOURCES {
        let unsaid = previous.is_some_and(|p| p.ends_with(" did not say)"));
        return Some(
            match unsaid {
                true => STATE_RESOURCES_CLI_UNSAID,
                false => STATE_RESOURCES_CLI,
            }
            .to_owned(),
        );
    }
    LIBRARY_ADVICE.iter().find_map(|(library, cli)| {
        let head = clause.strip_suffix(library)?;
        (head.is_empty() || head.ends_with(": ") || head.ends_with(", "))
            .then(|| format!("{head}{cli}"))
    })
}

/// A receipt as one line (`Display for Cost`), its unpriced reasons worded for a
/// CLI user ([`for_cli`]). Only the reasons are mapped: the endpoint's, variant's,
/// component's and model's names before them are shown as they are. Control
/// characters (a reason may quote what SageMaker or the Price List answered) are
/// escaped.
pub fn receipt_line(cost: &sagemeter::Cost) -> String {
    let line = cost.to_string();
    let line = match cost.is_fully_priced() {
        true => line,
        false => {
            let reasons: Vec<&str> = cost.unpriced_reasons().collect();
            let suffix = format!(" UNPRICED: {}", reasons.join("; "));
            match line.strip_suffix(&suffix) {
                Some(head) => {
                    let mapped: Vec<_> = reasons.iter().map(|r| for_cli(r)).collect();
                    format!("{head} UNPRICED: {}", mapped.join("; "))
                }
                None => line,
            }
        }
    };
    sagemeter::redact::printable(&line).into_owned()
}

/// A line on stderr; a stderr that cannot be written to (a closed pipe) is no reason
/// to stop, nor to panic as `eprintln!` does. Control characters other than line
/// breaks (from a ledger's names an error quotes) are written as escapes.
pub fn eprint(line: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        sagemeter::redact::printable_lines(line)
    );
}

/// Writes `value` as one line of JSON.
pub fn json_line(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)
}

/// Writes `rows` under `header` in columns two spaces apart, text left-aligned
/// and the rest (figures) right-aligned; control characters in a cell (from a
/// ledger or an AWS answer) are written as escapes ([`printable`]).
///
/// [`printable`]: sagemeter::redact::printable
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| sagemeter::redact::printable(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric = |i: usize| {
        rows.iter().all(|r| {
            r.get(i).is_none_or(|c| {
                c == "-"
                    || c.trim_start_matches(['$', '-'])
                        .starts_with(|ch: char| ch.is_ascii_digit())
            })
        })
    };
    let right: Vec<bool> = (0..header.len())
        .map(|i| !rows.is_empty() && numeric(i))
        .collect();
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right[i] {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, header.to_vec())?;
    for row in rows {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

#[cfg(feature = "account")]
/// Money for a table: to 1/100 of a cent (`$1.2346`), or to four significant
/// digits below a cent (`$0.000004127`), so that a call's cost is never shown as
/// `$0`. JSON keeps amounts exact.
pub fn usd4(amount: Decimal) -> String {
    if !amount.is_zero() && amount.abs() < Decimal::new(1, 2) {
        usd(amount.round_sf(4).unwrap_or(amount))
    } else {
        usd(amount.round_dp(4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagemeter::pricing::{PriceError, PriceKey, Snapshot};

    /// The CLI has no price override: the library's errors, as the CLI shows them,
    /// never advise one, and say what a CLI user can do.
    #[test]
    fn library_advice_to_set_a_price_override_becomes_what_a_cli_user_can_do() {
        let snapshot = Snapshot::bundled();
        let text = |key: PriceKey| -> String {
            let error = snapshot.get(&key).unwrap_err();
            for_cli(&error.to_string()).into_owned()
        };
        let not_found = text(PriceKey::hosting("us-east-1", "ml.nope.xlarge"));
        assert_eq!(
            not_found,
            "no price for hosting ml.nope.xlarge in us-east-1: check the instance type and \
             the region (--region)"
        );
        let not_covered = text(PriceKey::DataIn {
            region: "ap-south-1".into(),
        });
        assert!(
            not_covered.ends_with(
                "the live AWS Price List is needed: run with credentials allowed \
                 pricing:GetProducts"
            ),
            "{not_covered}"
        );
        let china = text(PriceKey::hosting("cn-north-1", "ml.m5.xlarge"));
        assert!(
            china.ends_with(
                "China's regions are priced in CNY only, which sagemeter does not convert: \
                 the CLI cannot price them (a program using the sagemeter library can, with \
                 a USD price override)"
            ),
            "{china}"
        );
        let currency = PriceError::OtherCurrency {
            key: PriceKey::hosting("cn-north-1", "ml.m5.xlarge"),
            currencies: "CNY".into(),
        };
        let currency = for_cli(&currency.to_string()).into_owned();
        assert!(
            currency.ends_with(
                "sagemeter bills in USD, so the CLI cannot price it (a program using the \
                 sagemeter library can, with a USD price override)"
            ),
            "{currency}"
        );
        let sovereign = text(PriceKey::hosting("eusc-de-east-1", "ml.m5.xlarge"));
        assert!(
            sovereign.ends_with(
                "its partition's Price List is out of sagemeter's reach: the CLI cannot price \
                 it (a program using the sagemeter library can, with price overrides)"
            ),
            "{sovereign}"
        );
        for text in [not_found, not_covered, china, currency, sovereign] {
            assert!(!text.contains("set a"), "{text}");
            assert!(!text.contains("set price"), "{text}");
        }
    }

    /// In an ISO region or the AWS European Sovereign Cloud the library asks no
    /// Price List and says what a program can do; the CLI says what it cannot.
    #[tokio::test]
    async fn a_partition_without_a_reachable_price_list_says_the_cli_cannot_price_it() {
        use sagemeter::pricing::{LivePrices, PriceSource};
        let config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::from_static("eusc-de-east-1"))
            .build();
        let err = LivePrices::from_sdk_config(&config)
            .price(&PriceKey::hosting("eusc-de-east-1", "ml.m5.xlarge"))
            .await
            .unwrap_err();
        let text = for_cli(&err.to_string()).into_owned();
        assert!(
            text.ends_with(
                "none was asked; the CLI cannot price it (a program using the sagemeter \
                 library can, with price overrides or a Price List configuration of the \
                 commercial partition)"
            ),
            "{text}"
        );
        assert!(!text.contains("ClientBuilder"), "{text}");
    }

    /// Only the library's advice where the library puts it is rewritten: a name, a
    /// path or a quoted message that contains the same words elsewhere is shown as
    /// it is, and so is a clause that is those words alone but no library advice.
    #[test]
    fn words_like_the_library_advice_elsewhere_in_a_message_are_left_alone() {
        for text in [
            "cannot read ledger `/data/set a price override/calls.jsonl`: permission denied",
            "tag `team=set a price override` is not allowed",
            "the model said \"set a price override, then retry\"",
            "set a price override",
            "note: set a USD price override for it, or not",
        ] {
            assert_eq!(for_cli(text), text);
        }
        // The library's advice after such a name is still rewritten, the name kept.
        let reason = "no price for hosting ml.set a price override in us-east-1: check \
                      the instance type and region, or set a price override";
        assert_eq!(
            for_cli(reason),
            "no price for hosting ml.set a price override in us-east-1: check the instance \
             type and the region (--region)"
        );
        // Advice ends its clause: a hint after it (`; ...`) stays.
        let error = Snapshot::bundled()
            .get(&PriceKey::hosting("us-east1", "ml.m5.xlarge"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            for_cli(&error),
            "no price for hosting ml.m5.xlarge in us-east1: check the instance type and the \
             region (--region); `us-east1` is not an AWS region: did you mean `us-east-1`?"
        );
    }

    /// An inference component's unknown share: the library advises stating the
    /// instance's resources on the client builder, which the CLI cannot; it says
    /// to let the live Price List answer, or, when that answer did not say, that
    /// the CLI cannot state them.
    #[test]
    fn an_unknown_component_share_says_what_a_cli_user_can_do() {
        let snapshot = "inference component `small`: the accelerators of an ml.g5.12xlarge \
                        are unknown (the rate is from the price snapshot, which carries no \
                        instance resources: only a live Price List answer does); state them \
                        with ClientBuilder::instance_resources";
        assert_eq!(
            for_cli(snapshot),
            "inference component `small`: the accelerators of an ml.g5.12xlarge are unknown \
             (the rate is from the price snapshot, which carries no instance resources: only \
             a live Price List answer does); run with the live AWS Price List reachable \
             (credentials allowed pricing:GetProducts): its answer carries them"
        );
        let live = "inference component `small`: the accelerators of an ml.g5.12xlarge are \
                    unknown (the Price List did not say); state them with \
                    ClientBuilder::instance_resources";
        assert_eq!(
            for_cli(live),
            "inference component `small`: the accelerators of an ml.g5.12xlarge are unknown \
             (the Price List did not say); the CLI cannot state them (a program using the \
             sagemeter library can, with ClientBuilder::instance_resources)"
        );
    }

    #[test]
    fn money_is_printed_exactly_without_trailing_zeros() {
        assert_eq!(usd("0.000015972222000".parse().unwrap()), "$0.000015972222");
        assert_eq!(usd(Decimal::ZERO), "$0");
        assert_eq!(usd("-0.5".parse().unwrap()), "-$0.5");
        // A negative zero (a difference of equal amounts) is no loss.
        assert_eq!(usd(-Decimal::ZERO), "$0");
    }

    #[cfg(feature = "account")]
    #[test]
    fn table_money_keeps_four_significant_digits_below_a_cent() {
        assert_eq!(usd4("11.00321234".parse().unwrap()), "$11.0032");
        assert_eq!(usd4("0.000004126901".parse().unwrap()), "$0.000004127");
        assert_eq!(usd4("-0.0123456".parse().unwrap()), "-$0.0123");
    }

    #[test]
    fn a_cell_cannot_write_control_characters_to_the_terminal() {
        let mut out = Vec::new();
        let rows = vec![vec![
            "e\u{1b}]0;pwned\u{7}\r\nforged  1".to_owned(),
            "2".to_owned(),
        ]];
        table(&mut out, &["ENDPOINT", "CALLS"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.contains(r"e\u{1b}]0;pwned\u{7}\r\nforged  1"),
            "{text}"
        );
    }

    #[test]
    fn model_output_is_escaped_on_a_terminal_only_even_split_mid_character() {
        let said = "é\u{1b}]0;pwned\u{7}\nok".as_bytes();
        // "é" is 2 bytes: cut after its first, and again inside the sequence.
        let parts = [&said[..1], &said[1..4], &said[4..]];
        let written = |terminal: bool| {
            let mut text = ModelText::new(terminal);
            let mut out = Vec::new();
            for part in parts {
                text.write(&mut out, part).unwrap();
            }
            text.finish(&mut out).unwrap();
            out
        };
        assert_eq!(written(false), said, "a pipe gets the bytes as they came");
        assert_eq!(
            String::from_utf8(written(true)).unwrap(),
            "é\\u{1b}]0;pwned\\u{7}\nok"
        );
        // Bytes that are no text, and a character cut short at the end.
        let mut text = ModelText::new(true);
        let mut out = Vec::new();
        text.write(&mut out, b"a\xffb\xc3").unwrap();
        text.finish(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\u{fffd}b\u{fffd}");
    }

    #[test]
    fn latency_is_rounded_to_a_tenth_of_a_millisecond() {
        assert_eq!(millis(Duration::from_micros(12_345)), 12.3);
    }
}
