//! The work being priced: a usage profile.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::arith::{HINT_INPUTS, div, mul};
use super::{CompareError, Period, check};
use crate::report::CallPart;

/// The same work, described once, so every plan can price it.
///
/// All figures are means over one [`Period`]: how many calls, how long each call
/// took, how many bytes and tokens each call moved. A profile can be stated by hand
/// (the CLI's flags), or derived from what was metered with
/// [`UsageProfile::from_totals`] (a running client's totals today; the ledger's
/// records later use the same path).
///
/// Calls per period may be fractional: a profile stated as calls per day is
/// converted with `calls_per_day × hours(period) / 24` (see [`Period`]).
///
/// ```
/// use sagemeter::compare::{Period, UsageProfile};
/// use sagemeter::Decimal;
/// use std::time::Duration;
///
/// let profile = UsageProfile::builder()
///     .period(Period::Month)
///     .calls_per_day(1_200)
///     .mean_latency(Duration::from_millis(800))
///     .bytes_in_per_call(2_048)
///     .build()?;
/// // 1,200 calls a day × 730 h / 24 h = 36,500 calls a month
/// assert_eq!(profile.calls_per_period, Decimal::from(36_500));
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageProfile {
    /// The period the figures cover, and that every plan is priced over.
    pub period: Period,
    /// Calls in one period (a mean; may be fractional).
    pub calls_per_period: Decimal,
    /// Mean time the model spent on one call. Zero when unknown. Serialised as
    /// milliseconds. Serverless bills each call's time rounded up to the millisecond:
    /// stated by hand, that is this mean rounded up (see
    /// [`billed_seconds_per_call`](Self::billed_seconds_per_call)).
    #[serde(rename = "mean_latency_ms", with = "duration_ms")]
    pub mean_latency: Duration,
    /// Mean of each call's time rounded up to the millisecond, in ms: what serverless
    /// bills per call on average, when the profile comes from metered calls
    /// ([`UsageProfile::from_totals`] with
    /// [`UsageTotals::billed_busy_time`]). Rounding the mean instead would bill two
    /// calls of 1.2 ms and 2.8 ms as 2 × 2 ms, where AWS bills 2 + 3 ms. `None` for a
    /// profile stated by hand; set it back to `None` when you replace
    /// [`mean_latency`](Self::mean_latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_ms_per_call: Option<Decimal>,
    /// Mean request payload per call, in bytes (a mean: may be fractional).
    pub bytes_in_per_call: Decimal,
    /// Mean response payload per call, in bytes.
    pub bytes_out_per_call: Decimal,
    /// Mean input (prompt) tokens per call (a mean: may be fractional).
    pub tokens_in_per_call: Decimal,
    /// Mean output (completion) tokens per call.
    pub tokens_out_per_call: Decimal,
    /// How many of the metered calls reported their token counts, when the profile
    /// comes from metered calls that counted them ([`UsageProfile::from_totals`] of a
    /// ledger's receipts): each mean above is over the calls that reported it. `None`
    /// for a profile stated by hand, whose figures are known for every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_reported: Option<TokensReported>,
    /// Mean inferences charged per call: the HTTP 2XX answers per call made, what a
    /// per-inference fee or a subscription's quota counts (AWS Marketplace charges
    /// one inference per 2XX answer by default, not a model error; a call cancelled
    /// before its answer came counts as unanswered, as its receipt charged none,
    /// though AWS charges it if SageMaker answered it after its caller left: a
    /// lower bound), when the profile comes from metered calls that counted them
    /// ([`UsageProfile::from_totals`] with [`UsageTotals::inferences`] or
    /// [`UsageTotals::answered_calls`]). The share of the calls answered, 0 to 1,
    /// unless some call was answered twice (a 2XX answer cut off and tried again,
    /// then answered again, is two inferences): then it can pass 1. Compute and data
    /// are priced for every call, as they ran. `None` for a profile stated by hand:
    /// one inference a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_per_call: Option<Decimal>,
    /// The inferences charged (HTTP 2XX answers, see
    /// [`answered_per_call`](Self::answered_per_call)) in one period, when the
    /// profile comes from metered calls that counted them: `inferences ×
    /// seconds(period) / seconds(observed)`, one division as
    /// [`calls_per_period`](Self::calls_per_period)
    /// is, so that what a per-inference fee or a quota charges at the profile's
    /// volume is exact (48 of 72 calls a day are 48, where 72 ×
    /// [`answered_per_call`](Self::answered_per_call), 72 × 0.666…7 at 28 digits,
    /// is a hair over). The share prices other volumes (the curve, the break-evens).
    /// `None` for a profile stated by hand; set it back to `None`, or scale it too,
    /// when you replace [`calls_per_period`](Self::calls_per_period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_calls_per_period: Option<Decimal>,
    /// The calls a per-token price charges each token mean on, when the profile
    /// comes from metered calls that counted the calls that reported their tokens
    /// ([`UsageProfile::from_totals`] with [`UsageTotals::calls_with_tokens_in`],
    /// `…_out`: a ledger's receipts): the calls whose answer could carry tokens
    /// ([`UsageTotals::answered_token_calls`]), an answered call that reported no
    /// count taken at the mean of those that did, never as 0 tokens; or the calls
    /// that reported it, if the totals count more. `None` otherwise: a mean over
    /// every call (stated by hand, or totals that do not count the calls that
    /// reported tokens) is charged on every call, the tokens stated whole. See
    /// [`PerTokenPlan`](super::PerTokenPlan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_calls: Option<TokenCalls>,
    /// The per-call figures the builder was never given, whose 0 above is a
    /// placeholder, not a count: a plan that bills one of them refuses it (tokens)
    /// or says it left it unpriced (data processed) rather than price it at $0.
    /// For a profile from metered calls, a payload size no call's receipt knew
    /// ([`UsageTotals::bytes_in_unknown_calls`], `…_out`); empty for one
    /// deserialised without it (every figure there is written out).
    #[serde(default, skip_serializing_if = "Unstated::is_empty")]
    pub unstated: Unstated,
}

/// Which per-call figures of a [`UsageProfile`] were never stated
/// ([`UsageProfile::unstated`]): the builder sets a flag for each figure it was not
/// given, and a figure given as 0 is stated (an embedding model answers no tokens).
///
/// ```
/// use sagemeter::compare::UsageProfile;
///
/// let profile = UsageProfile::builder()
///     .calls_per_period(1_000)
///     .tokens_in_per_call(500)
///     .tokens_out_per_call(0)
///     .build()?;
/// assert!(!profile.unstated.tokens_in && !profile.unstated.tokens_out);
/// assert!(profile.unstated.bytes_in && profile.unstated.bytes_out);
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unstated {
    /// No request size per call was stated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bytes_in: bool,
    /// No response size per call was stated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bytes_out: bool,
    /// No input token count per call was stated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tokens_in: bool,
    /// No output token count per call was stated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tokens_out: bool,
}

impl Unstated {
    /// Every figure was stated (or metered).
    pub fn is_empty(&self) -> bool {
        *self == Unstated::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The calls a per-token price charges each direction's token mean on
/// ([`UsageProfile::token_calls`]): a share of the calls made, which prices any
/// volume, and those calls in one period, scaled as
/// [`calls_per_period`](UsageProfile::calls_per_period) is (one division), which
/// prices the profile's own volume exactly as metered.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCalls {
    /// Share of the calls made (0 to 1) whose input tokens are charged.
    pub in_share: Decimal,
    /// Those calls in one period.
    pub in_per_period: Decimal,
    /// Share of the calls made (0 to 1) whose output tokens are charged.
    pub out_share: Decimal,
    /// Those calls in one period.
    pub out_per_period: Decimal,
}

impl TokenCalls {
    /// Each direction's mean charged on `share` of the calls made, `per_period` of
    /// them in one period.
    pub fn new(
        (in_share, in_per_period): (Decimal, Decimal),
        (out_share, out_per_period): (Decimal, Decimal),
    ) -> Self {
        TokenCalls {
            in_share,
            in_per_period,
            out_share,
            out_per_period,
        }
    }
}

/// How many metered calls reported their input and output tokens: a response says
/// what the model tells it (TGI, for one, reports only the tokens it generated), so
/// either count can be missing from some calls or all of them. A call not answered
/// with HTTP 2XX (a model error, a call cancelled before its answer came) has no
/// tokens to report, and its receipt charges none: it is not among these calls.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensReported {
    /// The calls whose responses were read (settled calls) and answered with HTTP
    /// 2XX: those that could report tokens.
    pub calls: u64,
    /// Calls among them that reported input tokens. With none, a per-token plan
    /// that charges input tokens is refused unless a mean is stated in place of the
    /// 0 (the CLI's `--tokens-in`).
    pub tokens_in: u64,
    /// Calls among them that reported output tokens (likewise, `--tokens-out`).
    pub tokens_out: u64,
}

