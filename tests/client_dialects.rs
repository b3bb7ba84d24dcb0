//! The Responses API and Gemini's native API as client dialects, end to end: the real gateway
//! against the mock, for OpenAI-kind (native), Anthropic and Gemini targets. Usage reaches the
//! ledger's columns (cache reads and reasoning apart) whatever the client dialect, streamed or
//! not, and matches what the client was told; errors come in each client's own shape.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard::ledger::{self, LedgerRow};
use switchyard::usage::SseParser;

fn ledger_row(gw: &Gateway, request_id: &str) -> LedgerRow {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(r)) = ledger::read_row(&gw.ledger_path(), request_id) {
            return r;
        }
        assert!(Instant::now() < deadline, "no ledger row for {request_id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    roundtrip(&mut connect(gw), "POST", path, headers, body.as_bytes())
}

fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    roundtrip(&mut connect(gw), "GET", path, headers, b"")
}

/// `(event name, data)` of every SSE event in a body.
fn events(body: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut out = Vec::new();
    let mut p = SseParser::new();
    p.feed_with(body, |ev| {
        out.push((ev.event.clone(), serde_json::from_str(&ev.data).unwrap()))
    });
    out
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

const SPLITS: [(&str, &str); 2] = [
    ("x-mock-cached-tokens", "1000"),
    ("x-mock-reasoning-tokens", "7"),
];

/// The mock reports reasoning apart for OpenAI and Gemini; Anthropic bills it as output only.
fn reasoning_of(provider: &str) -> u64 {
    if provider == "anthropic" {
        0
    } else {
        7
    }
}

#[test]
fn responses_usage_reaches_the_ledger_from_every_target_streamed_or_not() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let mut h = vec![("authorization", auth.as_str())];
    h.extend(SPLITS);
    for (model, provider) in [
        ("openai/gpt-4o-mini", "openai"),
        ("anthropic/claude-sonnet-4-5", "anthropic"),
        ("gemini/gemini-2.5-flash", "gemini"),
    ] {
        for stream in [false, true] {
            let body = json!({"model": model, "input": "Say hello", "stream": stream,
                "max_output_tokens": 4000});
            let r = post(&gw, "/v1/responses", &h, &body.to_string());
            assert_eq!(
                r.status,
                200,
                "{model}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let usage = if stream {
                let evs = events(&r.body);
                let (name, last) = evs.last().unwrap();
                assert_eq!(name.as_deref(), Some("response.completed"), "{model}");
                last["response"]["usage"].clone()
            } else {
                r.json()["usage"].clone()
            };
            let id = r.header("x-switchyard-request-id").unwrap();
            let row = ledger_row(&gw, id);
            let what = format!("{model} stream={stream}: {row:?}");
            assert_eq!(row.endpoint, "responses", "{what}");
            assert_eq!(row.provider.as_deref(), Some(provider), "{what}");
            assert!(!row.estimated && !row.cost_unknown, "{what}");
            assert!(
                row.cost_usd
                    .is_some_and(|c| c > rust_decimal::Decimal::ZERO),
                "{what}"
            );
            let u = row.usage;
            assert_eq!(u.cached_input, 1000, "{what}");
            assert_eq!(u.reasoning, reasoning_of(provider), "{what}");
            // What the client was told is what was recorded.
            assert_eq!(
                n(&usage["input_tokens"]),
                u.input + u.cached_input + u.cache_write,
                "{what}"
            );
            assert_eq!(
                n(&usage["input_tokens_details"]["cached_tokens"]),
                1000,
                "{what}"
            );
            assert_eq!(n(&usage["output_tokens"]), u.output, "{what}");
            assert_eq!(
                n(&usage["output_tokens_details"]["reasoning_tokens"]),
                u.reasoning,
                "{what}"
            );
        }
    }
}

