//! Token counts from response bodies.
//!
//! SageMaker does not report tokens; LLM containers put them in the body.
//! The built-in detection understands the common shapes ([`OpenAiUsage`]:
//! OpenAI-compatible `usage`, then [`TgiDetails`]: Hugging Face TGI `details`); a
//! [`TokenCounter`] lets users plug in their own.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

/// Tokens used by one call.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Input (prompt) tokens, cached ones included once.
    pub input: Option<u64>,
    /// Output (completion / generated) tokens.
    pub output: Option<u64>,
}

impl TokenUsage {
    /// Tokens with both counts known.
    pub fn new(input: u64, output: u64) -> Self {
        TokenUsage {
            input: Some(input),
            output: Some(output),
        }
    }

    /// True when neither count is known.
    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none()
    }
}

/// A strategy for reading token counts from a complete response body.
///
/// On a response stream the counter is given each event's data (an SSE `data:`
/// line's, or a bare JSON line; other lines are SSE fields and are skipped), and
/// each count it reports replaces the one before, field by field: the call's
/// tokens are the last reported, as servers that report running or final totals
/// (OpenAI-compatible ones, TGI) say them. A counter cannot add up per-event
/// counts.
///
/// A `text/plain` response, whole or streamed, is given to the counter whole (a
/// stream's parts joined, up to [`MAX_STREAM_EVENT_BYTES`]): its text is the
/// model's own, which only a counter of yours knows how to count. The built-in
/// detection does not read it (a `{"usage": …}` the model writes is no count
/// from the server).
pub trait TokenCounter: fmt::Debug + Send + Sync {
    /// The tokens the body reports, or `None` when it does not say.
    /// Must not panic on any input.
    fn count(&self, body: &[u8]) -> Option<TokenUsage>;
}

/// OpenAI-compatible bodies (vLLM, LMI, TGI's Messages API, ...):
/// `{"usage": {"prompt_tokens": 12, "completion_tokens": 30}}`, or the Responses
/// API's and Anthropic's `input_tokens`/`output_tokens`, at the top or in
/// `response` (the Responses API's streamed `response.completed` event) or
/// `message` (Anthropic's streamed `message_start`).
///
/// `prompt_tokens_details.cached_tokens` are already part of `prompt_tokens`
/// and are not added again. Anthropic's `input_tokens` leave out the prompt
/// tokens written to or read from its cache: `cache_creation_input_tokens` and
/// `cache_read_input_tokens` are added to them, so that the input is the whole
/// prompt, cached tokens included once.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct OpenAiUsage;

/// Hugging Face TGI bodies: `[{"generated_text": "...", "details": {"generated_tokens": 30,
/// "prefill": [...]}}]` (or the same object without the array). Input tokens are
/// the length of `prefill` when the request asked for `decoder_input_details`, else
/// `details.input_length` (which the last event of a TGI stream carries). Output
/// tokens are the chosen sequence's and, with `best_of`, those of the other
/// sequences generated (`best_of_sequences`).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TgiDetails;

/// A token counter from a closure.
///
/// ```
/// use sagemeter::usage::{FnTokenCounter, TokenCounter, TokenUsage};
/// let counter = FnTokenCounter::new(|body: &[u8]| Some(TokenUsage::new(0, body.len() as u64 / 4)));
/// assert_eq!(counter.count(b"12345678").unwrap().output, Some(2));
/// ```
#[derive(Clone)]
pub struct FnTokenCounter(Arc<CountFn>);

type CountFn = dyn Fn(&[u8]) -> Option<TokenUsage> + Send + Sync;

impl FnTokenCounter {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&[u8]) -> Option<TokenUsage> + Send + Sync + 'static) -> Self {
        FnTokenCounter(Arc::new(f))
    }
}

impl fmt::Debug for FnTokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTokenCounter")
    }
}

impl TokenCounter for FnTokenCounter {
    fn count(&self, body: &[u8]) -> Option<TokenUsage> {
        (self.0)(body)
    }
}

impl TokenCounter for OpenAiUsage {
    fn count(&self, body: &[u8]) -> Option<TokenUsage> {
        openai_counts(body).map(|(usage, _)| usage)
    }
}

/// [`OpenAiUsage`]'s counts of `body`, with where its object ends.
fn openai_counts(body: &[u8]) -> Option<(TokenUsage, usize)> {
    // Only the `usage` object is read, in place and once: the choices around it
    // can be most of the body, and the counter runs on every call. The
    // Responses API's streamed `response.completed` event has it one level
    // down, in `response` (Anthropic's `message_start`, in `message`); found in
    // the same walk. A `usage` given twice is unreadable, as a count given
    // twice is (parsers disagree on which one a duplicate key means).
    let mut usage = None;
    let mut wrapper = None;
    let end = for_each_member(body, &mut |key, rest| match key {
        b"usage" if usage.is_some() => None,
        b"usage" => {
            usage = Some(rest);
            value_end(rest, 0).map(ControlFlow::Continue)
        }
        b"response" | b"message" => {
            wrapper = Some(rest);
            value_end(rest, 0).map(ControlFlow::Continue)
        }
        _ => value_end(rest, 0).map(ControlFlow::Continue),
    })?;
    let counts = match (usage, wrapper) {
        (Some(usage), _) => openai_usage(usage),
        (None, Some(wrapper)) => openai_usage(top_level_field(wrapper, b"usage")?),
        (None, None) => None,
    };
    counts.map(|counts| (counts, end))
}

/// Token counts of a raw OpenAI `usage` value (followed by anything: the object
/// is read up to its closing brace): `prompt_tokens`/`completion_tokens`, or
/// `input_tokens`/`output_tokens` (some servers, the Responses API, Anthropic;
/// Anthropic's cache writes and reads added to the input). As a
/// JSON parser would, a count that is not a whole number (or `null`), or a count
/// given twice, makes the object unreadable; other members are skipped.
fn openai_usage(usage: &[u8]) -> Option<TokenUsage> {
    let mut counts = [None; 6];
    let mut seen = [false; 6];
    for_each_member(usage, &mut |key, rest| {
        // Lengths first: each comparison is then of a known size, done inline.
        let i = match key.len() {
            13 if key == b"prompt_tokens" => 0,
            17 if key == b"completion_tokens" => 1,
            12 if key == b"input_tokens" => 2,
            13 if key == b"output_tokens" => 3,
            27 if key == b"cache_creation_input_tokens" => 4,
            23 if key == b"cache_read_input_tokens" => 5,
            _ => return value_end(rest, 0).map(ControlFlow::Continue),
        };
        if seen[i] {
            return None;
        }
        seen[i] = true;
        let (count, end) = json_count(rest)?;
        counts[i] = count;
        Some(ControlFlow::Continue(end))
    })?;
    let [prompt, completion, input, output, cache_written, cache_read] = counts;
    // Anthropic's input leaves its cached prompt tokens out; a sum past u64::MAX
    // saturates there, beyond the most any call is counted with.
    let input = input.map(|n| {
        n.saturating_add(cache_written.unwrap_or(0))
            .saturating_add(cache_read.unwrap_or(0))
    });
    let usage = TokenUsage {
        input: prompt.or(input),
        output: completion.or(output),
    };
    (!usage.is_empty()).then_some(usage)
}

