use super::*;
use crate::pricing::{PriceKey, PriceOrigin, Provenance};
use crate::usage::{Operation, Outcome, TokenUsage};
use rust_decimal_macros_free::dec;

/// `dec("0.23")` without a macro crate.
mod rust_decimal_macros_free {
    pub(super) fn dec(s: &str) -> rust_decimal::Decimal {
        s.parse().unwrap()
    }
}

fn rate(key: PriceKey, usd: &str) -> RateResult {
    Ok(Rate::new(
        key,
        dec(usd),
        Provenance::new(PriceOrigin::Snapshot),
    ))
}

fn m5_xlarge(count: u32) -> VariantBilling {
    VariantBilling::Instance {
        instance_type: "ml.m5.xlarge".into(),
        instance_count: count,
    }
}

fn call(latency_ms: u64) -> Usage {
    Usage::new(Operation::InvokeEndpoint, Duration::from_millis(latency_ms))
}

#[test]
fn busy_time_charges_latency_times_hourly_rate() {
    // 0.23 USD/h × 250 ms = 0.23 × 250,000 µs / 3,600,000,000 µs = 0.0000159722…
    let line = compute_line(
        &m5_xlarge(2),
        &call(250),
        Allocation::BusyTime,
        None,
        None,
        &rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), "0.23"),
    );
    assert_eq!(line.cost_usd(), Some(dec("0.000015972222")));
    assert_eq!(line.unit, QuantityUnit::InstanceHours);
}

#[test]
fn processor_sharing_charges_the_shared_hours_rounded_down() {
    // 16 calls sharing 3 instances for 1 s: each is allocated 3/16 s = 187,500 µs
    // = 0.000052083333333333 h (rounded down at 18 places);
    // × 0.23 USD/h = 0.0000119791666666666… → 0.000011979166 (rounded down).
    let shared = SharedTime::from_fs(187_500 * 1_000_000_000);
    let line = compute_line(
        &m5_xlarge(3),
        &call(1000),
        Allocation::ProcessorSharing,
        Some(shared),
        None,
        &rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), "0.23"),
    );
    assert_eq!(line.cost_usd(), Some(dec("0.000011979166")));
    assert_eq!(line.quantity, dec("0.000052083333333333"));
}

/// A share is priced from the exact time, rounded down once. ml.c5.large at
/// $0.102/h, a call alone for 3 µs (3·10⁹ instance-fs): exactly 0.102 × 3 ÷
/// 3,600,000,000 = 8.5·10⁻¹¹ USD = 85 pico-dollars. The hours shown, rounded down
/// at 18 places, are 0.000000000833333333 h, which × 0.102 = 84.99999997·10⁻¹²
/// would round down to 84.
#[test]
fn processor_sharing_prices_the_exact_share_not_the_hours_rounded_down() {
    let line = compute_line(
        &VariantBilling::Instance {
            instance_type: "ml.c5.large".into(),
            instance_count: 1,
        },
        &call(1),
        Allocation::ProcessorSharing,
        Some(SharedTime::from_fs(3 * 1_000_000_000)),
        None,
        &rate(PriceKey::hosting("us-east-1", "ml.c5.large"), "0.102"),
    );
    assert_eq!(line.cost_usd(), Some(dec("0.000000000085")));
    assert_eq!(line.quantity, dec("0.000000000833333333"));
}

#[test]
fn processor_sharing_without_a_share_falls_back_to_busy_time() {
    // 0.23 USD/h × 250 ms, as for busy time.
    let line = compute_line(
        &m5_xlarge(3),
        &call(250),
        Allocation::ProcessorSharing,
        None,
        None,
        &rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), "0.23"),
    );
    assert_eq!(line.cost_usd(), Some(dec("0.000015972222")));
}

#[test]
fn amortized_without_a_known_standing_rate_charges_all_instances_for_the_wall_clock_gap() {
    // 2 instances × 30 s = 60 instance-seconds = 1/60 h; × 0.23 = 0.0038333…
    let lines = amortized_compute_lines(
        &m5_xlarge(2),
        &call(250),
        AmortizedShare::Gap(Duration::from_secs(30)),
        &rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), "0.23"),
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].cost_usd(), Some(dec("0.003833333333")));
}

