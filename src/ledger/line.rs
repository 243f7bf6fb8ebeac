//! A ledger line of format 1, written by hand: `{"v":1,` then the receipt's
//! members exactly as `serde_json` writes them from the receipt's derives (which
//! define the format and read it back; a test holds the two to the same bytes).
//! Format 2 (`compact.rs`) uses these pieces and falls back to this whole line.
//!
//! The recording threads encode every receipt, next to the callers on the same
//! cores. Through serde, a receipt took about 36,000 instructions, most of them
//! a call and a byte-by-byte escape check per key and per amount; here the keys
//! are literals and only free text is checked, eight bytes at a time.
//!
//! Every type is taken apart without `..`: a field added to a receipt type does
//! not compile until it is written here too.

use crate::billing::{Accrual, AccrualSource, Cost, CostLine, LinePrice, amount};
use crate::endpoint::VariantBilling;
use crate::pricing::Provenance;
use crate::usage::Usage;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

/// Appends the ledger line of `cost`, `\n` included.
pub(crate) fn write_line(cost: &Cost, out: &mut Vec<u8>) {
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
    out.extend_from_slice(b"{\"v\":1,\"call_id\":");
    string(out, call_id);
    out.extend_from_slice(b",\"at\":");
    timestamp(out, at);
    out.extend_from_slice(b",\"endpoint\":");
    string(out, endpoint);
    out.extend_from_slice(b",\"variant\":");
    optional(out, variant.as_deref(), string);
    targets(out, inference_component.as_deref(), target_model.as_deref());
    out.extend_from_slice(b",\"billing\":");
    optional(out, billing.as_ref(), variant_billing);
    out.extend_from_slice(b",\"allocation\":");
    quoted(out, allocation.as_str());
    out.extend_from_slice(b",\"usage\":");
    write_usage(out, usage);
    out.extend_from_slice(b",\"lines\":[");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cost_line(out, line);
    }
    out.extend_from_slice(b"],\"cost_usd\":");
    decimal(out, cost_usd);
    out.extend_from_slice(b",\"currency\":");
    string(out, currency);
    if let Some(region) = region {
        out.extend_from_slice(b",\"region\":");
        string(out, region);
    }
    out.extend_from_slice(b",\"running_client_usd\":");
    decimal(out, running_client_usd);
    out.extend_from_slice(b",\"running_endpoint_usd\":");
    decimal(out, running_endpoint_usd);
    if let Some(fleet) = running_fleet_usd {
        out.extend_from_slice(b",\"running_fleet_usd\":");
        decimal(out, fleet);
    }
    out.extend_from_slice(b",\"accrual\":");
    optional(out, accrual.as_ref(), write_accrual);
    tags_and_notes(out, tags, notes);
    out.extend_from_slice(b"}\n");
}

/// `,"inference_component":…` and `,"target_model":…`, each left out when the call
/// named none (as serde skips them).
pub(super) fn targets(out: &mut Vec<u8>, component: Option<&str>, model: Option<&str>) {
    if let Some(component) = component {
        out.extend_from_slice(b",\"inference_component\":");
        string(out, component);
    }
    if let Some(model) = model {
        out.extend_from_slice(b",\"target_model\":");
        string(out, model);
    }
}

/// `,"tags":{…}` and `,"notes":[…]`, each left out when empty (as serde skips
/// them); the last members of a receipt in both formats.
pub(super) fn tags_and_notes(
    out: &mut Vec<u8>,
    tags: &std::collections::BTreeMap<String, String>,
    notes: &[String],
) {
    if !tags.is_empty() {
        out.extend_from_slice(b",\"tags\":{");
        for (i, (key, value)) in tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, key);
            out.push(b':');
            string(out, value);
        }
        out.push(b'}');
    }
    if !notes.is_empty() {
        out.extend_from_slice(b",\"notes\":[");
        for (i, note) in notes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, note);
        }
        out.push(b']');
    }
}

