//! The columns of a Parquet ledger file: one row per receipt, flat where a query
//! engine wants it flat (see `docs/ledger-parquet.md` for the table).
//!
//! Field names and nullability here are the contract between the encoder, the
//! decoder and the files already written: the encoder builds arrays of exactly
//! these types, and the decoder finds columns by these names.

use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// Decimal places of every money column (`DECIMAL(38,12)`): receipts round amounts
/// to 10⁻¹² USD.
pub(crate) const MONEY_SCALE: u32 = 12;
/// Digits of every money column.
pub(crate) const MONEY_PRECISION: u8 = 38;
/// Bits per amount in `amount_scales` (a scale is at most 28).
pub(crate) const SCALE_BITS: u32 = 5;

/// Key of the file metadata entry holding the format version.
pub(crate) const FORMAT_KEY: &str = "sagemeter.ledger.format";
/// Key of the file metadata entry naming the sagemeter version that wrote the file.
pub(crate) const WRITER_KEY: &str = "sagemeter.version";

/// Top-level column names.
pub(crate) mod col {
    pub(crate) const CALL_ID: &str = "call_id";
    pub(crate) const AT: &str = "at";
    pub(crate) const DAY: &str = "day";
    pub(crate) const ENDPOINT: &str = "endpoint";
    pub(crate) const VARIANT: &str = "variant";
    pub(crate) const INFERENCE_COMPONENT: &str = "inference_component";
    pub(crate) const TARGET_MODEL: &str = "target_model";
    pub(crate) const BILLING_KIND: &str = "billing_kind";
    pub(crate) const INSTANCE_TYPE: &str = "instance_type";
    pub(crate) const INSTANCE_COUNT: &str = "instance_count";
    pub(crate) const MEMORY_MB: &str = "memory_mb";
    pub(crate) const PROVISIONED_CONCURRENCY: &str = "provisioned_concurrency";
    pub(crate) const ALLOCATION: &str = "allocation";
    pub(crate) const OPERATION: &str = "operation";
    pub(crate) const LATENCY_US: &str = "latency_us";
    pub(crate) const TTFB_US: &str = "time_to_first_byte_us";
    pub(crate) const BYTES_IN: &str = "bytes_in";
    pub(crate) const BYTES_OUT: &str = "bytes_out";
    pub(crate) const PARTS: &str = "parts";
    pub(crate) const USAGE_VARIANT: &str = "usage_variant";
    pub(crate) const INPUT_TOKENS: &str = "input_tokens";
    pub(crate) const OUTPUT_TOKENS: &str = "output_tokens";
    pub(crate) const OUTCOME: &str = "outcome";
    pub(crate) const ATTEMPTS: &str = "attempts";
    pub(crate) const LINES: &str = "lines";
    pub(crate) const COST_USD: &str = "cost_usd";
    pub(crate) const CURRENCY: &str = "currency";
    pub(crate) const REGION: &str = "region";
    pub(crate) const RUNNING_CLIENT_USD: &str = "running_client_usd";
    pub(crate) const RUNNING_ENDPOINT_USD: &str = "running_endpoint_usd";
    pub(crate) const RUNNING_FLEET_USD: &str = "running_fleet_usd";
    pub(crate) const ACCRUED_USD: &str = "accrued_usd";
    pub(crate) const ALLOCATED_USD: &str = "allocated_usd";
    pub(crate) const UTILISATION: &str = "utilisation";
    pub(crate) const STORAGE_USD: &str = "storage_usd";
    pub(crate) const UNRESERVED_USD: &str = "unreserved_usd";
    pub(crate) const ACCRUAL_PRICED_FROM: &str = "accrual_priced_from";
    pub(crate) const ACCRUAL_STANDING_PARTS: &str = "accrual_standing_parts";
    pub(crate) const ACCRUED_TO: &str = "accrued_to";
    pub(crate) const TAGS: &str = "tags";
    pub(crate) const NOTES: &str = "notes";
    pub(crate) const AMOUNT_SCALES: &str = "amount_scales";
}

/// Field names of one element of `lines`.
pub(crate) mod line {
    pub(crate) const ITEM: &str = "item";
    pub(crate) const QUANTITY: &str = "quantity";
    pub(crate) const UNIT: &str = "unit";
    pub(crate) const STATUS: &str = "status";
    pub(crate) const USD_PER_UNIT: &str = "usd_per_unit";
    pub(crate) const COST_USD: &str = "cost_usd";
    pub(crate) const COST_USD_SCALE: &str = "cost_usd_scale";
    pub(crate) const SOURCE: &str = "source";
    pub(crate) const SKU: &str = "sku";
    pub(crate) const EFFECTIVE_DATE: &str = "effective_date";
    pub(crate) const FETCHED_AT: &str = "fetched_at";
    pub(crate) const NOTE: &str = "note";
    pub(crate) const REASON: &str = "reason";
}

