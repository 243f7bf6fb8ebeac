//! `sagemeter invoke`: call an endpoint N times, print each call's receipt and a summary.
//!
//! Before anything is sent, the endpoint is described (`DescribeEndpoint` +
//! `DescribeEndpointConfig`): an endpoint that does not exist stops the command with
//! an error naming it. Not being allowed to describe it is not fatal: the calls go
//! out and their receipts say why they could not be priced.
//!
//! All calls share one metered client, so running totals, price look-ups and endpoint
//! discovery are shared too and the receipts add up to the summary's total.
//!
//! Text output (stdout): the endpoint's deployment, the response body of the first
//! call to finish, one receipt line per call (as calls finish; `#k` is the order calls
//! were sent in), then a summary. `--json` output: JSON lines, one object per call
//! (`"type":"receipt"`, the receipt's fields; or `"type":"error"`), then one
//! `"type":"summary"` object. Amounts are decimal strings in USD. No request or
//! response payload is ever written in JSON mode.

use crate::interrupt::{self, Interrupts};
use crate::output::{eprint, json_line, millis, usd};
use crate::{CliError, GlobalArgs, aws, failure};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointOutput;
use aws_sdk_sagemakerruntime::primitives::Blob;
use rust_decimal::Decimal;
use sagemeter::billing::{Accrual, LinePrice};
use sagemeter::endpoint::{DiscoveryError, EndpointProfile, VariantBilling};
use sagemeter::report::nearest_rank;
use sagemeter::{Cost, Metered};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// Most calls one run may make.
const MAX_CALLS: u32 = 1_000_000;
/// Most calls in flight at once.
const MAX_CONCURRENCY: u32 = 256;

/// Call an endpoint and see what each call cost.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  sagemeter invoke demo-realtime --body '{\"inputs\":\"hello\"}'
  sagemeter invoke demo-serverless --body @request.json -n 100 --concurrency 8
  echo '{\"inputs\":\"hi\"}' | sagemeter invoke my-endpoint --body - --json | jq .

With --json: one JSON object per line: a \"receipt\" (or \"error\") per call, then a
\"summary\". Amounts are exact decimal strings in USD. Payloads are never included.")]
pub struct InvokeArgs {
    /// Endpoint name.
    #[arg(value_name = "ENDPOINT", value_parser = parse_endpoint_name)]
    pub endpoint: String,

    /// Request body: the text itself, @FILE to read a file, or - to read stdin.
    /// With a JSON content type the body must be valid JSON. A body beginning with
    /// `-` (`-1`) is taken as it is.
    #[arg(
        long,
        short = 'b',
        value_name = "JSON|@FILE|-",
        allow_hyphen_values = true,
        value_parser = BodyArg::parse,
        required_unless_present = "input_location",
        conflicts_with = "input_location"
    )]
    pub body: Option<BodyArg>,

    /// MIME type of the body.
    #[arg(long, value_name = "TYPE", default_value = "application/json")]
    pub content_type: String,

    /// Desired MIME type of the response.
    #[arg(long, value_name = "TYPE")]
    pub accept: Option<String>,

    /// How many calls to make.
    #[arg(
        short = 'n',
        long = "calls",
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CALLS))
    )]
    pub calls: u32,

    /// At most this many calls in flight at once.
    #[arg(
        short = 'c',
        long,
        value_name = "C",
        default_value_t = 1,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONCURRENCY))
    )]
    pub concurrency: u32,

    /// Seconds to wait for the endpoint to start answering a call (1 to 3600; default
    /// 70, as AWS advises: SageMaker gives a real-time model 60 s). A call timed out
    /// after it was sent has a receipt: the model may have run.
    #[arg(long, value_name = "SECONDS", default_value_t = 70, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    /// Machine-readable output: JSON lines (receipts, then a summary).
    #[arg(long)]
    pub json: bool,

    /// InvokeEndpointWithResponseStream: print the payload parts as they arrive,
    /// then the receipt (one call).
    #[arg(long, conflicts_with_all = ["calls", "concurrency", "submit_async"])]
    pub stream: bool,

    /// InvokeEndpointAsync: submit one request and print the submission receipt
    /// (compute is attributed when the output lands; see the library's settle API).
    #[arg(long = "async", conflicts_with_all = ["calls", "concurrency"])]
    pub submit_async: bool,

    /// With --async: the S3 URI of the input (instead of --body).
    #[arg(long, value_name = "S3_URI", requires = "submit_async")]
    pub input_location: Option<String>,

    /// With --async and --input-location: the input's size in bytes, to bill data in
    /// (at most 1 GB, SageMaker's limit).
    #[arg(long, value_name = "BYTES", requires = "input_location", conflicts_with = "body",
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(0..=sagemeter::client::MAX_ASYNC_INPUT_BYTES))]
    pub input_bytes: Option<u64>,

    /// Append each call's receipt to this JSON Lines ledger (created 0600); a
    /// directory (or a path ending in `/`) gets a rolling ledger, one file per UTC hour.
    #[arg(long, value_name = "FILE|DIR/")]
    pub ledger: Option<PathBuf>,

    /// With a directory --ledger: also start a new file when the current one's
    /// receipts would grow beyond this many bytes (each file also holds the few KB
    /// of definitions they refer to, not counted by the run that started the file;
    /// a run going on with a file an earlier run started counts all its bytes).
    #[arg(long, value_name = "BYTES", requires = "ledger", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ledger_roll_bytes: Option<u64>,

    /// Attribute every call to KEY=VALUE (repeatable, one value per key): on receipts,
    /// logs and the ledger.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// An enforced budget (repeatable): SCOPE=USD/PERIOD, SCOPE `client`,
    /// `endpoint` (the invoked one) or `tag:KEY=VALUE`, PERIOD `hour`, `day` or
    /// `month`; e.g. `endpoint=25/day`. A call that does not fit is refused before
    /// it is sent. Process-local, or fleet-wide with --fleet-table.
    #[arg(long = "budget", value_name = "SCOPE=USD/PERIOD", value_parser = BudgetArg::parse)]
    pub budgets: Vec<BudgetArg>,

    /// What each call is assumed to cost before it is sent, in USD, for --budget
    /// (default: the most expensive of the last 20 calls, $0.01 before the first).
    #[arg(long, value_name = "USD", value_parser = parse_usd, requires = "budgets",
          allow_negative_numbers = true)]
    pub estimate: Option<Decimal>,

    /// Share running totals and budgets with every process using this DynamoDB
    /// table (made by `sagemeter fleet init`); receipts carry running_fleet_usd.
    #[cfg(feature = "fleet")]
    #[arg(long, value_name = "TABLE")]
    pub fleet_table: Option<String>,

    /// With --fleet-table: seconds a lease holds after its last renewal, i.e. how
    /// long a killed process's unspent budget stays out of the fleet's reach.
    #[cfg(feature = "fleet")]
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "fleet_table",
          allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lease_ttl: u64,

    /// With --fleet-table: seconds the fleet's clocks may differ by. Another
    /// process's lapsed lease is taken back only this long after its end, and its
    /// load counts this much longer.
    #[cfg(feature = "fleet")]
    #[arg(long, value_name = "SECS", requires = "fleet_table", allow_negative_numbers = true,
          default_value_t = sagemeter::fleet::DEFAULT_CLOCK_SKEW.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=sagemeter::fleet::MAX_CLOCK_SKEW.as_secs()))]
    pub clock_skew: u64,

    /// With --fleet-table: the share of a budget leased at a time, in percent.
    #[cfg(feature = "fleet")]
    #[arg(long, value_name = "PCT", default_value_t = 5, requires = "fleet_table",
          allow_negative_numbers = true, value_parser = parse_lease_percent)]
    pub lease_percent: u32,
}

