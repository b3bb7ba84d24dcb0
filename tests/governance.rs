//! Governance end to end, the real binary against the mock: runtime keys (CLI) applied within
//! a second, rpm/tpm/budget limits answered in the client's dialect, a budget that 200
//! concurrent requests cannot overshoot, streams cut past their reservation, kept bodies with
//! redaction, and no secret in logs, metrics, the ledger or the key store.

mod common;
use common::*;
use rust_decimal::Decimal;
use std::process::Command;
use std::str::FromStr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The standard stack plus `extra` TOML (keys, limits, features), with the ledger at an
/// absolute path so the CLI finds it from anywhere.
fn stack(extra: &str) -> (Mock, Gateway, tempfile::TempDir) {
    stack_with_mock(extra, &[])
}

fn stack_with_mock(extra: &str, mock_args: &[&str]) -> (Mock, Gateway, tempfile::TempDir) {
    let mock = start_mock(mock_args);
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db");
    let admin = free_port();
    let config = format!(
        "{}\n[ledger]\npath = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n{extra}\n",
        standard_config(free_port(), mock.port, ""),
        ledger.display()
    );
    let gw = start_gateway_with(&config);
    (mock, gw, dir)
}

fn keys_cli(gw: &Gateway, args: &[&str]) -> (bool, String, String) {
    let cfg = gw.config.to_string_lossy().to_string();
    let mut all = vec!["keys", args[0], "--config", &cfg];
    all.extend_from_slice(&args[1..]);
    let out = Command::new(BIN)
        .args(&all)
        .env("MOCK_KEY", PROVIDER_KEY)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chat(gw: &Gateway, key: &str, body: &str, extra: &[(&str, &str)]) -> RawResponse {
    let auth = format!("Bearer {key}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    let mut s = connect(gw);
    roundtrip(&mut s, "POST", "/v1/chat/completions", &h, body.as_bytes())
}

fn messages(gw: &Gateway, key: &str, body: &str) -> RawResponse {
    let mut s = connect(gw);
    roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
}

/// Polls until `f` holds (the gateway follows the key store every 250 ms); returns how long
/// it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn small_chat(model: &str) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "a a a a a a a a"}],
        "max_tokens": 16,
    })
    .to_string()
}

#[test]
fn runtime_keys_are_created_revoked_and_expire_within_a_second() {
    let (_mock, gw, _dir) = stack("");
    let body = small_chat("chat");
    let (ok, secret, err) = keys_cli(&gw, &["create", "--name", "team-b", "--models", "chat"]);
    assert!(ok, "{err}");
    assert!(secret.starts_with("sk-sy-"), "{secret}");
    let took = within(Duration::from_secs(1), || {
        chat(&gw, &secret, &body, &[]).status == 200
    });
    eprintln!("new key working after {took:?}");
    // Its allow-list holds.
    let r = chat(&gw, &secret, &small_chat("openai/gpt-4o-mini"), &[]);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));

    let (ok, list, _) = keys_cli(&gw, &["list", "--json"]);
    assert!(ok);
    assert!(!list.contains(&secret) && list.contains("team-b"), "{list}");

    let (ok, _, err) = keys_cli(&gw, &["revoke", "team-b"]);
    assert!(ok, "{err}");
    within(Duration::from_secs(1), || {
        chat(&gw, &secret, &body, &[]).status == 401
    });

    let (ok, short, err) = keys_cli(&gw, &["create", "--name", "brief", "--ttl", "2s"]);
    assert!(ok, "{err}");
    within(Duration::from_secs(1), || {
        chat(&gw, &short, &body, &[]).status == 200
    });
    let r = {
        std::thread::sleep(Duration::from_millis(2100));
        chat(&gw, &short, &body, &[])
    };
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // No restart: the gateway process is the one started above.
    assert!(gw.proc_.stderr().contains("key store changed"));
}

