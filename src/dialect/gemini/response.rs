//! Complete Gemini answers (`GenerateContentResponse`) both ways: [`decode_response`] for
//! provider answers, [`encode_response`] for round trips.

use serde_json::{json, Map, Value};

use super::wire::{fallback_id, finish_reason, get, get_str, stop_reason, usage_from, usage_json};
use crate::dialect::canonical::*;

/// A Gemini 2xx body -> canonical. Only the first candidate is read (the gateway never asks
/// for more). An answer with no candidates is a blocked prompt when `promptFeedback` says
/// so (empty content, `ContentFilter`), else not a valid answer.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Gemini answer is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("Gemini answer is not a JSON object".into());
    }
    let id = get_str(&v, "responseId")
        .filter(|s| !s.is_empty())
        .map_or_else(|| fallback_id(body), str::to_owned);
    let model = get_str(&v, "modelVersion").unwrap_or_default().to_owned();
    let usage = get(&v, "usageMetadata").and_then(usage_from);
    let candidate = get(&v, "candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let Some(candidate) = candidate else {
        let blocked = get(&v, "promptFeedback")
            .and_then(|f| get_str(f, "blockReason"))
            .is_some_and(|r| !r.is_empty());
        if !blocked {
            return Err("Gemini answer has no candidates".into());
        }
        return Ok(ChatResponse {
            id,
            model,
            content: Vec::new(),
            stop_reason: Some(StopReason::ContentFilter),
            stop_sequence: None,
            usage,
            created: None,
        });
    };
    let parts = get(candidate, "content")
        .and_then(|c| get(c, "parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut content = Vec::with_capacity(parts.len());
    let mut calls = 0usize;
    for p in parts {
        if let Some(part) = decode_part(p, &mut calls) {
            content.push(part);
        }
    }
    let stop = get_str(candidate, "finishReason").and_then(|r| stop_reason(r, calls > 0));
    Ok(ChatResponse {
        id,
        model,
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage,
        created: None,
    })
}

/// One answer part -> canonical; `calls` counts function calls so far (for their ids).
/// Parts with no canonical form (code execution, generated images) are skipped, and so are
/// empty text parts (Gemini sends some, often only to carry a `thoughtSignature`).
/// Known gap: a `thoughtSignature` on a non-thought part (function calls, text) is dropped;
/// canonical parts have no place for it, and Gemini accepts history without it.
pub(crate) fn decode_part(p: &Value, calls: &mut usize) -> Option<Part> {
    if let Some(text) = get_str(p, "text") {
        if get(p, "thought").and_then(Value::as_bool) == Some(true) {
            return Some(Part::Thinking {
                text: text.to_owned(),
                signature: get_str(p, "thoughtSignature").map(str::to_owned),
            });
        }
        return (!text.is_empty()).then(|| Part::Text(Text::plain(text)));
    }
    let call = get(p, "functionCall")?;
    let (id, name, arguments) = function_call(call, *calls);
    *calls += 1;
    Some(Part::ToolCall(ToolCall {
        id,
        name,
        arguments,
    }))
}

/// A `functionCall` -> (id, name, compact JSON arguments). The id is Gemini's when it gives
/// one, else `call_<k>` with `k` the call's index (in the answer or the whole stream).
pub(crate) fn function_call(call: &Value, k: usize) -> (String, String, String) {
    let id = get_str(call, "id")
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("call_{k}"), str::to_owned);
    let name = get_str(call, "name").unwrap_or_default().to_owned();
    let arguments = match get(call, "args") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(args) => args.to_string(),
    };
    (id, name, arguments)
}

/// A tool call's arguments as the object Gemini carries (`{}` if they are not a JSON object:
/// an encoder cannot fail, and a provider never produces such arguments).
pub(crate) fn args_value(arguments: &str) -> Value {
    match arguments_object(arguments, "arguments") {
        Ok(m) => Value::Object(m),
        Err(_) => Value::Object(Map::new()),
    }
}

/// A canonical part -> a Gemini answer part (`None` for parts Gemini cannot carry).
pub(crate) fn encode_part(part: &Part) -> Option<Value> {
    Some(match part {
        Part::Text(t) => json!({ "text": t.text }),
        Part::Thinking { text, signature } => {
            let mut m = Map::new();
            m.insert("text".into(), json!(text));
            m.insert("thought".into(), json!(true));
            if let Some(s) = signature {
                m.insert("thoughtSignature".into(), json!(s));
            }
            Value::Object(m)
        }
        Part::ToolCall(c) => json!({
            "functionCall": { "id": c.id, "name": c.name, "args": args_value(&c.arguments) }
        }),
        Part::RedactedThinking { .. } | Part::Image(_) | Part::ToolResult(_) => return None,
    })
}

/// Canonical -> a Gemini `GenerateContentResponse` body.
pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
    let parts: Vec<Value> = resp.content.iter().filter_map(encode_part).collect();
    let mut candidate = Map::new();
    candidate.insert("content".into(), json!({ "role": "model", "parts": parts }));
    if let Some(reason) = &resp.stop_reason {
        candidate.insert("finishReason".into(), json!(finish_reason(reason)));
    }
    candidate.insert("index".into(), json!(0));
    let mut body = Map::new();
    body.insert("candidates".into(), json!([candidate]));
    if let Some(u) = &resp.usage {
        body.insert("usageMetadata".into(), usage_json(u));
    }
    body.insert("modelVersion".into(), json!(resp.model));
    body.insert("responseId".into(), json!(resp.id));
    Value::Object(body).to_string().into_bytes()
}
