//! Gemini `GenerateContentRequest` body -> canonical ([`decode_request`]): the inverse of
//! `encode`, and what Gemini-dialect clients (`google-genai`) send, as Google's API reads it:
//! `snake_case` keys, URL-safe base64 for inline bytes (made standard here, as
//! other targets need), and OpenAPI schema types in capitals (`OBJECT`, made JSON Schema's).

use serde_json::{Map, Value};

use super::encode::{ERROR_KEY, OUTPUT_KEY};
use super::wire::{get, get_str, known_key};
use crate::dialect::canonical::*;
use crate::error::GatewayError;

/// Top-level fields that are harmless metadata, ignored: `labels` (Vertex billing labels,
/// never seen by the model).
const IGNORED: &[&str] = &["labels"];

/// Top-level fields this decoder reads (or rejects by name).
const KNOWN: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
];

/// `generationConfig` fields this decoder reads.
const CONFIG_KNOWN: &[&str] = &[
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "stopSequences",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseJsonSchema",
    "responseSchema",
    "thinkingConfig",
    "candidateCount",
];

/// Gemini request body -> canonical. The model and the stream choice are in the URL, so
/// `model` is empty and `stream` false; the caller fills them in.
pub fn decode_request(body: &[u8], opts: &TranslateOptions) -> Result<ChatRequest, GatewayError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = &v else {
        return Err(GatewayError::bad_request(
            "request body must be a JSON object",
        ));
    };
    let mut req = ChatRequest::default();
    let mut saw_contents = false;
    for (key, value) in obj {
        match known_key(key, KNOWN) {
            Some("contents") => {
                req.messages = contents(value, opts)?;
                saw_contents = true;
            }
            Some("systemInstruction") => req.system = system_instruction(value)?,
            Some("tools") => req.tools = tools(value, opts)?,
            Some("toolConfig") => req.tool_choice = tool_config(value, opts)?,
            Some("generationConfig") => generation_config(value, &mut req, opts)?,
            Some("safetySettings") => opts.drop_or_reject(
                key,
                "safety settings have no equivalent in the canonical request",
            )?,
            Some(_) => opts.drop_or_reject(
                key,
                "a Gemini cached-content reference has no equivalent in other dialects",
            )?,
            None if IGNORED.contains(&key.as_str()) || opts.may_drop(key) => {}
            None => {
                return Err(GatewayError::bad_request(format!("unknown field `{key}`"))
                    .with_param(key.clone()))
            }
        }
    }
    if !saw_contents {
        return Err(invalid("contents", "is required"));
    }
    Ok(req)
}

fn array<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, GatewayError> {
    v.as_array()
        .ok_or_else(|| invalid(field, "must be an array"))
}

fn string(v: Option<&Value>, field: &str) -> Result<String, GatewayError> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid(field, "must be a string"))
}

fn system_instruction(v: &Value) -> Result<Vec<Part>, GatewayError> {
    let parts = get(v, "parts").ok_or_else(|| invalid("systemInstruction.parts", "is required"))?;
    let mut out = Vec::new();
    for (k, p) in array(parts, "systemInstruction.parts")?.iter().enumerate() {
        let field = format!("systemInstruction.parts[{k}]");
        let text = get(p, "text").ok_or_else(|| {
            untranslatable(
                &field,
                "system instructions other than text have no equivalent",
            )
        })?;
        out.push(Part::Text(Text::plain(string(Some(text), &field)?)));
    }
    Ok(out)
}

/// A function call seen so far, for matching responses that carry no id.
struct Call {
    id: String,
    name: String,
    answered: bool,
}

fn contents(v: &Value, opts: &TranslateOptions) -> Result<Vec<Message>, GatewayError> {
    let mut calls: Vec<Call> = Vec::new();
    let mut out = Vec::new();
    for (i, content) in array(v, "contents")?.iter().enumerate() {
        let field = format!("contents[{i}]");
        if !content.is_object() {
            return Err(invalid(&field, "must be an object"));
        }
        // No role means a user turn; `function` is the old role for function responses.
        let role = match get_str(content, "role") {
            None | Some("user") | Some("function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(invalid(
                    &format!("{field}.role"),
                    &format!("unknown role `{other}`"),
                ))
            }
        };
        let parts_field = format!("{field}.parts");
        let parts = get(content, "parts").ok_or_else(|| invalid(&parts_field, "is required"))?;
        let mut message = Message {
            role,
            content: Vec::new(),
        };
        for (j, p) in array(parts, &parts_field)?.iter().enumerate() {
            let field = format!("{parts_field}[{j}]");
            if let Some(part) = part(p, &field, &mut calls, opts)? {
                message.content.push(part);
            }
        }
        out.push(message);
    }
    Ok(out)
}

