//! Canonical [`ChatRequest`] -> an Anthropic Messages request body (Anthropic targets).
//!
//! What is adapted or dropped on the way, and why:
//! - `max_tokens` is required by Anthropic: [`DEFAULT_MAX_TOKENS`] when the client gave none.
//! - Images lose OpenAI's `detail` (Anthropic has no such knob; it only trades cost for
//!   resolution). Tools lose `strict` (Anthropic's strict tool use needs a beta and recent
//!   models; without it the schema still guides the call).
//! - Thinking without a signature (from an OpenAI-compatible or Gemini provider) is dropped:
//!   Anthropic rejects unsigned thinking blocks. Signed and redacted thinking are kept.
//! - Empty text blocks are dropped (Anthropic rejects them), and so is a message whose
//!   content ends up empty.
//! - Tool-use ids are made to fit Anthropic's `^[a-zA-Z0-9_-]+$` (see `tool_id`).
//! - `seed`, `presence_penalty`, `frequency_penalty` have no Anthropic equivalent: 400 unless
//!   the operator allows dropping them.

use serde_json::{json, Map, Value};

use crate::dialect::canonical::*;
use crate::error::GatewayError;

/// `max_tokens` sent when the client did not set one (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Canonical -> Anthropic Messages request JSON for the target model `model`.
pub fn encode_request(
    req: &ChatRequest,
    model: &str,
    opts: &TranslateOptions,
) -> Result<Vec<u8>, GatewayError> {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max_tokens));
    if let Some(system) = system(&req.system, opts)? {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), messages(&req.messages, opts)?);
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    if let Some(t) = &req.temperature {
        out.insert("temperature".into(), Value::Number(t.clone()));
    }
    if let Some(p) = &req.top_p {
        out.insert("top_p".into(), Value::Number(p.clone()));
    }
    if let Some(k) = req.top_k {
        out.insert("top_k".into(), json!(k));
    }
    if req.stream {
        out.insert("stream".into(), json!(true));
    }
    if !req.tools.is_empty() {
        out.insert(
            "tools".into(),
            Value::Array(req.tools.iter().map(tool).collect()),
        );
    }
    if let Some(choice) = tool_choice(req) {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(thinking) = thinking(req.reasoning, max_tokens) {
        out.insert("thinking".into(), thinking);
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        // Structured outputs, generally available form (`output_config.format`, no beta
        // header). It has no name, description nor strict flag: the schema is what
        // constrains the output, and it is always enforced.
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            out.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        // JSON mode: any object.
        Some(ResponseFormat::JsonObject) => {
            out.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}),
            );
        }
    }
    if let Some(user) = &req.user {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    if req.seed.is_some() {
        opts.drop_or_reject("seed", "Anthropic has no sampling seed")?;
    }
    if req.presence_penalty.is_some() {
        opts.drop_or_reject("presence_penalty", "Anthropic has no presence penalty")?;
    }
    if req.frequency_penalty.is_some() {
        opts.drop_or_reject("frequency_penalty", "Anthropic has no frequency penalty")?;
    }
    Ok(Value::Object(out).to_string().into_bytes())
}

/// `system` as a plain string when it is one part without a cache marker, else text blocks.
fn system(parts: &[Part], opts: &TranslateOptions) -> Result<Option<Value>, GatewayError> {
    if let [Part::Text(t)] = parts {
        if t.cache_control.is_none() {
            return Ok(Some(json!(t.text)));
        }
    }
    let mut blocks = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Text(t) if t.text.is_empty() => {}
            Part::Text(t) => blocks.push(text_block(t)),
            _ => opts.drop_or_reject(
                &format!("system[{i}]"),
                "Anthropic system prompts hold text only",
            )?,
        }
    }
    Ok((!blocks.is_empty()).then_some(Value::Array(blocks)))
}

fn messages(msgs: &[Message], opts: &TranslateOptions) -> Result<Value, GatewayError> {
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let mut content = Vec::with_capacity(m.content.len());
        for (j, part) in m.content.iter().enumerate() {
            let path = format!("messages[{i}].content[{j}]");
            if let Some(block) = content_block(part, &path, opts)? {
                content.push(block);
            }
        }
        if content.is_empty() {
            continue;
        }
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        out.push(json!({"role": role, "content": content}));
    }
    Ok(Value::Array(out))
}

