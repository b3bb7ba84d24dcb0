//! Tests of the SSE stream decoder (recorded streams, split at every byte) and encoder.

use serde_json::{json, Value};

use super::{stream_decoder, stream_encoder};
use crate::dialect::canonical::*;
use crate::usage::{SseParser, Usage};

/// Feeds `bytes` in two pieces split at `at`, then ends the stream.
pub(crate) fn decode_split(bytes: &[u8], at: usize) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut dec = stream_decoder();
    let mut out = Vec::new();
    let (a, b) = bytes.split_at(at);
    for chunk in [a, b] {
        for ev in parser.feed(chunk) {
            dec.on_event(&ev, &mut out);
        }
    }
    if let Some(ev) = parser.finish() {
        dec.on_event(&ev, &mut out);
    }
    dec.finish(&mut out);
    dec.finish(&mut out);
    out
}

pub(crate) fn decode_all(bytes: &[u8]) -> Vec<StreamEvent> {
    decode_split(bytes, 0)
}

fn chunk(parts: Value, extra: Value) -> String {
    let mut v = json!({
        "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 13, "thoughtsTokenCount": 3},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        for (k, x) in e {
            if k == "finishReason" {
                v_candidate(m).insert(k, x);
            } else {
                m.insert(k, x);
            }
        }
    }
    format!("data: {v}\r\n\r\n")
}

fn v_candidate(m: &mut serde_json::Map<String, Value>) -> &mut serde_json::Map<String, Value> {
    m.get_mut("candidates")
        .and_then(|c| c.get_mut(0))
        .and_then(Value::as_object_mut)
        .unwrap()
}

fn recorded() -> String {
    [
        chunk(json!([{"text": "**Plan**", "thought": true}]), json!({})),
        chunk(json!([{"text": "", "thought": true, "thoughtSignature": "sig"}]), json!({})),
        chunk(json!([{"text": "Hello"}]), json!({})),
        ": keep-alive comment\n\n".to_string(),
        chunk(json!([{"text": " wörld 🌍"}]), json!({})),
        chunk(
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "x"}]),
            json!({}),
        ),
        "data: {not json\n\n".to_string(),
        chunk(json!([{"functionCall": {"name": "get_time", "args": {}}}]), json!({})),
        chunk(
            json!([{"text": ""}]),
            json!({"finishReason": "STOP", "usageMetadata": {"promptTokenCount": 10,
                   "candidatesTokenCount": 8, "thoughtsTokenCount": 3, "totalTokenCount": 21}}),
        ),
    ]
    .concat()
}

fn expected() -> Vec<StreamEvent> {
    use StreamEvent::*;
    let d = |index, delta| Delta { index, delta };
    vec![
        Start {
            id: "abc".into(),
            model: "gemini-2.5-flash".into(),
            usage: None,
        },
        BlockStart {
            index: 0,
            kind: BlockKind::Thinking,
        },
        d(
            0,
            crate::dialect::canonical::Delta::Thinking("**Plan**".into()),
        ),
        Usage(crate::usage::Usage {
            input: 10,
            output: 3,
            reasoning: 3,
            ..Default::default()
        }),
        d(0, crate::dialect::canonical::Delta::Signature("sig".into())),
        BlockStop { index: 0 },
        BlockStart {
            index: 1,
            kind: BlockKind::Text,
        },
        d(1, crate::dialect::canonical::Delta::Text("Hello".into())),
        d(
            1,
            crate::dialect::canonical::Delta::Text(" wörld 🌍".into()),
        ),
        BlockStop { index: 1 },
        BlockStart {
            index: 2,
            kind: BlockKind::ToolCall {
                id: "call_0".into(),
                name: "get_weather".into(),
            },
        },
        d(
            2,
            crate::dialect::canonical::Delta::ToolArguments(r#"{"city":"Paris"}"#.into()),
        ),
        BlockStop { index: 2 },
        BlockStart {
            index: 3,
            kind: BlockKind::ToolCall {
                id: "call_1".into(),
                name: "get_time".into(),
            },
        },
        d(
            3,
            crate::dialect::canonical::Delta::ToolArguments("{}".into()),
        ),
        BlockStop { index: 3 },
        Stop {
            reason: StopReason::ToolUse,
            stop_sequence: None,
        },
        Usage(crate::usage::Usage {
            input: 10,
            output: 11,
            reasoning: 3,
            ..Default::default()
        }),
        End,
    ]
}

#[test]
fn decodes_a_recorded_stream_split_at_every_byte() {
    let bytes = recorded();
    let bytes = bytes.as_bytes();
    let want = expected();
    assert_eq!(decode_all(bytes), want);
    for at in 0..=bytes.len() {
        assert_eq!(decode_split(bytes, at), want, "split at {at}");
    }
}

#[test]
fn cut_stream_closes_its_block_without_end() {
    let bytes = chunk(json!([{"text": "Hel"}]), json!({}));
    let events = decode_all(bytes.as_bytes());
    assert_eq!(
        events.last(),
        Some(&StreamEvent::BlockStop { index: 0 }),
        "{events:?}"
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::End | StreamEvent::Stop { .. })));
}