/// One part; `None` when it is dropped (allowed by `opts`).
fn part(
    p: &Value,
    field: &str,
    calls: &mut Vec<Call>,
    opts: &TranslateOptions,
) -> Result<Option<Part>, GatewayError> {
    if !p.is_object() {
        return Err(invalid(field, "must be an object"));
    }
    if let Some(text) = get(p, "text") {
        let text = string(Some(text), &format!("{field}.text"))?;
        if get(p, "thought").and_then(Value::as_bool) == Some(true) {
            let signature = get_str(p, "thoughtSignature").map(str::to_owned);
            return Ok(Some(Part::Thinking { text, signature }));
        }
        // A `thoughtSignature` on a non-thought part has no canonical place (known gap).
        return Ok(Some(Part::Text(Text::plain(text))));
    }
    if let Some(data) = get(p, "inlineData") {
        let field = format!("{field}.inlineData");
        let media_type = string(get(data, "mimeType"), &format!("{field}.mimeType"))?;
        let b64 = string(get(data, "data"), &format!("{field}.data"))?;
        if !media_type.starts_with("image/") {
            return opts
                .drop_or_reject(&field, "only images can be translated")
                .map(|()| None);
        }
        return Ok(Some(Part::Image(Image {
            source: ImageSource::Base64 {
                media_type,
                data: standard_base64(&b64),
            },
            detail: None,
        })));
    }
    if let Some(file) = get(p, "fileData") {
        let field = format!("{field}.fileData");
        let uri = string(get(file, "fileUri"), &format!("{field}.fileUri"))?;
        let image = get_str(file, "mimeType").is_some_and(|m| m.starts_with("image/"));
        if !image || !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return opts
                .drop_or_reject(&field, "only http(s) image files can be translated")
                .map(|()| None);
        }
        return Ok(Some(Part::Image(Image {
            source: ImageSource::Url(uri),
            detail: None,
        })));
    }
    if let Some(call) = get(p, "functionCall") {
        return function_call(call, &format!("{field}.functionCall"), calls).map(Some);
    }
    if let Some(resp) = get(p, "functionResponse") {
        return function_response(resp, &format!("{field}.functionResponse"), calls).map(Some);
    }
    for kind in ["executableCode", "codeExecutionResult", "videoMetadata"] {
        if get(p, kind).is_some() {
            return opts
                .drop_or_reject(
                    &format!("{field}.{kind}"),
                    "this part kind has no equivalent in other dialects",
                )
                .map(|()| None);
        }
    }
    Err(invalid(
        field,
        "a part needs text, inlineData, fileData, functionCall or functionResponse",
    ))
}

/// Base64 in the standard alphabet: Google's API also takes the URL-safe one (which
/// `google-genai` sends, through pydantic); other targets do not. Padding is kept as sent.
fn standard_base64(data: &str) -> String {
    data.chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect()
}

fn function_call(v: &Value, field: &str, calls: &mut Vec<Call>) -> Result<Part, GatewayError> {
    let name = string(get(v, "name"), &format!("{field}.name"))?;
    let arguments = match get(v, "args") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(args @ Value::Object(_)) => args.to_string(),
        Some(_) => return Err(invalid(&format!("{field}.args"), "must be an object")),
    };
    // Gemini's calls usually carry no id: number them across the request.
    let id = match get_str(v, "id") {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("call_{}", calls.len()),
    };
    calls.push(Call {
        id: id.clone(),
        name: name.clone(),
        answered: false,
    });
    Ok(Part::ToolCall(ToolCall {
        id,
        name,
        arguments,
    }))
}

/// A function response answers the call with its `id`, else the first unanswered call to
/// the same function (Gemini's own matching: by name, in order).
fn function_response(v: &Value, field: &str, calls: &mut [Call]) -> Result<Part, GatewayError> {
    let name = string(get(v, "name"), &format!("{field}.name"))?;
    let explicit = get_str(v, "id").filter(|id| !id.is_empty());
    let call = match explicit {
        Some(id) => calls.iter_mut().find(|c| c.id == id),
        None => calls.iter_mut().find(|c| !c.answered && c.name == name),
    };
    let call_id = match (call, explicit) {
        (Some(c), _) => {
            c.answered = true;
            c.id.clone()
        }
        (None, Some(id)) => id.to_owned(),
        (None, None) => {
            return Err(invalid(
                field,
                &format!("no earlier unanswered functionCall to `{name}`"),
            ))
        }
    };
    let empty = Map::new();
    let response = match get(v, "response") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid(&format!("{field}.response"), "must be an object")),
    };
    let (text, is_error) = result_text(response);
    Ok(Part::ToolResult(ToolResult {
        call_id,
        content: vec![Part::Text(Text::plain(text))],
        is_error,
    }))
}

