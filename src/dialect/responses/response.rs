//! Whole Responses API answers both ways, and what the stream codecs share with them: the
//! response object, output items and their ids, the status a stop reason gives, and `usage`.
//!
//! Usage: `input_tokens = input + cached_input + cache_write` (cached and cache-write counts in
//! `input_tokens_details`), `output_tokens = output` (reasoning included, and reported in
//! `output_tokens_details.reasoning_tokens`); reading goes back as `usage/responses.rs` does.

use super::{item_suffix, response_id, REDACTED_PREFIX};
use crate::dialect::canonical::*;
use crate::usage::Usage;
use serde_json::{json, Map, Value};

/// Usage read exactly as the gateway's usage accounting reads it.
pub(super) use crate::usage::responses::usage_from;

/// Canonical usage -> a Responses `usage` object.
pub(super) fn usage_json(u: &Usage) -> Value {
    let input = u
        .input
        .saturating_add(u.cached_input)
        .saturating_add(u.cache_write);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": u.cached_input, "cache_write_tokens": u.cache_write},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": input.saturating_add(u.output),
    })
}

/// The status and `incomplete_details` a stop reason gives.
pub(super) fn status_of(reason: Option<&StopReason>) -> (&'static str, Value) {
    match reason {
        Some(StopReason::MaxTokens) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(StopReason::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The id of output item `n` of the answer `response_id`, of kind `prefix` (`msg`, `fc`, `rs`).
pub(super) fn item_id(prefix: &str, response_id: &str, n: usize) -> String {
    format!("{prefix}_{}_{n}", item_suffix(response_id))
}

/// The fields every response object has, in the Responses API's order, with the request
/// fields from `echo` (their API defaults when the client did not send them).
pub(super) struct Envelope<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
    pub echo: Option<&'a Value>,
}

impl Envelope<'_> {
    pub(super) fn object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<&Usage>,
        error: Value,
        incomplete: Value,
    ) -> Value {
        let echoed = |key: &str, default: Value| {
            self.echo
                .and_then(|e| e.get(key))
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let mut m = Map::new();
        m.insert("id".into(), self.id.into());
        m.insert("object".into(), "response".into());
        m.insert("created_at".into(), self.created_at.into());
        m.insert("status".into(), status.into());
        m.insert("background".into(), false.into());
        m.insert("error".into(), error);
        m.insert("incomplete_details".into(), incomplete);
        m.insert("instructions".into(), echoed("instructions", Value::Null));
        m.insert(
            "max_output_tokens".into(),
            echoed("max_output_tokens", Value::Null),
        );
        m.insert("model".into(), self.model.into());
        m.insert("output".into(), Value::Array(output));
        m.insert(
            "parallel_tool_calls".into(),
            echoed("parallel_tool_calls", true.into()),
        );
        m.insert(
            "previous_response_id".into(),
            echoed("previous_response_id", Value::Null),
        );
        m.insert(
            "reasoning".into(),
            echoed("reasoning", json!({"effort": null, "summary": null})),
        );
        m.insert("store".into(), echoed("store", true.into()));
        m.insert("temperature".into(), echoed("temperature", Value::Null));
        m.insert(
            "text".into(),
            echoed("text", json!({"format": {"type": "text"}})),
        );
        m.insert("tool_choice".into(), echoed("tool_choice", "auto".into()));
        m.insert("tools".into(), echoed("tools", json!([])));
        m.insert("top_p".into(), echoed("top_p", Value::Null));
        m.insert("truncation".into(), echoed("truncation", "disabled".into()));
        m.insert("usage".into(), usage.map_or(Value::Null, usage_json));
        m.insert("user".into(), echoed("user", Value::Null));
        m.insert("metadata".into(), echoed("metadata", json!({})));
        Value::Object(m)
    }
}

/// The output items of an answer with `content`: one `reasoning` item per thinking part, one
/// assistant `message` per text part, one `function_call` per tool call, in order.
pub fn output_items(response_id: &str, content: &[Part]) -> Vec<Value> {
    let mut out = Vec::with_capacity(content.len());
    for part in content {
        let n = out.len();
        let item = match part {
            Part::Text(t) => message_item(&item_id("msg", response_id, n), &t.text, "completed"),
            Part::Thinking { text, signature } => {
                reasoning_item(&item_id("rs", response_id, n), text, signature.as_deref())
            }
            Part::RedactedThinking { data } => json!({
                "id": item_id("rs", response_id, n),
                "type": "reasoning",
                "summary": [],
                "encrypted_content": format!("{REDACTED_PREFIX}{data}"),
            }),
            Part::ToolCall(c) => call_item(&item_id("fc", response_id, n), c, "completed"),
            Part::Image(_) | Part::ToolResult(_) => continue,
        };
        out.push(item);
    }
    out
}

pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    })
}