/// The count a raw JSON member value starts with, and where the value ends (as
/// [`value_end`] says): `null`, or a whole number that fits in a `u64` written as
/// JSON writes it (no sign, no leading zero). Read in the same pass as its end,
/// and `None` for any other value.
#[inline(always)]
fn json_count(value: &[u8]) -> Option<(Option<u64>, usize)> {
    let start = skip_whitespace(value, 0)?;
    let rest = &value[start..];
    let (count, len) = if rest.starts_with(b"null") {
        (None, 4)
    } else {
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        let mut n: u64 = 0;
        for &b in &rest[..len] {
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        (Some(n), len)
    };
    let end = skip_whitespace(value, start + len)?;
    matches!(value[end], b',' | b'}').then_some((count, end))
}

#[derive(Deserialize)]
struct TgiGenerated {
    details: Option<TgiDetailsObject>,
}

#[derive(Deserialize)]
struct TgiDetailsObject {
    generated_tokens: Option<u64>,
    /// The prompt's tokens, when the request asked for them; absent or `null`
    /// otherwise (then the prompt length is read from `input_length`).
    #[serde(default)]
    prefill: Option<Vec<serde::de::IgnoredAny>>,
    // Streamed `details` carry the prompt length instead of `prefill`
    // (`input_length` in TGI, `prompt_tokens` in some forks).
    input_length: Option<u64>,
    prompt_tokens: Option<u64>,
    /// With `best_of`, the other sequences generated (the chosen one is above):
    /// generated work too, on the same prompt. Their output summed as they are
    /// read ([`sum_best_of`]); absent or `null` without `best_of`.
    #[serde(default, deserialize_with = "sum_best_of")]
    best_of_sequences: Summed,
}

/// One of `best_of_sequences`, read only for its count.
#[derive(Deserialize)]
struct TgiBestOf {
    generated_tokens: Option<u64>,
}

/// `best_of_sequences`' output counts summed as they are read, as [`TgiBatch`]
/// sums its generations: nothing is kept per sequence, so a long array costs no
/// memory (kept whole, 16 bytes a sequence: a 24 MB body of `{},` took 134 MB or
/// more). A `null` (TGI's value without `best_of`) is no other sequence.
fn sum_best_of<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Summed, D::Error> {
    struct Sequences;
    impl<'de> serde::de::Visitor<'de> for Sequences {
        type Value = Summed;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of TGI sequences or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Summed, E> {
            Ok(Summed::Nothing)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Summed, E> {
            Ok(Summed::Nothing)
        }
        fn visit_some<D: serde::Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Summed, D::Error> {
            deserializer.deserialize_seq(Sum)
        }
    }
    struct Sum;
    impl<'de> serde::de::Visitor<'de> for Sum {
        type Value = Summed;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of TGI sequences")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Summed, A::Error> {
            let mut sum = Summed::default();
            while let Some(sequence) = seq.next_element::<TgiBestOf>()? {
                sum.add(sequence.generated_tokens);
            }
            Ok(sum)
        }
    }
    deserializer.deserialize_option(Sequences)
}

impl TgiGenerated {
    /// This generation's counts: output, the chosen sequence's and those of the
    /// other sequences generated; unknown when any of them is not reported.
    fn usage(self) -> TokenUsage {
        let Some(details) = self.details else {
            return TokenUsage::default();
        };
        let mut output = Summed::default();
        output.add(details.generated_tokens);
        output.merge(details.best_of_sequences);
        let input = match details.prefill.map_or(0, |prefill| prefill.len()) {
            0 => details.input_length.or(details.prompt_tokens),
            n => Some(n as u64),
        };
        TokenUsage {
            input,
            output: output.known(),
        }
    }
}

/// A count summed over the parts of one answer (a TGI batch's generations, a
/// JSON Lines body's lines, a generation's sequences): unknown once any part
/// does not report it, as an unknown count is not zero.
#[derive(Debug, Clone, Copy, Default)]
enum Summed {
    /// No part yet.
    #[default]
    Nothing,
    /// Every part so far reported its count: their sum.
    Known(u64),
    /// A part did not report it.
    Unknown,
}

impl Summed {
    fn add(&mut self, count: Option<u64>) {
        *self = match (*self, count) {
            (Summed::Unknown, _) | (_, None) => Summed::Unknown,
            (Summed::Nothing, Some(n)) => Summed::Known(n),
            (Summed::Known(sum), Some(n)) => Summed::Known(sum.saturating_add(n)),
        };
    }

    /// Adds the parts `other` summed, as if each had been added here.
    fn merge(&mut self, other: Summed) {
        match other {
            Summed::Nothing => {}
            Summed::Known(n) => self.add(Some(n)),
            Summed::Unknown => self.add(None),
        }
    }

    fn known(self) -> Option<u64> {
        match self {
            Summed::Known(n) => Some(n),
            Summed::Nothing | Summed::Unknown => None,
        }
    }
}

/// Both counts summed over the parts of one answer ([`Summed`]).
#[derive(Debug, Clone, Copy, Default)]
struct UsageSum {
    input: Summed,
    output: Summed,
}

impl UsageSum {
    fn add(&mut self, usage: TokenUsage) {
        self.input.add(usage.input);
        self.output.add(usage.output);
    }

    fn total(self) -> TokenUsage {
        TokenUsage {
            input: self.input.known(),
            output: self.output.known(),
        }
    }
}

/// A TGI batch (an array of generations) summed as it is read: nothing is kept
/// per element, so a long array costs no memory.
struct TgiBatch(TokenUsage);

impl<'de> Deserialize<'de> for TgiBatch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Sum;
        impl<'de> serde::de::Visitor<'de> for Sum {
            type Value = TgiBatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of TGI generations")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TgiBatch, A::Error> {
                let mut sum = UsageSum::default();
                while let Some(generated) = seq.next_element::<TgiGenerated>()? {
                    sum.add(generated.usage());
                }
                Ok(TgiBatch(sum.total()))
            }
        }
        deserializer.deserialize_seq(Sum)
    }
}

impl TokenCounter for TgiDetails {
    fn count(&self, body: &[u8]) -> Option<TokenUsage> {
        if !looks_like_json_with(body, b"details") {
            return None;
        }
        // The first byte says which shape, read straight into its type: members
        // other than `details` are skipped as they are read, and an array is summed
        // element by element. (An untagged enum of the two shapes first copied the
        // whole document into serde's buffer: a 62 MB body with `details` only in
        // its text took 360 MB to find no count.)
        let usage = match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice::<TgiBatch>(body).ok()?.0,
            _ => serde_json::from_slice::<TgiGenerated>(body).ok()?.usage(),
        };
        (!usage.is_empty()).then_some(usage)
    }
}