#[test]
fn finish_reasons_and_late_content() {
    let bytes = [
        chunk(
            json!([{"text": "a"}]),
            json!({"finishReason": "MAX_TOKENS"}),
        ),
        // Content after the finish reason is ignored; its usage is not.
        chunk(
            json!([{"text": "late"}]),
            json!({"usageMetadata": {"promptTokenCount": 1}}),
        ),
    ]
    .concat();
    let events = decode_all(bytes.as_bytes());
    let stops: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Stop { .. }))
        .collect();
    assert_eq!(
        stops,
        vec![&StreamEvent::Stop {
            reason: StopReason::MaxTokens,
            stop_sequence: None
        }]
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::Delta { delta: Delta::Text(t), .. } if t == "late")));
    assert_eq!(
        &events[events.len() - 2..],
        &[
            StreamEvent::Usage(Usage {
                input: 1,
                ..Default::default()
            }),
            StreamEvent::End
        ]
    );
}

#[test]
fn blocked_prompt_stream() {
    let bytes = "data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}}\n\n";
    let events = decode_all(bytes.as_bytes());
    assert!(
        matches!(&events[0], StreamEvent::Start { id, model, .. } if id.starts_with("gemini-") && model.is_empty())
    );
    assert_eq!(
        &events[1..],
        &[
            StreamEvent::Stop {
                reason: StopReason::ContentFilter,
                stop_sequence: None
            },
            StreamEvent::End
        ]
    );
}

#[test]
fn error_chunk() {
    let bytes = [
        chunk(json!([{"text": "a"}]), json!({})),
        "data: {\"error\": {\"code\": 503, \"message\": \"overloaded\", \"status\": \"UNAVAILABLE\"}}\n\n".into(),
        "data: [{\"error\": {\"message\": \"slow\", \"status\": \"RESOURCE_EXHAUSTED\"}}]\n\n".into(),
    ]
    .concat();
    let events = decode_all(bytes.as_bytes());
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            ProviderError {
                status: 503,
                provider_type: Some("UNAVAILABLE".into()),
                message: "overloaded".into(),
                param: None
            },
            ProviderError {
                status: 429,
                provider_type: Some("RESOURCE_EXHAUSTED".into()),
                message: "slow".into(),
                param: None
            },
        ]
    );
    assert!(!events.contains(&StreamEvent::End));
}

