//! OpenAI Chat Completions request body (from a client) -> canonical [`ChatRequest`].
//!
//! Every field is either translated, explicitly accepted as a no-op value (`n: 1`,
//! `logprobs: false`, ...), listed in [`IGNORED_METADATA`], or a 400 naming it (unless the
//! operator lets it be dropped: `opts.drop_or_reject`). A JSON `null` counts as absent.
//!
//! Messages:
//! - `system` and `developer` messages are hoisted into `ChatRequest::system`, in order,
//!   *wherever they appear* in the list (the canonical model, like Anthropic and Gemini, has one
//!   system prompt; a mid-conversation system message thus moves to the front).
//! - `tool` messages become `ToolResult` parts of a user message; a run of consecutive tool
//!   messages becomes ONE user message. A user message right after them stays its own message.
//! - Assistant `reasoning_content` / `reasoning` (sent back by clients of OpenAI-compatible
//!   reasoning providers) become a `Thinking` part placed before the text.

use crate::dialect::canonical::*;
use crate::error::GatewayError;
use serde_json::{Map, Value};

/// Top-level fields with no effect on the generated output, ignored when translating.
pub(super) const IGNORED_METADATA: &[(&str, &str)] = &[
    (
        "store",
        "asks OpenAI to keep the completion for its dashboard/evals; output is unchanged",
    ),
    (
        "metadata",
        "tags for stored completions; output is unchanged",
    ),
    (
        "service_tier",
        "OpenAI's processing tier (latency/price), not what is generated",
    ),
    (
        "prompt_cache_key",
        "a routing hint for OpenAI's prompt cache; output is unchanged",
    ),
    (
        "safety_identifier",
        "an end-user hash for OpenAI's abuse monitoring; output is unchanged",
    ),
];

/// The default `parameters` of a tool that has none: an object with no properties.
fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// Client body (OpenAI Chat Completions) -> canonical.
pub fn decode_request(body: &[u8], opts: &TranslateOptions) -> Result<ChatRequest, GatewayError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(GatewayError::bad_request(
            "request body must be a JSON object",
        ));
    };
    let mut req = ChatRequest::default();
    let mut max_tokens = None;
    let mut max_completion_tokens = None;
    let mut have_model = false;
    let mut have_messages = false;
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
            "messages" => {
                decode_messages(array(val, key)?, opts, &mut req)?;
                have_messages = true;
            }
            "stream" => req.stream = boolean(val, key)?,
            "stream_options" => req.include_usage = stream_options(val, opts)?,
            "max_completion_tokens" => max_completion_tokens = Some(unsigned(val, key)?),
            "max_tokens" => max_tokens = Some(unsigned(val, key)?),
            "temperature" => req.temperature = Some(num(val, key)?),
            "top_p" => req.top_p = Some(num(val, key)?),
            // Not OpenAI's, but accepted by many OpenAI-compatible servers (vLLM, OpenRouter);
            // the canonical model has it, so it is translated rather than refused.
            "top_k" => req.top_k = Some(unsigned(val, key)?),
            "stop" => req.stop = stop(val)?,
            "tools" => req.tools = tools(array(val, key)?, opts)?,
            "tool_choice" => req.tool_choice = tool_choice(val, opts)?,
            "parallel_tool_calls" => req.parallel_tool_calls = Some(boolean(val, key)?),
            "response_format" => req.response_format = response_format(val, opts)?,
            "reasoning_effort" => req.reasoning = reasoning_effort(val, opts)?,
            "user" => req.user = Some(string(val, key)?.to_owned()),
            "seed" => {
                req.seed = Some(
                    val.as_i64()
                        .ok_or_else(|| invalid(key, "must be an integer"))?,
                )
            }
            "presence_penalty" => req.presence_penalty = Some(num(val, key)?),
            "frequency_penalty" => req.frequency_penalty = Some(num(val, key)?),
            // Accepted when they ask for nothing beyond the default.
            "n" if val.as_u64() == Some(1) => {}
            "logprobs" if val == &Value::Bool(false) => {}
            "top_logprobs" if val.as_u64() == Some(0) => {}
            "logit_bias" if val.as_object().is_some_and(Map::is_empty) => {}
            "modalities" if is_text_only_modalities(val) => {}
            "n" => opts.drop_or_reject(key, "only one choice (`n: 1`) can be translated")?,
            "logprobs" | "top_logprobs" => {
                opts.drop_or_reject(key, "log probabilities are not available for this target")?
            }
            "logit_bias" => opts.drop_or_reject(key, "token biases are OpenAI-specific")?,
            "modalities" | "audio" => {
                opts.drop_or_reject(key, "only text output can be translated")?
            }
            "prediction" => opts.drop_or_reject(key, "predicted outputs are OpenAI-specific")?,
            "web_search_options" => {
                opts.drop_or_reject(key, "OpenAI's built-in web search is OpenAI-specific")?
            }
            "functions" | "function_call" => opts.drop_or_reject(
                key,
                "legacy function calling is not translated; use `tools` and `tool_choice`",
            )?,
            _ if IGNORED_METADATA.iter().any(|(k, _)| *k == key) => {}
            _ => opts.drop_or_reject(key, "unknown field")?,
        }
    }
    if !have_model {
        return Err(invalid("model", "is required"));
    }
    if !have_messages {
        return Err(invalid("messages", "is required"));
    }
    req.max_tokens = max_completion_tokens.or(max_tokens);
    Ok(req)
}

