//! Anthropic Messages request (a client's body) -> canonical [`ChatRequest`].
//!
//! Strict by design: Anthropic itself rejects fields it does not know, so an unknown field at
//! any level is a 400 naming its JSON path (top-level ones may be dropped instead when the
//! operator lists them in `translation.drop`). A JSON `null` counts as absent everywhere.
//! Features that only Anthropic's servers provide (server tools, documents, search results,
//! containers, MCP servers, context management) are refused: no other provider can honour
//! them, and their absence would change the answer.

use serde_json::{Map, Value};

use crate::dialect::canonical::*;
use crate::error::GatewayError;

type Obj = Map<String, Value>;

/// Top-level fields accepted and ignored, with why dropping each is safe.
const IGNORED: &[(&str, &str)] = &[
    // `auto`/`standard_only`: which capacity pool Anthropic serves the request from. It
    // changes latency and billing, never the content of the answer.
    ("service_tier", "capacity tier only"),
];

/// Top-level fields the gateway knows but cannot translate, with why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "container",
        "code-execution containers exist only on Anthropic's servers",
    ),
    (
        "mcp_servers",
        "the MCP connector runs on Anthropic's servers",
    ),
    (
        "context_management",
        "context editing is done by Anthropic's servers",
    ),
];

/// Client body (Anthropic Messages) -> canonical. See the module docs.
pub fn decode_request(body: &[u8], opts: &TranslateOptions) -> Result<ChatRequest, GatewayError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(GatewayError::bad_request(
            "request body must be a JSON object",
        ));
    };
    let mut req = ChatRequest::default();
    let mut has_model = false;
    let mut has_messages = false;
    for (key, val) in &obj {
        if val.is_null() {
            continue;
        }
        match key.as_str() {
            "model" => {
                req.model = string(val, "model")?;
                has_model = true;
            }
            "messages" => {
                req.messages = messages(val)?;
                has_messages = true;
            }
            "system" => req.system = system(val)?,
            "max_tokens" => req.max_tokens = Some(uint(val, "max_tokens")?),
            "stop_sequences" => req.stop = strings(val, "stop_sequences")?,
            "temperature" => req.temperature = Some(number_of(val, "temperature")?),
            "top_p" => req.top_p = Some(number_of(val, "top_p")?),
            "top_k" => req.top_k = Some(uint(val, "top_k")?),
            "stream" => req.stream = boolean(val, "stream")?,
            "tools" => req.tools = tools(val)?,
            "tool_choice" => tool_choice(val, &mut req)?,
            "thinking" => req.reasoning = Some(thinking(val)?),
            "metadata" => req.user = metadata(val)?,
            "output_format" => req.response_format = Some(output_format(val, "output_format")?),
            "output_config" => output_config(val, &mut req)?,
            k if IGNORED.iter().any(|(name, _)| *name == k) => {
                log::debug!("anthropic request: ignored `{k}`");
            }
            k if opts.may_drop(k) => log::debug!("anthropic request: dropped `{k}` (configured)"),
            k => {
                let why = UNSUPPORTED
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map_or("unknown field", |(_, why)| why);
                return Err(untranslatable(k, why));
            }
        }
    }
    if !has_model {
        return Err(invalid("model", "required"));
    }
    if !has_messages {
        return Err(invalid("messages", "required"));
    }
    Ok(req)
}

// ---- scalars -------------------------------------------------------------------------------

fn string(v: &Value, path: &str) -> Result<String, GatewayError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(path, "must be a string"))
}

fn uint(v: &Value, path: &str) -> Result<u64, GatewayError> {
    v.as_u64()
        .ok_or_else(|| invalid(path, "must be a non-negative integer"))
}

fn boolean(v: &Value, path: &str) -> Result<bool, GatewayError> {
    v.as_bool()
        .ok_or_else(|| invalid(path, "must be a boolean"))
}

fn number_of(v: &Value, path: &str) -> Result<serde_json::Number, GatewayError> {
    number(v).ok_or_else(|| invalid(path, "must be a number"))
}

