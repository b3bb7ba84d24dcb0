//! Routing strategies end to end: the real gateway against the mock provider, with the
//! decision read back from `x-switchyard-route-reason` and the provider that answered.

mod common;
use common::*;

const ROUTES: &str = r#"
[[routes]]
name = "cheap"
strategy = "cheapest"
targets = ["openai/gpt-4o", "anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"]

[[routes]]
name = "smart"
strategy = "rules"
targets = ["groq/llama-3.3-70b-versatile"]
[[routes.rules]]
when = { has_tools = true }
use = "claude"
[[routes.rules]]
when = { header = { "x-switchyard-task" = "summarize" } }
use = "chat"
[[routes.rules]]
when = { metadata = { tier = "gold" } }
use = "cheap"

[[routes]]
name = "vis"
targets = ["groq/llama-3.3-70b-versatile", "openai/gpt-4o-mini"]

[[routes]]
name = "split"
strategy = "weighted"
targets = ["openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"]
weights = [3, 1]
"#;

fn stack() -> (Mock, Gateway) {
    let mock = start_mock(&[]);
    let mut cfg = standard_config(free_port(), mock.port, "");
    cfg.push_str(ROUTES);
    let gw = start_gateway_with(&cfg);
    (mock, gw)
}

fn chat(gw: &Gateway, body: &str, extra: &[(&str, &str)]) -> RawResponse {
    let auth = bearer();
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    let mut s = connect(gw);
    let r = roundtrip(&mut s, "POST", "/v1/chat/completions", &h, body.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r
}

fn served(r: &RawResponse) -> String {
    format!(
        "{}/{}",
        r.header("x-switchyard-provider").unwrap_or("-"),
        r.header("x-switchyard-model").unwrap_or("-")
    )
}

#[test]
fn cheapest_picks_the_cheapest_capable_target_and_says_why() {
    let (_mock, gw) = stack();
    let r = chat(&gw, &chat_body("cheap", false), &[]);
    assert_eq!(served(&r), "openai/gpt-4o-mini");
    let reason = r.header("x-switchyard-route-reason").unwrap();
    assert!(
        reason.starts_with("cheapest: openai/gpt-4o-mini=$"),
        "{reason}"
    );
    // Every candidate is scored, cheapest first.
    let order: Vec<&str> = reason["cheapest: ".len()..]
        .split(' ')
        .map(|s| s.split('=').next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "openai/gpt-4o-mini",
            "openai/gpt-4o",
            "anthropic/claude-sonnet-4-5"
        ],
        "{reason}"
    );
    // The ledger row carries the same text.
    let id = r.header("x-switchyard-request-id").unwrap();
    let row = ledger_row(&gw, id);
    assert_eq!(row.route_reason.as_deref(), Some(reason));
}