impl UsageProfile {
    /// A builder; the period defaults to a month.
    pub fn builder() -> UsageProfileBuilder {
        UsageProfileBuilder::default()
    }

    /// The profile of what was actually metered: `totals` observed over
    /// `totals.observed`, scaled to `period`.
    ///
    /// `calls_per_period = calls × seconds(period) / seconds(observed)`; the mean
    /// latency is `busy_time / calls`; bytes and tokens per call are the totals
    /// divided by the calls, exact (1.5 tokens a call when two calls had 1 and 2:
    /// a per-token plan bills the mean, not a rounded one). With
    /// [`UsageTotals::billed_busy_time`] (the receipts' path fills it), serverless is
    /// billed `billed_busy_time / calls` per call, exact: each call rounded up to the
    /// millisecond, as AWS bills them, not the mean rounded up.
    ///
    /// Asynchronous invocations whose settlement is not among the totals
    /// ([`UsageTotals::unsettled_async_calls`]) count as calls and with their data in,
    /// but their model time, data out and tokens are not known yet: the mean latency,
    /// bytes out and tokens per call are taken over the other calls
    /// ([`UsageTotals::settled_calls`]). So are those metered by the SDK interceptor
    /// ([`UsageTotals::intercepted_async_calls`]), whose figures no settlement
    /// brings. A settled call whose model time is not known
    /// ([`UsageTotals::compute_unseen_calls`]: a stream metered by the SDK
    /// interceptor, a settlement whose clocks disagree) is left out of the mean
    /// latency and billed time; with
    /// none known the mean latency is 0, which serverless refuses.
    ///
    /// A call whose request or response size is not known
    /// ([`UsageTotals::bytes_in_unknown_calls`], `…_out`: an input in S3 whose size
    /// was not given) is left out of that direction's mean rather than counted as
    /// 0 bytes; when no call's size is known, the direction is
    /// [unstated](Self::unstated), and a plan billed for data processed says it
    /// left it unpriced rather than price it at $0.
    ///
    /// A call whose response did not report its tokens
    /// ([`UsageTotals::calls_with_tokens_in`], `…_out`) is left out of that
    /// direction's mean rather than counted as zero tokens, and the profile says how
    /// many reported ([`tokens_reported`](Self::tokens_reported)): a per-token plan
    /// then refuses to price a direction no call reported instead of pricing it at $0.
    /// A call not answered with HTTP 2XX
    /// ([`UsageTotals::unanswered_settled_calls`]) had no tokens to report, and its
    /// receipt charged none: it is not counted among the calls that could report
    /// them, so a ledger whose answered calls all reported their tokens says so.
    /// With those counts, the profile's [`token_calls`](Self::token_calls) are the
    /// calls a per-token price charges each mean on: the calls whose answer could
    /// carry tokens ([`UsageTotals::answered_token_calls`], else the answered calls),
    /// or those that reported it if the totals count more.
    ///
    /// With [`UsageTotals::inferences`], else [`UsageTotals::answered_calls`] (the
    /// receipts' path fills both), the profile's
    /// [`answered_per_call`](Self::answered_per_call) is `inferences / calls`: a
    /// per-inference plan and a subscription's quota count those inferences, as AWS
    /// Marketplace charges one per HTTP 2XX answer, while compute and data are
    /// priced for every call. The inferences per period
    /// ([`answered_calls_per_period`](Self::answered_calls_per_period)) are scaled
    /// as the calls are, `inferences × seconds(period) / seconds(observed)`, exact
    /// where the share need not be (2 of 3 is 0.666…7 at 28 digits).
    ///
    /// ```
    /// use sagemeter::compare::{Period, UsageProfile, UsageTotals};
    /// use sagemeter::Decimal;
    /// use std::time::Duration;
    ///
    /// // 600 calls in one hour, 300 s busy in total
    /// let totals = UsageTotals::new(600, Duration::from_secs(3_600))
    ///     .with_busy_time(Duration::from_secs(300));
    /// let profile = UsageProfile::from_totals(&totals, Period::Day)?;
    /// assert_eq!(profile.calls_per_period, Decimal::from(14_400)); // 600 × 24
    /// assert_eq!(profile.mean_latency, Duration::from_millis(500)); // 300 s / 600
    /// # Ok::<(), sagemeter::compare::CompareError>(())
    /// ```
    pub fn from_totals(totals: &UsageTotals, period: Period) -> Result<Self, CompareError> {
        if totals.observed.is_zero() {
            return Err(CompareError::NotPositive {
                what: "observed time",
                value: "0 s".into(),
                hint: "totals must cover some time to be scaled to a period".into(),
            });
        }
        let Some(settled) = totals.settled_calls() else {
            return Err(CompareError::Inconsistent {
                problem: format!(
                    "the totals count {} unsettled asynchronous calls and {} metered by the \
                     SDK interceptor among {} calls",
                    totals.unsettled_async_calls, totals.intercepted_async_calls, totals.calls
                ),
                hint: "unsettled and intercepted calls are part of the calls: count them in \
                       both"
                    .into(),
            });
        };
        if let Some(answered) = totals.answered_calls
            && answered > totals.calls
        {
            return Err(CompareError::Inconsistent {
                problem: format!(
                    "the totals count {answered} calls answered with HTTP 2XX among {} calls",
                    totals.calls
                ),
                hint: "answered calls are part of the calls: count them in both".into(),
            });
        }
        let observed_seconds = Decimal::from_i128_with_scale(totals.observed.as_nanos() as i128, 9);
        // n calls in the observed time, in one period: one division, exact when it
        // can be.
        let per_period = |n: u64, what: &str| {
            mul(Decimal::from(n), period.seconds())
                .and_then(|x| div(x, observed_seconds))
                .map(|x| x.normalize())
                .map_err(|o| {
                    o.of(
                        format!("{n} {what} in {:?} scaled to a {period}", totals.observed),
                        "the totals must cover a longer time, or fewer calls",
                    )
                })
        };
        let calls_per_period = per_period(totals.calls, "calls")?;
        // The inferences a fee or a quota charges; None without calls: there is
        // nothing to charge either way.
        let inferences = totals
            .inferences
            .or(totals.answered_calls)
            .filter(|_| totals.calls > 0);
        let answered_calls_per_period = inferences
            .map(|n| per_period(n, "inferences"))
            .transpose()?;
        // Rounded to the nearest nanosecond. u128 holds twice any total here (at most
        // u64::MAX seconds in nanoseconds, ≈ 1.8 × 10^28) plus a count.
        let mean = |total: u128, n: u64| -> u128 {
            if n == 0 {
                0
            } else {
                (total * 2 + n as u128) / (n as u128 * 2)
            }
        };
        // Exact means of what is counted (a u64 total over a u64 count fits a Decimal).
        let per_call = |total: u64, n: u64| -> Decimal {
            if n == 0 {
                Decimal::ZERO
            } else {
                (Decimal::from(total) / Decimal::from(n)).normalize()
            }
        };
        // The settled calls that could report tokens: those answered with HTTP
        // 2XX (a model error or a call cancelled before its answer has none).
        let unanswered = totals.unanswered_settled_calls.unwrap_or(0);
        if unanswered > settled {
            return Err(CompareError::Inconsistent {
                problem: format!(
                    "the totals count {unanswered} settled calls not answered with HTTP 2XX \
                     among {settled} settled calls"
                ),
                hint: "unanswered settled calls are part of the settled calls".into(),
            });
        }
        let answered_settled = settled - unanswered;
        // Calls that reported each direction's tokens (every one that could when the
        // totals do not count them apart).
        let reported = |counted: Option<u64>, what: &str| match counted {
            Some(n) if n > answered_settled => Err(CompareError::Inconsistent {
                problem: format!(
                    "the totals count {n} calls that reported {what} tokens among \
                     {answered_settled} settled calls answered with HTTP 2XX"
                ),
                hint: "calls that reported tokens are part of the settled calls answered \
                       with HTTP 2XX"
                    .into(),
            }),
            counted => Ok(counted.unwrap_or(answered_settled)),
        };
        let tokens_in_calls = reported(totals.calls_with_tokens_in, "input")?;
        let tokens_out_calls = reported(totals.calls_with_tokens_out, "output")?;
        let tokens_reported = (totals.calls_with_tokens_in.is_some()
            || totals.calls_with_tokens_out.is_some())
        .then_some(TokensReported {
            calls: answered_settled,
            tokens_in: tokens_in_calls,
            tokens_out: tokens_out_calls,
        });
        // The calls a per-token price charges each mean on, when the means are over
        // the calls that reported them: the calls whose answer could carry tokens
        // (an answered one that reported no count at the mean, never as 0 tokens),
        // or those that reported it if the totals count more.
        if let Some(n) = totals.answered_token_calls
            && n > totals.calls
        {
            return Err(CompareError::Inconsistent {
                problem: format!(
                    "the totals count {n} calls whose answer could carry tokens among {} calls",
                    totals.calls
                ),
                hint: "those calls are part of the calls: count them in both".into(),
            });
        }
        let token_calls = match tokens_reported {
            Some(reported) if totals.calls > 0 => {
                let answered = totals
                    .answered_token_calls
                    .or(totals.answered_calls)
                    .unwrap_or(totals.calls - unanswered);
                let charged = |n: u64| -> Result<(Decimal, Decimal), CompareError> {
                    let n = n.max(answered);
                    Ok((
                        per_call(n, totals.calls),
                        per_period(n, "calls whose tokens are charged")?,
                    ))
                };
                Some(TokenCalls::new(
                    charged(reported.tokens_in)?,
                    charged(reported.tokens_out)?,
                ))
            }
            _ => None,
        };
        // The settled calls whose model time is known: with none, the mean is 0
        // (a plan billed for it refuses it) and no time is billed.
        let Some(timed) = totals.timed_calls() else {
            return Err(CompareError::Inconsistent {
                problem: format!(
                    "the totals count {} settled calls whose model time is not known among \
                     {settled} settled calls",
                    totals.compute_unseen_calls
                ),
                hint: "calls whose model time is not known are part of the settled calls".into(),
            });
        };
        let mean_latency = Duration::from_nanos(
            u64::try_from(mean(totals.busy_time.as_nanos(), timed)).unwrap_or(u64::MAX),
        );
        // Σ ceil(ms) / n, exact (a decimal of ms); none without timed calls.
        let billed_ms_per_call = match totals.billed_busy_time {
            Some(billed) if timed > 0 => Some(
                div(
                    Decimal::from_i128_with_scale(billed.as_nanos() as i128, 6),
                    Decimal::from(timed),
                )
                .map_err(|o| o.of(format!("{billed:?} billed over {timed} calls"), HINT_INPUTS))?
                .normalize(),
            ),
            _ => None,
        };
        // A size not known is left out of its mean (never 0 bytes); with none
        // known, the direction is unstated, as a size the flags did not give.
        let sized = |unknown: u64, of: u64, what: &str| match of.checked_sub(unknown) {
            Some(known) => Ok((known, unknown > 0 && known == 0)),
            None => Err(CompareError::Inconsistent {
                problem: format!("the totals count {unknown} {what} among {of}"),
                hint: "calls whose size is not known are part of those calls".into(),
            }),
        };
        let (sized_in, unknown_in) = sized(
            totals.bytes_in_unknown_calls,
            totals.calls,
            "calls whose request size is not known",
        )?;
        let (sized_out, unknown_out) = sized(
            totals.bytes_out_unknown_calls,
            settled,
            "settled calls whose response size is not known",
        )?;
        let profile = UsageProfile {
            period,
            calls_per_period,
            mean_latency,
            billed_ms_per_call,
            bytes_in_per_call: per_call(totals.bytes_in, sized_in),
            bytes_out_per_call: per_call(totals.bytes_out, sized_out),
            tokens_in_per_call: per_call(totals.tokens_in, tokens_in_calls),
            tokens_out_per_call: per_call(totals.tokens_out, tokens_out_calls),
            tokens_reported,
            answered_per_call: inferences.map(|n| per_call(n, totals.calls)),
            answered_calls_per_period,
            token_calls,
            unstated: Unstated {
                bytes_in: unknown_in,
                bytes_out: unknown_out,
                ..Unstated::default()
            },
        };
        profile.validate()?;
        Ok(profile)
    }

