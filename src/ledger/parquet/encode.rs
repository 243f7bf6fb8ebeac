//! Receipts into columns: one [`Columns`] collects rows, then becomes a
//! `RecordBatch` of the [schema](super::schema).
//!
//! [`Columns::push`] converts everything that can fail first (amounts to
//! `DECIMAL(38,12)`, times to nanoseconds, counts to `int64`), checks that the
//! row group's text columns have room for the receipt's text, and only then
//! appends: a receipt that cannot be stored exactly leaves no partial row.
//!
//! Every type is taken apart without `..`, as in the JSONL line writer: a field
//! added to a receipt type does not compile until it has a column.

use super::decimal::{Scales, to_money};
use super::schema::{self, MONEY_PRECISION, MONEY_SCALE, TIMEZONE, col};
use crate::billing::{Accrual, Cost, CostLine, LinePrice};
use crate::endpoint::VariantBilling;
use crate::pricing::Provenance;
use crate::usage::Usage;
use arrow_array::builder::{
    ArrayBuilder, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_buffer::OffsetBuffer;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;

/// Why a receipt cannot be stored as it is (nothing of it was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unencodable(pub(crate) String);

impl std::fmt::Display for Unencodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unencodable {}

/// The most bytes of text one column of a row group holds: a batch's offsets are
/// `i32` (2 GiB; Arrow panics past them when writing, and a reader fails past
/// them when it decodes a row group's column as one batch, as the ledger's
/// readers may).
pub(crate) const MAX_COLUMN_BYTES: usize = i32::MAX as usize;

/// Why [`Columns::push`] appended nothing.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The receipt's text does not fit beside the open row group's rows: write
    /// the batch out, close the row group ([`Columns::row_group_closed`]) and
    /// push it again (never said of an empty row group).
    Full,
    /// The receipt cannot be stored as it is, in any batch.
    Unencodable(Unencodable),
}

impl From<Unencodable> for Refused {
    fn from(e: Unencodable) -> Self {
        Refused::Unencodable(e)
    }
}

/// An amount as its `DECIMAL(38,12)` value and own scale.
fn money(d: &Decimal, what: &str) -> Result<(i128, u32), Unencodable> {
    to_money(d).ok_or_else(|| {
        Unencodable(format!(
            "{what} {d} cannot be stored exactly as DECIMAL({MONEY_PRECISION},{MONEY_SCALE}) \
             (more than {MONEY_SCALE} decimal places, or too large); the receipt was not written"
        ))
    })
}

fn nanos(at: &DateTime<Utc>, what: &str) -> Result<i64, Unencodable> {
    at.timestamp_nanos_opt().ok_or_else(|| {
        Unencodable(format!(
            "{what} {at} is outside the years 1677 to 2262 that a nanosecond timestamp holds"
        ))
    })
}

fn micros(d: &Duration, what: &str) -> Result<i64, Unencodable> {
    i64::try_from(d.as_micros())
        .map_err(|_| Unencodable(format!("{what} of {d:?} does not fit int64 microseconds")))
}

fn int(n: u64, what: &str) -> Result<i64, Unencodable> {
    i64::try_from(n).map_err(|_| Unencodable(format!("{what} {n} does not fit int64")))
}

/// Days since 1970-01-01 of `at`'s UTC date.
fn day(at: &DateTime<Utc>) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    // Nanosecond timestamps span ±106,000 days: always an i32.
    (at.date_naive() - epoch).num_days() as i32
}

fn offset(len: usize, what: &str) -> Result<i32, Unencodable> {
    i32::try_from(len).map_err(|_| Unencodable(format!("too many {what} in one batch")))
}

/// How a variant is billed, as its columns hold it: `billing_kind`,
/// `instance_type`, `instance_count`, `memory_mb`, `provisioned_concurrency`.
type BillingValues<'a> = (
    Option<&'static str>,
    Option<&'a str>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn billing_values(billing: Option<&VariantBilling>) -> BillingValues<'_> {
    match billing {
        Some(VariantBilling::Instance {
            instance_type,
            instance_count,
        }) => (
            Some("instance"),
            Some(instance_type.as_str()),
            Some(i64::from(*instance_count)),
            None,
            None,
        ),
        Some(VariantBilling::Serverless {
            memory_mb,
            provisioned_concurrency,
        }) => (
            Some("serverless"),
            None,
            None,
            Some(i64::from(*memory_mb)),
            provisioned_concurrency.map(i64::from),
        ),
        None => (None, None, None, None, None),
    }
}

