//! Canonical [`ChatRequest`] -> Responses API request body: the inverse of `request_decode`,
//! for round trips, the conformance corpus and the fuzz targets (an OpenAI-kind target of a
//! Responses client gets the client's own body, not this).
//!
//! - The system prompt becomes `instructions` (text parts joined by a blank line).
//! - Assistant turns become items in order: `reasoning` (summary text, signature as
//!   `encrypted_content`), an assistant `message` per run of text, `function_call`s.
//! - User turns become a user `message` (`input_text`, `input_image`), and each tool result a
//!   `function_call_output` (a failed one prefixed `[tool error] `, as for Chat Completions).

use super::REDACTED_PREFIX;
use crate::dialect::canonical::*;
use crate::error::GatewayError;
use serde_json::{json, Map, Value};

/// The prefix marking a failed tool call's output (the Responses API has no error flag).
const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// Canonical -> Responses request body for the target model `model`.
pub fn encode_request(
    req: &ChatRequest,
    model: &str,
    opts: &TranslateOptions,
) -> Result<Vec<u8>, GatewayError> {
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let system: Vec<&str> = req
        .system
        .iter()
        .map(|p| match p {
            Part::Text(t) => Ok(t.text.as_str()),
            _ => Err(untranslatable(
                "system",
                "instructions other than text have no equivalent",
            )),
        })
        .collect::<Result<_, _>>()?;
    if !system.is_empty() {
        out.insert("instructions".into(), system.join("\n\n").into());
    }
    let mut input = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::User => user_items(&m.content, &mut input),
            Role::Assistant => assistant_items(&m.content, &mut input),
        }
    }
    out.insert("input".into(), Value::Array(input));
    if req.stream {
        out.insert("stream".into(), true.into());
    }
    if let Some(n) = req.max_tokens {
        out.insert("max_output_tokens".into(), n.into());
    }
    if let Some(t) = &req.temperature {
        out.insert("temperature".into(), Value::Number(t.clone()));
    }
    if let Some(p) = &req.top_p {
        out.insert("top_p".into(), Value::Number(p.clone()));
    }
    for (field, set, why) in [
        (
            "top_k",
            req.top_k.is_some(),
            "the Responses API has no top_k",
        ),
        (
            "stop",
            !req.stop.is_empty(),
            "the Responses API has no stop sequences",
        ),
        ("seed", req.seed.is_some(), "the Responses API has no seed"),
        (
            "presence_penalty",
            req.presence_penalty.is_some(),
            "the Responses API has no presence penalty",
        ),
        (
            "frequency_penalty",
            req.frequency_penalty.is_some(),
            "the Responses API has no frequency penalty",
        ),
    ] {
        if set {
            opts.drop_or_reject(field, why)?;
        }
    }
    if !req.tools.is_empty() {
        out.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool).collect()),
        );
    }
    if let Some(p) = req.parallel_tool_calls {
        out.insert("parallel_tool_calls".into(), p.into());
    }
    if let Some(c) = &req.tool_choice {
        out.insert("tool_choice".into(), tool_choice(c));
    }
    if let Some(f) = &req.response_format {
        out.insert("text".into(), json!({ "format": format(f) }));
    }
    match req.reasoning {
        Some(Reasoning::Disabled) => {
            out.insert("reasoning".into(), json!({"effort": "none"}));
        }
        Some(r) => {
            if let Some(e) = r.effort() {
                out.insert("reasoning".into(), json!({"effort": e.name()}));
            }
        }
        None => {}
    }
    if let Some(u) = &req.user {
        out.insert("user".into(), u.as_str().into());
    }
    Ok(Value::Object(out).to_string().into_bytes())
}

fn input_text(t: &str) -> Value {
    json!({"type": "input_text", "text": t})
}

fn input_image(img: &Image) -> Value {
    let url = match &img.source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    };
    json!({
        "type": "input_image",
        "image_url": url,
        "detail": img.detail.as_deref().unwrap_or("auto"),
    })
}

