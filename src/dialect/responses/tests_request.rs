use super::*;
use crate::dialect::canonical::*;
use serde_json::{json, Value};

fn decode(v: Value) -> ChatRequest {
    decode_request(v.to_string().as_bytes(), &TranslateOptions::default()).unwrap()
}

fn decode_err(v: Value) -> crate::error::GatewayError {
    decode_request(v.to_string().as_bytes(), &TranslateOptions::default()).unwrap_err()
}

#[test]
fn a_string_input_with_instructions_is_one_user_turn_and_a_system_prompt() {
    let r = decode(
        json!({"model": "m", "input": "Hi", "instructions": "Be brief.",
        "max_output_tokens": 50, "temperature": 0.5, "stream": true, "store": false,
        "metadata": {"a": "b"}}),
    );
    assert_eq!(r.system, vec![Part::Text(Text::plain("Be brief."))]);
    assert_eq!(
        r.messages,
        vec![Message::user(vec![Part::Text(Text::plain("Hi"))])]
    );
    assert_eq!(r.max_tokens, Some(50));
    assert!(r.stream);
    assert_eq!(r.temperature.unwrap().to_string(), "0.5");
}

#[test]
fn items_group_into_turns_in_order() {
    let r = decode(json!({"model": "m", "input": [
        {"role": "developer", "content": "Dev rules."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"}
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Think"}],
            "encrypted_content": "sig"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "Sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "noon"}]},
        {"role": "user", "content": "Thanks"}
    ]}));
    assert_eq!(r.system, vec![Part::Text(Text::plain("Dev rules."))]);
    assert_eq!(r.messages.len(), 4);
    assert_eq!(r.messages[0].role, Role::User);
    assert!(matches!(&r.messages[0].content[1], Part::Image(Image {
        source: ImageSource::Base64 { media_type, data }, detail: Some(d)
    }) if media_type == "image/png" && data == "AAAA" && d == "high"));
    let a = &r.messages[1];
    assert_eq!(a.role, Role::Assistant);
    assert_eq!(
        a.content[0],
        Part::Thinking {
            text: "Think".into(),
            signature: Some("sig".into())
        }
    );
    assert_eq!(a.content[1], Part::Text(Text::plain("Let me check.")));
    assert!(
        matches!(&a.content[2], Part::ToolCall(c) if c.id == "c1" && c.arguments == "{\"city\":\"Paris\"}")
    );
    assert!(matches!(&a.content[3], Part::ToolCall(c) if c.name == "get_time"));
    let results = &r.messages[2];
    assert_eq!(results.role, Role::User);
    assert_eq!(results.content.len(), 2, "one turn of tool results");
    assert!(
        matches!(&results.content[1], Part::ToolResult(t) if t.call_id == "c2"
        && t.content == vec![Part::Text(Text::plain("noon"))])
    );
    assert_eq!(
        r.messages[3],
        Message::user(vec![Part::Text(Text::plain("Thanks"))])
    );
}

#[test]
fn tools_choice_format_and_reasoning() {
    let r = decode(json!({"model": "m", "input": "x",
        "tools": [{"type": "function", "name": "f", "description": "d",
            "parameters": {"type": "object", "properties": {}}, "strict": true}],
        "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "high", "summary": "auto"},
        "include": ["reasoning.encrypted_content"]}));
    assert_eq!(r.tools[0].name, "f");
    assert_eq!(r.tools[0].strict, Some(true));
    assert_eq!(r.tool_choice, Some(ToolChoice::Tool("f".into())));
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert!(
        matches!(&r.response_format, Some(ResponseFormat::JsonSchema { name: Some(n), .. }) if n == "out")
    );
    assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::High)));
    let r = decode(json!({"model": "m", "input": "x", "reasoning": {"effort": "none"}}));
    assert_eq!(r.reasoning, Some(Reasoning::Disabled));
}

#[test]
fn built_in_tools_and_unknown_fields_are_400s_naming_them() {
    let e = decode_err(json!({"model": "m", "input": "x", "tools": [
        {"type": "function", "name": "f"}, {"type": "web_search_preview"}]}));
    assert_eq!(e.status(), 400);
    assert_eq!(e.param.as_deref(), Some("tools[1]"));
    assert!(e.message.contains("web_search_preview"), "{}", e.message);
    for (body, param) in [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]}),
            "tools[0]",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "computer_use_preview"}]}),
            "tools[0]",
        ),
        (
            json!({"model": "m", "input": "x", "frobnicate": 1}),
            "frobnicate",
        ),
        (
            json!({"model": "m", "input": [{"type": "web_search_call", "id": "w"}]}),
            "input[0]",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "w"}]}),
            "input[0]",
        ),
        (
            json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"verbosity": "low"}}),
            "text.verbosity",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0]",
        ),
        (json!({"model": "m"}), "input"),
        (json!({"input": "x"}), "model"),
    ] {
        let e = decode_err(body.clone());
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
    // An operator may drop what cannot be expressed.
    let opts = TranslateOptions {
        drop: vec!["tools".into()],
    };
    let body = json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}]});
    let r = decode_request(body.to_string().as_bytes(), &opts).unwrap();
    assert_eq!(r.tools.len(), 1);
}

#[test]
fn requests_round_trip_through_the_encoder() {
    let body = json!({"model": "m", "instructions": "Sys", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Q"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "T"}], "encrypted_content": "s"},
        {"type": "reasoning", "summary": [], "encrypted_content": "sy-redacted:opaque"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A", "annotations": []}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "R"}
    ], "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
       "tool_choice": "required", "max_output_tokens": 9, "stream": true,
       "text": {"format": {"type": "json_object"}}, "reasoning": {"effort": "low"}});
    let opts = TranslateOptions::default();
    let first = decode(body);
    let encoded = encode_request(&first, "m", &opts).unwrap();
    let again = decode_request(&encoded, &opts).unwrap();
    assert_eq!(first, again);
    assert!(
        matches!(&first.messages[1].content[1], Part::RedactedThinking { data } if data == "opaque")
    );
}