#[test]
fn call_ids_are_unique_across_chunks_and_given_ids_kept() {
    let bytes = [
        chunk(json!([{"functionCall": {"name": "f"}}]), json!({})),
        chunk(
            json!([{"functionCall": {"name": "f", "id": "g1"}}, {"functionCall": {"name": "f"}}]),
            json!({"finishReason": "STOP"}),
        ),
    ]
    .concat();
    let ids: Vec<_> = decode_all(bytes.as_bytes())
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::BlockStart {
                kind: BlockKind::ToolCall { id, .. },
                ..
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec!["call_0", "g1", "call_2"]);
}

fn encode(events: &[StreamEvent], finish: bool) -> String {
    let mut enc = stream_encoder(StreamEncoderOptions {
        include_usage: false,
        model: "fallback-model".into(),
        ..Default::default()
    });
    let mut out = Vec::new();
    for ev in events {
        enc.on_event(ev, &mut out);
    }
    if finish {
        enc.finish(&mut out);
        let len = out.len();
        enc.finish(&mut out);
        assert_eq!(out.len(), len, "finish is idempotent");
    }
    String::from_utf8(out).unwrap()
}

fn data_lines(s: &str) -> Vec<Value> {
    s.split("\r\n\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

#[test]
fn encodes_a_stream() {
    let events = vec![
        StreamEvent::Start {
            id: "r1".into(),
            model: String::new(),
            usage: None,
        },
        StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("Hi".into()),
        },
        StreamEvent::BlockStop { index: 0 },
        StreamEvent::BlockStart {
            index: 1,
            kind: BlockKind::ToolCall {
                id: "c1".into(),
                name: "f".into(),
            },
        },
        StreamEvent::Delta {
            index: 1,
            delta: Delta::ToolArguments("{\"a\":".into()),
        },
        StreamEvent::Delta {
            index: 1,
            delta: Delta::ToolArguments("1}".into()),
        },
        StreamEvent::BlockStop { index: 1 },
        StreamEvent::Stop {
            reason: StopReason::ToolUse,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage {
            input: 3,
            output: 4,
            ..Default::default()
        }),
        StreamEvent::End,
        // Nothing after End.
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("late".into()),
        },
    ];
    let out = encode(&events, true);
    let meta = json!({"modelVersion": "fallback-model", "responseId": "r1"});
    let with = |mut v: Value| {
        if let (Value::Object(m), Value::Object(x)) = (&mut v, meta.clone()) {
            m.extend(x);
        }
        v
    };
    assert_eq!(
        data_lines(&out),
        vec![
            with(
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "index": 0}]})
            ),
            with(
                json!({"candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}}]}, "index": 0}]})
            ),
            with(json!({"candidates": [{"finishReason": "STOP", "index": 0}],
                        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}})),
        ]
    );
}

#[test]
fn encoder_finish_without_end() {
    let start = StreamEvent::Start {
        id: "r".into(),
        model: "m".into(),
        usage: None,
    };
    let open_call = StreamEvent::BlockStart {
        index: 0,
        kind: BlockKind::ToolCall {
            id: "c".into(),
            name: "f".into(),
        },
    };
    let piece = |s: &str| StreamEvent::Delta {
        index: 0,
        delta: Delta::ToolArguments(s.into()),
    };
    // A call cut mid-arguments is not written; nothing else is known: nothing at all.
    assert_eq!(
        encode(&[start.clone(), open_call.clone(), piece("{\"a")], true),
        ""
    );
    // A complete call left open is written, then the stop seen.
    let out = encode(
        &[
            start.clone(),
            open_call,
            piece("{}"),
            StreamEvent::Stop {
                reason: StopReason::MaxTokens,
                stop_sequence: None,
            },
        ],
        true,
    );
    let lines = data_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["candidates"][0]["finishReason"], "MAX_TOKENS");
    // An error ends the stream.
    let err = ProviderError {
        status: 429,
        provider_type: None,
        message: "slow down".into(),
        param: None,
    };
    let out = encode(&[start, StreamEvent::Error(err)], true);
    assert_eq!(
        data_lines(&out),
        vec![
            json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
        ]
    );
}
