use super::*;
use crate::dialect::canonical::*;
use crate::usage::Usage;
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn sample() -> ChatResponse {
    ChatResponse {
        id: "msg_01".into(),
        model: "claude".into(),
        content: vec![
            Part::Thinking {
                text: "Hmm".into(),
                signature: Some("sig".into()),
            },
            Part::Text(Text::plain("Checking.")),
            Part::ToolCall(ToolCall {
                id: "toolu_1".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            }),
            Part::ToolCall(ToolCall {
                id: "toolu_2".into(),
                name: "get_time".into(),
                arguments: "{}".into(),
            }),
        ],
        stop_reason: Some(StopReason::ToolUse),
        stop_sequence: None,
        usage: Some(Usage {
            input: 10,
            output: 30,
            cached_input: 100,
            cache_write: 5,
            reasoning: 12,
        }),
        created: Some(1_700_000_000),
    }
}

#[test]
fn whole_answers_carry_items_usage_and_the_echoed_request() {
    let opts = StreamEncoderOptions {
        response_id: Some("resp_abc".into()),
        echo: Some(Arc::new(
            json!({"instructions": "Be brief.", "store": false,
            "tools": [{"type": "function", "name": "get_weather"}]}),
        )),
        ..Default::default()
    };
    let v: Value = serde_json::from_slice(&encode_response_with(&sample(), &opts)).unwrap();
    assert_eq!(v["id"], "resp_abc");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["instructions"], "Be brief.");
    assert_eq!(v["store"], false);
    assert_eq!(v["tools"][0]["name"], "get_weather");
    assert_eq!(v["tool_choice"], "auto");
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[0]["id"], "rs_abc_0");
    assert_eq!(out[0]["summary"][0]["text"], "Hmm");
    assert_eq!(out[0]["encrypted_content"], "sig");
    assert_eq!(out[1]["content"][0]["text"], "Checking.");
    assert_eq!(out[2]["call_id"], "toolu_1");
    assert_eq!(out[3]["id"], "fc_abc_3");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 115, "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
            "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 145})
    );
    // Read back, the answer is the same (the provider's id becomes the response's).
    let back = decode_response(&encode_response_with(&sample(), &opts)).unwrap();
    let mut expected = sample();
    expected.id = "resp_abc".into();
    assert_eq!(back, expected);
}

#[test]
fn token_limits_and_filters_are_incomplete_and_errors_do_not_decode() {
    let mut r = sample();
    r.content = vec![Part::Text(Text::plain("cut"))];
    r.stop_reason = Some(StopReason::MaxTokens);
    let v: Value = serde_json::from_slice(&encode_response(&r)).unwrap();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["id"], "resp_msg_01");
    assert_eq!(
        decode_response(&encode_response(&r)).unwrap().stop_reason,
        Some(StopReason::MaxTokens)
    );
    let failed = json!({"id": "resp_1", "status": "failed", "output": [],
        "error": {"code": "server_error", "message": "boom"}});
    assert!(decode_response(failed.to_string().as_bytes())
        .unwrap_err()
        .contains("boom"));
    assert!(decode_response(b"[]").is_err());
}

#[test]
fn openai_answers_decode_with_refusals_and_built_in_items_skipped() {
    let body = json!({"id": "resp_x", "object": "response", "created_at": 1.7e9, "status": "completed",
        "model": "gpt-5", "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "id": "m", "role": "assistant", "content": [
                {"type": "refusal", "refusal": "No."}]}
        ],
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15}});
    let r = decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(r.content, vec![Part::Text(Text::plain("No."))]);
    assert_eq!(r.stop_reason, Some(StopReason::Refusal));
    assert_eq!(r.created, Some(1_700_000_000));
    assert_eq!(
        r.usage,
        Some(Usage {
            input: 6,
            output: 5,
            cached_input: 4,
            cache_write: 0,
            reasoning: 2
        })
    );
}
