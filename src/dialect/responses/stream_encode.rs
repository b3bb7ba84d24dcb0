//! Canonical stream events -> the Responses API event stream (for Responses clients).
//!
//! Every event is `event: <type>\ndata: <json>\n\n`, its data carrying `type` and a
//! `sequence_number` counting from 0. The sequence:
//! - `Start` -> `response.created` and `response.in_progress` (status `in_progress`, no output);
//!   a block arriving first synthesises them.
//! - A text block -> `response.output_item.added` (an assistant `message`),
//!   `response.content_part.added`, `response.output_text.delta`s, then at its stop
//!   `response.output_text.done`, `response.content_part.done`, `response.output_item.done`.
//! - A thinking block -> a `reasoning` item with one summary part:
//!   `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`s,
//!   `.done`s; its signature travels as the item's `encrypted_content`.
//! - A tool-call block -> a `function_call` item: `response.function_call_arguments.delta`s,
//!   `response.function_call_arguments.done`, `response.output_item.done`.
//! - `End` or `finish()` -> `response.completed` (or `response.incomplete` for a stop at the
//!   token limit or a content filter) with every output item and the usage.
//! - `Error` -> an `error` event, then `response.failed` with the output so far; nothing after.

use super::response::{
    call_item, item_id, message_item, now, output_text, reasoning_item, status_of, Envelope,
};
use super::{response_id, REDACTED_PREFIX};
use crate::dialect::canonical::*;
use crate::usage::Usage;
use serde_json::{json, Value};

/// A new stream encoder.
pub fn stream_encoder(opts: StreamEncoderOptions) -> Box<dyn StreamEncoder> {
    Box::new(Encoder {
        opts,
        ..Encoder::default()
    })
}

#[derive(Debug)]
enum Kind {
    Text(String),
    Thinking { text: String, signature: String },
    Call(ToolCall),
}

#[derive(Debug)]
struct Open {
    /// The canonical block index.
    input: usize,
    output_index: usize,
    id: String,
    kind: Kind,
}