fn strings(v: &Value, path: &str) -> Result<Vec<String>, GatewayError> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(path, "must be an array of strings"))?;
    arr.iter()
        .enumerate()
        .map(|(i, s)| string(s, &format!("{path}[{i}]")))
        .collect()
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, GatewayError> {
    v.as_object()
        .ok_or_else(|| invalid(path, "must be an object"))
}

/// A present, non-null member.
fn get<'a>(o: &'a Obj, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn required<'a>(o: &'a Obj, key: &str, path: &str) -> Result<&'a Value, GatewayError> {
    get(o, key).ok_or_else(|| invalid(&format!("{path}.{key}"), "required"))
}

/// 400 for the first non-null member of `o` that is not `type` nor in `known` (nested fields
/// cannot be dropped by configuration, so this is `invalid`, not `untranslatable`).
fn only_known(o: &Obj, known: &[&str], path: &str) -> Result<(), GatewayError> {
    for (k, v) in o {
        if k != "type" && !v.is_null() && !known.contains(&k.as_str()) {
            return Err(invalid(
                &format!("{path}.{k}"),
                "unknown or unsupported field (the gateway translates this request for other \
                 providers and will not lose it silently)",
            ));
        }
    }
    Ok(())
}

fn type_of(o: &Obj) -> Option<&str> {
    o.get("type").and_then(Value::as_str)
}

// ---- system and messages --------------------------------------------------------------------

fn system(v: &Value) -> Result<Vec<Part>, GatewayError> {
    match v {
        Value::String(s) => Ok(vec![Part::Text(Text::plain(s.clone()))]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let path = format!("system[{i}]");
                let o = object(b, &path)?;
                match type_of(o) {
                    Some("text") => text_block(o, &path),
                    _ => Err(untranslatable(&path, "system blocks must be text")),
                }
            })
            .collect(),
        _ => Err(invalid(
            "system",
            "must be a string or an array of text blocks",
        )),
    }
}

fn messages(v: &Value) -> Result<Vec<Message>, GatewayError> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid("messages", "must be an array"))?;
    arr.iter()
        .enumerate()
        .map(|(i, m)| message(m, &format!("messages[{i}]")))
        .collect()
}

fn message(v: &Value, path: &str) -> Result<Message, GatewayError> {
    let o = object(v, path)?;
    only_known(o, &["role", "content"], path)?;
    let role = match required(o, "role", path)?.as_str() {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => {
            return Err(invalid(
                &format!("{path}.role"),
                "must be `user` or `assistant`",
            ))
        }
    };
    let content = match required(o, "content", path)? {
        Value::String(s) => vec![Part::Text(Text::plain(s.clone()))],
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(j, b)| content_block(b, &format!("{path}.content[{j}]")))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                &format!("{path}.content"),
                "must be a string or an array of content blocks",
            ))
        }
    };
    Ok(Message { role, content })
}

/// One block of a message's content.
fn content_block(v: &Value, path: &str) -> Result<Part, GatewayError> {
    let o = object(v, path)?;
    match type_of(o) {
        Some("text") => text_block(o, path),
        Some("image") => image_block(o, path),
        Some("tool_use") => {
            // `cache_control` on non-text blocks is dropped: the canonical model keeps cache
            // markers on text only, and a marker changes cost, never the answer.
            only_known(o, &["id", "name", "input", "cache_control"], path)?;
            let input = required(o, "input", path)?;
            if !input.is_object() {
                return Err(invalid(&format!("{path}.input"), "must be an object"));
            }
            Ok(Part::ToolCall(ToolCall {
                id: string(required(o, "id", path)?, &format!("{path}.id"))?,
                name: string(required(o, "name", path)?, &format!("{path}.name"))?,
                arguments: input.to_string(),
            }))
        }
        Some("tool_result") => tool_result(o, path),
        Some("thinking") => {
            only_known(o, &["thinking", "signature"], path)?;
            let text = string(required(o, "thinking", path)?, &format!("{path}.thinking"))?;
            let signature = match get(o, "signature") {
                Some(s) => Some(string(s, &format!("{path}.signature"))?),
                None => None,
            };
            // An empty signature is no signature (our own responses write "" for unsigned
            // thinking from other providers).
            let signature = signature.filter(|s| !s.is_empty());
            Ok(Part::Thinking { text, signature })
        }
        Some("redacted_thinking") => {
            only_known(o, &["data"], path)?;
            let data = string(required(o, "data", path)?, &format!("{path}.data"))?;
            Ok(Part::RedactedThinking { data })
        }
        Some(other) => Err(untranslatable(
            path,
            &format!("`{other}` blocks are an Anthropic-only feature"),
        )),
        None => Err(invalid(&format!("{path}.type"), "required")),
    }
}

