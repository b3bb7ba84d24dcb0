//! Canonical [`ChatRequest`] -> OpenAI Chat Completions request body (for an OpenAI or
//! OpenAI-compatible provider).
//!
//! Choices worth knowing:
//! - The system prompt becomes one `system` message at the start (string content for one part,
//!   an array of text parts for several).
//! - `Thinking` and `RedactedThinking` parts in the history are dropped: Chat Completions has no
//!   input form for earlier turns' reasoning, and providers ignore prior-turn reasoning anyway.
//! - Text `cache_control` markers are dropped silently: OpenAI caches prompt prefixes
//!   automatically, so the marker has no counterpart and dropping it changes no output.
//! - A user message's `ToolResult` parts become one `tool` message each, in order, *before* a
//!   user message holding the message's other parts (OpenAI needs tool messages right after the
//!   assistant's `tool_calls`). A result with `is_error` is sent with its content prefixed by
//!   `[tool error] ` (OpenAI has no error flag; the model still learns the call failed).
//!   Several text parts of one result are joined with a blank line.
//! - Streams always ask for `stream_options.include_usage`: the gateway needs the usage of every
//!   stream, whatever the client asked (the client's wish is honoured by the stream encoder).

use crate::dialect::canonical::*;
use crate::error::GatewayError;
use serde_json::{json, Map, Value};

/// The prefix marking a failed tool call's result (OpenAI has no `is_error`).
pub(super) const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// Canonical -> OpenAI request body for the target model `model`.
pub fn encode_request(
    req: &ChatRequest,
    model: &str,
    opts: &TranslateOptions,
) -> Result<Vec<u8>, GatewayError> {
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = system_message(&req.system, opts)? {
        messages.push(system);
    }
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::User => user_messages(i, m, opts, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(i, m, opts)?),
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if req.stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(n) = req.max_tokens {
        out.insert("max_completion_tokens".into(), n.into());
    }
    if let Some(t) = &req.temperature {
        out.insert("temperature".into(), Value::Number(t.clone()));
    }
    if let Some(p) = &req.top_p {
        out.insert("top_p".into(), Value::Number(p.clone()));
    }
    if req.top_k.is_some() {
        opts.drop_or_reject("top_k", "OpenAI has no top_k sampling parameter")?;
    }
    if !req.stop.is_empty() {
        out.insert("stop".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        out.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool).collect()),
        );
        // OpenAI refuses `parallel_tool_calls` without `tools`, so it only goes with them.
        if let Some(p) = req.parallel_tool_calls {
            out.insert("parallel_tool_calls".into(), p.into());
        }
    }
    if let Some(c) = &req.tool_choice {
        out.insert("tool_choice".into(), tool_choice(c));
    }
    if let Some(f) = &req.response_format {
        out.insert("response_format".into(), response_format(f));
    }
    // `Disabled` is omitted: not every OpenAI model accepts `"none"`, and omitting it gives the
    // model's default.
    if let Some(e) = req.reasoning.and_then(Reasoning::effort) {
        out.insert("reasoning_effort".into(), e.name().into());
    }
    if let Some(u) = &req.user {
        out.insert("user".into(), u.as_str().into());
    }
    if let Some(s) = req.seed {
        out.insert("seed".into(), s.into());
    }
    if let Some(p) = &req.presence_penalty {
        out.insert("presence_penalty".into(), Value::Number(p.clone()));
    }
    if let Some(p) = &req.frequency_penalty {
        out.insert("frequency_penalty".into(), Value::Number(p.clone()));
    }
    Ok(Value::Object(out).to_string().into_bytes())
}

fn text_part(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

fn system_message(system: &[Part], opts: &TranslateOptions) -> Result<Option<Value>, GatewayError> {
    let mut texts = Vec::with_capacity(system.len());
    for (k, p) in system.iter().enumerate() {
        match p {
            Part::Text(t) => texts.push(t.text.as_str()),
            _ => opts.drop_or_reject(
                &format!("system[{k}]"),
                "OpenAI system messages hold text only",
            )?,
        }
    }
    let content = match texts.as_slice() {
        [] => return Ok(None),
        [one] => Value::from(*one),
        many => Value::Array(many.iter().map(|t| text_part(t)).collect()),
    };
    Ok(Some(json!({"role": "system", "content": content})))
}

fn image_url(img: &Image) -> Value {
    let url = match &img.source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    };
    let mut o = Map::new();
    o.insert("url".into(), url.into());
    if let Some(d) = &img.detail {
        o.insert("detail".into(), d.as_str().into());
    }
    json!({"type": "image_url", "image_url": o})
}

