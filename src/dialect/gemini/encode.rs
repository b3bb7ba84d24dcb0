//! Canonical request -> Gemini `GenerateContentRequest` body ([`encode_request`]).
//!
//! The model and the stream choice go in the URL (`super::path_for`), not in the body.

use serde_json::{json, Map, Value};

use crate::dialect::canonical::*;
use crate::error::{ErrorKind, GatewayError};

/// Why an image URL cannot be sent.
pub(crate) const URL_IMAGE_WHY: &str =
    "Gemini cannot fetch image URLs; send the image inline (base64)";

/// The key of `functionResponse.response` that carries a tool's output. Google's API
/// reference: "Use "output" key to specify function output and "error" key to specify error
/// details (if any)".
pub(crate) const OUTPUT_KEY: &str = "output";
/// The key that carries a failed tool's error.
pub(crate) const ERROR_KEY: &str = "error";

/// Canonical -> Gemini request body JSON. `model` is unused: it goes in the URL.
///
/// Not sent, on purpose (they change nothing Gemini could act on):
/// - `user`: Gemini has no end-user field; it only serves abuse tracking, never the output.
/// - `stream` / `include_usage`: the stream choice is the URL; Gemini always reports usage.
/// - `Text::cache_control`: Anthropic's prompt-caching marker; Gemini caches implicitly, and
///   the marker never changes the answer.
/// - `Image::detail`: OpenAI's resolution hint; Gemini picks its own resolution.
/// - `Tool::strict`, `JsonSchema` `name`/`description`/`strict`: Gemini has no such switches;
///   the schema itself is sent and Gemini constrains the output to it.
pub fn encode_request(
    req: &ChatRequest,
    _model: &str,
    opts: &TranslateOptions,
) -> Result<Vec<u8>, GatewayError> {
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents(req, opts)?));
    if let Some(system) = system_instruction(req, opts)? {
        body.insert("systemInstruction".into(), system);
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req.tools.iter().map(declaration).collect();
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("toolConfig".into(), tool_config(choice));
    }
    if req.parallel_tool_calls == Some(false) {
        opts.drop_or_reject(
            "parallel_tool_calls",
            "Gemini has no switch to limit a turn to one function call",
        )?;
    }
    let config = generation_config(req);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    serde_json::to_vec(&Value::Object(body))
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("encoding request: {e}")))
}

fn system_instruction(
    req: &ChatRequest,
    opts: &TranslateOptions,
) -> Result<Option<Value>, GatewayError> {
    let mut parts = Vec::new();
    for (k, part) in req.system.iter().enumerate() {
        match part {
            Part::Text(t) if t.text.is_empty() => {}
            Part::Text(t) => parts.push(json!({ "text": t.text })),
            _ => opts.drop_or_reject(
                &format!("system[{k}]"),
                "Gemini system instructions hold text only",
            )?,
        }
    }
    Ok((!parts.is_empty()).then(|| json!({ "parts": parts })))
}

/// `contents`: one entry per message that has anything Gemini can carry.
fn contents(req: &ChatRequest, opts: &TranslateOptions) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::with_capacity(req.messages.len());
    for (i, message) in req.messages.iter().enumerate() {
        let mut parts = Vec::with_capacity(message.content.len());
        for (j, part) in message.content.iter().enumerate() {
            let field = format!("messages[{i}].content[{j}]");
            match part {
                // Gemini rejects empty text parts.
                Part::Text(t) if t.text.is_empty() => {}
                Part::Text(t) => parts.push(json!({ "text": t.text })),
                Part::Image(image) => {
                    if let Some(p) = image_part(image, &field, opts)? {
                        parts.push(p);
                    }
                }
                Part::ToolCall(call) => {
                    let args = arguments_object(&call.arguments, &format!("{field}.arguments"))?;
                    // No `id`: Gemini matches responses to calls by name and order (and
                    // Vertex rejects an `id` it did not issue).
                    parts.push(json!({ "functionCall": { "name": call.name, "args": args } }));
                }
                Part::ToolResult(result) => {
                    parts.push(function_response(req, i, result, &field, opts)?);
                }
                // Thinking from earlier turns is dropped: Gemini only accepts its own thoughts
                // back, identified by its own `thoughtSignature`s, which other providers'
                // thinking (and Anthropic's signatures) are not.
                Part::Thinking { .. } | Part::RedactedThinking { .. } => {}
            }
        }
        if parts.is_empty() {
            continue;
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        out.push(json!({ "role": role, "parts": parts }));
    }
    Ok(out)
}

