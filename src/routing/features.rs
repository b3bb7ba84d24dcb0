//! What a strategy may know about a request. Cheap facts (endpoint, key, stream flag, headers,
//! the byte size of the prompt-bearing fields) are there at once; facts that need part of the
//! body parsed are computed on first use, each from just the fields it reads (the request
//! probe recorded where they are: [`BodyFields`]), so a strategy that never asks (the default
//! fallback chain) costs nothing extra per request, and a large field routing does not read is
//! never parsed again.
//!
//! Every client dialect is read:
//! - Chat Completions and Anthropic: `messages` (text and image parts), `system`, `tools`,
//!   `max_tokens` / `max_completion_tokens`, `metadata`, `response_format` (`json_schema`),
//!   Anthropic `output_format`;
//! - Responses: `input` (a string or items, `input_image` parts), `instructions`, `tools`,
//!   `max_output_tokens`, `metadata`, `text.format` (`json_schema`);
//! - Gemini native: `contents[].parts[]` (`text`, `inlineData` / `inline_data` and `fileData`
//!   with an image MIME type), `systemInstruction`, `tools[].functionDeclarations`,
//!   `generationConfig.maxOutputTokens` and `responseSchema`.
//!
//! Parsed lazily in three parts: the output limit ([`Features::max_tokens`], a number or the
//! small `generationConfig`), the parameters ([`Features::params`]: tools, JSON schema,
//! metadata) and the prompt ([`Features::prompt`]: images and the token estimate).

use crate::dialect::fields::PROMPT;
use crate::dialect::{BodyFields, Dialect, Endpoint, Field};
use http::HeaderMap;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::sync::OnceLock;

/// A request's features, as routing strategies see them.
pub struct Features<'a> {
    pub endpoint: Endpoint,
    /// The gateway key's name (never the key).
    pub key_name: Option<&'a str>,
    pub stream: bool,
    pub headers: &'a HeaderMap,
    body: &'a [u8],
    fields: &'a BodyFields,
    max_tokens: OnceLock<Option<u64>>,
    params: OnceLock<Params>,
    prompt: OnceLock<Prompt>,
    image_word: OnceLock<bool>,
}

/// The request's parameters that need their (small) fields parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    /// Tools the model may call (Gemini: function declarations).
    pub has_tools: bool,
    /// The answer must follow a JSON schema (`response_format` / `text.format` of type
    /// `json_schema`, Anthropic `output_format`, Gemini `responseSchema`).
    pub json_schema: bool,
    /// OpenAI `metadata` (string values) and Anthropic `metadata.user_id`.
    pub metadata: Vec<(String, String)>,
}

/// What the prompt-bearing fields say once parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub has_images: bool,
    /// A quick prompt-size estimate: the prompt's text over four bytes a token.
    pub prompt_tokens: u64,
}

impl<'a> Features<'a> {
    /// `fields` are the body's [`BodyFields`] (from the request probe, or
    /// [`BodyFields::of`]).
    pub fn new(
        endpoint: Endpoint,
        key_name: Option<&'a str>,
        stream: bool,
        headers: &'a HeaderMap,
        body: &'a [u8],
        fields: &'a BodyFields,
    ) -> Features<'a> {
        Features {
            endpoint,
            key_name,
            stream,
            headers,
            body,
            fields,
            max_tokens: OnceLock::new(),
            params: OnceLock::new(),
            prompt: OnceLock::new(),
            image_word: OnceLock::new(),
        }
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request body as the client sent it.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The bytes of the prompt-bearing fields as written: four of them bound one estimated
    /// prompt token from above, without parsing anything.
    pub fn prompt_bytes(&self) -> usize {
        self.fields.prompt_bytes()
    }

    /// The most output tokens the request allows (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`, Gemini `generationConfig.maxOutputTokens`), if it says.
    pub fn max_tokens(&self) -> Option<u64> {
        *self
            .max_tokens
            .get_or_init(|| max_tokens(self.body, self.fields))
    }

    /// Tools, JSON schema and metadata (their fields parsed once, on first use).
    pub fn params(&self) -> &Params {
        self.params
            .get_or_init(|| params(self.endpoint.dialect(), self.body, self.fields))
    }

    /// Images and the prompt-token estimate (the prompt fields parsed once, on first use).
    pub fn prompt(&self) -> &Prompt {
        self.prompt.get_or_init(|| prompt(self.body, self.fields))
    }

    /// Whether the prompt fields mention `image` at all (a scan, no parse): when they do not,
    /// the request has no images.
    pub fn may_have_images(&self) -> bool {
        *self.image_word.get_or_init(|| {
            PROMPT
                .iter()
                .filter_map(|&f| self.fields.get(self.body, f))
                .any(|raw| raw.windows(5).any(|w| w == b"image"))
        })
    }
}

fn max_tokens(body: &[u8], fields: &BodyFields) -> Option<u64> {
    let direct = [
        Field::MaxTokens,
        Field::MaxCompletionTokens,
        Field::MaxOutputTokens,
    ]
    .iter()
    .filter_map(|&f| fields.get(body, f))
    .find_map(|raw| serde_json::from_slice::<u64>(raw).ok());
    if direct.is_some() {
        return direct;
    }
    #[derive(Deserialize)]
    struct Generation {
        #[serde(default, rename = "maxOutputTokens", alias = "max_output_tokens")]
        max: Option<Value>,
    }
    let raw = fields.get(body, Field::GenerationConfig)?;
    serde_json::from_slice::<Generation>(raw)
        .ok()?
        .max?
        .as_u64()
}

