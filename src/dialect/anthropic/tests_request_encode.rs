//! Tests of request encoding (canonical -> Anthropic Messages) and request round trips.

use serde_json::{json, Value};

use super::tests_request::{decode_ok, opts};
use super::*;
use crate::dialect::canonical::*;

fn encode(req: &ChatRequest) -> Value {
    let body = encode_request(req, "claude-target", &opts()).expect("encodes");
    serde_json::from_slice(&body).expect("JSON")
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![Part::Text(Text::plain(text))],
    }
}

// ---- encode ---------------------------------------------------------------------------------

fn minimal() -> ChatRequest {
    ChatRequest {
        model: "gpt-x".into(),
        messages: vec![user("hello")],
        ..ChatRequest::default()
    }
}

#[test]
fn encodes_minimal_request_with_default_max_tokens() {
    let v = encode(&minimal());
    assert_eq!(
        v,
        json!({
            "model": "claude-target",
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        })
    );
}

#[test]
fn encodes_system_as_string_or_blocks() {
    let mut req = minimal();
    req.system = vec![Part::Text(Text::plain("sys"))];
    assert_eq!(encode(&req)["system"], "sys");
    req.system = vec![Part::Text(Text {
        text: "sys".into(),
        cache_control: Some(json!({"type": "ephemeral"})),
    })];
    assert_eq!(
        encode(&req)["system"],
        json!([{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}])
    );
    req.system = vec![Part::Text(Text::plain("a")), Part::Text(Text::plain("b"))];
    assert_eq!(
        encode(&req)["system"],
        json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    );
}

#[test]
fn encodes_message_parts() {
    let mut req = minimal();
    req.messages = vec![
        Message {
            role: Role::User,
            content: vec![
                Part::Text(Text {
                    text: "see".into(),
                    cache_control: Some(json!({"type": "ephemeral"})),
                }),
                Part::Image(Image {
                    source: ImageSource::Url("https://x/a.png".into()),
                    detail: Some("high".into()),
                }),
                Part::Image(Image {
                    source: ImageSource::Base64 {
                        media_type: "image/jpeg".into(),
                        data: "QUJD".into(),
                    },
                    detail: None,
                }),
                Part::Image(Image {
                    source: ImageSource::Url("data:image/png;base64,iVBO".into()),
                    detail: None,
                }),
                Part::Text(Text::plain("")),
            ],
        },
        Message {
            role: Role::Assistant,
            content: vec![
                Part::Thinking {
                    text: "signed".into(),
                    signature: Some("sig".into()),
                },
                Part::Thinking {
                    text: "unsigned".into(),
                    signature: None,
                },
                Part::RedactedThinking { data: "r".into() },
                Part::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "f".into(),
                    arguments: r#"{"a": 1}"#.into(),
                }),
                Part::ToolCall(ToolCall {
                    id: "call_2".into(),
                    name: "g".into(),
                    arguments: String::new(),
                }),
            ],
        },
        // Only unsigned thinking: dropped whole.
        Message {
            role: Role::Assistant,
            content: vec![Part::Thinking {
                text: "x".into(),
                signature: None,
            }],
        },
        Message {
            role: Role::User,
            content: vec![
                Part::ToolResult(ToolResult {
                    call_id: "call_1".into(),
                    content: vec![Part::Text(Text::plain("42"))],
                    is_error: false,
                }),
                Part::ToolResult(ToolResult {
                    call_id: "call_2".into(),
                    content: vec![
                        Part::Text(Text::plain("bad")),
                        Part::Image(Image {
                            source: ImageSource::Url("https://x/e.png".into()),
                            detail: None,
                        }),
                    ],
                    is_error: true,
                }),
                Part::ToolResult(ToolResult {
                    call_id: "call_3".into(),
                    content: vec![],
                    is_error: false,
                }),
            ],
        },
    ];
    let v = encode(&req);
    let msgs = v["messages"].as_array().expect("array");
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[0]["content"],
        json!([
            {"type": "text", "text": "see", "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        ])
    );
    assert_eq!(
        msgs[1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "signed", "signature": "sig"},
            {"type": "redacted_thinking", "data": "r"},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
        ]})
    );
    assert_eq!(
        msgs[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "42"},
            {"type": "tool_result", "tool_use_id": "call_2", "is_error": true, "content": [
                {"type": "text", "text": "bad"},
                {"type": "image", "source": {"type": "url", "url": "https://x/e.png"}},
            ]},
            {"type": "tool_result", "tool_use_id": "call_3"},
        ]})
    );
}

