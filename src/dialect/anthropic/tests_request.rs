//! Tests of request decoding (Anthropic Messages -> canonical).

use serde_json::{json, Value};

use super::*;
use crate::dialect::canonical::*;

pub(super) fn opts() -> TranslateOptions {
    TranslateOptions::default()
}

pub(super) fn decode(v: Value) -> Result<ChatRequest, GatewayError> {
    decode_request(v.to_string().as_bytes(), &opts())
}

pub(super) fn decode_ok(v: Value) -> ChatRequest {
    match decode(v) {
        Ok(r) => r,
        Err(e) => panic!("decode failed: {e}"),
    }
}

fn param_of(v: Value) -> String {
    let err = decode(v).expect_err("must be refused");
    assert_eq!(err.status(), 400);
    err.param.map(|p| p.into_owned()).unwrap_or_default()
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![Part::Text(Text::plain(text))],
    }
}

fn base(messages: Value) -> Value {
    json!({"model": "claude-x", "max_tokens": 100, "messages": messages})
}

// ---- decode ---------------------------------------------------------------------------------

#[test]
fn decodes_every_feature() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "be brief",
        "stop_sequences": ["END", "STOP"],
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "stream": true,
        "service_tier": "auto",
        "metadata": {"user_id": "u-1", "other": 1},
        "tools": [{"name": "get_weather", "description": "weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                   "cache_control": {"type": "ephemeral"}},
                  {"type": "custom", "name": "t2", "input_schema": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [
                {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}, "citations": null},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris", "n": [1, 2]}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [
                    {"type": "text", "text": "failed"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/z.png"}}
                ]}
            ]}
        ]
    });
    let req = decode_ok(body);
    assert_eq!(req.model, "claude-sonnet-4-5");
    assert_eq!(req.max_tokens, Some(1024));
    assert_eq!(req.system, vec![Part::Text(Text::plain("be brief"))]);
    assert_eq!(req.stop, vec!["END", "STOP"]);
    assert_eq!(req.temperature, serde_json::Number::from_f64(0.7));
    assert_eq!(req.top_p, serde_json::Number::from_f64(0.9));
    assert_eq!(req.top_k, Some(40));
    assert!(req.stream);
    assert_eq!(req.user.as_deref(), Some("u-1"));
    assert_eq!(req.tools.len(), 2);
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(req.tools[0].description.as_deref(), Some("weather"));
    assert_eq!(
        req.tools[0].parameters["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(req.tools[0].strict, None);
    assert_eq!(req.tools[1].strict, Some(true));
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.reasoning, Some(Reasoning::Budget(2048)));
    assert_eq!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            name: None,
            description: None,
            schema: json!({"type": "object"}),
            strict: Some(true),
        })
    );
    assert_eq!(req.messages.len(), 4);
    assert_eq!(req.messages[0], user("hi"));
    let m1 = &req.messages[1].content;
    assert_eq!(
        m1[0],
        Part::Text(Text {
            text: "look".into(),
            cache_control: Some(json!({"type": "ephemeral"})),
        })
    );
    assert_eq!(
        m1[1],
        Part::Image(Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            },
            detail: None,
        })
    );
    assert_eq!(
        m1[2],
        Part::Image(Image {
            source: ImageSource::Url("https://x/y.png".into()),
            detail: None,
        })
    );
    let m2 = &req.messages[2];
    assert_eq!(m2.role, Role::Assistant);
    assert_eq!(
        m2.content[0],
        Part::Thinking {
            text: "hmm".into(),
            signature: Some("sig".into())
        }
    );
    assert_eq!(
        m2.content[1],
        Part::RedactedThinking {
            data: "opaque".into()
        }
    );
    let Part::ToolCall(call) = &m2.content[3] else {
        panic!("tool call expected")
    };
    assert_eq!(call.id, "toolu_1");
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments, r#"{"city":"Paris","n":[1,2]}"#);
    let m3 = &req.messages[3].content;
    assert_eq!(
        m3[0],
        Part::ToolResult(ToolResult {
            call_id: "toolu_1".into(),
            content: vec![Part::Text(Text::plain("sunny"))],
            is_error: false,
        })
    );
    let Part::ToolResult(r) = &m3[1] else {
        panic!("tool result expected")
    };
    assert!(r.is_error);
    assert_eq!(r.content.len(), 2);
    assert!(matches!(r.content[1], Part::Image(_)));
}

#[test]
fn decodes_system_blocks_with_cache_control() {
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["system"] = json!([
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]);
    let req = decode_ok(body);
    assert_eq!(req.system.len(), 2);
    assert_eq!(
        req.system[1],
        Part::Text(Text {
            text: "b".into(),
            cache_control: Some(json!({"type": "ephemeral", "ttl": "1h"})),
        })
    );
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["system"] = json!([{"type": "image", "source": {}}]);
    assert_eq!(param_of(body), "system[0]");
}

