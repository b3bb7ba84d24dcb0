//! [`StreamTally`]: the per-request object the proxy feeds every response body chunk to, as it
//! arrives. It reads the provider's usage (non-streaming bodies at the end, streams event by
//! event), notes whether the stream reached its terminal event, counts generated text for
//! estimates, and, for OpenAI streams whose client did not ask for usage, removes the
//! usage-only chunk the gateway asked for on its behalf.
//!
//! Latency and memory: chunks pass through untouched (the same `Bytes`) unless stripping is on.
//! With stripping on, only the bytes after the last complete event boundary are held back,
//! until their event completes; an event held past [`MAX_HELD`] is released and passed through.
//! A non-streaming body is kept (for parsing at [`StreamTally::finish`]) up to [`MAX_BODY`].

use bytes::Bytes;
use serde_json::Value;

use super::anthropic::{self, AnthropicStream};
use super::estimate::{estimate_usage, OutputText};
use super::gemini::{self, GeminiStream};
use super::json_array::JsonArraySplitter;
use super::openai::{self, OpenAiStream};
use super::responses::{self, ResponsesStream};
use super::sse::{SseEvent, SseParser, DEFAULT_MAX_LINE};
use super::Usage;
use crate::dialect::Dialect;

/// Largest non-streaming body parsed for usage: 32 MiB.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Largest incomplete event held back while stripping: 16 MiB.
pub const MAX_HELD: usize = DEFAULT_MAX_LINE;

/// Usage of a complete non-streaming response body; `None` if it is not JSON or reports none.
pub fn usage_from_body(dialect: Dialect, body: &[u8]) -> Option<Usage> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    body_usage(dialect, &v)
}

fn body_usage(dialect: Dialect, v: &Value) -> Option<Usage> {
    match dialect {
        Dialect::OpenAi => openai::body_usage(v),
        Dialect::Anthropic => anthropic::body_usage(v),
        Dialect::Gemini => gemini::body_usage(v),
        Dialect::Responses => responses::body_usage(v),
    }
}

fn body_text(dialect: Dialect, v: &Value, out: &mut OutputText) {
    match dialect {
        Dialect::OpenAi => openai::body_text(v, out),
        Dialect::Anthropic => anthropic::body_text(v, out),
        Dialect::Gemini => gemini::body_text(v, out),
        Dialect::Responses => responses::body_text(v, out),
    }
}

/// The usage fields of a complete response object, everything else skipped unbuilt.
#[derive(serde::Deserialize)]
struct UsageFields<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default, rename = "usageMetadata")]
    usage_metadata: Option<&'a serde_json::value::RawValue>,
}

/// Usage of a complete body read without building the whole JSON tree; `None` when the body
/// is not one JSON object with the dialect's usage field (the full parse then decides).
fn fast_body_usage(dialect: Dialect, body: &[u8]) -> Option<Usage> {
    let fields: UsageFields<'_> = serde_json::from_slice(body).ok()?;
    let (key, raw) = match dialect {
        Dialect::OpenAi | Dialect::Anthropic | Dialect::Responses => ("usage", fields.usage?),
        Dialect::Gemini => ("usageMetadata", fields.usage_metadata?),
    };
    let v: Value = serde_json::from_str(raw.get()).ok()?;
    let mut wrapper = serde_json::Map::with_capacity(1);
    wrapper.insert(key.to_owned(), v);
    body_usage(dialect, &Value::Object(wrapper))
}

/// The dialect's stream reader.
#[derive(Debug)]
enum Reader {
    OpenAi(OpenAiStream),
    Anthropic(AnthropicStream),
    Gemini(GeminiStream),
    Responses(ResponsesStream),
}

impl Reader {
    /// Reads one SSE event; returns whether it is OpenAI's usage-only chunk.
    fn on_event(&mut self, ev: &SseEvent, text: &mut OutputText) -> bool {
        match self {
            Reader::OpenAi(s) => s.on_event(ev, text),
            Reader::Anthropic(s) => {
                s.on_event(ev, text);
                false
            }
            Reader::Gemini(s) => {
                s.on_data(&ev.data, text);
                false
            }
            Reader::Responses(s) => {
                s.on_event(ev, text);
                false
            }
        }
    }