/// The built-in detection used when no [`TokenCounter`] is configured: OpenAI-compatible
/// `usage` first, then TGI `details`.
///
/// A body of several JSON values, one a line (JSON Lines, e.g. a batch answered as
/// `application/jsonlines`), is the sum of its lines' counts, as a TGI batch is the
/// sum of its generations; unknown (`None`) unless every line is one JSON value
/// that reports tokens, and each direction (input, output) unknown unless every
/// line reports it. Anything else after the first value is unknown too.
pub(crate) fn detect_tokens(body: &[u8]) -> Option<TokenUsage> {
    match detect_in_first_value(body) {
        // The common case: one value.
        Some((first, true)) => return Some(first),
        Some((_, false)) => {}
        // TGI's reader refuses what follows its value: lines are tried when there
        // is a second line (a SIMD search, not a walk of the body).
        None if has_second_line(body) => {}
        None => return None,
    }
    let mut sum = UsageSum::default();
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        sum.add(detect_in_first_value(line).and_then(|(usage, whole)| whole.then_some(usage))?);
    }
    let total = sum.total();
    (!total.is_empty()).then_some(total)
}

/// The counts the first JSON value of `body` reports, and whether that value is
/// all of `body` (nothing but whitespace after it): the OpenAI reader walks the
/// object to its end, and TGI's (serde's) refuses anything after its value.
fn detect_in_first_value(body: &[u8]) -> Option<(TokenUsage, bool)> {
    match openai_counts(body) {
        Some((usage, end)) => Some((usage, skip_whitespace(body, end).is_none())),
        None => TgiDetails.count(body).map(|usage| (usage, true)),
    }
}

/// Whether anything but whitespace follows the first newline of `body`.
fn has_second_line(body: &[u8]) -> bool {
    memchr::memchr(b'\n', body)
        .is_some_and(|at| !body[at + 1..].iter().all(u8::is_ascii_whitespace))
}

/// Largest stream event (one SSE `data:` line or one JSON line) read for tokens.
/// Longer events are skipped, not buffered: a stream never costs more memory than this.
pub const MAX_STREAM_EVENT_BYTES: usize = 4 << 20;

/// Token counts of a response stream, read as its parts arrive.
///
/// [`push`](Self::push) every payload part, then [`finish`](Self::finish). The bytes are
/// split into events whatever the part boundaries: SSE `data:` lines (OpenAI-compatible
/// servers such as vLLM and LMI, TGI) or bare JSON lines (LMI `jsonlines`). `[DONE]`,
/// SSE comments and other SSE fields are skipped. Each event goes to the
/// [`TokenCounter`] (default: [`OpenAiUsage`], then [`TgiDetails`]).
///
/// Servers report running totals (OpenAI `usage` in the last chunk, TGI `details` in
/// the last event), so a later report replaces an earlier one, field by field: nothing
/// is added twice, and cached prompt tokens stay counted once.
///
/// [`done`](Self::done) says when an SSE event read so far was `data: [DONE]`, the
/// end marker of OpenAI-compatible streams.
///
/// ```
/// use sagemeter::usage::{StreamTokens, TokenUsage};
/// let mut tokens = StreamTokens::new();
/// tokens.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[],\"usa");
/// tokens.push(b"ge\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n");
/// assert_eq!(tokens.finish(), Some(TokenUsage::new(5, 1)));
/// ```
pub struct StreamTokens {
    counter: Option<Arc<dyn TokenCounter>>,
    line: Vec<u8>,
    skipping: bool,
    plain_text: bool,
    /// Whether a `data: [DONE]` line ends the stream: it is server-sent
    /// events (`text/event-stream`), or of no stated type.
    event_stream: bool,
    usage: TokenUsage,
    /// Whether a `data: [DONE]` line was read in an event stream.
    done: bool,
}

