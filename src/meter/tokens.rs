//! Token counts from response bodies.
//!
//! SageMaker does not report tokens; LLM containers put them in the body.
//! [`detect_tokens`] understands the common shapes (OpenAI-compatible `usage`,
//! Hugging Face TGI `details`); a [`TokenCounter`] lets users plug in their own.

use serde::{Deserialize, Serialize};
use std::fmt;
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
pub trait TokenCounter: fmt::Debug + Send + Sync {
    /// The tokens the body reports, or `None` when it does not say.
    /// Must not panic on any input.
    fn count(&self, body: &[u8]) -> Option<TokenUsage>;
}

/// OpenAI-compatible bodies (vLLM, LMI, TGI's Messages API, ...):
/// `{"usage": {"prompt_tokens": 12, "completion_tokens": 30}}`.
///
/// `prompt_tokens_details.cached_tokens` are already part of `prompt_tokens`
/// and are not added again.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct OpenAiUsage;

/// Hugging Face TGI bodies: `[{"generated_text": "...", "details": {"generated_tokens": 30,
/// "prefill": [...]}}]` (or the same object without the array). Input tokens are
/// the length of `prefill` when the request asked for `decoder_input_details`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TgiDetails;

/// A token counter from a closure.
///
/// ```
/// use sagemeter::meter::{FnTokenCounter, TokenCounter, TokenUsage};
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

#[derive(Deserialize)]
struct OpenAiBody {
    usage: Option<OpenAiUsageObject>,
}

#[derive(Deserialize)]
struct OpenAiUsageObject {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    // Some servers (and the Responses API) use these names.
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl TokenCounter for OpenAiUsage {
    fn count(&self, body: &[u8]) -> Option<TokenUsage> {
        if !looks_like_json_with(body, b"usage") {
            return None;
        }
        let parsed: OpenAiBody = serde_json::from_slice(body).ok()?;
        parsed.usage.and_then(usage_from_openai)
    }
}

fn usage_from_openai(u: OpenAiUsageObject) -> Option<TokenUsage> {
    let usage = TokenUsage {
        input: u.prompt_tokens.or(u.input_tokens),
        output: u.completion_tokens.or(u.output_tokens),
    };
    (!usage.is_empty()).then_some(usage)
}

#[derive(Deserialize)]
struct TgiGenerated {
    details: Option<TgiDetailsObject>,
}

#[derive(Deserialize)]
struct TgiDetailsObject {
    generated_tokens: Option<u64>,
    #[serde(default)]
    prefill: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TgiBody {
    Many(Vec<TgiGenerated>),
    One(TgiGenerated),
}

impl TokenCounter for TgiDetails {
    fn count(&self, body: &[u8]) -> Option<TokenUsage> {
        if !looks_like_json_with(body, b"details") {
            return None;
        }
        let generated = match serde_json::from_slice::<TgiBody>(body).ok()? {
            TgiBody::Many(v) => v,
            TgiBody::One(one) => vec![one],
        };
        let mut usage = TokenUsage::default();
        for details in generated.into_iter().filter_map(|g| g.details) {
            if let Some(n) = details.generated_tokens {
                usage.output = Some(usage.output.unwrap_or(0).saturating_add(n));
            }
            if !details.prefill.is_empty() {
                let n = details.prefill.len() as u64;
                usage.input = Some(usage.input.unwrap_or(0).saturating_add(n));
            }
        }
        (!usage.is_empty()).then_some(usage)
    }
}

/// The built-in detection used when no [`TokenCounter`] is configured: OpenAI-compatible
/// `usage` first, then TGI `details`.
pub fn detect_tokens(body: &[u8]) -> Option<TokenUsage> {
    OpenAiUsage.count(body).or_else(|| TgiDetails.count(body))
}

/// Cheap pre-check so that non-JSON bodies (images, CSV, ...) and JSON without
/// the marker field are not parsed at all.
fn looks_like_json_with(body: &[u8], field: &[u8]) -> bool {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    matches!(first, Some(b'{') | Some(b'[')) && body.windows(field.len()).any(|w| w == field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_usage_is_read_from_a_chat_completion() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],
            "usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,
            "prompt_tokens_details":{"cached_tokens":8}}}"#;
        // cached tokens are part of prompt_tokens: 12 input, not 20.
        assert_eq!(detect_tokens(body), Some(TokenUsage::new(12, 30)));
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
    fn bodies_without_token_information_give_none() {
        assert_eq!(detect_tokens(b""), None);
        assert_eq!(detect_tokens(b"1,2,3"), None);
        assert_eq!(detect_tokens(br#"{"predictions":[0.1]}"#), None);
        assert_eq!(detect_tokens(br#"{"usage": "lots"}"#), None);
        assert_eq!(detect_tokens(br#"{"usage": {"#), None);
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
        fn json_like_noise_never_panics(s in r#"[\[\]{}":,0-9a-z_ .-]{0,200}"#) {
            let _ = detect_tokens(s.as_bytes());
            let _ = detect_tokens(format!(r#"{{"usage":{s}"#).as_bytes());
            let _ = detect_tokens(format!(r#"[{{"details":{s}}}]"#).as_bytes());
        }
    }
}
