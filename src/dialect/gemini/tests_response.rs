//! Tests of complete answers (decode/encode) and error bodies.

use serde_json::{json, Value};

use super::{decode_error, decode_response, encode_error, encode_response};
use crate::dialect::canonical::*;
use crate::usage::Usage;

fn dec(v: Value) -> ChatResponse {
    decode_response(v.to_string().as_bytes()).unwrap()
}

fn answer(parts: Value, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20,
                          "cachedContentTokenCount": 30, "thoughtsTokenCount": 5,
                          "toolUsePromptTokenCount": 7, "totalTokenCount": 125},
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
    })
}

#[test]
fn text_thinking_and_usage() {
    let r = dec(answer(
        json!([
            {"text": "plan", "thought": true, "thoughtSignature": "s1"},
            {"text": "Hello"},
            {"text": ""},
            {"text": " world", "thoughtSignature": "ignored"},
            {"executableCode": {"code": "print(1)"}},
        ]),
        "STOP",
    ));
    assert_eq!(r.id, "resp-1");
    assert_eq!(r.model, "gemini-2.5-flash-001");
    assert_eq!(
        r.content,
        vec![
            Part::Thinking {
                text: "plan".into(),
                signature: Some("s1".into())
            },
            Part::Text(Text::plain("Hello")),
            Part::Text(Text::plain(" world")),
        ]
    );
    assert_eq!(r.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(r.stop_sequence, None);
    // Exactly as usage/gemini.rs reads it.
    assert_eq!(
        r.usage,
        Some(Usage {
            input: 100 - 30 + 7,
            cached_input: 30,
            cache_write: 0,
            output: 25,
            reasoning: 5,
        })
    );
}

#[test]
fn function_calls_get_ids_and_tool_use() {
    let r = dec(answer(
        json!([
            {"functionCall": {"name": "f", "args": {"b": [1, 2], "a": "x"}}, "thoughtSignature": "sig"},
            {"functionCall": {"name": "g", "id": "given"}},
            {"functionCall": {"name": "h", "args": {}}},
        ]),
        "STOP",
    ));
    let calls: Vec<_> = r
        .content
        .iter()
        .map(|p| match p {
            Part::ToolCall(c) => (c.id.as_str(), c.name.as_str(), c.arguments.as_str()),
            _ => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ("call_0", "f", r#"{"a":"x","b":[1,2]}"#),
            ("given", "g", "{}"),
            ("call_2", "h", "{}"),
        ]
    );
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
}

#[test]
fn finish_reasons() {
    for (name, want) in [
        ("MAX_TOKENS", StopReason::MaxTokens),
        ("SAFETY", StopReason::ContentFilter),
        ("RECITATION", StopReason::ContentFilter),
        ("BLOCKLIST", StopReason::ContentFilter),
        ("PROHIBITED_CONTENT", StopReason::ContentFilter),
        ("SPII", StopReason::ContentFilter),
        ("IMAGE_SAFETY", StopReason::ContentFilter),
        (
            "MALFORMED_FUNCTION_CALL",
            StopReason::Other("MALFORMED_FUNCTION_CALL".into()),
        ),
        ("OTHER", StopReason::Other("OTHER".into())),
    ] {
        assert_eq!(
            dec(answer(json!([]), name)).stop_reason,
            Some(want),
            "{name}"
        );
    }
    assert_eq!(
        dec(answer(json!([]), "FINISH_REASON_UNSPECIFIED")).stop_reason,
        None
    );
    // A candidate with no content at all (filtered).
    let r = dec(json!({"candidates": [{"finishReason": "SAFETY"}]}));
    assert!(r.content.is_empty());
    assert_eq!(r.stop_reason, Some(StopReason::ContentFilter));
    assert_eq!(r.usage, None);
    assert!(r.id.starts_with("gemini-"));
    assert_eq!(r.model, "");
}

#[test]
fn blocked_prompt_and_invalid_answers() {
    let body = json!({"promptFeedback": {"blockReason": "SAFETY"},
                      "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}});
    let r = dec(body.clone());
    assert!(r.content.is_empty());
    assert_eq!(r.stop_reason, Some(StopReason::ContentFilter));
    assert_eq!(r.usage.map(|u| u.input), Some(8));
    // The made-up id is stable.
    assert_eq!(r.id, dec(body).id);
    assert!(decode_response(b"{}").is_err());
    assert!(decode_response(b"[]").is_err());
    assert!(decode_response(b"{\"candidates\": [").is_err());
    assert!(decode_response(b"").is_err());
}

#[test]
fn encodes_a_response() {
    let resp = ChatResponse {
        id: "r9".into(),
        model: "gemini-x".into(),
        content: vec![
            Part::Thinking {
                text: "t".into(),
                signature: None,
            },
            Part::Text(Text::plain("hi")),
            Part::RedactedThinking { data: "x".into() },
            Part::ToolCall(ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into(),
            }),
        ],
        stop_reason: Some(StopReason::ToolUse),
        stop_sequence: None,
        usage: Some(Usage {
            input: 10,
            cached_input: 5,
            cache_write: 2,
            output: 9,
            reasoning: 4,
        }),
        created: Some(1),
    };
    let v: Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
    assert_eq!(
        v,
        json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "t", "thought": true},
                {"text": "hi"},
                {"functionCall": {"id": "c", "name": "f", "args": {"a": 1}}},
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 17, "candidatesTokenCount": 5,
                              "totalTokenCount": 26, "cachedContentTokenCount": 5,
                              "thoughtsTokenCount": 4},
            "modelVersion": "gemini-x",
            "responseId": "r9",
        })
    );
}