    fn on_element(&mut self, element: &[u8], text: &mut OutputText) {
        if let (Reader::Gemini(s), Ok(v)) = (self, serde_json::from_slice::<Value>(element)) {
            s.on_value(&v, text);
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            Reader::OpenAi(s) => s.usage(),
            Reader::Anthropic(s) => s.usage(),
            Reader::Gemini(s) => s.usage(),
            Reader::Responses(s) => s.usage(),
        }
    }

    fn reported(&self) -> Option<Usage> {
        match self {
            Reader::OpenAi(s) => s.usage(),
            Reader::Anthropic(s) => s.reported(),
            Reader::Gemini(s) => s.reported(),
            Reader::Responses(s) => s.usage(),
        }
    }

    fn done(&self) -> bool {
        match self {
            Reader::OpenAi(s) => s.done(),
            Reader::Anthropic(s) => s.done(),
            Reader::Gemini(s) => s.done(),
            Reader::Responses(s) => s.done(),
        }
    }
}

/// How a stream is framed: SSE, or (Gemini without `alt=sse`) a streamed JSON array.
#[derive(Debug)]
enum Framing {
    /// Gemini: decided by the first non-whitespace byte (`[` or not).
    Undecided,
    Sse,
    JsonArray(JsonArraySplitter),
}

/// Per-request usage reader; see the module docs.
#[derive(Debug)]
pub struct StreamTally {
    /// The provider's dialect: usage is read from its own wire format.
    dialect: Dialect,
    streaming: bool,
    strip: bool,
    // Non-streaming.
    body: Vec<u8>,
    body_usage: Option<Usage>,
    body_complete: bool,
    // Streaming.
    framing: Framing,
    sse: SseParser,
    reader: Reader,
    /// Stripping: bytes after the last event boundary, held until their event completes.
    held: Vec<u8>,
    /// Stripping: the current event outgrew [`MAX_HELD`]; its bytes pass straight through.
    passthrough: bool,
    /// Stripping: the last boundary ended with a `\r` that closed its chunk; a `\n` opening
    /// the next chunk belongs to it (`Some(true)` when that event was stripped).
    lf_after: Option<bool>,
    /// Scratch: this chunk's boundaries, as (end offset, strip).
    bounds: Vec<(usize, bool)>,
    text: OutputText,
    /// Non-streaming: a complete body whose usage was read without building it as a JSON
    /// tree; its text is extracted only if someone asks (estimates, tests).
    unread_body: Option<Vec<u8>>,
    lazy_text: std::sync::OnceLock<OutputText>,
    overflowed: bool,
    finished: bool,
    max_body: usize,
    max_held: usize,
}

impl StreamTally {
    /// A tally for one response. `strip_usage_only_chunk` applies to OpenAI streams only.
    pub fn new(dialect: Dialect, streaming: bool, strip_usage_only_chunk: bool) -> Self {
        let reader = match dialect {
            Dialect::OpenAi => Reader::OpenAi(OpenAiStream::default()),
            Dialect::Anthropic => Reader::Anthropic(AnthropicStream::default()),
            Dialect::Gemini => Reader::Gemini(GeminiStream::default()),
            Dialect::Responses => Reader::Responses(ResponsesStream::default()),
        };
        Self {
            dialect,
            streaming,
            strip: streaming && strip_usage_only_chunk && dialect == Dialect::OpenAi,
            body: Vec::new(),
            body_usage: None,
            body_complete: false,
            framing: match dialect {
                Dialect::Gemini => Framing::Undecided,
                _ => Framing::Sse,
            },
            sse: SseParser::new(),
            reader,
            held: Vec::new(),
            passthrough: false,
            lf_after: None,
            bounds: Vec::new(),
            text: OutputText::default(),
            unread_body: None,
            lazy_text: std::sync::OnceLock::new(),
            overflowed: false,
            finished: false,
            max_body: MAX_BODY,
            max_held: MAX_HELD,
        }
    }

