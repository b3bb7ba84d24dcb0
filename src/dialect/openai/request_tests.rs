//! Tests of request decoding (client OpenAI body -> canonical) and encoding (canonical ->
//! provider OpenAI body).

use super::*;
use crate::dialect::canonical::*;
use serde_json::{json, Value};

fn decode(v: Value) -> Result<ChatRequest, crate::error::GatewayError> {
    decode_request(v.to_string().as_bytes(), &TranslateOptions::default())
}

fn decode_ok(v: Value) -> ChatRequest {
    decode(v).unwrap()
}

fn param_of(v: Value) -> String {
    let e = decode(v).unwrap_err();
    assert_eq!(e.status(), 400);
    e.param.unwrap().into_owned()
}

fn with(extra: Value) -> Value {
    let mut base = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn msgs(messages: Value) -> Value {
    json!({"model": "m", "messages": messages})
}

fn encode(req: &ChatRequest) -> Value {
    serde_json::from_slice(
        &encode_request(req, "target-model", &TranslateOptions::default()).unwrap(),
    )
    .unwrap()
}

fn text(s: &str) -> Part {
    Part::Text(Text::plain(s))
}

fn result(id: &str, t: &str) -> Part {
    Part::ToolResult(ToolResult {
        call_id: id.into(),
        content: vec![text(t)],
        is_error: false,
    })
}

fn call(id: &str, name: &str, args: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    })
}

// ---------------- decode ----------------

#[test]
fn decodes_a_minimal_request() {
    let r = decode_ok(with(json!({})));
    assert_eq!(r.model, "gpt-4o");
    assert_eq!(r.messages, vec![Message::user(vec![text("hi")])]);
    assert!(!r.stream);
}

#[test]
fn rejects_bad_bodies() {
    assert!(decode_request(b"{", &TranslateOptions::default()).is_err());
    assert!(decode_request(b"[]", &TranslateOptions::default()).is_err());
    assert_eq!(param_of(json!({"messages": []})), "model");
    assert_eq!(param_of(json!({"model": "m"})), "messages");
    assert_eq!(param_of(json!({"model": 3, "messages": []})), "model");
    assert_eq!(
        param_of(msgs(json!([{"role": "wizard", "content": "x"}]))),
        "messages[0].role"
    );
    assert_eq!(
        param_of(msgs(json!([{"role": "user"}]))),
        "messages[0].content"
    );
    assert_eq!(
        param_of(msgs(json!([{"role": "user", "content": 5}]))),
        "messages[0].content"
    );
}

#[test]
fn hoists_system_and_developer_messages_in_order() {
    let r = decode_ok(msgs(json!([
        {"role": "system", "content": "a"},
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
        {"role": "assistant", "content": "ok"},
    ])));
    assert_eq!(r.system, vec![text("a"), text("b"), text("c")]);
    assert_eq!(
        r.messages,
        vec![
            Message::user(vec![text("hi")]),
            Message::assistant(vec![text("ok")])
        ]
    );
}

#[test]
fn decodes_user_parts_and_images() {
    let r = decode_ok(msgs(json!([{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
        {"type": "image_url", "image_url": "https://x/z.png"},
    ]}])));
    assert_eq!(
        r.messages[0].content,
        vec![
            text("look"),
            Part::Image(Image {
                source: ImageSource::Url("https://x/y.png".into()),
                detail: Some("high".into())
            }),
            Part::Image(Image {
                source: ImageSource::Base64 {
                    media_type: "image/jpeg".into(),
                    data: "QUJD".into()
                },
                detail: None
            }),
            Part::Image(Image {
                source: ImageSource::Url("https://x/z.png".into()),
                detail: None
            }),
        ]
    );
}

#[test]
fn rejects_data_urls_that_are_not_base64() {
    let p = param_of(msgs(json!([{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
    ]}])));
    assert_eq!(p, "messages[0].content[0].image_url.url");
    assert_eq!(super::request_decode::parse_data_url(";base64,AA"), None);
    assert!(super::request_decode::parse_data_url("image/png;BASE64,AA").is_some());
}

#[test]
fn audio_and_file_parts_are_untranslatable_unless_dropped() {
    for part in [
        json!({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}),
        json!({"type": "file", "file": {"file_id": "f"}}),
        json!({"type": "video", "video": {}}),
    ] {
        let body =
            msgs(json!([{"role": "user", "content": [{"type": "text", "text": "t"}, part]}]));
        assert_eq!(param_of(body.clone()), "messages[0].content[1]");
        let opts = TranslateOptions {
            drop: vec!["messages".into()],
        };
        let r = decode_request(body.to_string().as_bytes(), &opts).unwrap();
        assert_eq!(r.messages[0].content, vec![text("t")]);
    }
}