fn is_text_only_modalities(v: &Value) -> bool {
    matches!(v.as_array().map(Vec::as_slice), Some([m]) if m == "text")
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

/// A string field that may be absent or null.
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

fn stream_options(v: &Value, opts: &TranslateOptions) -> Result<bool, GatewayError> {
    let o = object(v, "stream_options")?;
    // `include_obfuscation` only pads OpenAI's own chunks; the gateway writes its own chunks.
    check_keys(
        o,
        &["include_usage", "include_obfuscation"],
        "stream_options",
        opts,
    )?;
    match o.get("include_usage") {
        None | Some(Value::Null) => Ok(false),
        Some(b) => boolean(b, "stream_options.include_usage"),
    }
}

fn stop(v: &Value) -> Result<Vec<String>, GatewayError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(k, s)| string(s, &format!("stop[{k}]")).map(str::to_owned))
            .collect(),
        _ => Err(invalid("stop", "must be a string or an array of strings")),
    }
}

fn tools(list: &[Value], opts: &TranslateOptions) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let t = object(t, &path)?;
        match t.get("type") {
            None | Some(Value::Null) => {}
            Some(ty) if ty == "function" => {}
            Some(_) => {
                opts.drop_or_reject(
                    &format!("{path}.type"),
                    "only `function` tools can be translated",
                )?;
                continue;
            }
        }
        check_keys(t, &["type", "function"], &path, opts)?;
        let fpath = format!("{path}.function");
        let f = object(
            t.get("function")
                .ok_or_else(|| invalid(&fpath, "is required"))?,
            &fpath,
        )?;
        check_keys(
            f,
            &["name", "description", "parameters", "strict"],
            &fpath,
            opts,
        )?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("{fpath}.name"), "must be a string"))?;
        let parameters = match f.get("parameters") {
            None | Some(Value::Null) => empty_object_schema(),
            Some(p) => {
                object(p, &format!("{fpath}.parameters"))?;
                p.clone()
            }
        };
        let strict = match f.get("strict") {
            None | Some(Value::Null) => None,
            Some(s) => Some(boolean(s, &format!("{fpath}.strict"))?),
        };
        out.push(Tool {
            name: name.to_owned(),
            description: opt_string(f, "description", &fpath)?,
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
        Value::Object(o) if o.get("type").is_some_and(|t| t == "function") => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice.function.name", "must be a string"))?;
            Ok(Some(ToolChoice::Tool(name.to_owned())))
        }
        Value::Object(_) => {
            opts.drop_or_reject(
                "tool_choice",
                "only `function` tool choices can be translated",
            )?;
            Ok(None)
        }
        _ => Err(invalid("tool_choice", "must be a string or an object")),
    }
}

