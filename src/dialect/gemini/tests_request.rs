//! Tests of request encoding (canonical -> Gemini) and decoding (Gemini -> canonical).

use serde_json::{json, Value};

use super::{decode_request, encode_request, path_for};
use crate::dialect::canonical::*;

fn enc(req: &ChatRequest) -> Value {
    let body = encode_request(req, "gemini-2.5-flash", &TranslateOptions::default()).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn enc_err(req: &ChatRequest) -> crate::error::GatewayError {
    encode_request(req, "m", &TranslateOptions::default()).unwrap_err()
}

fn dropping(field: &str) -> TranslateOptions {
    TranslateOptions {
        drop: vec![field.into()],
    }
}

fn text(s: &str) -> Part {
    Part::Text(Text::plain(s))
}

fn call(id: &str, name: &str, args: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    })
}

fn result(id: &str, body: &str, is_error: bool) -> Part {
    Part::ToolResult(ToolResult {
        call_id: id.into(),
        content: vec![text(body)],
        is_error,
    })
}

fn dec(v: Value) -> ChatRequest {
    decode_request(v.to_string().as_bytes(), &TranslateOptions::default()).unwrap()
}

fn dec_err(v: Value) -> crate::error::GatewayError {
    decode_request(v.to_string().as_bytes(), &TranslateOptions::default()).unwrap_err()
}

#[test]
fn paths() {
    assert_eq!(
        path_for("gemini-2.5-flash", false),
        "/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        path_for("gemini-2.5-flash", true),
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        path_for("models/gemini-2.0_x~1", false),
        "/models/gemini-2.0_x~1:generateContent"
    );
    assert_eq!(
        path_for("a/../b?c#d é", false),
        "/models/a%2F..%2Fb%3Fc%23d%20%C3%A9:generateContent"
    );
}

#[test]
fn system_history_and_roles() {
    let req = ChatRequest {
        model: "ignored".into(),
        system: vec![text("be brief"), text(""), text("be kind")],
        messages: vec![
            Message::user(vec![text("hi")]),
            Message::assistant(vec![text("hello")]),
            Message::user(vec![text(""), text("bye")]),
        ],
        stream: true,
        include_usage: true,
        user: Some("u-1".into()),
        ..Default::default()
    };
    assert_eq!(
        enc(&req),
        json!({
            "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "be kind"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "hello"}]},
                {"role": "user", "parts": [{"text": "bye"}]},
            ],
        })
    );
}

#[test]
fn empty_and_thinking_only_messages_are_dropped() {
    let req = ChatRequest {
        messages: vec![
            Message::user(vec![text("q")]),
            Message::assistant(vec![
                Part::Thinking {
                    text: "hmm".into(),
                    signature: Some("sig".into()),
                },
                Part::RedactedThinking { data: "x".into() },
            ]),
            Message::assistant(vec![]),
            Message::user(vec![text("again")]),
        ],
        ..Default::default()
    };
    let v = enc(&req);
    assert_eq!(v["contents"].as_array().unwrap().len(), 2);
    assert_eq!(v["contents"][1]["parts"][0]["text"], "again");
    assert!(v.get("systemInstruction").is_none());
    assert!(v.get("generationConfig").is_none());
}

#[test]
fn images_inline_and_url() {
    let b64 = Part::Image(Image {
        source: ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "iVBOR".into(),
        },
        detail: Some("low".into()),
    });
    let url = Part::Image(Image {
        source: ImageSource::Url("https://x/y.png".into()),
        detail: None,
    });
    let req = ChatRequest {
        messages: vec![Message::user(vec![text("see"), b64.clone()])],
        ..Default::default()
    };
    assert_eq!(
        enc(&req)["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBOR"}})
    );
    let req = ChatRequest {
        messages: vec![
            Message::user(vec![text("a")]),
            Message::user(vec![text("see"), url]),
        ],
        ..Default::default()
    };
    let e = enc_err(&req);
    assert_eq!(e.status(), 400);
    assert_eq!(e.param.as_deref(), Some("messages[1].content[1]"));
    assert!(e.message.contains("Gemini cannot fetch image URLs"));
    // Dropped when the operator allows it.
    let body = encode_request(&req, "m", &dropping("messages")).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["contents"][1]["parts"], json!([{"text": "see"}]));
}

