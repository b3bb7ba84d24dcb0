//! Gemini SSE streams (`streamGenerateContent?alt=sse`) both ways: each `data:` event is a
//! whole `GenerateContentResponse` chunk. The decoder turns chunks into canonical events;
//! the encoder writes one chunk per text/thinking delta or whole function call, and a last
//! chunk with `finishReason` and `usageMetadata`.

use serde_json::{json, Map, Value};

use super::error::{error_json, error_object, stream_error};
use super::response::{args_value, function_call};
use super::wire::{fallback_id, finish_reason, get, get_str, stop_reason, usage_from, usage_json};
use crate::dialect::canonical::*;
use crate::usage::{SseEvent, Usage};

/// A decoder for one Gemini stream.
pub fn stream_decoder() -> Box<dyn StreamDecoder> {
    Box::<Decoder>::default()
}

/// An encoder writing one Gemini stream.
pub fn stream_encoder(opts: StreamEncoderOptions) -> Box<dyn StreamEncoder> {
    Box::new(Encoder {
        opts,
        ..Encoder::default()
    })
}

/// The kind of the open text-like block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

#[derive(Debug, Default)]
struct Decoder {
    started: bool,
    /// The open block (Gemini sends function calls whole, so only text and thinking stay
    /// open across chunks).
    open: Option<(usize, Open)>,
    next_index: usize,
    /// Function calls seen in the whole stream (for unique `call_<k>` ids).
    calls: usize,
    /// A `finishReason` was seen: `Stop` is out, and the stream's end is its clean end.
    stopped: bool,
    last_usage: Option<Usage>,
    ended: bool,
}

impl Decoder {
    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }

    /// The open block of `kind`, opening it (and closing another kind) if needed.
    fn block(&mut self, kind: Open, out: &mut Vec<StreamEvent>) -> usize {
        match self.open {
            Some((index, k)) if k == kind => index,
            _ => {
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                let kind_ev = match kind {
                    Open::Text => BlockKind::Text,
                    Open::Thinking => BlockKind::Thinking,
                };
                out.push(StreamEvent::BlockStart {
                    index,
                    kind: kind_ev,
                });
                self.open = Some((index, kind));
                index
            }
        }
    }

    fn on_chunk(&mut self, v: &Value, raw: &str, out: &mut Vec<StreamEvent>) {
        if let Value::Array(items) = v {
            items.iter().for_each(|i| self.on_chunk(i, raw, out));
            return;
        }
        if !v.is_object() {
            return;
        }
        if let Some(e) = error_object(v) {
            out.push(StreamEvent::Error(stream_error(e)));
            return;
        }
        if !self.started {
            self.started = true;
            let id = get_str(v, "responseId")
                .filter(|s| !s.is_empty())
                .map_or_else(|| fallback_id(raw.as_bytes()), str::to_owned);
            let model = get_str(v, "modelVersion").unwrap_or_default().to_owned();
            out.push(StreamEvent::Start {
                id,
                model,
                usage: None,
            });
        }
        let candidate = get(v, "candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        if let Some(c) = candidate {
            self.on_candidate(c, out);
        } else if !self.stopped
            && get(v, "promptFeedback")
                .and_then(|f| get_str(f, "blockReason"))
                .is_some_and(|r| !r.is_empty())
        {
            // The prompt was blocked: no candidate will come.
            self.stopped = true;
            out.push(StreamEvent::Stop {
                reason: StopReason::ContentFilter,
                stop_sequence: None,
            });
        }
        if let Some(u) = get(v, "usageMetadata").and_then(usage_from) {
            if self.last_usage != Some(u) {
                self.last_usage = Some(u);
                out.push(StreamEvent::Usage(u));
            }
        }
    }

    fn on_candidate(&mut self, c: &Value, out: &mut Vec<StreamEvent>) {
        // Content after the finish reason would reopen a finished answer: ignored.
        if self.stopped {
            return;
        }
        let parts = get(c, "content")
            .and_then(|c| get(c, "parts"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for p in parts {
            self.on_part(p, out);
        }
        if let Some(reason) =
            get_str(c, "finishReason").and_then(|r| stop_reason(r, self.calls > 0))
        {
            self.close(out);
            self.stopped = true;
            out.push(StreamEvent::Stop {
                reason,
                stop_sequence: None,
            });
        }
    }

    fn on_part(&mut self, p: &Value, out: &mut Vec<StreamEvent>) {
        if let Some(text) = get_str(p, "text") {
            if get(p, "thought").and_then(Value::as_bool) == Some(true) {
                let signature = get_str(p, "thoughtSignature").filter(|s| !s.is_empty());
                if text.is_empty() && signature.is_none() {
                    return;
                }
                let index = self.block(Open::Thinking, out);
                if !text.is_empty() {
                    out.push(StreamEvent::Delta {
                        index,
                        delta: Delta::Thinking(text.to_owned()),
                    });
                }
                if let Some(s) = signature {
                    out.push(StreamEvent::Delta {
                        index,
                        delta: Delta::Signature(s.to_owned()),
                    });
                }
            } else if !text.is_empty() {
                // (A `thoughtSignature` on a text part has no canonical place: known gap.)
                let index = self.block(Open::Text, out);
                out.push(StreamEvent::Delta {
                    index,
                    delta: Delta::Text(text.to_owned()),
                });
            }
            return;
        }
        let Some(call) = get(p, "functionCall") else {
            return;
        };
        // Gemini sends each call whole: one block with the whole arguments.
        let (id, name, arguments) = function_call(call, self.calls);
        self.calls += 1;
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push(StreamEvent::BlockStart {
            index,
            kind: BlockKind::ToolCall { id, name },
        });
        out.push(StreamEvent::Delta {
            index,
            delta: Delta::ToolArguments(arguments),
        });
        out.push(StreamEvent::BlockStop { index });
    }
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        // A chunk that is not JSON is skipped: the rest of the stream may still be good.
        if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
            self.on_chunk(&v, &ev.data, out);
        }
    }

    /// Closes an open block; a stream that saw its `finishReason` ended cleanly (Gemini has
    /// no terminal event), so `End` follows.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        self.close(out);
        if self.stopped {
            self.ended = true;
            out.push(StreamEvent::End);
        }
    }
}

