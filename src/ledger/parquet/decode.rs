//! Record batches of the [schema](super::schema) back into receipts.
//!
//! Columns are found by name, so that files with more columns (written by a newer
//! sagemeter that added some) still read, and a projection of some columns is a
//! matter of [`super::reader::record_batches`] alone; this module needs them all.

use super::decimal::{Scales, from_money};
use super::schema::{MONEY_SCALE, SCALED_AMOUNTS, col, line};
use crate::billing::{Accrual, AccrualSource, Cost, CostLine, LinePrice, StandingPart, amount};
use crate::endpoint::VariantBilling;
use crate::pricing::Provenance;
use crate::usage::Usage;
use arrow_array::{
    Array, Decimal128Array, Int32Array, Int64Array, ListArray, MapArray, RecordBatch, StringArray,
    StructArray, TimestampNanosecondArray,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, IntoDeserializer, value::StrDeserializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a row is not a receipt: its index in the batch (when it is about one row)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub(crate) row: Option<usize>,
    pub(crate) message: String,
}

fn batch_error(message: String) -> DecodeError {
    DecodeError { row: None, message }
}

/// Finds a column by name and checks its type.
fn column<'a, T: Array + 'static>(
    columns: impl Fn(&str) -> Option<&'a dyn Array>,
    name: &str,
) -> Result<&'a T, DecodeError> {
    let array = columns(name).ok_or_else(|| batch_error(format!("no column `{name}`")))?;
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        batch_error(format!(
            "column `{name}` is {}, not what sagemeter writes",
            array.data_type()
        ))
    })
}

fn top<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, DecodeError> {
    column(|n| batch.column_by_name(n).map(|c| c.as_ref()), name)
}

fn field<'a, T: Array + 'static>(s: &'a StructArray, name: &str) -> Result<&'a T, DecodeError> {
    column(|n| s.column_by_name(n).map(|c| c.as_ref()), name)
        .map_err(|e| batch_error(format!("in `lines`: {}", e.message)))
}

fn money_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a Decimal128Array, DecodeError> {
    let array: &Decimal128Array = top(batch, name)?;
    check_scale(array, name)?;
    Ok(array)
}

/// A money column that files written by older versions lack (`None` then).
fn optional_money_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<Option<&'a Decimal128Array>, DecodeError> {
    if batch.schema().column_with_name(name).is_none() {
        return Ok(None);
    }
    money_column(batch, name).map(Some)
}

fn check_scale(array: &Decimal128Array, name: &str) -> Result<(), DecodeError> {
    if array.scale() as u32 != MONEY_SCALE {
        return Err(batch_error(format!(
            "column `{name}` has scale {}, not {MONEY_SCALE}",
            array.scale()
        )));
    }
    Ok(())
}

// Per-value readers: `Err` names the column; the caller adds the row.

fn text<'a>(a: &'a StringArray, i: usize, name: &str) -> Result<&'a str, String> {
    if a.is_null(i) {
        return Err(format!("`{name}` is null"));
    }
    Ok(a.value(i))
}

fn opt_text(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    a.is_valid(i).then(|| a.value(i))
}

fn i64_value(a: &Int64Array, i: usize, name: &str) -> Result<i64, String> {
    opt_i64(a, i).ok_or_else(|| format!("`{name}` is null"))
}

fn unsigned<T: TryFrom<i64>>(n: i64, name: &str) -> Result<T, String> {
    T::try_from(n).map_err(|_| format!("`{name}` {n} is out of range"))
}

fn opt_unsigned<T: TryFrom<i64>>(
    a: &Int64Array,
    i: usize,
    name: &str,
) -> Result<Option<T>, String> {
    opt_i64(a, i).map(|n| unsigned(n, name)).transpose()
}

fn amount(v: i128, scale: u32, name: &str) -> Result<Decimal, String> {
    from_money(v, scale)
        .ok_or_else(|| format!("`{name}` {v}e-{MONEY_SCALE} does not have scale {scale}"))
}

fn opt_amount(
    a: &Decimal128Array,
    i: usize,
    scale: u32,
    name: &str,
) -> Result<Option<Decimal>, String> {
    a.is_valid(i)
        .then(|| amount(a.value(i), scale, name))
        .transpose()
}

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

