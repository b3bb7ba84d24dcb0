//! Tests of the stream decoder (provider chunks -> canonical events) and encoder (canonical
//! events -> client chunks), including byte-split feeding and encoder -> decoder round trips.

use super::*;
use crate::dialect::canonical::*;
use crate::usage::{SseEvent, SseParser, Usage};
use serde_json::{json, Value};

/// Decodes a whole SSE byte stream fed in the given pieces.
pub(super) fn decode_pieces(pieces: &[&[u8]]) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    for p in pieces {
        for ev in parser.feed(p) {
            dec.on_event(&ev, &mut out);
        }
    }
    if let Some(ev) = parser.finish() {
        dec.on_event(&ev, &mut out);
    }
    dec.finish(&mut out);
    out
}

fn decode_str(s: &str) -> Vec<StreamEvent> {
    decode_pieces(&[s.as_bytes()])
}

fn sse(chunks: &[Value]) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str(&format!("data: {c}\n\n"));
    }
    s
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "chatcmpl-9".into(),
        model: "gpt-x".into(),
        usage: None,
    }
}

fn bs(index: usize, kind: BlockKind) -> StreamEvent {
    StreamEvent::BlockStart { index, kind }
}

fn d(index: usize, delta: Delta) -> StreamEvent {
    StreamEvent::Delta { index, delta }
}

fn stop(index: usize) -> StreamEvent {
    StreamEvent::BlockStop { index }
}

fn tool(id: &str, name: &str) -> BlockKind {
    BlockKind::ToolCall {
        id: id.into(),
        name: name.into(),
    }
}

fn args(s: &str) -> Delta {
    Delta::ToolArguments(s.into())
}

/// A recorded-style OpenAI stream: reasoning, text, two parallel tool calls, usage chunk.
fn recorded() -> String {
    let mut s = sse(&[
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"reasoning_content": "Think"}), Value::Null),
        chunk(json!({"reasoning_content": "ing…"}), Value::Null),
        chunk(json!({"content": "Héllo"}), Value::Null),
        chunk(json!({"content": " wörld"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "get", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"x\"}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "put", "arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ]);
    s.push_str(": keep-alive comment\r\n\r\n");
    s.push_str(
        "data: {\"id\":\"chatcmpl-9\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\
         \"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":2},\
         \"completion_tokens_details\":{\"reasoning_tokens\":3}}}\r\n\r\n",
    );
    s.push_str("data: [DONE]\n\n");
    s
}

fn recorded_events() -> Vec<StreamEvent> {
    vec![
        start(),
        bs(0, BlockKind::Thinking),
        d(0, Delta::Thinking("Think".into())),
        d(0, Delta::Thinking("ing…".into())),
        stop(0),
        bs(1, BlockKind::Text),
        d(1, Delta::Text("Héllo".into())),
        d(1, Delta::Text(" wörld".into())),
        stop(1),
        bs(2, tool("call_a", "get")),
        d(2, args("{\"q\":")),
        d(2, args(" \"x\"}")),
        stop(2),
        bs(3, tool("call_b", "put")),
        d(3, args("{}")),
        stop(3),
        StreamEvent::Stop {
            reason: StopReason::ToolUse,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            input: 10,
            output: 7,
            cached_input: 2,
            cache_write: 0,
            reasoning: 3,
        }),
        StreamEvent::End,
    ]
}

#[test]
fn decodes_a_recorded_stream() {
    assert_eq!(decode_str(&recorded()), recorded_events());
}

#[test]
fn decoding_is_identical_when_split_at_every_byte() {
    let s = recorded();
    let bytes = s.as_bytes();
    let want = recorded_events();
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        assert_eq!(decode_pieces(&[a, b]), want, "split at {cut}");
    }
}

#[test]
fn interleaved_tool_calls_are_held_and_emitted_whole() {
    let s = sse(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"x\""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{\"y\""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": ":2}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 2, "id": "c", "function": {"name": "h"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ]);
    assert_eq!(
        decode_str(&s),
        vec![
            start(),
            bs(0, tool("a", "f")),
            d(0, args("{\"x\"")),
            d(0, args(":1}")),
            stop(0),
            bs(1, tool("b", "g")),
            d(1, args("{\"y\":2}")),
            stop(1),
            bs(2, tool("c", "h")),
            stop(2),
            StreamEvent::Stop {
                reason: StopReason::ToolUse,
                stop_sequence: None
            },
        ]
    );
}

#[test]
fn tool_calls_without_index_or_with_a_reused_index() {
    let s = sse(&[
        chunk(
            json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"function": {"arguments": "}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({"content": "after"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "h", "arguments": {"k": 1}}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
            Value::Null,
        ),
    ]);
    assert_eq!(
        decode_str(&s),
        vec![
            start(),
            bs(0, tool("a", "f")),
            d(0, args("{")),
            d(0, args("}")),
            stop(0),
            bs(1, tool("b", "g")),
            d(1, args("{}")),
            stop(1),
            bs(2, BlockKind::Text),
            d(2, Delta::Text("after".into())),
            stop(2),
            bs(3, tool("c", "h")),
            d(3, args("{\"k\":1}")),
            stop(3),
        ]
    );
}

#[test]
fn a_piece_for_a_closed_call_is_ignored() {
    let s = sse(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({"content": "x"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "late"}}]}),
            Value::Null,
        ),
    ]);
    let ev = decode_str(&s);
    assert!(!ev.contains(&d(0, args("late"))) && !ev.contains(&d(2, args("late"))));
    assert_eq!(ev.last(), Some(&stop(1)));
}