/// The text of a function response: the value of its only key `output` (or `content`, which
/// some clients use) or `error`; else the whole object as JSON.
fn result_text(response: &Map<String, Value>) -> (String, bool) {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if response.len() == 1 {
        for (key, is_error) in [(OUTPUT_KEY, false), ("content", false), (ERROR_KEY, true)] {
            if let Some(v) = response.get(key) {
                return (text(v), is_error);
            }
        }
    }
    (Value::Object(response.clone()).to_string(), false)
}

fn tools(v: &Value, opts: &TranslateOptions) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::new();
    for (i, tool) in array(v, "tools")?.iter().enumerate() {
        let Value::Object(tool) = tool else {
            return Err(invalid(&format!("tools[{i}]"), "must be an object"));
        };
        for (key, value) in tool {
            let field = format!("tools[{i}].{key}");
            if known_key(key, &["functionDeclarations"]).is_none() {
                opts.drop_or_reject(&field, "Gemini built-in tools have no equivalent")?;
                continue;
            }
            for (k, decl) in array(value, &field)?.iter().enumerate() {
                out.push(declaration(decl, &format!("{field}[{k}]"), opts)?);
            }
        }
    }
    Ok(out)
}

fn declaration(v: &Value, field: &str, opts: &TranslateOptions) -> Result<Tool, GatewayError> {
    let Value::Object(decl) = v else {
        return Err(invalid(field, "must be an object"));
    };
    let known = ["name", "description", "parameters", "parametersJsonSchema"];
    for key in decl.keys() {
        if known_key(key, &known).is_none() {
            opts.drop_or_reject(
                &format!("{field}.{key}"),
                "this function declaration field has no equivalent",
            )?;
        }
    }
    let name = string(get(v, "name"), &format!("{field}.name"))?;
    let description = match get(v, "description") {
        None | Some(Value::Null) => None,
        d => Some(string(d, &format!("{field}.description"))?),
    };
    let parameters = match (get(v, "parametersJsonSchema"), get(v, "parameters")) {
        (Some(schema), _) if !schema.is_null() => schema.clone(),
        // Google's OpenAPI subset spells types in capitals (`OBJECT`); JSON Schema does not.
        (_, Some(schema)) if !schema.is_null() => lowercase_types(schema),
        _ => serde_json::json!({ "type": "object", "properties": {} }),
    };
    Ok(Tool {
        name,
        description,
        parameters,
        strict: None,
    })
}

/// An OpenAPI-subset schema (Gemini's `Schema`) as JSON Schema: `type` names in lower case
/// (`OBJECT` -> `object`), and `nullable: true` as a `null` alternative in `type`.
fn lowercase_types(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let nullable = m.get("nullable").and_then(Value::as_bool) == Some(true);
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let v = match (k.as_str(), v) {
                    ("nullable", _) => continue,
                    ("type", Value::String(t)) if nullable => {
                        serde_json::json!([t.to_ascii_lowercase(), "null"])
                    }
                    ("type", Value::String(t)) => Value::String(t.to_ascii_lowercase()),
                    _ => lowercase_types(v),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(lowercase_types).collect()),
        other => other.clone(),
    }
}

fn tool_config(v: &Value, opts: &TranslateOptions) -> Result<Option<ToolChoice>, GatewayError> {
    let Value::Object(m) = v else {
        return Err(invalid("toolConfig", "must be an object"));
    };
    let mut choice = None;
    for (key, value) in m {
        if known_key(key, &["functionCallingConfig"]).is_none() {
            opts.drop_or_reject(&format!("toolConfig.{key}"), "it has no equivalent")?;
            continue;
        }
        choice = function_calling_config(value, opts)?;
    }
    Ok(choice)
}

fn function_calling_config(
    v: &Value,
    opts: &TranslateOptions,
) -> Result<Option<ToolChoice>, GatewayError> {
    const FIELD: &str = "toolConfig.functionCallingConfig";
    let names = match get(v, "allowedFunctionNames") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|n| string(Some(n), &format!("{FIELD}.allowedFunctionNames")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(invalid(
                &format!("{FIELD}.allowedFunctionNames"),
                "must be an array",
            ))
        }
    };
    let mode = get_str(v, "mode").unwrap_or("MODE_UNSPECIFIED");
    Ok(match mode.to_ascii_uppercase().as_str() {
        // Unspecified is Gemini's default, which is AUTO.
        "MODE_UNSPECIFIED" => None,
        "AUTO" => Some(ToolChoice::Auto),
        "NONE" => Some(ToolChoice::None),
        "ANY" => match names.as_slice() {
            [] => Some(ToolChoice::Required),
            [one] => Some(ToolChoice::Tool(one.clone())),
            _ => {
                opts.drop_or_reject(
                    &format!("{FIELD}.allowedFunctionNames"),
                    "a tool choice names at most one tool",
                )?;
                Some(ToolChoice::Required)
            }
        },
        _ => {
            opts.drop_or_reject(
                &format!("{FIELD}.mode"),
                &format!("mode `{mode}` has no equivalent"),
            )?;
            None
        }
    })
}

