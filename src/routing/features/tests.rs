use super::*;

fn features<'a>(
    endpoint: Endpoint,
    headers: &'a HeaderMap,
    body: &'a [u8],
    fields: &'a BodyFields,
) -> Features<'a> {
    Features::new(endpoint, None, false, headers, body, fields)
}

#[test]
fn chat_tools_images_limits_and_metadata_on_demand() {
    let headers = HeaderMap::new();
    let body = br#"{"model":"m","max_tokens":64,"metadata":{"user_id":"u1","n":3},
        "tools":[{"type":"function","function":{"name":"f"}}],
        "messages":[{"role":"user","content":[{"type":"text","text":"abcdefgh"},
          {"type":"image_url","image_url":{"url":"data:"}}]}]}"#;
    let fields = BodyFields::of(body);
    let f = features(Endpoint::ChatCompletions, &headers, body, &fields);
    assert!(f.params().has_tools && f.prompt().has_images && f.may_have_images());
    assert!(!f.params().json_schema);
    assert_eq!(f.max_tokens(), Some(64));
    assert_eq!(
        f.params().metadata,
        vec![("user_id".to_owned(), "u1".to_owned())]
    );
    assert_eq!(f.prompt().prompt_tokens, 2);
    let plain = br#"{"model":"m","tools":[],"messages":[{"role":"user","content":"hi"}]}"#;
    let fields = BodyFields::of(plain);
    let f = features(Endpoint::ChatCompletions, &headers, plain, &fields);
    assert!(!f.params().has_tools && !f.prompt().has_images && !f.may_have_images());
    assert_eq!(f.max_tokens(), None);
    let schema = br#"{"model":"m","max_completion_tokens":9,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},"messages":[]}"#;
    let fields = BodyFields::of(schema);
    let f = features(Endpoint::ChatCompletions, &headers, schema, &fields);
    assert!(f.params().json_schema);
    assert_eq!(f.max_tokens(), Some(9));
    let object = br#"{"model":"m","response_format":{"type":"json_object"},"messages":[]}"#;
    let fields = BodyFields::of(object);
    let f = features(Endpoint::ChatCompletions, &headers, object, &fields);
    assert!(!f.params().json_schema, "json_object is not a schema");
}

#[test]
fn a_padding_field_is_not_the_prompt() {
    let headers = HeaderMap::new();
    let pad = "x".repeat(100_000);
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"pad":"{pad} image"}}"#
    );
    let fields = BodyFields::of(body.as_bytes());
    let f = features(
        Endpoint::ChatCompletions,
        &headers,
        body.as_bytes(),
        &fields,
    );
    assert!(f.prompt_bytes() < 64, "{}", f.prompt_bytes());
    assert!(
        !f.may_have_images(),
        "the word in the padding does not count"
    );
    assert_eq!(f.prompt().prompt_tokens, 1);
}

#[test]
fn anthropic_system_and_structured_outputs() {
    let headers = HeaderMap::new();
    let body = br#"{"model":"m","max_tokens":10,"system":[{"type":"text","text":"12345678"}],
        "output_format":{"type":"json_schema","schema":{}},
        "messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t",
          "content":[{"type":"image","source":{"type":"base64","data":""}}]}]}]}"#;
    let fields = BodyFields::of(body);
    let f = features(Endpoint::Messages, &headers, body, &fields);
    assert!(f.params().json_schema);
    assert!(f.prompt().has_images, "an image inside a tool result");
    assert_eq!(f.prompt().prompt_tokens, 2);
}

#[test]
fn responses_input_instructions_and_text_format() {
    let headers = HeaderMap::new();
    let body = br#"{"model":"m","instructions":"abcd","input":"efghijkl","max_output_tokens":77,
        "tools":[{"type":"function","name":"f","parameters":{}}],
        "text":{"format":{"type":"json_schema","name":"x","schema":{}}}}"#;
    let fields = BodyFields::of(body);
    let f = features(Endpoint::Responses, &headers, body, &fields);
    assert_eq!(f.prompt().prompt_tokens, 3);
    assert_eq!(f.max_tokens(), Some(77));
    assert!(f.params().has_tools && f.params().json_schema);
    assert!(!f.prompt().has_images);
    let items = br#"{"model":"m","input":[
        {"role":"user","content":[{"type":"input_text","text":"abcd"},
          {"type":"input_image","image_url":"https://x/y.png"}]},
        {"type":"function_call_output","call_id":"c","output":"efgh"}],
        "text":{"format":{"type":"text"}}}"#;
    let fields = BodyFields::of(items);
    let f = features(Endpoint::Responses, &headers, items, &fields);
    assert!(f.prompt().has_images && f.may_have_images());
    assert_eq!(f.prompt().prompt_tokens, 2);
    assert!(!f.params().json_schema && !f.params().has_tools);
}

#[test]
fn gemini_contents_system_instruction_tools_and_generation_config() {
    let headers = HeaderMap::new();
    let body = br#"{"systemInstruction":{"parts":[{"text":"abcd"}]},
        "contents":[{"role":"user","parts":[{"text":"efgh"},
          {"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}],
        "tools":[{"functionDeclarations":[{"name":"f"}]}],
        "generationConfig":{"maxOutputTokens":321,"responseSchema":{"type":"OBJECT"}}}"#;
    let fields = BodyFields::of(body);
    let f = features(Endpoint::GenerateContent, &headers, body, &fields);
    assert_eq!(f.max_tokens(), Some(321));
    assert!(f.params().has_tools && f.params().json_schema);
    assert!(f.prompt().has_images);
    assert_eq!(f.prompt().prompt_tokens, 2);
    let snake = br#"{"system_instruction":{"parts":[{"text":"abcd"}]},
        "contents":[{"parts":[{"inline_data":{"mime_type":"audio/wav","data":"AAAA"}}]}],
        "tools":[{"googleSearch":{}}],
        "generation_config":{"max_output_tokens":5}}"#;
    let fields = BodyFields::of(snake);
    let f = features(Endpoint::GenerateContent, &headers, snake, &fields);
    assert_eq!(f.max_tokens(), Some(5));
    assert!(
        !f.params().has_tools,
        "a built-in tool declares no function"
    );
    assert!(!f.params().json_schema);
    assert!(!f.prompt().has_images, "audio is not an image");
    assert_eq!(f.prompt().prompt_tokens, 1);
}