#[derive(Debug, Default)]
struct Encoder {
    opts: StreamEncoderOptions,
    seq: u64,
    started: bool,
    done: bool,
    id: String,
    model: String,
    created_at: u64,
    /// Finished output items, by output index.
    items: Vec<Value>,
    open: Option<Open>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

impl StreamEncoder for Encoder {
    fn on_event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            StreamEvent::Start { id, model, usage } => {
                if usage.is_some() {
                    self.usage = *usage;
                }
                self.start(id, model, out);
            }
            StreamEvent::BlockStart { index, kind } => {
                self.start("", "", out);
                self.close(out);
                self.open_block(*index, kind, out);
            }
            StreamEvent::Delta { index, delta } => {
                self.start("", "", out);
                self.delta(*index, delta, out);
            }
            StreamEvent::BlockStop { index } => {
                if self.open.as_ref().is_some_and(|o| o.input == *index) {
                    self.close(out);
                }
            }
            StreamEvent::Stop { reason, .. } => self.stop = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => self.fail(e, out),
            StreamEvent::End => self.finish(out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start("", "", out);
        self.close(out);
        let (status, incomplete) = status_of(self.stop.as_ref());
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        let response = self.response(status, Value::Null, incomplete);
        self.event(kind, json!({ "response": response }), out);
        self.done = true;
    }
}

impl Encoder {
    fn event(&mut self, kind: &str, mut data: Value, out: &mut Vec<u8>) {
        data["type"] = kind.into();
        data["sequence_number"] = self.seq.into();
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(data.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn response(&self, status: &str, error: Value, incomplete: Value) -> Value {
        let model = if self.model.is_empty() {
            &self.opts.model
        } else {
            &self.model
        };
        Envelope {
            id: &self.id,
            created_at: self.created_at,
            model,
            echo: self.opts.echo.as_deref(),
        }
        .object(
            status,
            self.items.clone(),
            self.usage.as_ref().filter(|_| status != "in_progress"),
            error,
            incomplete,
        )
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = self
            .opts
            .response_id
            .clone()
            .unwrap_or_else(|| response_id(id));
        self.model = model.to_owned();
        self.created_at = now();
        let response = self.response("in_progress", Value::Null, Value::Null);
        self.event(
            "response.created",
            json!({ "response": response.clone() }),
            out,
        );
        self.event("response.in_progress", json!({ "response": response }), out);
    }

    fn open_block(&mut self, input: usize, kind: &BlockKind, out: &mut Vec<u8>) {
        let output_index = self.items.len();
        let (prefix, kind) = match kind {
            BlockKind::Text => ("msg", Kind::Text(String::new())),
            BlockKind::Thinking => (
                "rs",
                Kind::Thinking {
                    text: String::new(),
                    signature: String::new(),
                },
            ),
            BlockKind::ToolCall { id, name } => (
                "fc",
                Kind::Call(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                }),
            ),
            BlockKind::RedactedThinking { data } => {
                let item = json!({
                    "id": item_id("rs", &self.id, output_index),
                    "type": "reasoning",
                    "summary": [],
                    "encrypted_content": format!("{REDACTED_PREFIX}{data}"),
                });
                let added = json!({"output_index": output_index, "item": item.clone()});
                self.event("response.output_item.added", added, out);
                let done = json!({"output_index": output_index, "item": item.clone()});
                self.event("response.output_item.done", done, out);
                self.items.push(item);
                return;
            }
        };
        let id = item_id(prefix, &self.id, output_index);
        let (item, part_event) = match &kind {
            Kind::Text(_) => (
                json!({"id": id, "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}),
                Some((
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                        "part": output_text("")}),
                )),
            ),
            Kind::Thinking { .. } => (
                json!({"id": id, "type": "reasoning", "summary": []}),
                Some((
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""}}),
                )),
            ),
            Kind::Call(c) => {
                let mut item = call_item(&id, c, "in_progress");
                item["arguments"] = "".into();
                (item, None)
            }
        };
        self.event(
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
            out,
        );
        if let Some((kind, data)) = part_event {
            self.event(kind, data, out);
        }
        self.open = Some(Open {
            input,
            output_index,
            id,
            kind,
        });
    }

    fn delta(&mut self, index: usize, delta: &Delta, out: &mut Vec<u8>) {
        // A delta with no block open for it (a decoder never sends one) opens the block it
        // needs; arguments of an unknown call have nowhere to go.
        let needs = match delta {
            Delta::Text(_) => Some(BlockKind::Text),
            Delta::Thinking(_) | Delta::Signature(_) => Some(BlockKind::Thinking),
            Delta::ToolArguments(_) => None,
        };
        if self.open.as_ref().is_none_or(|o| o.input != index) {
            let Some(kind) = needs else {
                log::debug!("responses stream encoder: arguments for unknown block {index}");
                return;
            };
            self.close(out);
            self.open_block(index, &kind, out);
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let (id, output_index) = (open.id.clone(), open.output_index);
        let event = match (&mut open.kind, delta) {
            (Kind::Text(text), Delta::Text(d)) if !d.is_empty() => {
                text.push_str(d);
                Some((
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                        "delta": d, "logprobs": []}),
                ))
            }
            (Kind::Thinking { text, .. }, Delta::Thinking(d)) if !d.is_empty() => {
                text.push_str(d);
                Some((
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                        "delta": d}),
                ))
            }
            (Kind::Thinking { signature, .. }, Delta::Signature(s)) => {
                signature.push_str(s);
                None
            }
            (Kind::Call(c), Delta::ToolArguments(d)) if !d.is_empty() => {
                c.arguments.push_str(d);
                Some((
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": output_index, "delta": d}),
                ))
            }
            _ => None,
        };
        if let Some((kind, data)) = event {
            self.event(kind, data, out);
        }
    }

    /// Finishes the open item: its `.done` events, and it joins the output.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let (id, oi) = (open.id, open.output_index);
        let item = match open.kind {
            Kind::Text(text) => {
                self.event(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0,
                        "text": text, "logprobs": []}),
                    out,
                );
                self.event(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0,
                        "part": output_text(&text)}),
                    out,
                );
                message_item(&id, &text, "completed")
            }
            Kind::Thinking { text, signature } => {
                self.event(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": oi, "summary_index": 0,
                        "text": text}),
                    out,
                );
                self.event(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": oi, "summary_index": 0,
                        "part": {"type": "summary_text", "text": text}}),
                    out,
                );
                let signature = (!signature.is_empty()).then_some(signature.as_str());
                reasoning_item(&id, &text, signature)
            }
            Kind::Call(c) => {
                self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": oi, "name": c.name,
                        "arguments": c.arguments}),
                    out,
                );
                call_item(&id, &c, "completed")
            }
        };
        self.event(
            "response.output_item.done",
            json!({"output_index": oi, "item": item.clone()}),
            out,
        );
        self.items.push(item);
    }

    fn fail(&mut self, e: &ProviderError, out: &mut Vec<u8>) {
        self.start("", "", out);
        // The open item is cut: it is not part of the failed response's output.
        self.open = None;
        let code = e
            .provider_type
            .clone()
            .unwrap_or_else(|| failure_code(e.status).to_owned());
        self.event(
            "error",
            json!({"code": code, "message": e.message, "param": e.param}),
            out,
        );
        let error = json!({"code": failure_code(e.status), "message": e.message});
        let response = self.response("failed", error, Value::Null);
        self.event("response.failed", json!({ "response": response }), out);
        self.done = true;
    }
}

/// The `response.error.code` for a failure with an HTTP status.
pub(super) fn failure_code(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_prompt",
        _ => "server_error",
    }
}