#[test]
fn amortized_first_call_falls_back_to_busy_time() {
    let line = compute_line(
        &m5_xlarge(2),
        &call(250),
        Allocation::Amortized,
        None,
        None,
        &rate(PriceKey::hosting("us-east-1", "ml.m5.xlarge"), "0.23"),
    );
    assert_eq!(line.cost_usd(), Some(dec("0.000015972222")));
}

#[test]
fn serverless_bills_duration_rounded_up_to_the_millisecond() {
    // 800.2 ms bills as 801 ms = 0.801 s; × 0.00006 USD/s (3 GB) = 0.00004806
    let usage = Usage::new(Operation::InvokeEndpoint, Duration::from_micros(800_200));
    let billing = VariantBilling::Serverless {
        memory_mb: 3072,
        provisioned_concurrency: None,
    };
    let line = compute_line(
        &billing,
        &usage,
        Allocation::BusyTime,
        None,
        None,
        &rate(PriceKey::serverless("us-east-1", 3), "0.00006"),
    );
    assert_eq!(line.quantity, dec("0.801"));
    assert_eq!(line.cost_usd(), Some(dec("0.00004806")));
}

#[test]
fn data_is_billed_per_gibibyte() {
    // 1 MiB in = 1/1024 GB × 0.016 = 0.000015625; 2 MiB out = 0.00003125
    let usage = call(10).with_bytes(1 << 20, 2 << 20);
    let [data_in, data_out] = data_lines(
        &usage,
        &rate(
            PriceKey::DataIn {
                region: "us-east-1".into(),
            },
            "0.016",
        ),
        &rate(
            PriceKey::DataOut {
                region: "us-east-1".into(),
            },
            "0.016",
        ),
    );
    assert_eq!(data_in.quantity, dec("0.0009765625"));
    assert_eq!(data_in.cost_usd(), Some(dec("0.000015625")));
    assert_eq!(data_out.cost_usd(), Some(dec("0.00003125")));
}

#[test]
fn an_unknown_rate_makes_an_unpriced_line_not_a_zero() {
    let key = PriceKey::hosting("us-east-1", "ml.nope.xlarge");
    let line = compute_line(
        &m5_xlarge(1),
        &call(100),
        Allocation::BusyTime,
        None,
        None,
        &Err(PriceError::NotFound { key }),
    );
    assert_eq!(line.cost_usd(), None);
    match &line.price {
        LinePrice::Unpriced { reason } => assert!(reason.contains("ml.nope.xlarge"), "{reason}"),
        other => panic!("expected unpriced, got {other:?}"),
    }
}

#[test]
fn per_inference_and_per_token_charges_add_lines() {
    // 0.70 USD per 1,000 calls = 0.0007 per call;
    // 12 input tokens × 0.0005/1000 = 0.000006; 30 output × 0.0015/1000 = 0.000045
    let usage = call(100).with_tokens(TokenUsage::new(12, 30));
    let charges = UsageCharges::default()
        .per_1000_calls(dec("0.70"))
        .per_1000_tokens(dec("0.0005"), dec("0.0015"));
    let lines = usage_charge_lines(&usage, 0, &charges);
    let costs: Vec<_> = lines.iter().map(|l| (l.item, l.cost_usd())).collect();
    assert_eq!(
        costs,
        vec![
            (LineItem::Inference, Some(dec("0.0007"))),
            (LineItem::InputTokens, Some(dec("0.000006"))),
            (LineItem::OutputTokens, Some(dec("0.000045"))),
        ]
    );
}

/// AWS Marketplace charges one inference for each successful (HTTP 2XX) answer:
/// a call whose success was cut off (its body unread), tried again by the SDK
/// and answered again got two, 2 × $0.50 / 1,000 = $0.001; one whose success
/// was cut off and whose retry got a model error got one, $0.0005, though the
/// call failed.
#[test]
fn the_per_inference_fee_is_charged_for_each_successful_answer_of_the_calls_attempts() {
    let charges = UsageCharges::default().per_1000_calls(dec("0.50"));
    let twice = usage_charge_lines(&call(10), 2, &charges);
    assert_eq!(twice[0].item, LineItem::Inference);
    assert_eq!(twice[0].quantity, Decimal::from(2));
    assert_eq!(twice[0].cost_usd(), Some(dec("0.001")));
    let failed = call(10).with_outcome(Outcome::Error);
    let then_error = usage_charge_lines(&failed, 1, &charges);
    assert_eq!(then_error[0].quantity, Decimal::ONE);
    assert_eq!(then_error[0].cost_usd(), Some(dec("0.0005")));
    // Attempts not seen (0): the call's answer counts one.
    assert_eq!(
        usage_charge_lines(&call(10), 0, &charges)[0].quantity,
        Decimal::ONE
    );
}