#[test]
fn refusals_usage_on_the_last_choice_and_other_finishes() {
    let mut last = chunk(json!({}), json!("stop"));
    last["usage"] = json!({"prompt_tokens": 3, "completion_tokens": 1});
    let s = sse(&[chunk(json!({"refusal": "No."}), Value::Null), last]);
    assert_eq!(
        decode_str(&s),
        vec![
            start(),
            bs(0, BlockKind::Text),
            d(0, Delta::Text("No.".into())),
            StreamEvent::Usage(Usage {
                input: 3,
                output: 1,
                ..Default::default()
            }),
            stop(0),
            StreamEvent::Stop {
                reason: StopReason::Refusal,
                stop_sequence: None
            },
        ]
    );
    let s = sse(&[chunk(
        json!({"reasoning": "r", "content": "c"}),
        json!("length"),
    )]);
    assert_eq!(
        decode_str(&s),
        vec![
            start(),
            bs(0, BlockKind::Thinking),
            d(0, Delta::Thinking("r".into())),
            stop(0),
            bs(1, BlockKind::Text),
            d(1, Delta::Text("c".into())),
            stop(1),
            StreamEvent::Stop {
                reason: StopReason::MaxTokens,
                stop_sequence: None
            },
        ]
    );
}

#[test]
fn errors_garbage_and_the_end() {
    let s = "data: {not json\n\ndata: 42\n\n".to_owned()
        + &sse(&[chunk(json!({"content": "a"}), Value::Null)])
        + "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":502}}\n\n"
        + "data: [DONE]\n\ndata: [DONE]\n\n"
        + &sse(&[chunk(json!({"content": "ignored"}), Value::Null)]);
    assert_eq!(
        decode_str(&s),
        vec![
            start(),
            bs(0, BlockKind::Text),
            d(0, Delta::Text("a".into())),
            stop(0),
            StreamEvent::Error(ProviderError {
                status: 502,
                provider_type: Some("server_error".into()),
                message: "overloaded".into(),
                param: None
            }),
            // An error ends the stream: the [DONE] after it adds nothing.
        ]
    );
    let e =
        decode_str("data: {\"error\":{\"message\":\"slow\",\"type\":\"rate_limit_error\"}}\n\n");
    assert!(matches!(
        &e[..],
        [StreamEvent::Error(ProviderError { status: 429, .. })]
    ));
}

#[test]
fn finish_closes_an_open_block_once() {
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    let ev = SseEvent {
        event: None,
        data: chunk(json!({"content": "partial"}), Value::Null).to_string(),
    };
    dec.on_event(&ev, &mut out);
    dec.finish(&mut out);
    dec.finish(&mut out);
    assert_eq!(
        out,
        vec![
            start(),
            bs(0, BlockKind::Text),
            d(0, Delta::Text("partial".into())),
            stop(0)
        ]
    );
}

// ---------------- encoder ----------------

/// The `data:` payloads of encoded output, checking the framing.
fn payloads(bytes: &[u8]) -> Vec<String> {
    let s = std::str::from_utf8(bytes).unwrap();
    assert!(s.is_empty() || s.ends_with("\n\n"));
    s.split_terminator("\n\n")
        .map(|e| e.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

fn encode_all(opts: StreamEncoderOptions, events: &[StreamEvent]) -> Vec<String> {
    let mut enc = stream_encoder(opts);
    let mut out = Vec::new();
    for e in events {
        enc.on_event(e, &mut out);
    }
    enc.finish(&mut out);
    payloads(&out)
}

fn opts(include_usage: bool) -> StreamEncoderOptions {
    StreamEncoderOptions {
        include_usage,
        model: "fallback".into(),
        ..Default::default()
    }
}

#[test]
fn encodes_a_stream() {
    let mut events = recorded_events();
    events[0] = StreamEvent::Start {
        id: "msg_1".into(),
        model: "claude".into(),
        usage: None,
    };
    events.insert(4, d(0, Delta::Signature("sig".into())));
    let p = encode_all(opts(true), &events);
    let v: Vec<Value> = p[..p.len() - 1]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(p.last().unwrap(), "[DONE]");
    let created = &v[0]["created"];
    for c in &v {
        assert_eq!(c["id"], "chatcmpl-msg_1");
        assert_eq!(c["model"], "claude");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(&c["created"], created);
    }
    let choice = |i: usize| v[i]["choices"][0].clone();
    assert_eq!(
        choice(0),
        json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null})
    );
    assert_eq!(choice(1)["delta"], json!({"reasoning_content": "Think"}));
    assert_eq!(choice(2)["delta"], json!({"reasoning_content": "ing…"}));
    assert_eq!(choice(3)["delta"], json!({"content": "Héllo"}));
    assert_eq!(choice(4)["delta"], json!({"content": " wörld"}));
    assert_eq!(
        choice(5)["delta"],
        json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "get", "arguments": ""}}]})
    );
    assert_eq!(
        choice(6)["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]})
    );
    assert_eq!(
        choice(7)["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"x\"}"}}]})
    );
    assert_eq!(choice(8)["delta"]["tool_calls"][0]["index"], 1);
    assert_eq!(
        choice(9)["delta"],
        json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})
    );
    assert_eq!(choice(10)["delta"], json!({}));
    assert_eq!(choice(10)["finish_reason"], "tool_calls");
    assert_eq!(v[11]["choices"], json!([]));
    assert_eq!(
        v[11]["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 3}})
    );
    assert_eq!(v.len(), 12);
}