    /// The same profile over another period: calls scale with hours, per-call figures
    /// stay. [`CompareError::Overflow`] when the calls do not fit (an unvalidated
    /// profile).
    pub fn over(&self, period: Period) -> Result<Self, CompareError> {
        let scale = |calls: Decimal, what: &str| {
            mul(calls, period.hours())
                .and_then(|x| div(x, self.period.hours()))
                .map(|x| x.normalize())
                .map_err(|o| {
                    o.of(
                        format!("{calls} {what} per {} over a {period}", self.period),
                        HINT_INPUTS,
                    )
                })
        };
        Ok(UsageProfile {
            period,
            calls_per_period: scale(self.calls_per_period, "calls")?,
            answered_calls_per_period: self
                .answered_calls_per_period
                .map(|answered| scale(answered, "answered calls"))
                .transpose()?,
            token_calls: self
                .token_calls
                .map(|t| -> Result<TokenCalls, CompareError> {
                    Ok(TokenCalls {
                        in_per_period: scale(
                            t.in_per_period,
                            "calls whose input tokens are charged",
                        )?,
                        out_per_period: scale(
                            t.out_per_period,
                            "calls whose output tokens are charged",
                        )?,
                        ..t
                    })
                })
                .transpose()?,
            ..self.clone()
        })
    }

    /// Mean compute time billed per call by serverless inference, in seconds: the
    /// metered calls' [`billed_ms_per_call`](Self::billed_ms_per_call) when known
    /// (each call rounded up to the millisecond), else the mean latency rounded up to
    /// the millisecond.
    pub fn billed_seconds_per_call(&self) -> Decimal {
        match self.billed_ms_per_call {
            Some(ms) => (ms / Decimal::from(1000)).normalize(),
            None => crate::billing::billed_seconds(self.mean_latency),
        }
    }

    /// Checks the ranges the model relies on. Builders call it; call it yourself on a
    /// profile that was deserialised.
    pub fn validate(&self) -> Result<(), CompareError> {
        check::not_negative(
            "calls per period",
            self.calls_per_period,
            "a count of calls cannot be negative",
        )?;
        check::at_most(
            "calls per period",
            self.calls_per_period,
            Decimal::from(check::MAX_CALLS_PER_PERIOD),
            "at most 10^15 calls per period are modelled",
        )?;
        if self.mean_latency > check::MAX_LATENCY {
            return Err(CompareError::OutOfRange {
                what: "mean latency",
                value: format!("{:?}", self.mean_latency),
                hint: "at most one hour per call (the asynchronous inference limit)".into(),
            });
        }
        if let Some(ms) = self.billed_ms_per_call {
            check::not_negative("billed ms per call", ms, "a billed time cannot be negative")?;
            check::at_most(
                "billed ms per call",
                ms,
                Decimal::from(check::MAX_LATENCY.as_millis() as u64),
                "at most one hour per call (the asynchronous inference limit)",
            )?;
        }
        let bytes = (
            "a size cannot be negative",
            check::MAX_BYTES_PER_CALL,
            "at most 2^40 bytes (1 TiB) per call",
        );
        let tokens = (
            "a count of tokens cannot be negative",
            check::MAX_TOKENS_PER_CALL,
            "at most 10^9 tokens per call",
        );
        for (what, value, (negative, max, too_large)) in [
            ("bytes in per call", self.bytes_in_per_call, bytes),
            ("bytes out per call", self.bytes_out_per_call, bytes),
            ("tokens in per call", self.tokens_in_per_call, tokens),
            ("tokens out per call", self.tokens_out_per_call, tokens),
        ] {
            check::not_negative(what, value, negative)?;
            check::at_most(what, value, Decimal::from(max), too_large)?;
        }
        if let Some(share) = self.answered_per_call {
            check::not_negative(
                "inferences per call",
                share,
                "a count of inferences cannot be negative",
            )?;
        }
        if let Some(answered) = self.answered_calls_per_period {
            if self.answered_per_call.is_none() {
                return Err(CompareError::Inconsistent {
                    problem: "the profile counts answered calls per period without their \
                              share of the calls"
                        .into(),
                    hint: "set answered_per_call too, or neither".into(),
                });
            }
            check::not_negative(
                "inferences per period",
                answered,
                "a count of inferences cannot be negative",
            )?;
        }
        if let Some(t) = self.token_calls {
            for (what, share, per_period) in [
                (
                    "calls whose input tokens are charged",
                    t.in_share,
                    t.in_per_period,
                ),
                (
                    "calls whose output tokens are charged",
                    t.out_share,
                    t.out_per_period,
                ),
            ] {
                check::not_negative(what, share, "a share of calls cannot be negative")?;
                check::at_most(
                    what,
                    share,
                    Decimal::ONE,
                    "they are part of the calls: at most 1 per call",
                )?;
                check::not_negative(what, per_period, "a count of calls cannot be negative")?;
                check::at_most(
                    what,
                    per_period,
                    self.calls_per_period,
                    "they are part of the calls: at most the calls per period",
                )?;
            }
        }
        if let Some(r) = self.tokens_reported
            && (r.tokens_in > r.calls || r.tokens_out > r.calls)
        {
            return Err(CompareError::Inconsistent {
                problem: format!(
                    "{} and {} calls reported input and output tokens, among {} calls",
                    r.tokens_in, r.tokens_out, r.calls
                ),
                hint: "calls that reported tokens are part of the calls".into(),
            });
        }
        Ok(())
    }
}

