//! Canonical answers as a replayable record: one JSON line per [`StreamEvent`] (NDJSON), the
//! form a cached answer is stored in. Any record replays to any client dialect, streamed or
//! not, because it is dialect-neutral:
//!
//! - [`encode_line`] / [`decode_line`]: one event <-> one line.
//! - [`response_events`]: a whole [`ChatResponse`] as the events a stream of it would have.
//! - [`Aggregator`]: events back into one [`ChatResponse`] (a streamed record replayed to a
//!   client that did not ask for a stream).
//! - [`LineSplitter`]: NDJSON lines out of arbitrary chunks.

use super::canonical::{
    BlockKind, ChatResponse, Delta, Part, ProviderError, StopReason, StreamEvent, Text, ToolCall,
};
use crate::usage::Usage;
use serde_json::{json, Value};
use std::collections::HashMap;

fn usage_json(u: &Usage) -> Value {
    json!({"input": u.input, "output": u.output, "cached_input": u.cached_input,
        "cache_write": u.cache_write, "reasoning": u.reasoning})
}

fn usage_from(v: &Value) -> Option<Usage> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    v.is_object().then(|| Usage {
        input: n("input"),
        output: n("output"),
        cached_input: n("cached_input"),
        cache_write: n("cache_write"),
        reasoning: n("reasoning"),
    })
}

/// The stable name of a stop reason in a record.
pub fn stop_name(r: &StopReason) -> &str {
    match r {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "content_filter",
        StopReason::Refusal => "refusal",
        StopReason::PauseTurn => "pause_turn",
        StopReason::Other(s) => s,
    }
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        "refusal" => StopReason::Refusal,
        "pause_turn" => StopReason::PauseTurn,
        other => StopReason::Other(other.to_owned()),
    }
}

/// One event as a JSON line (with its `\n`).
pub fn encode_line(ev: &StreamEvent, out: &mut Vec<u8>) {
    let v = match ev {
        StreamEvent::Start { id, model, usage } => {
            let mut v = json!({"t": "start", "id": id, "model": model});
            if let Some(u) = usage {
                v["usage"] = usage_json(u);
            }
            v
        }
        StreamEvent::BlockStart { index, kind } => match kind {
            BlockKind::Text => json!({"t": "block", "i": index, "kind": "text"}),
            BlockKind::Thinking => json!({"t": "block", "i": index, "kind": "thinking"}),
            BlockKind::RedactedThinking { data } => {
                json!({"t": "block", "i": index, "kind": "redacted", "data": data})
            }
            BlockKind::ToolCall { id, name } => {
                json!({"t": "block", "i": index, "kind": "tool", "id": id, "name": name})
            }
        },
        StreamEvent::Delta { index, delta } => {
            let (k, v) = match delta {
                Delta::Text(s) => ("text", s),
                Delta::Thinking(s) => ("thinking", s),
                Delta::Signature(s) => ("sig", s),
                Delta::ToolArguments(s) => ("args", s),
            };
            json!({"t": "delta", "i": index, "k": k, "v": v})
        }
        StreamEvent::BlockStop { index } => json!({"t": "block_stop", "i": index}),
        StreamEvent::Stop {
            reason,
            stop_sequence,
        } => json!({"t": "stop", "reason": stop_name(reason), "seq": stop_sequence}),
        StreamEvent::Usage(u) => json!({"t": "usage", "usage": usage_json(u)}),
        StreamEvent::Error(e) => json!({"t": "error", "status": e.status,
            "type": e.provider_type, "message": e.message, "param": e.param}),
        StreamEvent::End => json!({"t": "end"}),
    };
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'\n');
}