fn response_format(
    v: &Value,
    opts: &TranslateOptions,
) -> Result<Option<ResponseFormat>, GatewayError> {
    let o = object(v, "response_format")?;
    match o.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Some(ResponseFormat::Text)),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let path = "response_format.json_schema";
            let js = object(
                o.get("json_schema")
                    .ok_or_else(|| invalid(path, "is required"))?,
                path,
            )?;
            check_keys(js, &["name", "description", "schema", "strict"], path, opts)?;
            let schema = match js.get("schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                _ => {
                    return Err(invalid(
                        "response_format.json_schema.schema",
                        "must be an object",
                    ))
                }
            };
            let strict = match js.get("strict") {
                None | Some(Value::Null) => None,
                Some(s) => Some(boolean(s, "response_format.json_schema.strict")?),
            };
            Ok(Some(ResponseFormat::JsonSchema {
                name: opt_string(js, "name", path)?,
                description: opt_string(js, "description", path)?,
                schema,
                strict,
            }))
        }
        Some(_) => {
            opts.drop_or_reject("response_format", "unknown response format type")?;
            Ok(None)
        }
        None => Err(invalid("response_format.type", "must be a string")),
    }
}

fn reasoning_effort(v: &Value, opts: &TranslateOptions) -> Result<Option<Reasoning>, GatewayError> {
    let s = string(v, "reasoning_effort")?;
    if s == "none" {
        return Ok(Some(Reasoning::Disabled));
    }
    match Effort::parse(s) {
        Some(e) => Ok(Some(Reasoning::Effort(e))),
        None => {
            opts.drop_or_reject(
                "reasoning_effort",
                &format!("effort `{s}` is not translated"),
            )?;
            Ok(None)
        }
    }
}

// ---- messages ----

/// What a message's content may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ContentOf {
    /// `system`, `developer`, `tool`: text parts only.
    TextOnly,
    /// `user`: text and image parts.
    User,
    /// `assistant`: text and refusal parts.
    Assistant,
}

fn decode_messages(
    list: &[Value],
    opts: &TranslateOptions,
    req: &mut ChatRequest,
) -> Result<(), GatewayError> {
    // Whether the last canonical message is a run of tool results still open for merging.
    let mut in_tool_run = false;
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        let m = object(m, &path)?;
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("{path}.role"), "must be a string"))?;
        if m.get("name").is_some_and(|n| !n.is_null()) {
            opts.drop_or_reject(
                &format!("{path}.name"),
                "participant names are OpenAI-specific",
            )?;
        }
        match role {
            "system" | "developer" => {
                check_keys(m, &["role", "content", "name"], &path, opts)?;
                let content = required_content(m, &path)?;
                req.system
                    .extend(content_parts(content, &path, ContentOf::TextOnly, opts)?);
                // Hoisted away: a tool run around it stays one run.
            }
            "user" => {
                check_keys(m, &["role", "content", "name"], &path, opts)?;
                let content = required_content(m, &path)?;
                let content = content_parts(content, &path, ContentOf::User, opts)?;
                req.messages.push(Message {
                    role: Role::User,
                    content,
                });
                in_tool_run = false;
            }
            "assistant" => {
                let content = assistant(m, &path, opts)?;
                req.messages.push(Message {
                    role: Role::Assistant,
                    content,
                });
                in_tool_run = false;
            }
            "tool" => {
                check_keys(m, &["role", "content", "tool_call_id"], &path, opts)?;
                let call_id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(&format!("{path}.tool_call_id"), "must be a string"))?;
                let content = match required_content(m, &path)? {
                    Value::String(s) if s.is_empty() => Vec::new(),
                    c => content_parts(c, &path, ContentOf::TextOnly, opts)?,
                };
                let part = Part::ToolResult(ToolResult {
                    call_id: call_id.to_owned(),
                    content,
                    is_error: false,
                });
                match req.messages.last_mut() {
                    Some(last) if in_tool_run => last.content.push(part),
                    _ => req.messages.push(Message {
                        role: Role::User,
                        content: vec![part],
                    }),
                }
                in_tool_run = true;
            }
            "function" => opts.drop_or_reject(
                &format!("{path}.role"),
                "legacy `function` messages are not translated; use `tool` messages",
            )?,
            _ => {
                return Err(invalid(
                    &format!("{path}.role"),
                    "must be system, developer, user, assistant or tool",
                ))
            }
        }
    }
    Ok(())
}

