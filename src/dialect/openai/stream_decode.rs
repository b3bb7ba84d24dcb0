//! OpenAI `chat.completion.chunk` stream (from a provider) -> canonical stream events.
//!
//! - The first chunk gives `Start{id, model}`; `delta.role` is ignored.
//! - `delta.content` and `delta.refusal` feed a text block, `delta.reasoning_content` (or
//!   `delta.reasoning`) a thinking block; a change of kind closes the open block first. Empty
//!   strings open nothing.
//! - `delta.tool_calls[]`: each OpenAI `index` is one tool-call block, whose argument pieces
//!   go out verbatim as they arrive. Blocks must be sequential, yet OpenAI's format would allow
//!   a call's pieces to resume after another call started. So while a call is streaming, any
//!   *other* call that shows up is held (its pieces concatenated in order) and emitted whole
//!   right after the streaming call closes — at the next text/thinking, `finish_reason`,
//!   `[DONE]` or end of stream. Later pieces of the streaming call keep streaming; pieces are
//!   never reordered within a call. (OpenAI itself sends calls one after another, so only the
//!   first call of a parallel set streams piece by piece; the others arrive whole a moment
//!   later, which is when a client could first use them anyway.)
//!   A piece without `index` continues the latest call unless it carries a new `id`; an
//!   `index` reused with a new `id` (some servers number every call 0) is a new call.
//! - `finish_reason` closes the open block and gives `Stop` (`Refusal` if a refusal was
//!   streamed); `usage` (any chunk; usually the last, with `choices: []`) gives `Usage`,
//!   before the `Stop` of the same chunk; `[DONE]` gives `End` once; an `{"error":...}` chunk
//!   gives `Error`. Data that is not a JSON object is skipped (logged at debug level).

use super::errors::stream_error;
use super::response::{arguments_text, first_choice, reasoning_text, stop_reason, usage_of};
use crate::dialect::canonical::*;
use crate::usage::SseEvent;
use serde_json::{Map, Value};

/// A new stream decoder.
pub fn stream_decoder() -> Box<dyn StreamDecoder> {
    Box::new(Decoder::default())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking,
    /// The tool call at this position in `Decoder::calls`.
    Tool(usize),
}

#[derive(Debug)]
struct Open {
    index: usize,
    kind: OpenKind,
}

#[derive(Debug, PartialEq, Eq)]
enum CallState {
    /// Its block is the open one.
    Streaming,
    /// Held while another call streams: the arguments so far.
    Held(String),
    /// Its block was closed.
    Done,
}

#[derive(Debug)]
struct Call {
    /// OpenAI's `index`, when the provider gave one.
    key: Option<u64>,
    id: String,
    name: String,
    state: CallState,
}

#[derive(Debug, Default)]
struct Decoder {
    started: bool,
    ended: bool,
    stopped: bool,
    /// A refusal was streamed: the stop reason is `Refusal`.
    refusal: bool,
    next_index: usize,
    open: Option<Open>,
    calls: Vec<Call>,
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.close_open(out);
            out.push(StreamEvent::End);
            self.ended = true;
            return;
        }
        let v = match serde_json::from_str::<Value>(data) {
            Ok(v) => v,
            Err(e) => {
                log::debug!("openai stream: skipping an event that is not JSON: {e}");
                return;
            }
        };
        let Some(obj) = v.as_object() else {
            log::debug!("openai stream: skipping an event that is not a JSON object");
            return;
        };
        if let Some(e) = obj.get("error").filter(|e| !e.is_null()) {
            self.close_open(out);
            out.push(StreamEvent::Error(stream_error(e)));
            // An error ends the stream: whatever follows is not part of an answer.
            self.ended = true;
            return;
        }
        if !self.started {
            self.started = true;
            let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
            out.push(StreamEvent::Start {
                id: s("id").to_owned(),
                model: s("model").to_owned(),
                usage: None,
            });
        }
        let choice = match obj.get("choices") {
            Some(Value::Array(c)) => first_choice(c).and_then(Value::as_object),
            _ => None,
        };
        if let Some(delta) = choice
            .and_then(|c| c.get("delta"))
            .and_then(Value::as_object)
        {
            self.on_delta(delta, out);
        }
        if let Some(u) = usage_of(&v) {
            out.push(StreamEvent::Usage(u));
        }
        let finish = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty());
        if let Some(fr) = finish {
            self.close_open(out);
            if !self.stopped {
                self.stopped = true;
                let reason = if self.refusal {
                    StopReason::Refusal
                } else {
                    stop_reason(fr)
                };
                out.push(StreamEvent::Stop {
                    reason,
                    stop_sequence: None,
                });
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_open(out);
    }
}

impl Decoder {
    fn on_delta(&mut self, delta: &Map<String, Value>, out: &mut Vec<StreamEvent>) {
        if let Some(t) = reasoning_text(delta) {
            self.on_text(OpenKind::Thinking, t, out);
        }
        if let Some(t) = delta.get("content").and_then(Value::as_str) {
            self.on_text(OpenKind::Text, t, out);
        }
        if let Some(r) = delta.get("refusal").and_then(Value::as_str) {
            if !r.is_empty() {
                self.refusal = true;
            }
            self.on_text(OpenKind::Text, r, out);
        }
        if let Some(Value::Array(calls)) = delta.get("tool_calls") {
            for piece in calls {
                self.on_tool_piece(piece, out);
            }
        }
    }