pub(super) fn write_usage(out: &mut Vec<u8>, usage: &Usage) {
    let Usage {
        operation,
        latency,
        time_to_first_byte,
        bytes_in,
        bytes_out,
        parts,
        variant,
        input_tokens,
        output_tokens,
        outcome,
        attempts,
    } = usage;
    out.extend_from_slice(b"{\"operation\":");
    quoted(out, operation.as_str());
    out.extend_from_slice(b",\"latency_us\":");
    micros(out, latency);
    if let Some(ttfb) = time_to_first_byte {
        out.extend_from_slice(b",\"time_to_first_byte_us\":");
        micros(out, ttfb);
    }
    out.extend_from_slice(b",\"bytes_in\":");
    number(out, *bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    number(out, *bytes_out);
    if let Some(parts) = parts {
        out.extend_from_slice(b",\"parts\":");
        number(out, *parts);
    }
    out.extend_from_slice(b",\"variant\":");
    optional(out, variant.as_deref(), string);
    if let Some(n) = input_tokens {
        out.extend_from_slice(b",\"input_tokens\":");
        number(out, *n);
    }
    if let Some(n) = output_tokens {
        out.extend_from_slice(b",\"output_tokens\":");
        number(out, *n);
    }
    out.extend_from_slice(b",\"outcome\":");
    quoted(out, outcome.as_str());
    if *attempts != 1 {
        out.extend_from_slice(b",\"attempts\":");
        number(out, u64::from(*attempts));
    }
    out.push(b'}');
}

pub(super) fn cost_line(out: &mut Vec<u8>, line: &CostLine) {
    let CostLine {
        item,
        quantity,
        unit,
        price,
    } = line;
    out.extend_from_slice(b"{\"item\":");
    quoted(out, item.as_str());
    out.extend_from_slice(b",\"quantity\":");
    decimal(out, quantity);
    out.extend_from_slice(b",\"unit\":");
    quoted(out, unit.as_str());
    out.extend_from_slice(b",\"price\":");
    match price {
        LinePrice::Priced {
            usd_per_unit,
            cost_usd,
            provenance,
        } => {
            out.extend_from_slice(b"{\"status\":\"priced\",\"usd_per_unit\":");
            decimal(out, usd_per_unit);
            out.extend_from_slice(b",\"cost_usd\":");
            decimal(out, cost_usd);
            out.extend_from_slice(b",\"provenance\":");
            write_provenance(out, provenance);
        }
        LinePrice::Unpriced { reason } => {
            out.extend_from_slice(b"{\"status\":\"unpriced\",\"reason\":");
            string(out, reason);
        }
    }
    out.extend_from_slice(b"}}");
}

pub(super) fn write_provenance(out: &mut Vec<u8>, provenance: &Provenance) {
    let Provenance {
        source,
        sku,
        effective_date,
        fetched_at,
        note,
    } = provenance;
    out.extend_from_slice(b"{\"source\":");
    quoted(out, source.as_str());
    out.extend_from_slice(b",\"sku\":");
    optional(out, sku.as_deref(), string);
    out.extend_from_slice(b",\"effective_date\":");
    optional(out, effective_date.as_deref(), string);
    out.extend_from_slice(b",\"fetched_at\":");
    optional(out, fetched_at.as_ref(), timestamp);
    out.extend_from_slice(b",\"note\":");
    optional(out, note.as_deref(), string);
    out.push(b'}');
}

pub(super) fn variant_billing(out: &mut Vec<u8>, billing: &VariantBilling) {
    match billing {
        VariantBilling::Instance {
            instance_type,
            instance_count,
        } => {
            out.extend_from_slice(b"{\"kind\":\"instance\",\"instance_type\":");
            string(out, instance_type);
            out.extend_from_slice(b",\"instance_count\":");
            number(out, *instance_count);
        }
        VariantBilling::Serverless {
            memory_mb,
            provisioned_concurrency,
        } => {
            out.extend_from_slice(b"{\"kind\":\"serverless\",\"memory_mb\":");
            number(out, *memory_mb);
            out.extend_from_slice(b",\"provisioned_concurrency\":");
            optional(out, provisioned_concurrency.as_ref(), |out, n| {
                number(out, *n)
            });
        }
    }
    out.push(b'}');
}

pub(super) fn write_accrual(out: &mut Vec<u8>, accrual: &Accrual) {
    let Accrual {
        accrued_usd,
        allocated_usd,
        utilisation,
        storage_usd,
        unreserved_usd,
        priced_from,
        standing_parts,
        accrued_to,
    } = accrual;
    out.extend_from_slice(b"{\"accrued_usd\":");
    decimal(out, accrued_usd);
    out.extend_from_slice(b",\"allocated_usd\":");
    decimal(out, allocated_usd);
    out.extend_from_slice(b",\"utilisation\":");
    optional(out, utilisation.as_ref(), decimal);
    if let Some(storage_usd) = storage_usd {
        out.extend_from_slice(b",\"storage_usd\":");
        decimal(out, storage_usd);
    }
    if let Some(unreserved_usd) = unreserved_usd {
        out.extend_from_slice(b",\"unreserved_usd\":");
        decimal(out, unreserved_usd);
    }
    if !priced_from.is_empty() {
        out.extend_from_slice(b",\"priced_from\":");
        accrual_sources(out, priced_from);
    }
    if !standing_parts.is_empty() {
        out.extend_from_slice(b",\"standing_parts\":");
        // Serializing decimals, strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &**standing_parts);
    }
    if let Some(to) = accrued_to {
        out.extend_from_slice(b",\"accrued_to\":");
        timestamp(out, to);
    }
    out.push(b'}');
}

/// `[{…},…]`: an accrual's `priced_from`.
pub(super) fn accrual_sources(out: &mut Vec<u8>, sources: &[AccrualSource]) {
    out.push(b'[');
    for (i, source) in sources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        accrual_source(out, source);
    }
    out.push(b']');
}

