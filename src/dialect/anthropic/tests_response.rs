//! Tests of complete responses and error bodies (Anthropic Messages <-> canonical).

use serde_json::{json, Value};

use super::*;
use crate::dialect::canonical::*;
use crate::usage::Usage;

fn decoded(v: Value) -> ChatResponse {
    decode_response(v.to_string().as_bytes()).expect("decodes")
}

fn encoded(resp: &ChatResponse) -> Value {
    serde_json::from_slice(&encode_response(resp)).expect("JSON")
}

fn sample_body() -> Value {
    json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "let me see", "signature": "sig=="},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "Calling.", "citations": null},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 20,
                  "cache_creation_input_tokens": 3, "cache_read_input_tokens": 4,
                  "service_tier": "standard"}
    })
}

#[test]
fn decodes_a_full_response() {
    let resp = decoded(sample_body());
    assert_eq!(resp.id, "msg_01");
    assert_eq!(resp.model, "claude-sonnet-4-5");
    assert_eq!(
        resp.content,
        vec![
            Part::Thinking {
                text: "let me see".into(),
                signature: Some("sig==".into())
            },
            Part::RedactedThinking { data: "xyz".into() },
            Part::Text(Text::plain("Calling.")),
            Part::ToolCall(ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into()
            }),
        ]
    );
    assert_eq!(resp.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(resp.stop_sequence, None);
    assert_eq!(
        resp.usage,
        Some(Usage {
            input: 10,
            output: 20,
            cached_input: 4,
            cache_write: 3,
            reasoning: 0
        })
    );
    assert_eq!(resp.created, None);
}

#[test]
fn decodes_every_stop_reason() {
    let cases = [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("tool_use", StopReason::ToolUse),
        ("refusal", StopReason::Refusal),
        ("pause_turn", StopReason::PauseTurn),
        (
            "model_context_window_exceeded",
            StopReason::Other("model_context_window_exceeded".into()),
        ),
    ];
    for (name, want) in cases {
        let mut body = sample_body();
        body["stop_reason"] = json!(name);
        body["stop_sequence"] = json!("END");
        let resp = decoded(body);
        assert_eq!(resp.stop_reason, Some(want));
        assert_eq!(resp.stop_sequence.as_deref(), Some("END"));
    }
    let mut body = sample_body();
    body["stop_reason"] = Value::Null;
    assert_eq!(decoded(body).stop_reason, None);
}

#[test]
fn decode_response_refuses_non_answers() {
    assert!(decode_response(b"").is_err());
    assert!(decode_response(b"{").is_err());
    assert!(decode_response(b"[]").is_err());
    assert!(decode_response(br#"{"id":"x"}"#).is_err());
    assert!(
        decode_response(br#"{"type":"error","error":{"type":"api_error","message":"m"}}"#).is_err()
    );
    let resp = decode_response(br#"{"content":[]}"#).expect("minimal");
    assert_eq!(resp.usage, None);
    assert!(resp.content.is_empty());
}

#[test]
fn decode_response_reads_lenient_counts_and_empty_signatures() {
    let body = json!({"content": [{"type": "thinking", "thinking": "t", "signature": ""}],
                      "usage": {"input_tokens": "7", "output_tokens": 2.0}});
    let resp = decoded(body);
    assert_eq!(
        resp.content,
        vec![Part::Thinking {
            text: "t".into(),
            signature: None
        }]
    );
    let usage = resp.usage.expect("usage");
    assert_eq!((usage.input, usage.output), (7, 2));
}

fn sample_response() -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-9".into(),
        model: "gpt-4o".into(),
        content: vec![
            Part::Thinking {
                text: "hm".into(),
                signature: None,
            },
            Part::Text(Text::plain("Hello")),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: r#"{"city": "Paris"}"#.into(),
            }),
        ],
        stop_reason: None,
        stop_sequence: None,
        usage: Some(Usage {
            input: 5,
            output: 7,
            cached_input: 2,
            cache_write: 1,
            reasoning: 3,
        }),
        created: Some(1),
    }
}

#[test]
fn encodes_a_full_response() {
    let v = encoded(&sample_response());
    assert_eq!(
        v,
        json!({
            "id": "msg_chatcmpl-9",
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": ""},
                {"type": "text", "text": "Hello"},
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 7,
                      "cache_creation_input_tokens": 1, "cache_read_input_tokens": 2},
        })
    );
}

