//! Responses API request body (from a client) -> canonical [`ChatRequest`].
//!
//! Every field is translated, accepted as metadata with no effect on the output, or a 400
//! naming it (unless the operator lets it be dropped). Built-in tools (web search, file search,
//! computer use, code interpreter, ...) are a 400 naming the tool: no other target can run them.
//!
//! `input` is a string (one user message) or a list of items, grouped into canonical turns:
//! - `system` / `developer` messages and `instructions` become the system prompt (hoisted, as
//!   in the Chat Completions decoder);
//! - consecutive assistant-side items (`reasoning`, assistant `message`, `function_call`) make
//!   one assistant turn, in order;
//! - consecutive `function_call_output` items make one user turn of tool results;
//! - each user `message` is a user turn of its own.
//!
//! `previous_response_id` is resolved by the gateway before decoding (the stored turns are
//! spliced into `input`); a body that still carries one is refused.

use super::REDACTED_PREFIX;
use crate::dialect::canonical::*;
use crate::dialect::openai::parse_data_url;
use crate::error::GatewayError;
use serde_json::{Map, Value};

/// Top-level fields with no effect on what is generated, accepted and ignored.
const IGNORED: &[&str] = &[
    "store",
    "metadata",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "truncation",
    "stream_options",
];

/// Client body (Responses API) -> canonical.
pub fn decode_request(body: &[u8], opts: &TranslateOptions) -> Result<ChatRequest, GatewayError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(GatewayError::bad_request(
            "request body must be a JSON object",
        ));
    };
    let mut req = ChatRequest::default();
    let mut have_model = false;
    let mut have_input = false;
    let mut instructions = Vec::new();
    for (key, val) in &obj {
        if val.is_null() {
            continue;
        }
        let key = key.as_str();
        match key {
            "model" => {
                req.model = string(val, key)?.to_owned();
                have_model = true;
            }
            "input" => {
                decode_input(val, opts, &mut req)?;
                have_input = true;
            }
            "instructions" => instructions = instructions_parts(val)?,
            "stream" => req.stream = boolean(val, key)?,
            "max_output_tokens" => req.max_tokens = Some(unsigned(val, key)?),
            "temperature" => req.temperature = Some(num(val, key)?),
            "top_p" => req.top_p = Some(num(val, key)?),
            "tools" => req.tools = tools(array(val, key)?, opts)?,
            "tool_choice" => req.tool_choice = tool_choice(val, opts)?,
            "parallel_tool_calls" => req.parallel_tool_calls = Some(boolean(val, key)?),
            "text" => req.response_format = text_config(val, opts)?,
            "reasoning" => req.reasoning = reasoning(val, opts)?,
            "user" => req.user = Some(string(val, key)?.to_owned()),
            "top_logprobs" if val.as_u64() == Some(0) => {}
            "background" if val == &Value::Bool(false) => {}
            "include" => include(val, opts)?,
            "previous_response_id" => {
                return Err(untranslatable(
                    key,
                    "the gateway resolves `previous_response_id` before translation, and \
                     this request skipped that step",
                ))
            }
            "top_logprobs" => {
                opts.drop_or_reject(key, "log probabilities are not available for this target")?
            }
            "background" => opts.drop_or_reject(key, "background responses are OpenAI-specific")?,
            "conversation" => opts.drop_or_reject(
                key,
                "OpenAI conversation objects live at OpenAI; use `previous_response_id`",
            )?,
            "prompt" => opts.drop_or_reject(key, "stored prompt templates live at OpenAI")?,
            "max_tool_calls" => {
                opts.drop_or_reject(key, "a cap on built-in tool calls is OpenAI-specific")?
            }
            _ if IGNORED.contains(&key) => {}
            _ => opts.drop_or_reject(key, "unknown field")?,
        }
    }
    if !have_model {
        return Err(invalid("model", "is required"));
    }
    if !have_input {
        return Err(invalid("input", "is required"));
    }
    instructions.append(&mut req.system);
    req.system = instructions;
    Ok(req)
}

// ---- typed field readers (errors name the field) ----

fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str, GatewayError> {
    v.as_str().ok_or_else(|| invalid(field, "must be a string"))
}