/// `--budget SCOPE=USD/PERIOD`.
#[derive(Debug, Clone)]
pub struct BudgetArg {
    /// `None`: the invoked endpoint (known once the arguments are all read).
    scope: Option<sagemeter::budget::BudgetScope>,
    usd: Decimal,
    period: sagemeter::budget::BudgetPeriod,
}

impl BudgetArg {
    fn parse(text: &str) -> Result<BudgetArg, String> {
        use sagemeter::budget::{BudgetPeriod, BudgetScope};
        no_control_characters(text, "a budget")?;
        let usage = || {
            format!(
                "`{text}` is not SCOPE=USD/PERIOD (e.g. endpoint=25/day, client=5/hour, \
                 tag:team=search=100/month)"
            )
        };
        let (scope, limit) = text.rsplit_once('=').ok_or_else(usage)?;
        let (usd, period) = limit.split_once('/').ok_or_else(usage)?;
        let scope = match scope {
            "client" => Some(BudgetScope::Client),
            "endpoint" => None,
            _ => match scope.strip_prefix("tag:").and_then(|t| t.split_once('=')) {
                Some((key, value)) if !key.is_empty() => Some(BudgetScope::tag(key, value)),
                _ => {
                    return Err(format!(
                        "{}: SCOPE is client, endpoint or tag:KEY=VALUE",
                        usage()
                    ));
                }
            },
        };
        let period = match period {
            "hour" => BudgetPeriod::Hour,
            "day" => BudgetPeriod::Day,
            "month" => BudgetPeriod::Month,
            _ => return Err(format!("{}: PERIOD is hour, day or month", usage())),
        };
        let usd = parse_usd(usd)?;
        if usd.is_zero() {
            return Err(format!("`{text}`: a budget of $0 refuses every call"));
        }
        Ok(BudgetArg { scope, usd, period })
    }

    fn budget(
        &self,
        endpoint: &str,
        estimate: Option<Decimal>,
    ) -> Result<sagemeter::budget::Budget, String> {
        let scope = self
            .scope
            .clone()
            .unwrap_or_else(|| sagemeter::budget::BudgetScope::endpoint(endpoint));
        // The option's own words (what is wrong, what to do), named by the flag.
        let said = |flag: &str, e: sagemeter::Error| match e {
            sagemeter::Error::Config(config) => format!("{flag}: {config}"),
            e => format!("{flag}: {e}"),
        };
        let budget = sagemeter::budget::Budget::enforce(scope, self.period, self.usd)
            .map_err(|e| said("--budget", e))?;
        match estimate {
            Some(usd) => budget
                .estimate(sagemeter::budget::Estimate::Fixed { usd })
                .map_err(|e| said("--estimate", e)),
            None => Ok(budget),
        }
    }
}

/// A non-negative amount of USD, as an exact decimal.
fn parse_usd(text: &str) -> Result<Decimal, String> {
    match text.trim_start_matches('$').parse::<Decimal>() {
        Ok(usd) if !usd.is_sign_negative() => Ok(usd),
        _ => Err(format!("`{text}` is not an amount of USD (e.g. 25 or 0.5)")),
    }
}

/// `5` or `5%`: a whole percentage from 1 to 100.
#[cfg(feature = "fleet")]
fn parse_lease_percent(text: &str) -> Result<u32, String> {
    match text.strip_suffix('%').unwrap_or(text).parse::<u32>() {
        Ok(p) if (1..=100).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is not a whole percentage from 1 to 100 (e.g. 5 or 5%)"
        )),
    }
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    no_control_characters(text, "a tag")?;
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Refuses `text`, given for `what`, when it holds a control character: it would
/// reach ledgers and reports' tables.
fn no_control_characters(text: &str, what: &str) -> Result<(), String> {
    match text.chars().any(char::is_control) {
        true => Err(format!(
            "`{}` holds a control character (an escape, a line break): not {what}",
            sagemeter::redact::printable(text)
        )),
        false => Ok(()),
    }
}

/// Where the request body comes from.
#[derive(Debug, Clone)]
pub enum BodyArg {
    /// The argument itself.
    Inline(String),
    /// `@FILE`.
    File(PathBuf),
    /// `-`: standard input.
    Stdin,
}

impl BodyArg {
    fn parse(text: &str) -> Result<BodyArg, String> {
        Ok(match text {
            "-" => BodyArg::Stdin,
            _ => match text.strip_prefix('@') {
                Some("") => return Err("`@` needs a file name, e.g. @request.json".into()),
                Some(path) => BodyArg::File(PathBuf::from(path)),
                None => BodyArg::Inline(text.to_owned()),
            },
        })
    }

    /// The bytes to send, at most [`MAX_BODY_BYTES`]. Unreadable input is a usage
    /// error: nothing has been sent.
    fn read(&self) -> Result<Vec<u8>, CliError> {
        let body = match self {
            BodyArg::Inline(text) => text.as_bytes().to_vec(),
            BodyArg::File(path) => std::fs::File::open(path)
                .and_then(|file| read_at_most(file, MAX_BODY_BYTES))
                .map_err(|e| {
                    CliError::Usage(format!("cannot read the body file {}: {e}", path.display()))
                })?,
            BodyArg::Stdin => read_at_most(std::io::stdin(), MAX_BODY_BYTES)
                .map_err(|e| CliError::Usage(format!("cannot read the body from stdin: {e}")))?,
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(CliError::Usage(format!(
                "the body is over {} MiB: SageMaker takes at most 25 MB in a request (4 MB \
                 on a serverless endpoint); put a larger input in S3 and use --async \
                 --input-location",
                MAX_BODY_BYTES >> 20
            )));
        }
        Ok(body)
    }
}

/// The largest body read: beyond what SageMaker takes in any request (25 MB), so
/// that `--body @/dev/zero` or a stream that never ends is refused, not read into
/// memory until it runs out.
const MAX_BODY_BYTES: usize = 32 << 20;

/// Up to `limit + 1` bytes of `source`: one more than `limit` says it is longer.
fn read_at_most(source: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    source.take(limit as u64 + 1).read_to_end(&mut body)?;
    Ok(body)
}

/// SageMaker endpoint names: 1 to 63 letters, digits and hyphens, starting and
/// ending with a letter or digit.
fn parse_endpoint_name(text: &str) -> Result<String, String> {
    let valid = (1..=63).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a SageMaker endpoint name (1-63 letters, digits and hyphens, \
             not starting or ending with a hyphen)"
        ))
    }
}

fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Whether `body` is one JSON value, and if not, why (serde_json's message, as when
/// parsing it into a `serde_json::Value`), without building it: a 25 MB array of
/// zeros as a `Value` holds hundreds of MB before anything is sent.
///
/// Not `serde::de::IgnoredAny`: serde_json skips the strings of a value it ignores
/// without checking that they are UTF-8 (JSON is), and its numbers without
/// checking their range (`1e999` would pass). Strings here are parsed
/// as a `Value`'s are (borrowed from the body, or unescaped into one reused buffer),
/// numbers too, to the same nesting limit.
fn check_json(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<JsonCheck>(body).map(|_| ())
}

/// A JSON value seen and dropped, every part of it parsed ([`check_json`]).
struct JsonCheck;

impl<'de> serde::Deserialize<'de> for JsonCheck {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonCheck)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonCheck {
    type Value = JsonCheck;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_i64<E>(self, _: i64) -> Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_u64<E>(self, _: u64) -> Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_f64<E>(self, _: f64) -> Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_str<E>(self, _: &str) -> Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_unit<E>(self) -> Result<JsonCheck, E> {
        Ok(JsonCheck)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<JsonCheck, A::Error> {
        while seq.next_element::<JsonCheck>()?.is_some() {}
        Ok(JsonCheck)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonCheck, A::Error> {
        while map.next_entry::<JsonCheck, JsonCheck>()?.is_some() {}
        Ok(JsonCheck)
    }
}

/// One finished call, as the workers hand it over.
struct Finished {
    /// 0-based, in sending order.
    index: u32,
    /// `None`: cancelled by a second interrupt (a call already sent has its
    /// `cancelled` receipt in the ledger and the client's totals, not here).
    result: Option<sagemeter::Result<Metered<InvokeEndpointOutput>>>,
}

/// What the run adds up to; the `--json` summary object.
#[derive(Debug, Default, Serialize)]
struct Summary {
    #[serde(rename = "type")]
    kind: &'static str,
    endpoint: String,
    region: String,
    /// Calls asked for (`-n`).
    requested: u32,
    /// Calls that finished (successfully or not); not those refused before they
    /// were sent (a budget, an invalid request, no credentials to sign them),
    /// which are in `not_sent`.
    calls: u32,
    /// Calls that failed.
    failed: u32,
    /// Calls cancelled in flight by a second interrupt (not in `calls`).
    #[serde(skip_serializing_if = "is_zero")]
    cancelled: u32,
    /// What the cancelled calls' receipts cost (in the ledger, not in the total).
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_usd: Option<Decimal>,
    /// Calls never sent: `requested` − `calls` − `cancelled` (a call refused
    /// before it was sent included).
    not_sent: u32,
    /// Why calls stopped before every requested one was sent: `SIGINT` or `SIGTERM`
    /// (an interrupt, also the exit code's reason), `failure` (a call failed), `stdout
    /// closed` (the reader left); `null` when all were sent and nothing interrupted.
    stopped_by: Option<&'static str>,
    /// Sum of every receipt (failed calls that the model answered are billed too).
    total_cost_usd: Decimal,
    /// total ÷ calls × 1,000; `null` when no call was billed (no receipt: $0
    /// would be a figure nothing stands behind), or when every receipt has a line
    /// no source could price (the figure would be what was priced, not the cost).
    /// With some such receipts it leaves their lines out, as the total does.
    cost_per_1000_calls_usd: Option<Decimal>,
    /// Receipts with a line that could not be priced: `total_cost_usd` leaves those
    /// lines out (see `unpriced_reasons`).
    #[serde(skip_serializing_if = "is_zero")]
    unpriced_calls: u32,
    latency_ms: Latency,
    /// Receipts per price source (`live`, `cache`, `snapshot`, `override`, `unpriced`).
    by_price_source: BTreeMap<String, u32>,
    /// Wider than a receipt's u64: a million receipts of large counts add up.
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u128>,
    /// Receipts that reported input tokens, and output tokens: the sums above are
    /// of those (TGI, for one, reports no input).
    #[serde(skip_serializing_if = "is_zero")]
    calls_with_input_tokens: u32,
    #[serde(skip_serializing_if = "is_zero")]
    calls_with_output_tokens: u32,
    /// Receipts summed.
    #[serde(skip)]
    receipts: u32,
    /// Every distinct note of the prices used, by source (`source: note`), whatever
    /// the source: a fallback's, a live price's (a serverless free tier's) too.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    price_notes: BTreeSet<String>,
    /// Distinct reasons some lines could not be priced.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    unpriced_reasons: BTreeSet<String>,
    /// The latest receipt's accrual (as on receipts): its variant's wall-clock
    /// standing cost while it was being called, and the share of it the receipts
    /// allocated (instance and provisioned-concurrency variants only).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_latest"
    )]
    accrual: Option<LatestAccrual>,
    /// The latest accrual of each variant, keyed by variant: an accrual is one
    /// variant's, so the latest receipt's says nothing of the others. Written only
    /// when two or more variants have one.
    #[serde(
        skip_serializing_if = "fewer_than_two",
        serialize_with = "serialize_accruals"
    )]
    accruals: BTreeMap<String, LatestAccrual>,
    /// How the endpoint is deployed, when it could be described.
    endpoint_profile: Option<EndpointProfile>,
}

/// An accrual, and the running client total of the receipt that carried it: that
/// total rises in the order receipts are recorded (the order their accruals were
/// taken), which concurrent workers may not hand them over in.
#[derive(Debug, Clone)]
struct LatestAccrual {
    running_client_usd: Decimal,
    accrual: Accrual,
}

impl LatestAccrual {
    /// Keeps `cost`'s accrual in `slot` when it was recorded after the one there
    /// (a receipt recorded at the same running total, a $0 one, replaces it).
    fn keep_latest(slot: &mut Option<LatestAccrual>, cost: &Cost, accrual: &Accrual) {
        if slot
            .as_ref()
            .is_none_or(|kept| cost.running_client_usd >= kept.running_client_usd)
        {
            *slot = Some(LatestAccrual {
                running_client_usd: cost.running_client_usd,
                accrual: accrual.clone(),
            });
        }
    }
}

fn serialize_latest<S: serde::Serializer>(
    latest: &Option<LatestAccrual>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    latest.as_ref().map(|l| &l.accrual).serialize(serializer)
}

fn serialize_accruals<S: serde::Serializer>(
    accruals: &BTreeMap<String, LatestAccrual>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(accruals.iter().map(|(variant, l)| (variant, &l.accrual)))
}

fn fewer_than_two(accruals: &BTreeMap<String, LatestAccrual>) -> bool {
    accruals.len() < 2
}

#[derive(Debug, Default, Serialize)]
struct Latency {
    p50: Option<f64>,
    p95: Option<f64>,
    max: Option<f64>,
}

#[derive(Serialize)]
pub(crate) struct ReceiptLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// 1-based, in sending order.
    pub(crate) call: u32,
    #[serde(flatten)]
    pub(crate) cost: &'a Cost,
}

#[derive(Serialize)]
pub(crate) struct ErrorLine<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) call: u32,
    pub(crate) error: String,
    /// The failed call's receipt, when it was billed (the model ran and answered an error).
    pub(crate) receipt: Option<&'a Cost>,
}