#[test]
fn a_rotated_key_works_through_its_grace_period_and_not_after() {
    let (_mock, gw, _dir) = stack("");
    let body = small_chat("chat");
    let (_, old, _) = keys_cli(&gw, &["create", "--name", "rot"]);
    within(Duration::from_secs(1), || {
        chat(&gw, &old, &body, &[]).status == 200
    });
    let (ok, new, err) = keys_cli(&gw, &["rotate", "rot", "--grace", "3s"]);
    assert!(ok, "{err}");
    let rotated = Instant::now();
    within(Duration::from_secs(1), || {
        chat(&gw, &new, &body, &[]).status == 200
    });
    assert_eq!(chat(&gw, &old, &body, &[]).status, 200, "old key in grace");
    std::thread::sleep(Duration::from_secs(3).saturating_sub(rotated.elapsed()));
    assert_eq!(
        chat(&gw, &old, &body, &[]).status,
        401,
        "old key past grace"
    );
    assert_eq!(chat(&gw, &new, &body, &[]).status, 200);
}

const LIMITED: &str = r#"
[[gateway_keys]]
name = "paced"
key = "sk-sy-paced-key-0001"
rpm = 2

[[gateway_keys]]
name = "tokens"
key = "sk-sy-tokens-key-0001"
tpm = 60

[[gateway_keys]]
name = "broke"
key = "sk-sy-broke-key-0001"
budget = { usd = "0.000001", period = "day" }

[[features]]
name = "search"
rpm = 1
"#;

#[test]
fn each_limit_kind_answers_in_the_clients_dialect_and_rpm_recovers() {
    let (_mock, gw, _dir) = stack(LIMITED);
    let body = small_chat("chat");
    let anthropic = serde_json::json!({
        "model": "claude", "max_tokens": 16,
        "messages": [{"role": "user", "content": "a a a a"}],
    })
    .to_string();

    // rpm: two, then 429 with retry-after, in each dialect.
    assert_eq!(chat(&gw, "sk-sy-paced-key-0001", &body, &[]).status, 200);
    assert_eq!(
        messages(&gw, "sk-sy-paced-key-0001", &anthropic).status,
        200
    );
    let r = chat(&gw, "sk-sy-paced-key-0001", &body, &[]);
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("key `paced`"));
    let a = messages(&gw, "sk-sy-paced-key-0001", &anthropic);
    assert_eq!(a.status, 429);
    assert_eq!(a.json()["type"], "error");
    assert_eq!(a.json()["error"]["type"], "rate_limit_error");

    // tpm: the worst case (prompt + 16 max tokens) fits three times in 60, not four.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(chat(&gw, "sk-sy-tokens-key-0001", &body, &[]).status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    // A request that could never fit is a 400, not a 429.
    let huge = serde_json::json!({
        "model": "chat", "max_tokens": 1000,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string();
    assert_eq!(chat(&gw, "sk-sy-tokens-key-0001", &huge, &[]).status, 400);

    // budget: exhausted at once; 402 budget_exceeded naming key, period and reset.
    let r = chat(&gw, "sk-sy-broke-key-0001", &body, &[]);
    assert_eq!(r.status, 402, "{}", String::from_utf8_lossy(&r.body));
    let e = &r.json()["error"];
    assert_eq!(e["code"], "budget_exceeded");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("key `broke`") && msg.contains("per day") && msg.contains("resets at"));
    let a = messages(&gw, "sk-sy-broke-key-0001", &anthropic);
    assert_eq!(a.status, 402);
    assert_eq!(a.json()["error"]["type"], "billing_error");

    // A feature tag's own limit, whatever the key.
    let tag = [("x-switchyard-feature", "search")];
    assert_eq!(chat(&gw, GW_KEY, &body, &tag).status, 200);
    let r = chat(&gw, GW_KEY, &body, &tag);
    assert_eq!(r.status, 429);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("feature `search`"));
    // The key itself has no limit.
    assert_eq!(chat(&gw, GW_KEY, &body, &[]).status, 200);

    // rpm recovers once the window has passed.
    std::thread::sleep(Duration::from_secs(retry));
    within(Duration::from_secs(3), || {
        chat(&gw, "sk-sy-paced-key-0001", &body, &[]).status == 200
    });
}