/// The bytes of an optional text (none for `None`).
fn text_len(text: Option<&str>) -> usize {
    text.map_or(0, str::len)
}

/// What a line needs that could fail, converted before anything is appended.
struct LineValues {
    cost_usd: Option<(i128, u32)>,
    fetched_at: Option<i64>,
}

/// Rows being collected into one record batch.
pub(crate) struct Columns {
    rows: usize,
    /// The most bytes of text a column of a row group holds ([`MAX_COLUMN_BYTES`];
    /// less in tests).
    column_bytes: usize,
    /// The text of each column ([`Columns::text_columns`]) in the batches taken
    /// since the open row group began.
    group_text: [usize; TEXT_COLUMNS],
    call_id: StringBuilder,
    at: TimestampNanosecondBuilder,
    day: Date32Builder,
    endpoint: StringBuilder,
    variant: StringBuilder,
    inference_component: StringBuilder,
    target_model: StringBuilder,
    billing_kind: StringBuilder,
    instance_type: StringBuilder,
    instance_count: Int64Builder,
    memory_mb: Int64Builder,
    provisioned_concurrency: Int64Builder,
    allocation: StringBuilder,
    operation: StringBuilder,
    latency_us: Int64Builder,
    ttfb_us: Int64Builder,
    bytes_in: Int64Builder,
    bytes_out: Int64Builder,
    parts: Int64Builder,
    usage_variant: StringBuilder,
    input_tokens: Int64Builder,
    output_tokens: Int64Builder,
    outcome: StringBuilder,
    attempts: Int64Builder,
    lines: LineColumns,
    cost_usd: Decimal128Builder,
    currency: StringBuilder,
    region: StringBuilder,
    running_client_usd: Decimal128Builder,
    running_endpoint_usd: Decimal128Builder,
    running_fleet_usd: Decimal128Builder,
    accrued_usd: Decimal128Builder,
    allocated_usd: Decimal128Builder,
    utilisation: Decimal128Builder,
    storage_usd: Decimal128Builder,
    unreserved_usd: Decimal128Builder,
    /// The accrual's `priced_from`, as JSON (null when empty).
    accrual_priced_from: StringBuilder,
    /// Reused per receipt for `accrual_priced_from`.
    priced_from_text: Vec<u8>,
    /// The accrual's `standing_parts`, as JSON (null when empty).
    accrual_standing_parts: StringBuilder,
    /// The accrual's `accrued_to` (an async settlement's).
    accrued_to: TimestampNanosecondBuilder,
    tag_offsets: Vec<i32>,
    tag_keys: StringBuilder,
    tag_values: StringBuilder,
    note_offsets: Vec<i32>,
    notes: StringBuilder,
    amount_scales: Int64Builder,
    /// Reused per receipt.
    scratch: Vec<LineValues>,
}

/// The line columns of text ([`LineColumns::texts`]).
const LINE_TEXTS: usize = 10;
/// The row's own columns of text ([`Columns::row_text_columns`]).
const ROW_TEXTS: usize = 18;
/// Every column of text.
const TEXT_COLUMNS: usize = ROW_TEXTS + LINE_TEXTS;
/// The longest text of a line's quantity or price.
const DECIMAL_TEXT: usize = crate::billing::amount::MAX_LEN;
const PRICED: &str = "priced";
const UNPRICED: &str = "unpriced";

/// The fields of the rows' cost lines, one entry per line.
struct LineColumns {
    offsets: Vec<i32>,
    item: StringBuilder,
    quantity: StringBuilder,
    unit: StringBuilder,
    status: StringBuilder,
    usd_per_unit: StringBuilder,
    cost_usd: Decimal128Builder,
    cost_usd_scale: Int32Builder,
    source: StringBuilder,
    sku: StringBuilder,
    effective_date: StringBuilder,
    fetched_at: TimestampNanosecondBuilder,
    note: StringBuilder,
    reason: StringBuilder,
}

fn money_builder() -> Decimal128Builder {
    Decimal128Builder::new()
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE as i8)
        .expect("38,12 is a valid decimal type")
}