fn boolean(v: &Value, field: &str) -> Result<bool, GatewayError> {
    v.as_bool()
        .ok_or_else(|| invalid(field, "must be a boolean"))
}

fn unsigned(v: &Value, field: &str) -> Result<u64, GatewayError> {
    v.as_u64()
        .ok_or_else(|| invalid(field, "must be a non-negative integer"))
}

fn num(v: &Value, field: &str) -> Result<serde_json::Number, GatewayError> {
    number(v).ok_or_else(|| invalid(field, "must be a number"))
}

fn array<'a>(v: &'a Value, field: &str) -> Result<&'a [Value], GatewayError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(field, "must be an array"))
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, GatewayError> {
    v.as_object()
        .ok_or_else(|| invalid(field, "must be an object"))
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, GatewayError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(string(v, &format!("{path}.{key}"))?.to_owned())),
    }
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, GatewayError> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.{key}"), "must be a string"))
}

/// Rejects (or drops) every non-null key of `obj` not in `known`.
fn check_keys(
    obj: &Map<String, Value>,
    known: &[&str],
    path: &str,
    opts: &TranslateOptions,
) -> Result<(), GatewayError> {
    for (k, v) in obj {
        if !v.is_null() && !known.contains(&k.as_str()) {
            opts.drop_or_reject(&format!("{path}.{k}"), "unknown field")?;
        }
    }
    Ok(())
}

// ---- top-level fields ----

/// `instructions`: a string, or (as OpenAI echoes them) a list of system/developer messages.
fn instructions_parts(v: &Value) -> Result<Vec<Part>, GatewayError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::Text(Text::plain(s.clone()))]),
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("instructions[{i}]");
                let item = object(item, &path)?;
                let content = item
                    .get("content")
                    .ok_or_else(|| invalid(&format!("{path}.content"), "is required"))?;
                out.extend(text_only(content, &path)?);
            }
            Ok(out)
        }
        _ => Err(invalid("instructions", "must be a string")),
    }
}

fn include(v: &Value, opts: &TranslateOptions) -> Result<(), GatewayError> {
    for (i, item) in array(v, "include")?.iter().enumerate() {
        let path = format!("include[{i}]");
        match string(item, &path)? {
            // Reasoning signatures always travel as `encrypted_content` when there are any.
            "reasoning.encrypted_content" => {}
            other => opts.drop_or_reject(
                &path,
                &format!("`{other}` is output only OpenAI's own tools produce"),
            )?,
        }
    }
    Ok(())
}

fn tools(list: &[Value], opts: &TranslateOptions) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let t = object(t, &path)?;
        let ty = t.get("type").and_then(Value::as_str).unwrap_or("function");
        if ty != "function" {
            opts.drop_or_reject(
                &path,
                &format!(
                    "the built-in `{ty}` tool runs only at OpenAI; this target cannot run it \
                     (declare a `function` tool instead)"
                ),
            )?;
            continue;
        }
        check_keys(
            t,
            &["type", "name", "description", "parameters", "strict"],
            &path,
            opts,
        )?;
        let parameters = match t.get("parameters") {
            None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
            Some(p) => {
                object(p, &format!("{path}.parameters"))?;
                p.clone()
            }
        };
        let strict = match t.get("strict") {
            None | Some(Value::Null) => None,
            Some(s) => Some(boolean(s, &format!("{path}.strict"))?),
        };
        out.push(Tool {
            name: required_str(t, "name", &path)?.to_owned(),
            description: opt_string(t, "description", &path)?,
            parameters,
            strict,
        });
    }
    Ok(out)
}

