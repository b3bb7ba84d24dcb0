//! OpenAI Chat Completions usage (and OpenAI-compatible providers).
//!
//! Non-streaming: the body's `usage` object. Streaming (`chat.completion.chunk` events): with
//! `stream_options.include_usage`, OpenAI sends `"usage": null` on every chunk and the totals
//! on one extra chunk whose `choices` is `[]`, just before `data: [DONE]`. Some compatible
//! providers put `usage` on the final choice chunk instead, and Groq puts it in
//! `x_groq.usage`; the last usage seen wins.
//!
//! Normalisation: `input = prompt_tokens - cached_tokens` (saturating), `cached_input =
//! prompt_tokens_details.cached_tokens` (or DeepSeek's `prompt_cache_hit_tokens`), `output =
//! completion_tokens` (reasoning included), `reasoning =
//! completion_tokens_details.reasoning_tokens`.

use serde_json::value::RawValue;
use serde_json::Value;

use super::estimate::OutputText;
use super::openai_chunk::{is_null, text, Chunk};
use super::sse::SseEvent;
use super::{count, Usage};

/// Normalises one OpenAI `usage` object; `None` unless it has a token count.
pub(crate) fn usage_from(u: &Value) -> Option<Usage> {
    let prompt = count(u, "prompt_tokens");
    let completion = count(u, "completion_tokens");
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    let prompt = prompt.unwrap_or(0);
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| count(d, "cached_tokens"))
        .or_else(|| count(u, "prompt_cache_hit_tokens"))
        .unwrap_or(0);
    let reasoning = u
        .get("completion_tokens_details")
        .and_then(|d| count(d, "reasoning_tokens"))
        .unwrap_or(0);
    Some(Usage {
        input: prompt.saturating_sub(cached),
        output: completion.unwrap_or(0),
        cached_input: cached,
        cache_write: 0,
        reasoning,
    })
}

/// Usage carried by one response object or chunk: `usage`, else Groq's `x_groq.usage`.
pub(crate) fn usage_of(v: &Value) -> Option<Usage> {
    v.get("usage")
        .and_then(usage_from)
        .or_else(|| v.get("x_groq")?.get("usage").and_then(usage_from))
}

/// Usage of a complete non-streaming response.
pub(crate) fn body_usage(body: &Value) -> Option<Usage> {
    usage_of(body)
}

/// Generated text of a complete non-streaming response.
pub(crate) fn body_text(body: &Value, out: &mut OutputText) {
    for choice in array(body.get("choices")) {
        if let Some(m) = choice.get("message") {
            message_text(m, out);
        }
        out.push_finish(choice.get("finish_reason"));
        // Legacy completions.
        push_str(choice.get("text"), out);
    }
}

/// Text of a `message` or a stream `delta`: content, reasoning, refusal, tool arguments.
fn message_text(m: &Value, out: &mut OutputText) {
    for key in ["content", "reasoning_content", "reasoning", "refusal"] {
        push_str(m.get(key), out);
    }
    for call in array(m.get("tool_calls")) {
        push_str(call.get("function").and_then(|f| f.get("arguments")), out);
    }
    push_str(m.get("function_call").and_then(|f| f.get("arguments")), out);
}

fn push_str(v: Option<&Value>, out: &mut OutputText) {
    if let Some(Value::String(s)) = v {
        out.push(s);
    }
}

fn push_text(raw: Option<&RawValue>, out: &mut OutputText) {
    if let Some(t) = text(raw) {
        out.push(&t);
    }
}

fn array(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// Top-level keys a usage-only chunk may carry besides `choices` and `usage`: metadata, not
/// content. A chunk with any other key is never stripped.
const USAGE_CHUNK_KEYS: &[&str] = &[
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
    "service_tier",
    "obfuscation",
    "provider",
    "choices",
    "usage",
];

/// Stream state for one OpenAI chat stream.
#[derive(Debug, Default)]
pub(crate) struct OpenAiStream {
    usage: Option<Usage>,
    done: bool,
}

impl OpenAiStream {
    /// Reads one event. Returns `true` when it is the usage-only chunk (a plain `data:`
    /// event whose `choices` is `[]`, with a `usage` object and only metadata besides).
    pub(crate) fn on_event(&mut self, ev: &SseEvent, out: &mut OutputText) -> bool {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return false;
        }
        if !data.starts_with('{') {
            return false;
        }
        if let Some(chunk) = Chunk::parse(data, USAGE_CHUNK_KEYS) {
            return self.on_chunk(ev, &chunk, out);
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return false;
        };
        if let Some(u) = usage_of(&v) {
            self.usage = Some(u);
        }
        for choice in array(v.get("choices")) {
            if let Some(d) = choice.get("delta") {
                message_text(d, out);
            }
            push_str(choice.get("text"), out);
            out.push_finish(choice.get("finish_reason"));
        }
        is_usage_only_chunk(ev, &v)
    }

    /// [`on_event`](Self::on_event) for a chunk read the typed way (the common case).
    fn on_chunk(&mut self, ev: &SseEvent, c: &Chunk<'_>, out: &mut OutputText) -> bool {
        let usage_object = c.usage.is_some_and(|u| u.get().starts_with('{'));
        if usage_object || !is_null(c.x_groq) {
            // Rare (once a stream): read as a tree.
            let tree = |raw: Option<&RawValue>| {
                raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
            };
            let found = tree(c.usage)
                .as_ref()
                .and_then(usage_from)
                .or_else(|| tree(c.x_groq)?.get("usage").and_then(usage_from));
            if let Some(u) = found {
                self.usage = Some(u);
            }
        }
        for choice in c.choices.iter().flatten() {
            if let Some(d) = &choice.delta {
                for piece in [d.content, d.reasoning_content, d.reasoning, d.refusal] {
                    push_text(piece, out);
                }
                for call in d.tool_calls.iter().flatten() {
                    push_text(call.function.as_ref().and_then(|f| f.arguments), out);
                }
                push_text(d.function_call.as_ref().and_then(|f| f.arguments), out);
            }
            push_text(choice.text, out);
            if let Some(r) = text(choice.finish_reason) {
                out.push_finish_str(&r);
            }
        }
        ev.event.as_deref().is_none_or(|e| e == "message")
            && c.choices.as_ref().is_some_and(Vec::is_empty)
            && usage_object
            && !c.other_keys
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub(crate) fn done(&self) -> bool {
        self.done
    }
}

fn is_usage_only_chunk(ev: &SseEvent, v: &Value) -> bool {
    if ev.event.as_deref().is_some_and(|e| e != "message") {
        return false;
    }
    let Value::Object(map) = v else {
        return false;
    };
    matches!(map.get("choices"), Some(Value::Array(c)) if c.is_empty())
        && matches!(map.get("usage"), Some(Value::Object(_)))
        && map.keys().all(|k| USAGE_CHUNK_KEYS.contains(&k.as_str()))
}