/// The row-level amounts, in the order of their scales in `amount_scales`
/// (amount `i` in bits `5i..5i+5`).
pub(crate) const SCALED_AMOUNTS: [&str; 9] = [
    col::COST_USD,
    col::RUNNING_CLIENT_USD,
    col::RUNNING_ENDPOINT_USD,
    col::RUNNING_FLEET_USD,
    col::ACCRUED_USD,
    col::ALLOCATED_USD,
    col::UTILISATION,
    col::STORAGE_USD,
    col::UNRESERVED_USD,
];

/// `DECIMAL(38,12)`.
pub(crate) fn money() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE as i8)
}

/// `TIMESTAMP(NANOSECOND, UTC)`.
pub(crate) fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(TIMEZONE.into()))
}

/// The time zone of every timestamp column.
pub(crate) const TIMEZONE: &str = "UTC";

/// The fields of one cost line.
pub(crate) fn line_fields() -> Fields {
    use DataType::{Int32, Utf8};
    Fields::from(vec![
        Field::new(line::ITEM, Utf8, false),
        Field::new(line::QUANTITY, Utf8, false),
        Field::new(line::UNIT, Utf8, false),
        Field::new(line::STATUS, Utf8, false),
        Field::new(line::USD_PER_UNIT, Utf8, true),
        Field::new(line::COST_USD, money(), true),
        Field::new(line::COST_USD_SCALE, Int32, true),
        Field::new(line::SOURCE, Utf8, true),
        Field::new(line::SKU, Utf8, true),
        Field::new(line::EFFECTIVE_DATE, Utf8, true),
        Field::new(line::FETCHED_AT, timestamp(), true),
        Field::new(line::NOTE, Utf8, true),
        Field::new(line::REASON, Utf8, true),
    ])
}

/// The element field of `lines` (named as the Parquet spec names list elements).
pub(crate) fn line_element() -> FieldRef {
    Arc::new(Field::new(
        "element",
        DataType::Struct(line_fields()),
        false,
    ))
}

/// The entries field of `tags`.
pub(crate) fn tag_entries() -> FieldRef {
    Arc::new(Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ])),
        false,
    ))
}

/// The element field of `notes`.
pub(crate) fn note_element() -> FieldRef {
    Arc::new(Field::new("element", DataType::Utf8, false))
}

/// The schema of every file, built once.
pub(crate) fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use DataType::{Date32, Int64, Utf8};
            Arc::new(Schema::new(vec![
                Field::new(col::CALL_ID, Utf8, false),
                Field::new(col::AT, timestamp(), false),
                Field::new(col::DAY, Date32, false),
                Field::new(col::ENDPOINT, Utf8, false),
                Field::new(col::VARIANT, Utf8, true),
                Field::new(col::INFERENCE_COMPONENT, Utf8, true),
                Field::new(col::TARGET_MODEL, Utf8, true),
                Field::new(col::BILLING_KIND, Utf8, true),
                Field::new(col::INSTANCE_TYPE, Utf8, true),
                Field::new(col::INSTANCE_COUNT, Int64, true),
                Field::new(col::MEMORY_MB, Int64, true),
                Field::new(col::PROVISIONED_CONCURRENCY, Int64, true),
                Field::new(col::ALLOCATION, Utf8, false),
                Field::new(col::OPERATION, Utf8, false),
                Field::new(col::LATENCY_US, Int64, false),
                Field::new(col::TTFB_US, Int64, true),
                Field::new(col::BYTES_IN, Int64, false),
                Field::new(col::BYTES_OUT, Int64, false),
                Field::new(col::PARTS, Int64, true),
                Field::new(col::USAGE_VARIANT, Utf8, true),
                Field::new(col::INPUT_TOKENS, Int64, true),
                Field::new(col::OUTPUT_TOKENS, Int64, true),
                Field::new(col::OUTCOME, Utf8, false),
                Field::new(col::ATTEMPTS, Int64, false),
                Field::new(col::LINES, DataType::List(line_element()), false),
                Field::new(col::COST_USD, money(), false),
                Field::new(col::CURRENCY, Utf8, false),
                Field::new(col::REGION, Utf8, true),
                Field::new(col::RUNNING_CLIENT_USD, money(), false),
                Field::new(col::RUNNING_ENDPOINT_USD, money(), false),
                Field::new(col::RUNNING_FLEET_USD, money(), true),
                Field::new(col::ACCRUED_USD, money(), true),
                Field::new(col::ALLOCATED_USD, money(), true),
                Field::new(col::UTILISATION, money(), true),
                Field::new(col::STORAGE_USD, money(), true),
                Field::new(col::UNRESERVED_USD, money(), true),
                Field::new(col::ACCRUAL_PRICED_FROM, Utf8, true),
                Field::new(col::ACCRUAL_STANDING_PARTS, Utf8, true),
                Field::new(col::ACCRUED_TO, timestamp(), true),
                Field::new(col::TAGS, DataType::Map(tag_entries(), false), false),
                Field::new(col::NOTES, DataType::List(note_element()), false),
                Field::new(col::AMOUNT_SCALES, Int64, false),
            ]))
        })
        .clone()
}