#[test]
fn tool_calls_and_results() {
    let req = ChatRequest {
        messages: vec![
            Message::user(vec![text("weather?")]),
            Message::assistant(vec![
                text("checking"),
                call("c1", "get_weather", r#"{"city":"Paris"}"#),
                call("c2", "get_time", ""),
            ]),
            Message::user(vec![
                result("c1", "sunny", false),
                result("c2", r#"{"h": 12}"#, false),
            ]),
            Message::assistant(vec![call("c3", "get_weather", r#"{"city":"X"}"#)]),
            Message::user(vec![result("c3", "no such city", true)]),
        ],
        ..Default::default()
    };
    let v = enc(&req);
    assert_eq!(
        v["contents"][1]["parts"],
        json!([
            {"text": "checking"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ])
    );
    assert_eq!(
        v["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
            {"functionResponse": {"name": "get_time", "response": {"output": {"h": 12}}}},
        ])
    );
    assert_eq!(
        v["contents"][4]["parts"][0],
        json!({"functionResponse": {"name": "get_weather", "response": {"error": "no such city"}}})
    );
}

#[test]
fn tool_result_errors() {
    // Unknown call id.
    let req = ChatRequest {
        messages: vec![Message::user(vec![text("x"), result("nope", "r", false)])],
        ..Default::default()
    };
    assert_eq!(
        enc_err(&req).param.as_deref(),
        Some("messages[0].content[1]")
    );
    // Bad arguments JSON.
    let req = ChatRequest {
        messages: vec![Message::assistant(vec![call("c", "f", "{oops")])],
        ..Default::default()
    };
    let e = enc_err(&req);
    assert_eq!(e.status(), 400);
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].arguments"));
    let req = ChatRequest {
        messages: vec![Message::assistant(vec![call("c", "f", "[1]")])],
        ..Default::default()
    };
    assert_eq!(enc_err(&req).status(), 400);
    // An image in a tool result.
    let req = ChatRequest {
        messages: vec![
            Message::assistant(vec![call("c", "f", "{}")]),
            Message::user(vec![Part::ToolResult(ToolResult {
                call_id: "c".into(),
                content: vec![
                    text("a"),
                    Part::Image(Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "AA".into(),
                        },
                        detail: None,
                    }),
                    text("b"),
                ],
                is_error: false,
            })]),
        ],
        ..Default::default()
    };
    assert_eq!(
        enc_err(&req).param.as_deref(),
        Some("messages[1].content[0].content[1]")
    );
    let body = encode_request(&req, "m", &dropping("messages")).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["contents"][1]["parts"][0]["functionResponse"]["response"],
        json!({"output": "a\nb"})
    );
}

#[test]
fn tools_and_tool_choice() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"], "additionalProperties": false});
    let tools = vec![
        Tool {
            name: "get_weather".into(),
            description: Some("Weather".into()),
            parameters: schema.clone(),
            strict: Some(true),
        },
        Tool {
            name: "noop".into(),
            description: None,
            parameters: Value::Null,
            strict: None,
        },
    ];
    let mut req = ChatRequest {
        messages: vec![Message::user(vec![text("hi")])],
        tools,
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        ..Default::default()
    };
    let v = enc(&req);
    assert_eq!(
        v["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather", "parametersJsonSchema": schema},
            {"name": "noop"},
        ]}])
    );
    assert_eq!(
        v["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    for (choice, want) in [
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (
            ToolChoice::Tool("noop".into()),
            json!({"mode": "ANY", "allowedFunctionNames": ["noop"]}),
        ),
    ] {
        req.tool_choice = Some(choice);
        assert_eq!(enc(&req)["toolConfig"]["functionCallingConfig"], want);
    }
    req.parallel_tool_calls = Some(false);
    assert_eq!(enc_err(&req).param.as_deref(), Some("parallel_tool_calls"));
    assert!(encode_request(&req, "m", &dropping("parallel_tool_calls")).is_ok());
}