    /// A piece of text or thinking.
    fn on_text(&mut self, kind: OpenKind, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        let index = match &self.open {
            Some(o) if o.kind == kind => o.index,
            _ => {
                self.close_open(out);
                let block = match kind {
                    OpenKind::Thinking => BlockKind::Thinking,
                    _ => BlockKind::Text,
                };
                self.start_block(kind, block, out)
            }
        };
        let delta = match kind {
            OpenKind::Thinking => Delta::Thinking(text.to_owned()),
            _ => Delta::Text(text.to_owned()),
        };
        out.push(StreamEvent::Delta { index, delta });
    }

    fn start_block(
        &mut self,
        kind: OpenKind,
        block: BlockKind,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        out.push(StreamEvent::BlockStart { index, kind: block });
        self.open = Some(Open { index, kind });
        index
    }

    /// One element of `delta.tool_calls`.
    fn on_tool_piece(&mut self, piece: &Value, out: &mut Vec<StreamEvent>) {
        let key = piece.get("index").and_then(Value::as_u64);
        let id = piece
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let f = piece.get("function");
        let name = f
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let args = arguments_text(f.and_then(|f| f.get("arguments")));
        let Some(slot) = self.find_call(key, id) else {
            self.new_call(key, id, name, args, out);
            return;
        };
        let open_index = self.open.as_ref().map(|o| o.index);
        let Some(call) = self.calls.get_mut(slot) else {
            return;
        };
        match &mut call.state {
            CallState::Streaming => {
                if let (Some(index), false) = (open_index, args.is_empty()) {
                    out.push(StreamEvent::Delta {
                        index,
                        delta: Delta::ToolArguments(args),
                    });
                }
            }
            CallState::Held(held) => {
                held.push_str(&args);
                if call.name.is_empty() {
                    if let Some(n) = name {
                        call.name = n.to_owned();
                    }
                }
            }
            CallState::Done => {
                log::debug!(
                    "openai stream: ignoring a piece of tool call {} after it closed",
                    call.id
                );
            }
        }
    }

    /// The call a piece belongs to, if it is not a new one.
    fn find_call(&self, key: Option<u64>, id: Option<&str>) -> Option<usize> {
        let found = match key {
            Some(k) => self.calls.iter().rposition(|c| c.key == Some(k)),
            None => match id {
                Some(id) => self.calls.iter().rposition(|c| c.id == id),
                None => self.calls.iter().rposition(|c| c.state != CallState::Done),
            },
        }?;
        // The same index with another id: a server that numbers every call alike.
        let other_id = id.is_some_and(|id| self.calls.get(found).is_some_and(|c| c.id != id));
        (!other_id).then_some(found)
    }

    fn new_call(
        &mut self,
        key: Option<u64>,
        id: Option<&str>,
        name: Option<&str>,
        args: String,
        out: &mut Vec<StreamEvent>,
    ) {
        let slot = self.calls.len();
        let id = id.map_or_else(
            || format!("call_{}", key.map_or(slot as u64, |k| k)),
            str::to_owned,
        );
        let name = name.unwrap_or_default().to_owned();
        let streaming = matches!(
            self.open,
            Some(Open {
                kind: OpenKind::Tool(_),
                ..
            })
        );
        if streaming {
            self.calls.push(Call {
                key,
                id,
                name,
                state: CallState::Held(args),
            });
            return;
        }
        self.close_open(out);
        let block = BlockKind::ToolCall {
            id: id.clone(),
            name: name.clone(),
        };
        self.calls.push(Call {
            key,
            id,
            name,
            state: CallState::Streaming,
        });
        let index = self.start_block(OpenKind::Tool(slot), block, out);
        if !args.is_empty() {
            out.push(StreamEvent::Delta {
                index,
                delta: Delta::ToolArguments(args),
            });
        }
    }

    /// Closes the open block, then emits every held tool call whole.
    fn close_open(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.take() {
            out.push(StreamEvent::BlockStop { index: open.index });
            if let OpenKind::Tool(slot) = open.kind {
                if let Some(c) = self.calls.get_mut(slot) {
                    c.state = CallState::Done;
                }
            }
        }
        for c in &mut self.calls {
            if !matches!(c.state, CallState::Held(_)) {
                continue;
            }
            let CallState::Held(args) = std::mem::replace(&mut c.state, CallState::Done) else {
                continue;
            };
            let index = self.next_index;
            self.next_index += 1;
            out.push(StreamEvent::BlockStart {
                index,
                kind: BlockKind::ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                },
            });
            if !args.is_empty() {
                out.push(StreamEvent::Delta {
                    index,
                    delta: Delta::ToolArguments(args),
                });
            }
            out.push(StreamEvent::BlockStop { index });
        }
    }
}