#[test]
fn images_are_refused_outside_user_messages() {
    let p = param_of(msgs(json!([{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://x"}}]}])));
    assert_eq!(p, "messages[0].content[0]");
}

#[test]
fn keeps_cache_control_on_text_parts() {
    let r = decode_ok(msgs(json!([{"role": "user", "content": [
        {"type": "text", "text": "t", "cache_control": {"type": "ephemeral"}}]}])));
    assert_eq!(
        r.messages[0].content,
        vec![Part::Text(Text {
            text: "t".into(),
            cache_control: Some(json!({"type": "ephemeral"}))
        })]
    );
}

#[test]
fn decodes_assistant_turns() {
    let r = decode_ok(msgs(json!([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "reasoning_content": "think",
         "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": {"b":2}}},
         ]},
        {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}],
         "reasoning": "r2"},
        {"role": "assistant", "content": "", "refusal": "won't"},
    ])));
    assert_eq!(
        r.messages[1].content,
        vec![
            Part::Thinking {
                text: "think".into(),
                signature: None
            },
            call("c1", "f", "{\"a\": 1}"),
            call("c2", "g", "{\"b\":2}"),
        ]
    );
    assert_eq!(
        r.messages[2].content,
        vec![
            Part::Thinking {
                text: "r2".into(),
                signature: None
            },
            text("x"),
            text("no")
        ]
    );
    assert_eq!(r.messages[3].content, vec![text("won't")]);
}

#[test]
fn merges_consecutive_tool_messages_only() {
    let r = decode_ok(msgs(json!([
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "ra"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "rb"}]},
        {"role": "user", "content": "more"},
        {"role": "tool", "tool_call_id": "c", "content": ""},
    ])));
    assert_eq!(r.messages.len(), 5);
    assert_eq!(
        r.messages[2],
        Message::user(vec![result("a", "ra"), result("b", "rb")])
    );
    assert_eq!(r.messages[3], Message::user(vec![text("more")]));
    assert_eq!(
        r.messages[4],
        Message::user(vec![Part::ToolResult(ToolResult {
            call_id: "c".into(),
            content: vec![],
            is_error: false
        })])
    );
}

#[test]
fn tool_messages_need_an_id_and_text() {
    assert_eq!(
        param_of(msgs(json!([{"role": "tool", "content": "x"}]))),
        "messages[0].tool_call_id"
    );
    assert_eq!(
        param_of(msgs(
            json!([{"role": "tool", "tool_call_id": "a", "content": [
            {"type": "image_url", "image_url": {"url": "https://x"}}]}])
        )),
        "messages[0].content[0]"
    );
}

#[test]
fn legacy_and_named_messages_are_untranslatable() {
    assert_eq!(
        param_of(msgs(
            json!([{"role": "function", "name": "f", "content": "x"}])
        )),
        "messages[0].name"
    );
    assert_eq!(
        param_of(msgs(json!([{"role": "function", "content": "x"}]))),
        "messages[0].role"
    );
    assert_eq!(
        param_of(msgs(
            json!([{"role": "user", "name": "bob", "content": "x"}])
        )),
        "messages[0].name"
    );
    assert_eq!(
        param_of(msgs(json!([{"role": "assistant", "content": "x",
            "function_call": {"name": "f", "arguments": "{}"}}]))),
        "messages[0].function_call"
    );
    assert_eq!(
        param_of(msgs(
            json!([{"role": "assistant", "content": "x", "audio": {"id": "a"}}])
        )),
        "messages[0].audio"
    );
    assert_eq!(
        param_of(msgs(json!([{"role": "user", "content": "x", "weird": 1}]))),
        "messages[0].weird"
    );
    // null counts as absent.
    decode_ok(msgs(
        json!([{"role": "user", "name": null, "content": "x"}]),
    ));
}

