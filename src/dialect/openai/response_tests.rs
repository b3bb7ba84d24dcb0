//! Tests of complete responses (both ways) and error bodies (both ways).

use super::*;
use crate::dialect::canonical::*;
use crate::usage::Usage;
use serde_json::{json, Value};

fn decode(v: Value) -> ChatResponse {
    decode_response(v.to_string().as_bytes()).unwrap()
}

fn encode(r: &ChatResponse) -> Value {
    serde_json::from_slice(&encode_response(r)).unwrap()
}

fn text(s: &str) -> Part {
    Part::Text(Text::plain(s))
}

fn body(message: Value, finish: Value) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 20}},
    })
}

#[test]
fn decodes_a_full_answer() {
    let r = decode(body(
        json!({"role": "assistant", "content": "hello", "reasoning_content": "thought",
            "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{\"a\": 1}"}}]}),
        json!("tool_calls"),
    ));
    assert_eq!(r.id, "chatcmpl-1");
    assert_eq!(r.model, "gpt-4o");
    assert_eq!(r.created, Some(1700000000));
    assert_eq!(
        r.content,
        vec![
            Part::Thinking {
                text: "thought".into(),
                signature: None
            },
            text("hello"),
            Part::ToolCall(ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{\"a\": 1}".into()
            }),
        ]
    );
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(
        r.usage,
        Some(Usage {
            input: 70,
            output: 50,
            cached_input: 30,
            cache_write: 0,
            reasoning: 20
        })
    );
}

#[test]
fn maps_finish_reasons() {
    for (fr, want) in [
        (json!("stop"), Some(StopReason::EndTurn)),
        (json!("length"), Some(StopReason::MaxTokens)),
        (json!("tool_calls"), Some(StopReason::ToolUse)),
        (json!("function_call"), Some(StopReason::ToolUse)),
        (json!("content_filter"), Some(StopReason::ContentFilter)),
        (json!("eos"), Some(StopReason::Other("eos".into()))),
        (Value::Null, None),
    ] {
        let r = decode(body(json!({"role": "assistant", "content": "x"}), fr));
        assert_eq!(r.stop_reason, want);
    }
}

#[test]
fn refusals_are_text_with_a_refusal_stop() {
    let r = decode(body(
        json!({"role": "assistant", "content": null, "refusal": "I can't."}),
        json!("stop"),
    ));
    assert_eq!(r.content, vec![text("I can't.")]);
    assert_eq!(r.stop_reason, Some(StopReason::Refusal));
}

#[test]
fn decodes_compatible_provider_variants() {
    // `reasoning`, array content, object arguments, missing id, Groq usage, DeepSeek cache.
    let r = decode(json!({
        "id": "x", "model": "m",
        "choices": [{"message": {"content": [{"type": "text", "text": "a"}], "reasoning": "r",
            "tool_calls": [{"function": {"name": "f", "arguments": {"k": true}}}]},
            "finish_reason": "stop"}],
        "x_groq": {"usage": {"prompt_tokens": 9, "completion_tokens": 1, "prompt_cache_hit_tokens": 4}},
    }));
    assert_eq!(
        r.content,
        vec![
            Part::Thinking {
                text: "r".into(),
                signature: None
            },
            text("a"),
            Part::ToolCall(ToolCall {
                id: "call_0".into(),
                name: "f".into(),
                arguments: "{\"k\":true}".into()
            }),
        ]
    );
    assert_eq!(r.usage.map(|u| (u.input, u.cached_input)), Some((5, 4)));
    assert_eq!(r.created, None);
}

#[test]
fn rejects_bodies_that_are_not_answers() {
    for b in [
        &b"not json"[..],
        b"[]",
        b"{}",
        b"{\"choices\": []}",
        b"{\"choices\": [{\"index\": 0}]}",
        b"{\"error\": {\"message\": \"boom\"}}",
    ] {
        assert!(
            decode_response(b).is_err(),
            "{}",
            String::from_utf8_lossy(b)
        );
    }
    let e = decode_response(b"{\"error\": {\"message\": \"boom\"}}").unwrap_err();
    assert!(e.contains("boom"));
}

fn response(content: Vec<Part>, stop: Option<StopReason>) -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-abc".into(),
        model: "m".into(),
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage: Some(Usage {
            input: 10,
            output: 5,
            cached_input: 3,
            cache_write: 2,
            reasoning: 1,
        }),
        created: Some(42),
    }
}