fn micros(n: i64, name: &str) -> Result<Duration, String> {
    Ok(Duration::from_micros(unsigned(n, name)?))
}

/// An accrual's `priced_from`, from its JSON in `accrual_priced_from`.
pub(crate) fn accrual_sources(json: &str) -> Result<Vec<AccrualSource>, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("`{}` does not read: {e}", col::ACCRUAL_PRICED_FROM))
}

/// An enum by the name serde gives its variant.
pub(crate) fn named<T: DeserializeOwned>(s: &str, name: &str) -> Result<T, String> {
    let de: StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).map_err(|_| format!("`{name}` `{s}` is not one sagemeter knows"))
}

/// Every column a receipt needs, found and type-checked once per batch.
struct Receipts<'a> {
    call_id: &'a StringArray,
    at: &'a TimestampNanosecondArray,
    endpoint: &'a StringArray,
    variant: &'a StringArray,
    /// Absent in files written before inference components were carried.
    inference_component: Option<&'a StringArray>,
    target_model: Option<&'a StringArray>,
    billing_kind: &'a StringArray,
    instance_type: &'a StringArray,
    instance_count: &'a Int64Array,
    memory_mb: &'a Int64Array,
    provisioned_concurrency: &'a Int64Array,
    allocation: &'a StringArray,
    operation: &'a StringArray,
    latency_us: &'a Int64Array,
    ttfb_us: &'a Int64Array,
    bytes_in: &'a Int64Array,
    bytes_out: &'a Int64Array,
    parts: &'a Int64Array,
    usage_variant: &'a StringArray,
    input_tokens: &'a Int64Array,
    output_tokens: &'a Int64Array,
    outcome: &'a StringArray,
    attempts: &'a Int64Array,
    lines: &'a ListArray,
    lines_of: Lines<'a>,
    /// In the order of [`SCALED_AMOUNTS`]; `unreserved_usd` (the last) is absent in
    /// files written before it was carried.
    amounts: [Option<&'a Decimal128Array>; 9],
    currency: &'a StringArray,
    region: &'a StringArray,
    tags: &'a MapArray,
    tag_keys: &'a StringArray,
    tag_values: &'a StringArray,
    notes: &'a ListArray,
    note_values: &'a StringArray,
    /// Absent in a file rewritten by another tool: amounts then read at 12 places.
    amount_scales: Option<&'a Int64Array>,
    /// Absent in files written before accruals carried where their rates came from.
    accrual_priced_from: Option<&'a StringArray>,
    /// Absent in files written before accruals carried standing parts.
    accrual_standing_parts: Option<&'a StringArray>,
    /// Absent in files written before accruals carried `accrued_to`.
    accrued_to: Option<&'a TimestampNanosecondArray>,
}

/// The fields of the `lines` elements.
struct Lines<'a> {
    item: &'a StringArray,
    quantity: &'a StringArray,
    unit: &'a StringArray,
    status: &'a StringArray,
    usd_per_unit: &'a StringArray,
    cost_usd: &'a Decimal128Array,
    cost_usd_scale: Option<&'a Int32Array>,
    source: &'a StringArray,
    sku: &'a StringArray,
    effective_date: &'a StringArray,
    fetched_at: &'a TimestampNanosecondArray,
    note: &'a StringArray,
    reason: &'a StringArray,
}

/// Appends the receipts of `batch` to `out`; on error, those before the bad row
/// have been appended.
pub(crate) fn decode(batch: &RecordBatch, out: &mut Vec<Cost>) -> Result<(), DecodeError> {
    let columns = Receipts::of(batch)?;
    out.reserve(batch.num_rows());
    for row in 0..batch.num_rows() {
        let cost = columns.receipt(row).map_err(|message| DecodeError {
            row: Some(row),
            message,
        })?;
        out.push(cost);
    }
    Ok(())
}