#[test]
fn decodes_top_level_parameters() {
    let r = decode_ok(with(json!({
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "temperature": 0.5,
        "top_p": 1,
        "stop": "END",
        "parallel_tool_calls": false,
        "reasoning_effort": "high",
        "user": "u1",
        "seed": -3,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
        "n": 1, "logprobs": false, "logit_bias": {}, "modalities": ["text"], "top_logprobs": null,
        "store": true, "metadata": {"a": "b"}, "service_tier": "auto",
        "prompt_cache_key": "k", "safety_identifier": "s",
    })));
    assert!(r.stream && r.include_usage);
    assert_eq!(r.max_tokens, Some(20));
    assert_eq!(
        r.temperature,
        Some(serde_json::Number::from_f64(0.5).unwrap())
    );
    assert_eq!(r.top_p, Some(1.into()));
    assert_eq!(r.stop, vec!["END".to_string()]);
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::High)));
    assert_eq!(r.user.as_deref(), Some("u1"));
    assert_eq!(r.seed, Some(-3));
    assert_eq!(r.presence_penalty, serde_json::Number::from_f64(0.1));
    assert_eq!(r.frequency_penalty, serde_json::Number::from_f64(-0.2));
    let r = decode_ok(with(
        json!({"max_tokens": 7, "stop": ["a", "b"], "reasoning_effort": "none"}),
    ));
    assert_eq!(r.max_tokens, Some(7));
    assert_eq!(r.stop, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(r.reasoning, Some(Reasoning::Disabled));
    let r = decode_ok(with(json!({"reasoning_effort": "minimal", "top_k": 5})));
    assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::Minimal)));
    assert_eq!(r.top_k, Some(5));
}

#[test]
fn rejects_unexpressible_top_level_values() {
    for (extra, field) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"logit_bias": {"1": 5}}), "logit_bias"),
        (
            json!({"prediction": {"type": "content", "content": "x"}}),
            "prediction",
        ),
        (json!({"audio": {"voice": "x"}}), "audio"),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (json!({"web_search_options": {}}), "web_search_options"),
        (json!({"functions": []}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (json!({"frobnicate": 1}), "frobnicate"),
        (json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
        (
            json!({"stream_options": {"bogus": true}}),
            "stream_options.bogus",
        ),
        (json!({"temperature": "hot"}), "temperature"),
        (json!({"max_tokens": -1}), "max_tokens"),
        (json!({"stop": [1]}), "stop[0]"),
    ] {
        assert_eq!(param_of(with(extra.clone())), field, "{extra}");
    }
    // Dropped when the operator allows it.
    let opts = TranslateOptions {
        drop: vec!["n".into(), "frobnicate".into()],
    };
    let body = with(json!({"n": 3, "frobnicate": true}));
    assert!(decode_request(body.to_string().as_bytes(), &opts).is_ok());
}

#[test]
fn decodes_tools_and_tool_choice() {
    let r = decode_ok(with(json!({
        "tools": [
            {"type": "function", "function": {"name": "f", "description": "d",
              "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}, "strict": true}},
            {"type": "function", "function": {"name": "g"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "g"}},
    })));
    assert_eq!(
        r.tools,
        vec![
            Tool {
                name: "f".into(),
                description: Some("d".into()),
                parameters: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                strict: Some(true)
            },
            Tool {
                name: "g".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
                strict: None
            },
        ]
    );
    assert_eq!(r.tool_choice, Some(ToolChoice::Tool("g".into())));
    for (c, want) in [
        ("none", ToolChoice::None),
        ("auto", ToolChoice::Auto),
        ("required", ToolChoice::Required),
    ] {
        assert_eq!(
            decode_ok(with(json!({"tool_choice": c}))).tool_choice,
            Some(want)
        );
    }
    assert_eq!(
        param_of(with(json!({"tool_choice": "sometimes"}))),
        "tool_choice"
    );
    assert_eq!(
        param_of(with(
            json!({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}})
        )),
        "tool_choice"
    );
    assert_eq!(
        param_of(with(
            json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]})
        )),
        "tools[0].type"
    );
    assert_eq!(
        param_of(with(
            json!({"tools": [{"type": "function", "function": {"name": "x", "extra": 1}}]})
        )),
        "tools[0].function.extra"
    );
}

#[test]
fn decodes_response_formats() {
    let rf = |v: Value| decode_ok(with(json!({"response_format": v}))).response_format;
    assert_eq!(rf(json!({"type": "text"})), Some(ResponseFormat::Text));
    assert_eq!(
        rf(json!({"type": "json_object"})),
        Some(ResponseFormat::JsonObject)
    );
    assert_eq!(
        rf(
            json!({"type": "json_schema", "json_schema": {"name": "n", "description": "d",
            "schema": {"type": "object"}, "strict": true}})
        ),
        Some(ResponseFormat::JsonSchema {
            name: Some("n".into()),
            description: Some("d".into()),
            schema: json!({"type": "object"}),
            strict: Some(true)
        })
    );
    assert_eq!(
        param_of(with(
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "n"}}})
        )),
        "response_format.json_schema.schema"
    );
    assert_eq!(
        param_of(with(json!({"response_format": {"type": "yaml"}}))),
        "response_format"
    );
}