/// One canonical user message -> `tool` messages for its results, then a `user` message for
/// the rest (if any, or if there were no results at all).
fn user_messages(
    i: usize,
    m: &Message,
    opts: &TranslateOptions,
    out: &mut Vec<Value>,
) -> Result<(), GatewayError> {
    let mut rest = Vec::new();
    let mut results = 0;
    for (j, p) in m.content.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        match p {
            Part::Text(t) => rest.push(Part::Text(Text::plain(t.text.clone()))),
            Part::Image(_) => rest.push(p.clone()),
            Part::ToolResult(r) => {
                out.push(tool_message(r, &path, opts)?);
                results += 1;
            }
            // Reasoning has no place in a user turn; nothing reads it there.
            Part::Thinking { .. } | Part::RedactedThinking { .. } => {}
            Part::ToolCall(_) => {
                opts.drop_or_reject(&path, "a tool call cannot be part of a user message")?
            }
        }
    }
    if rest.is_empty() && results > 0 {
        return Ok(());
    }
    let content = match rest.as_slice() {
        [] => Value::from(""),
        [Part::Text(t)] => Value::from(t.text.as_str()),
        parts => Value::Array(
            parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) => Some(text_part(&t.text)),
                    Part::Image(img) => Some(image_url(img)),
                    _ => None,
                })
                .collect(),
        ),
    };
    out.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn tool_message(
    r: &ToolResult,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Value, GatewayError> {
    let mut texts = Vec::with_capacity(r.content.len());
    for (k, p) in r.content.iter().enumerate() {
        match p {
            Part::Text(t) => texts.push(t.text.as_str()),
            Part::Image(_) => opts.drop_or_reject(
                &format!("{path}.content[{k}]"),
                "OpenAI tool messages carry text only, not images",
            )?,
            _ => opts.drop_or_reject(
                &format!("{path}.content[{k}]"),
                "OpenAI tool messages carry text only",
            )?,
        }
    }
    let mut content = texts.join("\n\n");
    if r.is_error {
        content.insert_str(0, TOOL_ERROR_PREFIX);
    }
    Ok(json!({"role": "tool", "tool_call_id": r.call_id, "content": content}))
}

fn assistant_message(
    i: usize,
    m: &Message,
    opts: &TranslateOptions,
) -> Result<Value, GatewayError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, p) in m.content.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        match p {
            // Consecutive text blocks are one answer split up (e.g. around citations): joined
            // as written, the same way the response and stream encoders join them.
            Part::Text(t) => text.push_str(&t.text),
            Part::ToolCall(c) => calls.push(json!({
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })),
            // No input form for earlier reasoning in Chat Completions (see the module docs).
            Part::Thinking { .. } | Part::RedactedThinking { .. } => {}
            Part::Image(_) => {
                opts.drop_or_reject(&path, "OpenAI assistant messages cannot hold images")?
            }
            Part::ToolResult(_) => opts.drop_or_reject(
                &path,
                "a tool result cannot be part of an assistant message",
            )?,
        }
    }
    let mut o = Map::new();
    o.insert("role".into(), "assistant".into());
    // OpenAI wants `content` unless there are tool calls; `null` is its "no text" with them.
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    };
    o.insert("content".into(), content);
    if !calls.is_empty() {
        o.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(o))
}

fn tool(t: &Tool) -> Value {
    let mut f = Map::new();
    f.insert("name".into(), t.name.as_str().into());
    if let Some(d) = &t.description {
        f.insert("description".into(), d.as_str().into());
    }
    f.insert("parameters".into(), t.parameters.clone());
    if let Some(s) = t.strict {
        f.insert("strict".into(), s.into());
    }
    json!({"type": "function", "function": f})
}

fn tool_choice(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn response_format(f: &ResponseFormat) -> Value {
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
            // OpenAI requires a name; other dialects have none to give.
            js.insert("name".into(), name.as_deref().unwrap_or("response").into());
            if let Some(d) = description {
                js.insert("description".into(), d.as_str().into());
            }
            js.insert("schema".into(), schema.clone());
            if let Some(s) = strict {
                js.insert("strict".into(), (*s).into());
            }
            json!({"type": "json_schema", "json_schema": js})
        }
    }
}