/// Runs `sagemeter invoke`.
pub async fn run(
    args: InvokeArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // A key given twice would keep one value and drop the other without a word.
    for (i, (key, _)) in args.tags.iter().enumerate() {
        if args.tags[..i].iter().any(|(earlier, _)| earlier == key) {
            return Err(CliError::Usage(format!(
                "--tag {key}=… is given twice: a call carries one value per key"
            )));
        }
    }
    let body = match &args.body {
        Some(body) => body.read()?,
        None => Vec::new(),
    };
    // Over SageMaker's inline limit: said in flags, before the endpoint is looked up.
    if args.submit_async && body.len() > sagemeter::client::MAX_ASYNC_INLINE_BYTES {
        return Err(CliError::Usage(format!(
            "the body is {} bytes; SageMaker takes at most {} bytes inline for \
             InvokeEndpointAsync: put the input in S3 and pass --input-location (and \
             --input-bytes to bill its size)",
            body.len(),
            sagemeter::client::MAX_ASYNC_INLINE_BYTES
        )));
    }
    if !args.submit_async && body.len() > sagemeter::client::MAX_REQUEST_BYTES {
        return Err(CliError::Usage(format!(
            "the body is {} bytes; SageMaker takes at most {} bytes in a request (4 MB on a \
             serverless endpoint): put a larger input in S3 and use --async --input-location",
            body.len(),
            sagemeter::client::MAX_REQUEST_BYTES
        )));
    }
    // Header values: a control character (a pasted CR LF) would fail the request
    // as it is built, after the endpoint was looked up, as a failed call.
    no_control_characters(&args.content_type, "a content type").map_err(CliError::Usage)?;
    if let Some(accept) = &args.accept {
        no_control_characters(accept, "a media type to accept").map_err(CliError::Usage)?;
    }
    if args.body.is_some()
        && is_json_content_type(&args.content_type)
        && let Err(e) = check_json(&body)
    {
        return Err(CliError::Usage(format!(
            "the body is not valid JSON ({e}); fix it, or send it as it is with another \
             --content-type"
        )));
    }

    // The argument checks that need no AWS answer come before the AWS config is
    // loaded: a usage error (exit 2) whatever the environment, and nothing sent.
    for (key, value) in args.budgets.iter().filter_map(|b| match &b.scope {
        Some(sagemeter::budget::BudgetScope::Tag { key, value }) => Some((key, value)),
        _ => None,
    }) {
        // The CLI's calls carry only the --tag tags: a tag budget none of them
        // names covers no call, and would enforce nothing.
        if args.tags.iter().all(|(k, v)| k != key || v != value) {
            return Err(CliError::Usage(format!(
                "--budget tag:{key}={value}=…: no call carries that tag, so the budget would \
                 limit nothing; add --tag {key}={value} (tags are compared exactly, case \
                 included)"
            )));
        }
    }
    let budgets = (args.budgets.iter())
        .map(|budget| budget.budget(&args.endpoint, args.estimate))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Usage)?;
    // A directory (or a path ending in `/`) is a rolling ledger: hourly files.
    let rolling_ledger = args
        .ledger
        .as_ref()
        .map(|path| path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/'));
    if let (Some(path), Some(false), Some(_)) =
        (&args.ledger, rolling_ledger, args.ledger_roll_bytes)
    {
        return Err(CliError::Usage(format!(
            "--ledger-roll-bytes needs a directory --ledger (a path ending in /), not {}",
            path.display()
        )));
    }

    // The fleet's checks of the budgets (one enforced budget per scope and period,
    // a limit the table can keep), before any file is made or request sent.
    #[cfg(feature = "fleet")]
    let fleet = match &args.fleet_table {
        Some(table) => {
            let fleet = sagemeter::fleet::FleetConfig::dynamodb(table)
                .lease_ttl(Duration::from_secs(args.lease_ttl))
                .lease_percent(args.lease_percent)
                .clock_skew(Duration::from_secs(args.clock_skew));
            fleet
                .validate(&budgets)
                .map_err(|e| CliError::Usage(config_for_cli(&e)))?;
            Some(fleet)
        }
        None => None,
    };

    let sdk_config = aws::load(global).await?;
    let Some(region) = sdk_config.region().map(ToString::to_string) else {
        return Err(CliError::failed(
            "no AWS region: set AWS_REGION, a region in your AWS profile, or pass --region",
        ));
    };
    // A runtime that never answers fails the call after --timeout, instead of
    // holding the command until Ctrl-C (the SDK sets no such limit).
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .read_timeout(Duration::from_secs(args.timeout));
    let timeouts = match sdk_config.timeout_config() {
        Some(configured) => timeouts.take_unset_from(configured.to_builder()),
        None => timeouts,
    };
    let sdk_config = sdk_config
        .to_builder()
        .timeout_config(timeouts.build())
        .build();
    let mut builder = sagemeter::Client::builder(&sdk_config);
    for (key, value) in &args.tags {
        builder = builder.default_tag(key, value);
    }
    for budget in budgets {
        builder = builder.budget(budget);
    }
    #[cfg(feature = "fleet")]
    if let Some(fleet) = fleet {
        // A mistyped or missing table is said before any call is sent (not after
        // the calls, when their increments cannot be written) and before the
        // ledger's file is made.
        sagemeter::fleet::check_table(&sdk_config, fleet.table())
            .await
            .map_err(|e| CliError::Failed(Box::new(e)))?;
        builder = builder.fleet(fleet);
    }
    let mut ledger_kept = None;
    if let (Some(path), Some(rolling)) = (&args.ledger, rolling_ledger) {
        let ledger = if rolling {
            let mut rolling = sagemeter::ledger::JsonlLedger::rolling(path);
            if let Some(bytes) = args.ledger_roll_bytes {
                rolling = rolling.max_bytes(bytes);
            }
            rolling.open()
        } else {
            sagemeter::ledger::JsonlLedger::open(path)
        }
        .map_err(|e| CliError::Failed(Box::new(e)))?;
        ledger_kept = Some((path, ledger.clone()));
        builder = builder.sink(ledger);
    }
    // What the builder refuses is what the flags say, and was checked above (the
    // fleet's checks, the region); the CLI gives no client, override or label the
    // builder could refuse otherwise.
    let client = builder.build().map_err(|e| match e {
        sagemeter::Error::Config(e) => CliError::Usage(config_for_cli(&e)),
        e => CliError::Failed(Box::new(e)),
    })?;
    let result = run_with(&client, &args, body, &region, out).await;
    // Flushes the ledger: every receipt printed is also on disk, or this says why not.
    let mut problems = Vec::new();
    if let Err(e) = client.shutdown().await {
        problems.push(sagemeter::redact::error_chain(&e));
    }
    if let Some((path, ledger)) = ledger_kept
        && let Some(lost) = ledger_losses(path, &ledger.stats())
    {
        problems.push(lost);
    }
    after_shutdown(result, &problems)
}

/// A builder's refusal of what the flags set, said in the CLI's terms: the
/// library's advice to call a method (`Budget::alert`) is not the CLI user's.
fn config_for_cli(e: &sagemeter::ConfigError) -> String {
    match &e.hint {
        Some(hint) if hint.contains("Budget::alert") => format!(
            "--budget: {}: give one --budget per scope and period",
            e.problem
        ),
        _ => e.to_string(),
    }
}

/// The run's `result` once the client is shut down, with what the shutdown found
/// wrong (`problems`: the ledger lost receipts or could not be flushed), if
/// anything: that fails the run (exit 1), also an interrupted one, whose 130 or
/// 143 says every receipt printed is in the ledger. Said on stderr in any case.
fn after_shutdown(result: Result<(), CliError>, problems: &[String]) -> Result<(), CliError> {
    if problems.is_empty() {
        return result;
    }
    let after = problems.join("; ");
    match result {
        Ok(()) => Err(CliError::failed(after)),
        // The reader left (exit 0): what the ledger lost is the news.
        Err(CliError::Failed(e))
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Err(CliError::failed(after))
        }
        // Exit 1, saying both: the interrupt, and what the ledger lost.
        Err(CliError::Interrupted { message, .. }) => {
            Err(CliError::failed(format!("{message}; {after}")))
        }
        Err(e) => {
            eprint(&format!("error: {after}"));
            Err(e)
        }
    }
}

/// What the ledger lost, if anything: receipts dropped (its queue was full),
/// refused (it was shut down) or lost to write errors, from its counters.
fn ledger_losses(path: &std::path::Path, stats: &sagemeter::ledger::SinkStats) -> Option<String> {
    let lost = stats
        .dropped_full
        .saturating_add(stats.refused_closed)
        .saturating_add(stats.lost_on_error);
    (lost > 0).then(|| {
        format!(
            "the ledger {} is missing {lost} receipt(s): {} dropped (its queue was full: the \
             disk could not keep up), {} refused (it was already shut down), {} lost to \
             write errors",
            path.display(),
            stats.dropped_full,
            stats.refused_closed,
            stats.lost_on_error
        )
    })
}

