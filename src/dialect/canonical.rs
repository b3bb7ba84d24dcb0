//! The canonical model every dialect translates through: one request, one response, one
//! stream-event vocabulary. A client's body is decoded from its dialect into these types and
//! encoded into the target provider's dialect; the provider's answer goes the other way.
//!
//! Rules every dialect module keeps:
//! - **Nothing is lost silently.** A request field the decoder does not know, or that the
//!   target's encoder cannot express, is a 400 naming the field (`param` = its JSON path, e.g.
//!   `messages[2].content[0].image_url`), unless the field is in [`TranslateOptions::drop`],
//!   in which case it is dropped (documented, configured by the operator).
//! - **Tool-call arguments are raw JSON text**, carried byte for byte (streamed pieces are
//!   concatenated exactly; a whole call is re-serialised only when a dialect carries arguments
//!   as an object, as Anthropic and Gemini do).
//! - **Usage is [`crate::usage::Usage`]**: `input` excludes cached and cache-write tokens,
//!   `output` includes reasoning. Encoders convert to each dialect's own convention (OpenAI's
//!   `prompt_tokens` includes cached tokens; Anthropic's `input_tokens` does not).
//! - **Stream blocks are sequential**: a decoder emits `BlockStart`, its deltas and `BlockStop`
//!   for one block before the next block starts, so encoders (Anthropic's above all) can write
//!   well-formed streams without buffering. Block indices count from 0 in order of appearance.

use crate::error::GatewayError;
use crate::usage::Usage;
use serde_json::Value;

/// Operator choices that change how a request is translated.
#[derive(Clone, Debug, Default)]
pub struct TranslateOptions {
    /// Top-level request fields that may be dropped when the target cannot express them
    /// (config `translation.drop`). Every other untranslatable field is a 400.
    pub drop: Vec<String>,
}

impl TranslateOptions {
    /// Whether the top-level field `name` may be dropped.
    pub fn may_drop(&self, name: &str) -> bool {
        self.drop.iter().any(|d| d == name)
    }

    /// `Ok(())` if `field` may be dropped, else the 400 that names it.
    pub fn drop_or_reject(&self, field: &str, why: &str) -> Result<(), GatewayError> {
        let top = field.split(['.', '[']).next().unwrap_or(field);
        if self.may_drop(top) {
            log::debug!("translation: dropped `{field}` ({why})");
            return Ok(());
        }
        Err(untranslatable(field, why))
    }
}

/// The 400 for a field that cannot be translated.
pub fn untranslatable(field: &str, why: &str) -> GatewayError {
    GatewayError::bad_request(format!(
        "`{field}` cannot be translated for this target: {why} (to drop it instead, add its \
         top-level name to `translation.drop` in the gateway config)"
    ))
    .with_param(field.to_owned())
}

/// A malformed request field (wrong type, missing part).
pub fn invalid(field: &str, why: &str) -> GatewayError {
    GatewayError::bad_request(format!("`{field}` is invalid: {why}")).with_param(field.to_owned())
}