/// A user turn: its tool results first (they answer the previous turn's calls), then one
/// message with its other parts.
fn user_items(parts: &[Part], input: &mut Vec<Value>) {
    let mut content = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) => content.push(input_text(&t.text)),
            Part::Image(img) => content.push(input_image(img)),
            Part::ToolResult(r) => input.push(tool_output(r)),
            // Reasoning and calls are assistant-side; a user turn never holds them.
            Part::ToolCall(_) | Part::Thinking { .. } | Part::RedactedThinking { .. } => {}
        }
    }
    if !content.is_empty() {
        input.push(json!({"type": "message", "role": "user", "content": content}));
    }
}

fn tool_output(r: &ToolResult) -> Value {
    let images = r.content.iter().any(|p| matches!(p, Part::Image(_)));
    let prefix = if r.is_error { TOOL_ERROR_PREFIX } else { "" };
    let output = if images {
        let mut parts: Vec<Value> = Vec::new();
        if r.is_error {
            parts.push(input_text(TOOL_ERROR_PREFIX.trim_end()));
        }
        for p in &r.content {
            match p {
                Part::Text(t) => parts.push(input_text(&t.text)),
                Part::Image(img) => parts.push(input_image(img)),
                _ => {}
            }
        }
        Value::Array(parts)
    } else {
        let texts: Vec<&str> = r
            .content
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect();
        format!("{prefix}{}", texts.join("\n\n")).into()
    };
    json!({"type": "function_call_output", "call_id": r.call_id, "output": output})
}

/// An assistant turn as input items, in order.
fn assistant_items(parts: &[Part], input: &mut Vec<Value>) {
    let mut text: Vec<Value> = Vec::new();
    let flush = |text: &mut Vec<Value>, input: &mut Vec<Value>| {
        if !text.is_empty() {
            input.push(json!({
                "type": "message",
                "role": "assistant",
                "content": std::mem::take(text),
            }));
        }
    };
    for p in parts {
        match p {
            Part::Text(t) => {
                text.push(json!({"type": "output_text", "text": t.text, "annotations": []}))
            }
            Part::Thinking { text: t, signature } => {
                flush(&mut text, input);
                let mut item = json!({"type": "reasoning", "summary": []});
                if !t.is_empty() {
                    item["summary"] = json!([{"type": "summary_text", "text": t}]);
                }
                if let Some(s) = signature {
                    item["encrypted_content"] = s.as_str().into();
                }
                input.push(item);
            }
            Part::RedactedThinking { data } => {
                flush(&mut text, input);
                input.push(json!({
                    "type": "reasoning",
                    "summary": [],
                    "encrypted_content": format!("{REDACTED_PREFIX}{data}"),
                }));
            }
            Part::ToolCall(c) => {
                flush(&mut text, input);
                input.push(json!({
                    "type": "function_call",
                    "call_id": c.id,
                    "name": c.name,
                    "arguments": c.arguments,
                }));
            }
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    flush(&mut text, input);
}

fn tool(t: &Tool) -> Value {
    let mut f = Map::new();
    f.insert("type".into(), "function".into());
    f.insert("name".into(), t.name.as_str().into());
    if let Some(d) = &t.description {
        f.insert("description".into(), d.as_str().into());
    }
    f.insert("parameters".into(), t.parameters.clone());
    if let Some(s) = t.strict {
        f.insert("strict".into(), s.into());
    }
    Value::Object(f)
}

pub(super) fn tool_choice(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Tool(name) => json!({"type": "function", "name": name}),
    }
}

pub(super) fn format(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            strict,
        } => {
            let mut js = Map::new();
            js.insert("type".into(), "json_schema".into());
            js.insert("name".into(), name.as_deref().unwrap_or("response").into());
            if let Some(d) = description {
                js.insert("description".into(), d.as_str().into());
            }
            js.insert("schema".into(), schema.clone());
            if let Some(s) = strict {
                js.insert("strict".into(), (*s).into());
            }
            Value::Object(js)
        }
    }
}