#[test]
fn gemini_client_usage_reaches_the_ledger_with_the_key_in_the_query_or_a_header() {
    let (_mock, gw) = start_stack("");
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 4000, "thinkingConfig": {"thinkingBudget": 2048}},
    })
    .to_string();
    for (model, provider) in [
        ("gemini/gemini-2.5-flash", "gemini"),
        ("openai/gpt-4o-mini", "openai"),
        ("anthropic/claude-sonnet-4-5", "anthropic"),
    ] {
        for stream in [false, true] {
            let path = if stream {
                format!("/v1beta/models/{model}:streamGenerateContent?alt=sse&key={GW_KEY}")
            } else {
                format!("/v1/models/{model}:generateContent")
            };
            let mut h = vec![("x-goog-api-key", GW_KEY)];
            if stream {
                h.clear();
            }
            h.extend(SPLITS);
            let r = post(&gw, &path, &h, &body);
            assert_eq!(
                r.status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let usage = if stream {
                let evs = events(&r.body);
                assert!(evs.len() > 2, "{path}: streamed in pieces");
                let text: String = evs
                    .iter()
                    .filter_map(|(_, d)| d["candidates"][0]["content"]["parts"][0]["text"].as_str())
                    .collect();
                assert!(text.contains("Hello from"), "{path}: {text}");
                evs.last().unwrap().1["usageMetadata"].clone()
            } else {
                let v = r.json();
                let parts = v["candidates"][0]["content"]["parts"]
                    .as_array()
                    .unwrap()
                    .clone();
                assert!(
                    parts.iter().any(|p| p["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Hello from"))),
                    "{v}"
                );
                assert_eq!(v["candidates"][0]["finishReason"], "STOP");
                v["usageMetadata"].clone()
            };
            let row = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
            let what = format!("{path}: {row:?}");
            let endpoint = if stream {
                "stream_generate_content"
            } else {
                "generate_content"
            };
            assert_eq!(row.endpoint, endpoint, "{what}");
            assert_eq!(row.requested_model.as_deref(), Some(model), "{what}");
            assert_eq!(row.provider.as_deref(), Some(provider), "{what}");
            assert!(
                !row.estimated && !row.cost_unknown && row.cost_usd.is_some(),
                "{what}"
            );
            let u = row.usage;
            assert_eq!(u.cached_input, 1000, "{what}");
            assert_eq!(u.reasoning, reasoning_of(provider), "{what}");
            assert_eq!(n(&usage["cachedContentTokenCount"]), 1000, "{what}");
            assert_eq!(
                n(&usage["promptTokenCount"]),
                u.input + u.cached_input + u.cache_write,
                "{what}"
            );
            assert_eq!(
                n(&usage["candidatesTokenCount"]) + n(&usage["thoughtsTokenCount"]),
                u.output,
                "{what}"
            );
        }
    }
}

#[test]
fn errors_come_in_each_client_dialects_shape() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let body = r#"{"contents":[{"parts":[{"text":"Hi"}]}]}"#;
    // Google's shape, before and after the key is known.
    let r = post(&gw, "/v1beta/models/chat:generateContent", &[], body);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(r.json()["error"]["code"], 401);
    let key = [("x-goog-api-key", GW_KEY)];
    let r = post(&gw, "/v1beta/models/nope/x:generateContent", &key, body);
    assert_eq!(
        (r.status, r.json()["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let r = post(&gw, "/v1beta/models/chat:streamGenerateContent", &key, body);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        r.json()["error"]["details"][0]["fieldViolations"][0]["field"],
        "alt"
    );
    let r = post(
        &gw,
        "/v1beta/models/claude:generateContent",
        &key,
        r#"{"contents":[{"parts":[{"bogus":1}]}]}"#,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    let list = get(&gw, "/v1beta/models", &key).json();
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"models/chat"), "{names:?}");
    let limited = get(&gw, &format!("/v1beta/models?key={LIMITED_KEY}"), &[]);
    assert_eq!(limited.json()["models"].as_array().unwrap().len(), 1);

    // The Responses API: OpenAI's shape, with the field and code.
    let h = [("authorization", auth.as_str())];
    let r = post(
        &gw,
        "/v1/responses",
        &h,
        r#"{"model":"claude","input":"Hi","previous_response_id":"resp_nope"}"#,
    );
    assert_eq!(r.status, 404);
    let e = &r.json()["error"];
    assert_eq!(e["param"], "previous_response_id");
    assert_eq!(e["code"], "previous_response_not_found");
    let r = post(
        &gw,
        "/v1/responses",
        &h,
        r#"{"model":"claude","input":"Hi","tools":[{"type":"web_search"}]}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "tools[0]");
    // A conversation is the key's own: another key cannot continue it.
    let first = post(
        &gw,
        "/v1/responses",
        &h,
        r#"{"model":"claude","input":"Hi"}"#,
    )
    .json();
    let again = json!({"model": "claude", "input": "More", "previous_response_id": first["id"]})
        .to_string();
    assert_eq!(post(&gw, "/v1/responses", &h, &again).status, 200);
    let other = format!("Bearer {LIMITED_KEY}");
    let again =
        json!({"model": "chat", "input": "More", "previous_response_id": first["id"]}).to_string();
    assert_eq!(
        post(
            &gw,
            "/v1/responses",
            &[("authorization", other.as_str())],
            &again
        )
        .status,
        404
    );
}

#[test]
fn a_mid_stream_provider_error_reaches_a_responses_client_as_error_then_failed() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let h = [
        ("authorization", auth.as_str()),
        ("x-mock-fault", "cut:after=3"),
    ];
    let r = post(
        &gw,
        "/v1/responses",
        &h,
        r#"{"model":"anthropic/claude-sonnet-4-5","input":"Hi","stream":true}"#,
    );
    assert_eq!(r.status, 200);
    let evs = events(&r.body);
    assert_eq!(evs[0].0.as_deref(), Some("response.created"));
    let last = &evs.last().unwrap();
    assert_eq!(last.0.as_deref(), Some("error"), "{evs:?}");
    assert!(last.1["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(evs
        .iter()
        .all(|(n, _)| n.as_deref() != Some("response.completed")));
}
