//! Usage, exact cost and the ledger, end to end: the real gateway against the mock provider,
//! rows read back from the SQLite ledger the gateway wrote.

mod common;
use common::*;
use rust_decimal::Decimal;
use std::io::{Read, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};
use switchyard::ledger::{self, GroupBy, LedgerRow};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// List prices per million tokens from conf/prices.toml, written out by hand here.
const MILLION: u64 = 1_000_000;

/// Waits for a request's row. The bound is generous: a hung-up stream's row comes after the
/// upstream stream ends and its tokens are estimated, which took over 8 s on a loaded machine.
fn ledger_row(gw: &Gateway, request_id: &str) -> LedgerRow {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(r)) = ledger::read_row(&gw.ledger_path(), request_id) {
            return r;
        }
        assert!(Instant::now() < deadline, "no ledger row for {request_id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let mut s = connect(gw);
    roundtrip(&mut s, "POST", path, headers, body.as_bytes())
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn openai_cost_is_exact_streamed_or_not_with_cached_and_reasoning_tokens() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let h = [
        ("authorization", auth.as_str()),
        ("x-mock-cached-tokens", "1000"),
        ("x-mock-reasoning-tokens", "7"),
        ("x-switchyard-feature", "summaries"),
    ];
    let r = post(
        &gw,
        "/v1/chat/completions",
        &h,
        &chat_body("openai/gpt-4o-mini", false),
    );
    assert_eq!(r.status, 200);
    let usage = &r.json()["usage"];
    let (prompt, cached, completion) = (
        u(&usage["prompt_tokens"]),
        u(&usage["prompt_tokens_details"]["cached_tokens"]),
        u(&usage["completion_tokens"]),
    );
    assert_eq!(cached, 1000);
    // gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million.
    let expected = (Decimal::from(prompt - cached) * d("0.15")
        + Decimal::from(cached) * d("0.075")
        + Decimal::from(completion) * d("0.60"))
        / Decimal::from(MILLION);
    let id = r.header("x-switchyard-request-id").unwrap();
    let row = ledger_row(&gw, id);
    assert_eq!(row.cost_usd, Some(expected), "{row:?}");
    assert_eq!(
        (row.usage.input, row.usage.cached_input),
        (prompt - cached, cached)
    );
    assert_eq!((row.usage.output, row.usage.reasoning), (completion, 7));
    assert_eq!(row.feature.as_deref(), Some("summaries"));
    assert_eq!(row.gateway_key.as_deref(), Some("tests"));
    assert!(!row.estimated && !row.cost_unknown && row.error_class.is_none());

    // The same call streamed: the client did not ask for usage, so it sees no usage chunk,
    // but the gateway asked for one and records the same exact cost.
    let r = post(
        &gw,
        "/v1/chat/completions",
        &h,
        &chat_body("openai/gpt-4o-mini", true),
    );
    let text = String::from_utf8_lossy(&r.body).to_string();
    // (Chunks may carry `"usage":null`, as OpenAI's do once usage is requested; SDKs read
    // that as absent.) No chunk carries a usage object.
    assert!(
        text.contains("[DONE]") && !text.contains("\"usage\":{"),
        "{text}"
    );
    let srow = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    assert!(srow.stream);
    assert_eq!(srow.cost_usd, Some(expected));
    assert!(!srow.estimated);

    // A client that asks for usage gets its usage chunk.
    let body = serde_json::json!({"model":"openai/gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},
        "messages":[{"role":"user","content":"Say hello"}]}).to_string();
    let r = post(&gw, "/v1/chat/completions", &h, &body);
    assert!(String::from_utf8_lossy(&r.body).contains("\"usage\":{"));
}