/// Builds a [`UsageProfile`]; calls are required (per period or per day), the
/// period defaults to a month, the latency to zero. A per-call size or token count
/// not given is 0 in the profile and flagged in [`UsageProfile::unstated`], so a
/// plan that bills it does not take the 0 for a count.
#[derive(Debug, Clone, Default)]
pub struct UsageProfileBuilder {
    period: Option<Period>,
    calls_per_period: Option<Decimal>,
    calls_per_day: Option<Decimal>,
    mean_latency: Duration,
    bytes_in_per_call: Option<Decimal>,
    bytes_out_per_call: Option<Decimal>,
    tokens_in_per_call: Option<Decimal>,
    tokens_out_per_call: Option<Decimal>,
}

impl UsageProfileBuilder {
    /// The period priced (default: [`Period::Month`]).
    pub fn period(mut self, period: Period) -> Self {
        self.period = Some(period);
        self
    }

    /// Calls in one period.
    pub fn calls_per_period(mut self, calls: impl Into<Decimal>) -> Self {
        self.calls_per_period = Some(calls.into());
        self
    }

    /// Calls in one day; converted to the period with `× hours(period) / 24`.
    pub fn calls_per_day(mut self, calls: impl Into<Decimal>) -> Self {
        self.calls_per_day = Some(calls.into());
        self
    }

    /// Mean model latency per call.
    pub fn mean_latency(mut self, latency: Duration) -> Self {
        self.mean_latency = latency;
        self
    }

    /// Mean request bytes per call.
    pub fn bytes_in_per_call(mut self, bytes: impl Into<Decimal>) -> Self {
        self.bytes_in_per_call = Some(bytes.into());
        self
    }

    /// Mean response bytes per call.
    pub fn bytes_out_per_call(mut self, bytes: impl Into<Decimal>) -> Self {
        self.bytes_out_per_call = Some(bytes.into());
        self
    }

    /// Mean input tokens per call. Not stated, a per-token plan that prices input
    /// tokens is refused ([`CompareError::ProfileLacks`]) rather than priced at $0;
    /// state 0 for a model that takes none.
    pub fn tokens_in_per_call(mut self, tokens: impl Into<Decimal>) -> Self {
        self.tokens_in_per_call = Some(tokens.into());
        self
    }

    /// Mean output tokens per call (not stated: refused by a per-token plan that
    /// prices output tokens, as for [`tokens_in_per_call`](Self::tokens_in_per_call)).
    pub fn tokens_out_per_call(mut self, tokens: impl Into<Decimal>) -> Self {
        self.tokens_out_per_call = Some(tokens.into());
        self
    }

    /// The validated profile.
    pub fn build(self) -> Result<UsageProfile, CompareError> {
        let period = self.period.unwrap_or(Period::Month);
        let calls_per_period = match (self.calls_per_period, self.calls_per_day) {
            (Some(_), Some(_)) => {
                return Err(CompareError::Inconsistent {
                    problem: "both calls per period and calls per day are set".into(),
                    hint: "give one of them".into(),
                });
            }
            (None, None) => {
                return Err(CompareError::Inconsistent {
                    problem: "the usage profile has no call count".into(),
                    hint: "set calls_per_period(..) or calls_per_day(..)".into(),
                });
            }
            (Some(calls), None) => calls,
            (None, Some(per_day)) => {
                check::not_negative(
                    "calls per day",
                    per_day,
                    "a count of calls cannot be negative",
                )?;
                check::at_most(
                    "calls per day",
                    per_day,
                    Decimal::from(check::MAX_CALLS_PER_PERIOD / 365),
                    "too many calls to model",
                )?;
                mul(per_day, period.hours())
                    .and_then(|x| div(x, Decimal::from(24)))
                    .map_err(|o| {
                        o.of(
                            format!("{per_day} calls per day over a {period}"),
                            HINT_INPUTS,
                        )
                    })?
                    .normalize()
            }
        };
        let profile = UsageProfile {
            period,
            calls_per_period,
            mean_latency: self.mean_latency,
            billed_ms_per_call: None,
            bytes_in_per_call: self.bytes_in_per_call.unwrap_or_default(),
            bytes_out_per_call: self.bytes_out_per_call.unwrap_or_default(),
            tokens_in_per_call: self.tokens_in_per_call.unwrap_or_default(),
            tokens_out_per_call: self.tokens_out_per_call.unwrap_or_default(),
            tokens_reported: None,
            answered_per_call: None,
            answered_calls_per_period: None,
            token_calls: None,
            unstated: Unstated {
                bytes_in: self.bytes_in_per_call.is_none(),
                bytes_out: self.bytes_out_per_call.is_none(),
                tokens_in: self.tokens_in_per_call.is_none(),
                tokens_out: self.tokens_out_per_call.is_none(),
            },
        };
        profile.validate()?;
        Ok(profile)
    }
}