fn params(dialect: Dialect, body: &[u8], fields: &BodyFields) -> Params {
    let get = |f| fields.get(body, f);
    let has_tools = get(Field::Tools).is_some_and(|raw| {
        if dialect == Dialect::Gemini {
            #[derive(Deserialize)]
            struct Tool {
                #[serde(
                    default,
                    rename = "functionDeclarations",
                    alias = "function_declarations"
                )]
                declarations: Option<Vec<IgnoredAny>>,
            }
            serde_json::from_slice::<Vec<Tool>>(raw).is_ok_and(|tools| {
                tools
                    .iter()
                    .any(|t| t.declarations.as_ref().is_some_and(|d| !d.is_empty()))
            })
        } else {
            serde_json::from_slice::<Vec<IgnoredAny>>(raw).is_ok_and(|t| !t.is_empty())
        }
    });
    #[derive(Deserialize)]
    struct Typed {
        #[serde(default, rename = "type")]
        kind: Option<Value>,
    }
    let is_schema =
        |raw: &[u8]| serde_json::from_slice::<Typed>(raw).is_ok_and(|t| is_json_schema(t.kind));
    #[derive(Deserialize)]
    struct Text {
        #[serde(default)]
        format: Option<Typed>,
    }
    #[derive(Deserialize)]
    struct Generation {
        #[serde(default, rename = "responseSchema", alias = "response_schema")]
        schema: Option<Value>,
        #[serde(default, rename = "responseJsonSchema", alias = "response_json_schema")]
        json_schema: Option<Value>,
    }
    let json_schema = get(Field::ResponseFormat).is_some_and(is_schema)
        || get(Field::OutputFormat).is_some_and(is_schema)
        || get(Field::Text).is_some_and(|raw| {
            serde_json::from_slice::<Text>(raw)
                .is_ok_and(|t| t.format.is_some_and(|f| is_json_schema(f.kind)))
        })
        || get(Field::GenerationConfig).is_some_and(|raw| {
            serde_json::from_slice::<Generation>(raw).is_ok_and(|g| {
                g.schema.is_some_and(|s| !s.is_null())
                    || g.json_schema.is_some_and(|s| !s.is_null())
            })
        });
    let mut metadata = Vec::new();
    if let Some(m) = get(Field::Metadata)
        .and_then(|raw| serde_json::from_slice::<serde_json::Map<String, Value>>(raw).ok())
    {
        for (k, val) in m {
            if let Value::String(s) = val {
                metadata.push((k, s));
            }
        }
    }
    Params {
        has_tools,
        json_schema,
        metadata,
    }
}

fn is_json_schema(kind: Option<Value>) -> bool {
    kind.as_ref().and_then(Value::as_str) == Some("json_schema")
}

/// Counts a prompt's text bytes and notices images, over every dialect's shapes.
#[derive(Default)]
struct Visit {
    text_bytes: usize,
    has_images: bool,
}

impl Visit {
    /// A message's `content` (Chat, Anthropic, Responses): a string or a list of parts.
    fn content(&mut self, content: &Value) {
        match content {
            Value::String(s) => self.text_bytes += s.len(),
            Value::Array(parts) => parts.iter().for_each(|p| self.part(p)),
            _ => {}
        }
    }

    /// One content part: `image_url`, `image`, `input_image` are images; Gemini parts carry
    /// `text`, or `inlineData` / `fileData` with a MIME type; a tool result nests content.
    fn part(&mut self, p: &Value) {
        match p.get("type").and_then(Value::as_str) {
            Some("image_url" | "image" | "input_image") => self.has_images = true,
            _ => {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    self.text_bytes += t.len();
                }
                for key in ["inlineData", "inline_data", "fileData", "file_data"] {
                    if let Some(data) = p.get(key) {
                        let mime = data
                            .get("mimeType")
                            .or_else(|| data.get("mime_type"))
                            .and_then(Value::as_str);
                        // A part without a MIME type may be anything: counted as an image.
                        if mime.is_none_or(|m| m.starts_with("image/")) {
                            self.has_images = true;
                        }
                    }
                }
                if let Some(nested) = p.get("content") {
                    self.content(nested);
                }
            }
        }
    }

    /// Responses `input`: a string, or items (messages with content; tool outputs).
    fn input(&mut self, input: &Value) {
        match input {
            Value::String(s) => self.text_bytes += s.len(),
            Value::Array(items) => {
                for item in items {
                    if let Some(c) = item.get("content") {
                        self.content(c);
                    } else if let Some(Value::String(s)) = item.get("output") {
                        self.text_bytes += s.len();
                    } else {
                        self.part(item);
                    }
                }
            }
            _ => {}
        }
    }

    /// A Gemini `Content`: `{ "parts": [...] }` (a bare string is taken as text too).
    fn gemini(&mut self, content: &Value) {
        match content.get("parts") {
            Some(Value::Array(parts)) => parts.iter().for_each(|p| self.part(p)),
            _ => self.content(content),
        }
    }
}

fn prompt(body: &[u8], fields: &BodyFields) -> Prompt {
    let mut v = Visit::default();
    for field in PROMPT {
        let Some(value) = fields
            .get(body, field)
            .and_then(|raw| serde_json::from_slice::<Value>(raw).ok())
        else {
            continue;
        };
        match field {
            Field::Messages => {
                for m in value.as_array().into_iter().flatten() {
                    if let Some(c) = m.get("content") {
                        v.content(c);
                    }
                }
            }
            Field::Input => v.input(&value),
            Field::Contents => value
                .as_array()
                .into_iter()
                .flatten()
                .for_each(|c| v.gemini(c)),
            Field::SystemInstruction => v.gemini(&value),
            _ => v.content(&value),
        }
    }
    Prompt {
        has_images: v.has_images,
        prompt_tokens: v.text_bytes.div_ceil(4) as u64,
    }
}

#[cfg(test)]
mod tests;