#[test]
fn bad_tool_arguments_are_a_400_naming_the_part() {
    let mut req = minimal();
    req.messages.push(Message {
        role: Role::Assistant,
        content: vec![
            Part::Text(Text::plain("x")),
            Part::ToolCall(ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "{\"a\":".into(),
            }),
        ],
    });
    let err = encode_request(&req, "m", &opts()).expect_err("bad JSON");
    assert_eq!(err.param.as_deref(), Some("messages[1].content[1]"));
}

#[test]
fn encodes_sampling_tools_and_options() {
    let mut req = minimal();
    req.max_tokens = Some(8000);
    req.stop = vec!["X".into()];
    req.temperature = serde_json::Number::from_f64(0.5);
    req.top_p = Some(1.into());
    req.top_k = Some(5);
    req.stream = true;
    req.include_usage = true;
    req.user = Some("u".into());
    req.tools = vec![
        Tool {
            name: "f".into(),
            description: Some("does f".into()),
            parameters: json!({"type": "object", "properties": {}}),
            strict: Some(true),
        },
        Tool {
            name: "g".into(),
            description: None,
            parameters: Value::Null,
            strict: None,
        },
    ];
    let v = encode(&req);
    assert_eq!(v["max_tokens"], 8000);
    assert_eq!(v["stop_sequences"], json!(["X"]));
    assert_eq!(v["temperature"], 0.5);
    assert_eq!(v["top_p"], 1);
    assert_eq!(v["top_k"], 5);
    assert_eq!(v["stream"], true);
    assert_eq!(v["metadata"], json!({"user_id": "u"}));
    assert_eq!(
        v["tools"],
        json!([
            {"name": "f", "description": "does f", "input_schema": {"type": "object", "properties": {}}},
            {"name": "g", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
    assert!(v.get("tool_choice").is_none());
}

#[test]
fn encodes_tool_choice_and_parallel_flag() {
    let cases = [
        (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
        (Some(ToolChoice::Required), None, json!({"type": "any"})),
        (Some(ToolChoice::None), Some(false), json!({"type": "none"})),
        (
            Some(ToolChoice::Tool("f".into())),
            Some(false),
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}),
        ),
        (
            None,
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (Some(ToolChoice::Auto), Some(true), json!({"type": "auto"})),
    ];
    for (choice, parallel, want) in cases {
        let mut req = minimal();
        req.tools = vec![Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"type": "object"}),
            strict: None,
        }];
        req.tool_choice = choice;
        req.parallel_tool_calls = parallel;
        assert_eq!(encode(&req)["tool_choice"], want);
    }
    let mut req = minimal();
    req.parallel_tool_calls = Some(false);
    assert!(encode(&req).get("tool_choice").is_none(), "no tools");
}

#[test]
fn encodes_thinking_within_anthropic_limits() {
    let cases: [(Option<Reasoning>, Option<u64>, Value); 9] = [
        (
            Some(Reasoning::Budget(2000)),
            None,
            json!({"type": "enabled", "budget_tokens": 2000}),
        ),
        (
            Some(Reasoning::Budget(10000)),
            None,
            json!({"type": "enabled", "budget_tokens": 4095}),
        ),
        (
            Some(Reasoning::Budget(500)),
            None,
            json!({"type": "enabled", "budget_tokens": 1024}),
        ),
        (Some(Reasoning::Budget(2000)), Some(1024), Value::Null),
        (
            Some(Reasoning::Budget(2000)),
            Some(1025),
            json!({"type": "enabled", "budget_tokens": 1024}),
        ),
        (
            Some(Reasoning::Effort(Effort::Medium)),
            Some(32000),
            json!({"type": "enabled", "budget_tokens": 8192}),
        ),
        (Some(Reasoning::Disabled), None, json!({"type": "disabled"})),
        (
            Some(Reasoning::Budget(0)),
            None,
            json!({"type": "disabled"}),
        ),
        (None, None, Value::Null),
    ];
    for (reasoning, max_tokens, want) in cases {
        let mut req = minimal();
        req.reasoning = reasoning;
        req.max_tokens = max_tokens;
        let v = encode(&req);
        assert_eq!(
            v.get("thinking").cloned().unwrap_or(Value::Null),
            want,
            "{reasoning:?} {max_tokens:?}"
        );
    }
}

#[test]
fn encodes_response_formats_as_output_config() {
    let mut req = minimal();
    req.response_format = Some(ResponseFormat::Text);
    assert!(encode(&req).get("output_config").is_none());
    req.response_format = Some(ResponseFormat::JsonObject);
    assert_eq!(
        encode(&req)["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object"}}})
    );
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false});
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: Some("thing".into()),
        description: None,
        schema: schema.clone(),
        strict: Some(true),
    });
    assert_eq!(
        encode(&req)["output_config"],
        json!({"format": {"type": "json_schema", "schema": schema}})
    );
    assert!(encode(&req).get("output_format").is_none());
}