/// What was metered over some observed time: the input of
/// [`UsageProfile::from_totals`].
///
/// A running client's totals fill it, or the receipts of a ledger
/// ([`UsageTotals::from_receipts`]).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Calls made.
    pub calls: u64,
    /// Wall-clock time the totals cover.
    pub observed: Duration,
    /// Sum of the calls' model latencies.
    pub busy_time: Duration,
    /// Sum of each call's latency rounded up to the millisecond: serverless compute
    /// as AWS bills it, call by call. [`UsageTotals::from_receipts`] fills it; `None`
    /// when only the sum is known (the profile then rounds the mean latency up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_busy_time: Option<Duration>,
    /// Request bytes, all calls.
    pub bytes_in: u64,
    /// Response bytes, all calls.
    pub bytes_out: u64,
    /// Input tokens, all calls that reported them: every settled call, answered or
    /// not, unless [`calls_with_tokens_in`](Self::calls_with_tokens_in) counts them
    /// apart.
    pub tokens_in: u64,
    /// Output tokens, all calls that reported them (likewise,
    /// [`calls_with_tokens_out`](Self::calls_with_tokens_out)).
    pub tokens_out: u64,
    /// Settled calls whose responses reported their input tokens, the calls
    /// [`tokens_in`](Self::tokens_in) is over ([`UsageTotals::from_receipts`] counts
    /// them). `None` when not counted apart: every settled call reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_with_tokens_in: Option<u64>,
    /// Settled calls whose responses reported their output tokens, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_with_tokens_out: Option<u64>,
    /// Settled calls not answered with HTTP 2XX (model errors, calls cancelled
    /// before their answer came, failed asynchronous invocations): they had no
    /// tokens to report, and their receipts charge none, so they are not among the
    /// calls [`calls_with_tokens_in`](Self::calls_with_tokens_in) and `…_out` are
    /// counted against. [`UsageTotals::from_receipts`] counts them; `None`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered_settled_calls: Option<u64>,
    /// Calls among [`calls`](Self::calls) whose answer could carry tokens: those
    /// answered with HTTP 2XX, an asynchronous invocation at its settlement (a
    /// failed inference answered none, though its accepted submission is among the
    /// [`answered_calls`](Self::answered_calls) its fee counts) or, not settled
    /// yet, at its accepted submission. A per-token price charges its token means
    /// on them, when the calls that reported tokens are counted apart
    /// ([`calls_with_tokens_in`](Self::calls_with_tokens_in)).
    /// [`UsageTotals::from_receipts`] counts them; `None`: the answered calls (every
    /// call but the [unanswered settled ones](Self::unanswered_settled_calls) when
    /// those are not counted either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_token_calls: Option<u64>,
    /// Asynchronous invocations among [`calls`](Self::calls) whose settlement (model
    /// time, data out, tokens) is not in these totals yet: submitted, not settled.
    #[serde(default)]
    pub unsettled_async_calls: u64,
    /// Asynchronous invocations among [`calls`](Self::calls) metered by the SDK
    /// interceptor (`MeteringInterceptor`, its receipts noted "metered by the SDK
    /// interceptor"): one receipt each, the whole call, which awaits no settlement.
    /// It holds the call's data in and per-inference fee, but not its model time,
    /// data out or tokens: the interceptor does not see the job run nor its output.
    /// Not among the [`unsettled_async_calls`](Self::unsettled_async_calls); like
    /// them, not among the [`settled_calls`](Self::settled_calls) the means of
    /// those figures are over.
    #[serde(default)]
    pub intercepted_async_calls: u64,
    /// Calls among [`calls`](Self::calls) answered with HTTP 2XX, each asynchronous
    /// invocation once, at its submission: the calls a per-inference fee charges
    /// (see [`UsageProfile::answered_per_call`]). [`UsageTotals::from_receipts`]
    /// counts them; `None` when not counted apart: every call was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_calls: Option<u64>,
    /// The inferences a per-inference fee or a subscription's quota counts, one per
    /// HTTP 2XX answer: the [`answered_calls`](Self::answered_calls) and the answers
    /// beyond a call's first (a 2XX answer whose body was cut off and which the SDK
    /// tried again is one, its retry's another; cut off and then failed, its one),
    /// each asynchronous invocation at its submission. [`UsageTotals::from_receipts`]
    /// counts them from each receipt's per-inference line, where it has one (an
    /// endpoint with a per-inference fee configured: other receipts do not record
    /// a call's answers), else one per answered call. `None` when not counted
    /// apart: the answered calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferences: Option<u64>,
    /// Calls among [`calls`](Self::calls) cancelled (dropped, or timed out by the
    /// SDK) before their answer came, not among the
    /// [`answered_calls`](Self::answered_calls): SageMaker may have answered them
    /// with HTTP 2XX after their callers left, and AWS Marketplace then charged
    /// them, so the answered calls are a lower bound by as many.
    /// [`UsageTotals::from_receipts`] counts them; `None` when not counted apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_calls: Option<u64>,
    /// Calls among [`calls`](Self::calls) whose request size is not known (not
    /// zero): an asynchronous invocation's input in S3 whose size was not given, its
    /// receipt's data-in line unpriced at quantity 0. Their 0 bytes are not in
    /// [`bytes_in`](Self::bytes_in)'s mean, which is over the other calls.
    /// [`UsageTotals::from_receipts`] counts them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_in_unknown_calls: u64,
    /// Settled calls whose response size is not known (an asynchronous output
    /// whose size was not given, a stream the SDK interceptor did not read), their
    /// receipts' data-out line unpriced at quantity 0: not in
    /// [`bytes_out`](Self::bytes_out)'s mean, likewise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_out_unknown_calls: u64,
    /// Settled calls whose model time is not known: their receipt's compute line
    /// (seconds on serverless, instance-hours on instances) is unpriced at
    /// quantity 0 for a figure the meter did not see, by the reason on it (a
    /// stream metered by the SDK interceptor, which does not see the stream run:
    /// its latency is only the time to the response's headers; a settlement whose
    /// clocks disagree), not for want of a rate. These calls are left out of the
    /// mean latency and billed time ([`timed_calls`](Self::timed_calls)).
    /// [`UsageTotals::from_receipts`] counts them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub compute_unseen_calls: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UsageTotals {
    /// Totals of metered calls, e.g. the receipts of a ledger. The observed time is
    /// the longer of two spans (at least one second):
    ///
    /// - the first call's start to the last call's end;
    /// - the calls' count times the mean gap between their starts: `n` starts are
    ///   `n − 1` gaps apart, and each call stands for one gap of the traffic. Two
    ///   calls an hour apart are one call an hour, not two; calls that run at once
    ///   have no gap between their starts, and the first span counts.
    ///
    /// Each call counts once. An asynchronous invocation (`InvokeEndpointAsync`)
    /// leaves two receipts with the same endpoint and `call_id`: its **submission**
    /// (data in, the per-inference fee) and its **settlement** (compute, data out,
    /// tokens; its latency is the time the model worked on the request). The two make
    /// one call whose quantities are both receipts' together: data in from the
    /// submission; busy time, data out and tokens from the settlement. The
    /// submission's own latency is the time to queue the request, not model time, so
    /// it is not busy time.
    ///
    /// A receipt of an asynchronous invocation is its settlement when it carries a
    /// line only a settlement bills (compute, data out, tokens), measured data out or
    /// tokens, or the settlement note the client writes on it; otherwise it is the
    /// submission. A submission without its settlement (not settled yet, or settled
    /// into another ledger) is a call, counted in
    /// [`unsettled_async_calls`](Self::unsettled_async_calls); a settlement without
    /// its submission is a call too. The one receipt `MeteringInterceptor` makes of
    /// an asynchronous invocation (noted "metered by the SDK interceptor", told as
    /// `sagemeter report` tells it) is the whole call, which awaits no settlement:
    /// counted in [`intercepted_async_calls`](Self::intercepted_async_calls), not
    /// among the unsettled, with its data in; its latency, the time to queue the
    /// request, is not busy time, and its model time, data out and tokens are not
    /// seen.
    ///
    /// A call answered with HTTP 2XX (a synchronous call whose answer came, a
    /// stream whose 200 arrived; an asynchronous invocation whose submission was
    /// accepted, or whose settlement is here; one the interceptor metered, accepted)
    /// is counted in [`answered_calls`](Self::answered_calls): a model error (HTTP
    /// 424) ran, but
    /// is charged no inference. A call cancelled before its answer came (an
    /// asynchronous invocation at its submission, and not settled here) is not
    /// answered either, as its receipt charged none, and is counted in
    /// [`cancelled_calls`](Self::cancelled_calls): SageMaker may have answered it
    /// after its caller left, and AWS then charged it. A call whose answer could
    /// carry tokens is counted in
    /// [`answered_token_calls`](Self::answered_token_calls): an answered synchronous
    /// call; an asynchronous invocation by its settlement, answered unless its
    /// inference failed, or, not settled here (or metered by the interceptor), by
    /// its accepted submission.
    ///
    /// A size a receipt records as not known (0 bytes, its data line unpriced at
    /// quantity 0: an input in S3 whose size was not given, an output or a stream
    /// not seen) is counted in
    /// [`bytes_in_unknown_calls`](Self::bytes_in_unknown_calls) or
    /// [`bytes_out_unknown_calls`](Self::bytes_out_unknown_calls), not as 0 bytes.
    ///
    /// Sums that would pass `u64::MAX` saturate there (and are then refused by
    /// [`UsageProfile::from_totals`] as out of range). A receipt whose compute line
    /// in seconds holds a time no call runs is refused
    /// ([`ReceiptTotals::add`]): [`CompareError::OutOfRange`].
    pub fn from_receipts<'a>(
        receipts: impl IntoIterator<Item = &'a crate::Cost>,
    ) -> Result<Self, CompareError> {
        let mut totals = ReceiptTotals::default();
        for cost in receipts {
            totals.add(cost)?;
        }
        Ok(totals.finish())
    }

    /// `calls` made over `observed` wall-clock time; the other totals start at zero.
    pub fn new(calls: u64, observed: Duration) -> Self {
        UsageTotals {
            calls,
            observed,
            ..Default::default()
        }
    }

    /// Sets the summed latency of all calls.
    pub fn with_busy_time(mut self, busy_time: Duration) -> Self {
        self.busy_time = busy_time;
        self
    }

    /// Sets the sum of each call's latency rounded up to the millisecond (what
    /// serverless bills), for a profile that bills serverless call by call.
    pub fn with_billed_busy_time(mut self, billed_busy_time: Duration) -> Self {
        self.billed_busy_time = Some(billed_busy_time);
        self
    }

    /// Sets the request and response byte totals.
    pub fn with_bytes(mut self, bytes_in: u64, bytes_out: u64) -> Self {
        self.bytes_in = bytes_in;
        self.bytes_out = bytes_out;
        self
    }

    /// Sets the input and output token totals: of every settled call, answered or
    /// not (an unanswered call with the none it reported), unless
    /// [`with_calls_with_tokens`](Self::with_calls_with_tokens) says how many
    /// reported them. Without it, a per-token plan charges these totals whole,
    /// scaled to its period, whatever
    /// [`with_answered_calls`](Self::with_answered_calls) counts.
    pub fn with_tokens(mut self, tokens_in: u64, tokens_out: u64) -> Self {
        self.tokens_in = tokens_in;
        self.tokens_out = tokens_out;
        self
    }

    /// Sets how many settled calls reported their input and their output tokens (the
    /// token totals are over those calls). A per-token plan charges each direction's
    /// mean on the calls whose answer could carry tokens
    /// ([`with_answered_token_calls`](Self::with_answered_token_calls), else the
    /// [answered calls](Self::with_answered_calls)), an answered call that reported
    /// no count taken at the mean, never as 0 tokens; or on those that reported it,
    /// if they are more.
    pub fn with_calls_with_tokens(mut self, tokens_in: u64, tokens_out: u64) -> Self {
        self.calls_with_tokens_in = Some(tokens_in);
        self.calls_with_tokens_out = Some(tokens_out);
        self
    }

    /// Sets how many settled calls were not answered with HTTP 2XX, and so had no
    /// tokens to report.
    pub fn with_unanswered_settled_calls(mut self, calls: u64) -> Self {
        self.unanswered_settled_calls = Some(calls);
        self
    }

    /// Sets how many of the calls had an answer that could carry tokens (see
    /// [`answered_token_calls`](Self::answered_token_calls)).
    pub fn with_answered_token_calls(mut self, calls: u64) -> Self {
        self.answered_token_calls = Some(calls);
        self
    }

    /// Sets how many of the calls were answered with HTTP 2XX (the calls a
    /// per-inference fee or a subscription's quota counts). It changes which calls
    /// a per-token plan charges only for token totals counted apart
    /// ([`with_calls_with_tokens`](Self::with_calls_with_tokens)), and only without
    /// [`with_answered_token_calls`](Self::with_answered_token_calls).
    pub fn with_answered_calls(mut self, calls: u64) -> Self {
        self.answered_calls = Some(calls);
        self
    }

    /// Sets how many inferences the calls were charged (see
    /// [`inferences`](Self::inferences)): what a per-inference plan and a quota
    /// count, in place of the answered calls.
    pub fn with_inferences(mut self, inferences: u64) -> Self {
        self.inferences = Some(inferences);
        self
    }

    /// Sets how many calls' request sizes, and how many settled calls' response
    /// sizes, are not known (see
    /// [`bytes_in_unknown_calls`](Self::bytes_in_unknown_calls)): each byte total's
    /// mean is over the other calls.
    pub fn with_bytes_unknown_calls(mut self, bytes_in: u64, bytes_out: u64) -> Self {
        self.bytes_in_unknown_calls = bytes_in;
        self.bytes_out_unknown_calls = bytes_out;
        self
    }

    /// Sets how many settled calls' model time is not known (see
    /// [`compute_unseen_calls`](Self::compute_unseen_calls)).
    pub fn with_compute_unseen_calls(mut self, calls: u64) -> Self {
        self.compute_unseen_calls = calls;
        self
    }

    /// Sets how many of the calls are asynchronous invocations not settled yet.
    pub fn with_unsettled_async_calls(mut self, calls: u64) -> Self {
        self.unsettled_async_calls = calls;
        self
    }

    /// Sets how many of the calls are asynchronous invocations metered by the SDK
    /// interceptor (see [`intercepted_async_calls`](Self::intercepted_async_calls)).
    pub fn with_intercepted_async_calls(mut self, calls: u64) -> Self {
        self.intercepted_async_calls = calls;
        self
    }

    /// The calls whose model time, data out and tokens are in these totals: every
    /// call but the asynchronous invocations not settled yet and those metered by
    /// the SDK interceptor, whose figures are not known. The mean latency, bytes
    /// out and tokens per call are over them. `None` when those invocations are
    /// more than the calls (inconsistent totals).
    pub fn settled_calls(&self) -> Option<u64> {
        self.calls
            .checked_sub(self.unsettled_async_calls)?
            .checked_sub(self.intercepted_async_calls)
    }

    /// The settled calls whose model time is known: the mean latency and billed
    /// time per call are over them, not over the
    /// [`compute_unseen_calls`](Self::compute_unseen_calls). `None` for
    /// inconsistent totals.
    pub fn timed_calls(&self) -> Option<u64> {
        self.settled_calls()?.checked_sub(self.compute_unseen_calls)
    }
}