#[test]
fn generation_config() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    let mut req = ChatRequest {
        messages: vec![Message::user(vec![text("hi")])],
        max_tokens: Some(100),
        temperature: number(&json!(0.5)),
        top_p: number(&json!(0.9)),
        top_k: Some(40),
        stop: vec!["END".into(), "STOP".into()],
        seed: Some(-7),
        presence_penalty: number(&json!(0.1)),
        frequency_penalty: number(&json!(-0.2)),
        response_format: Some(ResponseFormat::JsonObject),
        reasoning: Some(Reasoning::Budget(2000)),
        ..Default::default()
    };
    assert_eq!(
        enc(&req)["generationConfig"],
        json!({
            "maxOutputTokens": 100, "temperature": 0.5, "topP": 0.9, "topK": 40,
            "stopSequences": ["END", "STOP"], "seed": -7, "presencePenalty": 0.1,
            "frequencyPenalty": -0.2, "responseMimeType": "application/json",
            "thinkingConfig": {"thinkingBudget": 2000, "includeThoughts": true},
        })
    );
    req = ChatRequest {
        messages: req.messages,
        response_format: Some(ResponseFormat::JsonSchema {
            name: Some("out".into()),
            description: None,
            schema: schema.clone(),
            strict: Some(true),
        }),
        reasoning: Some(Reasoning::Effort(Effort::High)),
        ..Default::default()
    };
    assert_eq!(
        enc(&req)["generationConfig"],
        json!({
            "responseMimeType": "application/json", "responseJsonSchema": schema,
            "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true},
        })
    );
    req.response_format = Some(ResponseFormat::Text);
    req.reasoning = Some(Reasoning::Disabled);
    assert_eq!(
        enc(&req)["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 0}})
    );
}