fn required_content<'a>(m: &'a Map<String, Value>, path: &str) -> Result<&'a Value, GatewayError> {
    match m.get("content") {
        None | Some(Value::Null) => Err(invalid(&format!("{path}.content"), "is required")),
        Some(c) => Ok(c),
    }
}

/// The parts of an assistant message: thinking, text (content, then refusal), tool calls.
fn assistant(
    m: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Vec<Part>, GatewayError> {
    const KNOWN: &[&str] = &[
        "role",
        "content",
        "name",
        "tool_calls",
        "refusal",
        "reasoning_content",
        "reasoning",
        "audio",
        "function_call",
    ];
    check_keys(m, KNOWN, path, opts)?;
    if m.get("audio").is_some_and(|a| !a.is_null()) {
        opts.drop_or_reject(
            &format!("{path}.audio"),
            "audio replies are OpenAI-specific",
        )?;
    }
    if m.get("function_call").is_some_and(|a| !a.is_null()) {
        opts.drop_or_reject(
            &format!("{path}.function_call"),
            "legacy function calling is not translated; use `tool_calls`",
        )?;
    }
    let mut parts = Vec::new();
    let thinking = match opt_string(m, "reasoning_content", path)? {
        Some(t) => Some(t),
        None => opt_string(m, "reasoning", path)?,
    };
    if let Some(text) = thinking.filter(|t| !t.is_empty()) {
        parts.push(Part::Thinking {
            text,
            signature: None,
        });
    }
    match m.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(c) => parts.extend(content_parts(c, path, ContentOf::Assistant, opts)?),
    }
    if let Some(r) = opt_string(m, "refusal", path)?.filter(|r| !r.is_empty()) {
        parts.push(Part::Text(Text::plain(r)));
    }
    if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
        let cpath = format!("{path}.tool_calls");
        for (k, c) in array(calls, &cpath)?.iter().enumerate() {
            if let Some(call) = tool_call(c, &format!("{cpath}[{k}]"), opts)? {
                parts.push(Part::ToolCall(call));
            }
        }
    }
    Ok(parts)
}

fn tool_call(
    c: &Value,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Option<ToolCall>, GatewayError> {
    let c = object(c, path)?;
    match c.get("type") {
        None | Some(Value::Null) => {}
        Some(t) if t == "function" => {}
        Some(_) => {
            opts.drop_or_reject(
                &format!("{path}.type"),
                "only `function` tool calls can be translated",
            )?;
            return Ok(None);
        }
    }
    check_keys(c, &["id", "type", "function"], path, opts)?;
    let id = c
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.id"), "must be a string"))?;
    let fpath = format!("{path}.function");
    let f = object(
        c.get("function")
            .ok_or_else(|| invalid(&fpath, "is required"))?,
        &fpath,
    )?;
    check_keys(f, &["name", "arguments"], &fpath, opts)?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{fpath}.name"), "must be a string"))?;
    let arguments = match f.get("arguments") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Some clients send the arguments as an object; its JSON text is the same call.
        Some(o @ Value::Object(_)) => o.to_string(),
        Some(_) => {
            return Err(invalid(
                &format!("{fpath}.arguments"),
                "must be a string of JSON",
            ))
        }
    };
    Ok(Some(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments,
    }))
}

