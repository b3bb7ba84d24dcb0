//! Tests of stream decoding and encoding (Anthropic Messages SSE <-> canonical events).

use serde_json::{json, Value};

use super::*;
use crate::dialect::canonical;
use crate::dialect::canonical::*;
use crate::usage::{SseEvent, SseParser, Usage};

/// A recorded Anthropic stream: thinking, a server tool block (skipped), text with a citation
/// delta (ignored), a client tool call in three pieces, a ping.
const RECORDED: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"output_tokens":1}}}"#,
    "\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB=="}}"#,
    "\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}"#,
    "\n\n",
    "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":1}\r\n\r\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Héllo 👋\n"}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"#,
    "\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#,
    "\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
    "event: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
    "\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

fn expected() -> Vec<StreamEvent> {
    use StreamEvent::*;
    let d = |index, delta| Delta { index, delta };
    vec![
        Start {
            id: "msg_1".into(),
            model: "claude-sonnet-4-5".into(),
            usage: Some(crate::usage::Usage {
                input: 25,
                output: 1,
                cached_input: 5,
                cache_write: 0,
                reasoning: 0,
            }),
        },
        BlockStart {
            index: 0,
            kind: BlockKind::Thinking,
        },
        d(0, canonical::Delta::Thinking("Let me think".into())),
        d(0, canonical::Delta::Signature("EqQB==".into())),
        BlockStop { index: 0 },
        BlockStart {
            index: 1,
            kind: BlockKind::Text,
        },
        d(1, canonical::Delta::Text("Héllo 👋\n".into())),
        BlockStop { index: 1 },
        BlockStart {
            index: 2,
            kind: BlockKind::ToolCall {
                id: "toolu_1".into(),
                name: "get_weather".into(),
            },
        },
        d(2, canonical::Delta::ToolArguments(String::new())),
        d(2, canonical::Delta::ToolArguments("{\"city\": ".into())),
        d(2, canonical::Delta::ToolArguments("\"Paris\"}".into())),
        BlockStop { index: 2 },
        Stop {
            reason: StopReason::ToolUse,
            stop_sequence: None,
        },
        Usage(crate::usage::Usage {
            input: 25,
            output: 89,
            cached_input: 5,
            cache_write: 0,
            reasoning: 0,
        }),
        End,
    ]
}

/// Feeds `pieces` through an SSE parser and the decoder (then finishes both).
fn decode_pieces(pieces: &[&[u8]]) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    for piece in pieces {
        for ev in parser.feed(piece) {
            dec.on_event(&ev, &mut out);
        }
    }
    if let Some(ev) = parser.finish() {
        dec.on_event(&ev, &mut out);
    }
    dec.finish(&mut out);
    out
}

fn decode_all(bytes: &[u8]) -> Vec<StreamEvent> {
    decode_pieces(&[bytes])
}

fn events(data: &[Value]) -> Vec<StreamEvent> {
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    for d in data {
        let ev = SseEvent {
            event: None,
            data: d.to_string(),
        };
        dec.on_event(&ev, &mut out);
    }
    dec.finish(&mut out);
    out
}

fn encode_events(evs: &[StreamEvent]) -> Vec<u8> {
    let mut enc = stream_encoder(StreamEncoderOptions {
        include_usage: false,
        model: "fallback-model".into(),
        ..Default::default()
    });
    let mut out = Vec::new();
    for ev in evs {
        enc.on_event(ev, &mut out);
    }
    enc.finish(&mut out);
    out
}

/// The encoder's output as (event name, data JSON) pairs, checking the framing.
fn sse(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(text.is_empty() || text.ends_with("\n\n"));
    text.split_terminator("\n\n")
        .map(|block| {
            let (ev, data) = block.split_once('\n').expect("two lines");
            let name = ev.strip_prefix("event: ").expect("event line");
            let data = data.strip_prefix("data: ").expect("data line");
            let v: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(v["type"], name);
            (name.to_owned(), v)
        })
        .collect()
}

fn names(bytes: &[u8]) -> Vec<String> {
    sse(bytes).into_iter().map(|(n, _)| n).collect()
}

// ---- decoder --------------------------------------------------------------------------------

#[test]
fn decodes_a_recorded_stream() {
    assert_eq!(decode_all(RECORDED.as_bytes()), expected());
}

#[test]
fn decoding_is_identical_at_every_split() {
    let bytes = RECORDED.as_bytes();
    let whole = decode_all(bytes);
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        assert_eq!(decode_pieces(&[a, b]), whole, "split at {at}");
    }
}