#[test]
fn decodes_a_full_request() {
    let req = dec(json!({
        "systemInstruction": {"role": "system", "parts": [{"text": "sys"}]},
        "contents": [
            {"parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/jpeg", "data": "AAA"}},
                       {"fileData": {"mimeType": "image/png", "fileUri": "https://x/a.png"}}]},
            {"role": "model", "parts": [
                {"text": "think", "thought": true, "thoughtSignature": "sig"},
                {"functionCall": {"name": "f", "args": {"a": 1}}},
                {"functionCall": {"name": "g"}},
                {"functionCall": {"name": "f", "args": {"a": 2}, "id": "own"}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"output": "one"}}},
                {"functionResponse": {"name": "g", "response": {"error": {"why": "x"}}}},
                {"functionResponse": {"name": "f", "id": "own", "response": {"a": 1, "b": 2}}},
            ]},
        ],
        "tools": [{"functionDeclarations": [
            {"name": "f", "description": "F", "parametersJsonSchema": {"type": "object"}},
            {"name": "g", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}}},
            {"name": "h"},
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generation_config": {
            "max_output_tokens": 9, "temperature": 1, "topP": 0.5, "topK": 3, "seed": 4,
            "stopSequences": ["x"], "presencePenalty": 0.25, "frequencyPenalty": 0.5,
            "responseMimeType": "application/json", "candidateCount": 1,
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": true},
        },
        "labels": {"team": "a"},
    }));
    assert_eq!(req.system, vec![text("sys")]);
    assert_eq!(req.messages.len(), 3);
    assert_eq!(req.messages[0].role, Role::User);
    assert_eq!(
        req.messages[0].content[2],
        Part::Image(Image {
            source: ImageSource::Url("https://x/a.png".into()),
            detail: None
        })
    );
    assert_eq!(
        req.messages[1].content,
        vec![
            Part::Thinking {
                text: "think".into(),
                signature: Some("sig".into())
            },
            call("call_0", "f", r#"{"a":1}"#),
            call("call_1", "g", "{}"),
            call("own", "f", r#"{"a":2}"#),
        ]
    );
    assert_eq!(
        req.messages[2].content,
        vec![
            result("call_0", "one", false),
            result("call_1", r#"{"why":"x"}"#, true),
            result("own", r#"{"a":1,"b":2}"#, false),
        ]
    );
    assert_eq!(req.tools[1].parameters["properties"]["x"]["type"], "string");
    assert_eq!(req.tools[1].parameters["type"], "object");
    assert_eq!(
        req.tools[2].parameters,
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("f".into())));
    assert_eq!(req.max_tokens, Some(9));
    assert_eq!(req.temperature, number(&json!(1)));
    assert_eq!(req.top_k, Some(3));
    assert_eq!(req.seed, Some(4));
    assert_eq!(req.stop, vec!["x".to_string()]);
    assert_eq!(req.reasoning, Some(Reasoning::Budget(512)));
    assert!(matches!(
        req.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
}

#[test]
fn decodes_choices_and_thinking_variants() {
    let base = |config: Value, tool: Value| {
        dec(json!({"contents": [], "generationConfig": config, "toolConfig": tool}))
    };
    let r = base(
        json!({"thinkingConfig": {"thinkingBudget": 0}, "responseMimeType": "application/json"}),
        json!({"functionCallingConfig": {"mode": "any"}}),
    );
    assert_eq!(r.reasoning, Some(Reasoning::Disabled));
    assert_eq!(r.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(r.tool_choice, Some(ToolChoice::Required));
    let r = base(
        json!({"thinkingConfig": {"thinkingBudget": -1}, "responseMimeType": "text/plain"}),
        json!({"functionCallingConfig": {"mode": "NONE"}}),
    );
    assert_eq!(r.reasoning, None);
    assert_eq!(r.response_format, Some(ResponseFormat::Text));
    assert_eq!(r.tool_choice, Some(ToolChoice::None));
    let r = base(
        json!({"thinkingConfig": {"thinkingLevel": "HIGH"}}),
        json!({"functionCallingConfig": {}}),
    );
    assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::High)));
    assert_eq!(r.tool_choice, None);
}

#[test]
fn decode_rejections() {
    let cases = [
        (
            json!({"contents": [], "safetySettings": []}),
            "safetySettings",
        ),
        (
            json!({"contents": [], "cachedContent": "c/1"}),
            "cachedContent",
        ),
        (json!({"contents": [], "bogus": 1}), "bogus"),
        (json!({}), "contents"),
        (json!({"contents": {}}), "contents"),
        (
            json!({"contents": [{"role": "x", "parts": []}]}),
            "contents[0].role",
        ),
        (
            json!({"contents": [{"parts": [{}]}]}),
            "contents[0].parts[0]",
        ),
        (
            json!({"contents": [{"parts": [{"executableCode": {}}]}]}),
            "contents[0].parts[0].executableCode",
        ),
        (
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "A"}}]}]}),
            "contents[0].parts[0].inlineData",
        ),
        (
            json!({"contents": [{"parts": [{"fileData": {"mimeType": "image/png", "fileUri": "gs://b/o"}}]}]}),
            "contents[0].parts[0].fileData",
        ),
        (
            json!({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}),
            "contents[0].parts[0].functionResponse",
        ),
        (
            json!({"contents": [{"parts": [{"functionCall": {"name": "f", "args": [1]}}]}]}),
            "contents[0].parts[0].functionCall.args",
        ),
        (
            json!({"contents": [], "tools": [{"googleSearch": {}}]}),
            "tools[0].googleSearch",
        ),
        (
            json!({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}}}),
            "toolConfig.functionCallingConfig.allowedFunctionNames",
        ),
        (
            json!({"contents": [], "generationConfig": {"candidateCount": 2}}),
            "generationConfig.candidateCount",
        ),
        (
            json!({"contents": [], "generationConfig": {"responseModalities": ["AUDIO"]}}),
            "generationConfig.responseModalities",
        ),
        (
            json!({"contents": [], "generationConfig": {"responseMimeType": "text/x.enum"}}),
            "generationConfig.responseMimeType",
        ),
        (
            json!({"contents": [], "generationConfig": {"topK": -1}}),
            "generationConfig.topK",
        ),
        (
            json!({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingBudget": -5}}}),
            "generationConfig.thinkingConfig.thinkingBudget",
        ),
        (
            json!({"contents": [], "systemInstruction": {"parts": [{"inlineData": {}}]}}),
            "systemInstruction.parts[0]",
        ),
    ];
    for (body, param) in cases {
        let e = dec_err(body.clone());
        assert_eq!(e.status(), 400, "{body}");
        assert_eq!(e.param.as_deref(), Some(param), "{body}");
    }
    assert_eq!(
        decode_request(b"not json", &TranslateOptions::default())
            .unwrap_err()
            .status(),
        400
    );
    assert!(decode_request(b"[]", &TranslateOptions::default()).is_err());
}

#[test]
fn decode_drops_what_the_operator_allows() {
    let body = json!({"contents": [], "safetySettings": [], "bogus": 1,
                      "generationConfig": {"responseModalities": ["TEXT"]}});
    let opts = TranslateOptions {
        drop: vec![
            "safetySettings".into(),
            "bogus".into(),
            "responseModalities".into(),
        ],
    };
    assert!(decode_request(body.to_string().as_bytes(), &opts).is_ok());
}