fn tool_choice(v: &Value, opts: &TranslateOptions) -> Result<Option<ToolChoice>, GatewayError> {
    match v {
        Value::String(s) => match s.as_str() {
            "none" => Ok(Some(ToolChoice::None)),
            "auto" => Ok(Some(ToolChoice::Auto)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(invalid(
                "tool_choice",
                "must be `none`, `auto`, `required` or an object",
            )),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => Ok(Some(ToolChoice::Tool(
                required_str(o, "name", "tool_choice")?.to_owned(),
            ))),
            Some(ty) => {
                opts.drop_or_reject(
                    "tool_choice",
                    &format!("a `{ty}` tool choice cannot be translated; name a function"),
                )?;
                Ok(None)
            }
            None => Err(invalid("tool_choice.type", "must be a string")),
        },
        _ => Err(invalid("tool_choice", "must be a string or an object")),
    }
}

/// `text: {format, verbosity}` -> the response format.
fn text_config(v: &Value, opts: &TranslateOptions) -> Result<Option<ResponseFormat>, GatewayError> {
    let o = object(v, "text")?;
    check_keys(o, &["format", "verbosity"], "text", opts)?;
    if let Some(verbosity) = o.get("verbosity").filter(|v| !v.is_null()) {
        if verbosity != "medium" {
            opts.drop_or_reject("text.verbosity", "output verbosity is OpenAI-specific")?;
        }
    }
    let Some(f) = o.get("format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let f = object(f, "text.format")?;
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Some(ResponseFormat::Text)),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let path = "text.format";
            check_keys(
                f,
                &["type", "name", "description", "schema", "strict"],
                path,
                opts,
            )?;
            let schema = match f.get("schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                _ => return Err(invalid("text.format.schema", "must be an object")),
            };
            let strict = match f.get("strict") {
                None | Some(Value::Null) => None,
                Some(s) => Some(boolean(s, "text.format.strict")?),
            };
            Ok(Some(ResponseFormat::JsonSchema {
                name: opt_string(f, "name", path)?,
                description: opt_string(f, "description", path)?,
                schema,
                strict,
            }))
        }
        Some(_) => {
            opts.drop_or_reject("text.format", "unknown output format type")?;
            Ok(None)
        }
        None => Err(invalid("text.format.type", "must be a string")),
    }
}

/// `reasoning: {effort, summary}`. The summary setting asks for nothing the gateway would
/// not do anyway: a target's reasoning, when it shows any, is always passed on.
fn reasoning(v: &Value, opts: &TranslateOptions) -> Result<Option<Reasoning>, GatewayError> {
    let o = object(v, "reasoning")?;
    check_keys(
        o,
        &["effort", "summary", "generate_summary"],
        "reasoning",
        opts,
    )?;
    let Some(effort) = o.get("effort").filter(|e| !e.is_null()) else {
        return Ok(None);
    };
    let effort = string(effort, "reasoning.effort")?;
    if effort == "none" {
        return Ok(Some(Reasoning::Disabled));
    }
    match Effort::parse(effort) {
        Some(e) => Ok(Some(Reasoning::Effort(e))),
        None if effort == "xhigh" => Ok(Some(Reasoning::Effort(Effort::High))),
        None => {
            opts.drop_or_reject(
                "reasoning.effort",
                &format!("effort `{effort}` is not translated"),
            )?;
            Ok(None)
        }
    }
}

// ---- input items ----

/// Which side the last canonical message was built from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    /// An assistant turn (more assistant-side items join it).
    Assistant,
    /// A run of tool results (more `function_call_output` items join it).
    ToolResults,
    /// A user message (stands alone).
    User,
}

fn decode_input(
    v: &Value,
    opts: &TranslateOptions,
    req: &mut ChatRequest,
) -> Result<(), GatewayError> {
    let items = match v {
        Value::String(s) => {
            req.messages.push(Message {
                role: Role::User,
                content: vec![Part::Text(Text::plain(s.clone()))],
            });
            return Ok(());
        }
        Value::Array(items) => items,
        _ => return Err(invalid("input", "must be a string or an array of items")),
    };
    let mut open = Open::None;
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        let item = object(item, &path)?;
        let ty = match item.get("type") {
            None | Some(Value::Null) => "message",
            Some(t) => string(t, &format!("{path}.type"))?,
        };
        let (side, parts) = match ty {
            "message" => match message(item, &path, opts, req)? {
                Some(m) => m,
                None => continue,
            },
            "function_call" => (Open::Assistant, vec![function_call(item, &path, opts)?]),
            "function_call_output" => (
                Open::ToolResults,
                vec![function_call_output(item, &path, opts)?],
            ),
            "reasoning" => match reasoning_item(item, &path, opts)? {
                Some(p) => (Open::Assistant, vec![p]),
                None => continue,
            },
            "item_reference" => {
                return Err(untranslatable(
                    &path,
                    "an `item_reference` names an item stored at OpenAI; send the item itself",
                ))
            }
            other => {
                opts.drop_or_reject(
                    &path,
                    &format!("a `{other}` item comes from a built-in tool this target cannot run"),
                )?;
                continue;
            }
        };
        let joins = side == open && matches!(side, Open::Assistant | Open::ToolResults);
        match req.messages.last_mut() {
            Some(last) if joins => last.content.extend(parts),
            _ => req.messages.push(Message {
                role: if side == Open::Assistant {
                    Role::Assistant
                } else {
                    Role::User
                },
                content: parts,
            }),
        }
        open = side;
    }
    Ok(())
}