/// A function call being collected (its arguments come as deltas; Gemini sends it whole).
#[derive(Debug)]
struct PendingCall {
    index: usize,
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
struct Encoder {
    opts: StreamEncoderOptions,
    id: String,
    model: String,
    call: Option<PendingCall>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    done: bool,
}

impl Encoder {
    fn chunk(&self, body: Map<String, Value>, out: &mut Vec<u8>) {
        let mut body = body;
        let model = if self.model.is_empty() {
            &self.opts.model
        } else {
            &self.model
        };
        body.insert("modelVersion".into(), json!(model));
        body.insert("responseId".into(), json!(self.id));
        write_event(&Value::Object(body), out);
    }

    fn part(&self, part: Value, out: &mut Vec<u8>) {
        let candidate = json!({ "content": { "role": "model", "parts": [part] }, "index": 0 });
        let mut body = Map::new();
        body.insert("candidates".into(), json!([candidate]));
        self.chunk(body, out);
    }

    fn flush_call(&mut self, out: &mut Vec<u8>) {
        if let Some(c) = self.call.take() {
            let call = json!({ "id": c.id, "name": c.name, "args": args_value(&c.arguments) });
            self.part(json!({ "functionCall": call }), out);
        }
    }

    /// The last chunk: `finishReason` and usage (nothing if neither is known).
    fn last(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        let mut body = Map::new();
        if let Some(reason) = &self.stop {
            body.insert(
                "candidates".into(),
                json!([{ "finishReason": finish_reason(reason), "index": 0 }]),
            );
        }
        if let Some(u) = &self.usage {
            body.insert("usageMetadata".into(), usage_json(u));
        }
        if !body.is_empty() {
            self.chunk(body, out);
        }
    }
}

fn write_event(v: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

impl StreamEncoder for Encoder {
    fn on_event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            StreamEvent::Start { id, model, .. } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
            }
            StreamEvent::BlockStart {
                index,
                kind: BlockKind::ToolCall { id, name },
            } => {
                self.flush_call(out);
                self.call = Some(PendingCall {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            // Text and thinking blocks need no opening; redacted thinking has no Gemini form.
            StreamEvent::BlockStart { .. } => {}
            StreamEvent::Delta { index, delta } => match delta {
                Delta::Text(t) => self.part(json!({ "text": t }), out),
                Delta::Thinking(t) => self.part(json!({ "text": t, "thought": true }), out),
                Delta::Signature(s) => self.part(
                    json!({ "text": "", "thought": true, "thoughtSignature": s }),
                    out,
                ),
                Delta::ToolArguments(piece) => {
                    if let Some(c) = self.call.as_mut().filter(|c| c.index == *index) {
                        c.arguments.push_str(piece);
                    }
                }
            },
            StreamEvent::BlockStop { index } => {
                if self.call.as_ref().is_some_and(|c| c.index == *index) {
                    self.flush_call(out);
                }
            }
            StreamEvent::Stop { reason, .. } => self.stop = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                self.call = None;
                write_event(&error_json(e), out);
                // An error ends a Gemini stream.
                self.done = true;
            }
            StreamEvent::End => {
                self.flush_call(out);
                self.last(out);
            }
        }
    }

    /// Writes a call left open only if its arguments are complete JSON, then the last chunk.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if let Some(c) = &self.call {
            if arguments_object(&c.arguments, "arguments").is_err() {
                self.call = None;
            }
        }
        self.flush_call(out);
        self.last(out);
    }
}
