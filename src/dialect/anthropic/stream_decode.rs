//! Anthropic Messages SSE stream (from a provider) -> canonical stream events.
//!
//! Events handled: `message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta`,
//! `message_stop`, `ping`, `error`. Blocks get the decoder's own sequential indices (the
//! provider's index maps to them), so server-tool blocks, which are skipped with their deltas,
//! leave no gaps. Events that are not JSON are ignored; nothing after `message_stop` counts.

use serde_json::Value;

use super::errors::status_for_type;
use super::response::{stop_reason_from, usage_from, Counts};
use crate::dialect::canonical::*;
use crate::usage::SseEvent;

/// Incremental stream decoder for Anthropic Messages streams.
pub fn stream_decoder() -> Box<dyn StreamDecoder> {
    Box::<Decoder>::default()
}

/// The block being streamed: the provider's index and ours.
#[derive(Debug)]
struct Open {
    provider: Option<u64>,
    index: usize,
}

#[derive(Debug, Default)]
struct Decoder {
    started: bool,
    ended: bool,
    open: Option<Open>,
    next_index: usize,
    /// Provider indices of skipped blocks (server tools), whose deltas are skipped too.
    skipped: Vec<u64>,
    /// Provider indices of blocks started so far (a late delta for a closed one is dropped).
    seen: Vec<u64>,
    counts: Counts,
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        match crate::usage::anthropic::event_kind(&v, ev) {
            "message_start" => self.message_start(&v, out),
            "content_block_start" => self.block_start(&v, out),
            "content_block_delta" => self.block_delta(&v, out),
            "content_block_stop" if self.is_open(index_of(&v)) => self.close(out),
            "message_delta" => self.message_delta(&v, out),
            "message_stop" => {
                self.close(out);
                self.ended = true;
                out.push(StreamEvent::End);
            }
            "error" => out.push(StreamEvent::Error(stream_error(&v))),
            _ => {} // `ping` and anything new
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.close(out);
    }
}