#[test]
fn unexpressible_fields_are_rejected_or_dropped() {
    for field in ["seed", "presence_penalty", "frequency_penalty"] {
        let mut req = minimal();
        match field {
            "seed" => req.seed = Some(7),
            "presence_penalty" => req.presence_penalty = Some(1.into()),
            _ => req.frequency_penalty = Some(1.into()),
        }
        let err = encode_request(&req, "m", &opts()).expect_err(field);
        assert_eq!(err.param.as_deref(), Some(field));
        let dropping = TranslateOptions {
            drop: vec![field.to_owned()],
        };
        let body = encode_request(&req, "m", &dropping).expect("dropped");
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(v.get(field).is_none());
    }
    let mut req = minimal();
    req.messages.push(Message {
        role: Role::User,
        content: vec![Part::ToolResult(ToolResult {
            call_id: "c".into(),
            content: vec![
                Part::Text(Text::plain("a")),
                Part::ToolCall(ToolCall {
                    id: "x".into(),
                    name: "y".into(),
                    arguments: "{}".into(),
                }),
            ],
            is_error: false,
        })],
    });
    let err = encode_request(&req, "m", &opts()).expect_err("tool call in a result");
    assert_eq!(
        err.param.as_deref(),
        Some("messages[1].content[0].content[1]")
    );
}

#[test]
fn consecutive_same_role_messages_stay() {
    let mut req = minimal();
    req.messages = vec![user("a"), user("b")];
    let v = encode(&req);
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(2));
}

#[test]
fn full_request_round_trips() {
    let body = json!({
        "model": "claude-target",
        "max_tokens": 3000,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "stop_sequences": ["END"],
        "temperature": 0.25,
        "top_k": 3,
        "stream": true,
        "metadata": {"user_id": "me"},
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 1500},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "q"},
                {"type": "image", "source": {"type": "url", "url": "https://i"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "redacted_thinking", "data": "d"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": [1, {"y": null}]}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "r1"}, {"type": "text", "text": "r2"}]}]}
        ]
    });
    let req = decode_ok(body.clone());
    let again = decode_request(
        &encode_request(&req, "claude-target", &opts()).expect("encodes"),
        &opts(),
    )
    .expect("decodes");
    assert_eq!(again, req);
    assert_eq!(encode(&req), body);
}

#[test]
fn tool_ids_are_made_to_fit_anthropic_and_still_pair() {
    let mut req = minimal();
    req.messages = vec![
        user("q"),
        Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall(ToolCall {
                id: "functions.get_weather:0".into(),
                name: "get_weather".into(),
                arguments: "{}".into(),
            })],
        },
        Message {
            role: Role::User,
            content: vec![Part::ToolResult(ToolResult {
                call_id: "functions.get_weather:0".into(),
                content: vec![Part::Text(Text::plain("ok"))],
                is_error: false,
            })],
        },
    ];
    let v = encode(&req);
    assert_eq!(
        v["messages"][1]["content"][0]["id"],
        "functions_get_weather_0"
    );
    assert_eq!(
        v["messages"][2]["content"][0]["tool_use_id"],
        "functions_get_weather_0"
    );
}

#[test]
fn tool_schemas_get_the_object_type_anthropic_requires() {
    let mut req = minimal();
    req.tools = vec![Tool {
        name: "f".into(),
        description: None,
        parameters: json!({}),
        strict: None,
    }];
    assert_eq!(
        encode(&req)["tools"][0]["input_schema"],
        json!({"type": "object"})
    );
}