/// One line back into its event; `None` for a line that is not one (skipped on replay).
pub fn decode_line(line: &[u8]) -> Option<StreamEvent> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let i = || v.get("i").and_then(Value::as_u64).map(|i| i as usize);
    Some(match v.get("t")?.as_str()? {
        "start" => StreamEvent::Start {
            id: s("id").unwrap_or_default(),
            model: s("model").unwrap_or_default(),
            usage: v.get("usage").and_then(usage_from),
        },
        "block" => StreamEvent::BlockStart {
            index: i()?,
            kind: match v.get("kind")?.as_str()? {
                "text" => BlockKind::Text,
                "thinking" => BlockKind::Thinking,
                "redacted" => BlockKind::RedactedThinking {
                    data: s("data").unwrap_or_default(),
                },
                "tool" => BlockKind::ToolCall {
                    id: s("id").unwrap_or_default(),
                    name: s("name").unwrap_or_default(),
                },
                _ => return None,
            },
        },
        "delta" => {
            let text = s("v")?;
            StreamEvent::Delta {
                index: i()?,
                delta: match v.get("k")?.as_str()? {
                    "text" => Delta::Text(text),
                    "thinking" => Delta::Thinking(text),
                    "sig" => Delta::Signature(text),
                    "args" => Delta::ToolArguments(text),
                    _ => return None,
                },
            }
        }
        "block_stop" => StreamEvent::BlockStop { index: i()? },
        "stop" => StreamEvent::Stop {
            reason: stop_from(&s("reason")?),
            stop_sequence: s("seq"),
        },
        "usage" => StreamEvent::Usage(usage_from(v.get("usage")?)?),
        "error" => StreamEvent::Error(ProviderError {
            status: v.get("status").and_then(Value::as_u64).unwrap_or(500) as u16,
            provider_type: s("type"),
            message: s("message").unwrap_or_default(),
            param: s("param"),
        }),
        "end" => StreamEvent::End,
        _ => return None,
    })
}

/// The events a stream of `resp` would have had, in order, ending with `End`.
pub fn response_events(resp: &ChatResponse) -> Vec<StreamEvent> {
    let mut out = vec![StreamEvent::Start {
        id: resp.id.clone(),
        model: resp.model.clone(),
        usage: None,
    }];
    let mut index = 0;
    for part in &resp.content {
        let (kind, deltas) = match part {
            Part::Text(t) => (BlockKind::Text, vec![Delta::Text(t.text.clone())]),
            Part::Thinking { text, signature } => {
                let mut d = vec![Delta::Thinking(text.clone())];
                if let Some(s) = signature {
                    d.push(Delta::Signature(s.clone()));
                }
                (BlockKind::Thinking, d)
            }
            Part::RedactedThinking { data } => {
                (BlockKind::RedactedThinking { data: data.clone() }, vec![])
            }
            Part::ToolCall(c) => (
                BlockKind::ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                },
                vec![Delta::ToolArguments(c.arguments.clone())],
            ),
            // Images and tool results are request-side parts.
            Part::Image(_) | Part::ToolResult(_) => continue,
        };
        out.push(StreamEvent::BlockStart { index, kind });
        for delta in deltas {
            out.push(StreamEvent::Delta { index, delta });
        }
        out.push(StreamEvent::BlockStop { index });
        index += 1;
    }
    out.push(StreamEvent::Stop {
        reason: resp.stop_reason.clone().unwrap_or(StopReason::EndTurn),
        stop_sequence: resp.stop_sequence.clone(),
    });
    if let Some(u) = resp.usage {
        out.push(StreamEvent::Usage(u));
    }
    out.push(StreamEvent::End);
    out
}

/// Collects stream events into one whole answer.
#[derive(Debug, Default)]
pub struct Aggregator {
    id: String,
    model: String,
    content: Vec<Part>,
    /// Canonical block index -> position in `content`.
    blocks: HashMap<usize, usize>,
    stop_reason: Option<StopReason>,
    stop_sequence: Option<String>,
    usage: Option<Usage>,
    error: Option<ProviderError>,
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    fn part(&mut self, index: usize) -> Option<&mut Part> {
        let at = *self.blocks.get(&index)?;
        self.content.get_mut(at)
    }