/// `{"charge":…,"price_source":…,"note":…}`, the note left out when there is none.
pub(super) fn accrual_source(out: &mut Vec<u8>, source: &AccrualSource) {
    let AccrualSource {
        charge,
        price_source,
        note,
    } = source;
    out.extend_from_slice(b"{\"charge\":");
    quoted(out, charge.as_str());
    out.extend_from_slice(b",\"price_source\":");
    quoted(out, price_source.as_str());
    if let Some(note) = note {
        out.extend_from_slice(b",\"note\":");
        string(out, note);
    }
    out.push(b'}');
}

/// Text known to need no escaping (variant names, amounts, timestamps), quoted.
pub(super) fn quoted(out: &mut Vec<u8>, text: impl AsRef<[u8]>) {
    out.push(b'"');
    out.extend_from_slice(text.as_ref());
    out.push(b'"');
}

pub(super) fn optional<T: ?Sized>(
    out: &mut Vec<u8>,
    value: Option<&T>,
    write: impl Fn(&mut Vec<u8>, &T),
) {
    match value {
        Some(value) => write(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

pub(super) fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

pub(super) fn micros(out: &mut Vec<u8>, d: &std::time::Duration) {
    number(out, u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
}

/// An amount, as a string (see `billing::receipt`).
pub(super) fn decimal(out: &mut Vec<u8>, d: &Decimal) {
    let mut buf = [0; amount::MAX_LEN];
    quoted(out, amount::ascii(d, &mut buf));
}

/// As chrono's `Serialize`: RFC 3339, `Z`, as many fractional digits as needed.
pub(super) fn timestamp(out: &mut Vec<u8>, at: &DateTime<Utc>) {
    quoted(out, at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
}

/// A JSON string, escaped as `serde_json` escapes it: `"` and `\`, and control
/// characters as `\b \t \n \f \r` or `\u00XX`.
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(at) = next_to_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        escape(out, bytes[at]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// True when any byte of `w` is zero.
fn any_zero_byte(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// True when any byte of `w` needs escaping: below 0x20, a quote or a backslash.
fn any_to_escape(w: u64) -> bool {
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0;
    control || any_zero_byte(w ^ (ONES * u64::from(b'"'))) || any_zero_byte(w ^ (ONES * 0x5c))
}

/// The index of the first byte at or after `from` that needs escaping, checked
/// eight bytes at a time.
fn next_to_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = &bytes[from..];
    let mut chunks = rest.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        if any_to_escape(u64::from_ne_bytes(chunk.try_into().expect("eight bytes"))) {
            break;
        }
        at += 8;
    }
    rest[at..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|p| from + at + p)
}

fn escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        _ => {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex[0], hex[1]]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The line serde_json writes for `cost`.
    fn through_serde(cost: &Cost) -> String {
        let json = serde_json::to_string(cost).unwrap();
        format!("{{\"v\":1,{}\n", &json[1..])
    }

    fn by_hand(cost: &Cost) -> String {
        let mut out = Vec::new();
        write_line(cost, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn cost(value: serde_json::Value) -> Cost {
        serde_json::from_value(value).unwrap()
    }

    fn provenance(source: &str) -> serde_json::Value {
        json!({"source": source, "sku": "SKU\"1", "effective_date": "2026-05-20",
               "fetched_at": "2026-11-29T09:22:12Z", "note": "fallback:\n\tcache\u{1}"})
    }

    #[test]
    fn every_field_and_variant_is_written_as_serde_json_writes_it() {
        let full = json!({
            "call_id": "req-\"1\"\\", "at": "2026-11-29T09:22:12.758756612Z",
            "endpoint": "bench", "variant": "AllTraffic",
            "inference_component": "llama-\"8b\"", "target_model": "m/1.tar.gz",
            "billing": {"kind": "serverless", "memory_mb": 2048, "provisioned_concurrency": 3},
            "allocation": "amortized",
            "usage": {"operation": "InvokeEndpointWithResponseStream", "latency_us": 4835,
                      "time_to_first_byte_us": 12, "bytes_in": 15, "bytes_out": 112, "parts": 4,
                      "variant": "AllTraffic", "input_tokens": 12, "output_tokens": 30,
                      "outcome": "cancelled"},
            "lines": [
                {"item": "compute", "quantity": "0.0000013430555555555555555556",
                 "unit": "seconds", "price": {"status": "priced", "usd_per_unit": "-0.23",
                 "cost_usd": "0.000000308903", "provenance": provenance("live")}},
                {"item": "data_out", "quantity": "0.5", "unit": "gigabytes",
                 "price": {"status": "unpriced", "reason": "no \"rate\"\n東京 🙂"}},
                {"item": "inference", "quantity": "1", "unit": "calls",
                 "price": {"status": "priced", "usd_per_unit": "0.0001", "cost_usd": "0.0001",
                 "provenance": {"source": "override", "sku": null, "effective_date": null,
                                "fetched_at": null, "note": null}}},
                {"item": "input_tokens", "quantity": "12", "unit": "tokens",
                 "price": {"status": "priced", "usd_per_unit": "0", "cost_usd": "0",
                 "provenance": provenance("cache")}},
                {"item": "output_tokens", "quantity": "79228162514264337593543950335",
                 "unit": "tokens", "price": {"status": "priced", "usd_per_unit": "1",
                 "cost_usd": "1", "provenance": provenance("snapshot")}},
                {"item": "data_in", "quantity": "0", "unit": "instance_hours",
                 "price": {"status": "unpriced", "reason": ""}}
            ],
            "cost_usd": "0.000000310796", "currency": "USD", "region": "eu-west-1",
            "running_client_usd": "1.000000310796", "running_endpoint_usd": "0.000000310796",
            "accrual": {"accrued_usd": "0.000000313503", "allocated_usd": "0.000000308903",
                        "utilisation": "0.985327", "storage_usd": "0.000000002",
                        "unreserved_usd": "0.00000015",
                        "standing_parts": [
                            {"billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
                                         "instance_count": 2}, "usd_per_hour": "2.816"},
                            {"billing": {"kind": "serverless", "memory_mb": 2048,
                                         "provisioned_concurrency": 3}, "usd_per_hour": "0.9"}
                        ],
                        "priced_from": [
                            {"charge": "capacity", "price_source": "snapshot",
                             "note": "primary \"failed\"\n\t東京 \u{1}"},
                            {"charge": "capacity", "price_source": "live"},
                            {"charge": "storage", "price_source": "cache", "note": ""},
                            {"charge": "storage", "price_source": "override"}
                        ]},
            "tags": {"team": "search\\ranking", "\u{1f}odd key": "🙂", "": ""},
            "notes": ["a note with a \"quote\"", ""]
        });
        let sparse = json!({
            "call_id": "local-0", "at": "2026-11-29T09:22:12Z", "endpoint": "e",
            "variant": null, "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
            "instance_count": 4}, "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpointAsync", "latency_us": 0, "bytes_in": 0,
                      "bytes_out": 0, "variant": null, "outcome": "error"},
            "lines": [], "cost_usd": "0", "currency": "USD",
            "running_client_usd": "0", "running_endpoint_usd": "0",
            "accrual": {"accrued_usd": "0", "allocated_usd": "0", "utilisation": null,
                        "accrued_to": "2026-12-02T18:00:00.123456789Z"}
        });
        let bare = json!({
            "call_id": "", "at": "1970-01-01T00:00:00.001Z", "endpoint": "", "variant": null,
            "billing": {"kind": "serverless", "memory_mb": 1024, "provisioned_concurrency": null},
            "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1, "bytes_in": 1,
                      "bytes_out": 1, "variant": null, "outcome": "ok"},
            "lines": [], "cost_usd": "0", "currency": "USD", "running_client_usd": "0",
            "running_endpoint_usd": "0", "accrual": null
        });
        for value in [full, sparse, bare] {
            let cost = cost(value);
            assert_eq!(by_hand(&cost), through_serde(&cost));
        }
        let mut no_billing = cost(json!({
            "call_id": "x", "at": "2026-11-29T09:22:12.5Z", "endpoint": "e", "variant": null,
            "billing": null, "allocation": "busy_time",
            "usage": {"operation": "InvokeEndpoint", "latency_us": 1, "bytes_in": 1,
                      "bytes_out": 1, "variant": null, "outcome": "ok"},
            "lines": [], "cost_usd": "0", "currency": "USD", "running_client_usd": "0",
            "running_endpoint_usd": "0", "accrual": null
        }));
        assert_eq!(by_hand(&no_billing), through_serde(&no_billing));
        no_billing.usage.latency = std::time::Duration::MAX;
        assert_eq!(by_hand(&no_billing), through_serde(&no_billing));
    }

    #[test]
    fn an_accrual_written_before_it_carried_sources_reads_and_is_written_as_it_was() {
        // A line of a ledger written before accruals said where their rates came from.
        let old = concat!(
            r#"{"v":1,"call_id":"x","at":"2026-11-29T09:22:12.500Z","endpoint":"e","variant":null,"#,
            r#""billing":null,"allocation":"busy_time","usage":{"operation":"InvokeEndpoint","#,
            r#""latency_us":1,"bytes_in":1,"bytes_out":1,"variant":null,"outcome":"ok"},"#,
            r#""lines":[],"cost_usd":"0","currency":"USD","running_client_usd":"0","#,
            r#""running_endpoint_usd":"0","accrual":{"accrued_usd":"0.5","allocated_usd":"0.25","#,
            r#""utilisation":"0.5"}}"#,
            "\n"
        );
        let cost: Cost = serde_json::from_str(old).unwrap();
        let accrual = cost.accrual.as_ref().unwrap();
        assert!(accrual.priced_from.is_empty());
        assert_eq!(accrual.fallbacks().count(), 0);
        assert_eq!(by_hand(&cost), old);
    }

    /// An amount with more significant digits than a decimal holds is not what
    /// the writer wrote: corruption, not read rounded
    /// (`0.00000000000000000000000000015` would be `0.0000000000000000000000000002`).
    #[test]
    fn an_amount_with_more_digits_than_a_decimal_holds_is_corrupt_not_rounded() {
        let line = concat!(
            r#"{"v":1,"call_id":"x","at":"2026-11-29T09:22:12.500Z","endpoint":"e","variant":null,"#,
            r#""billing":null,"allocation":"busy_time","usage":{"operation":"InvokeEndpoint","#,
            r#""latency_us":1,"bytes_in":1,"bytes_out":1,"variant":null,"outcome":"ok"},"#,
            r#""lines":[],"cost_usd":"0.0000000000000000000000000001","currency":"USD","#,
            r#""running_client_usd":"0","running_endpoint_usd":"0","#,
            r#""accrual":{"accrued_usd":"0.5","allocated_usd":"0.25","utilisation":"0.5"}}"#,
            "\n"
        );
        let read = |line: &str| {
            crate::ledger::LedgerReader::new(line.as_bytes(), "mem.jsonl")
                .collect::<Result<Vec<_>, _>>()
        };
        let cost = &read(line).unwrap()[0];
        assert_eq!(cost.cost_usd, Decimal::from_i128_with_scale(1, 28));
        assert_eq!(by_hand(cost), line);
        let too_many = "0.00000000000000000000000000015";
        for (member, damaged) in [
            (
                r#""cost_usd":"0.0000000000000000000000000001""#,
                format!(r#""cost_usd":"{too_many}""#),
            ),
            (
                r#""utilisation":"0.5""#,
                format!(r#""utilisation":"{too_many}""#),
            ),
        ] {
            // After a line read, so that the file is a ledger with a corrupt line.
            let damaged = format!("{line}{}", line.replace(member, &damaged));
            assert!(
                matches!(
                    read(&damaged),
                    Err(crate::ledger::LedgerError::Corrupt { .. })
                ),
                "read rounded: {damaged}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_text_is_escaped_as_serde_json_escapes_it(s in any::<String>(), t in "[ -~\\\\\"\t\n\u{0}-\u{1f}é]{0,40}") {
            for s in [&s, &t] {
                let mut out = Vec::new();
                string(&mut out, s);
                prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap());
            }
        }

        #[test]
        fn any_amount_and_time_are_written_as_serde_json_writes_them(
            mantissa in any::<i64>(), scale in 0u32..=28, nanos in 0i64..4_000_000_000_000_000_000,
        ) {
            let mut cost = cost(json!({
                "call_id": "x", "at": "2026-11-29T09:22:12Z", "endpoint": "e", "variant": null,
                "billing": null, "allocation": "busy_time",
                "usage": {"operation": "InvokeEndpoint", "latency_us": 1, "bytes_in": 1,
                          "bytes_out": 1, "variant": null, "outcome": "ok"},
                "lines": [], "cost_usd": "0", "currency": "USD", "running_client_usd": "0",
                "running_endpoint_usd": "0", "accrual": null
            }));
            cost.cost_usd = Decimal::new(mantissa, scale);
            cost.at = DateTime::from_timestamp_nanos(nanos);
            prop_assert_eq!(by_hand(&cost), through_serde(&cost));
        }
    }
}