// ---------------- encode ----------------

fn base_req() -> ChatRequest {
    ChatRequest {
        model: "client-model".into(),
        messages: vec![Message::user(vec![text("hi")])],
        ..Default::default()
    }
}

#[test]
fn encodes_a_minimal_request_for_the_target_model() {
    let v = encode(&base_req());
    assert_eq!(
        v,
        json!({"model": "target-model", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn encodes_system_as_one_message() {
    let mut req = base_req();
    req.system = vec![text("a")];
    assert_eq!(
        encode(&req)["messages"][0],
        json!({"role": "system", "content": "a"})
    );
    req.system = vec![
        Part::Text(Text {
            text: "a".into(),
            cache_control: Some(json!({"type": "ephemeral"})),
        }),
        text("b"),
    ];
    assert_eq!(
        encode(&req)["messages"][0],
        json!({"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    );
}

#[test]
fn encodes_user_images_and_drops_cache_control() {
    let mut req = base_req();
    req.messages = vec![Message::user(vec![
        Part::Text(Text {
            text: "see".into(),
            cache_control: Some(json!({"type": "ephemeral"})),
        }),
        Part::Image(Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAA=".into(),
            },
            detail: Some("low".into()),
        }),
        Part::Image(Image {
            source: ImageSource::Url("https://x/i.png".into()),
            detail: None,
        }),
    ])];
    assert_eq!(
        encode(&req)["messages"][0]["content"],
        json!([
            {"type": "text", "text": "see"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA=", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
        ])
    );
}

#[test]
fn encodes_assistant_turns_and_drops_thinking() {
    let mut req = base_req();
    req.messages.push(Message::assistant(vec![
        Part::Thinking {
            text: "hmm".into(),
            signature: Some("sig".into()),
        },
        Part::RedactedThinking { data: "x".into() },
        text("Let me "),
        text("check."),
        call("c1", "f", "{\"a\":  1}"),
        call("c2", "g", ""),
    ]));
    req.messages
        .push(Message::assistant(vec![call("c3", "f", "{}")]));
    req.messages.push(Message::assistant(vec![]));
    let v = encode(&req);
    assert_eq!(
        v["messages"][1],
        json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":  1}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}},
        ]})
    );
    assert_eq!(v["messages"][2]["content"], Value::Null);
    assert_eq!(
        v["messages"][3],
        json!({"role": "assistant", "content": ""})
    );
}

#[test]
fn encodes_tool_results_before_the_rest_of_the_user_turn() {
    let mut req = base_req();
    req.messages = vec![Message::user(vec![
        text("first text"),
        result("a", "ra"),
        Part::ToolResult(ToolResult {
            call_id: "b".into(),
            content: vec![text("line1"), text("line2")],
            is_error: true,
        }),
        text("after"),
    ])];
    let v = encode(&req);
    assert_eq!(
        v["messages"],
        json!([
            {"role": "tool", "tool_call_id": "a", "content": "ra"},
            {"role": "tool", "tool_call_id": "b", "content": "[tool error] line1\n\nline2"},
            {"role": "user", "content": [{"type": "text", "text": "first text"}, {"type": "text", "text": "after"}]},
        ])
    );
}

#[test]
fn images_in_tool_results_are_dropped_or_rejected() {
    let mut req = base_req();
    req.messages = vec![
        Message::user(vec![text("q")]),
        Message::user(vec![Part::ToolResult(ToolResult {
            call_id: "a".into(),
            content: vec![
                text("r"),
                Part::Image(Image {
                    source: ImageSource::Url("https://x".into()),
                    detail: None,
                }),
            ],
            is_error: false,
        })]),
    ];
    let e = encode_request(&req, "m", &TranslateOptions::default()).unwrap_err();
    assert_eq!(
        e.param.as_deref(),
        Some("messages[1].content[0].content[1]")
    );
    let opts = TranslateOptions {
        drop: vec!["messages".into()],
    };
    let v: Value = serde_json::from_slice(&encode_request(&req, "m", &opts).unwrap()).unwrap();
    assert_eq!(
        v["messages"][1],
        json!({"role": "tool", "tool_call_id": "a", "content": "r"})
    );
}

#[test]
fn encodes_top_level_parameters() {
    let mut req = base_req();
    req.stream = true;
    req.max_tokens = Some(100);
    req.temperature = serde_json::Number::from_f64(0.7);
    req.top_p = Some(1.into());
    req.stop = vec!["x".into()];
    req.tools = vec![Tool {
        name: "f".into(),
        description: Some("d".into()),
        parameters: json!({"type": "object"}),
        strict: Some(true),
    }];
    req.tool_choice = Some(ToolChoice::Tool("f".into()));
    req.parallel_tool_calls = Some(false);
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: None,
        description: None,
        schema: json!({"type": "object"}),
        strict: None,
    });
    req.reasoning = Some(Reasoning::Budget(3000));
    req.user = Some("u".into());
    req.seed = Some(9);
    req.presence_penalty = Some(1.into());
    req.frequency_penalty = serde_json::Number::from_f64(0.5);
    let v = encode(&req);
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    assert_eq!(v["max_completion_tokens"], 100);
    assert!(v.get("max_tokens").is_none());
    assert_eq!(v["temperature"], 0.7);
    assert_eq!(v["top_p"], 1);
    assert_eq!(v["stop"], json!(["x"]));
    assert_eq!(
        v["tools"],
        json!([{"type": "function", "function": {"name": "f", "description": "d",
            "parameters": {"type": "object"}, "strict": true}}])
    );
    assert_eq!(
        v["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(v["parallel_tool_calls"], false);
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}})
    );
    assert_eq!(v["reasoning_effort"], "low");
    assert_eq!(v["user"], "u");
    assert_eq!(v["seed"], 9);
    assert_eq!(v["presence_penalty"], 1);
    assert_eq!(v["frequency_penalty"], 0.5);

    req.reasoning = Some(Reasoning::Disabled);
    req.tools.clear();
    let v = encode(&req);
    assert!(v.get("reasoning_effort").is_none());
    assert!(
        v.get("parallel_tool_calls").is_none(),
        "only sent with tools"
    );
    req.reasoning = Some(Reasoning::Effort(Effort::Medium));
    req.response_format = Some(ResponseFormat::JsonObject);
    let v = encode(&req);
    assert_eq!(v["reasoning_effort"], "medium");
    assert_eq!(v["response_format"], json!({"type": "json_object"}));
}