    pub fn push(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::Start { id, model, usage } => {
                self.id = id.clone();
                self.model = model.clone();
                if usage.is_some() {
                    self.usage = *usage;
                }
            }
            StreamEvent::BlockStart { index, kind } => {
                let part = match kind {
                    BlockKind::Text => Part::Text(Text::plain("")),
                    BlockKind::Thinking => Part::Thinking {
                        text: String::new(),
                        signature: None,
                    },
                    BlockKind::RedactedThinking { data } => {
                        Part::RedactedThinking { data: data.clone() }
                    }
                    BlockKind::ToolCall { id, name } => Part::ToolCall(ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    }),
                };
                self.blocks.insert(*index, self.content.len());
                self.content.push(part);
            }
            StreamEvent::Delta { index, delta } => match (self.part(*index), delta) {
                (Some(Part::Text(t)), Delta::Text(s)) => t.text.push_str(s),
                (Some(Part::Thinking { text, .. }), Delta::Thinking(s)) => text.push_str(s),
                (Some(Part::Thinking { signature, .. }), Delta::Signature(s)) => {
                    signature.get_or_insert_with(String::new).push_str(s)
                }
                (Some(Part::ToolCall(c)), Delta::ToolArguments(s)) => c.arguments.push_str(s),
                _ => {}
            },
            StreamEvent::BlockStop { .. } | StreamEvent::End => {}
            StreamEvent::Stop {
                reason,
                stop_sequence,
            } => {
                self.stop_reason = Some(reason.clone());
                self.stop_sequence = stop_sequence.clone();
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => self.error = Some(e.clone()),
        }
    }

    /// The provider's in-stream error, if it sent one.
    pub fn error(&self) -> Option<&ProviderError> {
        self.error.as_ref()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn finish(self) -> ChatResponse {
        ChatResponse {
            id: self.id,
            model: self.model,
            content: self.content,
            stop_reason: self.stop_reason,
            stop_sequence: self.stop_sequence,
            usage: self.usage,
            created: None,
        }
    }
}

/// Splits NDJSON out of arbitrary chunks.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn feed(&mut self, chunk: &[u8], mut on_line: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                on_line(&rest[..at]);
            } else {
                self.partial.extend_from_slice(&rest[..at]);
                on_line(&self.partial);
                self.partial.clear();
            }
            rest = &rest[at + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// What is left after the last newline (a record always ends with one).
    pub fn finish(&mut self, mut on_line: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            on_line(&self.partial);
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChatResponse {
        ChatResponse {
            id: "msg_1".into(),
            model: "m".into(),
            content: vec![
                Part::Thinking {
                    text: "hmm".into(),
                    signature: Some("sig".into()),
                },
                Part::Text(Text::plain("Hello \"world\"\n")),
                Part::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "f".into(),
                    arguments: "{\"a\": [1, 2]}".into(),
                }),
                Part::RedactedThinking { data: "xx".into() },
            ],
            stop_reason: Some(StopReason::ToolUse),
            stop_sequence: None,
            usage: Some(Usage {
                input: 3,
                output: 9,
                cached_input: 2,
                cache_write: 1,
                reasoning: 4,
            }),
            created: None,
        }
    }

    #[test]
    fn a_response_round_trips_through_a_record() {
        let resp = sample();
        let mut record = Vec::new();
        for ev in response_events(&resp) {
            encode_line(&ev, &mut record);
        }
        // Any chunking of the record gives the same answer back.
        for step in [1, 7, record.len()] {
            let mut agg = Aggregator::new();
            let mut split = LineSplitter::default();
            for chunk in record.chunks(step) {
                split.feed(chunk, |l| {
                    if let Some(ev) = decode_line(l) {
                        agg.push(&ev)
                    }
                });
            }
            split.finish(|l| {
                if let Some(ev) = decode_line(l) {
                    agg.push(&ev)
                }
            });
            assert_eq!(agg.finish(), resp);
        }
    }

    #[test]
    fn every_event_survives_a_line() {
        let events = vec![
            StreamEvent::Stop {
                reason: StopReason::Other("weird".into()),
                stop_sequence: Some("END".into()),
            },
            StreamEvent::Error(ProviderError {
                status: 529,
                provider_type: Some("overloaded_error".into()),
                message: "busy".into(),
                param: None,
            }),
            StreamEvent::Start {
                id: "a".into(),
                model: "b".into(),
                usage: Some(Usage::default()),
            },
        ];
        for ev in events {
            let mut line = Vec::new();
            encode_line(&ev, &mut line);
            assert_eq!(decode_line(line.strip_suffix(b"\n").unwrap()), Some(ev));
        }
        assert_eq!(decode_line(b"not json"), None);
        assert_eq!(decode_line(br#"{"t":"nope"}"#), None);
    }
}