/// A message item; system and developer messages go to the system prompt (`None`).
fn message(
    item: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
    req: &mut ChatRequest,
) -> Result<Option<(Open, Vec<Part>)>, GatewayError> {
    check_keys(
        item,
        &["type", "role", "content", "id", "status"],
        path,
        opts,
    )?;
    let role = required_str(item, "role", path)?;
    let content = item
        .get("content")
        .filter(|c| !c.is_null())
        .ok_or_else(|| invalid(&format!("{path}.content"), "is required"))?;
    match role {
        "system" | "developer" => {
            req.system.extend(text_only(content, path)?);
            Ok(None)
        }
        "user" => Ok(Some((Open::User, user_content(content, path, opts)?))),
        "assistant" => Ok(Some((
            Open::Assistant,
            assistant_content(content, path, opts)?,
        ))),
        _ => Err(invalid(
            &format!("{path}.role"),
            "must be user, assistant, system or developer",
        )),
    }
}

/// Text-only content (system prompts): a string or `input_text` / `output_text` parts.
fn text_only(content: &Value, path: &str) -> Result<Vec<Part>, GatewayError> {
    let items = match content {
        Value::String(s) => return Ok(vec![Part::Text(Text::plain(s.clone()))]),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                &format!("{path}.content"),
                "must be a string or an array of parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (j, p) in items.iter().enumerate() {
        let pp = format!("{path}.content[{j}]");
        let p = object(p, &pp)?;
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                out.push(Part::Text(Text::plain(required_str(p, "text", &pp)?)))
            }
            _ => {
                return Err(untranslatable(
                    &pp,
                    "instructions other than text have no equivalent",
                ))
            }
        }
    }
    Ok(out)
}