impl<'a> Receipts<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, DecodeError> {
        let lines: &ListArray = top(batch, col::LINES)?;
        let line_values = lines
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| batch_error("`lines` is not a list of structs".into()))?;
        let tags: &MapArray = top(batch, col::TAGS)?;
        let notes: &ListArray = top(batch, col::NOTES)?;
        let strings = |array: &'a dyn Array, name: &str| {
            array
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| batch_error(format!("`{name}` does not hold strings")))
        };
        let line_cost: &Decimal128Array = field(line_values, line::COST_USD)?;
        check_scale(line_cost, "lines.cost_usd")?;
        let amounts = [
            Some(money_column(batch, SCALED_AMOUNTS[0])?),
            Some(money_column(batch, SCALED_AMOUNTS[1])?),
            Some(money_column(batch, SCALED_AMOUNTS[2])?),
            Some(money_column(batch, SCALED_AMOUNTS[3])?),
            Some(money_column(batch, SCALED_AMOUNTS[4])?),
            Some(money_column(batch, SCALED_AMOUNTS[5])?),
            Some(money_column(batch, SCALED_AMOUNTS[6])?),
            Some(money_column(batch, SCALED_AMOUNTS[7])?),
            optional_money_column(batch, SCALED_AMOUNTS[8])?,
        ];
        Ok(Receipts {
            call_id: top(batch, col::CALL_ID)?,
            at: top(batch, col::AT)?,
            endpoint: top(batch, col::ENDPOINT)?,
            variant: top(batch, col::VARIANT)?,
            inference_component: top(batch, col::INFERENCE_COMPONENT).ok(),
            target_model: top(batch, col::TARGET_MODEL).ok(),
            billing_kind: top(batch, col::BILLING_KIND)?,
            instance_type: top(batch, col::INSTANCE_TYPE)?,
            instance_count: top(batch, col::INSTANCE_COUNT)?,
            memory_mb: top(batch, col::MEMORY_MB)?,
            provisioned_concurrency: top(batch, col::PROVISIONED_CONCURRENCY)?,
            allocation: top(batch, col::ALLOCATION)?,
            operation: top(batch, col::OPERATION)?,
            latency_us: top(batch, col::LATENCY_US)?,
            ttfb_us: top(batch, col::TTFB_US)?,
            bytes_in: top(batch, col::BYTES_IN)?,
            bytes_out: top(batch, col::BYTES_OUT)?,
            parts: top(batch, col::PARTS)?,
            usage_variant: top(batch, col::USAGE_VARIANT)?,
            input_tokens: top(batch, col::INPUT_TOKENS)?,
            output_tokens: top(batch, col::OUTPUT_TOKENS)?,
            outcome: top(batch, col::OUTCOME)?,
            attempts: top(batch, col::ATTEMPTS)?,
            lines,
            lines_of: Lines {
                item: field(line_values, line::ITEM)?,
                quantity: field(line_values, line::QUANTITY)?,
                unit: field(line_values, line::UNIT)?,
                status: field(line_values, line::STATUS)?,
                usd_per_unit: field(line_values, line::USD_PER_UNIT)?,
                cost_usd: line_cost,
                cost_usd_scale: field(line_values, line::COST_USD_SCALE).ok(),
                source: field(line_values, line::SOURCE)?,
                sku: field(line_values, line::SKU)?,
                effective_date: field(line_values, line::EFFECTIVE_DATE)?,
                fetched_at: field(line_values, line::FETCHED_AT)?,
                note: field(line_values, line::NOTE)?,
                reason: field(line_values, line::REASON)?,
            },
            amounts,
            currency: top(batch, col::CURRENCY)?,
            region: top(batch, col::REGION)?,
            tags,
            tag_keys: strings(tags.keys().as_ref(), "tags' keys")?,
            tag_values: strings(tags.values().as_ref(), "tags' values")?,
            notes,
            note_values: strings(notes.values().as_ref(), "notes")?,
            amount_scales: top(batch, col::AMOUNT_SCALES).ok(),
            accrual_priced_from: match batch.schema().column_with_name(col::ACCRUAL_PRICED_FROM) {
                Some(_) => Some(top(batch, col::ACCRUAL_PRICED_FROM)?),
                None => None,
            },
            accrual_standing_parts: match batch
                .schema()
                .column_with_name(col::ACCRUAL_STANDING_PARTS)
            {
                Some(_) => Some(top(batch, col::ACCRUAL_STANDING_PARTS)?),
                None => None,
            },
            accrued_to: match batch.schema().column_with_name(col::ACCRUED_TO) {
                Some(_) => Some(top(batch, col::ACCRUED_TO)?),
                None => None,
            },
        })
    }

    fn receipt(&self, i: usize) -> Result<Cost, String> {
        let scales = match self.amount_scales {
            Some(a) => Scales(i64_value(a, i, col::AMOUNT_SCALES)?),
            None => {
                let mut all = Scales::default();
                (0..SCALED_AMOUNTS.len()).for_each(|k| all.set(k, MONEY_SCALE));
                all
            }
        };
        let amount_at = |k: usize| match self.amounts[k] {
            Some(column) => opt_amount(column, i, scales.get(k), SCALED_AMOUNTS[k]),
            None => Ok(None),
        };
        let required =
            |k: usize| amount_at(k)?.ok_or_else(|| format!("`{}` is null", SCALED_AMOUNTS[k]));
        let at = time(
            self.at
                .is_valid(i)
                .then(|| self.at.value(i))
                .ok_or("`at` is null")?,
        );
        let accrual = match amount_at(4)? {
            Some(accrued_usd) => Some(Accrual {
                accrued_usd,
                allocated_usd: required(5)?,
                utilisation: amount_at(6)?,
                storage_usd: amount_at(7)?,
                unreserved_usd: amount_at(8)?,
                priced_from: match self.accrual_priced_from.and_then(|c| opt_text(c, i)) {
                    Some(json) => accrual_sources(json)?.into(),
                    None => Default::default(),
                },
                standing_parts: match self.accrual_standing_parts.and_then(|c| opt_text(c, i)) {
                    Some(json) => serde_json::from_str::<Vec<StandingPart>>(json)
                        .map_err(|e| {
                            format!("`{}` does not read: {e}", col::ACCRUAL_STANDING_PARTS)
                        })?
                        .into(),
                    None => Default::default(),
                },
                accrued_to: self
                    .accrued_to
                    .filter(|c| c.is_valid(i))
                    .map(|c| time(c.value(i))),
            }),
            None => None,
        };
        Ok(Cost {
            call_id: text(self.call_id, i, col::CALL_ID)?.to_owned(),
            at,
            endpoint: text(self.endpoint, i, col::ENDPOINT)?.to_owned(),
            variant: opt_text(self.variant, i).map(str::to_owned),
            inference_component: self
                .inference_component
                .and_then(|c| opt_text(c, i))
                .map(str::to_owned),
            target_model: self
                .target_model
                .and_then(|c| opt_text(c, i))
                .map(str::to_owned),
            billing: self.billing(i)?,
            allocation: named(text(self.allocation, i, col::ALLOCATION)?, col::ALLOCATION)?,
            usage: self.usage(i)?,
            lines: self.lines(i)?,
            cost_usd: required(0)?,
            currency: match text(self.currency, i, col::CURRENCY)? {
                "USD" => Cow::Borrowed("USD"),
                other => Cow::Owned(other.to_owned()),
            },
            region: opt_text(self.region, i).map(Arc::from),
            running_client_usd: required(1)?,
            running_endpoint_usd: required(2)?,
            running_fleet_usd: amount_at(3)?,
            accrual,
            tags: self.tags(i)?,
            notes: self.notes(i),
            settled_before: None,
        })
    }

    fn billing(&self, i: usize) -> Result<Option<VariantBilling>, String> {
        let Some(kind) = opt_text(self.billing_kind, i) else {
            return Ok(None);
        };
        let billing = match kind {
            "instance" => VariantBilling::Instance {
                instance_type: text(self.instance_type, i, col::INSTANCE_TYPE)?.to_owned(),
                instance_count: unsigned(
                    i64_value(self.instance_count, i, col::INSTANCE_COUNT)?,
                    col::INSTANCE_COUNT,
                )?,
            },
            "serverless" => VariantBilling::Serverless {
                memory_mb: unsigned(
                    i64_value(self.memory_mb, i, col::MEMORY_MB)?,
                    col::MEMORY_MB,
                )?,
                provisioned_concurrency: opt_unsigned(
                    self.provisioned_concurrency,
                    i,
                    col::PROVISIONED_CONCURRENCY,
                )?,
            },
            other => {
                return Err(format!(
                    "`billing_kind` `{other}` is not one sagemeter knows"
                ));
            }
        };
        Ok(Some(billing))
    }

    fn usage(&self, i: usize) -> Result<Usage, String> {
        Ok(Usage {
            operation: named(text(self.operation, i, col::OPERATION)?, col::OPERATION)?,
            latency: micros(
                i64_value(self.latency_us, i, col::LATENCY_US)?,
                col::LATENCY_US,
            )?,
            time_to_first_byte: opt_i64(self.ttfb_us, i)
                .map(|n| micros(n, col::TTFB_US))
                .transpose()?,
            bytes_in: unsigned(i64_value(self.bytes_in, i, col::BYTES_IN)?, col::BYTES_IN)?,
            bytes_out: unsigned(
                i64_value(self.bytes_out, i, col::BYTES_OUT)?,
                col::BYTES_OUT,
            )?,
            parts: opt_unsigned(self.parts, i, col::PARTS)?,
            variant: opt_text(self.usage_variant, i).map(str::to_owned),
            input_tokens: opt_unsigned(self.input_tokens, i, col::INPUT_TOKENS)?,
            output_tokens: opt_unsigned(self.output_tokens, i, col::OUTPUT_TOKENS)?,
            outcome: named(text(self.outcome, i, col::OUTCOME)?, col::OUTCOME)?,
            attempts: unsigned(i64_value(self.attempts, i, col::ATTEMPTS)?, col::ATTEMPTS)?,
        })
    }

    fn lines(&self, i: usize) -> Result<Vec<CostLine>, String> {
        if self.lines.is_null(i) {
            return Err("`lines` is null".into());
        }
        let offsets = self.lines.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        (start..end).map(|j| self.lines_of.line(j)).collect()
    }

    fn tags(&self, i: usize) -> Result<BTreeMap<String, String>, String> {
        let offsets = self.tags.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        (start..end)
            .map(|j| {
                Ok((
                    text(self.tag_keys, j, "tags' key")?.to_owned(),
                    text(self.tag_values, j, "tags' value")?.to_owned(),
                ))
            })
            .collect()
    }

    fn notes(&self, i: usize) -> Vec<String> {
        let offsets = self.notes.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        (start..end)
            .filter_map(|j| opt_text(self.note_values, j).map(str::to_owned))
            .collect()
    }
}