#[test]
fn anthropic_cost_is_exact_with_cache_reads_and_writes() {
    let (_mock, gw) = start_stack("");
    let h = [
        ("x-api-key", GW_KEY),
        ("x-mock-cached-tokens", "2000"),
        ("x-mock-cache-write-tokens", "500"),
    ];
    let body = r#"{"model":"anthropic/claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"Say hello"}]}"#;
    let r = post(&gw, "/v1/messages", &h, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let usage = &r.json()["usage"];
    let (input, read, write, output) = (
        u(&usage["input_tokens"]),
        u(&usage["cache_read_input_tokens"]),
        u(&usage["cache_creation_input_tokens"]),
        u(&usage["output_tokens"]),
    );
    assert_eq!((read, write), (2000, 500));
    // claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per million.
    let expected = (Decimal::from(input) * d("3")
        + Decimal::from(read) * d("0.30")
        + Decimal::from(write) * d("3.75")
        + Decimal::from(output) * d("15"))
        / Decimal::from(MILLION);
    let row1 = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    assert_eq!(row1.cost_usd, Some(expected), "{row1:?}");
    assert_eq!(row1.usage.cache_write, 500);

    let sbody = body.replace("\"max_tokens\":100", "\"max_tokens\":100,\"stream\":true");
    let r = post(&gw, "/v1/messages", &h, &sbody);
    assert!(String::from_utf8_lossy(&r.body).contains("message_stop"));
    let row2 = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    assert_eq!(row2.cost_usd, Some(expected), "streamed: {row2:?}");
}

#[test]
fn a_client_that_disconnects_mid_stream_leaves_one_estimated_row() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let body = chat_body("openai/gpt-4o-mini", true);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\nx-mock-itl-ms: 100\r\nx-mock-tokens: 40\r\ncontent-length: {}\r\n\r\n",
        bearer(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&got).matches("data: ").count() < 5 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("x-switchyard-request-id: "))
        .unwrap()
        .trim()
        .to_owned();
    drop(s); // hang up mid-stream
    let row = ledger_row(&gw, &id);
    assert!(row.estimated, "{row:?}");
    assert_eq!(row.error_class.as_deref(), Some("client_disconnected"));
    assert!(row.usage.input > 0 && row.usage.output > 0, "{row:?}");
    assert!(
        row.usage.output < 40,
        "only what was generated before the hang-up: {row:?}"
    );
    assert!(row.cost_usd.is_some_and(|c| c > Decimal::ZERO));
}