/// An image as an `inlineData` part; a URL is dropped or rejected.
fn image_part(
    image: &Image,
    field: &str,
    opts: &TranslateOptions,
) -> Result<Option<Value>, GatewayError> {
    match &image.source {
        ImageSource::Base64 { media_type, data } => Ok(Some(
            json!({ "inlineData": { "mimeType": media_type, "data": data } }),
        )),
        ImageSource::Url(_) => opts.drop_or_reject(field, URL_IMAGE_WHY).map(|()| None),
    }
}

/// A tool result as a `functionResponse` part. Gemini names the function, not the call, so
/// the name comes from the call with this id earlier in the history.
fn function_response(
    req: &ChatRequest,
    i: usize,
    result: &ToolResult,
    field: &str,
    opts: &TranslateOptions,
) -> Result<Value, GatewayError> {
    let name = req
        .messages
        .iter()
        .take(i)
        .rev()
        .flat_map(|m| m.content.iter().rev())
        .find_map(|p| match p {
            Part::ToolCall(c) if c.id == result.call_id => Some(c.name.as_str()),
            _ => None,
        })
        .ok_or_else(|| {
            invalid(
                field,
                &format!(
                    "no earlier tool call has id `{}` (Gemini needs the called function's name)",
                    result.call_id
                ),
            )
        })?;
    let mut texts = Vec::with_capacity(result.content.len());
    for (k, part) in result.content.iter().enumerate() {
        match part {
            Part::Text(t) => texts.push(t.text.as_str()),
            Part::Image(_) => opts.drop_or_reject(
                &format!("{field}.content[{k}]"),
                "Gemini function responses carry no images",
            )?,
            _ => opts.drop_or_reject(
                &format!("{field}.content[{k}]"),
                "Gemini function responses carry text only",
            )?,
        }
    }
    let text = texts.join("\n");
    // A result that is a JSON object is sent as structured data; anything else as a string.
    let value = match serde_json::from_str::<Value>(&text) {
        Ok(obj @ Value::Object(_)) => obj,
        _ => Value::String(text),
    };
    let key = if result.is_error {
        ERROR_KEY
    } else {
        OUTPUT_KEY
    };
    let mut response = Map::new();
    response.insert(key.into(), value);
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

/// One `functionDeclarations` entry. `parametersJsonSchema` takes full JSON Schema (the older
/// `parameters` takes only Google's OpenAPI subset).
fn declaration(tool: &Tool) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), json!(tool.name));
    if let Some(desc) = &tool.description {
        d.insert("description".into(), json!(desc));
    }
    if !tool.parameters.is_null() {
        d.insert("parametersJsonSchema".into(), tool.parameters.clone());
    }
    Value::Object(d)
}

fn tool_config(choice: &ToolChoice) -> Value {
    let config = match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Tool(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    };
    json!({ "functionCallingConfig": config })
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut g = Map::new();
    if let Some(n) = req.max_tokens {
        g.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(n) = &req.temperature {
        g.insert("temperature".into(), Value::Number(n.clone()));
    }
    if let Some(n) = &req.top_p {
        g.insert("topP".into(), Value::Number(n.clone()));
    }
    if let Some(n) = req.top_k {
        g.insert("topK".into(), json!(n));
    }
    if !req.stop.is_empty() {
        g.insert("stopSequences".into(), json!(req.stop));
    }
    if let Some(n) = req.seed {
        g.insert("seed".into(), json!(n));
    }
    if let Some(n) = &req.presence_penalty {
        g.insert("presencePenalty".into(), Value::Number(n.clone()));
    }
    if let Some(n) = &req.frequency_penalty {
        g.insert("frequencyPenalty".into(), Value::Number(n.clone()));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), json!("application/json"));
            g.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if let Some(reasoning) = req.reasoning {
        let thinking = match reasoning.budget() {
            Some(budget) => json!({ "thinkingBudget": budget, "includeThoughts": true }),
            None => json!({ "thinkingBudget": 0 }),
        };
        g.insert("thinkingConfig".into(), thinking);
    }
    g
}