/// `Duration` as a decimal number of milliseconds, e.g. `"800"` or `"12.5"`.
mod duration_ms {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = Decimal::from_i128_with_scale(d.as_nanos() as i128, 6).normalize();
        Serialize::serialize(&ms, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms: Decimal = Deserialize::deserialize(d)?;
        let out_of_range = || {
            serde::de::Error::custom(format!(
                "mean_latency_ms must be a non-negative number of ms that fits in a duration \
                 (got {ms})"
            ))
        };
        let nanos = ms
            .checked_mul(Decimal::from(1_000_000))
            .ok_or_else(out_of_range)?
            .round();
        u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| out_of_range())
    }
}

/// [`UsageTotals::from_receipts`], one receipt at a time: a ledger streamed from
/// its files needs no more memory than its asynchronous invocations' ids.
///
/// ```
/// use sagemeter::compare::ReceiptTotals;
/// # fn receipts() -> Vec<sagemeter::Cost> { Vec::new() }
/// let mut totals = ReceiptTotals::default();
/// for cost in receipts() {
///     totals.add(&cost)?;
/// }
/// let totals = totals.finish();
/// # assert_eq!(totals.calls, 0);
/// # Ok::<(), sagemeter::compare::CompareError>(())
/// ```
#[derive(Debug, Default)]
pub struct ReceiptTotals {
    totals: UsageTotals,
    /// Σ each call's latency rounded up to the millisecond.
    billed: Duration,
    first: Option<chrono::DateTime<chrono::Utc>>,
    last: Option<chrono::DateTime<chrono::Utc>>,
    /// The calls' starts: the first, the last and how many (an asynchronous
    /// invocation starts once, at its submission, whichever of its receipts are
    /// here).
    starts: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
    start_count: u64,
    /// Calls of one receipt answered with HTTP 2XX (synchronous calls, and
    /// asynchronous invocations metered by the SDK interceptor, accepted; the
    /// others are counted by [`Halves`]).
    answered: u64,
    /// Calls of one receipt cancelled before their answer came.
    cancelled: u64,
    /// The inferences those calls were charged ([`inferences`]).
    inferences: u64,
    /// Receipts answered with HTTP 2XX that reported input tokens, and output
    /// tokens.
    calls_with_tokens_in: u64,
    calls_with_tokens_out: u64,
    /// Settled receipts not answered with HTTP 2XX: no tokens to report.
    unanswered_settled: u64,
    /// The receipts of each asynchronous invocation, by endpoint and call id.
    invocations: std::collections::HashMap<(String, String), Halves>,
}

