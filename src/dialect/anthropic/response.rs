//! Complete (non-streamed) Anthropic Messages responses both ways, and the helpers the stream
//! modules share: stop reasons, usage objects, lenient token counts, message ids.

use serde_json::{json, Map, Value};

use crate::dialect::canonical::*;
use crate::usage::Usage;

/// Provider's complete 2xx body -> canonical.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("response is not a JSON object".into());
    };
    if obj.get("type").and_then(Value::as_str) == Some("error") {
        return Err("response is an error object".into());
    }
    let Some(Value::Array(blocks)) = obj.get("content") else {
        return Err("response has no `content` array".into());
    };
    let content = blocks.iter().filter_map(response_block).collect();
    let stop_reason = obj
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(stop_reason_from);
    Ok(ChatResponse {
        id: str_of(&obj, "id"),
        model: str_of(&obj, "model"),
        content,
        stop_reason,
        stop_sequence: obj
            .get("stop_sequence")
            .and_then(Value::as_str)
            .map(str::to_owned),
        usage: obj.get("usage").and_then(usage_from),
        created: None,
    })
}

fn str_of(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// One response content block; `None` (with a warning) for blocks the canonical model has no
/// place for (server tool use and results: the request decoder refuses the features that
/// produce them, so they only come from clients talking to Anthropic directly).
fn response_block(block: &Value) -> Option<Part> {
    let text = |key: &str| block.get(key).and_then(Value::as_str).map(str::to_owned);
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let part = match kind {
        "text" => text("text").map(|t| Part::Text(Text::plain(t))),
        "thinking" => text("thinking").map(|t| Part::Thinking {
            text: t,
            signature: text("signature").filter(|s| !s.is_empty()),
        }),
        "redacted_thinking" => text("data").map(|data| Part::RedactedThinking { data }),
        "tool_use" => match (text("id"), text("name")) {
            (Some(id), Some(name)) => Some(Part::ToolCall(ToolCall {
                id,
                name,
                arguments: match block.get("input") {
                    None | Some(Value::Null) => "{}".to_owned(),
                    Some(input) => input.to_string(),
                },
            })),
            _ => None,
        },
        _ => None,
    };
    if part.is_none() {
        log::warn!("anthropic response: skipped a `{kind}` content block");
    }
    part
}

/// Canonical -> Anthropic Messages response body.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let mut content = Vec::with_capacity(resp.content.len());
    let mut tool_calls = false;
    for part in &resp.content {
        match part {
            Part::Text(t) => content.push(json!({"type": "text", "text": t.text})),
            Part::Thinking { text, signature } => content.push(json!({
                "type": "thinking",
                "thinking": text,
                "signature": signature.as_deref().unwrap_or_default(),
            })),
            Part::RedactedThinking { data } => {
                content.push(json!({"type": "redacted_thinking", "data": data}));
            }
            Part::ToolCall(call) => {
                tool_calls = true;
                content.push(json!({
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": tool_input(&call.arguments),
                }));
            }
            Part::Image(_) | Part::ToolResult(_) => {
                log::warn!("anthropic response: an assistant answer cannot hold this part");
            }
        }
    }
    let body = json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": stop_reason_name(resp.stop_reason.as_ref(), tool_calls),
        "stop_sequence": resp.stop_sequence,
        "usage": usage_json(&resp.usage.unwrap_or_default()),
    });
    body.to_string().into_bytes()
}

/// A tool call's `input` object. Arguments that are not a JSON object (cut off at
/// `max_tokens`, say) are kept as text under `_raw_arguments` rather than replaced by `{}`.
pub(super) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "_raw_arguments": arguments }),
    }
}

/// The id as Anthropic clients expect it (`msg_...`).
pub(super) fn message_id(id: &str) -> String {
    prefixed_id("msg_", id)
}

pub(super) fn stop_reason_from(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::Refusal,
        "pause_turn" => StopReason::PauseTurn,
        other => StopReason::Other(other.to_owned()),
    }
}

/// Anthropic's `stop_reason`; when unknown, `tool_use` if the answer called tools, else
/// `end_turn`.
pub(super) fn stop_reason_name(reason: Option<&StopReason>, tool_calls: bool) -> String {
    match reason {
        Some(StopReason::EndTurn) => "end_turn",
        Some(StopReason::MaxTokens) => "max_tokens",
        Some(StopReason::StopSequence) => "stop_sequence",
        Some(StopReason::ToolUse) => "tool_use",
        Some(StopReason::ContentFilter | StopReason::Refusal) => "refusal",
        Some(StopReason::PauseTurn) => "pause_turn",
        Some(StopReason::Other(s)) => s,
        None if tool_calls => "tool_use",
        None => "end_turn",
    }
    .to_owned()
}

/// Anthropic's usage object (`input_tokens` excludes cache reads and writes, like canonical).
pub(super) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "output_tokens": u.output,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cached_input,
    })
}

/// An Anthropic `usage` object -> canonical, and the running counts of a stream: read exactly
/// as the gateway's usage accounting does (`usage/anthropic.rs`).
pub(super) use crate::usage::anthropic::{usage_from, Counts};