#[test]
fn two_hundred_concurrent_requests_stay_within_a_budget_worth_ten_calls() {
    // One call's true cost, measured: the prompt estimate (tokenizer) is at least the mock's
    // count for this prompt, and the answer is exactly max_tokens long.
    let (_mock, probe, _d) = stack("");
    let body = small_chat("openai/gpt-4o-mini");
    let r = chat(&probe, GW_KEY, &body, &[]);
    assert_eq!(r.status, 200);
    let one = Decimal::from_str(r.header("x-switchyard-cost-usd").unwrap()).unwrap();
    assert!(one > Decimal::ZERO);
    drop(probe);

    let budget = one * Decimal::from(10);
    let (_mock, gw, dir) = stack(&format!(
        "[[gateway_keys]]\nname = \"team\"\nkey = \"sk-sy-team-key-00001\"\n\
         budget = {{ usd = \"{budget}\", period = \"total\" }}\n"
    ));
    let n = 200;
    let barrier = Arc::new(Barrier::new(n));
    let addr = gw.addr();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, addr, body) = (barrier.clone(), addr.clone(), body.clone());
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                barrier.wait();
                roundtrip(
                    &mut s,
                    "POST",
                    "/v1/chat/completions",
                    &[
                        ("authorization", "Bearer sk-sy-team-key-00001"),
                        ("x-mock-ttft-ms", "300"),
                    ],
                    body.as_bytes(),
                )
            })
        })
        .collect();
    let mut spent = Decimal::ZERO;
    let (mut served, mut refused) = (0, 0);
    for t in threads {
        let r = t.join().unwrap();
        match r.status {
            200 => {
                served += 1;
                spent += Decimal::from_str(r.header("x-switchyard-cost-usd").unwrap()).unwrap();
            }
            402 => {
                refused += 1;
                assert_eq!(r.json()["error"]["code"], "budget_exceeded");
            }
            s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    eprintln!("served {served}, refused {refused}, spent {spent} of {budget}");
    assert!((1..=10).contains(&served), "served {served}");
    assert_eq!(served + refused, n);
    assert!(spent <= budget, "spent {spent} > budget {budget}");
    // The ledger agrees: every request recorded, the key's spend the same exact sum.
    let ledger = dir.path().join("ledger.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = switchyard::ledger::spend_report(&ledger, switchyard::ledger::GroupBy::Key, 0);
        if let Some(row) = report
            .ok()
            .and_then(|r| r.rows.into_iter().find(|r| r.group == "team"))
            .filter(|r| r.requests == n as u64)
        {
            assert_eq!(row.cost_usd, spent);
            break;
        }
        assert!(Instant::now() < deadline, "ledger incomplete");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stream_past_its_reservation_is_cut_cleanly_and_one_within_it_is_not() {
    // The model's own output ceiling (its capabilities, here overridden to 8 tokens) is what a
    // request without max_tokens reserves; the `[limits]` fallback (large) is not used.
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("caps.toml");
    std::fs::write(
        &overrides,
        "[[models]]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\ncontext_window = 128000\n\
         max_output_tokens = 8\nsupports = [\"prompt_caching\"]\nsource = \"test\"\nchecked = \"2026-12-03\"\n",
    )
    .unwrap();
    let config = format!(
        "{}\n[ledger]\npath = \"{}\"\n\n[limits]\nmax_output_tokens = 4096\n\n\
         [[gateway_keys]]\nname = \"capped\"\nkey = \"sk-sy-capped-key-0001\"\nrpm = 1000\n",
        standard_config(free_port(), mock.port, "").replace(
            "[pricing]\n",
            &format!("[pricing]\noverrides = \"{}\"\n", overrides.display())
        ),
        dir.path().join("ledger.db").display()
    );
    let gw = start_gateway_with(&config);
    let key = "sk-sy-capped-key-0001";
    // No max_tokens: the model's 8 output tokens reserved; the model writes 60.
    let long = serde_json::json!({
        "model": "chat", "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string();
    let r = chat(
        &gw,
        key,
        &long,
        &[("x-mock-tokens", "60"), ("x-mock-itl-ms", "5")],
    );
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(text.contains("budget_exceeded"), "{text}");
    assert!(
        text.trim_end().ends_with('}'),
        "ends with the error event: {text}"
    );
    assert!(!text.contains("tok50"), "not cut: {text}");
    // Within max_tokens (no more than the model's ceiling): never cut.
    let fits = serde_json::json!({
        "model": "chat", "stream": true, "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string();
    let r = chat(&gw, key, &fits, &[("x-mock-tokens", "8")]);
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(!text.contains("error") && text.contains("[DONE]"), "{text}");
}
