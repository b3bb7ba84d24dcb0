//! Cross-dialect requests through the real binary and the mock provider: an OpenAI client
//! calling Anthropic and Gemini-native targets, an Anthropic client calling OpenAI and Gemini
//! targets, streamed and not, with tools, parallel tools, thinking, usage and errors.
//!
//! The mock's answers are deterministic, so a translated answer is compared with the answer
//! the same target gives a client of its own dialect (or of the other dialect).

mod common;
use common::*;
use serde_json::{json, Value};

const OPENAI: &str = "/v1/chat/completions";
const ANTHROPIC: &str = "/v1/messages";

/// `(event name, data JSON or raw text)` of each SSE event in a body.
fn sse_events(body: &[u8]) -> Vec<(Option<String>, String)> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            (name, data)
        })
        .collect()
}

fn openai_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}
    ])
}

fn anthropic_tools() -> Value {
    json!([
        {"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}},
        {"name": "get_time", "description": "Time in a zone",
            "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}
    ])
}

fn openai_post(s: &mut std::net::TcpStream, body: &Value, extra: &[(&str, &str)]) -> RawResponse {
    let auth = bearer();
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    roundtrip(s, "POST", OPENAI, &h, body.to_string().as_bytes())
}

fn anthropic_post(
    s: &mut std::net::TcpStream,
    body: &Value,
    extra: &[(&str, &str)],
) -> RawResponse {
    let mut h = vec![("x-api-key", GW_KEY), ("anthropic-version", "2023-06-01")];
    h.extend_from_slice(extra);
    roundtrip(s, "POST", ANTHROPIC, &h, body.to_string().as_bytes())
}

/// Tool calls `(name, arguments text)` of an OpenAI chat stream, reassembled from its deltas,
/// and the finish reason; asserts the stream is well-formed.
fn openai_stream_calls(body: &[u8]) -> (Vec<(String, String)>, String, Vec<Value>) {
    let events = sse_events(body);
    assert_eq!(
        events.last().map(|e| e.1.as_str()),
        Some("[DONE]"),
        "{events:?}"
    );
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut finish = String::new();
    let mut chunks = Vec::new();
    for (_, data) in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        assert!(v.get("error").is_none(), "error chunk: {v}");
        assert_eq!(v["object"], "chat.completion.chunk", "{v}");
        if let Some(choice) = v["choices"].get(0) {
            for tc in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = tc["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    assert!(
                        tc["id"].is_string(),
                        "first delta of a call has its id: {tc}"
                    );
                    calls.push((
                        tc["function"]["name"].as_str().unwrap().to_owned(),
                        String::new(),
                    ));
                }
                if let Some(a) = tc["function"]["arguments"].as_str() {
                    calls[i].1.push_str(a);
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = f.to_owned();
            }
        }
        chunks.push(v);
    }
    (calls, finish, chunks)
}