#[test]
fn streams_always_ask_for_usage() {
    let mut req = base_req();
    req.stream = true;
    req.include_usage = false;
    assert_eq!(encode(&req)["stream_options"]["include_usage"], true);
    req.stream = false;
    let v = encode(&req);
    assert!(v.get("stream").is_none() && v.get("stream_options").is_none());
}

#[test]
fn top_k_is_dropped_or_rejected() {
    let mut req = base_req();
    req.top_k = Some(40);
    let e = encode_request(&req, "m", &TranslateOptions::default()).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("top_k"));
    let opts = TranslateOptions {
        drop: vec!["top_k".into()],
    };
    let v: Value = serde_json::from_slice(&encode_request(&req, "m", &opts).unwrap()).unwrap();
    assert!(v.get("top_k").is_none());
}

#[test]
fn misplaced_parts_are_rejected() {
    let mut req = base_req();
    req.messages = vec![Message::user(vec![call("c", "f", "{}")])];
    assert_eq!(
        encode_request(&req, "m", &TranslateOptions::default())
            .unwrap_err()
            .param
            .as_deref(),
        Some("messages[0].content[0]")
    );
    req.messages = vec![Message::assistant(vec![Part::Image(Image {
        source: ImageSource::Url("https://x".into()),
        detail: None,
    })])];
    assert!(encode_request(&req, "m", &TranslateOptions::default()).is_err());
}

#[test]
fn decoding_an_encoded_history_gives_it_back() {
    let mut req = base_req();
    req.model = "target-model".into();
    req.system = vec![text("sys")];
    req.messages = vec![
        Message::user(vec![text("q")]),
        Message::assistant(vec![
            text("calling"),
            call("a", "f", "{\"x\":1}"),
            call("b", "f", "{}"),
        ]),
        Message::user(vec![result("a", "1"), result("b", "2")]),
        Message::user(vec![text("and?")]),
        Message::assistant(vec![text("done")]),
    ];
    let body = encode_request(&req, "target-model", &TranslateOptions::default()).unwrap();
    assert_eq!(
        decode_request(&body, &TranslateOptions::default()).unwrap(),
        req
    );
}