impl Lines<'_> {
    fn line(&self, j: usize) -> Result<CostLine, String> {
        let decimal_text = |a: &StringArray, name: &str| -> Result<Decimal, String> {
            let s = text(a, j, name)?;
            // Exactly, as the JSON columns' amounts are read: never rounded.
            amount::exact(s).map_err(|_| {
                format!(
                    "`lines.{name}` `{s}` is not a decimal number with no more digits \
                     than a decimal holds"
                )
            })
        };
        let price = match text(self.status, j, "lines.status")? {
            "priced" => {
                let scale = match self.cost_usd_scale {
                    Some(scales) if scales.is_valid(j) => {
                        unsigned(i64::from(scales.value(j)), "lines.cost_usd_scale")?
                    }
                    _ => MONEY_SCALE,
                };
                LinePrice::Priced {
                    usd_per_unit: decimal_text(self.usd_per_unit, line::USD_PER_UNIT)?,
                    cost_usd: opt_amount(self.cost_usd, j, scale, "lines.cost_usd")?
                        .ok_or("`lines.cost_usd` of a priced line is null")?,
                    provenance: Provenance {
                        source: named(text(self.source, j, "lines.source")?, "lines.source")?,
                        sku: opt_text(self.sku, j).map(Arc::from),
                        effective_date: opt_text(self.effective_date, j).map(Arc::from),
                        fetched_at: self
                            .fetched_at
                            .is_valid(j)
                            .then(|| time(self.fetched_at.value(j))),
                        note: opt_text(self.note, j).map(Arc::from),
                    },
                }
            }
            "unpriced" => LinePrice::Unpriced {
                reason: text(self.reason, j, "lines.reason")?.to_owned(),
            },
            other => {
                return Err(format!(
                    "`lines.status` `{other}` is not one sagemeter knows"
                ));
            }
        };
        Ok(CostLine {
            item: named(text(self.item, j, "lines.item")?, "lines.item")?,
            quantity: decimal_text(self.quantity, line::QUANTITY)?,
            unit: named(text(self.unit, j, "lines.unit")?, "lines.unit")?,
            price,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode::Columns;
    use super::*;

    /// A serverless call: 2 s of compute at $0.00006 per second, one priced line.
    fn priced_call() -> Cost {
        serde_json::from_value(serde_json::json!({
            "call_id": "r1", "at": "2026-12-02T10:00:00Z",
            "endpoint": "e", "variant": "AllTraffic",
            "billing": {"kind": "serverless", "memory_mb": 3072},
            "allocation": "processor_sharing",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 2_000_000, "bytes_in": 0,
                      "bytes_out": 0, "variant": "AllTraffic", "outcome": "ok"},
            "lines": [{"item": "compute", "quantity": "2", "unit": "seconds",
                       "price": {"status": "priced", "usd_per_unit": "0.00006",
                                 "cost_usd": "0.00012",
                                 "provenance": {"source": "live", "sku": "SKU3GB",
                                                "effective_date": "2026-05-20",
                                                "fetched_at": null, "note": null}}}],
            "cost_usd": "0.00012", "currency": "USD", "region": "us-east-1",
            "running_client_usd": "1", "running_endpoint_usd": "1", "accrual": null
        }))
        .unwrap()
    }

    /// The batch sagemeter writes for `cost`, with the text field `name` of
    /// every line holding `value`, as another tool may write it.
    fn with_line_text(cost: &Cost, name: &str, value: &str) -> RecordBatch {
        let mut columns = Columns::default();
        columns.push(cost).unwrap();
        let batch = columns.take_batch();
        let index = batch.schema().index_of(col::LINES).unwrap();
        let lines = batch.column(index).as_any().downcast_ref::<ListArray>();
        let (field, offsets, values, nulls) = lines.unwrap().clone().into_parts();
        let values = values.as_any().downcast_ref::<StructArray>().unwrap();
        let (fields, mut children, line_nulls) = values.clone().into_parts();
        let at = fields.find(name).unwrap().0;
        children[at] = Arc::new(StringArray::from(vec![value; values.len()]));
        let values = StructArray::new(fields, children, line_nulls);
        let mut columns = batch.columns().to_vec();
        columns[index] = Arc::new(ListArray::new(field, offsets, Arc::new(values), nulls));
        RecordBatch::try_new(batch.schema(), columns).unwrap()
    }

    /// A quantity or rate with 29 places, one more than a decimal holds (another
    /// tool's file), is damage named by its column and row, as an amount of the
    /// JSON columns is, not read rounded (`…15` as `…2`); 28 places read exactly.
    #[test]
    fn a_line_amount_with_more_digits_than_a_decimal_holds_is_refused_not_rounded() {
        let cost = priced_call();
        for name in [line::QUANTITY, line::USD_PER_UNIT] {
            let text = "0.00000000000000000000000000015";
            let batch = with_line_text(&cost, name, text);
            let err = decode(&batch, &mut Vec::new()).unwrap_err();
            assert_eq!(err.row, Some(0), "{name}: {err:?}");
            assert!(
                err.message.contains(&format!("`lines.{name}` `{text}`")),
                "{name}: {err:?}"
            );

            let batch = with_line_text(&cost, name, "0.0000000000000000000000000015");
            let mut read = Vec::new();
            decode(&batch, &mut read).unwrap();
            let first = &read[0].lines[0];
            let value = match &first.price {
                _ if name == line::QUANTITY => first.quantity,
                LinePrice::Priced { usd_per_unit, .. } => *usd_per_unit,
                other => panic!("{other:?}"),
            };
            assert_eq!(value, Decimal::from_i128_with_scale(15, 28), "{name}");
            assert_eq!(value.scale(), 28, "{name}");
        }
    }
}