/// Receipts of one asynchronous invocation, by phase.
#[derive(Debug, Default)]
struct Halves {
    submissions: u64,
    /// Submissions SageMaker accepted (HTTP 2XX): the per-inference fee's.
    accepted: u64,
    /// Submissions cancelled before SageMaker's answer came.
    cancelled: u64,
    /// The inferences the submissions were charged ([`inferences`]).
    inferences: u64,
    settlements: u64,
    /// Settlements answered with HTTP 2XX: the inference's answer, whose tokens
    /// are charged (a failed one answered none).
    settled_ok: u64,
    /// When it was submitted: its receipts' start (a settlement's is its
    /// submission's too).
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The inferences a receipt charged: its per-inference line's quantity, one per
/// HTTP 2XX answer of its call's attempts, when it has one (its endpoint has a
/// per-inference fee configured); else one if its call was answered with HTTP
/// 2XX (`answered`), or is an async submission SageMaker accepted before the
/// call failed (outcome `error`: only such a submission has a receipt), which it
/// never charges fewer than.
fn inferences(cost: &crate::Cost, answered: bool) -> u64 {
    use crate::billing::LineItem;
    use rust_decimal::prelude::ToPrimitive;
    let u = &cost.usage;
    let accepted_then_failed = u.operation == crate::usage::Operation::InvokeEndpointAsync
        && u.outcome == crate::usage::Outcome::Error
        && !cost.is_async_settlement();
    cost.lines
        .iter()
        .filter(|l| l.item == LineItem::Inference)
        .filter_map(|l| l.quantity.to_u64())
        .fold(0, u64::saturating_add)
        .max(u64::from(answered || accepted_then_failed))
}

/// Whether a receipt's `item` line is one the meter could not measure: at
/// quantity 0, unpriced for one of the reasons a meter gives a figure it did not
/// see (an input in S3 whose size was not given, an output whose size was not
/// given, a settlement whose clocks disagree, a stream or async call the SDK
/// interceptor did not read). A line unpriced for another reason (its rate not
/// known) holds a measured quantity, 0 bytes included.
fn not_measured(cost: &crate::Cost, item: crate::billing::LineItem) -> bool {
    use crate::billing::LinePrice;
    use crate::client::{
        CLOCKS_DISAGREE, DATA_IN_UNKNOWN, DATA_OUT_UNKNOWN, NOT_SEEN_BY_INTERCEPTOR,
    };
    cost.lines.iter().any(|l| {
        l.item == item
            && l.quantity.is_zero()
            && matches!(&l.price, LinePrice::Unpriced { reason }
                if reason == DATA_IN_UNKNOWN
                    || reason == DATA_OUT_UNKNOWN
                    || reason == CLOCKS_DISAGREE
                    || reason.contains(NOT_SEEN_BY_INTERCEPTOR))
    })
}

/// Whether a receipt records its `item` direction's size as not known: 0 bytes
/// on a data line the meter could not measure ([`not_measured`]).
fn size_unknown(cost: &crate::Cost, item: crate::billing::LineItem, bytes: u64) -> bool {
    bytes == 0 && not_measured(cost, item)
}

/// Whether a receipt's model time was not seen: its compute line (in seconds on
/// serverless, instance-hours on instances) is one the meter could not measure
/// ([`not_measured`]: a stream metered by the SDK interceptor, whose latency is
/// only the time to the response's headers; a settlement whose clocks
/// disagree). A serverless call that reached the model bills 1 ms at least.
fn compute_unseen(cost: &crate::Cost) -> bool {
    not_measured(cost, crate::billing::LineItem::Compute)
}

/// The serverless seconds a receipt bills: its compute line's quantity in
/// seconds (each attempt that reached the model rounded up to the millisecond,
/// as AWS bills every request it ran), whole milliseconds rounded up; `None`
/// when it has no compute line in seconds, or its time was not seen (unpriced at
/// 0 s, [`compute_unseen`]). A quantity whose milliseconds are
/// negative or do not fit in a `u64` (about 5.8 × 10^8 years) is no meter's:
/// [`CompareError::OutOfRange`], naming the receipt, never a panic or a
/// fallback to the call's latency.
fn serverless_seconds(cost: &crate::Cost) -> Result<Option<Duration>, CompareError> {
    use crate::billing::{LineItem, QuantityUnit};
    let Some(line) = cost
        .lines
        .iter()
        .find(|l| l.item == LineItem::Compute && l.unit == QuantityUnit::Seconds)
    else {
        return Ok(None);
    };
    if compute_unseen(cost) {
        return Ok(None);
    }
    line.quantity
        .checked_mul(Decimal::from(1000))
        .and_then(|ms| rust_decimal::prelude::ToPrimitive::to_u64(&ms.ceil()))
        .map(|ms| Some(Duration::from_millis(ms)))
        .ok_or_else(|| CompareError::OutOfRange {
            what: "the serverless seconds on a receipt's compute line",
            value: line.quantity.to_string(),
            hint: format!(
                "the receipt of call `{}` on endpoint `{}` bills a time no call runs \
                 (0 to about 5.8 × 10^8 years in whole milliseconds): a corrupt or \
                 hand-edited ledger?",
                cost.call_id, cost.endpoint
            ),
        })
}

impl ReceiptTotals {
    /// Counts one receipt (see [`UsageTotals::from_receipts`] for how).
    ///
    /// A receipt whose compute line in seconds holds a time no call runs
    /// (negative, or more whole milliseconds than a `u64` holds) is
    /// [`CompareError::OutOfRange`], and is not counted: what serverless bills for
    /// it is not known.
    pub fn add(&mut self, cost: &crate::Cost) -> Result<(), CompareError> {
        // Serverless bills each call rounded up to the millisecond: each attempt
        // that reached the model, the seconds on the receipt's compute line; a
        // receipt without one in seconds (an instance's, or one with usage
        // charges alone), its latency rounded up.
        let compute_seconds = serverless_seconds(cost)?;
        let compute_unseen = compute_unseen(cost);
        // A settled receipt's model time, in the sums; not seen (its compute line
        // unpriced at 0 s), counted apart: its latency is no model time.
        let timed = |totals: &mut UsageTotals, billed: &mut Duration, latency: Duration| {
            if compute_unseen {
                totals.compute_unseen_calls = totals.compute_unseen_calls.saturating_add(1);
                return;
            }
            totals.busy_time = totals.busy_time.saturating_add(latency);
            *billed =
                billed.saturating_add(compute_seconds.unwrap_or_else(|| {
                    Duration::from_millis(crate::billing::billed_millis(latency))
                }));
        };
        let totals = &mut self.totals;
        let u = &cost.usage;
        // Which receipt of its call this is, as `report` tells it.
        let part = CallPart::of_receipt(cost);
        // A call's start; an asynchronous invocation's two receipts count one,
        // per invocation, when the totals are finished.
        let mut start = false;
        match part {
            CallPart::AsyncSubmission | CallPart::AsyncSettlement => {
                let key = (cost.endpoint.clone(), cost.call_id.clone());
                let halves = self.invocations.entry(key).or_default();
                halves.at = Some(halves.at.map_or(cost.at, |at| at.min(cost.at)));
                if part == CallPart::AsyncSettlement {
                    halves.settlements += 1;
                    if crate::billing::answered_2xx(u) {
                        halves.settled_ok += 1;
                    }
                    timed(totals, &mut self.billed, u.latency);
                } else {
                    halves.submissions += 1;
                    let accepted = crate::billing::answered_2xx(u);
                    halves.inferences =
                        halves.inferences.saturating_add(inferences(cost, accepted));
                    if accepted {
                        halves.accepted += 1;
                    } else if u.outcome == crate::usage::Outcome::Cancelled {
                        halves.cancelled += 1;
                    }
                }
            }
            CallPart::Whole | CallPart::AsyncOnly => {
                totals.calls = totals.calls.saturating_add(1);
                let answered = crate::billing::answered_2xx(u);
                self.inferences = self.inferences.saturating_add(inferences(cost, answered));
                if answered {
                    self.answered = self.answered.saturating_add(1);
                } else if u.outcome == crate::usage::Outcome::Cancelled {
                    self.cancelled = self.cancelled.saturating_add(1);
                }
                if part == CallPart::AsyncOnly {
                    // The interceptor's only receipt of an asynchronous invocation:
                    // the whole call, accepted or not as a submission is, that no
                    // settlement will follow. Its latency is the time to queue the
                    // request, not model time; its model time, data out and tokens
                    // are not seen (not zero): left out of their means.
                    totals.intercepted_async_calls =
                        totals.intercepted_async_calls.saturating_add(1);
                } else {
                    timed(totals, &mut self.billed, u.latency);
                }
                start = true;
            }
        }
        // A size the meter did not know is written as 0 bytes on a data line
        // unpriced at quantity 0: not known, not zero, so left out of the sums'
        // means. Data in is a call's (whole, submitted, or the interceptor's only
        // receipt), not a settlement's.
        if part != CallPart::AsyncSettlement
            && size_unknown(cost, crate::billing::LineItem::DataIn, u.bytes_in)
        {
            totals.bytes_in_unknown_calls = totals.bytes_in_unknown_calls.saturating_add(1);
        }
        totals.bytes_in = totals.bytes_in.saturating_add(u.bytes_in);
        // A settled receipt (a synchronous call, an asynchronous invocation's
        // settlement) only: a submission, or the interceptor's receipt, holds no
        // data out nor tokens.
        let settled = matches!(part, CallPart::Whole | CallPart::AsyncSettlement);
        if settled {
            if size_unknown(cost, crate::billing::LineItem::DataOut, u.bytes_out) {
                totals.bytes_out_unknown_calls = totals.bytes_out_unknown_calls.saturating_add(1);
            }
            totals.bytes_out = totals.bytes_out.saturating_add(u.bytes_out);
        }
        // A call not answered with HTTP 2XX had no tokens to report, and its
        // receipt's token lines charge none (0 tokens, priced): counted apart, not
        // as a call that did not report them.
        if settled && !crate::billing::answered_2xx(u) {
            self.unanswered_settled = self.unanswered_settled.saturating_add(1);
        } else if settled {
            // A count the response did not report is unknown, not zero: it is left
            // out of the sums and of the calls they are over.
            if let Some(tokens) = u.input_tokens {
                totals.tokens_in = totals.tokens_in.saturating_add(tokens);
                self.calls_with_tokens_in = self.calls_with_tokens_in.saturating_add(1);
            }
            if let Some(tokens) = u.output_tokens {
                totals.tokens_out = totals.tokens_out.saturating_add(tokens);
                self.calls_with_tokens_out = self.calls_with_tokens_out.saturating_add(1);
            }
        }
        let end = chrono::Duration::from_std(u.latency)
            .ok()
            .and_then(|latency| cost.at.checked_add_signed(latency))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        self.first = Some(self.first.map_or(cost.at, |f| f.min(cost.at)));
        self.last = Some(self.last.map_or(end, |l| l.max(end)));
        if start {
            self.started_n(cost.at, 1);
        }
        Ok(())
    }

