//! Token estimates for calls whose provider never reported usage (a client that disconnected
//! mid-stream, a provider that omits it). Text is counted with tiktoken's `o200k_base`
//! (loaded once, lazily); if it cannot be loaded, or fails on some input, characters / 4 is
//! used instead. The gateway records such usage flagged as estimated.
//!
//! Also [`OutputText`], the bounded record of generated text a [`super::StreamTally`] keeps
//! for the output estimate.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

use super::Usage;

/// Generated text kept for an output estimate: 1 MiB (the rest is only counted).
pub const MAX_KEPT_OUTPUT: usize = 1024 * 1024;
/// Text tokenized exactly per estimate; beyond this the count is extrapolated per char.
/// Bounds the CPU one estimate takes (about 0.1 s for 1 MiB of prose in a release build,
/// 0.3 s for pathological input such as 1 MiB of spaces).
const MAX_EXACT_BYTES: usize = 1024 * 1024;
/// Text is tokenized in windows of about this size, cut at whitespace when possible.
const WINDOW: usize = 16 * 1024;

static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();

pub(crate) fn o200k() -> Option<&'static CoreBPE> {
    O200K
        .get_or_init(|| {
            catch_unwind(tiktoken_rs::o200k_base)
                .ok()
                .and_then(Result::ok)
        })
        .as_ref()
}

/// Loads the tokenizer now (about 0.3 s in a release build) instead of at the first estimate,
/// e.g. from a background thread at start-up. Returns whether it is available.
pub fn preload_tokenizer() -> bool {
    o200k().is_some()
}

/// The fallback estimate: characters / 4, rounded up.
pub(crate) fn chars_div4(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Estimated tokens in `text` (o200k_base; characters / 4 if the tokenizer is unavailable).
pub fn estimate_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let Some(bpe) = o200k() else {
        return chars_div4(text);
    };
    let exact = floor_char_boundary(text, MAX_EXACT_BYTES);
    let (head, tail) = text.split_at(exact);
    let mut tokens = 0u64;
    let mut rest = head;
    while !rest.is_empty() {
        let cut = window_end(rest);
        let (window, next) = rest.split_at(cut);
        tokens += catch_unwind(AssertUnwindSafe(|| {
            bpe.encode_ordinary(window).len() as u64
        }))
        .unwrap_or_else(|_| chars_div4(window));
        rest = next;
    }
    if !tail.is_empty() {
        let head_chars = head.chars().count().max(1) as u64;
        let tail_chars = tail.chars().count() as u64;
        tokens += tokens.saturating_mul(tail_chars) / head_chars;
    }
    tokens
}

/// End of the next tokenizer window in `text`: at most [`WINDOW`] bytes, cut after the last
/// whitespace of its second half when there is one (so words are not split).
fn window_end(text: &str) -> usize {
    if text.len() <= WINDOW {
        return text.len();
    }
    let hard = floor_char_boundary(text, WINDOW);
    let window = text.get(..hard).unwrap_or(text);
    match window.rfind(char::is_whitespace) {
        Some(ws) if ws >= hard / 2 && ws > 0 => ws,
        _ if hard > 0 => hard,
        // `WINDOW` is far larger than one char, so this is unreachable; stay total anyway.
        _ => text.len(),
    }
}

/// Largest char boundary of `s` that is `<= max`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Estimated usage of a call from its request body (any dialect: OpenAI chat, Anthropic
/// Messages or Gemini) and the text it generated.
///
/// Input counts the request's text: message contents (strings and text parts), system
/// prompts, tool calls/results and tool definitions, embeddings/completions `input`/`prompt`
/// (strings, or token-id arrays counted one token per id); images, audio and other binary
/// parts are not counted. Output counts `output.text()`, scaled up to `output.chars()` when the kept
/// text was truncated. Cache and reasoning counts are unknown and left at 0.
pub fn estimate_usage(request_body: &[u8], output: &OutputText) -> Usage {
    let mut text = String::new();
    let mut token_ids = 0u64;
    if let Ok(body) = serde_json::from_slice::<Value>(request_body) {
        token_ids = request_text(&body, &mut text);
    }
    Usage {
        input: estimate_tokens(&text).saturating_add(token_ids),
        output: output.estimate_tokens(),
        ..Usage::default()
    }
}

/// Top-level request keys whose text is sent to the model.
const PROMPT_KEYS: &[&str] = &[
    "messages",
    "system",
    "contents",
    "systemInstruction",
    "system_instruction",
    "instructions",
    "tools",
    "functions",
];