fn ledger_row(gw: &Gateway, request_id: &str) -> switchyard::ledger::LedgerRow {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(Some(r)) = switchyard::ledger::read_row(&gw.ledger_path(), request_id) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ledger row for {request_id}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn rules_route_on_tools_headers_and_metadata_and_fall_through() {
    let (_mock, gw) = stack();
    let plain = chat(&gw, &chat_body("smart", false), &[]);
    assert_eq!(served(&plain), "groq/llama-3.3-70b-versatile");
    assert!(plain
        .header("x-switchyard-route-reason")
        .unwrap()
        .starts_with("rules: no rule matched `smart`"));

    let tools = r#"{"model":"smart","messages":[{"role":"user","content":"weather?"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}]}"#;
    let r = chat(&gw, tools, &[]);
    assert_eq!(served(&r), "anthropic/claude-sonnet-4-5");
    let reason = r.header("x-switchyard-route-reason").unwrap();
    assert!(
        reason.starts_with("rules: `smart` rule 0 (has_tools=true) -> `claude`; fallback"),
        "{reason}"
    );

    let r = chat(
        &gw,
        &chat_body("smart", false),
        &[("x-switchyard-task", "summarize")],
    );
    assert_eq!(served(&r), "openai/gpt-4o-mini");

    // A rule may lead to a route with its own strategy.
    let gold = r#"{"model":"smart","metadata":{"tier":"gold"},"messages":[{"role":"user","content":"hi"}]}"#;
    let r = chat(&gw, gold, &[]);
    assert_eq!(served(&r), "openai/gpt-4o-mini");
    assert!(r
        .header("x-switchyard-route-reason")
        .unwrap()
        .contains("-> `cheap`; cheapest: "));
}

#[test]
fn the_weighted_split_follows_the_weights() {
    let (_mock, gw) = stack();
    let mut openai = 0;
    let n = 400;
    let body = chat_body("split", false);
    for _ in 0..n {
        if served(&chat(&gw, &body, &[])) == "openai/gpt-4o-mini" {
            openai += 1;
        }
    }
    // 3:1 is 300 of 400; a binomial spread of 4 sigma is about +-35.
    assert!((265..=335).contains(&openai), "{openai} of {n}");
}

#[test]
fn capability_filters_remove_targets_and_name_the_filter() {
    let (_mock, gw) = stack();
    // Images: the groq model has no vision, so the request goes to gpt-4o-mini.
    let image = r#"{"model":"vis","messages":[{"role":"user","content":[
        {"type":"text","text":"what is this?"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
    let r = chat(&gw, image, &[]);
    assert_eq!(served(&r), "openai/gpt-4o-mini");
    let reason = r.header("x-switchyard-route-reason").unwrap();
    assert!(
        reason.contains("removed groq/llama-3.3-70b-versatile (vision: the request has images)"),
        "{reason}"
    );
    // Without images nothing is removed.
    let r = chat(&gw, &chat_body("vis", false), &[]);
    assert_eq!(served(&r), "groq/llama-3.3-70b-versatile");
    assert_eq!(r.header("x-switchyard-route-reason"), Some("fallback"));

    // A prompt past gpt-4o-mini's 128000 but within groq's 131072 (130000 tokens of four
    // bytes each).
    let long = serde_json::json!({"model": "vis", "max_tokens": 100,
        "messages": [{"role": "user", "content": "abcd".repeat(130_000)}]})
    .to_string();
    let r = chat(&gw, &long, &[]);
    assert_eq!(served(&r), "groq/llama-3.3-70b-versatile");
    let reason = r.header("x-switchyard-route-reason").unwrap();
    assert!(
        reason.contains(
            "removed openai/gpt-4o-mini (context: ~130000 prompt + 100 max_tokens > 128000)"
        ),
        "{reason}"
    );
    // max_tokens past gpt-4o-mini's 16384 output tokens but within groq's 32768.
    let most = r#"{"model":"vis","max_tokens":20000,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = chat(&gw, most, &[]);
    assert_eq!(served(&r), "groq/llama-3.3-70b-versatile");
    let reason = r.header("x-switchyard-route-reason").unwrap();
    assert!(
        reason.contains("removed openai/gpt-4o-mini (max_output: 20000 max_tokens > 16384)"),
        "{reason}"
    );

    // Nothing left: a 400 in the client's dialect naming every filter.
    let both = r#"{"model":"vis","max_tokens":20000,"messages":[{"role":"user","content":[
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
    let auth = bearer();
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        both.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("groq/llama-3.3-70b-versatile (vision"),
        "{msg}"
    );
    assert!(msg.contains("openai/gpt-4o-mini (max_output"), "{msg}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");

    // Anthropic dialect: claude-sonnet-4-5 holds 200000 (150000 prompt tokens + 60000).
    let big = serde_json::json!({"model": "claude", "max_tokens": 60000,
        "messages": [{"role": "user", "content": "abcd".repeat(150_000)}]})
    .to_string();
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", GW_KEY), ("anthropic-version", "2023-06-01")],
        big.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context: ~150000 prompt + 60000 max_tokens > 200000"),
        "{v}"
    );
}