    /// `n` calls started at `at`.
    fn started_n(&mut self, at: chrono::DateTime<chrono::Utc>, n: u64) {
        self.start_count = self.start_count.saturating_add(n);
        self.starts = Some(match self.starts {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    /// The totals of every receipt added.
    pub fn finish(mut self) -> UsageTotals {
        // Each asynchronous invocation starts once, submitted or only settled here.
        let async_starts: Vec<_> = self
            .invocations
            .values()
            .filter_map(|h| Some((h.at?, h.submissions.max(h.settlements))))
            .collect();
        for (at, n) in async_starts {
            self.started_n(at, n);
        }
        let mut totals = self.totals;
        let mut answered = self.answered;
        let mut inferences = self.inferences;
        let mut answered_tokens = self.answered;
        let mut cancelled = self.cancelled;
        for halves in self.invocations.values() {
            // Answered at its submission; a settlement without its submission here
            // was accepted (SageMaker ran it).
            let answered_here = halves.accepted.max(halves.settlements);
            answered = answered.saturating_add(answered_here);
            // Its submission's inferences, one at least for an answered invocation.
            inferences = inferences.saturating_add(halves.inferences.max(answered_here));
            // Its answer, whose tokens are charged: its settlement's, a failed
            // inference none (its fee is charged at the accepted submission all the
            // same); not settled yet, its accepted submission's, at the mean.
            answered_tokens = answered_tokens.saturating_add(
                halves
                    .settled_ok
                    .saturating_add(halves.accepted.saturating_sub(halves.settlements)),
            );
            // Normally one of each; a call id written twice (e.g. `local-0` by two
            // processes) is as many calls as its more numerous half.
            let calls = halves.submissions.max(halves.settlements);
            totals.calls = totals.calls.saturating_add(calls);
            // A cancelled submission whose settlement is here was answered.
            cancelled =
                cancelled.saturating_add(halves.cancelled.min(calls.saturating_sub(answered_here)));
            totals.unsettled_async_calls = totals
                .unsettled_async_calls
                .saturating_add(halves.submissions.saturating_sub(halves.settlements));
        }
        totals.answered_calls = Some(answered);
        totals.inferences = Some(inferences);
        totals.answered_token_calls = Some(answered_tokens);
        totals.cancelled_calls = Some(cancelled);
        totals.billed_busy_time = Some(self.billed);
        totals.calls_with_tokens_in = Some(self.calls_with_tokens_in);
        totals.calls_with_tokens_out = Some(self.calls_with_tokens_out);
        totals.unanswered_settled_calls = Some(self.unanswered_settled);
        if let (Some(first), Some(last)) = (self.first, self.last) {
            let mut observed = (last - first).to_std().unwrap_or_default();
            // n starts span n − 1 gaps; the traffic they stand for spans n.
            if let Some((first_start, last_start)) = self.starts
                && self.start_count >= 2
            {
                let starts = (last_start - first_start).to_std().unwrap_or_default();
                let n = u128::from(self.start_count);
                let gaps = starts
                    .as_nanos()
                    .checked_mul(n)
                    .map_or(u128::MAX, |x| x / (n - 1));
                observed = observed.max(Duration::from_nanos(
                    u64::try_from(gaps).unwrap_or(u64::MAX),
                ));
            }
            totals.observed = observed.max(Duration::from_secs(1));
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serverless_bills_latency_rounded_up_to_the_millisecond() {
        let profile = UsageProfile::builder()
            .calls_per_period(1)
            .mean_latency(Duration::from_micros(800_001))
            .build()
            .unwrap();
        // 800.001 ms → 801 ms = 0.801 s
        assert_eq!(profile.billed_seconds_per_call(), Decimal::new(801, 3));
    }

    #[test]
    fn totals_give_exact_means_per_call_not_rounded_ones() {
        let totals = UsageTotals::new(3, Duration::from_secs(86_400))
            .with_bytes(10, 11)
            .with_tokens(3, 4);
        let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
        // 10 / 3 = 3.333…, 11 / 3 = 3.666… bytes; 3 / 3 = 1 and 4 / 3 = 1.333… tokens
        let third = |n: i64| Decimal::from(n) / Decimal::from(3);
        assert_eq!(profile.bytes_in_per_call, third(10));
        assert_eq!(profile.bytes_out_per_call, third(11));
        assert_eq!(profile.tokens_in_per_call, Decimal::ONE);
        assert_eq!(profile.tokens_out_per_call, third(4));
        assert_eq!(profile.calls_per_period, Decimal::from(3));
    }

    #[test]
    fn token_means_are_over_the_calls_that_reported_them() {
        // 5 calls: 2,000 input tokens reported by 2 of them, 300 output by 3
        let totals = UsageTotals::new(5, Duration::from_secs(86_400))
            .with_tokens(2_000, 300)
            .with_calls_with_tokens(2, 3);
        let profile = UsageProfile::from_totals(&totals, Period::Day).unwrap();
        // 2,000 / 2 = 1,000 and 300 / 3 = 100 (not 2,000 / 5 = 400 and 300 / 5 = 60)
        assert_eq!(profile.tokens_in_per_call, Decimal::from(1_000));
        assert_eq!(profile.tokens_out_per_call, Decimal::from(100));
        let reported = profile.tokens_reported.unwrap();
        assert_eq!(
            (reported.calls, reported.tokens_in, reported.tokens_out),
            (5, 2, 3)
        );
        // more reporting calls than calls: refused
        let totals = totals.with_calls_with_tokens(6, 3);
        assert!(matches!(
            UsageProfile::from_totals(&totals, Period::Day),
            Err(CompareError::Inconsistent { .. })
        ));
    }

    #[test]
    fn a_profile_moves_to_another_period_by_hours() {
        let month = UsageProfile::builder()
            .calls_per_period(73_000)
            .build()
            .unwrap();
        // 73,000 calls / 730 h × 24 h = 2,400 calls a day
        assert_eq!(
            month.over(Period::Day).unwrap().calls_per_period,
            Decimal::from(2_400)
        );
    }

    #[test]
    fn latency_serialises_as_milliseconds() {
        let profile = UsageProfile::builder()
            .calls_per_period(1)
            .mean_latency(Duration::from_micros(12_500))
            .build()
            .unwrap();
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["mean_latency_ms"], "12.5");
        let back: UsageProfile = serde_json::from_value(json).unwrap();
        assert_eq!(back, profile);
    }

    #[test]
    fn a_latency_too_large_for_a_duration_is_a_serde_error_never_a_panic() {
        let profile = |ms: &str| {
            serde_json::json!({"period": "month", "calls_per_period": "1",
                "mean_latency_ms": ms, "bytes_in_per_call": 0, "bytes_out_per_call": 0,
                "tokens_in_per_call": 0, "tokens_out_per_call": 0})
        };
        // The largest decimal, 79,228,162,514,264,337,593,543,950,335 ms: × 10^6 ns/ms
        // is beyond a decimal.
        let err = serde_json::from_value::<UsageProfile>(profile("79228162514264337593543950335"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("mean_latency_ms must be a non-negative number of ms"),
            "{err}"
        );
        // 2 × 10^13 ms = 2 × 10^19 ns: a decimal, but more nanoseconds than u64 holds
        // (about 1.8 × 10^19).
        assert!(serde_json::from_value::<UsageProfile>(profile("20000000000000")).is_err());
        assert!(serde_json::from_value::<UsageProfile>(profile("-1")).is_err());
        // 1.5 ms = 1,500,000 ns
        let ok: UsageProfile = serde_json::from_value(profile("1.5")).unwrap();
        assert_eq!(ok.mean_latency, Duration::from_micros(1_500));
    }
}