fn text_block(o: &Obj, path: &str) -> Result<Part, GatewayError> {
    // `citations` (on text echoed back from an earlier answer) only annotate the text.
    only_known(o, &["text", "cache_control", "citations"], path)?;
    Ok(Part::Text(Text {
        text: string(required(o, "text", path)?, &format!("{path}.text"))?,
        cache_control: get(o, "cache_control").cloned(),
    }))
}

fn image_block(o: &Obj, path: &str) -> Result<Part, GatewayError> {
    only_known(o, &["source", "cache_control"], path)?;
    let src_path = format!("{path}.source");
    let src = object(required(o, "source", path)?, &src_path)?;
    let source =
        match type_of(src) {
            Some("base64") => {
                only_known(src, &["media_type", "data"], &src_path)?;
                ImageSource::Base64 {
                    media_type: string(
                        required(src, "media_type", &src_path)?,
                        &format!("{src_path}.media_type"),
                    )?,
                    data: string(
                        required(src, "data", &src_path)?,
                        &format!("{src_path}.data"),
                    )?,
                }
            }
            Some("url") => {
                only_known(src, &["url"], &src_path)?;
                ImageSource::Url(string(
                    required(src, "url", &src_path)?,
                    &format!("{src_path}.url"),
                )?)
            }
            _ => return Err(untranslatable(
                path,
                "only base64 and url image sources translate (Files API ids are Anthropic-only)",
            )),
        };
    Ok(Part::Image(Image {
        source,
        detail: None,
    }))
}

fn tool_result(o: &Obj, path: &str) -> Result<Part, GatewayError> {
    only_known(
        o,
        &["tool_use_id", "content", "is_error", "cache_control"],
        path,
    )?;
    let call_id = string(
        required(o, "tool_use_id", path)?,
        &format!("{path}.tool_use_id"),
    )?;
    let content = match get(o, "content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Part::Text(Text::plain(s.clone()))],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let p = format!("{path}.content[{k}]");
                let bo = object(b, &p)?;
                match type_of(bo) {
                    Some("text") => text_block(bo, &p),
                    Some("image") => image_block(bo, &p),
                    _ => Err(untranslatable(
                        &p,
                        "tool results translate only with text and image blocks",
                    )),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid(
                &format!("{path}.content"),
                "must be a string or an array of blocks",
            ))
        }
    };
    let is_error = match get(o, "is_error") {
        Some(v) => boolean(v, &format!("{path}.is_error"))?,
        None => false,
    };
    Ok(Part::ToolResult(ToolResult {
        call_id,
        content,
        is_error,
    }))
}

// ---- tools and options ----------------------------------------------------------------------

fn tools(v: &Value) -> Result<Vec<Tool>, GatewayError> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid("tools", "must be an array"))?;
    arr.iter()
        .enumerate()
        .map(|(k, t)| tool(t, &format!("tools[{k}]")))
        .collect()
}