#[test]
fn encodes_stop_reasons() {
    let cases = [
        (Some(StopReason::EndTurn), "end_turn"),
        (Some(StopReason::MaxTokens), "max_tokens"),
        (Some(StopReason::StopSequence), "stop_sequence"),
        (Some(StopReason::ToolUse), "tool_use"),
        (Some(StopReason::ContentFilter), "refusal"),
        (Some(StopReason::Refusal), "refusal"),
        (Some(StopReason::PauseTurn), "pause_turn"),
        (Some(StopReason::Other("weird".into())), "weird"),
        (None, "end_turn"),
    ];
    for (reason, want) in cases {
        let resp = ChatResponse {
            content: vec![Part::Text(Text::plain("x"))],
            stop_reason: reason,
            stop_sequence: Some("S".into()),
            ..sample_response()
        };
        let v = encoded(&resp);
        assert_eq!(v["stop_reason"], want);
        assert_eq!(v["stop_sequence"], "S");
    }
}

#[test]
fn encodes_unparsable_arguments_as_raw_text_and_ids_with_prefix() {
    let resp = ChatResponse {
        id: String::new(),
        content: vec![
            Part::ToolCall(ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: r#"{"city": "Par"#.into(),
            }),
            Part::ToolCall(ToolCall {
                id: "c2".into(),
                name: "g".into(),
                arguments: String::new(),
            }),
            Part::ToolCall(ToolCall {
                id: "c3".into(),
                name: "h".into(),
                arguments: "[1]".into(),
            }),
        ],
        usage: None,
        ..sample_response()
    };
    let v = encoded(&resp);
    assert_eq!(
        v["content"][0]["input"],
        json!({"_raw_arguments": "{\"city\": \"Par"})
    );
    assert_eq!(v["content"][1]["input"], json!({}));
    assert_eq!(v["content"][2]["input"], json!({"_raw_arguments": "[1]"}));
    let id = v["id"].as_str().expect("id");
    assert!(id.starts_with("msg_") && id.len() > 4, "{id}");
    assert_eq!(v["usage"]["input_tokens"], 0);
    let resp = ChatResponse {
        id: "msg_keep".into(),
        ..sample_response()
    };
    assert_eq!(encoded(&resp)["id"], "msg_keep");
}

#[test]
fn response_round_trips() {
    let resp = decoded(sample_body());
    assert_eq!(decoded(encoded(&resp)), resp);
}

// ---- errors ---------------------------------------------------------------------------------

#[test]
fn decodes_anthropic_and_other_error_bodies() {
    let e = decode_error(
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(e.status, 529);
    assert_eq!(e.provider_type.as_deref(), Some("overloaded_error"));
    assert_eq!(e.message, "Overloaded");
    let e = decode_error(
        400,
        br#"{"error":{"message":"bad","type":"invalid_request_error","param":"messages"}}"#,
    );
    assert_eq!(e.message, "bad");
    assert_eq!(e.param.as_deref(), Some("messages"));
    let e = decode_error(502, b"<html>Bad gateway</html>");
    assert_eq!(e.message, "<html>Bad gateway</html>");
    assert_eq!(e.provider_type, None);
    assert_eq!(
        decode_error(503, b"  ").message,
        "provider returned HTTP 503"
    );
    assert_eq!(decode_error(500, b"").message, "provider returned HTTP 500");
    let long = "é".repeat(3000);
    assert_eq!(
        decode_error(500, long.as_bytes()).message.chars().count(),
        1000
    );
    assert_eq!(decode_error(500, b"{\"x\":1}").message, "{\"x\":1}");
    assert_eq!(decode_error(500, &[0xff, 0xfe]).status, 500);
}

#[test]
fn encodes_error_types_by_status() {
    let cases = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ];
    for (status, want) in cases {
        let err = ProviderError {
            status,
            provider_type: Some("whatever".into()),
            message: "m \"quoted\"".into(),
            param: None,
        };
        let v: Value = serde_json::from_slice(&encode_error(&err)).expect("JSON");
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": want, "message": "m \"quoted\""}}),
            "{status}"
        );
        let back = decode_error(status, &encode_error(&err));
        assert_eq!(back.message, err.message);
        assert_eq!(back.provider_type.as_deref(), Some(want));
    }
}