#[test]
fn unpriced_models_are_refused_by_default_and_flagged_when_allowed() {
    let mock = start_mock(&[]);
    let cfg = standard_config(free_port(), mock.port, "")
        .replace("unpriced = \"record_unknown\"", "unpriced = \"reject\"");
    let gw = start_gateway_with(&cfg);
    let r = post(
        &gw,
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        &chat_body("openai/my-private-model", false),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no price"));
    let refused = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    assert_eq!(refused.error_class.as_deref(), Some("bad_request"));
    assert_eq!(
        refused.cost_usd,
        Some(Decimal::ZERO),
        "refused before any provider call"
    );

    let (_mock2, gw2) = start_stack("");
    let r = post(
        &gw2,
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        &chat_body("openai/my-private-model", false),
    );
    assert_eq!(r.status, 200);
    let row = ledger_row(&gw2, r.header("x-switchyard-request-id").unwrap());
    assert!(
        row.cost_unknown && row.cost_usd.is_none(),
        "never silently $0: {row:?}"
    );
    assert!(row.usage.output > 0);
}

#[test]
fn every_request_gets_exactly_one_row_and_the_report_adds_up() {
    let (_mock, gw) = start_stack("");
    let n = 10_000;
    let threads = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let addr = gw.addr();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_nodelay(true).unwrap();
                let feature = format!("f{}", t % 2);
                for i in 0..n / threads {
                    // One in ten is an error the gateway answers itself (unknown model).
                    let model = if i % 10 == 0 {
                        "nope/x"
                    } else {
                        "openai/gpt-4o-mini"
                    };
                    let r = roundtrip(
                        &mut s,
                        "POST",
                        "/v1/chat/completions",
                        &[
                            ("authorization", &bearer()),
                            ("x-switchyard-feature", &feature),
                        ],
                        chat_body(model, false).as_bytes(),
                    );
                    assert!(r.status == 200 || r.status == 404);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let path = gw.ledger_path();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ledger::count_rows(&path).unwrap_or(0) < n as u64 {
        assert!(
            Instant::now() < deadline,
            "rows: {}",
            ledger::count_rows(&path).unwrap_or(0)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ledger::count_rows(&path).unwrap(),
        n as u64,
        "exactly one row per request"
    );
    // Every successful call is identical: 3 input and 16 output tokens of gpt-4o-mini.
    let per_call =
        (Decimal::from(3) * d("0.15") + Decimal::from(16) * d("0.60")) / Decimal::from(MILLION);
    let ok_calls = Decimal::from(n - n / 10);
    let report = ledger::spend_report(&path, GroupBy::Feature, 0).unwrap();
    assert_eq!(report.total.requests, n as u64);
    assert_eq!(report.total.errors, (n / 10) as u64);
    assert_eq!(report.total.cost_usd, per_call * ok_calls);
    let by_feature: Decimal = report.rows.iter().map(|r| r.cost_usd).sum();
    assert_eq!(by_feature, report.total.cost_usd);
    // The CLI prints the same report.
    let out = std::process::Command::new(BIN)
        .args([
            "spend",
            "--by",
            "model",
            "--since",
            "1h",
            "--db",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains("openai/gpt-4o-mini") && table.contains("10000"),
        "{table}"
    );
}

/// One provider of every preset kind in front of the mock, each with a model priced for it
/// (with a cache-read price where the provider publishes one), plus an `openai-compatible`
/// provider priced by an override file: (kind, provider name, base path, model).
const PRESETS: &[(&str, &str, &str, &str)] = &[
    ("openai", "openai", "/v1", "gpt-5.1"),
    ("anthropic", "anthropic", "/v1", "claude-sonnet-4-6"),
    (
        "gemini-native",
        "gemini-native",
        "/v1beta",
        "gemini-2.5-flash",
    ),
    (
        "gemini",
        "gemini",
        "/v1beta/openai",
        "gemini-3-flash-preview",
    ),
    ("groq", "groq", "/openai/v1", "openai/gpt-oss-120b"),
    ("cerebras", "cerebras", "/v1", "gpt-oss-120b"),
    (
        "deepinfra",
        "deepinfra",
        "/v1/openai",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
    ),
    ("mistral", "mistral", "/v1", "mistral-small-2603"),
    ("xai", "xai", "/v1", "grok-4.3"),
    (
        "openrouter",
        "openrouter",
        "/api/v1",
        "anthropic/claude-sonnet-4.6",
    ),
    ("openai-compatible", "local", "/v1", "house-model"),
];

const LOCAL_PRICES: &str = r#"
[[prices]]
provider = "local"
model = "house-model"
effective = "2025-01-01"
input = "0.40"
output = "1.60"
cached_input = "0.04"
source = "test: house price list"
checked = "2026-12-01"
"#;

#[test]
fn streamed_and_non_streamed_cost_are_equal_for_every_preset() {
    let mock = start_mock(&[]);
    let prices_dir = tempfile::tempdir().unwrap();
    let overrides = prices_dir.path().join("prices.toml");
    std::fs::write(&overrides, LOCAL_PRICES).unwrap();
    let mut cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\nthreads = 2\n[pricing]\nunpriced = \"reject\"\noverrides = \"{}\"\n\
         [[gateway_keys]]\nname = \"tests\"\nkey = \"{GW_KEY}\"\n",
        free_port(),
        overrides.display()
    );
    for (kind, name, path, _) in PRESETS {
        cfg.push_str(&format!(
            "[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"http://127.0.0.1:{}{path}\"\napi_keys = [\"env:MOCK_KEY\"]\n",
            mock.port
        ));
    }
    let gw = start_gateway_with(&cfg);
    let book = switchyard::pricing::PriceBook::builtin().with_overrides(
        switchyard::pricing::PriceBook::parse("prices.toml", LOCAL_PRICES).unwrap(),
    );
    let today = switchyard::pricing::PriceDate::today();
    for (kind, name, _, model) in PRESETS {
        let anthropic = *kind == "anthropic";
        let target = format!("{name}/{model}");
        let auth = bearer();
        let mut h: Vec<(&str, &str)> = vec![
            ("x-mock-cached-tokens", "1000"),
            ("x-mock-reasoning-tokens", "7"),
        ];
        let (path, body, stream_body) = if anthropic {
            h.push(("x-api-key", GW_KEY));
            h.push(("x-mock-cache-write-tokens", "500"));
            let body = format!(
                r#"{{"model":"{target}","max_tokens":100,"messages":[{{"role":"user","content":"Say hello"}}]}}"#
            );
            let stream = body.replace("\"max_tokens\":100", "\"max_tokens\":100,\"stream\":true");
            ("/v1/messages", body, stream)
        } else {
            h.push(("authorization", auth.as_str()));
            (
                "/v1/chat/completions",
                chat_body(&target, false),
                chat_body(&target, true),
            )
        };
        let r = post(&gw, path, &h, &body);
        assert_eq!(
            r.status,
            200,
            "{kind}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let header = r.header("x-switchyard-cost-usd").map(d);
        let plain = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
        let s = post(&gw, path, &h, &stream_body);
        assert_eq!(
            s.status,
            200,
            "{kind}: {}",
            String::from_utf8_lossy(&s.body)
        );
        let streamed = ledger_row(&gw, s.header("x-switchyard-request-id").unwrap());
        assert!(streamed.stream && !plain.stream, "{kind}");

        // The tiers were exercised: cache reads (and writes, where the dialect has them)
        // and reasoning tokens, counted the same either way.
        assert_eq!(plain.usage, streamed.usage, "{kind}: usage");
        assert_eq!(plain.usage.cached_input, 1000, "{kind}: {:?}", plain.usage);
        // Reasoning tokens are billed as output: the mock's 16 visible tokens plus 7.
        // Anthropic reports no separate reasoning count; the others do.
        assert_eq!(plain.usage.output, 16 + 7, "{kind}: {:?}", plain.usage);
        if anthropic {
            assert_eq!(plain.usage.cache_write, 500, "{kind}");
        } else {
            assert_eq!(plain.usage.reasoning, 7, "{kind}: {:?}", plain.usage);
        }
        // The same exact cost, priced from the list in force, and never estimated.
        let family = kind
            .parse::<switchyard::providers::ProviderKind>()
            .expect("a preset kind")
            .price_family();
        let names = [*name, family];
        let expected = book
            .cost_for(&names, model, today, &plain.usage)
            .unwrap_or_else(|| panic!("{kind}: {target} unpriced"))
            .total;
        assert!(expected > Decimal::ZERO, "{kind}");
        assert_eq!(plain.cost_usd, Some(expected), "{kind}: non-streamed");
        assert_eq!(streamed.cost_usd, Some(expected), "{kind}: streamed");
        assert_eq!(header, Some(expected), "{kind}: x-switchyard-cost-usd");
        assert!(!plain.estimated && !streamed.estimated, "{kind}");
        assert!(!plain.cost_unknown && !streamed.cost_unknown, "{kind}");
    }
}

#[test]
fn each_attempt_is_in_the_row_and_the_served_one_carries_the_cost() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    // `failover` tries a provider that refuses connections, then openai.
    let r = post(
        &gw,
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        &chat_body("failover", false),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let row = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    let roles: Vec<ledger::Role> = row.attempts.iter().map(|a| a.role).collect();
    assert_eq!(
        roles,
        [ledger::Role::Failed, ledger::Role::Served],
        "{row:?}"
    );
    let (failed, served) = (&row.attempts[0], &row.attempts[1]);
    assert_eq!(
        (failed.provider.as_str(), failed.model.as_str()),
        ("down", "never")
    );
    assert_eq!(failed.error_class.as_deref(), Some("ConnectRefused"));
    assert_eq!(
        (failed.status, failed.cost_usd),
        (None, Some(Decimal::ZERO))
    );
    assert_eq!(failed.usage, switchyard::usage::Usage::default());
    assert_eq!(
        (served.provider.as_str(), served.status),
        ("openai", Some(200))
    );
    assert_eq!(served.key_index, Some(0));
    // gpt-4o-mini: 3 input and 16 output tokens at $0.15 and $0.60 per million.
    let expected =
        (Decimal::from(3) * d("0.15") + Decimal::from(16) * d("0.60")) / Decimal::from(MILLION);
    assert_eq!(served.cost_usd, Some(expected));
    assert_eq!(row.cost_usd, Some(expected));
    assert_eq!((served.usage, row.usage), (row.usage, served.usage));
    assert!(served.ms.is_some_and(|ms| ms > 0.0));

    // An unpriced model's answer that served: its cost, and so the row's, is unknown.
    let r = post(
        &gw,
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        &chat_body("openai/my-private-model", false),
    );
    let row = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    assert_eq!(row.attempts.len(), 1);
    assert!(row.attempts[0].has_unknown_cost() && row.cost_usd.is_none());

    // Every attempt rate limited (last: the 429 rests the key): the last one's 429 reached the
    // client; nothing was billed.
    let r = post(
        &gw,
        "/v1/chat/completions",
        &[("authorization", auth.as_str()), ("x-mock-fault", "429")],
        &chat_body("openai/gpt-4o-mini", false),
    );
    assert_eq!(r.status, 429);
    let row = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    assert!(row.attempts.len() > 1, "{row:?}");
    let (last, before) = row.attempts.split_last().unwrap();
    assert_eq!(last.role, ledger::Role::Served);
    assert!(before.iter().all(|a| a.role == ledger::Role::Failed));
    assert!(row.attempts.iter().all(|a| a.status == Some(429)
        && a.error_class.as_deref() == Some("rate_limited")
        && a.cost_usd == Some(Decimal::ZERO)));
    assert_eq!(row.cost_usd, Some(Decimal::ZERO));
    assert_eq!(row.attempt_count as usize, row.attempts.len());
}