/// Everything after the client exists: resolve, call, print.
async fn run_with(
    client: &sagemeter::Client,
    args: &InvokeArgs,
    body: Vec<u8>,
    region: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    // Resolve the endpoint before sending anything: an unknown name must not be
    // "called" (some emulators answer InvokeEndpoint for any name).
    // A mistyped region (`us-esat-1`) fails in ways that do not name it: said
    // when the endpoint cannot be found or described (a region newer than this
    // sagemeter gets the note too, and is never refused for it).
    let region_hint = sagemeter::pricing::unknown_region_hint(region);
    let profile = match client.meter().endpoint_profile(&args.endpoint).await {
        Ok(profile) => Some(profile),
        Err(DiscoveryError::NotFound { .. }) => {
            return Err(CliError::failed(format!(
                "unknown endpoint `{}`: no such SageMaker endpoint in {region} (check the name, \
                 --region/AWS_REGION and AWS_ENDPOINT_URL){}; nothing was sent",
                args.endpoint,
                region_hint.map_or_else(String::new, |hint| format!("; {hint}"))
            )));
        }
        Err(e) => {
            let error = sagemeter::redact::without_signed_request(&e.to_string()).into_owned();
            tracing::warn!(target: "sagemeter::cli", endpoint = %args.endpoint, %error,
                "cannot describe the endpoint; calling it anyway, receipts will say what could not be priced");
            if let Some(hint) = region_hint {
                eprint(&format!("note: {hint} (--region/AWS_REGION)"));
            }
            None
        }
    };

    if let Some(profile) = &profile {
        warm_prices(client.meter(), profile).await;
    }
    if !args.json {
        write_profile(out, &args.endpoint, region, profile.as_deref())?;
    }
    // From here an interrupt does not end the process: the calls stop, and
    // their receipts, the summary and the ledger are all written.
    let mut interrupts = Interrupts::listen();
    if args.submit_async {
        return crate::stream::run_async(client, args, body, &mut interrupts, out).await;
    }
    if args.stream {
        return crate::stream::run_stream(client, args, body, &mut interrupts, out).await;
    }

    // N calls, at most C in flight, one shared client. After a failure no new call
    // starts (the ones in flight finish): a broken endpoint should not be hammered.
    let body = Blob::new(body);
    let next = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Set by a second interrupt: calls in flight are dropped (cancelled receipts).
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    // Bounded: while the output is blocked (a reader that stopped reading, `| less`)
    // finished calls wait for it, and so do new ones; responses do not pile up.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Finished>(args.concurrency.max(1) as usize);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.min(args.calls) {
        let (client, body, next, stop, tx, mut cancelled) = (
            client.clone(),
            body.clone(),
            next.clone(),
            stop.clone(),
            tx.clone(),
            cancelled.clone(),
        );
        let (endpoint, content_type, accept) = (
            args.endpoint.clone(),
            args.content_type.clone(),
            args.accept.clone(),
        );
        let calls = args.calls;
        workers.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= calls {
                    break;
                }
                let mut request = client
                    .invoke_endpoint()
                    .endpoint_name(&endpoint)
                    .content_type(&content_type)
                    .body(body.clone());
                if let Some(accept) = &accept {
                    request = request.accept(accept);
                }
                let result = tokio::select! {
                    result = request.send() => Some(result),
                    Ok(_) = cancelled.wait_for(|cancel| *cancel) => None,
                };
                if !matches!(result, Some(Ok(_))) {
                    stop.store(true, Ordering::SeqCst);
                }
                if tx.send(Finished { index, result }).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    // Interrupts are heard by a task of their own, not by the loop that prints:
    // while the output is blocked, an interrupt still stops new calls at once,
    // and a second still cancels those in flight.
    let (heard, interrupt) = tokio::sync::watch::channel(None::<u8>);
    let listener = {
        let stop = stop.clone();
        // What it says goes to stderr from a thread of its own, not waited for: a
        // blocked stderr (`2>&1 | less`) must neither keep it from hearing the next
        // interrupt nor the process from exiting.
        let say = |line: String| {
            std::thread::spawn(move || eprint(&line));
        };
        tokio::spawn(async move {
            let code = interrupts.next().await;
            stop.store(true, Ordering::SeqCst);
            heard.send_replace(Some(code));
            say(format!(
                "{}: no new call starts; waiting for the calls in flight \
                 (interrupt again to cancel them)",
                interrupt::signal_name(code)
            ));
            loop {
                interrupts.next().await;
                cancel.send_replace(true);
                say("cancelling the calls in flight".to_owned());
            }
        })
    };

    let mut summary = Summary {
        kind: "summary",
        endpoint: args.endpoint.clone(),
        region: region.to_owned(),
        requested: args.calls,
        endpoint_profile: profile.as_deref().cloned(),
        ..Summary::default()
    };
    let mut latencies = Vec::with_capacity(args.calls as usize);
    let mut first_error: Option<sagemeter::Error> = None;
    let mut response_shown = false;
    // A write error (the reader left: `| head`) ends the output, not the calls in
    // flight: no new call starts, and those in flight finish here, so that their
    // receipts are made before the client shuts down.
    let mut printer = Printer::new(out);
    // Calls refused before they were sent (in `not_sent`).
    let mut refused_calls = 0u32;
    // What first stopped new calls, other than an interrupt.
    let mut stopped_by: Option<&'static str> = None;
    while let Some(Finished { index, result }) = rx.recv().await {
        let call = index + 1;
        let Some(result) = result else {
            summary.cancelled += 1;
            let message = "cancelled by an interrupt; if it was sent, its cancelled receipt \
                           is in the ledger, and counted apart from the summary's total";
            if args.json {
                printer.print(|out| {
                    json_line(
                        out,
                        &ErrorLine {
                            kind: "error",
                            call,
                            error: message.to_owned(),
                            receipt: None,
                        },
                    )
                });
            } else {
                printer.print(|out| writeln!(out, "#{call:<4} CANCELLED ({message})"));
            }
            continue;
        };
        // Refused before it was sent: not a call made, but one not sent.
        let refused = result
            .as_ref()
            .is_err_and(sagemeter::Error::refused_before_sending);
        if refused {
            refused_calls += 1;
        } else {
            summary.calls += 1;
        }
        match result {
            Ok(response) => {
                if !args.json && !response_shown {
                    response_shown = true;
                    printer.print(|out| write_response(out, call, &response));
                }
                let cost = response.cost();
                add(&mut summary, &mut latencies, cost);
                if args.json {
                    printer.print(|out| {
                        json_line(
                            out,
                            &ReceiptLine {
                                kind: "receipt",
                                call,
                                cost,
                            },
                        )
                    });
                } else {
                    printer.print(|out| {
                        writeln!(out, "#{call:<4} {}", crate::output::receipt_line(cost))
                    });
                }
            }
            Err(error) => {
                if !refused {
                    summary.failed += 1;
                }
                stopped_by.get_or_insert("failure");
                let receipt = match &error {
                    sagemeter::Error::Invoke { cost, .. } => cost.as_deref(),
                    _ => None,
                };
                if let Some(cost) = receipt {
                    add(&mut summary, &mut latencies, cost);
                }
                let message = failure::describe(&error);
                if args.json {
                    printer.print(|out| {
                        json_line(
                            out,
                            &ErrorLine {
                                kind: "error",
                                call,
                                error: message,
                                receipt,
                            },
                        )
                    });
                } else {
                    printer.print(|out| match receipt {
                        Some(cost) => writeln!(
                            out,
                            "#{call:<4} FAILED {}",
                            crate::output::receipt_line(cost)
                        ),
                        None if refused => writeln!(out, "#{call:<4} REFUSED (not sent)"),
                        None => writeln!(out, "#{call:<4} FAILED (not billed)"),
                    });
                    match refused {
                        true => eprint(&format!("call #{call} refused: {message}")),
                        false => eprint(&format!("call #{call} failed: {message}")),
                    }
                }
                first_error.get_or_insert(error);
            }
        }
        if printer.failed.is_some() {
            stop.store(true, Ordering::SeqCst);
            stopped_by.get_or_insert("stdout closed");
        }
    }
    // The channel closed: every worker is done with its calls.
    while workers.join_next().await.is_some() {}
    listener.abort();
    let interrupted = *interrupt.borrow();
    if summary.cancelled > 0 {
        // Cancelled calls were billed when dropped: the totals have them.
        summary.cancelled_usd = Some(client.meter().totals().client_usd - summary.total_cost_usd);
    }

    latencies.sort_unstable();
    summary.latency_ms = Latency {
        p50: nearest_rank(&latencies, 50).copied().map(millis),
        p95: nearest_rank(&latencies, 95).copied().map(millis),
        max: latencies.last().copied().map(millis),
    };
    summary.not_sent = args.calls.saturating_sub(summary.calls + summary.cancelled);
    summary.stopped_by = match interrupted {
        Some(code) => Some(interrupt::signal_name(code)),
        None if summary.not_sent > 0 => stopped_by,
        None => None,
    };
    summary.cost_per_1000_calls_usd = cost_per_1000_calls(&summary);
    debug_assert_eq!(
        summary.total_cost_usd + summary.cancelled_usd.unwrap_or_default(),
        client.meter().totals().client_usd,
        "the receipts add up to the client's running total"
    );
    if args.json {
        printer.print(|out| json_line(out, &summary));
    } else {
        printer.print(|out| write_summary(out, &summary));
    }
    printer.print(|out| out.flush());

    if let Some(code) = interrupted {
        return Err(CliError::Interrupted {
            code,
            message: format!(
                "interrupted by {}: {} call(s) finished, {} cancelled in flight, {} not sent",
                interrupt::signal_name(code),
                summary.calls,
                summary.cancelled,
                summary.not_sent
            ),
        });
    }
    match first_error {
        None => printer.failed.map_or(Ok(()), |e| Err(e.into())),
        // Rejected before sending (e.g. body over SageMaker's limit): an argument problem.
        Some(sagemeter::Error::InvalidRequest(message)) if summary.calls == 0 => {
            Err(CliError::Usage(message))
        }
        Some(error) => {
            let first = failure::describe(&error);
            let mut what = Vec::new();
            if summary.failed > 0 {
                what.push(format!(
                    "{} of {} calls failed",
                    summary.failed, summary.calls
                ));
            }
            if refused_calls > 0 {
                what.push(format!("{refused_calls} refused before sending"));
            }
            let not_sent = summary.not_sent.saturating_sub(refused_calls);
            Err(CliError::failed(format!(
                "{}{}; first failure: {first}",
                what.join(", "),
                if not_sent > 0 {
                    format!(" ({not_sent} not sent after the failure)")
                } else {
                    String::new()
                }
            )))
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Writes to stdout until a write fails, then nothing more; keeps the error.
struct Printer<'a> {
    out: &'a mut dyn Write,
    failed: Option<std::io::Error>,
}

impl<'a> Printer<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        Printer { out, failed: None }
    }

    fn print(&mut self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        if self.failed.is_none()
            && let Err(e) = write(&mut *self.out)
        {
            self.failed = Some(e);
        }
    }
}