/// A message's `content` (string or array of parts) as canonical parts.
fn content_parts(
    content: &Value,
    path: &str,
    of: ContentOf,
    opts: &TranslateOptions,
) -> Result<Vec<Part>, GatewayError> {
    let items = match content {
        Value::String(s) => return Ok(vec![Part::Text(Text::plain(s.clone()))]),
        Value::Array(items) => items,
        _ => {
            return Err(invalid(
                &format!("{path}.content"),
                "must be a string or an array of content parts",
            ))
        }
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, p) in items.iter().enumerate() {
        let pp = format!("{path}.content[{j}]");
        let p = object(p, &pp)?;
        let ty = p
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("{pp}.type"), "must be a string"))?;
        match (ty, of) {
            ("text", _) => parts.push(text_part(p, &pp, opts)?),
            ("refusal", ContentOf::Assistant) => {
                check_keys(p, &["type", "refusal"], &pp, opts)?;
                let r = p
                    .get("refusal")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(&format!("{pp}.refusal"), "must be a string"))?;
                parts.push(Part::Text(Text::plain(r)));
            }
            ("image_url", ContentOf::User) => parts.push(image_part(p, &pp, opts)?),
            ("input_audio" | "file", _) => {
                opts.drop_or_reject(&pp, &format!("`{ty}` content parts are not translated"))?
            }
            _ => opts.drop_or_reject(
                &pp,
                &format!("a `{ty}` content part is not translated in this message"),
            )?,
        }
    }
    Ok(parts)
}

fn text_part(
    p: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Part, GatewayError> {
    // `cache_control` is not OpenAI's, but OpenAI-compatible clients (OpenRouter users) send
    // Anthropic's marker; keeping it lets an Anthropic target cache.
    check_keys(p, &["type", "text", "cache_control"], path, opts)?;
    let text = p
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("{path}.text"), "must be a string"))?;
    let cache_control = match p.get("cache_control") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(_) => {
            return Err(invalid(
                &format!("{path}.cache_control"),
                "must be an object",
            ))
        }
    };
    Ok(Part::Text(Text {
        text: text.to_owned(),
        cache_control,
    }))
}

fn image_part(
    p: &Map<String, Value>,
    path: &str,
    opts: &TranslateOptions,
) -> Result<Part, GatewayError> {
    check_keys(p, &["type", "image_url"], path, opts)?;
    let ipath = format!("{path}.image_url");
    let (url, detail) = match p.get("image_url") {
        // A bare URL string: accepted by OpenAI-compatible servers.
        Some(Value::String(u)) => (u.as_str(), None),
        Some(Value::Object(o)) => {
            check_keys(o, &["url", "detail"], &ipath, opts)?;
            let url = o
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(&format!("{ipath}.url"), "must be a string"))?;
            (url, opt_string(o, "detail", &ipath)?)
        }
        _ => return Err(invalid(&ipath, "must be an object with a `url`")),
    };
    let source = match url.get(..5) {
        Some(scheme) if scheme.eq_ignore_ascii_case("data:") => {
            parse_data_url(url.get(5..).unwrap_or_default()).ok_or_else(|| {
                invalid(
                    &format!("{ipath}.url"),
                    "a data URL must be `data:<media type>;base64,<data>`",
                )
            })?
        }
        _ => ImageSource::Url(url.to_owned()),
    };
    Ok(Part::Image(Image { source, detail }))
}

/// `<media type>;base64,<data>` (what follows `data:`) -> `ImageSource::Base64`.
pub(crate) fn parse_data_url(rest: &str) -> Option<ImageSource> {
    let (header, data) = rest.split_once(',')?;
    let cut = header.len().checked_sub(";base64".len())?;
    let (media_type, marker) = (header.get(..cut)?, header.get(cut..)?);
    if !marker.eq_ignore_ascii_case(";base64") || media_type.is_empty() {
        return None;
    }
    Some(ImageSource::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}