/// Tool uses `(name, partial_json concatenated)` of an Anthropic stream, the stop reason and
/// the final usage; asserts the event sequence is well-formed.
fn anthropic_stream_calls(body: &[u8]) -> (Vec<(String, String)>, String, Value, String) {
    let events = sse_events(body);
    let names: Vec<&str> = events.iter().filter_map(|e| e.0.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let mut open: Option<usize> = None;
    let mut calls = Vec::new();
    let mut stop = String::new();
    let mut usage = Value::Null;
    let mut text = String::new();
    for (name, data) in &events {
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        assert_eq!(v["type"].as_str(), name.as_deref(), "{v}");
        match name.as_deref() {
            Some("content_block_start") => {
                assert!(open.is_none(), "a block started while another was open");
                open = Some(v["index"].as_u64().unwrap() as usize);
                if v["content_block"]["type"] == "tool_use" {
                    calls.push((
                        v["content_block"]["name"].as_str().unwrap().to_owned(),
                        String::new(),
                    ));
                }
            }
            Some("content_block_delta") => {
                assert_eq!(open, Some(v["index"].as_u64().unwrap() as usize));
                match v["delta"]["type"].as_str() {
                    Some("input_json_delta") => calls
                        .last_mut()
                        .unwrap()
                        .1
                        .push_str(v["delta"]["partial_json"].as_str().unwrap()),
                    Some("text_delta") => text.push_str(v["delta"]["text"].as_str().unwrap()),
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                assert_eq!(open.take(), Some(v["index"].as_u64().unwrap() as usize));
            }
            Some("message_delta") => {
                stop = v["delta"]["stop_reason"].as_str().unwrap_or("").to_owned();
                usage = v["usage"].clone();
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "a block was left open");
    (calls, stop, usage, text)
}

#[test]
fn openai_client_gets_openai_answers_from_anthropic_and_gemini_targets() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    for model in ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"] {
        let body = json!({"model": model, "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]});
        let r = openai_post(&mut s, &body, &[("x-mock-cached-tokens", "7")]);
        assert_eq!(
            r.status,
            200,
            "{model}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["object"], "chat.completion", "{v}");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert!(!v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        // OpenAI counts cached tokens inside prompt_tokens.
        assert_eq!(
            v["usage"]["prompt_tokens_details"]["cached_tokens"], 7,
            "{v}"
        );
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 7);
        let cost = r.header("x-switchyard-cost-usd").unwrap();
        assert!(
            cost.parse::<f64>().unwrap() > 0.0,
            "{model}: priced, got {cost}"
        );
    }
}

#[test]
fn anthropic_client_gets_anthropic_answers_from_openai_and_gemini_targets() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    for model in ["openai/gpt-4o-mini", "gemini/gemini-2.5-flash"] {
        let body = json!({"model": model, "max_tokens": 50, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Say hello"}]});
        let r = anthropic_post(&mut s, &body, &[("x-mock-cached-tokens", "5")]);
        assert_eq!(
            r.status,
            200,
            "{model}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["type"], "message", "{v}");
        assert_eq!(v["content"][0]["type"], "text");
        assert_eq!(v["stop_reason"], "end_turn");
        // Anthropic counts cache reads beside input_tokens.
        assert_eq!(v["usage"]["cache_read_input_tokens"], 5, "{v}");
        assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
        assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }
}

#[test]
fn streamed_text_matches_the_whole_answer_across_dialects() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let base = json!({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 50,
        "messages": [{"role": "user", "content": "Say hello"}]});
    let whole = openai_post(&mut s, &base, &[]).json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut streamed = base.clone();
    streamed["stream"] = json!(true);
    let r = openai_post(&mut s, &streamed, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let (_, finish, chunks) = openai_stream_calls(&r.body);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, whole);
    assert_eq!(finish, "stop");
    // The client did not ask for usage: no usage-only chunk.
    assert!(chunks
        .iter()
        .all(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty())));

    // With include_usage, the last chunk before [DONE] carries usage and no choices.
    streamed["stream_options"] = json!({"include_usage": true});
    let r = openai_post(&mut s, &streamed, &[]);
    let (_, _, chunks) = openai_stream_calls(&r.body);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{last}");
    assert!(
        last["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{last}"
    );

    // Anthropic client, OpenAI and Gemini targets: text_deltas add up to the whole answer.
    for model in ["openai/gpt-4o-mini", "gemini/gemini-2.5-flash"] {
        let base = json!({"model": model, "max_tokens": 50,
            "messages": [{"role": "user", "content": "Say hello"}]});
        let whole = anthropic_post(&mut s, &base, &[]).json()["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut streamed = base.clone();
        streamed["stream"] = json!(true);
        let r = anthropic_post(&mut s, &streamed, &[]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let (calls, stop, usage, text) = anthropic_stream_calls(&r.body);
        assert!(calls.is_empty());
        assert_eq!(text, whole, "{model}");
        assert_eq!(stop, "end_turn");
        assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
        assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    }
}

#[test]
fn streamed_tool_calls_reassemble_exactly_across_dialects() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let parallel = [("x-mock-parallel-tools", "1")];

    // Reference: what the Anthropic target calls, for an Anthropic client (no translation).
    let ant_body = json!({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 200,
        "tools": anthropic_tools(), "messages": [{"role": "user", "content": "Weather and time?"}]});
    let reference = anthropic_post(&mut s, &ant_body, &parallel).json();
    let expected: Vec<(String, Value)> = reference["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| (b["name"].as_str().unwrap().to_owned(), b["input"].clone()))
        .collect();
    assert_eq!(expected.len(), 2, "{reference}");

    // OpenAI client, same target, streamed: two calls, arguments equal to the reference.
    let oai_body = json!({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 200, "stream": true,
        "tools": openai_tools(), "messages": [{"role": "user", "content": "Weather and time?"}]});
    let r = openai_post(&mut s, &oai_body, &parallel);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (calls, finish, _) = openai_stream_calls(&r.body);
    assert_eq!(finish, "tool_calls");
    let got: Vec<(String, Value)> = calls
        .iter()
        .map(|(n, a)| (n.clone(), serde_json::from_str(a).unwrap()))
        .collect();
    assert_eq!(got, expected);

    // Reference for the OpenAI target: its own client, not streamed, arguments as text.
    let oai_ref = json!({"model": "openai/gpt-4o-mini", "tools": openai_tools(),
        "messages": [{"role": "user", "content": "Weather and time?"}]});
    let reference = openai_post(&mut s, &oai_ref, &parallel).json();
    let expected: Vec<(String, String)> = reference["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["function"]["name"].as_str().unwrap().to_owned(),
                c["function"]["arguments"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(expected.len(), 2);

    // Anthropic client, OpenAI target, streamed: partial_json pieces concatenate to the
    // provider's argument text byte for byte.
    let mut body = ant_body.clone();
    body["model"] = json!("openai/gpt-4o-mini");
    body["stream"] = json!(true);
    let r = anthropic_post(&mut s, &body, &parallel);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (calls, stop, _, _) = anthropic_stream_calls(&r.body);
    assert_eq!(calls, expected);
    assert_eq!(stop, "tool_use");

    // And to Gemini: calls arrive whole, still well-formed for both clients.
    body["model"] = json!("gemini/gemini-2.5-flash");
    let r = anthropic_post(&mut s, &body, &parallel);
    let (calls, stop, _, _) = anthropic_stream_calls(&r.body);
    assert_eq!(calls.len(), 2, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(stop, "tool_use");
    let mut oai = oai_body.clone();
    oai["model"] = json!("gemini/gemini-2.5-flash");
    let (calls, finish, _) = openai_stream_calls(&openai_post(&mut s, &oai, &parallel).body);
    assert_eq!(calls.len(), 2);
    assert_eq!(finish, "tool_calls");
}

#[test]
fn a_tool_round_trip_goes_back_to_an_anthropic_target() {
    // The OpenAI client sends the tool result back: the Anthropic target receives a
    // tool_result for the tool_use id it issued, and answers with text.
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let first = json!({"model": "anthropic/claude-sonnet-4-5", "tools": openai_tools(),
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let v = openai_post(&mut s, &first, &[]).json();
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert!(call["id"].is_string(), "{v}");
    let second = json!({"model": "anthropic/claude-sonnet-4-5", "tools": openai_tools(),
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp_c\": 21}"}
    ]});
    let r = openai_post(&mut s, &second, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
}

#[test]
fn thinking_reaches_the_other_dialect() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let body = json!({"model": "anthropic/claude-sonnet-4-5", "max_completion_tokens": 4000,
        "reasoning_effort": "low", "messages": [{"role": "user", "content": "Think, then say hi"}]});
    let r = openai_post(&mut s, &body, &[("x-mock-reasoning-tokens", "6")]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let reasoning = v["choices"][0]["message"]["reasoning_content"].as_str();
    assert!(reasoning.is_some_and(|t| !t.is_empty()), "{v}");
}

#[test]
fn provider_errors_come_back_in_the_clients_dialect() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let body = json!({"model": "anthropic/claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}]});
    let r = openai_post(&mut s, &body, &[("x-mock-fault", "400")]);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(v.get("type").is_none(), "not Anthropic-shaped: {v}");

    // A 200 whose body cannot be read is not passed on as an empty answer: a 502.
    let r = openai_post(&mut s, &body, &[("x-mock-fault", "malformed")]);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["type"], "api_error");

    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});
    let r = anthropic_post(&mut s, &body, &[("x-mock-fault", "404")]);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "not_found_error", "{v}");
}

#[test]
fn untranslatable_fields_can_be_dropped_by_config() {
    let (_mock, gw) = start_stack("[translation]\ndrop = [\"seed\"]");
    let mut s = connect(&gw);
    let body = json!({"model": "anthropic/claude-sonnet-4-5", "seed": 7,
        "messages": [{"role": "user", "content": "hi"}]});
    let r = openai_post(&mut s, &body, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Same-dialect targets are untouched by the drop list: the body goes through as sent.
    let mut body = body.clone();
    body["model"] = json!("openai/gpt-4o-mini");
    assert_eq!(openai_post(&mut s, &body, &[]).status, 200);
}

#[test]
fn an_anthropic_client_fails_over_along_an_openai_dialect_chain() {
    // `failover` = [down/never (refuses connections), openai/gpt-4o-mini]: both translated.
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let body = json!({"model": "failover", "max_tokens": 20, "stream": true,
        "messages": [{"role": "user", "content": "Say hello"}]});
    let r = anthropic_post(&mut s, &body, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let tried = attempts(&r);
    assert!(tried[0].starts_with("down/never"), "{tried:?}");
    assert!(
        tried.last().unwrap().starts_with("openai/gpt-4o-mini"),
        "{tried:?}"
    );
    let (_, stop, _, text) = anthropic_stream_calls(&r.body);
    assert_eq!(stop, "end_turn");
    assert!(!text.is_empty());
}