fn generation_config(
    v: &Value,
    req: &mut ChatRequest,
    opts: &TranslateOptions,
) -> Result<(), GatewayError> {
    let Value::Object(m) = v else {
        return Err(invalid("generationConfig", "must be an object"));
    };
    let field = |k: &str| format!("generationConfig.{k}");
    let num = |k: &str, v: &Value| number(v).ok_or_else(|| invalid(&field(k), "must be a number"));
    let uint = |k: &str, v: &Value| {
        v.as_u64()
            .ok_or_else(|| invalid(&field(k), "must be a non-negative integer"))
    };
    let mut mime = None;
    let mut schema = None;
    for (key, value) in m {
        if value.is_null() {
            continue;
        }
        let Some(name) = known_key(key, CONFIG_KNOWN) else {
            // A nested field may be dropped by its own name or by `generationConfig`.
            if !opts.may_drop(key) {
                opts.drop_or_reject(&field(key), "it has no equivalent in other dialects")?;
            }
            continue;
        };
        match name {
            "maxOutputTokens" => req.max_tokens = Some(uint(name, value)?),
            "temperature" => req.temperature = Some(num(name, value)?),
            "topP" => req.top_p = Some(num(name, value)?),
            "topK" => req.top_k = Some(uint(name, value)?),
            "seed" => {
                req.seed = Some(
                    value
                        .as_i64()
                        .ok_or_else(|| invalid(&field(name), "must be an integer"))?,
                )
            }
            "presencePenalty" => req.presence_penalty = Some(num(name, value)?),
            "frequencyPenalty" => req.frequency_penalty = Some(num(name, value)?),
            "stopSequences" => {
                req.stop = array(value, &field(name))?
                    .iter()
                    .map(|s| string(Some(s), &field(name)))
                    .collect::<Result<_, _>>()?
            }
            "responseMimeType" => mime = Some(string(Some(value), &field(name))?),
            "responseJsonSchema" => schema = Some(value.clone()),
            "responseSchema" => schema = Some(lowercase_types(value)),
            "thinkingConfig" => req.reasoning = thinking(value)?,
            // One candidate is the only kind any dialect returns.
            _ if value.as_u64() == Some(1) => {}
            _ => opts.drop_or_reject(&field(name), "only one candidate can be translated")?,
        }
    }
    req.response_format = match (mime.as_deref(), schema) {
        (_, Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: None,
            description: None,
            schema,
            strict: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        (None, None) => None,
        (Some(other), None) => {
            opts.drop_or_reject(
                &field("responseMimeType"),
                &format!("`{other}` output has no equivalent"),
            )?;
            None
        }
    };
    Ok(())
}

/// `thinkingConfig` -> reasoning: budget 0 is off, a positive budget is kept, -1 (dynamic,
/// Gemini's default) is no preference; `thinkingLevel` is an effort. `includeThoughts` is
/// implied: canonical reasoning always shows thoughts where the target can.
fn thinking(v: &Value) -> Result<Option<Reasoning>, GatewayError> {
    const FIELD: &str = "generationConfig.thinkingConfig";
    if !v.is_object() {
        return Err(invalid(FIELD, "must be an object"));
    }
    if let Some(budget) = get(v, "thinkingBudget").filter(|b| !b.is_null()) {
        return match budget.as_i64() {
            Some(0) => Ok(Some(Reasoning::Disabled)),
            Some(-1) => Ok(None),
            Some(b) if b > 0 => Ok(Some(Reasoning::Budget(b.unsigned_abs()))),
            _ => Err(invalid(
                &format!("{FIELD}.thinkingBudget"),
                "must be -1, 0 or a positive integer",
            )),
        };
    }
    match get_str(v, "thinkingLevel") {
        None => Ok(None),
        Some(level) => Effort::parse(&level.to_ascii_lowercase())
            .map(|e| Some(Reasoning::Effort(e)))
            .ok_or_else(|| {
                invalid(
                    &format!("{FIELD}.thinkingLevel"),
                    &format!("unknown level `{level}`"),
                )
            }),
    }
}
