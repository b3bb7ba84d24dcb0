//! The Responses API event stream (from an OpenAI-kind provider) -> canonical stream events.
//!
//! - The first lifecycle event (`response.created`, `.queued` or `.in_progress`) -> `Start`.
//! - Each `output_text` or `refusal` content part of a `message` item -> a text block
//!   (`content_part.added` ... `content_part.done`).
//! - A `reasoning` item -> a thinking block: summary (or raw reasoning) text deltas, summary
//!   parts after the first separated by a blank line, `encrypted_content` as its signature.
//! - A `function_call` item -> a tool-call block with its argument deltas.
//! - `response.completed` / `response.incomplete` -> `Stop`, `Usage`, `End`.
//! - `error` and `response.failed` -> `Error`.
//!
//! Items of built-in tools (web search, ...) have no canonical form and are skipped.

use super::response::{stop_from_status, usage_from};
use super::REDACTED_PREFIX;
use crate::dialect::canonical::*;
use crate::usage::SseEvent;
use serde_json::Value;

/// A decoder for one Responses stream.
pub fn stream_decoder() -> Box<dyn StreamDecoder> {
    Box::<Decoder>::default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Call,
}

#[derive(Debug)]
struct Open {
    index: usize,
    output_index: u64,
    kind: Kind,
    /// Whether any delta (text, thinking, arguments) was emitted for it.
    deltas: bool,
    /// Thinking: summary parts seen so far.
    parts: usize,
}

