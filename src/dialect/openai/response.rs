//! Complete (non-streamed) OpenAI responses both ways, plus what the stream codecs share with
//! them: finish-reason mapping, `usage` objects and `chatcmpl-` ids.
//!
//! Usage follows `usage/openai.rs`: `input = prompt_tokens - cached_tokens` (DeepSeek's
//! `prompt_cache_hit_tokens` as a fallback, Groq's `x_groq.usage` when `usage` is absent),
//! `output = completion_tokens` (reasoning included). Encoding goes back:
//! `prompt_tokens = input + cached_input + cache_write`.

use crate::dialect::canonical::*;
use crate::usage::Usage;
use serde_json::{json, Map, Value};

/// Provider's complete 2xx body -> canonical.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not valid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| "response is not a JSON object".to_owned())?;
    let choices = match obj.get("choices") {
        Some(Value::Array(c)) => c,
        _ => {
            if let Some(e) = obj.get("error").filter(|e| !e.is_null()) {
                let message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| e.to_string(), str::to_owned);
                return Err(format!("provider returned an error: {message}"));
            }
            return Err("response has no `choices` array".to_owned());
        }
    };
    let choice = first_choice(choices).ok_or_else(|| "response has no choices".to_owned())?;
    let msg = choice
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| "the choice has no `message` object".to_owned())?;

    let mut content = Vec::new();
    if let Some(t) = reasoning_text(msg).filter(|t| !t.is_empty()) {
        content.push(Part::Thinking {
            text: t.to_owned(),
            signature: None,
        });
    }
    match msg.get("content") {
        Some(Value::String(s)) if !s.is_empty() => content.push(Part::Text(Text::plain(s))),
        // Some compatible providers answer with an array of text parts.
        Some(Value::Array(parts)) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    content.push(Part::Text(Text::plain(t)));
                }
            }
        }
        _ => {}
    }
    let refusal = msg
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    if let Some(r) = refusal {
        content.push(Part::Text(Text::plain(r)));
    }
    if let Some(Value::Array(calls)) = msg.get("tool_calls") {
        for (k, c) in calls.iter().enumerate() {
            let f = c.get("function");
            let Some(name) = f.and_then(|f| f.get("name")).and_then(Value::as_str) else {
                return Err(format!("tool call {k} has no function name"));
            };
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("call_{k}"), str::to_owned);
            content.push(Part::ToolCall(ToolCall {
                id,
                name: name.to_owned(),
                arguments: arguments_text(f.and_then(|f| f.get("arguments"))),
            }));
        }
    }
    let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        _ if refusal.is_some() => Some(StopReason::Refusal),
        Some(fr) => Some(stop_reason(fr)),
        None => None,
    };
    Ok(ChatResponse {
        id: str_field(obj, "id"),
        model: str_field(obj, "model"),
        content,
        stop_reason,
        stop_sequence: None,
        usage: usage_of(&v),
        created: obj.get("created").and_then(Value::as_u64),
    })
}

/// Canonical -> OpenAI `chat.completion` body.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let mut text = String::new();
    let mut thinking: Option<String> = None;
    let mut calls = Vec::new();
    for p in &resp.content {
        match p {
            Part::Text(t) => text.push_str(&t.text),
            Part::Thinking { text: t, .. } => thinking.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall(c) => calls.push(tool_call_json(c)),
            // Nothing an OpenAI client could read or send back.
            Part::RedactedThinking { .. } | Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    let has_text = resp.content.iter().any(|p| matches!(p, Part::Text(_)));
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if has_text { text.into() } else { Value::Null },
    );
    if let Some(t) = thinking {
        message.insert("reasoning_content".into(), t.into());
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    message.insert("refusal".into(), Value::Null);
    let mut body = json!({
        "id": completion_id(&resp.id),
        "object": "chat.completion",
        "created": resp.created.unwrap_or_else(now),
        "model": resp.model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": resp.stop_reason.as_ref().map(finish_reason),
            "logprobs": null,
        }],
    });
    if let (Some(u), Some(o)) = (&resp.usage, body.as_object_mut()) {
        o.insert("usage".into(), usage_json(u));
    }
    body.to_string().into_bytes()
}

/// A tool call as OpenAI writes it (arguments verbatim).
fn tool_call_json(c: &ToolCall) -> Value {
    json!({
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments},
    })
}

/// The choice with `index` 0, else the first one.
pub(super) fn first_choice(choices: &[Value]) -> Option<&Value> {
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
        .or_else(|| choices.first())
}

/// `reasoning_content` (DeepSeek, vLLM, ...) or else `reasoning` (OpenRouter, Ollama, ...).
pub(super) fn reasoning_text(m: &Map<String, Value>) -> Option<&str> {
    m.get("reasoning_content")
        .and_then(Value::as_str)
        .or_else(|| m.get("reasoning").and_then(Value::as_str))
}

/// Tool-call arguments as raw text: a string verbatim; an object (some compatible providers)
/// as its JSON text; absent or anything else as empty.
pub(super) fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(o @ Value::Object(_)) => o.to_string(),
        _ => String::new(),
    }
}

fn str_field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// OpenAI `finish_reason` -> canonical.
pub(super) fn stop_reason(fr: &str) -> StopReason {
    match fr {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

/// Canonical -> OpenAI `finish_reason`. OpenAI reports a matched stop sequence and a paused
/// turn as a plain `stop`; a refusal is closest to `content_filter`.
pub(super) fn finish_reason(r: &StopReason) -> String {
    match r {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter | StopReason::Refusal => "content_filter",
        StopReason::Other(s) => s,
    }
    .to_owned()
}

/// The usage a body or chunk carries, read exactly as the gateway's usage accounting does.
pub(super) use crate::usage::openai::usage_of;

/// Canonical usage -> OpenAI `usage` object.
pub(super) fn usage_json(u: &Usage) -> Value {
    let prompt = u
        .input
        .saturating_add(u.cached_input)
        .saturating_add(u.cache_write);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": u.output,
        "total_tokens": prompt.saturating_add(u.output),
        "prompt_tokens_details": {"cached_tokens": u.cached_input},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

/// An id as OpenAI clients expect it: `chatcmpl-` prefixed (made up when there is none).
pub(super) fn completion_id(id: &str) -> String {
    prefixed_id("chatcmpl-", id)
}

/// Unix seconds now.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
