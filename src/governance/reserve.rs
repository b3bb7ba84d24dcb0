//! The worst case a request may cost, reserved before its call: its estimated prompt tokens,
//! plus the most it may generate (`max_tokens`, else the model's own maximum output, else the
//! configured fallback), priced at the dearest of its candidate targets. A prompt billed as a
//! cache write (dearer than plain input for some providers) is priced that way if it is dearer.

use crate::config::Target;
use crate::dialect::Endpoint;
use crate::proxy::GatewayState;
use crate::usage::{estimate_usage, OutputText, Usage};
use rust_decimal::Decimal;

/// Bodies up to this size are estimated on the request's own thread (tens of microseconds);
/// larger ones on the blocking pool.
pub const INLINE_ESTIMATE_BYTES: usize = 16 * 1024;

/// A request's worst case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worst {
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// The dearest candidate's cost; `None` when some candidate has no price.
    pub cost: Option<Decimal>,
    /// The first candidate without a price (`provider/model`), if any.
    pub unpriced: Option<String>,
}

impl Worst {
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.output_tokens)
    }
}

/// The model's own ceiling on output tokens at `target`. The pricing capability table feeds
/// this (`PriceBook::capabilities(provider, model).max_output_tokens`); a target it does not
/// know returns `None`, and the `[limits] max_output_tokens` fallback is reserved instead.
pub fn max_output_tokens(gw: &GatewayState, target: &Target) -> Option<u32> {
    let provider = gw.config.providers.get(target.provider)?;
    gw.config
        .pricing
        .capabilities(provider, &target.model)?
        .max_output_tokens
}

#[derive(serde::Deserialize)]
struct OutputCaps {
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

/// Gemini's output limit (the SDK sends either spelling).
#[derive(serde::Deserialize)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
}

/// The output limit the request itself sets (OpenAI `max_completion_tokens` / `max_tokens`,
/// Anthropic `max_tokens`, Responses `max_output_tokens`, Gemini
/// `generationConfig.maxOutputTokens`).
pub fn requested_output(body: &[u8]) -> Option<u64> {
    let caps: OutputCaps = serde_json::from_slice(body).ok()?;
    caps.max_completion_tokens
        .or(caps.max_tokens)
        .or(caps.max_output_tokens)
        .or(caps.generation_config.and_then(|g| g.max_output_tokens))
}

/// Estimated prompt tokens of a request body (the tokenizer the ledger's estimates use).
pub fn prompt_tokens(body: &[u8]) -> u64 {
    estimate_usage(body, &OutputText::default()).input
}

/// Prompt tokens, estimated off the request's thread when the body is large.
pub async fn prompt_tokens_async(body: bytes::Bytes) -> u64 {
    if body.len() <= INLINE_ESTIMATE_BYTES {
        return prompt_tokens(&body);
    }
    match tokio::task::spawn_blocking(move || prompt_tokens(&body)).await {
        Ok(n) => n,
        Err(e) => {
            log::error!("prompt estimate failed: {e}");
            u64::MAX / 4
        }
    }
}

/// The worst case over `candidates`, with `prompt` estimated tokens.
pub fn worst_case(
    gw: &GatewayState,
    endpoint: Endpoint,
    body: &[u8],
    candidates: &[Target],
    prompt: u64,
) -> Worst {
    let asked = requested_output(body);
    let fallback = u64::from(gw.config.limits.max_output_tokens);
    let output = if endpoint == Endpoint::Embeddings {
        0
    } else {
        candidates
            .iter()
            .map(|t| match (asked, max_output_tokens(gw, t).map(u64::from)) {
                (Some(a), Some(cap)) => a.min(cap),
                (Some(a), None) => a,
                (None, Some(cap)) => cap,
                (None, None) => fallback,
            })
            .max()
            .unwrap_or(asked.unwrap_or(fallback))
    };
    let mut worst = Worst {
        prompt_tokens: prompt,
        output_tokens: output,
        cost: Some(Decimal::ZERO),
        unpriced: None,
    };
    for t in candidates {
        let provider = &gw.config.providers[t.provider];
        let price = gw.config.pricing.lookup(provider, &t.model);
        let as_input = Usage {
            input: prompt,
            output,
            ..Usage::default()
        };
        let as_write = Usage {
            cache_write: prompt,
            output,
            ..Usage::default()
        };
        let cost = price.and_then(|p| {
            let a = p.cost(&as_input).map(|c| c.total);
            let b = p.cost(&as_write).map(|c| c.total);
            match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
        });
        match (cost, worst.cost) {
            (Some(c), Some(w)) => worst.cost = Some(w.max(c)),
            (None, _) => {
                worst.cost = None;
                worst
                    .unpriced
                    .get_or_insert_with(|| format!("{}/{}", provider.name, t.model));
            }
            (Some(_), None) => {}
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_sets_its_output_limit() {
        assert_eq!(requested_output(br#"{"max_tokens":50}"#), Some(50));
        assert_eq!(
            requested_output(br#"{"max_tokens":50,"max_completion_tokens":20}"#),
            Some(20)
        );
        assert_eq!(requested_output(br#"{"max_output_tokens":7}"#), Some(7));
        let gemini = br#"{"contents":[],"generationConfig":{"maxOutputTokens":9}}"#;
        assert_eq!(requested_output(gemini), Some(9));
        let snake = br#"{"contents":[],"generation_config":{"max_output_tokens":11}}"#;
        assert_eq!(requested_output(snake), Some(11));
        assert_eq!(requested_output(br#"{"messages":[]}"#), None);
        assert!(prompt_tokens(br#"{"messages":[{"role":"user","content":"a b c d e f"}]}"#) >= 6);
    }
}