#[test]
fn encodes_a_full_answer() {
    let r = response(
        vec![
            Part::Thinking {
                text: "t1".into(),
                signature: Some("s".into()),
            },
            Part::RedactedThinking { data: "x".into() },
            text("Hello "),
            text("world"),
            Part::ToolCall(ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "{\"a\" : 1}".into(),
            }),
        ],
        Some(StopReason::ToolUse),
    );
    assert_eq!(
        encode(&r),
        json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "created": 42, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world",
                "reasoning_content": "t1",
                "tool_calls": [{"id": "c", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\" : 1}"}}],
                "refusal": null}, "finish_reason": "tool_calls", "logprobs": null}],
            "usage": {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 3},
                "completion_tokens_details": {"reasoning_tokens": 1}},
        })
    );
}

#[test]
fn encodes_empty_answers_ids_and_stop_reasons() {
    let mut r = response(vec![], None);
    r.id = "msg_1".into();
    r.created = None;
    r.usage = None;
    let v = encode(&r);
    assert_eq!(v["id"], "chatcmpl-msg_1");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert!(v["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], Value::Null);
    assert!(v.get("usage").is_none());
    r.id = String::new();
    assert!(encode(&r)["id"].as_str().unwrap().len() > "chatcmpl-".len());
    for (s, want) in [
        (StopReason::EndTurn, "stop"),
        (StopReason::StopSequence, "stop"),
        (StopReason::PauseTurn, "stop"),
        (StopReason::MaxTokens, "length"),
        (StopReason::ToolUse, "tool_calls"),
        (StopReason::ContentFilter, "content_filter"),
        (StopReason::Refusal, "content_filter"),
        (StopReason::Other("weird".into()), "weird"),
    ] {
        r.stop_reason = Some(s);
        assert_eq!(encode(&r)["choices"][0]["finish_reason"], want);
    }
}

// ---------------- errors ----------------

#[test]
fn decodes_openai_error_bodies() {
    let e = decode_error(
        400,
        br#"{"error":{"message":"Bad param","type":"invalid_request_error","param":"temperature","code":"bad"}}"#,
    );
    assert_eq!(
        e,
        ProviderError {
            status: 400,
            provider_type: Some("invalid_request_error".into()),
            message: "Bad param".into(),
            param: Some("temperature".into())
        }
    );
    let e = decode_error(
        429,
        br#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(e.provider_type.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(e.status, 429);
}

#[test]
fn decodes_other_error_bodies() {
    let e = decode_error(502, b"<html>Bad gateway</html>");
    assert_eq!(e.message, "<html>Bad gateway</html>");
    assert_eq!(e.provider_type, None);
    assert_eq!(decode_error(503, b"").message, "provider returned HTTP 503");
    assert_eq!(
        decode_error(503, b"  \n").message,
        "provider returned HTTP 503"
    );
    let long = "é".repeat(3000);
    assert_eq!(
        decode_error(500, long.as_bytes()).message.chars().count(),
        1000
    );
    assert_eq!(decode_error(500, b"\xff\xfe").status, 500);
    assert_eq!(decode_error(400, br#"{"error":"plain"}"#).message, "plain");
    assert_eq!(
        decode_error(404, br#"{"detail":"Not Found"}"#).message,
        "Not Found"
    );
    assert_eq!(
        decode_error(400, br#"[{"error":{"message":"m","type":"t"}}]"#)
            .provider_type
            .as_deref(),
        Some("t")
    );
    assert_eq!(decode_error(500, br#"{"foo":1}"#).message, r#"{"foo":1}"#);
    assert_eq!(
        decode_error(500, br#"{"error":{}}"#).message,
        "provider returned HTTP 500"
    );
}

#[test]
fn encodes_errors_with_types_by_status() {
    for (status, ty) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "conflict"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (529, "api_error"),
    ] {
        let e = ProviderError {
            status,
            provider_type: Some("overloaded_error".into()),
            message: "msg \"quoted\"".into(),
            param: Some("p".into()),
        };
        let v: Value = serde_json::from_slice(&encode_error(&e)).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "msg \"quoted\"", "type": ty, "param": "p",
                "code": "overloaded_error"}})
        );
    }
}

#[test]
fn error_round_trip_keeps_message_status_and_param() {
    let e = ProviderError {
        status: 429,
        provider_type: None,
        message: "slow".into(),
        param: None,
    };
    let back = decode_error(e.status, &encode_error(&e));
    assert_eq!(back.message, "slow");
    assert_eq!(back.status, 429);
    assert_eq!(back.provider_type.as_deref(), Some("rate_limit_error"));
}