fn user_content(
    content: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Vec<Part>, GatewayError> {
    let items = match content {
        Value::String(s) => return Ok(vec![Part::Text(Text::plain(s.clone()))]),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                &format!("{path}.content"),
                "must be a string or an array of parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (j, p) in items.iter().enumerate() {
        let pp = format!("{path}.content[{j}]");
        if let Some(part) = input_part(p, &pp, opts)? {
            out.push(part);
        }
    }
    Ok(out)
}

/// One `input_text` / `input_image` part (others are refused or dropped).
fn input_part(
    p: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Option<Part>, GatewayError> {
    let p = object(p, path)?;
    let ty = required_str(p, "type", path)?;
    match ty {
        "input_text" | "text" => {
            check_keys(p, &["type", "text"], path, opts)?;
            Ok(Some(Part::Text(Text::plain(required_str(
                p, "text", path,
            )?))))
        }
        "input_image" => {
            check_keys(p, &["type", "image_url", "file_id", "detail"], path, opts)?;
            if p.get("file_id").is_some_and(|f| !f.is_null()) {
                opts.drop_or_reject(
                    &format!("{path}.file_id"),
                    "a file id names a file stored at OpenAI; send `image_url` instead",
                )?;
                return Ok(None);
            }
            let url = required_str(p, "image_url", path)?;
            let source = match url.get(..5) {
                Some(scheme) if scheme.eq_ignore_ascii_case("data:") => {
                    parse_data_url(url.get(5..).unwrap_or_default()).ok_or_else(|| {
                        invalid(
                            &format!("{path}.image_url"),
                            "a data URL must be `data:<media type>;base64,<data>`",
                        )
                    })?
                }
                _ => ImageSource::Url(url.to_owned()),
            };
            Ok(Some(Part::Image(Image {
                source,
                detail: opt_string(p, "detail", path)?.filter(|d| d != "auto"),
            })))
        }
        _ => {
            opts.drop_or_reject(path, &format!("`{ty}` input parts are not translated"))?;
            Ok(None)
        }
    }
}

fn assistant_content(
    content: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Vec<Part>, GatewayError> {
    let items = match content {
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![Part::Text(Text::plain(s.clone()))]),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                &format!("{path}.content"),
                "must be a string or an array of parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (j, p) in items.iter().enumerate() {
        let pp = format!("{path}.content[{j}]");
        let p = object(p, &pp)?;
        match required_str(p, "type", &pp)? {
            // Annotations and log probabilities describe the text; the text is what counts.
            "output_text" | "input_text" | "text" => {
                out.push(Part::Text(Text::plain(required_str(p, "text", &pp)?)))
            }
            "refusal" => out.push(Part::Text(Text::plain(required_str(p, "refusal", &pp)?))),
            ty => opts.drop_or_reject(&pp, &format!("`{ty}` parts are not translated"))?,
        }
    }
    Ok(out)
}

fn function_call(
    item: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Part, GatewayError> {
    check_keys(
        item,
        &["type", "call_id", "name", "arguments", "id", "status"],
        path,
        opts,
    )?;
    let arguments = match item.get("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(o @ Value::Object(_)) => o.to_string(),
        Some(_) => {
            return Err(invalid(
                &format!("{path}.arguments"),
                "must be a string of JSON",
            ))
        }
    };
    Ok(Part::ToolCall(ToolCall {
        id: required_str(item, "call_id", path)?.to_owned(),
        name: required_str(item, "name", path)?.to_owned(),
        arguments,
    }))
}

fn function_call_output(
    item: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Part, GatewayError> {
    check_keys(
        item,
        &["type", "call_id", "output", "id", "status"],
        path,
        opts,
    )?;
    let output = item
        .get("output")
        .ok_or_else(|| invalid(&format!("{path}.output"), "is required"))?;
    let content = match output {
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![Part::Text(Text::plain(s.clone()))],
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                if let Some(part) = input_part(p, &format!("{path}.output[{j}]"), opts)? {
                    out.push(part);
                }
            }
            out
        }
        _ => {
            return Err(invalid(
                &format!("{path}.output"),
                "must be a string or an array of parts",
            ))
        }
    };
    Ok(Part::ToolResult(ToolResult {
        call_id: required_str(item, "call_id", path)?.to_owned(),
        content,
        is_error: false,
    }))
}

/// A reasoning item: its summary (or raw reasoning) text and its signature
/// (`encrypted_content`); `None` when it carries neither.
fn reasoning_item(
    item: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Option<Part>, GatewayError> {
    check_keys(
        item,
        &[
            "type",
            "id",
            "summary",
            "content",
            "encrypted_content",
            "status",
        ],
        path,
        opts,
    )?;
    let encrypted = opt_string(item, "encrypted_content", path)?;
    if let Some(data) = encrypted
        .as_deref()
        .and_then(|e| e.strip_prefix(REDACTED_PREFIX))
    {
        return Ok(Some(Part::RedactedThinking {
            data: data.to_owned(),
        }));
    }
    let texts = |key: &str| -> Result<Vec<String>, GatewayError> {
        match item.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => array(v, &format!("{path}.{key}"))?
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let pp = format!("{path}.{key}[{j}]");
                    required_str(object(p, &pp)?, "text", &pp).map(str::to_owned)
                })
                .collect(),
        }
    };
    let mut text = texts("summary")?;
    if text.is_empty() {
        text = texts("content")?;
    }
    if text.is_empty() && encrypted.is_none() {
        return Ok(None);
    }
    Ok(Some(Part::Thinking {
        text: text.join("\n\n"),
        signature: encrypted,
    }))
}