/// AWS Marketplace charges one inference for each successful (HTTP 2XX) answer,
/// by default: $0.50 per 1,000 calls, 1,000 calls of which 100 were model errors
/// (HTTP 424) are 900 inferences × $0.50 / 1,000 = $0.45, not $0.50.
#[test]
fn the_per_inference_fee_is_charged_only_on_a_successful_answer() {
    let charges = UsageCharges::default().per_1000_calls(dec("0.50"));
    let mut total = Decimal::ZERO;
    for n in 0..1000 {
        let outcome = if n % 10 == 0 {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        let lines = usage_charge_lines(&call(10).with_outcome(outcome), 0, &charges);
        assert_eq!(lines.len(), 1);
        let want_calls = if outcome == Outcome::Ok { 1 } else { 0 };
        assert_eq!(lines[0].quantity, Decimal::from(want_calls), "{outcome:?}");
        total += lines[0].cost_usd().unwrap();
    }
    assert_eq!(total, dec("0.45"));
    // The model error's line says why it charges nothing.
    let error = usage_charge_lines(&call(10).with_outcome(Outcome::Error), 0, &charges);
    match &error[0].price {
        LinePrice::Priced { provenance, .. } => {
            let note = provenance.note.as_deref().unwrap_or_default();
            assert!(note.contains("2XX"), "{note}");
        }
        other => panic!("{other:?}"),
    }
}

/// A response stream whose 200 arrived got a successful answer, whatever came
/// after: one inference ($0.50 / 1,000 = $0.0005) when the model broke it off or
/// its caller dropped it. A stream refused with a 424 before it opened, and an
/// `InvokeEndpoint` dropped before its answer, got none: $0.
#[test]
fn a_stream_that_opened_is_one_inference_however_it_ended() {
    let charges = UsageCharges::default().per_1000_calls(dec("0.50"));
    let stream = |outcome: Outcome, opened: bool| {
        let mut usage = Usage::new(
            Operation::InvokeEndpointWithResponseStream,
            Duration::from_millis(10),
        )
        .with_outcome(outcome);
        // A stream's parts are counted from its 200 on.
        usage.parts = opened.then_some(3);
        usage_charge_lines(&usage, 0, &charges)[0].cost_usd()
    };
    assert_eq!(stream(Outcome::Error, true), Some(dec("0.0005")));
    assert_eq!(stream(Outcome::Cancelled, true), Some(dec("0.0005")));
    assert_eq!(stream(Outcome::Ok, true), Some(dec("0.0005")));
    assert_eq!(stream(Outcome::Error, false), Some(Decimal::ZERO));
    let dropped = usage_charge_lines(&call(10).with_outcome(Outcome::Cancelled), 0, &charges);
    assert_eq!(dropped[0].cost_usd(), Some(Decimal::ZERO));
}

/// A model error got an answer, not a 2XX one: no inference. A call cancelled
/// before its answer came got none here, but SageMaker may have answered it 2XX
/// after its caller left, and AWS Marketplace then charges it: its note says the
/// $0 is a lower bound, not that the call got no answer.
#[test]
fn a_cancelled_calls_fee_note_says_it_may_have_been_answered_after() {
    let charges = UsageCharges::default().per_1000_calls(dec("0.50"));
    let note = |outcome: Outcome| {
        let lines = usage_charge_lines(&call(10).with_outcome(outcome), 0, &charges);
        assert_eq!(lines[0].cost_usd(), Some(Decimal::ZERO), "{outcome:?}");
        match &lines[0].price {
            LinePrice::Priced { provenance, .. } => {
                provenance.note.as_deref().unwrap_or_default().to_owned()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        note(Outcome::Error),
        "configured per endpoint; no inference charged: AWS Marketplace charges one for \
         each successful (HTTP 2XX) answer, and the call got none"
    );
    assert_eq!(
        note(Outcome::Cancelled),
        "configured per endpoint; no inference charged here: no answer came before the \
         call was cancelled; if SageMaker answered it with HTTP 2XX afterwards, AWS \
         Marketplace charges one (a lower bound)"
    );
}

/// A call that got no successful (HTTP 2XX) answer answered no tokens: a model
/// error (HTTP 424) and a call cancelled before its answer came have token lines
/// of 0 tokens at $0, priced, each saying why as the fee line does (the cancelled
/// one that it is a lower bound), not unpriced lines advising a `TokenCounter`
/// that could count nothing.
#[test]
fn a_call_not_answered_2xx_has_token_lines_of_0_tokens_priced_at_0() {
    // $0.50 per 1,000 calls, $0.0005 per 1,000 input and $0.0015 per 1,000 output
    // tokens.
    let charges = UsageCharges::default()
        .per_1000_calls(dec("0.50"))
        .per_1000_tokens(dec("0.0005"), dec("0.0015"));
    let lines_of =
        |outcome: Outcome| usage_charge_lines(&call(10).with_outcome(outcome), 0, &charges);
    let notes = |outcome: Outcome| -> Vec<String> {
        let lines = lines_of(outcome);
        assert_eq!(
            lines.iter().map(|l| l.item).collect::<Vec<_>>(),
            [
                LineItem::Inference,
                LineItem::InputTokens,
                LineItem::OutputTokens
            ],
            "{outcome:?}"
        );
        lines
            .iter()
            .map(|line| match &line.price {
                // 0 calls or 0 tokens at the configured rate ($0.50 / 1,000 =
                // $0.0005 a call, $0.0005 / 1,000 and $0.0015 / 1,000 a token):
                // 0 × rate = $0.
                LinePrice::Priced {
                    usd_per_unit,
                    provenance,
                    ..
                } => {
                    assert_eq!(line.quantity, Decimal::ZERO, "{outcome:?} {line:?}");
                    assert_eq!(line.cost_usd(), Some(Decimal::ZERO), "{outcome:?} {line:?}");
                    let rate = match line.item {
                        LineItem::Inference => dec("0.0005"),
                        LineItem::InputTokens => dec("0.0000005"),
                        _ => dec("0.0000015"),
                    };
                    assert_eq!(*usd_per_unit, rate, "{outcome:?} {line:?}");
                    provenance.note.as_deref().unwrap_or_default().to_owned()
                }
                unpriced => panic!("{outcome:?}: {unpriced:?}"),
            })
            .collect()
    };
    assert_eq!(
        notes(Outcome::Error)[1..],
        [
            "configured per endpoint; no input tokens charged: tokens are charged on a \
             successful (HTTP 2XX) answer, and the call got none",
            "configured per endpoint; no output tokens charged: tokens are charged on a \
             successful (HTTP 2XX) answer, and the call got none",
        ]
    );
    assert_eq!(
        notes(Outcome::Cancelled)[1..],
        [
            "configured per endpoint; no input tokens charged here: no answer came before \
             the call was cancelled; if SageMaker answered it with HTTP 2XX afterwards, its \
             tokens were charged (a lower bound)",
            "configured per endpoint; no output tokens charged here: no answer came before \
             the call was cancelled; if SageMaker answered it with HTTP 2XX afterwards, its \
             tokens were charged (a lower bound)",
        ]
    );
    // A failed asynchronous inference's settlement answered none either, whatever
    // its output was counted for: 0 tokens, $0.
    let failed = Usage::new(Operation::InvokeEndpointAsync, Duration::from_secs(1))
        .with_outcome(Outcome::Error)
        .with_tokens(TokenUsage::new(1_000, 200));
    for line in &usage_charge_lines(&failed, 0, &charges)[1..] {
        assert_eq!(
            (line.quantity, line.cost_usd()),
            (Decimal::ZERO, Some(Decimal::ZERO))
        );
    }
    // A 2XX answer that reported its tokens is charged them: 1,000 × 0.0005 / 1,000
    // = $0.0005 in, 200 × 0.0015 / 1,000 = $0.0003 out, next to its $0.0005 fee.
    let answered = usage_charge_lines(
        &call(10).with_tokens(TokenUsage::new(1_000, 200)),
        0,
        &charges,
    );
    assert_eq!(
        answered.iter().map(|l| l.cost_usd()).collect::<Vec<_>>(),
        [
            Some(dec("0.0005")),
            Some(dec("0.0005")),
            Some(dec("0.0003"))
        ]
    );
}

/// Each successful (HTTP 2XX) answer is charged its tokens, as it is its fee: one
/// whose body was cut off (the SDK tries such an attempt again, or fails the
/// call) had tokens nobody read. Each of its call's token lines has an unpriced
/// line after it saying so, never priced without them; the answer read's
/// reported tokens stay priced, so the receipt keeps their cost (a lower
/// bound, the receipt not fully priced).
///
/// At $0.50 per 1,000 calls and $0.0005 / $0.0015 per 1,000 input / output
/// tokens:
/// - a 200 cut off, then retries failed in transit (the call an error): 1
///   inference, 1 × $0.50 / 1,000 = $0.0005, priced; its tokens, charged by AWS
///   Marketplace, are not known: both token lines unpriced at 0 tokens, not
///   priced "0 tokens, $0, the call got none";
/// - a 200 cut off, then a 200 reporting 1,000 in and 500 out: 2 inferences,
///   2 × $0.0005 = $0.001, priced; the tokens read would be 1,000 × $0.0005 /
///   1,000 = $0.0005 in and 500 × $0.0015 / 1,000 = $0.00075 out, but the first
///   answer's (about as much again, $0.00125, not known) are not among them:
///   each token line priced as read ($0.0005, $0.00075) and followed by an
///   unpriced line of 0 tokens: $0.00225 priced, a lower bound.
#[test]
fn a_2xx_answer_cut_off_leaves_the_calls_token_lines_unpriced() {
    let token_charges = UsageCharges::default()
        .per_1000_calls(dec("0.50"))
        .per_1000_tokens(dec("0.0005"), dec("0.0015"));
    let summary = |lines: &[CostLine]| -> Vec<(LineItem, Decimal, Option<Decimal>, String)> {
        lines
            .iter()
            .map(|l| {
                let said = match &l.price {
                    LinePrice::Priced { .. } => String::new(),
                    LinePrice::Unpriced { reason } => reason.clone(),
                };
                (l.item, l.quantity, l.cost_usd(), said)
            })
            .collect()
    };
    let cut_off_then_failed =
        usage_charge_lines(&call(10).with_outcome(Outcome::Error), 1, &token_charges);
    assert_eq!(
        summary(&cut_off_then_failed),
        [
            (
                LineItem::Inference,
                Decimal::ONE,
                Some(dec("0.0005")),
                String::new()
            ),
            (
                LineItem::InputTokens,
                Decimal::ZERO,
                None,
                "1 of 1 answer (HTTP 2XX) was cut off before its body was read: its input \
                 tokens are charged but not known"
                    .to_owned()
            ),
            (
                LineItem::OutputTokens,
                Decimal::ZERO,
                None,
                "1 of 1 answer (HTTP 2XX) was cut off before its body was read: its output \
                 tokens are charged but not known"
                    .to_owned()
            ),
        ]
    );
    // Cancelled after a 200 cut off: the same, not "no answer came".
    let cut_off_then_cancelled = usage_charge_lines(
        &call(10).with_outcome(Outcome::Cancelled),
        1,
        &token_charges,
    );
    assert_eq!(
        summary(&cut_off_then_cancelled)[1..],
        summary(&cut_off_then_failed)[1..]
    );
    let cut_off_then_answered = usage_charge_lines(
        &call(10).with_tokens(TokenUsage::new(1000, 500)),
        2,
        &token_charges,
    );
    assert_eq!(
        summary(&cut_off_then_answered),
        [
            (
                LineItem::Inference,
                Decimal::from(2),
                Some(dec("0.001")),
                String::new()
            ),
            (
                LineItem::InputTokens,
                Decimal::from(1000),
                Some(dec("0.0005")),
                String::new()
            ),
            (
                LineItem::InputTokens,
                Decimal::ZERO,
                None,
                "1 of 2 answers (HTTP 2XX) was cut off before its body was read: its input \
                 tokens are charged but not known"
                    .to_owned()
            ),
            (
                LineItem::OutputTokens,
                Decimal::from(500),
                Some(dec("0.00075")),
                String::new()
            ),
            (
                LineItem::OutputTokens,
                Decimal::ZERO,
                None,
                "1 of 2 answers (HTTP 2XX) was cut off before its body was read: its output \
                 tokens are charged but not known"
                    .to_owned()
            ),
        ]
    );
    let priced: Decimal = cut_off_then_answered
        .iter()
        .filter_map(CostLine::cost_usd)
        .sum();
    assert_eq!(priced, dec("0.00225"));
    // The answer read reported its input and not its output: the output line
    // says both why.
    let unreported = usage_charge_lines(
        &call(10).with_tokens(TokenUsage {
            input: Some(1000),
            output: None,
        }),
        3,
        &token_charges,
    );
    // Its input: priced as read, then the cut-off answers' line.
    assert_eq!(summary(&unreported)[1].2, Some(dec("0.0005")));
    assert_eq!(summary(&unreported)[2].2, None);
    assert_eq!(
        summary(&unreported)[3],
        (
            LineItem::OutputTokens,
            Decimal::ZERO,
            None,
            "2 of 3 answers (HTTP 2XX) were cut off before their bodies were read: their \
             output tokens are charged but not known; the answer read did not report its \
             output tokens either (configure a TokenCounter)"
                .to_owned()
        )
    );
    // One answer, read: priced as before (1,000 × $0.0005 / 1,000 = $0.0005 in,
    // 500 × $0.0015 / 1,000 = $0.00075 out).
    let read = usage_charge_lines(
        &call(10).with_tokens(TokenUsage::new(1000, 500)),
        1,
        &token_charges,
    );
    assert_eq!(
        read.iter().map(|l| l.cost_usd()).collect::<Vec<_>>(),
        [
            Some(dec("0.0005")),
            Some(dec("0.0005")),
            Some(dec("0.00075"))
        ]
    );
}

#[test]
fn per_token_charges_without_token_counts_are_unpriced() {
    let charges = UsageCharges::default().per_1000_tokens(dec("0.0005"), dec("0.0015"));
    let lines = usage_charge_lines(&call(100), 0, &charges);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.cost_usd().is_none()));
}

#[test]
fn a_missing_token_count_is_named_on_its_own_line() {
    // A TGI answer: 100 output tokens, no input count. The output line is priced
    // (100 × 0.0015 / 1000 = 0.00015); the input line says it is the input that
    // was not reported.
    let usage = call(100).with_tokens(TokenUsage {
        input: None,
        output: Some(100),
    });
    let charges = UsageCharges::default().per_1000_tokens(dec("0.0005"), dec("0.0015"));
    let lines = usage_charge_lines(&usage, 0, &charges);
    assert_eq!(lines[1].cost_usd(), Some(dec("0.00015")));
    match &lines[0].price {
        LinePrice::Unpriced { reason } => assert_eq!(
            reason,
            "the response did not report its input tokens (configure a TokenCounter)"
        ),
        priced => panic!("{priced:?}"),
    }
}

#[test]
fn a_tgi_answer_with_null_best_of_sequences_has_its_tokens_priced() {
    // TGI without best_of writes `"best_of_sequences": null`: 1 prefill token in,
    // 5 generated out, so 1 × 0.0005 / 1000 = $0.0000005 in and
    // 5 × 0.0015 / 1000 = $0.0000075 out: $0.000008 for the call's tokens.
    let body = br#"{"generated_text":"hi","details":{"finish_reason":"length","generated_tokens":5,"seed":null,"prefill":[{"id":1,"text":"<s>","logprob":null}],"tokens":[],"best_of_sequences":null}}"#;
    let tokens = crate::usage::detect_tokens(body).expect("the answer reports its tokens");
    let charges = UsageCharges::default().per_1000_tokens(dec("0.0005"), dec("0.0015"));
    let lines = usage_charge_lines(&call(100).with_tokens(tokens), 0, &charges);
    let costs = lines.iter().map(|l| l.cost_usd()).collect::<Vec<_>>();
    assert_eq!(costs, [Some(dec("0.0000005")), Some(dec("0.0000075"))]);
    let total: Decimal = costs.into_iter().flatten().sum();
    assert_eq!(total, dec("0.000008"));
}

#[test]
fn negative_usage_charges_are_rejected() {
    let charges = UsageCharges::default().per_1000_calls(dec("-1"));
    let err = charges.validate().unwrap_err();
    assert_eq!(err.option, "UsageCharges::usd_per_1000_calls");
    assert!(err.to_string().contains("negative"), "{err}");
}

#[test]
fn usage_charges_alone_need_a_price() {
    let nothing = UsageCharges::default().alone();
    let err = nothing.validate().unwrap_err();
    assert_eq!(err.option, "UsageCharges::alone");
    assert!(err.to_string().contains("silent $0"), "{err}");
    let per_call = UsageCharges::default().per_1000_calls(dec("0.70")).alone();
    assert_eq!(per_call.validate(), Ok(()));
    // All of the whole price at $0 is every call at a silent $0 too.
    for all_zero in [
        UsageCharges::default()
            .per_1000_calls(Decimal::ZERO)
            .alone(),
        UsageCharges::default()
            .per_1000_tokens(Decimal::ZERO, Decimal::ZERO)
            .alone(),
    ] {
        let err = all_zero.validate().unwrap_err();
        assert_eq!(err.option, "UsageCharges::alone", "{all_zero:?}");
    }
    // Free input tokens next to priced output tokens are a choice.
    let free_input = UsageCharges::default()
        .per_1000_tokens(Decimal::ZERO, dec("0.0015"))
        .alone();
    assert_eq!(free_input.validate(), Ok(()));
}

#[test]
fn a_rate_whose_cost_no_decimal_holds_makes_an_unpriced_line_not_a_panic() {
    // Decimal::MAX is 2⁹⁶ − 1 ≈ 7.92 × 10²⁸. A garbage 5 × 10²⁸ USD/s for 2.5 s of
    // serverless is 1.25 × 10²⁹ USD; 2 shared instance-hours at 5 × 10²⁸ USD/h are
    // 10²⁹; 3 GB at 4 × 10²⁸ USD/GB are 1.2 × 10²⁹: none can be written down.
    let serverless = VariantBilling::Serverless {
        memory_mb: 2048,
        provisioned_concurrency: None,
    };
    let huge_per_second = rate(
        PriceKey::serverless("us-east-1", 2),
        "50000000000000000000000000000",
    );
    let huge_per_hour = rate(
        PriceKey::hosting("us-east-1", "ml.m5.xlarge"),
        "50000000000000000000000000000",
    );
    let huge_per_gb = rate(
        PriceKey::DataIn {
            region: "us-east-1".into(),
        },
        "40000000000000000000000000000",
    );
    let lines = std::panic::catch_unwind(|| {
        let [data_in, _] = data_lines(&call(10).with_bytes(3 << 30, 0), &huge_per_gb, &huge_per_gb);
        [
            compute_line(
                &serverless,
                &call(2500),
                Allocation::BusyTime,
                None,
                None,
                &huge_per_second,
            ),
            compute_line(
                &m5_xlarge(2),
                &call(1000),
                Allocation::ProcessorSharing,
                // 2 h: 7.2·10¹⁸ instance-fs.
                Some(SharedTime::from_fs(7_200_000_000_000_000_000)),
                None,
                &huge_per_hour,
            ),
            data_in,
        ]
    })
    .expect("pricing must not panic on a garbage rate");
    for (line, quantity) in lines.iter().zip(["2.5", "2", "3"]) {
        assert_eq!(line.quantity, dec(quantity));
        match &line.price {
            LinePrice::Unpriced { reason } => {
                assert!(reason.contains("not a plausible price"), "{reason}")
            }
            other => panic!("expected unpriced, got {other:?}"),
        }
    }
    // Just within: 3 × 10²⁸ USD/s × 2.5 s = 7.5 × 10²⁸ USD, priced exactly.
    let line = compute_line(
        &serverless,
        &call(2500),
        Allocation::BusyTime,
        None,
        None,
        &rate(
            PriceKey::serverless("us-east-1", 2),
            "30000000000000000000000000000",
        ),
    );
    assert_eq!(line.cost_usd(), Some(dec("75000000000000000000000000000")));
}