pub(super) fn reasoning_item(id: &str, text: &str, signature: Option<&str>) -> Value {
    let mut item = json!({
        "id": id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}],
    });
    if let Some(s) = signature {
        item["encrypted_content"] = s.into();
    }
    item
}

pub(super) fn call_item(id: &str, c: &ToolCall, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": c.id,
        "name": c.name,
        "arguments": c.arguments,
    })
}

/// Unix seconds now.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Canonical -> a Responses object, with the provider's id made a `resp_` id.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    encode_response_with(resp, &StreamEncoderOptions::default())
}

/// Canonical -> a Responses object, with the id and echoed request fields of `opts`.
pub fn encode_response_with(resp: &ChatResponse, opts: &StreamEncoderOptions) -> Vec<u8> {
    let id = opts
        .response_id
        .clone()
        .unwrap_or_else(|| response_id(&resp.id));
    let model = if resp.model.is_empty() {
        &opts.model
    } else {
        &resp.model
    };
    let (status, incomplete) = status_of(resp.stop_reason.as_ref());
    Envelope {
        id: &id,
        created_at: resp.created.unwrap_or_else(now),
        model,
        echo: opts.echo.as_deref(),
    }
    .object(
        status,
        output_items(&id, &resp.content),
        resp.usage.as_ref(),
        Value::Null,
        incomplete,
    )
    .to_string()
    .into_bytes()
}

/// A stop reason from a response's `status` and `incomplete_details`.
pub(super) fn stop_from_status(v: &Value, saw_call: bool, saw_refusal: bool) -> StopReason {
    let status = v
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("completed");
    if status == "incomplete" {
        let reason = v
            .get("incomplete_details")
            .and_then(|d| d.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("incomplete");
        return match reason {
            "max_output_tokens" => StopReason::MaxTokens,
            "content_filter" => StopReason::ContentFilter,
            other => StopReason::Other(other.to_owned()),
        };
    }
    if saw_refusal {
        StopReason::Refusal
    } else if saw_call {
        StopReason::ToolUse
    } else {
        StopReason::EndTurn
    }
}

/// One output item -> canonical parts (`saw_refusal` set by a refusal part).
pub(super) fn item_parts(item: &Value, saw_refusal: &mut bool, out: &mut Vec<Part>) {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    match item.get("type").and_then(Value::as_str) {
        Some("message") => {
            for p in item
                .get("content")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                match p.get("type").and_then(Value::as_str) {
                    Some("output_text") => {
                        out.push(Part::Text(Text::plain(s(p, "text").unwrap_or_default())))
                    }
                    Some("refusal") => {
                        *saw_refusal = true;
                        out.push(Part::Text(Text::plain(s(p, "refusal").unwrap_or_default())));
                    }
                    _ => {}
                }
            }
        }
        Some("reasoning") => {
            let encrypted = s(item, "encrypted_content");
            if let Some(data) = encrypted
                .as_deref()
                .and_then(|e| e.strip_prefix(REDACTED_PREFIX))
            {
                out.push(Part::RedactedThinking {
                    data: data.to_owned(),
                });
                return;
            }
            let texts = |key: &str| -> Vec<String> {
                item.get(key)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|p| s(p, "text")).collect())
                    .unwrap_or_default()
            };
            let mut text = texts("summary");
            if text.is_empty() {
                text = texts("content");
            }
            if !text.is_empty() || encrypted.is_some() {
                out.push(Part::Thinking {
                    text: text.join("\n\n"),
                    signature: encrypted,
                });
            }
        }
        Some("function_call") => out.push(Part::ToolCall(ToolCall {
            id: s(item, "call_id")
                .or_else(|| s(item, "id"))
                .unwrap_or_default(),
            name: s(item, "name").unwrap_or_default(),
            arguments: s(item, "arguments").unwrap_or_default(),
        })),
        // Built-in tool calls (web search, ...) ran at the provider: nothing to carry on.
        _ => {}
    }
}

/// A provider's complete 2xx Responses body -> canonical.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("response is not a JSON object".to_owned());
    }
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| e.to_string(), str::to_owned);
        return Err(format!("provider returned an error: {message}"));
    }
    let items = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| "response has no `output` array".to_owned())?;
    let mut content = Vec::new();
    let mut saw_refusal = false;
    for item in items {
        item_parts(item, &mut saw_refusal, &mut content);
    }
    let saw_call = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let str_field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(ChatResponse {
        id: str_field("id"),
        model: str_field("model"),
        content,
        stop_reason: Some(stop_from_status(&v, saw_call, saw_refusal)),
        stop_sequence: None,
        usage: v.get("usage").and_then(usage_from),
        created: v
            .get("created_at")
            .and_then(Value::as_f64)
            .map(|t| t as u64),
    })
}