    /// The same tally with smaller caps (body, held event, SSE line), for tests.
    #[cfg(test)]
    pub(crate) fn with_caps(mut self, body: usize, held: usize, line: usize) -> Self {
        self.max_body = body;
        self.max_held = held;
        self.sse = SseParser::with_max_line(line);
        self
    }

    /// Feeds one response body chunk; returns the bytes to send to the client instead
    /// (usually the same `Bytes`, untouched, zero-copy).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if self.finished {
            return chunk;
        }
        if !self.streaming {
            self.keep_body(&chunk);
            return chunk;
        }
        if self.strip {
            return self.feed_stripping(chunk);
        }
        self.read_stream(&chunk);
        chunk
    }

    /// At end of stream: bytes still held back (if any) to flush to the client.
    pub fn finish(&mut self) -> Bytes {
        if std::mem::replace(&mut self.finished, true) {
            return Bytes::new();
        }
        if !self.streaming {
            let body = std::mem::take(&mut self.body);
            if !self.overflowed {
                // Fast path: only the usage object is built; the rest is skipped (validated,
                // not allocated). The answer's text is extracted only if ever needed.
                if let Some(u) = fast_body_usage(self.dialect, &body) {
                    self.body_complete = true;
                    self.body_usage = Some(u);
                    self.unread_body = Some(body);
                    return Bytes::new();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    self.body_complete = true;
                    self.body_usage = body_usage(self.dialect, &v);
                    body_text(self.dialect, &v, &mut self.text);
                }
            }
            return Bytes::new();
        }
        let strip_last = match self.sse.finish() {
            Some(ev) if matches!(self.framing, Framing::Sse) => {
                self.reader.on_event(&ev, &mut self.text)
            }
            _ => false,
        };
        let held = std::mem::take(&mut self.held);
        if strip_last && self.strip && !self.passthrough {
            Bytes::new()
        } else {
            Bytes::from(held)
        }
    }

    /// The usage the provider reported; `None` if it never did. For streams this is the final
    /// usage: Anthropic's `message_start` counts alone (output so far) or Gemini counts before
    /// its `finishReason` are partial, and only [`Self::reported_usage`] returns them.
    pub fn usage(&self) -> Option<Usage> {
        if self.streaming {
            self.reader.usage()
        } else {
            self.body_usage
        }
    }

    /// The last usage the provider reported, final or partial.
    pub fn reported_usage(&self) -> Option<Usage> {
        if self.streaming {
            self.reader.reported()
        } else {
            self.body_usage
        }
    }

    /// Whether the stream reached its terminal event (`data: [DONE]`, `message_stop`, a Gemini
    /// `finishReason`); for a non-streaming response, whether the complete body was read as
    /// JSON at [`Self::finish`].
    pub fn saw_terminal_event(&self) -> bool {
        if self.streaming {
            self.reader.done()
        } else {
            self.body_complete
        }
    }

    /// Chars of generated text (content, reasoning, tool arguments) seen.
    pub fn output_text_chars(&self) -> usize {
        self.output().chars()
    }

    /// The generated text seen (the first 1 MiB kept) and its char count.
    pub fn output(&self) -> &OutputText {
        match &self.unread_body {
            None => &self.text,
            Some(body) => self.lazy_text.get_or_init(|| {
                let mut text = OutputText::default();
                if let Ok(v) = serde_json::from_slice::<Value>(body) {
                    body_text(self.dialect, &v, &mut text);
                }
                text
            }),
        }
    }

    /// An estimate for when [`Self::usage`] is `None`: see [`estimate_usage`]. When the
    /// provider reported partial usage (a cut stream), its input, cache and reasoning counts
    /// are kept as reported, and output is the larger of the reported and estimated counts.
    pub fn estimate(&self, request_body: &[u8]) -> Usage {
        match self.reported_usage() {
            Some(partial) => Usage {
                output: partial.output.max(self.output().estimate_tokens()),
                ..partial
            },
            None => estimate_usage(request_body, self.output()),
        }
    }

    /// Whether something was too large to read whole (a body past [`MAX_BODY`], an SSE line
    /// or stream element past 16 MiB, an event held past [`MAX_HELD`]), so usage may be
    /// missing.
    pub fn overflowed(&self) -> bool {
        self.overflowed
            || self.sse.overflowed()
            || matches!(&self.framing, Framing::JsonArray(s) if s.overflowed())
    }

    fn keep_body(&mut self, chunk: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.body.len().saturating_add(chunk.len()) > self.max_body {
            log::warn!(
                "response body over {} bytes: its usage is not read",
                self.max_body
            );
            self.overflowed = true;
            self.body = Vec::new();
        } else {
            self.body.extend_from_slice(chunk);
        }
    }

    /// Reads stream events from `data` without changing what the client gets.
    fn read_stream(&mut self, data: &[u8]) {
        if matches!(self.framing, Framing::Undecided) {
            let Some(start) = data.iter().position(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            let rest = data.get(start..).unwrap_or_default();
            self.framing = if rest.first() == Some(&b'[') {
                Framing::JsonArray(JsonArraySplitter::new(DEFAULT_MAX_LINE))
            } else {
                Framing::Sse
            };
            return self.read_stream(rest);
        }
        let Self {
            framing,
            sse,
            reader,
            text,
            ..
        } = self;
        match framing {
            Framing::JsonArray(splitter) => splitter.feed(data, |el| reader.on_element(el, text)),
            _ => sse.feed_with(data, |ev| {
                reader.on_event(&ev, text);
            }),
        }
    }

    /// Reads events from `chunk` and returns it without the usage-only chunk's bytes.
    fn feed_stripping(&mut self, chunk: Bytes) -> Bytes {
        let mut bounds = std::mem::take(&mut self.bounds);
        bounds.clear();
        if let Some(stripped) = self.lf_after.take() {
            match chunk.first() {
                Some(b'\n') => bounds.push((1, stripped)),
                Some(_) => {}
                None => self.lf_after = Some(stripped),
            }
        }
        {
            let Self {
                sse,
                reader,
                text,
                passthrough,
                lf_after,
                ..
            } = self;
            sse.feed_raw(&chunk, |b| {
                let usage_only = b.event.as_ref().is_some_and(|ev| reader.on_event(ev, text));
                // The first boundary ends a passed-through event, whatever it was.
                let passed_through = std::mem::take(passthrough);
                let strip = usage_only && !passed_through;
                if b.cr_at_end {
                    *lf_after = Some(strip);
                }
                bounds.push((b.end, strip));
            });
        }
        let last_end = bounds.last().map_or(0, |b| b.0).min(chunk.len());
        let any_strip = bounds.iter().any(|b| b.1);
        let mut built: Option<Vec<u8>> = None;
        if !self.held.is_empty() || any_strip {
            let mut out = Vec::with_capacity(self.held.len() + chunk.len());
            let mut start = 0;
            for &(end, strip) in &bounds {
                if strip {
                    self.held.clear();
                } else {
                    out.append(&mut self.held);
                    out.extend_from_slice(chunk.get(start..end).unwrap_or_default());
                }
                start = end;
            }
            built = Some(out);
        }
        self.bounds = bounds;
        let remainder = chunk.get(last_end..).unwrap_or_default();
        if !self.passthrough && self.held.len().saturating_add(remainder.len()) > self.max_held {
            log::warn!(
                "SSE event over {} bytes: passed through unchecked",
                self.max_held
            );
            self.passthrough = true;
            self.overflowed = true;
        }
        let out = match built {
            None if self.passthrough => chunk,
            None => {
                self.held.extend_from_slice(remainder);
                chunk.slice(..last_end)
            }
            Some(mut out) => {
                if self.passthrough {
                    out.append(&mut self.held);
                    out.extend_from_slice(remainder);
                } else {
                    self.held.extend_from_slice(remainder);
                }
                Bytes::from(out)
            }
        };
        if self.held.is_empty() && self.held.capacity() > 64 * 1024 {
            self.held = Vec::new();
        }
        out
    }
}