fn timestamp_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone(TIMEZONE)
}

fn finish(builder: &mut impl ArrayBuilder) -> ArrayRef {
    builder.finish()
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            rows: 0,
            column_bytes: MAX_COLUMN_BYTES,
            group_text: [0; TEXT_COLUMNS],
            call_id: StringBuilder::new(),
            at: timestamp_builder(),
            day: Date32Builder::new(),
            endpoint: StringBuilder::new(),
            variant: StringBuilder::new(),
            inference_component: StringBuilder::new(),
            target_model: StringBuilder::new(),
            billing_kind: StringBuilder::new(),
            instance_type: StringBuilder::new(),
            instance_count: Int64Builder::new(),
            memory_mb: Int64Builder::new(),
            provisioned_concurrency: Int64Builder::new(),
            allocation: StringBuilder::new(),
            operation: StringBuilder::new(),
            latency_us: Int64Builder::new(),
            ttfb_us: Int64Builder::new(),
            bytes_in: Int64Builder::new(),
            bytes_out: Int64Builder::new(),
            parts: Int64Builder::new(),
            usage_variant: StringBuilder::new(),
            input_tokens: Int64Builder::new(),
            output_tokens: Int64Builder::new(),
            outcome: StringBuilder::new(),
            attempts: Int64Builder::new(),
            lines: LineColumns {
                offsets: vec![0],
                item: StringBuilder::new(),
                quantity: StringBuilder::new(),
                unit: StringBuilder::new(),
                status: StringBuilder::new(),
                usd_per_unit: StringBuilder::new(),
                cost_usd: money_builder(),
                cost_usd_scale: Int32Builder::new(),
                source: StringBuilder::new(),
                sku: StringBuilder::new(),
                effective_date: StringBuilder::new(),
                fetched_at: timestamp_builder(),
                note: StringBuilder::new(),
                reason: StringBuilder::new(),
            },
            cost_usd: money_builder(),
            currency: StringBuilder::new(),
            region: StringBuilder::new(),
            running_client_usd: money_builder(),
            running_endpoint_usd: money_builder(),
            running_fleet_usd: money_builder(),
            accrued_usd: money_builder(),
            allocated_usd: money_builder(),
            utilisation: money_builder(),
            storage_usd: money_builder(),
            unreserved_usd: money_builder(),
            accrual_priced_from: StringBuilder::new(),
            priced_from_text: Vec::new(),
            accrual_standing_parts: StringBuilder::new(),
            accrued_to: timestamp_builder(),
            tag_offsets: vec![0],
            tag_keys: StringBuilder::new(),
            tag_values: StringBuilder::new(),
            note_offsets: vec![0],
            notes: StringBuilder::new(),
            amount_scales: Int64Builder::new(),
            scratch: Vec::new(),
        }
    }
}

impl Columns {
    /// Rows collected since the last [`take_batch`](Self::take_batch).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// At most `bytes` of text in each column of a row group, so that a test
    /// reaches the limit without gigabytes.
    #[cfg(test)]
    pub(crate) fn set_column_bytes(&mut self, bytes: usize) {
        self.column_bytes = bytes;
    }

    /// The row group the batches taken so far went to is closed: the next batch
    /// starts a new one, with all a column holds for each column.
    pub(crate) fn row_group_closed(&mut self) {
        self.group_text = [0; TEXT_COLUMNS];
    }