#[test]
fn refuses_anthropic_only_blocks_naming_them() {
    for kind in [
        "document",
        "search_result",
        "server_tool_use",
        "web_search_tool_result",
        "container_upload",
        "mcp_tool_use",
    ] {
        let body = base(json!([
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": kind}]}
        ]));
        assert_eq!(param_of(body), "messages[1].content[1]", "{kind}");
    }
    let body = base(json!([{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f"}}
    ]}]));
    assert_eq!(param_of(body), "messages[0].content[0]");
    let body = base(json!([{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "document"}]}
    ]}]));
    assert_eq!(param_of(body), "messages[0].content[0].content[0]");
}

#[test]
fn refuses_server_tools_naming_them() {
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["tools"] = json!([
        {"name": "a", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"}
    ]);
    assert_eq!(param_of(body), "tools[1]");
}

#[test]
fn refuses_unknown_fields_at_every_level() {
    for field in [
        "container",
        "mcp_servers",
        "context_management",
        "frobnicate",
    ] {
        let mut body = base(json!([{"role": "user", "content": "x"}]));
        body[field] = json!({"a": 1});
        assert_eq!(param_of(body.clone()), field);
        let dropping = TranslateOptions {
            drop: vec![field.to_owned()],
        };
        assert!(decode_request(body.to_string().as_bytes(), &dropping).is_ok());
    }
    let body = base(json!([{"role": "user", "content": "x", "name": "bob"}]));
    assert_eq!(param_of(body), "messages[0].name");
    let body =
        base(json!([{"role": "user", "content": [{"type": "text", "text": "x", "foo": 1}]}]));
    assert_eq!(param_of(body), "messages[0].content[0].foo");
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["tools"] =
        json!([{"name": "a", "input_schema": {"type": "object"}, "defer_loading": true}]);
    assert_eq!(param_of(body), "tools[0].defer_loading");
}

#[test]
fn nulls_are_absent() {
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["temperature"] = Value::Null;
    body["container"] = Value::Null;
    body["metadata"] = json!({"user_id": null});
    let req = decode_ok(body);
    assert_eq!(req.temperature, None);
    assert_eq!(req.user, None);
}

#[test]
fn decodes_tool_choice_variants() {
    let cases = [
        (json!({"type": "auto"}), ToolChoice::Auto, None),
        (json!({"type": "none"}), ToolChoice::None, None),
        (json!({"type": "any"}), ToolChoice::Required, None),
        (
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}),
            ToolChoice::Tool("f".into()),
            Some(false),
        ),
        (
            json!({"type": "auto", "disable_parallel_tool_use": false}),
            ToolChoice::Auto,
            None,
        ),
    ];
    for (choice, want, parallel) in cases {
        let mut body = base(json!([{"role": "user", "content": "x"}]));
        body["tool_choice"] = choice;
        let req = decode_ok(body);
        assert_eq!(req.tool_choice, Some(want));
        assert_eq!(req.parallel_tool_calls, parallel);
    }
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["tool_choice"] = json!({"type": "tool"});
    assert_eq!(param_of(body), "tool_choice.name");
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["tool_choice"] = json!({"type": "sometimes"});
    assert_eq!(param_of(body), "tool_choice.type");
}

#[test]
fn decodes_thinking_and_output_config() {
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["thinking"] = json!({"type": "disabled"});
    assert_eq!(decode_ok(body).reasoning, Some(Reasoning::Disabled));
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["thinking"] = json!({"type": "enabled"});
    assert_eq!(param_of(body), "thinking.budget_tokens");
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["thinking"] = json!({"type": "adaptive"});
    assert_eq!(param_of(body), "thinking.type");
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["output_config"] =
        json!({"format": {"type": "json_schema", "schema": {"type": "object"}}});
    assert!(matches!(
        decode_ok(body).response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    let mut body = base(json!([{"role": "user", "content": "x"}]));
    body["output_config"] = json!({"effort": "high"});
    assert_eq!(param_of(body), "output_config.effort");
}

#[test]
fn refuses_malformed_requests() {
    assert!(decode_request(b"not json", &opts()).is_err());
    assert!(decode_request(b"[1]", &opts()).is_err());
    assert_eq!(param_of(json!({"messages": []})), "model");
    assert_eq!(param_of(json!({"model": "m"})), "messages");
    assert_eq!(param_of(json!({"model": "m", "messages": {}})), "messages");
    assert_eq!(
        param_of(base(json!([{"role": "system", "content": "x"}]))),
        "messages[0].role"
    );
    assert_eq!(
        param_of(base(json!([{"role": "user", "content": 5}]))),
        "messages[0].content"
    );
    assert_eq!(
        param_of(base(
            json!([{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": [1]}]}])
        )),
        "messages[0].content[0].input"
    );
    let mut body = base(json!([]));
    body["temperature"] = json!("hot");
    assert_eq!(param_of(body), "temperature");
    let mut body = base(json!([]));
    body["max_tokens"] = json!(-1);
    assert_eq!(param_of(body), "max_tokens");
    let mut body = base(json!([]));
    body["stop_sequences"] = json!(["a", 1]);
    assert_eq!(param_of(body), "stop_sequences[1]");
}

#[test]
fn empty_signature_is_no_signature() {
    let body = base(json!([{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "t", "signature": ""}
    ]}]));
    assert_eq!(
        decode_ok(body).messages[0].content[0],
        Part::Thinking {
            text: "t".into(),
            signature: None
        }
    );
}