impl fmt::Debug for StreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the buffered bytes: they are payload.
        f.debug_struct("StreamTokens")
            .field("counter", &self.counter)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl Default for StreamTokens {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamTokens {
    /// An accumulator with the built-in detection ([`OpenAiUsage`], then [`TgiDetails`]).
    pub fn new() -> Self {
        StreamTokens {
            counter: None,
            line: Vec::new(),
            skipping: false,
            plain_text: false,
            event_stream: true,
            usage: TokenUsage::default(),
            done: false,
        }
    }

    /// An accumulator that asks `counter` about each event.
    pub fn with_counter(counter: Arc<dyn TokenCounter>) -> Self {
        StreamTokens {
            counter: Some(counter),
            ..Self::new()
        }
    }

    /// Says what the stream's `Content-Type` is. A plain-text stream (`text/plain`)
    /// is the model's own text: the built-in detection reports no tokens for it (a
    /// line the model writes as `{"usage": …}` is not a count from the server),
    /// and a [`TokenCounter`] is given its parts joined, once, when it ends (none
    /// over [`MAX_STREAM_EVENT_BYTES`]). Events of any other type, or of none
    /// stated, are read. Only server-sent events (`text/event-stream`), or a
    /// stream of no stated type, end at `data: [DONE]` (see [`done`](Self::done)).
    pub fn content_type(mut self, content_type: Option<&str>) -> Self {
        self.plain_text = content_type.is_some_and(is_plain_text);
        self.event_stream = content_type.is_none_or(is_event_stream);
        self
    }

    /// Reads one payload part.
    pub fn push(&mut self, mut part: &[u8]) {
        if self.plain_text {
            if self.counter.is_some() {
                self.keep(part);
            }
            return;
        }
        while let Some(end) = part.iter().position(|b| *b == b'\n') {
            let (head, rest) = (&part[..end], &part[end + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.line.len() + head.len() > MAX_STREAM_EVENT_BYTES {
                // Too long: skipped, however the parts split it.
                self.line.clear();
            } else if self.line.is_empty() {
                self.event_line(head);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.event_line(&line);
                line.clear();
                self.line = line;
            }
            part = rest;
        }
        self.keep(part);
    }

    /// Adds `part` to the event being read, unless that makes it too long (then it
    /// is skipped to its end).
    fn keep(&mut self, part: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + part.len() > MAX_STREAM_EVENT_BYTES {
            self.line.clear();
            self.skipping = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }

    /// The tokens reported so far (before the stream has ended: the last report seen).
    pub fn current(&self) -> Option<TokenUsage> {
        (!self.usage.is_empty()).then_some(self.usage)
    }

    /// Whether an SSE `data: [DONE]` line was read so far, the marker
    /// OpenAI-compatible servers (vLLM's among them) end a stream of
    /// server-sent events with: the model has nothing more to send. A line is
    /// read once its newline has arrived (or at [`finish`](Self::finish)). Only
    /// in a stream of `text/event-stream`, or of no stated type (see
    /// [`content_type`](Self::content_type)): in any other (plain text, JSON
    /// lines, `application/octet-stream`), a `[DONE]` line is the model's own
    /// text or data, and the stream may go on after it. A bare `[DONE]` line
    /// is no marker either.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Reads what is left (a last line without a newline) and returns the tokens the
    /// stream reported, `None` when it said nothing about tokens.
    pub fn finish(&mut self) -> Option<TokenUsage> {
        let line = std::mem::take(&mut self.line);
        if !self.skipping {
            match (&self.counter, self.plain_text) {
                // The whole text, kept only with a counter to give it to.
                (Some(counter), true) => {
                    if let Some(counted) = counter.count(&line) {
                        self.usage = counted;
                    }
                }
                (_, true) => {}
                (_, false) => self.event_line(&line),
            }
        }
        self.skipping = false;
        self.current()
    }

    fn event_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (event, sse) = match line.strip_prefix(b"data:") {
            Some(data) => (data.strip_prefix(b" ").unwrap_or(data), true),
            // Bare JSON lines; anything else is an SSE field (`event:`, `id:`, `: comment`).
            None if matches!(line.first(), Some(b'{') | Some(b'[')) => (line, false),
            None => return,
        };
        if event == b"[DONE]" {
            // The end marker only as an SSE data line of an event stream.
            self.done |= sse && self.event_stream;
            return;
        }
        if event.is_empty() {
            return;
        }
        let reported = match &self.counter {
            Some(counter) => counter.count(event),
            None => detect_tokens(event),
        };
        if let Some(reported) = reported {
            if reported.input.is_some() {
                self.usage.input = reported.input;
            }
            if reported.output.is_some() {
                self.usage.output = reported.output;
            }
        }
    }
}

/// A `text/plain` media type, parameters (`; charset=utf-8`) and case aside.
pub(crate) fn is_plain_text(content_type: &str) -> bool {
    is_media_type(content_type, "text/plain")
}

/// A `text/event-stream` media type (server-sent events), parameters and case aside.
pub(crate) fn is_event_stream(content_type: &str) -> bool {
    is_media_type(content_type, "text/event-stream")
}

/// Whether `content_type` is the media type `essence`, parameters and case aside.
fn is_media_type(content_type: &str, essence: &str) -> bool {
    let given = content_type.split(';').next().unwrap_or_default().trim();
    given.eq_ignore_ascii_case(essence)
}

/// The body from the raw JSON value of `key` in the top-level object of `body` on
/// (whitespace before it included; the value itself is not walked, its reader
/// does that), without parsing or allocating. `None` when the body is not an
/// object, has no such key, or ends first.
fn top_level_field<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut found = None;
    for_each_member(body, &mut |k, rest| {
        if k == key {
            found = Some(rest);
            Some(ControlFlow::Break(()))
        } else {
            value_end(rest, 0).map(ControlFlow::Continue)
        }
    })?;
    found
}

/// Walks the members of the JSON object `body`, in order, in one pass that
/// follows strings and nesting: `visit` gets each raw key (as written between
/// its quotes) and the body from that member's value on, and answers with where
/// the value ends in it (see [`value_end`]) to go on, or stops. Where the walk
/// ended: just past the object's closing brace, or where the value `visit`
/// stopped at starts. `None` when `body` is not an object, when `visit` finds no
/// value, or when the body ends before `visit` stopped or the object closed.
///
/// One copy for both readers, `visit` called through a reference: inlined into
/// each, the walk ran about 80 fewer instructions a call but took 13 more
/// instruction-cache lines, and on the metered path a line fetched from the
/// outer caches costs about as much as a hundred instructions (see
/// `benches/README.md`).
#[inline(never)]
fn for_each_member<'a>(
    body: &'a [u8],
    visit: &mut dyn FnMut(&'a [u8], &'a [u8]) -> Option<ControlFlow<(), usize>>,
) -> Option<usize> {
    let mut i = skip_whitespace(body, 0)?;
    if body[i] != b'{' {
        return None;
    }
    i = skip_whitespace(body, i + 1)?;
    if body[i] == b'}' {
        return Some(i + 1);
    }
    loop {
        if body[i] != b'"' {
            return None;
        }
        let key_end = string_end(body, i + 1)?;
        let colon = skip_whitespace(body, key_end + 1)?;
        if body[colon] != b':' {
            return None;
        }
        let end = match visit(&body[i + 1..key_end], &body[colon + 1..])? {
            ControlFlow::Break(()) => return Some(colon + 1),
            ControlFlow::Continue(len) => colon + 1 + len,
        };
        i = skip_whitespace(body, end)?;
        match body[i] {
            b',' => i = skip_whitespace(body, i + 1)?,
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The index of the first non-whitespace byte at or after `start`.
fn skip_whitespace(body: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while body.get(i)?.is_ascii_whitespace() {
        i += 1;
    }
    Some(i)
}

/// The index of the quote closing the string whose contents start at `start`.
/// Short strings without escapes (keys, most values) are found inline, a word at
/// a time; the rest goes to [`escaped_or_long_string_end`].
#[inline(always)]
fn string_end(body: &[u8], start: usize) -> Option<usize> {
    let rest = body.get(start..)?;
    let short = rest.len().min(SHORT_STRING);
    match quote_or_backslash(&rest[..short]) {
        Some(n) if rest[n] == b'"' => Some(start + n),
        // An escape: the search goes on past it, not from the start again.
        Some(n) => escaped_or_long_string_end(body, start + n + 2),
        None => escaped_or_long_string_end(body, start + short),
    }
}

/// [`string_end`] for longer strings and strings with escapes, from `from` (past
/// what was searched already): [`SHORT_STRING`] bytes (and those after each
/// escape) a word at a time, the rest (the generated text, most of a response)
/// with SIMD.
#[inline(never)]
fn escaped_or_long_string_end(body: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let rest = body.get(i..)?;
        let short = rest.len().min(SHORT_STRING);
        i += match quote_or_backslash(&rest[..short]) {
            Some(n) => n,
            None => short + memchr::memchr2(b'"', b'\\', &rest[short..])?,
        };
        if body[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

/// The index of the first `"` or `\` in `s`, eight bytes at a time (SWAR): most
/// keys and short values end within a word or two.
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    let (words, _) = s.as_chunks::<8>();
    for (n, word) in words.iter().enumerate() {
        if let Some(at) = quote_or_backslash_in(word) {
            return Some(n * 8 + at);
        }
    }
    // The bytes past the last whole word: the word that ends `s` (its first
    // bytes, already searched, are neither), or one by one in a short `s`.
    match s.last_chunk::<8>() {
        Some(word) => quote_or_backslash_in(word).map(|at| s.len() - 8 + at),
        None => s.iter().position(|b| matches!(b, b'"' | b'\\')),
    }
}

/// [`quote_or_backslash`] in one word.
fn quote_or_backslash_in(word: &[u8; 8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let w = u64::from_le_bytes(*word);
    let (q, b) = (w ^ (ONES * u64::from(b'"')), w ^ (ONES * u64::from(b'\\')));
    // The high bit of each zero byte of `q` or `b` (exact up to the first one,
    // which is all that is used).
    let found = ((q.wrapping_sub(ONES) & !q) | (b.wrapping_sub(ONES) & !b)) & HIGH;
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

/// Bytes of a string searched a word at a time before the rest is searched with SIMD.
const SHORT_STRING: usize = 32;

/// The end (exclusive) of the JSON value starting at `start` (after whitespace):
/// past its closing bracket, or at the `,`/`}` that follows a scalar.
fn value_end(body: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = start;
    while i < body.len() {
        match body[i] {
            b'"' => i = string_end(body, i + 1)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(i),
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Cheap pre-check so that non-JSON bodies (images, CSV, ...) and JSON without
/// the marker field are not parsed at all.
fn looks_like_json_with(body: &[u8], field: &[u8]) -> bool {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    matches!(first, Some(b'{') | Some(b'[')) && memchr::memmem::find(body, field).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_top_level_usage_is_read() {
        // A `usage` key inside a choice or inside a string is not the response's.
        let body = br#"{"choices":[{"usage":{"prompt_tokens":1,"completion_tokens":1}}],
            "text":"\"usage\": {\"prompt_tokens\": 9}", "usage" : {"prompt_tokens":3,
            "completion_tokens":4}}"#;
        assert_eq!(detect_tokens(body), Some(TokenUsage::new(3, 4)));
        let nested_only = br#"{"choices":[{"usage":{"prompt_tokens":1,"completion_tokens":1}}]}"#;
        assert_eq!(OpenAiUsage.count(nested_only), None);
        for body in [
            &br#"{"usage":null}"#[..],
            br#"{"usage":"#,
            br#"{"usage" 5}"#,
            br#"[{"usage":{"prompt_tokens":1}}]"#,
            br#"{"usage":{"prompt_tokens":"many"}}"#,
        ] {
            assert_eq!(
                OpenAiUsage.count(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let rest = top_level_field(br#"{"a": [1, {"b": 2}], "k" : 17 }"#, b"k").unwrap();
        assert_eq!(rest, b" 17 }");
        assert_eq!(&rest[..value_end(rest, 0).unwrap()], b" 17 ");
    }

    #[test]
    fn a_usage_given_twice_is_unreadable() {
        // serde_json's Value keeps the last, a streaming reader the first: neither
        // is the count.
        let twice = br#"{"usage":{"prompt_tokens":1,"completion_tokens":1},
            "choices":[], "usage":{"prompt_tokens":9,"completion_tokens":9}}"#;
        assert_eq!(detect_tokens(twice), None);
    }

    #[test]
    fn long_strings_with_escapes_anywhere_are_followed() {
        // Escaped quotes and backslashes before, at and past the bytes walked one by
        // one (then searched): none of them ends the string early.
        for at in 0..(3 * SHORT_STRING) {
            for escape in [r#"\""#, r"\\", r#"\\\""#] {
                let text = format!("{}{escape}{}", "x".repeat(at), "y".repeat(40));
                let body = format!(
                    r#"{{"choices":[{{"message":{{"content":"{text}","usage":1}}}}],"usage":{{"prompt_tokens":7,"completion_tokens":2}}}}"#
                );
                assert_eq!(
                    detect_tokens(body.as_bytes()),
                    Some(TokenUsage::new(7, 2)),
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn openai_usage_is_read_from_a_chat_completion() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],
            "usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,
            "prompt_tokens_details":{"cached_tokens":8}}}"#;
        // cached tokens are part of prompt_tokens: 12 input, not 20.
        assert_eq!(detect_tokens(body), Some(TokenUsage::new(12, 30)));
    }

    #[test]
    fn anthropic_input_counts_its_cached_prompt_tokens_once() {
        // Anthropic's input_tokens leave out cache writes and reads: the prompt was
        // 10 + 100 + 200 = 310 tokens.
        let body = br#"{"id":"msg","content":[{"type":"text","text":"hi"}],
            "usage":{"input_tokens":10,"output_tokens":5,
            "cache_creation_input_tokens":100,"cache_read_input_tokens":200}}"#;
        assert_eq!(detect_tokens(body), Some(TokenUsage::new(310, 5)));
        // A cache count given twice is unreadable, as any count given twice.
        let twice = br#"{"usage":{"input_tokens":1,"output_tokens":1,
            "cache_read_input_tokens":2,"cache_read_input_tokens":3}}"#;
        assert_eq!(detect_tokens(twice), None);
        // The stream: message_start carries the input in `message.usage`
        // (10 + 200 read from the cache), message_delta the output (15).
        let mut stream = StreamTokens::new();
        stream.push(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\
              \"content\":[],\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":200,\
              \"output_tokens\":1}}}\n\n",
        );
        stream.push(
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\
              \"usage\":{\"output_tokens\":15}}\n\n",
        );
        assert_eq!(stream.finish(), Some(TokenUsage::new(210, 15)));
    }

    #[test]
    fn tgi_details_are_read_from_an_array_or_an_object() {
        let array =
            br#"[{"generated_text":"x","details":{"finish_reason":"length","generated_tokens":7,
            "prefill":[{"id":1},{"id":2},{"id":3}]}}]"#;
        assert_eq!(detect_tokens(array), Some(TokenUsage::new(3, 7)));
        let object = br#"{"generated_text":"x","details":{"generated_tokens":5}}"#;
        assert_eq!(
            detect_tokens(object),
            Some(TokenUsage {
                input: None,
                output: Some(5)
            })
        );
    }

    #[test]
    fn tgi_batches_are_summed_and_other_json_is_not_read_as_tgi() {
        // A batch of two generations (leading whitespace before the array): 2 + 1
        // prefill tokens in, 4 + 6 generated out.
        let batch = br#"
            [{"generated_text":"a","details":{"generated_tokens":4,"prefill":[{},{}]}},
             {"generated_text":"b","details":{"generated_tokens":6,"prefill":[{}]}}]"#;
        assert_eq!(detect_tokens(batch), Some(TokenUsage::new(3, 10)));
        // A generation without prefill or input_length: 4 + 6 out, the batch's
        // input unknown (the second's is not 0); one without details: both unknown.
        let partly = br#"[{"details":{"generated_tokens":4,"input_length":2}},
                          {"details":{"generated_tokens":6}}]"#;
        assert_eq!(
            detect_tokens(partly),
            Some(TokenUsage {
                input: None,
                output: Some(10)
            })
        );
        let undetailed = br#"[{"details":{"generated_tokens":4,"input_length":2}},
                              {"generated_text":"b"}]"#;
        assert_eq!(TgiDetails.count(undetailed), None);
        // `details` only inside text, or an element that is not a generation: none.
        for body in [
            &br#"{"predictions":[{"text":"see details"}]}"#[..],
            br#"[{"text":"details"}, 3]"#,
            br#"[{"details":{"generated_tokens":1}}] trailing"#,
            br#"{"details":{"generated_tokens":"x"}}"#,
        ] {
            assert_eq!(
                TgiDetails.count(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_lines_are_the_sum_of_their_lines_or_unknown() {
        // Two lines with usage {5, 3} and {7, 4}: 5 + 7 = 12 in, 3 + 4 = 7 out (not
        // the first line's 5 and 3).
        let lines = b"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\
                      {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":4}}\n";
        assert_eq!(detect_tokens(lines), Some(TokenUsage::new(12, 7)));
        // TGI-shaped lines likewise: 2 + 3 generated; the input only the first
        // line reports (1 prompt token) is unknown for the body, not 1.
        let tgi = b"{\"details\":{\"generated_tokens\":2,\"prefill\":[{}]}}\r\n\
                    {\"details\":{\"generated_tokens\":3}}";
        assert_eq!(
            detect_tokens(tgi),
            Some(TokenUsage {
                input: None,
                output: Some(5)
            })
        );
        // A usage line {5 in, 3 out} and a TGI line with 4 out and no input: 3 + 4
        // = 7 out; the second line's input is unknown, so the sum's is.
        let mixed = b"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\
                      {\"details\":{\"generated_tokens\":4}}";
        assert_eq!(
            detect_tokens(mixed),
            Some(TokenUsage {
                input: None,
                output: Some(7)
            })
        );
        // A line that reports nothing, or is not one JSON value, makes it unknown;
        // so does anything after a single value.
        for body in [
            &b"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n{\"text\":\"x\"}"[..],
            b"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\nnot json",
            b"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}} trailing",
            b"{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}{\"usage\":{}}",
        ] {
            assert_eq!(
                detect_tokens(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Pretty-printed JSON is one value, whatever its lines.
        let pretty =
            b"{\n  \"usage\": {\n    \"prompt_tokens\": 2,\n    \"completion_tokens\": 1\n  }\n}\n";
        assert_eq!(detect_tokens(pretty), Some(TokenUsage::new(2, 1)));
    }

    #[test]
    fn tgi_best_of_counts_every_sequence_generated() {
        // best_of 3: the chosen sequence's 20 tokens, and the other two's 15 and 5
        // (each with the same 4-token prompt, read once): 20 + 15 + 5 = 40 out.
        let body = br#"[{"generated_text":"x","details":{"generated_tokens":20,
            "prefill":[{},{},{},{}],"best_of_sequences":[
            {"generated_text":"y","generated_tokens":15,"prefill":[{},{},{},{}]},
            {"generated_text":"z","generated_tokens":5,"prefill":[{},{},{},{}]}]}}]"#;
        assert_eq!(detect_tokens(body), Some(TokenUsage::new(4, 40)));
    }

    #[test]
    fn tgi_null_prefill_or_best_of_sequences_are_absent_not_unreadable() {
        // TGI writes `"best_of_sequences": null` without best_of and some servers
        // `"prefill": null` without decoder_input_details: nothing, not an
        // unreadable answer. One prefill token in, 5 generated out.
        let best_of_null = br#"{"generated_text":"hi","details":{"finish_reason":"length","generated_tokens":5,"seed":null,"prefill":[{"id":1,"text":"<s>","logprob":null}],"tokens":[],"best_of_sequences":null}}"#;
        assert_eq!(detect_tokens(best_of_null), Some(TokenUsage::new(1, 5)));
        // No prefill: the prompt's 3 tokens from input_length, 5 out.
        let prefill_null =
            br#"{"generated_text":"hi","details":{"generated_tokens":5,"prefill":null,"input_length":3}}"#;
        assert_eq!(detect_tokens(prefill_null), Some(TokenUsage::new(3, 5)));
        // The same in a batch: 1 + 3 in, 5 + 5 out.
        let mut batch = b"[".to_vec();
        batch.extend_from_slice(best_of_null);
        batch.push(b',');
        batch.extend_from_slice(prefill_null);
        batch.push(b']');
        assert_eq!(detect_tokens(&batch), Some(TokenUsage::new(4, 10)));
        // A best_of_sequences that is neither an array nor null stays unreadable.
        let odd = br#"{"details":{"generated_tokens":5,"input_length":3,"best_of_sequences":3}}"#;
        assert_eq!(detect_tokens(odd), None);
    }

    #[test]
    fn tgi_best_of_sequences_are_summed_without_keeping_them() {
        // A million other sequences of 1 token each and the chosen one's 1 token:
        // 1,000,000 + 1 = 1,000,001 out (no prompt count: input unknown).
        let entries = 1_000_000;
        let mut body = String::from(r#"{"details":{"generated_tokens":1,"best_of_sequences":["#);
        for i in 0..entries {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"generated_tokens":1}"#);
        }
        body.push_str("]}}");
        let (usage, peak) =
            crate::test_alloc::peak_held_during(|| TgiDetails.count(body.as_bytes()));
        let usage = usage.unwrap();
        assert_eq!(usage.output, Some(1_000_001));
        assert_eq!(usage.input, None);
        // Kept whole, the sequences alone took 16 bytes each: 16 MB at the least.
        assert!(
            peak < 4 * 1024 * 1024,
            "reading {} bytes held up to {peak} bytes at once",
            body.len()
        );
        // A sequence without its count leaves the output unknown, as before.
        let missing = br#"{"details":{"generated_tokens":1,"prefill":[{}],
            "best_of_sequences":[{"generated_tokens":2},{}]}}"#;
        assert_eq!(
            TgiDetails.count(missing),
            Some(TokenUsage {
                input: Some(1),
                output: None
            })
        );
    }

    #[test]
    fn bodies_without_token_information_give_none() {
        assert_eq!(detect_tokens(b""), None);
        assert_eq!(detect_tokens(b"1,2,3"), None);
        assert_eq!(detect_tokens(br#"{"predictions":[0.1]}"#), None);
        assert_eq!(detect_tokens(br#"{"usage": "lots"}"#), None);
        assert_eq!(detect_tokens(br#"{"usage": {"#), None);
    }

    /// Arbitrary JSON, nested, with keys that collide at every depth and strings
    /// that look like keys.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            r#"[a-z"\\{}\[\]:, ]{0,12}"#.prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("usage|a|b|\"usage\"|x", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What a JSON parser makes of a `usage` object, for comparison.
    fn serde_openai_usage(usage: &[u8]) -> Option<TokenUsage> {
        #[derive(Deserialize)]
        struct Reference {
            prompt_tokens: Option<u64>,
            completion_tokens: Option<u64>,
            input_tokens: Option<u64>,
            output_tokens: Option<u64>,
        }
        let r: Reference = serde_json::from_slice(usage).ok()?;
        let usage = TokenUsage {
            input: r.prompt_tokens.or(r.input_tokens),
            output: r.completion_tokens.or(r.output_tokens),
        };
        (!usage.is_empty()).then_some(usage)
    }

    fn usage_key() -> impl proptest::strategy::Strategy<Value = String> {
        "prompt_tokens|completion_tokens|input_tokens|output_tokens|total_tokens|prompt_tokens_details"
    }

    /// Counts as servers write them, and values a count must not be read from.
    fn usage_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("0".to_owned()),
            Just("\"12\"".to_owned()),
            Just("-3".to_owned()),
            Just("2.5".to_owned()),
            Just("1e3".to_owned()),
            Just("18446744073709551616".to_owned()),
            json_value().prop_map(|v| v.to_string()),
        ]
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = detect_tokens(&body);
        }

        #[test]
        fn usage_objects_with_any_numbers_are_read_back(p in 0u64..u64::MAX, c in 0u64..u64::MAX) {
            let body = format!(r#"{{"usage":{{"prompt_tokens":{p},"completion_tokens":{c}}}}}"#);
            proptest::prop_assert_eq!(detect_tokens(body.as_bytes()), Some(TokenUsage::new(p, c)));
        }

        #[test]
        fn the_scanner_finds_what_a_json_parser_finds(value in json_value()) {
            // Any JSON document: the field found by the one-pass scanner is the one
            // serde_json sees at the top level, and only that one.
            let body = serde_json::to_vec_pretty(&value).unwrap();
            for key in ["usage", "a", "b"] {
                let expected = value.as_object().and_then(|o| o.get(key));
                let found = top_level_field(&body, key.as_bytes()).map(|rest| {
                    let raw = &rest[..value_end(rest, 0).unwrap()];
                    serde_json::from_slice::<serde_json::Value>(raw).unwrap()
                });
                proptest::prop_assert_eq!(found.as_ref(), expected);
            }
        }

        #[test]
        fn usage_objects_are_read_as_a_json_parser_reads_them(
            members in proptest::collection::vec((usage_key(), usage_value()), 0..6),
            spaced in proptest::bool::ANY,
        ) {
            // Any `usage` object, duplicate members included: the in-place reader
            // gives what deserialising it with serde gives.
            let sep = if spaced { " , " } else { "," };
            let text = members
                .iter()
                .map(|(k, v)| format!("\"{k}\"{}:{v}", if spaced { " " } else { "" }))
                .collect::<Vec<_>>()
                .join(sep);
            let usage = format!("{{{text}}}");
            proptest::prop_assert_eq!(openai_usage(usage.as_bytes()), serde_openai_usage(usage.as_bytes()));
        }

        #[test]
        fn json_like_noise_never_panics(s in r#"[\[\]{}":,0-9a-z_ .-]{0,200}"#) {
            let _ = detect_tokens(s.as_bytes());
            let _ = detect_tokens(format!(r#"{{"usage":{s}"#).as_bytes());
            let _ = detect_tokens(format!(r#"[{{"details":{s}}}]"#).as_bytes());
        }
    }

    fn stream_of(parts: &[&[u8]]) -> Option<TokenUsage> {
        let mut tokens = StreamTokens::new();
        for part in parts {
            tokens.push(part);
        }
        tokens.finish()
    }

    #[test]
    fn openai_usage_in_the_last_sse_chunk_is_read_across_part_boundaries() {
        let stream =
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\r\n\r\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\r\n\r\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\
            \"prompt_tokens_details\":{\"cached_tokens\":8}}}\r\n\r\ndata: [DONE]\r\n\r\n";
        // Every split point gives the same answer: 12 input (8 cached among them), 2 output.
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                stream_of(&[a, b]),
                Some(TokenUsage::new(12, 2)),
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(stream_of(&bytes), Some(TokenUsage::new(12, 2)));
    }

    #[test]
    fn running_usage_reports_replace_each_other_instead_of_adding_up() {
        // vLLM `continuous_usage_stats`: cumulative usage on every chunk.
        let tokens = stream_of(&[
            b"data: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\n",
            b"data: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n",
            b"data: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n",
        ]);
        assert_eq!(tokens, Some(TokenUsage::new(7, 3)));
    }

    #[test]
    fn tgi_streamed_details_in_the_last_event_are_read() {
        let tokens = stream_of(&[
            b"data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"a\"},\"generated_text\":null,\"details\":null}\n\n",
            b"data:{\"index\":2,\"token\":{\"id\":2,\"text\":\"b\"},\"generated_text\":\"ab\",",
            b"\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2,\"input_length\":9}}\n\n",
        ]);
        assert_eq!(tokens, Some(TokenUsage::new(9, 2)));
    }

    #[test]
    fn tgi_streamed_details_with_null_members_are_read() {
        // The last event's details with null prefill and best_of_sequences: the
        // prompt's 9 tokens from input_length, 2 generated.
        let tokens = stream_of(&[
            b"data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"a\"},\"generated_text\":null,\"details\":null}\n\n",
            b"data:{\"index\":2,\"token\":{\"id\":2,\"text\":\"b\"},\"generated_text\":\"ab\",",
            b"\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2,\"input_length\":9,",
            b"\"seed\":null,\"prefill\":null,\"best_of_sequences\":null}}\n\n",
        ]);
        assert_eq!(tokens, Some(TokenUsage::new(9, 2)));
    }

    #[test]
    fn json_lines_without_a_trailing_newline_are_read() {
        // LMI jsonlines: the last line may end the stream without a newline.
        let tokens = stream_of(&[
            b"{\"token\":{\"text\":\"a\"}}\n",
            b"{\"token\":{\"text\":\"b\"},\"details\":{\"generated_tokens\":2}}",
        ]);
        assert_eq!(
            tokens,
            Some(TokenUsage {
                input: None,
                output: Some(2)
            })
        );
    }

    #[test]
    fn streams_without_token_information_give_none() {
        assert_eq!(stream_of(&[]), None);
        assert_eq!(stream_of(&[b"plain text tokens\n", b"more"]), None);
        assert_eq!(
            stream_of(&[b": keep-alive\n\nevent: ping\ndata: [DONE]\n\n"]),
            None
        );
    }

    #[test]
    fn done_is_the_done_line_once_its_newline_has_arrived_however_the_parts_split_it() {
        let mut tokens = StreamTokens::new();
        tokens.push(b"data: {\"choices\":[]}\n\ndata: [DO");
        assert!(!tokens.done());
        tokens.push(b"NE]");
        assert!(!tokens.done(), "the line may go on");
        tokens.push(b"\r\n\r\n");
        assert!(tokens.done());
        // So in a stream said to be server-sent events, parameters and case
        // aside.
        let mut tokens = StreamTokens::new().content_type(Some("Text/Event-Stream; charset=utf-8"));
        tokens.push(b"data: [DONE]\n\n");
        assert!(tokens.done());
        // Not a bare line: that is the model's text or a JSON lines stream's,
        // which may go on after it.
        let mut tokens = StreamTokens::new();
        tokens.push(b"{\"generated_text\":\"a\"}\n[DONE]\n");
        assert!(!tokens.done());
        // Not an event that only starts so, nor a comment, nor a plain-text
        // stream's line (the model's own text).
        let mut tokens = StreamTokens::new();
        tokens.push(b"data: [DONE] or not\n: [DONE]\ndata: \"[DONE]\"\n");
        assert!(!tokens.done());
        let mut tokens = StreamTokens::new().content_type(Some("text/plain"));
        tokens.push(b"data: [DONE]\n\n");
        assert!(!tokens.done());
    }

    #[test]
    fn a_done_line_in_a_stream_that_is_not_server_sent_events_is_no_end() {
        // A custom container streaming raw bytes, whose model writes `[DONE]`
        // on a line of its own and goes on.
        for content_type in [
            "application/octet-stream",
            "application/jsonlines",
            "application/json",
        ] {
            let mut tokens = StreamTokens::new().content_type(Some(content_type));
            tokens.push(b"Plan:\n[DONE]\nStep 2\n");
            assert!(!tokens.done(), "{content_type}");
            // Nor an SSE-looking line: the stream is not server-sent events.
            tokens.push(b"data: [DONE]\n\n");
            assert!(!tokens.done(), "{content_type}");
            tokens.finish();
            assert!(!tokens.done(), "{content_type}");
        }
        // Of no stated type, a `data: [DONE]` line is the marker (as an
        // OpenAI-compatible server sends it); a bare one is not.
        let mut tokens = StreamTokens::new().content_type(None);
        tokens.push(b"Plan:\n[DONE]\nStep 2\n");
        assert!(!tokens.done());
        tokens.push(b"data: [DONE]\n\n");
        assert!(tokens.done());
    }

    #[test]
    fn a_custom_counter_sees_each_event_without_the_sse_framing() {
        let counter = FnTokenCounter::new(|event: &[u8]| {
            assert!(!event.starts_with(b"data:") && event != b"[DONE]");
            let n = std::str::from_utf8(event).ok()?.trim().parse().ok()?;
            Some(TokenUsage::new(3, n))
        });
        let mut tokens = StreamTokens::with_counter(Arc::new(counter));
        tokens.push(b"data: 1\n\ndata: 2\n\nda");
        tokens.push(b"ta: 5\n\ndata: [DONE]\n\n");
        assert_eq!(tokens.finish(), Some(TokenUsage::new(3, 5)));
    }

    #[test]
    fn an_oversized_event_is_skipped_and_the_next_one_is_read() {
        let mut tokens = StreamTokens::new();
        tokens.push(b"data: {\"generated_text\":\"");
        let filler = vec![b'x'; 1 << 20];
        for _ in 0..5 {
            tokens.push(&filler);
        }
        // Nothing of the oversized event is kept.
        assert!(tokens.skipping && tokens.line.is_empty());
        tokens.push(b"\",\"details\":{\"generated_tokens\":1}}\n\n");
        tokens.push(b"data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n\n");
        assert_eq!(tokens.finish(), Some(TokenUsage::new(4, 6)));
    }

    #[test]
    fn an_event_too_long_once_its_last_part_arrives_is_skipped_whatever_the_split() {
        // 100 bytes short of the limit, then 1 MiB more and the newline: the whole
        // event is over 4 MiB, and is skipped, in two parts as in one.
        let mut event =
            b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1},\"pad\":\"".to_vec();
        event.resize(MAX_STREAM_EVENT_BYTES - 100, b'x');
        let mut tail = vec![b'x'; 1 << 20];
        tail.extend_from_slice(b"\"}\n");
        assert_eq!(stream_of(&[&event, &tail]), None);
        let whole = [event.as_slice(), tail.as_slice()].concat();
        assert_eq!(stream_of(&[&whole]), None);
        // Nothing is held once it is skipped, and the next event is read.
        let mut tokens = StreamTokens::new();
        tokens.push(&event);
        tokens.push(&tail);
        assert!(tokens.line.is_empty());
        tokens.push(b"data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n\n");
        assert_eq!(tokens.finish(), Some(TokenUsage::new(4, 6)));
    }

    #[test]
    fn a_plain_text_stream_reports_no_tokens_even_when_the_model_writes_a_usage_line() {
        let reply: &[u8] = b"Example reply:\n{\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":999999999}}\nbye";
        for content_type in ["text/plain", "text/plain; charset=utf-8", "Text/Plain"] {
            let mut tokens = StreamTokens::new().content_type(Some(content_type));
            tokens.push(reply);
            assert_eq!(tokens.finish(), None, "{content_type}");
        }
        // A counter of the user's is given the whole text, once, however it was
        // split: "Example reply:" 14 bytes, the usage line 59, "bye" 3, and two
        // newlines make 78 bytes; at one token per 4 bytes (rounded down), 19.
        let counter = Arc::new(FnTokenCounter::new(|b: &[u8]| {
            Some(TokenUsage::new(0, b.len() as u64 / 4))
        }));
        let mut tokens = StreamTokens::with_counter(counter).content_type(Some("text/plain"));
        let (head, tail) = reply.split_at(20);
        tokens.push(head);
        tokens.push(tail);
        assert_eq!(tokens.finish(), Some(TokenUsage::new(0, 19)));
        // The same lines in a JSON lines stream, or one of no stated type, are read.
        for content_type in [Some("application/jsonlines"), None] {
            let mut tokens = StreamTokens::new().content_type(content_type);
            tokens.push(reply);
            assert_eq!(
                tokens.finish(),
                Some(TokenUsage::new(0, 999_999_999)),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn the_responses_api_usage_is_read_from_its_completed_event() {
        // OpenAI Responses API streaming: the last event, `response.completed`,
        // carries the response object with `usage` in it.
        let tokens = stream_of(&[
            b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
            b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\
              \"output\":[],\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\
              \"output_tokens\":3,\"total_tokens\":14}},\"sequence_number\":9}\n\n",
        ]);
        assert_eq!(tokens, Some(TokenUsage::new(11, 3)));
        // A top-level `usage` is the one read when both are there.
        let body = br#"{"response":{"usage":{"input_tokens":1,"output_tokens":1}},"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        assert_eq!(detect_tokens(body), Some(TokenUsage::new(5, 2)));
    }
}