#[derive(Debug, Default)]
struct Decoder {
    started: bool,
    open: Option<Open>,
    next_index: usize,
    saw_call: bool,
    saw_refusal: bool,
    ended: bool,
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The HTTP status an error code implies (OpenAI's codes, and HTTP-ish names).
fn status_of_code(code: &str) -> u16 {
    match code {
        "rate_limit_exceeded" | "rate_limit_error" | "insufficient_quota" => 429,
        "invalid_prompt" | "invalid_request_error" | "context_length_exceeded" => 400,
        "authentication_error" | "invalid_api_key" => 401,
        "not_found_error" | "model_not_found" => 404,
        "overloaded_error" | "server_is_overloaded" => 529,
        _ => 500,
    }
}

impl Decoder {
    fn start(&mut self, response: Option<&Value>, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(StreamEvent::Start {
            id: response
                .map(|r| str_of(r, "id"))
                .unwrap_or_default()
                .to_owned(),
            model: response
                .map(|r| str_of(r, "model"))
                .unwrap_or_default()
                .to_owned(),
            usage: None,
        });
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(o) = self.open.take() {
            out.push(StreamEvent::BlockStop { index: o.index });
        }
    }

    fn open_block(
        &mut self,
        output_index: u64,
        kind: BlockKind,
        out: &mut Vec<StreamEvent>,
    ) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let k = match kind {
            BlockKind::Text => Kind::Text,
            BlockKind::ToolCall { .. } => Kind::Call,
            _ => Kind::Thinking,
        };
        out.push(StreamEvent::BlockStart { index, kind });
        self.open = Some(Open {
            index,
            output_index,
            kind: k,
            deltas: false,
            parts: 0,
        });
        index
    }

    /// The open block of `kind` for `output_index`, if that is what is open.
    fn current(&mut self, output_index: Option<u64>, kind: Kind) -> Option<&mut Open> {
        self.open
            .as_mut()
            .filter(|o| o.kind == kind && output_index.is_none_or(|i| i == o.output_index))
    }

    fn delta(
        &mut self,
        output_index: Option<u64>,
        kind: Kind,
        delta: Delta,
        out: &mut Vec<StreamEvent>,
    ) {
        if let Some(o) = self.current(output_index, kind) {
            o.deltas = true;
            out.push(StreamEvent::Delta {
                index: o.index,
                delta,
            });
        }
    }

    fn item_added(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        let oi = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let Some(item) = v.get("item") else {
            return;
        };
        match str_of(item, "type") {
            "reasoning" => {
                if let Some(data) = str_of(item, "encrypted_content").strip_prefix(REDACTED_PREFIX)
                {
                    let kind = BlockKind::RedactedThinking {
                        data: data.to_owned(),
                    };
                    self.open_block(oi, kind, out);
                    self.close(out);
                } else {
                    self.open_block(oi, BlockKind::Thinking, out);
                }
            }
            "function_call" => {
                self.saw_call = true;
                let id = item
                    .get("call_id")
                    .or_else(|| item.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let name = str_of(item, "name").to_owned();
                self.open_block(oi, BlockKind::ToolCall { id, name }, out);
                let args = str_of(item, "arguments");
                if !args.is_empty() {
                    self.delta(
                        Some(oi),
                        Kind::Call,
                        Delta::ToolArguments(args.to_owned()),
                        out,
                    );
                }
            }
            // Messages open a block per content part; other items have no canonical form.
            _ => self.close(out),
        }
    }

    fn item_done(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        let oi = v.get("output_index").and_then(Value::as_u64);
        let Some(item) = v.get("item") else {
            return;
        };
        match str_of(item, "type") {
            "reasoning" => {
                let encrypted = str_of(item, "encrypted_content");
                if encrypted.starts_with(REDACTED_PREFIX) {
                    // Written whole when it was added.
                    return;
                }
                if self.current(oi, Kind::Thinking).is_some_and(|o| !o.deltas) {
                    // No summary deltas came: the item carries its text whole.
                    let text: Vec<&str> = item
                        .get("summary")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(|p| str_of(p, "text")).collect())
                        .unwrap_or_default();
                    let text = text.join("\n\n");
                    if !text.is_empty() {
                        self.delta(oi, Kind::Thinking, Delta::Thinking(text), out);
                    }
                }
                if !encrypted.is_empty() {
                    self.delta(
                        oi,
                        Kind::Thinking,
                        Delta::Signature(encrypted.to_owned()),
                        out,
                    );
                }
                if self.current(oi, Kind::Thinking).is_some() {
                    self.close(out);
                }
            }
            "function_call" => {
                if self.current(oi, Kind::Call).is_some_and(|o| !o.deltas) {
                    let args = str_of(item, "arguments");
                    if !args.is_empty() {
                        self.delta(oi, Kind::Call, Delta::ToolArguments(args.to_owned()), out);
                    }
                }
                if self.current(oi, Kind::Call).is_some() {
                    self.close(out);
                }
            }
            _ => {
                if self
                    .open
                    .as_ref()
                    .is_some_and(|o| Some(o.output_index) == oi)
                {
                    self.close(out);
                }
            }
        }
    }

    fn on_data(&mut self, kind: &str, v: &Value, out: &mut Vec<StreamEvent>) {
        let oi = v.get("output_index").and_then(Value::as_u64);
        let delta = || str_of(v, "delta").to_owned();
        match kind {
            "response.created" | "response.queued" | "response.in_progress" => {
                self.start(v.get("response"), out)
            }
            "response.output_item.added" => {
                self.start(None, out);
                self.item_added(v, out);
            }
            "response.content_part.added" => {
                self.start(None, out);
                let ty = v.get("part").map(|p| str_of(p, "type")).unwrap_or_default();
                if matches!(ty, "output_text" | "refusal") {
                    self.saw_refusal |= ty == "refusal";
                    self.open_block(oi.unwrap_or(0), BlockKind::Text, out);
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.delta(oi, Kind::Text, Delta::Text(delta()), out)
            }
            "response.content_part.done" if self.current(oi, Kind::Text).is_some() => {
                self.close(out)
            }
            "response.reasoning_summary_part.added" => {
                if let Some(o) = self.current(oi, Kind::Thinking) {
                    o.parts += 1;
                    if o.parts > 1 {
                        let index = o.index;
                        out.push(StreamEvent::Delta {
                            index,
                            delta: Delta::Thinking("\n\n".to_owned()),
                        });
                    }
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.delta(oi, Kind::Thinking, Delta::Thinking(delta()), out)
            }
            "response.function_call_arguments.delta" => {
                self.delta(oi, Kind::Call, Delta::ToolArguments(delta()), out)
            }
            "response.output_item.done" => self.item_done(v, out),
            "response.completed" | "response.incomplete" => {
                self.start(v.get("response"), out);
                self.close(out);
                let response = v.get("response").unwrap_or(&Value::Null);
                out.push(StreamEvent::Stop {
                    reason: stop_from_status(response, self.saw_call, self.saw_refusal),
                    stop_sequence: None,
                });
                if let Some(u) = response.get("usage").and_then(usage_from) {
                    out.push(StreamEvent::Usage(u));
                }
                self.ended = true;
                out.push(StreamEvent::End);
            }
            "response.failed" => {
                self.close(out);
                let e = v
                    .get("response")
                    .and_then(|r| r.get("error"))
                    .unwrap_or(&Value::Null);
                let code = str_of(e, "code");
                out.push(StreamEvent::Error(ProviderError {
                    status: status_of_code(code),
                    provider_type: (!code.is_empty()).then(|| code.to_owned()),
                    message: match str_of(e, "message") {
                        "" => "the response failed".to_owned(),
                        m => m.to_owned(),
                    },
                    param: None,
                }));
                self.ended = true;
            }
            "error" => {
                self.close(out);
                // OpenAI's event carries the fields at the top; compatible servers nest them.
                let e = v.get("error").filter(|e| e.is_object()).unwrap_or(v);
                let code = e
                    .get("code")
                    .and_then(Value::as_str)
                    .or_else(|| {
                        e.get("type")
                            .and_then(Value::as_str)
                            .filter(|t| *t != "error")
                    })
                    .unwrap_or_default();
                out.push(StreamEvent::Error(ProviderError {
                    status: status_of_code(code),
                    provider_type: (!code.is_empty()).then(|| code.to_owned()),
                    message: match str_of(e, "message") {
                        "" => "the provider reported an error".to_owned(),
                        m => m.to_owned(),
                    },
                    param: e.get("param").and_then(Value::as_str).map(str::to_owned),
                }));
                self.ended = true;
            }
            _ => {}
        }
    }
}

impl StreamDecoder for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(ev.data.trim()) else {
            return;
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or_default()
            .to_owned();
        self.on_data(&kind, &v, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.close(out);
    }
}
