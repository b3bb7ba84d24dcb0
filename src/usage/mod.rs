//! Token usage: read from every provider response, streamed or not.
//!
//! All dialects are normalised into one [`Usage`], with each kind of token kept apart and
//! counted once, so that pricing can charge each at its own rate:
//! - `input`: prompt tokens billed at the normal input rate. OpenAI's `prompt_tokens` and
//!   Gemini's `promptTokenCount` *include* cached tokens, so those are subtracted; Anthropic's
//!   `input_tokens` already excludes cache reads and writes. Gemini's `toolUsePromptTokenCount`
//!   (tool results fed back to the model, billed as input) is added.
//! - `cached_input`: prompt tokens read from the provider's prompt cache (OpenAI
//!   `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`, Gemini
//!   `cachedContentTokenCount`).
//! - `cache_write`: prompt tokens written to the cache (Anthropic `cache_creation_input_tokens`).
//! - `output`: every generated token billed at the output rate, reasoning included (OpenAI
//!   `completion_tokens` already includes reasoning; Gemini's `candidatesTokenCount` does not,
//!   so `thoughtsTokenCount` is added).
//! - `reasoning`: the reasoning/thinking part of `output` (informational, not billed twice).
//!
//! Files:
//! - [`sse`]: incremental, chunk-boundary-proof Server-Sent Events parser.
//! - [`tally`]: [`StreamTally`], the per-request object the proxy feeds body chunks to; it
//!   reads usage and, when asked, strips OpenAI's usage-only chunk from the client stream.
//! - [`estimate`]: token estimates (tiktoken `o200k_base`) for responses without usage.
//! - `openai`, `anthropic`, `gemini`, `responses`: per-dialect extraction from bodies and
//!   stream events.
//! - `json_array`: incremental splitter for Gemini's JSON-array stream framing.

use serde::{Deserialize, Serialize};

pub(crate) mod anthropic;
pub mod estimate;
pub(crate) mod gemini;
mod json_array;
pub(crate) mod openai;
mod openai_chunk;
pub(crate) mod responses;
pub mod sse;
pub mod tally;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tests;

pub use estimate::{estimate_tokens, estimate_usage, preload_tokenizer, OutputText};
pub use sse::{SseEvent, SseParser};
pub use tally::{usage_from_body, StreamTally};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Usage {
    /// Every token counted once: `input + cached_input + cache_write + output`
    /// (`reasoning` is part of `output`).
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_write)
            .saturating_add(self.output)
    }
}

/// Reads a token count from `obj[key]`, leniently: a non-negative integer, a non-negative
/// finite float (truncated) or a decimal string. Anything else (missing, null, negative,
/// other types) is `None`.
pub(crate) fn count(obj: &serde_json::Value, key: &str) -> Option<u64> {
    use serde_json::Value;
    match obj.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                // Saturating float-to-int conversion; counts never get near 2^64.
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}