#[test]
fn decoder_synthesises_start_and_closes_on_finish() {
    let out = events(&[
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}),
    ]);
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                usage: None
            },
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::Text
            },
            StreamEvent::Delta {
                index: 0,
                delta: canonical::Delta::Text("hi".into())
            },
            StreamEvent::Delta {
                index: 0,
                delta: canonical::Delta::Text("!".into())
            },
            StreamEvent::BlockStop { index: 0 },
        ]
    );
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    dec.finish(&mut out);
    dec.finish(&mut out);
    assert!(out.is_empty());
}

#[test]
fn decoder_handles_errors_noise_and_the_end() {
    let ev = |event: Option<&str>, data: &str| SseEvent {
        event: event.map(str::to_owned),
        data: data.to_owned(),
    };
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    dec.on_event(&ev(Some("ping"), "not json"), &mut out);
    dec.on_event(&ev(None, "{\"type\":\"ping\"}"), &mut out);
    assert!(out.is_empty());
    dec.on_event(
        &ev(
            Some("error"),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        &mut out,
    );
    assert_eq!(
        out,
        vec![StreamEvent::Error(ProviderError {
            status: 529,
            provider_type: Some("overloaded_error".into()),
            message: "Overloaded".into(),
            param: None
        })]
    );
    for (kind, status) in [
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("invalid_request_error", 400),
        ("something_new", 500),
    ] {
        let out = events(&[json!({"type": "error", "error": {"type": kind, "message": "m"}})]);
        let [StreamEvent::Error(e)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(e.status, status);
    }
    // `event:` names the type when the data does not.
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    dec.on_event(&ev(Some("message_stop"), "{}"), &mut out);
    dec.on_event(&ev(Some("message_start"), "{}"), &mut out);
    assert_eq!(out, vec![StreamEvent::End]);
}

#[test]
fn decoder_merges_usage() {
    let out = events(&[
        json!({"type": "message_start", "message": {"id": "msg_2", "model": "m",
               "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 30, "cache_read_input_tokens": 2, "output_tokens": 9}}),
        json!({"type": "message_delta", "delta": {},
               "usage": {"input_tokens": 0, "output_tokens": 12}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"}}),
    ]);
    let want_usage = |output| Usage {
        input: 30,
        output,
        cached_input: 2,
        cache_write: 0,
        reasoning: 0,
    };
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: "msg_2".into(),
                model: "m".into(),
                usage: None
            },
            StreamEvent::Stop {
                reason: StopReason::EndTurn,
                stop_sequence: None
            },
            StreamEvent::Usage(want_usage(9)),
            StreamEvent::Usage(want_usage(12)),
            StreamEvent::Stop {
                reason: StopReason::StopSequence,
                stop_sequence: Some("END".into())
            },
        ]
    );
}

#[test]
fn decoder_keeps_blocks_sequential_and_stops_after_the_end() {
    let out = events(&[
        json!({"type": "message_start", "message": {"id": "msg_3", "model": "m"}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "D"}}),
        // No stop for block 0: the next start closes it.
        json!({"type": "content_block_start", "index": 5, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "stale"}}),
        json!({"type": "content_block_stop", "index": 5}),
        json!({"type": "message_stop"}),
        json!({"type": "content_block_start", "index": 6, "content_block": {"type": "text", "text": ""}}),
    ]);
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: "msg_3".into(),
                model: "m".into(),
                usage: None
            },
            StreamEvent::BlockStart {
                index: 0,
                kind: BlockKind::RedactedThinking { data: "D".into() }
            },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::BlockStart {
                index: 1,
                kind: BlockKind::ToolCall {
                    id: "t".into(),
                    name: "f".into()
                }
            },
            StreamEvent::Delta {
                index: 1,
                delta: canonical::Delta::ToolArguments("{\"a\":1}".into())
            },
            StreamEvent::BlockStop { index: 1 },
            StreamEvent::End,
        ]
    );
}

// ---- encoder --------------------------------------------------------------------------------

#[test]
fn encodes_a_full_stream() {
    let bytes = encode_events(&expected());
    let got = sse(&bytes);
    let want = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 5}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me think"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQB=="}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": "Héllo 👋\n"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 25, "output_tokens": 89, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 5}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let want: Vec<(String, Value)> = want.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
    assert_eq!(got, want);
}

#[test]
fn stream_round_trips_through_encoder_and_decoder() {
    let decoded = decode_all(RECORDED.as_bytes());
    let bytes = encode_events(&decoded);
    assert_eq!(decode_all(&bytes), decoded);
    // Split anywhere, the client side still sees the same events.
    for at in (0..bytes.len()).step_by(7) {
        let (a, b) = bytes.split_at(at);
        assert_eq!(decode_pieces(&[a, b]), decoded, "split at {at}");
    }
}

