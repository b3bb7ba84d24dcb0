//! Canonical stream events -> OpenAI `chat.completion.chunk` SSE bytes (for OpenAI clients).
//!
//! Each event is `data: <json>\n\n`; every chunk carries the same id, `created` and model.
//! - `Start` -> the role chunk (`delta: {"role":"assistant","content":""}`); a delta arriving
//!   before any `Start` synthesises it (id made up, model from the options).
//! - Text -> `delta.content`; thinking -> `delta.reasoning_content`; signatures and redacted
//!   thinking have no OpenAI form and write nothing.
//! - A tool-call block -> `delta.tool_calls[{index: k, id, type, function{name, arguments:""}}]`
//!   with `k` counting tool calls from 0; its argument pieces follow verbatim under the same `k`.
//! - `Stop` -> a chunk with an empty delta and the `finish_reason` (once).
//! - `End` or `finish()` -> a `finish_reason` chunk if no `Stop` came (`tool_calls` if calls
//!   were made, else `stop`), the usage-only chunk if the client asked for it (`usage: null`
//!   when no usage is known), then `data: [DONE]`. Nothing is written after that.
//! - `Error` -> `data: {"error":{...}}` then `data: [DONE]`, and nothing after.

use super::errors::error_json;
use super::response::{completion_id, finish_reason, now, usage_json};
use crate::dialect::canonical::*;
use crate::usage::Usage;
use serde_json::{json, Value};

/// A new stream encoder.
pub fn stream_encoder(opts: StreamEncoderOptions) -> Box<dyn StreamEncoder> {
    Box::new(Encoder {
        opts,
        started: false,
        done: false,
        stopped: false,
        id: String::new(),
        model: String::new(),
        created: 0,
        tool_calls: Vec::new(),
        usage: None,
    })
}

struct Encoder {
    opts: StreamEncoderOptions,
    started: bool,
    done: bool,
    stopped: bool,
    id: String,
    model: String,
    created: u64,
    /// The canonical block index of each tool call, in order: position = OpenAI `index`.
    tool_calls: Vec<usize>,
    usage: Option<Usage>,
}

impl StreamEncoder for Encoder {
    fn on_event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            StreamEvent::Start { id, model, usage } => {
                if let Some(u) = usage {
                    self.usage = Some(*u);
                }
                self.start(id, model, out);
            }
            StreamEvent::BlockStart {
                index,
                kind: BlockKind::ToolCall { id, name },
            } => {
                self.ensure_started(out);
                let k = self.tool_calls.len();
                self.tool_calls.push(*index);
                let call = json!({
                    "index": k,
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                });
                self.chunk(json!({ "tool_calls": [call] }), None, out);
            }
            StreamEvent::BlockStart { .. } | StreamEvent::BlockStop { .. } => {
                self.ensure_started(out)
            }
            StreamEvent::Delta { index, delta } => {
                self.ensure_started(out);
                self.delta(*index, delta, out);
            }
            StreamEvent::Stop { reason, .. } => {
                self.ensure_started(out);
                if !self.stopped {
                    self.stopped = true;
                    self.chunk(json!({}), Some(finish_reason(reason)), out);
                }
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                write_data(&error_json(e).to_string(), out);
                write_data("[DONE]", out);
                self.done = true;
            }
            StreamEvent::End => self.finish(out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.ensure_started(out);
        if !self.stopped {
            self.stopped = true;
            let reason = if self.tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            self.chunk(json!({}), Some(reason.to_owned()), out);
        }
        if self.opts.include_usage {
            let usage = self.usage.as_ref().map_or(Value::Null, usage_json);
            let body = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            });
            write_data(&body.to_string(), out);
        }
        write_data("[DONE]", out);
        self.done = true;
    }
}

impl Encoder {
    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = completion_id(id);
        self.model = if model.is_empty() {
            self.opts.model.clone()
        } else {
            model.to_owned()
        };
        self.created = now();
        self.chunk(json!({"role": "assistant", "content": ""}), None, out);
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        self.start("", "", out);
    }

    fn delta(&mut self, index: usize, delta: &Delta, out: &mut Vec<u8>) {
        let d = match delta {
            Delta::Text(t) if !t.is_empty() => json!({ "content": t }),
            Delta::Thinking(t) if !t.is_empty() => json!({ "reasoning_content": t }),
            Delta::ToolArguments(a) if !a.is_empty() => {
                let Some(k) = self.tool_calls.iter().rposition(|&b| b == index) else {
                    log::debug!("openai stream encoder: arguments for unknown block {index}");
                    return;
                };
                json!({ "tool_calls": [{"index": k, "function": {"arguments": a}}] })
            }
            _ => return,
        };
        self.chunk(d, None, out);
    }

    /// Writes one `chat.completion.chunk` with this delta and finish reason.
    fn chunk(&self, delta: Value, finish: Option<String>, out: &mut Vec<u8>) {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish,
            }],
        });
        write_data(&body.to_string(), out);
    }
}

fn write_data(data: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}