    /// The row's own columns of text, in the order `push` counts their bytes.
    fn row_text_columns(&self) -> [(&'static str, &StringBuilder); ROW_TEXTS] {
        [
            (col::CALL_ID, &self.call_id),
            (col::ENDPOINT, &self.endpoint),
            (col::VARIANT, &self.variant),
            (col::INFERENCE_COMPONENT, &self.inference_component),
            (col::TARGET_MODEL, &self.target_model),
            (col::BILLING_KIND, &self.billing_kind),
            (col::INSTANCE_TYPE, &self.instance_type),
            (col::ALLOCATION, &self.allocation),
            (col::OPERATION, &self.operation),
            (col::USAGE_VARIANT, &self.usage_variant),
            (col::OUTCOME, &self.outcome),
            (col::CURRENCY, &self.currency),
            (col::REGION, &self.region),
            (col::ACCRUAL_PRICED_FROM, &self.accrual_priced_from),
            (col::ACCRUAL_STANDING_PARTS, &self.accrual_standing_parts),
            ("tags.key", &self.tag_keys),
            ("tags.value", &self.tag_values),
            (col::NOTES, &self.notes),
        ]
    }

    /// Every column of text: the row's own, then the lines'.
    fn text_columns(&self) -> impl Iterator<Item = (&'static str, &StringBuilder)> {
        self.row_text_columns()
            .into_iter()
            .chain(self.lines.texts())
    }

    /// Appends one receipt as a row, or leaves every column as it was and says
    /// why: it cannot be stored exactly, or its text does not fit beside the open
    /// row group's rows ([`Refused::Full`]).
    pub(crate) fn push(&mut self, cost: &Cost) -> Result<(), Refused> {
        let Cost {
            call_id,
            at,
            endpoint,
            variant,
            inference_component,
            target_model,
            billing,
            allocation,
            usage,
            lines,
            cost_usd,
            currency,
            region,
            running_client_usd,
            running_endpoint_usd,
            running_fleet_usd,
            accrual,
            tags,
            notes,
            // A duplicate settlement's receipt is never recorded.
            settled_before: _,
        } = cost;
        let Usage {
            operation,
            latency,
            time_to_first_byte,
            bytes_in,
            bytes_out,
            parts,
            variant: usage_variant,
            input_tokens,
            output_tokens,
            outcome,
            attempts,
        } = usage;

        // Everything that can fail, before anything is appended.
        let at_ns = nanos(at, "at")?;
        let latency_us = micros(latency, "latency")?;
        let ttfb_us = time_to_first_byte
            .as_ref()
            .map(|d| micros(d, "time_to_first_byte"))
            .transpose()?;
        let counts = [int(*bytes_in, "bytes_in")?, int(*bytes_out, "bytes_out")?];
        let parts = parts.map(|n| int(n, "parts")).transpose()?;
        let input_tokens = input_tokens.map(|n| int(n, "input_tokens")).transpose()?;
        let output_tokens = output_tokens.map(|n| int(n, "output_tokens")).transpose()?;
        let accrued_to = accrual
            .as_ref()
            .and_then(|a| a.accrued_to.as_ref())
            .map(|to| nanos(to, "accrued_to"))
            .transpose()?;
        let (accrued, allocated, utilisation, storage, unreserved) = match accrual {
            Some(Accrual {
                accrued_usd,
                allocated_usd,
                utilisation,
                storage_usd,
                unreserved_usd,
                priced_from: _,
                standing_parts: _,
                accrued_to: _,
            }) => (
                Some(money(accrued_usd, "accrued_usd")?),
                Some(money(allocated_usd, "allocated_usd")?),
                utilisation
                    .as_ref()
                    .map(|u| money(u, "utilisation"))
                    .transpose()?,
                storage_usd
                    .as_ref()
                    .map(|s| money(s, "storage_usd"))
                    .transpose()?,
                unreserved_usd
                    .as_ref()
                    .map(|s| money(s, "unreserved_usd"))
                    .transpose()?,
            ),
            None => (None, None, None, None, None),
        };
        let amounts = [
            Some(money(cost_usd, "cost_usd")?),
            Some(money(running_client_usd, "running_client_usd")?),
            Some(money(running_endpoint_usd, "running_endpoint_usd")?),
            running_fleet_usd
                .as_ref()
                .map(|f| money(f, "running_fleet_usd"))
                .transpose()?,
            accrued,
            allocated,
            utilisation,
            storage,
            unreserved,
        ];
        self.scratch.clear();
        // The text the lines add to each line column, in `LineColumns::texts`'
        // order (a decimal's text at its longest).
        let mut line_text = [0usize; LINE_TEXTS];
        for line in lines {
            let added: [usize; LINE_TEXTS] = match &line.price {
                LinePrice::Priced { provenance, .. } => [
                    line.item.as_str().len(),
                    DECIMAL_TEXT,
                    line.unit.as_str().len(),
                    PRICED.len(),
                    DECIMAL_TEXT,
                    provenance.source.as_str().len(),
                    text_len(provenance.sku.as_deref()),
                    text_len(provenance.effective_date.as_deref()),
                    text_len(provenance.note.as_deref()),
                    0,
                ],
                LinePrice::Unpriced { reason } => [
                    line.item.as_str().len(),
                    DECIMAL_TEXT,
                    line.unit.as_str().len(),
                    UNPRICED.len(),
                    0,
                    0,
                    0,
                    0,
                    0,
                    reason.len(),
                ],
            };
            for (sum, added) in line_text.iter_mut().zip(added) {
                *sum = sum.saturating_add(added);
            }
            let values = match &line.price {
                LinePrice::Priced {
                    cost_usd,
                    provenance,
                    ..
                } => LineValues {
                    cost_usd: Some(money(cost_usd, "a line's cost_usd")?),
                    fetched_at: provenance
                        .fetched_at
                        .as_ref()
                        .map(|t| nanos(t, "a price's fetched_at"))
                        .transpose()?,
                },
                LinePrice::Unpriced { .. } => LineValues {
                    cost_usd: None,
                    fetched_at: None,
                },
            };
            self.scratch.push(values);
        }
        let line_end = offset(self.lines.item.len() + lines.len(), "cost lines")?;
        let tag_end = offset(self.tag_keys.len() + tags.len(), "tags")?;
        let note_end = offset(self.notes.len() + notes.len(), "notes")?;
        let priced_from = match accrual.as_ref().map(|a| &a.priced_from) {
            Some(sources) if !sources.is_empty() => {
                self.priced_from_text.clear();
                crate::ledger::line::accrual_sources(&mut self.priced_from_text, sources);
                true
            }
            _ => false,
        };
        let standing_parts = match accrual.as_ref().map(|a| &a.standing_parts) {
            Some(parts) if !parts.is_empty() => Some(
                serde_json::to_string(&**parts)
                    .map_err(|e| Unencodable(format!("`standing_parts` does not write: {e}")))?,
            ),
            _ => None,
        };
        let billing = billing_values(billing.as_ref());

        // The text each column would hold with the receipt's, against what a
        // column of a row group holds (its readers decode a row group's column
        // at once): the batches already handed to the writer for the open row
        // group count too.
        let sum = |texts: &mut dyn Iterator<Item = usize>| {
            texts.fold(0usize, |sum, len| sum.saturating_add(len))
        };
        // In `text_columns`' order.
        let row_added: [usize; ROW_TEXTS] = [
            call_id.len(),
            endpoint.len(),
            text_len(variant.as_deref()),
            text_len(inference_component.as_deref()),
            text_len(target_model.as_deref()),
            text_len(billing.0),
            text_len(billing.1),
            allocation.as_str().len(),
            operation.as_str().len(),
            text_len(usage_variant.as_deref()),
            outcome.as_str().len(),
            currency.len(),
            text_len(region.as_deref()),
            match priced_from {
                true => self.priced_from_text.len(),
                false => 0,
            },
            text_len(standing_parts.as_deref()),
            sum(&mut tags.keys().map(String::len)),
            sum(&mut tags.values().map(String::len)),
            sum(&mut notes.iter().map(String::len)),
        ];
        let added = row_added.into_iter().chain(line_text);
        for (((name, column), added), earlier) in
            self.text_columns().zip(added).zip(self.group_text)
        {
            if added > self.column_bytes {
                return Err(Refused::Unencodable(Unencodable(format!(
                    "{added} bytes of text in `{name}`, more than the {} bytes a column of a \
                     Parquet row group holds; the receipt was not written",
                    self.column_bytes
                ))));
            }
            if earlier.saturating_add(column.values_slice().len() + added) > self.column_bytes {
                return Err(Refused::Full);
            }
        }

        // Nothing below fails.
        self.call_id.append_value(call_id);
        self.at.append_value(at_ns);
        self.day.append_value(day(at));
        self.endpoint.append_value(endpoint);
        self.variant.append_option(variant.as_deref());
        self.inference_component
            .append_option(inference_component.as_deref());
        self.target_model.append_option(target_model.as_deref());
        self.append_billing(billing);
        self.allocation.append_value(allocation.as_str());
        self.operation.append_value(operation.as_str());
        self.latency_us.append_value(latency_us);
        self.ttfb_us.append_option(ttfb_us);
        self.bytes_in.append_value(counts[0]);
        self.bytes_out.append_value(counts[1]);
        self.parts.append_option(parts);
        self.usage_variant.append_option(usage_variant.as_deref());
        self.input_tokens.append_option(input_tokens);
        self.output_tokens.append_option(output_tokens);
        self.outcome.append_value(outcome.as_str());
        self.attempts.append_value(i64::from(*attempts));

        for (line, values) in lines.iter().zip(&self.scratch) {
            self.lines.push(line, values);
        }
        self.lines.offsets.push(line_end);

        let mut scales = Scales::default();
        let builders = [
            &mut self.cost_usd,
            &mut self.running_client_usd,
            &mut self.running_endpoint_usd,
            &mut self.running_fleet_usd,
            &mut self.accrued_usd,
            &mut self.allocated_usd,
            &mut self.utilisation,
            &mut self.storage_usd,
            &mut self.unreserved_usd,
        ];
        for (i, (builder, amount)) in builders.into_iter().zip(amounts).enumerate() {
            builder.append_option(amount.map(|(v, _)| v));
            if let Some((_, scale)) = amount {
                scales.set(i, scale);
            }
        }
        self.amount_scales.append_value(scales.0);
        match priced_from {
            true => {
                // Written by `accrual_sources` from UTF-8 text and ASCII.
                let text = std::str::from_utf8(&self.priced_from_text)
                    .expect("the JSON of accrual sources is UTF-8");
                self.accrual_priced_from.append_value(text);
            }
            false => self.accrual_priced_from.append_null(),
        }
        self.accrual_standing_parts.append_option(standing_parts);
        self.accrued_to.append_option(accrued_to);
        self.currency.append_value(currency);
        self.region.append_option(region.as_deref());

        for (key, value) in tags {
            self.tag_keys.append_value(key);
            self.tag_values.append_value(value);
        }
        self.tag_offsets.push(tag_end);
        for note in notes {
            self.notes.append_value(note);
        }
        self.note_offsets.push(note_end);
        self.rows += 1;
        Ok(())
    }

    fn append_billing(&mut self, billing: BillingValues<'_>) {
        let (kind, instance_type, instance_count, memory_mb, pc) = billing;
        self.billing_kind.append_option(kind);
        self.instance_type.append_option(instance_type);
        self.instance_count.append_option(instance_count);
        self.memory_mb.append_option(memory_mb);
        self.provisioned_concurrency.append_option(pc);
    }

    /// The rows collected so far as a record batch, counted in the open row
    /// group's text; the columns start empty again.
    pub(crate) fn take_batch(&mut self) -> RecordBatch {
        let mut taken = [0; TEXT_COLUMNS];
        for (len, (_, column)) in taken.iter_mut().zip(self.text_columns()) {
            *len = column.values_slice().len();
        }
        for (sum, len) in self.group_text.iter_mut().zip(taken) {
            *sum += len;
        }
        let lines = self.lines.take();
        let tag_entries = StructArray::new(
            match schema::tag_entries().data_type() {
                arrow_schema::DataType::Struct(fields) => fields.clone(),
                _ => unreachable!("tag entries are a struct"),
            },
            vec![finish(&mut self.tag_keys), finish(&mut self.tag_values)],
            None,
        );
        let tags = MapArray::new(
            schema::tag_entries(),
            OffsetBuffer::new(std::mem::replace(&mut self.tag_offsets, vec![0]).into()),
            tag_entries,
            None,
            false,
        );
        let notes = ListArray::new(
            schema::note_element(),
            OffsetBuffer::new(std::mem::replace(&mut self.note_offsets, vec![0]).into()),
            finish(&mut self.notes),
            None,
        );
        let columns: Vec<ArrayRef> = vec![
            finish(&mut self.call_id),
            finish(&mut self.at),
            finish(&mut self.day),
            finish(&mut self.endpoint),
            finish(&mut self.variant),
            finish(&mut self.inference_component),
            finish(&mut self.target_model),
            finish(&mut self.billing_kind),
            finish(&mut self.instance_type),
            finish(&mut self.instance_count),
            finish(&mut self.memory_mb),
            finish(&mut self.provisioned_concurrency),
            finish(&mut self.allocation),
            finish(&mut self.operation),
            finish(&mut self.latency_us),
            finish(&mut self.ttfb_us),
            finish(&mut self.bytes_in),
            finish(&mut self.bytes_out),
            finish(&mut self.parts),
            finish(&mut self.usage_variant),
            finish(&mut self.input_tokens),
            finish(&mut self.output_tokens),
            finish(&mut self.outcome),
            finish(&mut self.attempts),
            Arc::new(lines),
            finish(&mut self.cost_usd),
            finish(&mut self.currency),
            finish(&mut self.region),
            finish(&mut self.running_client_usd),
            finish(&mut self.running_endpoint_usd),
            finish(&mut self.running_fleet_usd),
            finish(&mut self.accrued_usd),
            finish(&mut self.allocated_usd),
            finish(&mut self.utilisation),
            finish(&mut self.storage_usd),
            finish(&mut self.unreserved_usd),
            finish(&mut self.accrual_priced_from),
            finish(&mut self.accrual_standing_parts),
            finish(&mut self.accrued_to),
            Arc::new(tags),
            Arc::new(notes),
            finish(&mut self.amount_scales),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema::schema(), columns)
            .expect("the columns are built to the schema's types and lengths")
    }
}

impl LineColumns {
    /// The columns of text, in the order `Columns::push` counts their bytes.
    fn texts(&self) -> [(&'static str, &StringBuilder); LINE_TEXTS] {
        [
            ("lines.item", &self.item),
            ("lines.quantity", &self.quantity),
            ("lines.unit", &self.unit),
            ("lines.status", &self.status),
            ("lines.usd_per_unit", &self.usd_per_unit),
            ("lines.source", &self.source),
            ("lines.sku", &self.sku),
            ("lines.effective_date", &self.effective_date),
            ("lines.note", &self.note),
            ("lines.reason", &self.reason),
        ]
    }

    fn push(&mut self, line: &CostLine, values: &LineValues) {
        let CostLine {
            item,
            quantity,
            unit,
            price,
        } = line;
        let mut text = [0u8; crate::billing::amount::MAX_LEN];
        self.item.append_value(item.as_str());
        self.quantity
            .append_value(crate::billing::amount::text(quantity, &mut text));
        self.unit.append_value(unit.as_str());
        match price {
            LinePrice::Priced {
                usd_per_unit,
                cost_usd: _,
                provenance,
            } => {
                let Provenance {
                    source,
                    sku,
                    effective_date,
                    fetched_at: _,
                    note,
                } = provenance;
                self.status.append_value(PRICED);
                self.usd_per_unit
                    .append_value(crate::billing::amount::text(usd_per_unit, &mut text));
                self.cost_usd.append_option(values.cost_usd.map(|(v, _)| v));
                self.cost_usd_scale
                    .append_option(values.cost_usd.map(|(_, s)| s as i32));
                self.source.append_value(source.as_str());
                self.sku.append_option(sku.as_deref());
                self.effective_date.append_option(effective_date.as_deref());
                self.fetched_at.append_option(values.fetched_at);
                self.note.append_option(note.as_deref());
                self.reason.append_null();
            }
            LinePrice::Unpriced { reason } => {
                self.status.append_value(UNPRICED);
                self.usd_per_unit.append_null();
                self.cost_usd.append_null();
                self.cost_usd_scale.append_null();
                self.source.append_null();
                self.sku.append_null();
                self.effective_date.append_null();
                self.fetched_at.append_null();
                self.note.append_null();
                self.reason.append_value(reason);
            }
        }
    }

    fn take(&mut self) -> ListArray {
        let values = StructArray::new(
            schema::line_fields(),
            vec![
                finish(&mut self.item),
                finish(&mut self.quantity),
                finish(&mut self.unit),
                finish(&mut self.status),
                finish(&mut self.usd_per_unit),
                finish(&mut self.cost_usd),
                finish(&mut self.cost_usd_scale),
                finish(&mut self.source),
                finish(&mut self.sku),
                finish(&mut self.effective_date),
                finish(&mut self.fetched_at),
                finish(&mut self.note),
                finish(&mut self.reason),
            ],
            None,
        );
        ListArray::new(
            schema::line_element(),
            OffsetBuffer::new(std::mem::replace(&mut self.offsets, vec![0]).into()),
            Arc::new(values),
            None,
        )
    }
}