impl Decoder {
    fn ensure_started(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                usage: None,
            });
        }
    }

    fn message_start(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let msg = v.get("message");
        let text = |key: &str| {
            msg.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let usage = msg.and_then(|m| m.get("usage"));
        if let Some(u) = usage {
            self.counts.merge(u, false);
        }
        out.push(StreamEvent::Start {
            id: text("id"),
            model: text("model"),
            usage: usage
                .and_then(usage_from)
                .filter(|u| *u != crate::usage::Usage::default()),
        });
    }

    fn block_start(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        let provider = index_of(v);
        let Some(block) = v.get("content_block") else {
            return;
        };
        let text = |key: &str| block.get(key).and_then(Value::as_str);
        let kind = match text("type").unwrap_or_default() {
            "text" => BlockKind::Text,
            "thinking" => BlockKind::Thinking,
            "redacted_thinking" => BlockKind::RedactedThinking {
                data: text("data").unwrap_or_default().to_owned(),
            },
            "tool_use" => BlockKind::ToolCall {
                id: text("id").unwrap_or_default().to_owned(),
                name: text("name").unwrap_or_default().to_owned(),
            },
            other => {
                log::debug!("anthropic stream: skipped a `{other}` block");
                if let Some(p) = provider {
                    self.skipped.push(p);
                }
                return;
            }
        };
        if let Some(p) = provider {
            self.seen.push(p);
        }
        let index = self.open_block(provider, kind.clone(), out);
        // Anthropic starts blocks empty; a compatible provider may put content in the start.
        let first = match kind {
            BlockKind::Text => text("text").map(|t| Delta::Text(t.to_owned())),
            BlockKind::Thinking => text("thinking").map(|t| Delta::Thinking(t.to_owned())),
            BlockKind::ToolCall { .. } => match block.get("input") {
                Some(input @ Value::Object(m)) if !m.is_empty() => {
                    Some(Delta::ToolArguments(input.to_string()))
                }
                _ => None,
            },
            BlockKind::RedactedThinking { .. } => None,
        };
        if let Some(delta) = first.filter(|d| !delta_is_empty(d)) {
            out.push(StreamEvent::Delta { index, delta });
        }
        if let (BlockKind::Thinking, Some(sig)) = (kind, text("signature")) {
            if !sig.is_empty() {
                let delta = Delta::Signature(sig.to_owned());
                out.push(StreamEvent::Delta { index, delta });
            }
        }
    }

    /// Starts a block (closing any open one first: canonical blocks are sequential).
    fn open_block(
        &mut self,
        provider: Option<u64>,
        kind: BlockKind,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        self.ensure_started(out);
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some(Open { provider, index });
        out.push(StreamEvent::BlockStart { index, kind });
        index
    }

    fn block_delta(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        let provider = index_of(v);
        if provider.is_some_and(|p| self.skipped.contains(&p)) {
            return;
        }
        let open_now = self.is_open(provider);
        if !open_now && provider.is_some_and(|p| self.seen.contains(&p)) {
            log::debug!("anthropic stream: dropped a delta for a closed block");
            return;
        }
        let Some(d) = v.get("delta") else {
            return;
        };
        let text = |key: &str| d.get(key).and_then(Value::as_str).map(str::to_owned);
        let delta = match d.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text_delta" => text("text").map(Delta::Text),
            "thinking_delta" => text("thinking").map(Delta::Thinking),
            "signature_delta" => text("signature").map(Delta::Signature),
            "input_json_delta" => text("partial_json").map(Delta::ToolArguments),
            _ => None, // `citations_delta` and anything new
        };
        let Some(delta) = delta else {
            return;
        };
        let current = match &self.open {
            Some(open) if open_now => Some(open.index),
            _ => None,
        };
        let index = match current {
            Some(index) => index,
            // A delta for a block never started: text and thinking can still be shown.
            None => match &delta {
                Delta::Text(_) => self.open_block(provider, BlockKind::Text, out),
                Delta::Thinking(_) => self.open_block(provider, BlockKind::Thinking, out),
                _ => return,
            },
        };
        out.push(StreamEvent::Delta { index, delta });
    }

    fn message_delta(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        self.ensure_started(out);
        let d = v.get("delta");
        if let Some(reason) = d.and_then(|d| d.get("stop_reason")).and_then(Value::as_str) {
            out.push(StreamEvent::Stop {
                reason: stop_reason_from(reason),
                stop_sequence: d
                    .and_then(|d| d.get("stop_sequence"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
        if let Some(u) = v.get("usage") {
            if self.counts.merge(u, true) {
                out.push(StreamEvent::Usage(self.counts.usage()));
            }
        }
    }

    /// Whether the provider's block `provider` is the open one (an event without an index is
    /// taken to be about the open block).
    fn is_open(&self, provider: Option<u64>) -> bool {
        match (&self.open, provider) {
            (Some(open), Some(p)) => open.provider == Some(p),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.take() {
            out.push(StreamEvent::BlockStop { index: open.index });
        }
    }
}

fn index_of(v: &Value) -> Option<u64> {
    v.get("index").and_then(Value::as_u64)
}

fn delta_is_empty(d: &Delta) -> bool {
    match d {
        Delta::Text(s) | Delta::Thinking(s) | Delta::Signature(s) | Delta::ToolArguments(s) => {
            s.is_empty()
        }
    }
}

/// An in-stream `error` event -> [`ProviderError`] with the status its type implies.
fn stream_error(v: &Value) -> ProviderError {
    let e = v.get("error");
    let text = |key: &str| {
        e.and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let provider_type = text("type");
    ProviderError {
        status: status_for_type(provider_type.as_deref().unwrap_or_default()),
        message: text("message").unwrap_or_else(|| "provider stream error".to_owned()),
        provider_type,
        param: None,
    }
}