/// Collects the request's text into `out`; returns the count of tokens given as token ids
/// (`input`/`prompt` as arrays of integers, as embeddings and completions accept).
fn request_text(body: &Value, out: &mut String) -> u64 {
    for key in PROMPT_KEYS {
        if let Some(v) = body.get(*key) {
            collect_text(v, out, 0);
        }
    }
    let mut token_ids = 0u64;
    for key in ["input", "prompt"] {
        match body.get(key) {
            Some(Value::String(s)) => push_text(out, s),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => push_text(out, s),
                        Value::Number(_) => token_ids += 1,
                        Value::Array(ids) => token_ids += ids.len() as u64,
                        // Message-like items (e.g. a Responses API `input`).
                        other => collect_text(other, out, 1),
                    }
                }
            }
            _ => {}
        }
    }
    token_ids
}

/// Keys whose string values are text the model reads.
const TEXT_KEYS: &[&str] = &[
    "text",
    "content",
    "system",
    "thinking",
    "arguments",
    "description",
    "name",
    "prompt",
    "refusal",
    "code",
    "output",
];
/// Keys whose values are structured data the model reads as JSON (tool inputs, schemas).
const JSON_KEYS: &[&str] = &[
    "input",
    "args",
    "response",
    "parameters",
    "input_schema",
    "parametersJsonSchema",
];

/// Nesting followed at most; deeper values are not counted.
const MAX_DEPTH: u32 = 64;

fn collect_text(v: &Value, out: &mut String, depth: u32) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::String(s) if depth == 0 => push_text(out, s),
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out, depth + 1)),
        Value::Object(map) => {
            for (k, val) in map {
                match val {
                    Value::String(s) if TEXT_KEYS.contains(&k.as_str()) => push_text(out, s),
                    Value::Object(_) | Value::Array(_) if JSON_KEYS.contains(&k.as_str()) => {
                        push_text(out, &val.to_string())
                    }
                    Value::Object(_) | Value::Array(_) => collect_text(val, out, depth + 1),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn push_text(out: &mut String, s: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(s);
}

/// Generated text seen in a response: every char is counted, the first [`MAX_KEPT_OUTPUT`]
/// bytes are kept for tokenizing.
#[derive(Clone, Debug, Default)]
pub struct OutputText {
    chars: usize,
    /// Pieces of text pushed: one per stream delta (a running lower bound on tokens, since
    /// providers stream at least a token per delta).
    pieces: usize,
    kept: String,
    /// Why generation stopped, as the provider said it (per choice or candidate; at most
    /// [`MAX_FINISH_REASONS`] kept).
    finish_reasons: Vec<String>,
}

/// Finish reasons kept per answer (one per choice; `n` beyond this is rare).
const MAX_FINISH_REASONS: usize = 16;

impl OutputText {
    /// Records a finish reason (empty strings and `null`s are not reasons).
    pub fn push_finish(&mut self, reason: Option<&serde_json::Value>) {
        if let Some(serde_json::Value::String(r)) = reason {
            self.push_finish_str(r);
        }
    }

    /// [`push_finish`](Self::push_finish) for a reason already read as text.
    pub fn push_finish_str(&mut self, reason: &str) {
        if !reason.is_empty() && self.finish_reasons.len() < MAX_FINISH_REASONS {
            self.finish_reasons.push(reason.to_owned());
        }
    }

    /// The finish reasons seen, in order.
    pub fn finish_reasons(&self) -> &[String] {
        &self.finish_reasons
    }

    /// Records a piece of generated text (content, reasoning, tool arguments).
    pub fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.chars = self.chars.saturating_add(s.chars().count());
        self.pieces = self.pieces.saturating_add(1);
        let room = MAX_KEPT_OUTPUT.saturating_sub(self.kept.len());
        if room > 0 {
            let cut = floor_char_boundary(s, room);
            self.kept.push_str(s.get(..cut).unwrap_or_default());
        }
    }

    /// Pieces of text seen (stream deltas).
    pub fn pieces(&self) -> usize {
        self.pieces
    }

    /// Chars of generated text seen.
    pub fn chars(&self) -> usize {
        self.chars
    }

    /// The kept text (the first [`MAX_KEPT_OUTPUT`] bytes at most).
    pub fn text(&self) -> &str {
        &self.kept
    }

    /// Estimated tokens of all the text seen (extrapolated per char past the kept part).
    pub fn estimate_tokens(&self) -> u64 {
        let tokens = estimate_tokens(&self.kept);
        let kept_chars = self.kept.chars().count();
        if self.chars > kept_chars && kept_chars > 0 {
            tokens.saturating_mul(self.chars as u64) / kept_chars as u64
        } else if kept_chars == 0 {
            (self.chars as u64).div_ceil(4)
        } else {
            tokens
        }
    }
}
