//! Gemini (native `generateContent` / `streamGenerateContent`) usage.
//!
//! Every response, and every streamed chunk (SSE `data: {…}` events with `alt=sse`, else the
//! elements of a streamed JSON array), may carry `usageMetadata`; the last one with a token
//! count wins (Vertex sends `{"trafficType": …}` alone on early chunks, which is skipped).
//!
//! Normalisation: `input = promptTokenCount - cachedContentTokenCount` (saturating) `+
//! toolUsePromptTokenCount`, `cached_input = cachedContentTokenCount`, `output =
//! candidatesTokenCount + thoughtsTokenCount`, `reasoning = thoughtsTokenCount`. A candidate
//! with a `finishReason` ends the stream; usage counts as final only then (a stream cut
//! earlier has partial usage, which the tally's estimate builds on).

use serde_json::Value;

use super::estimate::OutputText;
use super::{count, Usage};

/// Normalises one `usageMetadata` object; `None` unless it has a token count.
pub(crate) fn usage_from(u: &Value) -> Option<Usage> {
    let prompt = count(u, "promptTokenCount");
    let candidates = count(u, "candidatesTokenCount");
    let cached = count(u, "cachedContentTokenCount");
    let thoughts = count(u, "thoughtsTokenCount");
    let tool_prompt = count(u, "toolUsePromptTokenCount");
    if [prompt, candidates, cached, thoughts, tool_prompt]
        .iter()
        .all(Option::is_none)
    {
        return None;
    }
    let cached = cached.unwrap_or(0);
    let thoughts = thoughts.unwrap_or(0);
    Some(Usage {
        input: prompt
            .unwrap_or(0)
            .saturating_sub(cached)
            .saturating_add(tool_prompt.unwrap_or(0)),
        output: candidates.unwrap_or(0).saturating_add(thoughts),
        cached_input: cached,
        cache_write: 0,
        reasoning: thoughts,
    })
}

/// Usage of a complete non-streaming response (or of a whole JSON-array stream: the last
/// element with usage).
pub(crate) fn body_usage(body: &Value) -> Option<Usage> {
    match body {
        Value::Array(items) => items.iter().rev().find_map(body_usage),
        _ => body.get("usageMetadata").and_then(usage_from),
    }
}

/// Generated text of a complete response (or of every element of a JSON-array stream).
pub(crate) fn body_text(body: &Value, out: &mut OutputText) {
    let mut ignored = GeminiStream::default();
    ignored.on_value(body, out);
}

/// Stream state for one Gemini stream.
#[derive(Debug, Default)]
pub(crate) struct GeminiStream {
    usage: Option<Usage>,
    done: bool,
}

impl GeminiStream {
    /// Reads one SSE event's data.
    pub(crate) fn on_data(&mut self, data: &str, out: &mut OutputText) {
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            self.on_value(&v, out);
        }
    }

    /// Reads one response chunk (an array of them is read in order).
    pub(crate) fn on_value(&mut self, v: &Value, out: &mut OutputText) {
        if let Value::Array(items) = v {
            items.iter().for_each(|i| self.on_value(i, out));
            return;
        }
        if let Some(u) = v.get("usageMetadata").and_then(usage_from) {
            self.usage = Some(u);
        }
        let Some(Value::Array(candidates)) = v.get("candidates") else {
            return;
        };
        for c in candidates {
            if let Some(Value::String(reason)) = c.get("finishReason") {
                if !reason.is_empty() && reason != "FINISH_REASON_UNSPECIFIED" {
                    self.done = true;
                    out.push_finish(c.get("finishReason"));
                }
            }
            let Some(Value::Array(parts)) = c.get("content").and_then(|c| c.get("parts")) else {
                continue;
            };
            for part in parts {
                if let Some(Value::String(s)) = part.get("text") {
                    out.push(s);
                }
                if let Some(args) = part.get("functionCall").and_then(|f| f.get("args")) {
                    out.push(&args.to_string());
                }
                if let Some(Value::String(code)) =
                    part.get("executableCode").and_then(|e| e.get("code"))
                {
                    out.push(code);
                }
            }
        }
    }

    /// The usage once the response finished (a `finishReason` was seen).
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage.filter(|_| self.done)
    }

    /// The last usage reported, final or not (counts so far on a cut stream).
    pub(crate) fn reported(&self) -> Option<Usage> {
        self.usage
    }

    pub(crate) fn done(&self) -> bool {
        self.done
    }
}