fn tool(v: &Value, path: &str) -> Result<Tool, GatewayError> {
    let o = object(v, path)?;
    match o.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "custom" => {}
        Some(t) => {
            let name = t.as_str().map_or_else(|| t.to_string(), str::to_owned);
            return Err(untranslatable(
                path,
                &format!("server tool `{name}` runs on Anthropic's servers"),
            ));
        }
    }
    // `cache_control` on a tool is dropped: it marks a prompt-cache breakpoint, which changes
    // cost, never the answer, and only Anthropic targets have prompt caching of this kind.
    only_known(
        o,
        &[
            "name",
            "description",
            "input_schema",
            "cache_control",
            "strict",
        ],
        path,
    )?;
    let parameters = required(o, "input_schema", path)?;
    if !parameters.is_object() {
        return Err(invalid(
            &format!("{path}.input_schema"),
            "must be an object",
        ));
    }
    Ok(Tool {
        name: string(required(o, "name", path)?, &format!("{path}.name"))?,
        description: match get(o, "description") {
            Some(d) => Some(string(d, &format!("{path}.description"))?),
            None => None,
        },
        parameters: parameters.clone(),
        strict: match get(o, "strict") {
            Some(s) => Some(boolean(s, &format!("{path}.strict"))?),
            None => None,
        },
    })
}

fn tool_choice(v: &Value, req: &mut ChatRequest) -> Result<(), GatewayError> {
    let o = object(v, "tool_choice")?;
    only_known(o, &["name", "disable_parallel_tool_use"], "tool_choice")?;
    let choice = match type_of(o) {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => ToolChoice::Tool(string(
            required(o, "name", "tool_choice")?,
            "tool_choice.name",
        )?),
        _ => {
            return Err(invalid(
                "tool_choice.type",
                "must be `auto`, `any`, `tool` or `none`",
            ))
        }
    };
    req.tool_choice = Some(choice);
    if let Some(d) = get(o, "disable_parallel_tool_use") {
        if boolean(d, "tool_choice.disable_parallel_tool_use")? {
            req.parallel_tool_calls = Some(false);
        }
    }
    Ok(())
}

fn thinking(v: &Value) -> Result<Reasoning, GatewayError> {
    let o = object(v, "thinking")?;
    match type_of(o) {
        Some("enabled") => {
            only_known(o, &["budget_tokens"], "thinking")?;
            Ok(Reasoning::Budget(uint(
                required(o, "budget_tokens", "thinking")?,
                "thinking.budget_tokens",
            )?))
        }
        Some("disabled") => {
            only_known(o, &[], "thinking")?;
            Ok(Reasoning::Disabled)
        }
        _ => Err(untranslatable(
            "thinking.type",
            "only `enabled` (with budget_tokens) and `disabled` translate",
        )),
    }
}

/// `metadata.user_id` -> the end user. Anthropic defines no other metadata key; any other key
/// is ignored (metadata never changes the answer).
fn metadata(v: &Value) -> Result<Option<String>, GatewayError> {
    let o = object(v, "metadata")?;
    match get(o, "user_id") {
        Some(u) => Ok(Some(string(u, "metadata.user_id")?)),
        None => Ok(None),
    }
}

fn output_format(v: &Value, path: &str) -> Result<ResponseFormat, GatewayError> {
    let o = object(v, path)?;
    if type_of(o) != Some("json_schema") {
        return Err(invalid(&format!("{path}.type"), "must be `json_schema`"));
    }
    only_known(o, &["schema"], path)?;
    let schema = required(o, "schema", path)?;
    if !schema.is_object() {
        return Err(invalid(&format!("{path}.schema"), "must be an object"));
    }
    Ok(ResponseFormat::JsonSchema {
        name: None,
        description: None,
        schema: schema.clone(),
        // Anthropic's structured outputs are always enforced.
        strict: Some(true),
    })
}

/// The GA form of structured outputs: `output_config.format` (same shape as `output_format`).
fn output_config(v: &Value, req: &mut ChatRequest) -> Result<(), GatewayError> {
    let o = object(v, "output_config")?;
    only_known(o, &["format"], "output_config")?;
    if let Some(f) = get(o, "format") {
        req.response_format = Some(output_format(f, "output_config.format")?);
    }
    Ok(())
}