#[test]
fn tool_argument_pieces_concatenate_byte_for_byte() {
    let pieces = ["", "{\"q\":", " \"a\\u00e9 é\"", ", \"n\": 1.50", "}"];
    let mut evs = vec![StreamEvent::BlockStart {
        index: 0,
        kind: BlockKind::ToolCall {
            id: "c".into(),
            name: "f".into(),
        },
    }];
    evs.extend(pieces.iter().map(|p| StreamEvent::Delta {
        index: 0,
        delta: canonical::Delta::ToolArguments((*p).into()),
    }));
    let bytes = encode_events(&evs);
    let joined: String = sse(&bytes)
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(joined, pieces.concat());
}

#[test]
fn encoder_synthesises_missing_pieces() {
    let bytes = encode_events(&[
        StreamEvent::Delta {
            index: 0,
            delta: canonical::Delta::Text("a".into()),
        },
        StreamEvent::Delta {
            index: 0,
            delta: canonical::Delta::ToolArguments("{}".into()),
        },
        StreamEvent::Usage(Usage {
            input: 11,
            output: 3,
            ..Usage::default()
        }),
    ]);
    let got = sse(&bytes);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &got[0].1["message"];
    assert_eq!(start["model"], "fallback-model");
    assert!(start["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(start["usage"]["input_tokens"], 0);
    assert_eq!(got[4].1["content_block"]["type"], "tool_use");
    assert_eq!(got[4].1["index"], 1);
    // Input tokens known only at the end ride on message_delta.
    assert_eq!(got[7].1["usage"]["input_tokens"], 11);
    assert_eq!(got[7].1["usage"]["output_tokens"], 3);
    assert_eq!(got[7].1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn encoder_error_ends_the_stream() {
    let mut enc = stream_encoder(StreamEncoderOptions::default());
    let mut out = Vec::new();
    enc.on_event(
        &StreamEvent::Start {
            id: "msg_x".into(),
            model: "m".into(),
            usage: None,
        },
        &mut out,
    );
    enc.on_event(
        &StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
        &mut out,
    );
    enc.on_event(
        &StreamEvent::Error(ProviderError {
            status: 529,
            provider_type: None,
            message: "Overloaded".into(),
            param: None,
        }),
        &mut out,
    );
    let len = out.len();
    enc.on_event(&StreamEvent::End, &mut out);
    enc.finish(&mut out);
    assert_eq!(out.len(), len);
    let got = sse(&out);
    assert_eq!(
        got.last().map(|(_, v)| v.clone()),
        Some(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    );
}

#[test]
fn encoder_finish_is_idempotent_and_end_is_final() {
    let mut enc = stream_encoder(StreamEncoderOptions::default());
    let mut out = Vec::new();
    enc.on_event(
        &StreamEvent::Stop {
            reason: StopReason::ContentFilter,
            stop_sequence: None,
        },
        &mut out,
    );
    enc.on_event(&StreamEvent::End, &mut out);
    let len = out.len();
    enc.finish(&mut out);
    enc.on_event(
        &StreamEvent::Delta {
            index: 0,
            delta: canonical::Delta::Text("late".into()),
        },
        &mut out,
    );
    assert_eq!(out.len(), len);
    assert_eq!(
        names(&out),
        ["message_start", "message_delta", "message_stop"]
    );
    assert_eq!(sse(&out)[1].1["delta"]["stop_reason"], "refusal");

    // finish() alone (upstream cut mid-block) closes the block and ends the message.
    let mut enc = stream_encoder(StreamEncoderOptions::default());
    let mut out = Vec::new();
    enc.on_event(
        &StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Thinking,
        },
        &mut out,
    );
    enc.finish(&mut out);
    enc.finish(&mut out);
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(sse(&out)[3].1["delta"]["stop_reason"], "end_turn");
}

#[test]
fn encoder_ignores_a_second_start_and_stray_stops() {
    let bytes = encode_events(&[
        StreamEvent::Start {
            id: "abc".into(),
            model: String::new(),
            usage: Some(Usage {
                input: 4,
                ..Usage::default()
            }),
        },
        StreamEvent::Start {
            id: "msg_other".into(),
            model: "x".into(),
            usage: None,
        },
        StreamEvent::BlockStop { index: 3 },
        StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::RedactedThinking { data: "R".into() },
        },
        StreamEvent::BlockStop { index: 0 },
        StreamEvent::End,
    ]);
    let got = sse(&bytes);
    assert_eq!(got[0].1["message"]["id"], "msg_abc");
    assert_eq!(got[0].1["message"]["model"], "fallback-model");
    assert_eq!(
        got[1].1["content_block"],
        json!({"type": "redacted_thinking", "data": "R"})
    );
    assert_eq!(got.len(), 5);
    assert_eq!(got[3].1["usage"]["input_tokens"], 4);
}