/// Looks up (and so caches) every rate the endpoint's calls and standing charges need
/// ([`Meter::price_keys`](sagemeter::Meter::price_keys): data, compute of every variant
/// including shadow and pending ones, provisioned concurrency, storage), all at once,
/// before the first call. The library starts the same look-ups in the background when
/// it discovers the profile, but a call returns only once its answer and its rates are
/// both in: without waiting here, the first calls could return up to the Price List's
/// timeout (1 s) late.
async fn warm_prices(meter: &sagemeter::Meter, profile: &EndpointProfile) {
    let mut lookups = tokio::task::JoinSet::new();
    for key in meter.price_keys(profile) {
        let meter = meter.clone();
        // The answer does not matter here: failures and fallbacks are cached too, and
        // each receipt says what priced it.
        lookups.spawn(async move {
            let _ = meter.rate(&key).await;
        });
    }
    while lookups.join_next().await.is_some() {}
}

/// The summary's cost per 1,000 calls: none without a receipt, nor when every
/// receipt has an unpriced line (a lower bound of unknown distance, e.g. the data
/// lines alone when no source prices the compute).
fn cost_per_1000_calls(summary: &Summary) -> Option<Decimal> {
    if summary.calls == 0 || summary.receipts == 0 || summary.unpriced_calls >= summary.receipts {
        return None;
    }
    Some(sagemeter::billing::round_cost(
        summary.total_cost_usd * Decimal::from(1000) / Decimal::from(summary.calls),
    ))
}

/// Adds one receipt to the summary.
fn add(summary: &mut Summary, latencies: &mut Vec<Duration>, cost: &Cost) {
    summary.total_cost_usd += cost.cost_usd;
    latencies.push(cost.usage.latency);
    let source = cost.price_source().map_or("unpriced", |s| s.as_str());
    *summary
        .by_price_source
        .entry(source.to_owned())
        .or_default() += 1;
    summary.receipts += 1;
    if let Some(n) = cost.usage.input_tokens {
        let total = summary.input_tokens.get_or_insert(0);
        *total = total.saturating_add(u128::from(n));
        summary.calls_with_input_tokens += 1;
    }
    if let Some(n) = cost.usage.output_tokens {
        let total = summary.output_tokens.get_or_insert(0);
        *total = total.saturating_add(u128::from(n));
        summary.calls_with_output_tokens += 1;
    }
    for line in &cost.lines {
        if let LinePrice::Priced { provenance, .. } = &line.price
            && let Some(note) = &provenance.note
        {
            summary
                .price_notes
                .insert(format!("{}: {note}", provenance.source));
        }
    }
    let mut unpriced = false;
    for reason in cost.unpriced_reasons() {
        unpriced = true;
        summary.unpriced_reasons.insert(reason.to_owned());
    }
    summary.unpriced_calls += u32::from(unpriced);
    // The latest, not the largest: an accrual is its variant's (another variant's
    // may be smaller), and with a fleet it restarts at the fleet's UTC midnight.
    if let Some(accrual) = &cost.accrual {
        LatestAccrual::keep_latest(&mut summary.accrual, cost, accrual);
        let variant = cost.variant.as_deref().unwrap_or("-");
        let mut kept = summary.accruals.remove(variant);
        LatestAccrual::keep_latest(&mut kept, cost, accrual);
        summary
            .accruals
            .extend(kept.map(|k| (variant.to_owned(), k)));
    }
}

fn describe_billing(billing: &VariantBilling) -> String {
    match billing {
        VariantBilling::Instance {
            instance_type,
            instance_count,
        } => format!("{instance_count} x {instance_type}"),
        VariantBilling::Serverless {
            memory_mb,
            provisioned_concurrency,
        } => match provisioned_concurrency {
            Some(pc) => format!("serverless {memory_mb} MB, provisioned concurrency {pc}"),
            None => format!("serverless {memory_mb} MB"),
        },
        other => format!("{other:?}"),
    }
}

fn write_profile(
    out: &mut dyn Write,
    endpoint: &str,
    region: &str,
    profile: Option<&EndpointProfile>,
) -> std::io::Result<()> {
    match profile {
        Some(profile) => {
            let variants: Vec<String> = profile
                .variants
                .iter()
                .map(|v| format!("{} on {}", v.name, describe_billing(&v.billing)))
                .collect();
            // What SageMaker answered (variant names, instance types), shown with
            // its control characters escaped.
            writeln!(
                out,
                "endpoint {endpoint} ({region}): {}",
                sagemeter::redact::printable(&variants.join("; "))
            )
        }
        None => writeln!(out, "endpoint {endpoint} ({region}): deployment unknown"),
    }
}

fn write_response(
    out: &mut dyn Write,
    call: u32,
    response: &Metered<InvokeEndpointOutput>,
) -> std::io::Result<()> {
    let body = response.body().map(|b| b.as_ref()).unwrap_or_default();
    writeln!(
        out,
        "response of call #{call} ({} bytes, {}):",
        body.len(),
        response.content_type().unwrap_or("no content type")
    )?;
    // The bytes as they came (as --stream writes its parts), whatever the encoding;
    // on a terminal, its control characters escaped.
    let mut text = crate::output::ModelText::for_stdout();
    text.write(out, body)?;
    text.finish(out)?;
    if !body.ends_with(b"\n") {
        writeln!(out)?;
    }
    writeln!(out)
}

