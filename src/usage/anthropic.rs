//! Anthropic Messages usage.
//!
//! Non-streaming: the body's `usage` (`input_tokens`, `output_tokens`,
//! `cache_read_input_tokens`, `cache_creation_input_tokens`). Streaming: `message_start`
//! carries `message.usage` (input and cache counts, output so far); each `message_delta`
//! carries cumulative `usage.output_tokens` (a later value replaces an earlier one) and, in
//! newer API versions, the input and cache counts again (kept at the largest value seen, so a
//! compatible provider that reports them only at the end, or sends 0 there, is still right).
//! `message_stop` ends the stream. Usage counts as final once a `message_delta` reported it;
//! a stream cut before that has only partial usage (exact input and cache counts, output
//! so far), which the tally's estimate builds on.
//!
//! Anthropic bills thinking as output and does not report it apart, so `reasoning` is 0.

use serde_json::Value;

use super::estimate::OutputText;
use super::sse::SseEvent;
use super::{count, Usage};

/// An Anthropic stream event's kind: its data's `type`, else the SSE `event:` name.
pub(crate) fn event_kind<'a>(data: &'a Value, ev: &'a SseEvent) -> &'a str {
    data.get("type")
        .and_then(Value::as_str)
        .or(ev.event.as_deref())
        .unwrap_or_default()
}

/// An event read for its type and delta only (the rest skipped).
#[derive(serde::Deserialize)]
struct TypedDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    delta: Option<DeltaText<'a>>,
}

/// A `content_block_delta`'s text, thinking or tool-input piece, as written.
#[derive(serde::Deserialize)]
struct DeltaText<'a> {
    #[serde(borrow, default)]
    text: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    thinking: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    partial_json: Option<&'a serde_json::value::RawValue>,
}

/// Normalises one Anthropic `usage` object; `None` unless it has a token count.
pub(crate) fn usage_from(u: &Value) -> Option<Usage> {
    let mut s = Counts::default();
    s.merge(u, false).then(|| s.usage())
}

/// Usage of a complete non-streaming response.
pub(crate) fn body_usage(body: &Value) -> Option<Usage> {
    body.get("usage").and_then(usage_from)
}

/// Generated text of a complete non-streaming response: text, thinking, tool inputs.
pub(crate) fn body_text(body: &Value, out: &mut OutputText) {
    if let Some(Value::Array(blocks)) = body.get("content") {
        for block in blocks {
            block_text(block, out);
        }
    }
    out.push_finish(body.get("stop_reason"));
}

fn block_text(block: &Value, out: &mut OutputText) {
    for key in ["text", "thinking"] {
        if let Some(Value::String(s)) = block.get(key) {
            out.push(s);
        }
    }
    if let Some(input @ Value::Object(map)) = block.get("input") {
        if !map.is_empty() {
            out.push(&input.to_string());
        }
    }
}

/// Running Anthropic token counts (`None`: not reported yet); also used by the dialect's
/// stream decoder, so translation and accounting read usage the same way.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
}

impl Counts {
    /// Merges a `usage` object; returns whether it had any count. `output` replaces; the
    /// input-side counts replace when `keep_max` is false, else keep the larger value.
    pub(crate) fn merge(&mut self, u: &Value, keep_max: bool) -> bool {
        let mut any = false;
        let mut set = |slot: &mut Option<u64>, key: &str, max: bool| {
            if let Some(n) = count(u, key) {
                any = true;
                *slot = Some(match *slot {
                    Some(old) if max => old.max(n),
                    _ => n,
                });
            }
        };
        set(&mut self.input, "input_tokens", keep_max);
        set(&mut self.cache_read, "cache_read_input_tokens", keep_max);
        set(
            &mut self.cache_write,
            "cache_creation_input_tokens",
            keep_max,
        );
        set(&mut self.output, "output_tokens", false);
        any
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage {
            input: self.input.unwrap_or(0),
            output: self.output.unwrap_or(0),
            cached_input: self.cache_read.unwrap_or(0),
            cache_write: self.cache_write.unwrap_or(0),
            reasoning: 0,
        }
    }
}

/// Stream state for one Anthropic Messages stream.
#[derive(Debug, Default)]
pub(crate) struct AnthropicStream {
    counts: Counts,
    /// Some usage was reported (`message_start`).
    seen: bool,
    /// The final output count was reported (`message_delta`).
    final_seen: bool,
    done: bool,
}

impl AnthropicStream {
    pub(crate) fn on_event(&mut self, ev: &SseEvent, out: &mut OutputText) {
        // Most of a stream is text deltas: read those typed and borrowed, no JSON tree. An
        // event named otherwise goes straight to the tree (read once, not twice); its `type`
        // still decides there.
        let maybe_delta = ev
            .event
            .as_deref()
            .is_none_or(|e| e == "content_block_delta");
        if let Some(d) = maybe_delta
            .then(|| serde_json::from_str::<TypedDelta<'_>>(&ev.data).ok())
            .flatten()
        {
            let kind = d.kind.or(ev.event.as_deref()).unwrap_or_default();
            if kind == "content_block_delta" {
                if let Some(delta) = &d.delta {
                    for piece in [delta.text, delta.thinking, delta.partial_json] {
                        if let Some(t) = super::openai_chunk::text(piece) {
                            out.push(&t);
                        }
                    }
                }
                return;
            }
        }
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        match event_kind(&v, ev) {
            "message_start" => {
                if let Some(u) = v.get("message").and_then(|m| m.get("usage")) {
                    self.seen |= self.counts.merge(u, false);
                }
            }
            "message_delta" => {
                out.push_finish(v.get("delta").and_then(|d| d.get("stop_reason")));
                if let Some(u) = v.get("usage") {
                    let any = self.counts.merge(u, true);
                    self.seen |= any;
                    self.final_seen |= any;
                }
            }
            "message_stop" => self.done = true,
            "content_block_start" => {
                if let Some(block) = v.get("content_block") {
                    block_text(block, out);
                }
            }
            "content_block_delta" => {
                if let Some(d) = v.get("delta") {
                    for key in ["text", "thinking", "partial_json"] {
                        if let Some(Value::String(s)) = d.get(key) {
                            out.push(s);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The usage once its final output count arrived (`message_delta`).
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.final_seen.then(|| self.counts.usage())
    }

    /// The usage reported so far, final or not (`message_start` alone has the input and cache
    /// counts but only the first output tokens).
    pub(crate) fn reported(&self) -> Option<Usage> {
        self.seen.then(|| self.counts.usage())
    }

    pub(crate) fn done(&self) -> bool {
        self.done
    }
}