/// One canonical part as an Anthropic content block; `None` when it is dropped.
fn content_block(
    part: &Part,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Option<Value>, GatewayError> {
    Ok(match part {
        Part::Text(t) if t.text.is_empty() => None,
        Part::Text(t) => Some(text_block(t)),
        Part::Image(img) => Some(image_block(img)),
        Part::ToolCall(call) => {
            let input = arguments_object(&call.arguments, path)?;
            Some(json!({
                "type": "tool_use",
                "id": tool_id(&call.id),
                "name": call.name,
                "input": input,
            }))
        }
        Part::ToolResult(result) => Some(tool_result(result, path, opts)?),
        Part::Thinking {
            text,
            signature: Some(signature),
        } if !signature.is_empty() => Some(json!({
            "type": "thinking",
            "thinking": text,
            "signature": signature,
        })),
        // Unsigned thinking came from another provider: Anthropic rejects thinking blocks
        // without a valid signature, and the model does not need its own past reasoning.
        Part::Thinking { .. } => None,
        Part::RedactedThinking { data } => Some(json!({
            "type": "redacted_thinking",
            "data": data,
        })),
    })
}

fn text_block(t: &Text) -> Value {
    let mut block = json!({"type": "text", "text": t.text});
    if let (Some(cc), Value::Object(o)) = (&t.cache_control, &mut block) {
        o.insert("cache_control".into(), cc.clone());
    }
    block
}

/// An image block. OpenAI's `detail` is dropped (no Anthropic equivalent). A `data:` URL
/// that reached here undecoded is sent inline, as Anthropic does not fetch `data:` URLs.
fn image_block(img: &Image) -> Value {
    let source = match &img.source {
        ImageSource::Base64 { media_type, data } => base64_source(media_type, data),
        ImageSource::Url(url) => match parse_data_url(url) {
            Some((media_type, data)) => base64_source(media_type, data),
            None => json!({"type": "url", "url": url}),
        },
    };
    json!({"type": "image", "source": source})
}

fn base64_source(media_type: &str, data: &str) -> Value {
    json!({"type": "base64", "media_type": media_type, "data": data})
}

/// `data:<media>;base64,<data>` -> (media, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

fn tool_result(
    result: &ToolResult,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Value, GatewayError> {
    let mut block = Map::new();
    block.insert("type".into(), json!("tool_result"));
    block.insert("tool_use_id".into(), json!(tool_id(&result.call_id)));
    match result.content.as_slice() {
        [] => {}
        [Part::Text(t)] if t.cache_control.is_none() => {
            block.insert("content".into(), json!(t.text));
        }
        parts => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (k, part) in parts.iter().enumerate() {
                match part {
                    Part::Text(t) if t.text.is_empty() => {}
                    Part::Text(t) => blocks.push(text_block(t)),
                    Part::Image(img) => blocks.push(image_block(img)),
                    _ => opts.drop_or_reject(
                        &format!("{path}.content[{k}]"),
                        "Anthropic tool results hold text and images only",
                    )?,
                }
            }
            if !blocks.is_empty() {
                block.insert("content".into(), Value::Array(blocks));
            }
        }
    }
    if result.is_error {
        block.insert("is_error".into(), json!(true));
    }
    Ok(Value::Object(block))
}

/// Anthropic tool-use ids match `^[a-zA-Z0-9_-]+$`; ids made by other providers (say
/// `functions.get_weather:0`) get every other character replaced by `_`. The mapping is the
/// same for a call and its result, so they still pair up.
fn tool_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A tool definition. `strict` is dropped (see the module docs). Anthropic requires
/// `input_schema.type`: a missing schema becomes the empty object schema, and an object
/// schema without `type` gets `"type": "object"` (tool arguments are objects anyway).
fn tool(t: &Tool) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(t.name));
    if let Some(d) = &t.description {
        o.insert("description".into(), json!(d));
    }
    let schema = match &t.parameters {
        Value::Null => json!({"type": "object", "properties": {}}),
        Value::Object(m) if !m.contains_key("type") => {
            let mut m = m.clone();
            m.insert("type".into(), json!("object"));
            Value::Object(m)
        }
        other => other.clone(),
    };
    o.insert("input_schema".into(), schema);
    Value::Object(o)
}

/// `tool_choice`, carrying `disable_parallel_tool_use` when parallel calls are off.
fn tool_choice(req: &ChatRequest) -> Option<Value> {
    let no_parallel = req.parallel_tool_calls == Some(false);
    let mut choice = match &req.tool_choice {
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        // `none` takes no `disable_parallel_tool_use` (no tool is called anyway).
        Some(ToolChoice::None) => return Some(json!({"type": "none"})),
        Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
        None if no_parallel && !req.tools.is_empty() => json!({"type": "auto"}),
        None => return None,
    };
    if let (true, Value::Object(o)) = (no_parallel, &mut choice) {
        o.insert("disable_parallel_tool_use".into(), json!(true));
    }
    Some(choice)
}

/// `thinking`. Anthropic requires `1024 <= budget_tokens < max_tokens`: a smaller budget is
/// raised to 1024; one at or over `max_tokens` becomes `max_tokens - 1`; when even 1024 does
/// not fit under `max_tokens`, thinking is left off (the request still succeeds, without
/// extended thinking, rather than failing on a budget the client did not pick in these terms).
fn thinking(reasoning: Option<Reasoning>, max_tokens: u64) -> Option<Value> {
    let budget = match reasoning? {
        // A zero budget (Gemini's `thinkingBudget: 0`) means no thinking.
        Reasoning::Disabled | Reasoning::Budget(0) => return Some(json!({"type": "disabled"})),
        r => r.budget()?,
    };
    let budget = budget.max(MIN_THINKING_BUDGET);
    let budget = if budget < max_tokens {
        budget
    } else if max_tokens.saturating_sub(1) >= MIN_THINKING_BUDGET {
        max_tokens - 1
    } else {
        log::debug!("anthropic request: thinking left off, max_tokens {max_tokens} too small");
        return None;
    };
    Some(json!({"type": "enabled", "budget_tokens": budget}))
}