/// One chat request, whatever dialect it came in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model as the client wrote it (encoders are given the target's model separately).
    pub model: String,
    /// System instructions, in order (OpenAI `system`/`developer` messages at the start,
    /// Anthropic `system`, Gemini `systemInstruction`). Text parts only.
    pub system: Vec<Part>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `false` asks for at most one tool call per turn (OpenAI `parallel_tool_calls: false`,
    /// Anthropic `tool_choice.disable_parallel_tool_use: true`).
    pub parallel_tool_calls: Option<bool>,
    /// Most tokens to generate (OpenAI `max_completion_tokens`/`max_tokens`, Anthropic
    /// `max_tokens`, Gemini `maxOutputTokens`).
    pub max_tokens: Option<u64>,
    /// Numbers are kept as the client wrote them.
    pub temperature: Option<serde_json::Number>,
    pub top_p: Option<serde_json::Number>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// OpenAI clients: whether they asked for a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Reasoning>,
    /// The end user, for provider abuse tracking (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<serde_json::Number>,
    pub frequency_penalty: Option<serde_json::Number>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn. Tool results are user-role parts (OpenAI's `tool` messages become them; a run of
/// consecutive tool messages becomes one user message).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

#[cfg(test)]
impl Message {
    pub(crate) fn user(content: Vec<Part>) -> Message {
        Message {
            role: Role::User,
            content,
        }
    }

    pub(crate) fn assistant(content: Vec<Part>) -> Message {
        Message {
            role: Role::Assistant,
            content,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(Text),
    Image(Image),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    /// Reasoning shown to the client (Anthropic `thinking`, OpenAI-compatible
    /// `reasoning_content`, Gemini `thought: true` parts).
    Thinking {
        text: String,
        /// Anthropic's signature, which it needs back in later turns.
        signature: Option<String>,
    },
    /// Anthropic `redacted_thinking`: opaque, only Anthropic can read it.
    RedactedThinking {
        data: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text {
    pub text: String,
    /// Anthropic prompt-caching marker (`{"type":"ephemeral"}`), kept for Anthropic targets.
    pub cache_control: Option<Value>,
}

impl Text {
    pub fn plain(text: impl Into<String>) -> Text {
        Text {
            text: text.into(),
            cache_control: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub source: ImageSource,
    /// OpenAI's `detail` (`low`/`high`/`auto`).
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImageSource {
    /// An http(s) URL.
    Url(String),
    /// Inline bytes: `media_type` (`image/png`) and base64 `data` (no `data:` prefix).
    Base64 { media_type: String, data: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// The call id (Gemini gives none: its decoder makes `call_<n>`).
    pub id: String,
    pub name: String,
    /// The arguments as raw JSON text (an object), exactly as the model produced them.
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    /// Text and image parts.
    pub content: Vec<Part>,
    pub is_error: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    pub strict: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called (OpenAI `required`, Anthropic `any`, Gemini `ANY`).
    Required,
    /// This tool must be called.
    Tool(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object (OpenAI `json_object`).
    JsonObject,
    JsonSchema {
        name: Option<String>,
        description: Option<String>,
        schema: Value,
        strict: Option<bool>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn name(self) -> &'static str {
        match self {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s {
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            _ => return None,
        })
    }

    /// The thinking budget used for an effort when the target takes a budget (Anthropic's
    /// minimum is 1024).
    pub fn budget(self) -> u64 {
        match self {
            Effort::Minimal => 1024,
            Effort::Low => 2048,
            Effort::Medium => 8192,
            Effort::High => 24576,
        }
    }

    /// The effort for a budget when the target takes an effort.
    pub fn from_budget(budget: u64) -> Effort {
        match budget {
            0..=1024 => Effort::Minimal,
            1025..=4096 => Effort::Low,
            4097..=16384 => Effort::Medium,
            _ => Effort::High,
        }
    }
}

/// Reasoning asked for: a token budget (Anthropic, Gemini) or an effort (OpenAI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reasoning {
    /// Thinking off (Anthropic `{"type":"disabled"}`, Gemini `thinkingBudget: 0`).
    Disabled,
    Budget(u64),
    Effort(Effort),
}

impl Reasoning {
    pub fn budget(self) -> Option<u64> {
        match self {
            Reasoning::Disabled => None,
            Reasoning::Budget(b) => Some(b),
            Reasoning::Effort(e) => Some(e.budget()),
        }
    }

    pub fn effort(self) -> Option<Effort> {
        match self {
            Reasoning::Disabled => None,
            Reasoning::Budget(b) => Some(Effort::from_budget(b)),
            Reasoning::Effort(e) => Some(e),
        }
    }
}

/// Why generation stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished its turn (OpenAI `stop`, Anthropic `end_turn`, Gemini `STOP`).
    EndTurn,
    /// `max_tokens` reached (OpenAI `length`, Anthropic `max_tokens`, Gemini `MAX_TOKENS`).
    MaxTokens,
    /// One of the stop sequences matched (OpenAI reports it as `stop`).
    StopSequence,
    /// The model called tools (OpenAI `tool_calls`, Anthropic `tool_use`).
    ToolUse,
    /// Output was filtered (OpenAI `content_filter`, Gemini `SAFETY`/`RECITATION`/...).
    ContentFilter,
    /// The model refused (Anthropic `refusal`).
    Refusal,
    /// Anthropic `pause_turn` (a long-running server tool paused).
    PauseTurn,
    /// Anything else, as the provider spelled it.
    Other(String),
}

/// One complete (non-streamed) answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// Text, thinking and tool-call parts, in order.
    pub content: Vec<Part>,
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that matched (Anthropic reports it).
    pub stop_sequence: Option<String>,
    pub usage: Option<Usage>,
    /// Unix seconds (OpenAI `created`); encoders use the current time when absent.
    pub created: Option<u64>,
}

/// The kind of a content block in a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockKind {
    Text,
    Thinking,
    RedactedThinking { data: String },
    ToolCall { id: String, name: String },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Delta {
    Text(String),
    Thinking(String),
    /// Anthropic thinking signature.
    Signature(String),
    /// A piece of a tool call's JSON arguments; pieces concatenate to the whole.
    ToolArguments(String),
}

/// One event of a translated stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The answer began. Decoders emit it once, first (synthesised if the provider's first
    /// event does not carry it). `usage` is what the provider reported at the start
    /// (Anthropic's input tokens), if anything.
    Start {
        id: String,
        model: String,
        usage: Option<Usage>,
    },
    BlockStart {
        index: usize,
        kind: BlockKind,
    },
    Delta {
        index: usize,
        delta: Delta,
    },
    BlockStop {
        index: usize,
    },
    /// Generation stopped.
    Stop {
        reason: StopReason,
        stop_sequence: Option<String>,
    },
    /// Usage so far (cumulative: a later report replaces an earlier one).
    Usage(Usage),
    /// The provider reported an error inside the stream.
    Error(ProviderError),
    /// The provider's terminal event (`[DONE]`, `message_stop`, or the end of a Gemini
    /// stream). Decoders emit it at most once; the glue makes sure encoders see the end.
    End,
}

/// An error a provider answered with (or sent inside a stream), in dialect-neutral terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderError {
    /// The HTTP status (inside a stream: the status the error type implies, e.g. 529 for
    /// Anthropic `overloaded_error`).
    pub status: u16,
    /// The provider's error type/code as it wrote it (`rate_limit_error`,
    /// `RESOURCE_EXHAUSTED`, ...), informational.
    pub provider_type: Option<String>,
    pub message: String,
    /// The request field concerned, when the provider named one.
    pub param: Option<String>,
}

/// Decodes a provider's SSE events into canonical stream events.
pub trait StreamDecoder: Send + Sync {
    fn on_event(&mut self, ev: &crate::usage::SseEvent, out: &mut Vec<StreamEvent>);
    /// The provider's stream ended (cleanly or not): emit whatever closes it
    /// (`BlockStop` for an open block). Does not invent `Stop` or `End`.
    fn finish(&mut self, out: &mut Vec<StreamEvent>);
}

/// Encodes canonical stream events into a client dialect's SSE bytes.
pub trait StreamEncoder: Send + Sync {
    fn on_event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>);
    /// The stream is over: write whatever the dialect needs to end well-formed (close open
    /// blocks, `message_delta` + `message_stop`, a final chunk + `data: [DONE]`), even when the
    /// upstream never sent its terminal event. Idempotent.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// How a client-dialect encoder (streamed or whole) is set up.
#[derive(Clone, Debug, Default)]
pub struct StreamEncoderOptions {
    /// OpenAI clients: emit the usage-only chunk at the end (they asked for it).
    pub include_usage: bool,
    /// The model name to report when the provider's stream does not name one.
    pub model: String,
    /// The answer's id as the client sees it, when the gateway assigns one (Responses
    /// clients: the id a later `previous_response_id` names). `None`: derived from the
    /// provider's id.
    pub response_id: Option<String>,
    /// Request fields the client's dialect echoes in its answer (the Responses API's
    /// `instructions`, `tools`, `tool_choice`, `text`, ...), as a JSON object.
    pub echo: Option<std::sync::Arc<Value>>,
}

/// `id` as a dialect's clients expect it: with `prefix` (`msg_`, `chatcmpl-`) added when
/// missing, or made up from the clock when the provider gave none.
pub fn prefixed_id(prefix: &str, id: &str) -> String {
    if id.starts_with(prefix) {
        id.to_owned()
    } else if id.is_empty() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{prefix}{nanos:x}")
    } else {
        format!("{prefix}{id}")
    }
}

/// Reads a JSON number field as `serde_json::Number`, for parameters kept as written.
pub fn number(v: &Value) -> Option<serde_json::Number> {
    match v {
        Value::Number(n) => Some(n.clone()),
        _ => None,
    }
}

/// Parses a tool call's argument text as a JSON object, for dialects that carry arguments as
/// an object. Empty text is `{}`.
pub fn arguments_object(
    arguments: &str,
    field: &str,
) -> Result<serde_json::Map<String, Value>, GatewayError> {
    if arguments.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid(field, "tool-call arguments must be a JSON object")),
        Err(e) => Err(invalid(
            field,
            &format!("tool-call arguments are not valid JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effort_and_budget_map_both_ways() {
        for e in [Effort::Minimal, Effort::Low, Effort::Medium, Effort::High] {
            assert_eq!(Effort::from_budget(e.budget()), e);
            assert_eq!(Effort::parse(e.name()), Some(e));
        }
        assert_eq!(Reasoning::Disabled.budget(), None);
    }

    #[test]
    fn drops_only_listed_top_level_fields() {
        let opts = TranslateOptions {
            drop: vec!["logprobs".into()],
        };
        assert!(opts.drop_or_reject("logprobs", "x").is_ok());
        let e = opts.drop_or_reject("n", "x").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("n"));
        assert!(opts
            .drop_or_reject("messages[1].content[0].image_url", "x")
            .is_err());
    }

    #[test]
    fn arguments_are_objects() {
        assert!(arguments_object("", "f").unwrap().is_empty());
        assert_eq!(arguments_object(r#"{"a":1}"#, "f").unwrap()["a"], 1);
        assert!(arguments_object("[1]", "f").is_err());
        assert!(arguments_object("{", "f").is_err());
    }
}