#[test]
fn finish_completes_a_cut_stream_and_is_idempotent() {
    let mut enc = stream_encoder(opts(false));
    let mut out = Vec::new();
    enc.on_event(&d(0, Delta::Text("hi".into())), &mut out);
    enc.finish(&mut out);
    let len = out.len();
    enc.finish(&mut out);
    enc.on_event(&d(0, Delta::Text("more".into())), &mut out);
    enc.on_event(&StreamEvent::End, &mut out);
    assert_eq!(out.len(), len);
    let p = payloads(&out);
    assert_eq!(p.len(), 4);
    let first: Value = serde_json::from_str(&p[0]).unwrap();
    assert_eq!(first["model"], "fallback");
    assert!(first["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let fin: Value = serde_json::from_str(&p[2]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert_eq!(p[3], "[DONE]");
}

#[test]
fn finish_reason_defaults_to_tool_calls_and_usage_may_be_null() {
    let p = encode_all(
        opts(true),
        &[
            start(),
            bs(0, tool("c", "f")),
            d(0, args("{}")),
            stop(0),
            StreamEvent::End,
        ],
    );
    let fin: Value = serde_json::from_str(&p[3]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "tool_calls");
    let usage: Value = serde_json::from_str(&p[4]).unwrap();
    assert_eq!(usage["usage"], Value::Null);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(p[5], "[DONE]");
    assert_eq!(p.len(), 6);
}

#[test]
fn start_usage_is_remembered_and_stop_is_written_once() {
    let u = Usage {
        input: 5,
        ..Default::default()
    };
    let s = |r: StopReason| StreamEvent::Stop {
        reason: r,
        stop_sequence: None,
    };
    let p = encode_all(
        opts(true),
        &[
            StreamEvent::Start {
                id: "chatcmpl-x".into(),
                model: String::new(),
                usage: Some(u),
            },
            s(StopReason::MaxTokens),
            s(StopReason::EndTurn),
        ],
    );
    assert_eq!(p.len(), 4);
    let fin: Value = serde_json::from_str(&p[1]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "length");
    assert_eq!(fin["model"], "fallback");
    let usage: Value = serde_json::from_str(&p[2]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 5);
}

#[test]
fn errors_end_the_stream() {
    let err = ProviderError {
        status: 529,
        provider_type: Some("overloaded_error".into()),
        message: "busy".into(),
        param: None,
    };
    let p = encode_all(
        opts(true),
        &[
            start(),
            StreamEvent::Error(err),
            d(0, Delta::Text("x".into())),
        ],
    );
    assert_eq!(p.len(), 3);
    let e: Value = serde_json::from_str(&p[1]).unwrap();
    assert_eq!(
        e,
        json!({"error": {"message": "busy", "type": "api_error", "param": null, "code": "overloaded_error"}})
    );
    assert_eq!(p[2], "[DONE]");
}

/// Per-block content of a canonical event list: (kind, concatenated deltas).
pub(super) fn blocks(events: &[StreamEvent]) -> Vec<(BlockKind, String)> {
    let mut out: Vec<(usize, BlockKind, String)> = Vec::new();
    for e in events {
        match e {
            StreamEvent::BlockStart { index, kind } => {
                out.push((*index, kind.clone(), String::new()))
            }
            StreamEvent::Delta { index, delta } => {
                if let Some(b) = out.iter_mut().find(|b| b.0 == *index) {
                    match delta {
                        Delta::Text(t) | Delta::Thinking(t) | Delta::ToolArguments(t) => {
                            b.2.push_str(t)
                        }
                        Delta::Signature(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
    out.into_iter().map(|(_, k, s)| (k, s)).collect()
}

#[test]
fn encoder_output_decodes_to_the_same_stream() {
    let events = recorded_events();
    let mut enc = stream_encoder(opts(true));
    let mut bytes = Vec::new();
    for e in &events {
        enc.on_event(e, &mut bytes);
    }
    let back = decode_pieces(&[&bytes]);
    assert_eq!(back, events);
}