fn write_summary(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "summary for {} ({})", s.endpoint, s.region)?;
    writeln!(out, "  calls            {} ({} failed)", s.calls, s.failed)?;
    if let Some(why) = s.stopped_by {
        writeln!(
            out,
            "  stopped early    by {why}: {} of {} requested call(s) not sent",
            s.not_sent, s.requested
        )?;
    }
    if s.cancelled > 0 {
        writeln!(
            out,
            "  cancelled        {} in flight by an interrupt: {} USD on their receipts \
             (in the ledger, not in the total)",
            s.cancelled,
            usd(s.cancelled_usd.unwrap_or_default())
        )?;
    }
    match s.unpriced_calls {
        0 => writeln!(out, "  total cost       {} USD", usd(s.total_cost_usd))?,
        n => writeln!(
            out,
            "  total cost       {} USD, without the unpriced lines of {n} call(s) (UNPRICED below)",
            usd(s.total_cost_usd)
        )?,
    }
    match (s.cost_per_1000_calls_usd, s.unpriced_calls) {
        (Some(per_1000), 0) => writeln!(out, "  per 1,000 calls  {} USD", usd(per_1000))?,
        (Some(per_1000), n) => writeln!(
            out,
            "  per 1,000 calls  {} USD, without the unpriced lines of {n} call(s)",
            usd(per_1000)
        )?,
        (None, n) if n > 0 => writeln!(
            out,
            "  per 1,000 calls  not known: every call has a line no source could price"
        )?,
        (None, _) => {}
    }
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    writeln!(
        out,
        "  latency          p50 {}, p95 {}, max {} (billed)",
        ms(s.latency_ms.p50),
        ms(s.latency_ms.p95),
        ms(s.latency_ms.max)
    )?;
    // `?` for a count no call reported (TGI reports no input).
    if s.input_tokens.is_some() || s.output_tokens.is_some() {
        let count = |n: Option<u128>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
        // Sums of what some calls reported are said as such.
        let (with_in, with_out) = (s.calls_with_input_tokens, s.calls_with_output_tokens);
        let some = |with: u32| with > 0 && with < s.receipts;
        let partial = if some(with_in) || some(with_out) {
            format!(
                " (reported by {with_in} and {with_out} of {} calls)",
                s.receipts
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "  tokens           {} in, {} out{partial}",
            count(s.input_tokens),
            count(s.output_tokens)
        )?;
    }
    let sources: Vec<String> = s
        .by_price_source
        .iter()
        .map(|(source, n)| format!("{source} {n}"))
        .collect();
    if sources.is_empty() {
        // Every call failed before it was billed: there is no receipt to price.
        writeln!(out, "  price source     - (no receipt)")?;
    } else {
        writeln!(out, "  price source     {}", sources.join(", "))?;
    }
    // A price note or reason can quote a SKU or an AWS answer: no control
    // character of theirs reaches the terminal.
    let printable = sagemeter::redact::printable;
    for note in &s.price_notes {
        writeln!(out, "  price note       {}", printable(note))?;
    }
    for reason in &s.unpriced_reasons {
        let reason = crate::output::for_cli(reason);
        writeln!(out, "  UNPRICED         {}", printable(&reason))?;
    }
    // One variant's accrual each: named when there are several.
    let several = s.accruals.len() > 1;
    for (variant, latest) in &s.accruals {
        let name = if several {
            format!("{variant}: ")
        } else {
            String::new()
        };
        write_accrual(out, &name, &latest.accrual)?;
    }
    Ok(())
}

