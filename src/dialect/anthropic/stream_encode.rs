//! Canonical stream events -> Anthropic Messages SSE bytes (for Anthropic clients).
//!
//! Writes `message_start`, `content_block_start`/`_delta`/`_stop`, and at the end
//! `message_delta` (stop reason and final usage) + `message_stop`. `Stop` and `Usage` events
//! are remembered for that `message_delta`. Missing pieces are synthesised so the client
//! always sees a well-formed stream: a `message_start` before anything else, a block start
//! before a delta that has none (or whose kind does not fit the open block), a block stop
//! before the next block and before the end. An `Error` becomes an `error` event and ends
//! the stream: nothing is written after it.

use serde_json::{json, Value};

use super::errors::type_for_status;
use super::response::{message_id, stop_reason_name, usage_json};
use crate::dialect::canonical::*;
use crate::usage::Usage;

/// Incremental stream encoder for Anthropic Messages clients.
pub fn stream_encoder(opts: StreamEncoderOptions) -> Box<dyn StreamEncoder> {
    Box::new(Encoder {
        opts,
        ..Encoder::default()
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Redacted,
    Tool,
}

#[derive(Debug)]
struct Open {
    /// The canonical index of the block.
    input: usize,
    /// The index written to the client.
    index: usize,
    kind: Kind,
}

#[derive(Debug, Default)]
struct Encoder {
    opts: StreamEncoderOptions,
    started: bool,
    done: bool,
    open: Option<Open>,
    next_index: usize,
    tool_calls: bool,
    stop: Option<(StopReason, Option<String>)>,
    start_usage: Option<Usage>,
    usage: Option<Usage>,
}

impl StreamEncoder for Encoder {
    fn on_event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            StreamEvent::Start { id, model, usage } => self.start(id, model, *usage, out),
            StreamEvent::BlockStart { index, kind } => self.block_start(*index, kind, out),
            StreamEvent::Delta { index, delta } => self.delta(*index, delta, out),
            StreamEvent::BlockStop { index } => {
                if self.open.as_ref().is_some_and(|o| o.input == *index) {
                    self.close(out);
                }
            }
            StreamEvent::Stop {
                reason,
                stop_sequence,
            } => self.stop = Some((reason.clone(), stop_sequence.clone())),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                let data = json!({
                    "type": "error",
                    "error": {"type": type_for_status(e.status), "message": e.message},
                });
                write(out, "error", &data);
                self.done = true;
            }
            StreamEvent::End => self.finish(out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start("", "", None, out);
        self.close(out);
        let usage = self.usage.or(self.start_usage).unwrap_or_default();
        let (reason, stop_sequence) = match &self.stop {
            Some((r, s)) => (Some(r), s.clone()),
            None => (None, None),
        };
        let data = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason_name(reason, self.tool_calls),
                "stop_sequence": stop_sequence,
            },
            // All four counts: the SDKs take any count present here over message_start's,
            // which went out with zeros when the provider reports usage only at the end.
            "usage": usage_json(&usage),
        });
        write(out, "message_delta", &data);
        write(out, "message_stop", &json!({"type": "message_stop"}));
        self.done = true;
    }
}

impl Encoder {
    /// Writes `message_start` once (with the provider's id and model, or made-up ones).
    fn start(&mut self, id: &str, model: &str, usage: Option<Usage>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.start_usage = usage;
        let model = if model.is_empty() {
            self.opts.model.as_str()
        } else {
            model
        };
        let data = json!({
            "type": "message_start",
            "message": {
                "id": message_id(id),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage_json(&usage.unwrap_or_default()),
            },
        });
        write(out, "message_start", &data);
    }

    fn block_start(&mut self, input: usize, kind: &BlockKind, out: &mut Vec<u8>) {
        let (kind, block) = match kind {
            BlockKind::Text => (Kind::Text, json!({"type": "text", "text": ""})),
            BlockKind::Thinking => (
                Kind::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            ),
            BlockKind::RedactedThinking { data } => (
                Kind::Redacted,
                json!({"type": "redacted_thinking", "data": data}),
            ),
            BlockKind::ToolCall { id, name } => (
                Kind::Tool,
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
            ),
        };
        self.open_block(input, kind, block, out);
    }

    fn open_block(&mut self, input: usize, kind: Kind, block: Value, out: &mut Vec<u8>) {
        self.start("", "", None, out);
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.tool_calls |= kind == Kind::Tool;
        let data = json!({"type": "content_block_start", "index": index, "content_block": block});
        write(out, "content_block_start", &data);
        self.open = Some(Open { input, index, kind });
    }

    fn delta(&mut self, input: usize, delta: &Delta, out: &mut Vec<u8>) {
        let (kind, body) = match delta {
            Delta::Text(t) => (Kind::Text, json!({"type": "text_delta", "text": t})),
            Delta::Thinking(t) => (
                Kind::Thinking,
                json!({"type": "thinking_delta", "thinking": t}),
            ),
            Delta::Signature(s) => (
                Kind::Thinking,
                json!({"type": "signature_delta", "signature": s}),
            ),
            Delta::ToolArguments(a) => (
                Kind::Tool,
                json!({"type": "input_json_delta", "partial_json": a}),
            ),
        };
        let index = match &self.open {
            Some(open) if open.input == input && open.kind == kind => open.index,
            // No block (or one of another kind) is open for this delta: start one.
            _ => {
                let block = match kind {
                    Kind::Text => json!({"type": "text", "text": ""}),
                    Kind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
                    _ => json!({
                        "type": "tool_use",
                        "id": format!("toolu_{input}"),
                        "name": "",
                        "input": {},
                    }),
                };
                self.open_block(input, kind, block, out);
                self.next_index.saturating_sub(1)
            }
        };
        let data = json!({"type": "content_block_delta", "index": index, "delta": body});
        write(out, "content_block_delta", &data);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(open) = self.open.take() {
            let data = json!({"type": "content_block_stop", "index": open.index});
            write(out, "content_block_stop", &data);
        }
    }
}

/// One SSE event: `event: <name>\ndata: <json>\n\n` (JSON text never holds a raw newline).
fn write(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