#[test]
fn decodes_errors() {
    let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}});
    let e = decode_error(429, body.to_string().as_bytes());
    assert_eq!(
        e,
        ProviderError {
            status: 429,
            provider_type: Some("RESOURCE_EXHAUSTED".into()),
            message: "Quota exceeded".into(),
            param: None,
        }
    );
    let wrapped = json!([{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": "contents[0]", "description": "bad"}]}]}}]);
    let e = decode_error(400, wrapped.to_string().as_bytes());
    assert_eq!(e.provider_type.as_deref(), Some("INVALID_ARGUMENT"));
    assert_eq!(e.message, "bad");
    assert_eq!(e.param.as_deref(), Some("contents[0]"));
    let e = decode_error(502, b"  <html>Bad Gateway</html>\n");
    assert_eq!(
        (e.status, e.message.as_str()),
        (502, "<html>Bad Gateway</html>")
    );
    assert_eq!(e.provider_type, None);
    let e = decode_error(503, b"");
    assert_eq!(e.message, "provider returned HTTP 503");
    let long = "é".repeat(1500);
    let e = decode_error(500, long.as_bytes());
    assert_eq!(e.message.chars().count(), 1000);
    // JSON error without a message: the body text, the status name kept.
    let e = decode_error(500, br#"{"error":{"status":"INTERNAL"}}"#);
    assert_eq!(e.provider_type.as_deref(), Some("INTERNAL"));
    assert_eq!(e.message, r#"{"error":{"status":"INTERNAL"}}"#);
}

#[test]
fn encodes_errors() {
    for (status, name) in [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (529, "UNAVAILABLE"),
    ] {
        let err = ProviderError {
            status,
            provider_type: Some("rate_limit_error".into()),
            message: "m \"q\"".into(),
            param: None,
        };
        let v: Value = serde_json::from_slice(&encode_error(&err)).unwrap();
        assert_eq!(
            v,
            json!({"error": {"code": status, "message": "m \"q\"", "status": name}})
        );
    }
    // A Google status name is kept; a param becomes a field violation and comes back.
    let err = ProviderError {
        status: 400,
        provider_type: Some("FAILED_PRECONDITION".into()),
        message: "no".into(),
        param: Some("contents".into()),
    };
    assert_eq!(decode_error(400, &encode_error(&err)), err);
}