/// The text summary's lines of one variant's accrual, each after `name`.
fn write_accrual(out: &mut dyn Write, name: &str, accrual: &Accrual) -> std::io::Result<()> {
    let utilisation = accrual.utilisation.map_or_else(
        || "-".to_owned(),
        |u| format!("{}%", (u * Decimal::from(100)).round_dp(2).normalize()),
    );
    writeln!(
        out,
        "  instances        {name}accrued {} while metered; receipts allocated {} (utilisation {utilisation})",
        usd(accrual.accrued_usd),
        usd(accrual.allocated_usd)
    )?;
    if let Some(storage) = accrual.storage_usd {
        writeln!(
            out,
            "  ML storage       {name}accrued {} while metered (on no receipt)",
            usd(storage)
        )?;
    }
    // As the receipts' fallbacks are named (price source, price note).
    let fallbacks: Vec<String> = accrual
        .fallbacks()
        .map(|f| format!("{} ({})", f.price_source, f.charge.as_str()))
        .collect();
    if !fallbacks.is_empty() {
        writeln!(
            out,
            "  accrual priced   {name}from a fallback: {}",
            fallbacks.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_follow_sagemaker_rules() {
        assert!(parse_endpoint_name("demo-realtime").is_ok());
        assert!(parse_endpoint_name("a").is_ok());
        assert!(parse_endpoint_name("").is_err());
        assert!(parse_endpoint_name("-leading").is_err());
        // SageMaker's pattern, ^[a-zA-Z0-9](-*[a-zA-Z0-9])*, ends on a letter or digit.
        assert!(parse_endpoint_name("chat-").is_err());
        assert!(parse_endpoint_name("a--b").is_ok());
        assert!(parse_endpoint_name("under_score").is_err());
        assert!(parse_endpoint_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn body_argument_forms() {
        assert!(matches!(BodyArg::parse("-"), Ok(BodyArg::Stdin)));
        assert!(
            matches!(BodyArg::parse("@req.json"), Ok(BodyArg::File(p)) if p == std::path::Path::new("req.json"))
        );
        assert!(BodyArg::parse("@").is_err());
        assert!(matches!(BodyArg::parse("{}"), Ok(BodyArg::Inline(t)) if t == "{}"));
    }

    #[test]
    fn a_ledger_that_lost_receipts_says_how_many_and_why() {
        let path = std::path::Path::new("spend.jsonl");
        let mut stats = sagemeter::ledger::SinkStats::default();
        stats.accepted = 10;
        stats.written = 10;
        assert_eq!(ledger_losses(path, &stats), None);
        stats.dropped_full = 3;
        stats.refused_closed = 1;
        let lost = ledger_losses(path, &stats).unwrap();
        assert!(
            lost.starts_with("the ledger spend.jsonl is missing 4 receipt(s): 3 dropped"),
            "{lost}"
        );
    }

    /// A receipt of `variant` carrying an accrual of `accrued` dollars, recorded
    /// when the client's running total reached `running_client`.
    fn receipt_with_accrual(variant: &str, accrued: &str, running_client: &str) -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": format!("req-{variant}"), "at": "2026-11-02T10:01:00Z",
            "endpoint": "rt", "region": "us-east-1", "variant": variant,
            "allocation": "busy_time",
            "usage": {"operation": "invoke_endpoint", "latency_us": 100000, "bytes_in": 2,
                      "bytes_out": 2, "outcome": "ok"},
            "lines": [], "cost_usd": "0.001", "currency": "USD",
            "running_client_usd": running_client, "running_endpoint_usd": running_client,
            "accrual": {"accrued_usd": accrued, "allocated_usd": "0.001",
                        "utilisation": null}
        }))
        .unwrap()
    }

    /// A receipt of 2 B in and 420 B out on ml.zz9.large, an instance type no
    /// source prices: its compute line is unpriced, its data lines priced at
    /// $0.016/GB (2 × 0.016 / 2^30 = $0.000000000030, 420 × 0.016 / 2^30 =
    /// $0.000000006259; $0.000000006289 together).
    fn receipt_without_compute(id: u32) -> Cost {
        let priced = |usd: &str| {
            serde_json::json!({"status": "priced", "usd_per_unit": "0.016", "cost_usd": usd,
                "provenance": {"source": "snapshot", "sku": null, "effective_date": null,
                               "fetched_at": null, "note": null}})
        };
        serde_json::from_value(serde_json::json!({
            "call_id": format!("req-{id}"), "at": "2026-11-02T10:01:00Z",
            "endpoint": "odd", "region": "us-east-1", "variant": "AllTraffic",
            "allocation": "busy_time",
            "usage": {"operation": "invoke_endpoint", "latency_us": 50000, "bytes_in": 2,
                      "bytes_out": 420, "outcome": "ok"},
            "lines": [
                {"item": "compute", "quantity": "0.0000138888888888888888888889",
                 "unit": "instance_hours",
                 "price": {"status": "unpriced", "reason": "no price for hosting ml.zz9.large"}},
                {"item": "data_in", "quantity": "0.0000000018626451492309570312",
                 "unit": "gigabytes", "price": priced(
                 "0.000000000030")},
                {"item": "data_out", "quantity": "0.0000003911554813385009765625",
                 "unit": "gigabytes", "price": priced(
                 "0.000000006259")}],
            "cost_usd": "0.000000006289", "currency": "USD",
            "running_client_usd": "0.000000006289", "running_endpoint_usd": "0.000000006289"
        }))
        .unwrap()
    }

    /// The summary of `costs`, as the run makes it, in JSON and in text.
    fn summary_of(costs: &[Cost]) -> (serde_json::Value, String) {
        let mut summary = Summary::default();
        let mut latencies = Vec::new();
        for cost in costs {
            summary.calls += 1;
            add(&mut summary, &mut latencies, cost);
        }
        summary.cost_per_1000_calls_usd = cost_per_1000_calls(&summary);
        let mut text = Vec::new();
        write_summary(&mut text, &summary).unwrap();
        (
            serde_json::to_value(&summary).unwrap(),
            String::from_utf8(text).unwrap(),
        )
    }

    #[test]
    fn the_cost_per_1000_calls_is_not_known_when_every_call_has_an_unpriced_line() {
        // Every receipt's compute is unpriced: the data lines alone would say
        // $0.000006289 per 1,000 calls, where a 50 ms share of one $0.23/h
        // instance alone is 0.23 × 0.05 / 3,600 × 1,000 = $0.0031944: no figure.
        let (json, text) = summary_of(&[receipt_without_compute(1), receipt_without_compute(2)]);
        assert_eq!(
            json["cost_per_1000_calls_usd"],
            serde_json::Value::Null,
            "{json}"
        );
        assert_eq!(json["unpriced_calls"], 2, "{json}");
        assert!(
            text.contains(
                "  per 1,000 calls  not known: every call has a line no source could price\n"
            ),
            "{text}"
        );
        // One whole receipt ($0.001) beside one without compute: (0.001 +
        // 0.000000006289) × 1,000 / 2 = $0.5000031445, said to leave a line out.
        let whole = receipt_with_accrual("A", "0.001", "0.001");
        let (json, text) = summary_of(&[whole, receipt_without_compute(1)]);
        let per_1000: Decimal = json["cost_per_1000_calls_usd"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{json}"));
        assert_eq!(per_1000, Decimal::new(5_000_031_445, 10), "{json}");
        assert!(
            text.contains(
                "  per 1,000 calls  $0.5000031445 USD, without the unpriced lines of 1 call(s)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_summary_keeps_the_latest_accrual_and_each_variants_own() {
        // A 60 s run on an endpoint of two variants, each on 1 instance:
        // A on ml.g4dn.xlarge at $0.7364/h accrues 0.7364 × 60 / 3,600 = 0.012273333;
        // B on ml.m5.xlarge at $0.23/h accrues 0.23 × 60 / 3,600 = 0.003833333.
        // A's receipt was recorded first (running total 0.001), B's after (0.002):
        // the latest accrual is B's, though smaller, whichever is handed over first.
        let a = receipt_with_accrual("A", "0.012273333", "0.001");
        let b = receipt_with_accrual("B", "0.003833333", "0.002");
        for order in [[&a, &b], [&b, &a]] {
            let mut summary = Summary::default();
            let mut latencies = Vec::new();
            for cost in order {
                add(&mut summary, &mut latencies, cost);
            }
            let json = serde_json::to_value(&summary).unwrap();
            assert_eq!(json["accrual"]["accrued_usd"], "0.003833333", "{json}");
            assert_eq!(
                json["accruals"]["A"]["accrued_usd"], "0.012273333",
                "{json}"
            );
            assert_eq!(
                json["accruals"]["B"]["accrued_usd"], "0.003833333",
                "{json}"
            );
            let mut text = Vec::new();
            write_summary(&mut text, &summary).unwrap();
            let text = String::from_utf8(text).unwrap();
            let instances: Vec<&str> = text.lines().filter(|l| l.contains("instances")).collect();
            assert_eq!(instances.len(), 2, "{text}");
            assert!(instances[0].contains("A: accrued $0.012273333"), "{text}");
            assert!(instances[1].contains("B: accrued $0.003833333"), "{text}");
        }
        // Of one variant, the later receipt's accrual (A after 30 s: 0.7364 × 30 / 3,600 =
        // 0.006136667, then after 60 s), and no per-variant map.
        let earlier = receipt_with_accrual("A", "0.006136667", "0.001");
        let later = receipt_with_accrual("A", "0.012273333", "0.002");
        let mut summary = Summary::default();
        add(&mut summary, &mut Vec::new(), &later);
        add(&mut summary, &mut Vec::new(), &earlier);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["accrual"]["accrued_usd"], "0.012273333", "{json}");
        assert!(json.get("accruals").is_none(), "{json}");
    }

    #[test]
    fn a_large_json_body_is_checked_without_being_held() {
        // 25 MB of `[0,0,…]`: as a `serde_json::Value`, 12.5 million values of
        // 32 bytes or more (several hundred MB).
        let zeros = 12_500_000;
        let mut body = Vec::with_capacity(2 * zeros + 1);
        body.push(b'[');
        for _ in 0..zeros - 1 {
            body.extend_from_slice(b"0,");
        }
        body.extend_from_slice(b"0]");
        let (checked, peak) = crate::test_alloc::peak_held_during(|| check_json(&body));
        assert!(checked.is_ok());
        assert!(peak < 1 << 20, "{peak} bytes held to check 25 MB");
    }

    #[test]
    fn a_json_body_is_refused_as_a_parsed_value_would_be() {
        let value_error = |body: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(body)
                .err()
                .map(|e| e.to_string())
        };
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for body in [
            &br#"{"a": [1, 2.5, -3e4, true, null, "x\u00e9"], "b": {}}"#[..],
            br#""\ud83d\ude00""#,
            b"",
            br#"{"a": }"#,
            b"[1, 2",
            b"{} {}",
            br#"{"a" 1}"#,
            b"[01]",
            b"[1e999]",
            br#"["\ud800"]"#,
            br#"["\q"]"#,
            b"[\"\xff\"]",
            b"{\"\xc3\": 1}",
            b"\xff",
            deep.as_bytes(),
        ] {
            assert_eq!(
                check_json(body).err().map(|e| e.to_string()),
                value_error(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Not vacuous: each kind of body is met.
        assert!(check_json(br#"{"a": [1]}"#).is_ok());
        assert!(check_json(b"[\"\xff\"]").is_err());
        assert!(check_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn an_interrupted_run_whose_ledger_lost_receipts_exits_1_saying_both() {
        let interrupted = || {
            Err(CliError::Interrupted {
                code: 130,
                message: "interrupted by SIGINT: 5 call(s) finished".to_owned(),
            })
        };
        let lost = ["the ledger spend.jsonl is missing 2 receipt(s)".to_owned()];
        // The ledger lost nothing: 130.
        assert!(matches!(
            after_shutdown(interrupted(), &[]),
            Err(CliError::Interrupted { code: 130, .. })
        ));
        let error = after_shutdown(interrupted(), &lost).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert_eq!(
            error.to_string(),
            "interrupted by SIGINT: 5 call(s) finished; the ledger spend.jsonl is missing 2 \
             receipt(s)"
        );
        assert_eq!(after_shutdown(Ok(()), &lost).unwrap_err().exit_code(), 1);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/vnd.api+json"));
        assert!(!is_json_content_type("text/csv"));
    }
}
