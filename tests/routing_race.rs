//! Races and hedges end to end: the real gateway against mock providers at set speeds, each
//! mock one provider, so every target has its own time to first token.

mod common;
use common::*;
use std::time::{Duration, Instant};
use switchyard::ledger::{LedgerRow, Role};

fn config(gw_port: u16, mocks: &[(&str, u16)], routes: &str) -> String {
    let mut c = format!(
        "[server]\nlisten = \"127.0.0.1:{gw_port}\"\nthreads = 2\n\n[pricing]\nunpriced = \"record_unknown\"\n\n"
    );
    for (name, port) in mocks {
        c.push_str(&format!(
            "[[providers]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\napi_keys = [\"env:MOCK_KEY\"]\n\n"
        ));
    }
    c.push_str(
        "[[providers]]\nname = \"down\"\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\nconnect_timeout = \"1s\"\n\n",
    );
    c.push_str(&format!(
        "[[gateway_keys]]\nname = \"tests\"\nkey = \"{GW_KEY}\"\n\n{routes}"
    ));
    c
}

fn post(gw: &Gateway, body: &str) -> (RawResponse, Duration) {
    let auth = bearer();
    let mut s = connect(gw);
    let t = Instant::now();
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        body.as_bytes(),
    );
    (r, t.elapsed())
}

fn served(r: &RawResponse) -> String {
    format!(
        "{}/{}",
        r.header("x-switchyard-provider").unwrap_or("-"),
        r.header("x-switchyard-model").unwrap_or("-")
    )
}

fn mock_stats(port: u16) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("mock");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = roundtrip(&mut s, "GET", "/mock/stats", &[], b"");
    r.json()
}

fn ledger_row(gw: &Gateway, id: &str) -> LedgerRow {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(r)) = switchyard::ledger::read_row(&gw.ledger_path(), id) {
            return r;
        }
        assert!(Instant::now() < deadline, "no ledger row for {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const RACE: &str = r#"
[[routes]]
name = "race"
strategy = "race"
race = { width = 2 }
targets = ["slow/gpt-4o-mini", "fast/gpt-4o-mini"]
"#;

const RACE_DOWN: &str = r#"
[[routes]]
name = "race-down"
strategy = "race"
race = { width = 2 }
targets = ["down/never", "fast/gpt-4o-mini"]
"#;

#[test]
fn a_race_answers_at_the_fast_targets_speed_and_cancels_the_slow_one() {
    let fast = start_mock(&["--ttft-ms", "20"]);
    let slow = start_mock(&["--ttft-ms", "800", "--itl-ms", "100", "--tokens", "30"]);
    let gw = start_gateway_with(&config(
        free_port(),
        &[("fast", fast.port), ("slow", slow.port)],
        RACE,
    ));
    for stream in [false, true] {
        let (r, took) = post(&gw, &chat_body("race", stream));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(served(&r), "fast/gpt-4o-mini");
        eprintln!("race (stream={stream}): answered in {took:?}");
        // About 20 ms; far below the slow target's 800 ms even on a loaded machine.
        assert!(
            took < Duration::from_millis(500),
            "stream={stream}: {took:?}"
        );
        let reason = r.header("x-switchyard-route-reason").unwrap().to_owned();
        assert!(
            reason.contains("race: fast/gpt-4o-mini won in")
                && reason.contains("cancelled slow/gpt-4o-mini"),
            "{reason}"
        );
        let body = String::from_utf8_lossy(&r.body).into_owned();
        if stream {
            assert!(body.contains("data: [DONE]"), "{body}");
            assert!(
                !body.contains("\"prompt_tokens\""),
                "usage chunk stripped: {body}"
            );
        } else {
            assert!(r.json()["choices"][0]["message"]["content"].is_string());
        }
        // The loser's connection is closed: the slow mock has no connection left once its
        // 800 ms wait is over (a read-on loser would still be streaming for 3 s).
        std::thread::sleep(Duration::from_millis(1500));
        let stats = mock_stats(slow.port);
        assert_eq!(stats["open"], 1, "only the stats request's own: {stats}");
        // The loser's prompt tokens are in the ledger, estimated.
        let row = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
        assert_eq!(row.route_reason.as_deref(), Some(reason.as_str()));
        assert_eq!(row.attempts.len(), 2, "{:?}", row.attempts);
        let loser = row
            .attempts
            .iter()
            .find(|a| a.role == Role::RaceLoser)
            .expect("a race loser");
        assert_eq!(loser.provider, "slow");
        assert!(loser.usage.input > 0, "{loser:?}");
        assert!(loser
            .cost_usd
            .is_some_and(|c| c > rust_decimal::Decimal::ZERO));
        let winner = row.served().expect("served");
        assert_eq!(winner.provider, "fast");
        assert!(winner.usage.output > 0, "{winner:?}");
        assert!(row.estimated, "the loser's tokens are an estimate");
        assert_eq!(row.usage.input, loser.usage.input + winner.usage.input);
    }
}

#[test]
fn a_failed_leg_does_not_win_and_the_race_falls_back() {
    let fast = start_mock(&[]);
    let gw = start_gateway_with(&config(free_port(), &[("fast", fast.port)], RACE_DOWN));
    let (r, _) = post(&gw, &chat_body("race-down", false));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(served(&r), "fast/gpt-4o-mini");
    let attempts = attempts(&r);
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[0].starts_with("down/never="), "{attempts:?}");

    // An Anthropic-dialect client gets the winner's answer in its own dialect.
    for stream in [false, true] {
        let body = serde_json::json!({
            "model": "race-down", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "Say hello"}],
        })
        .to_string();
        let mut s = connect(&gw);
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/messages",
            &[("x-api-key", GW_KEY), ("anthropic-version", "2023-06-01")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(served(&r), "fast/gpt-4o-mini");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if stream {
            assert!(text.contains("event: message_start"), "{text}");
            assert!(text.contains("event: message_stop"), "{text}");
        } else {
            let v = r.json();
            assert_eq!(v["type"], "message", "{v}");
            assert!(v["content"][0]["text"].is_string(), "{v}");
        }
    }
}

/// The p99 of `n` requests to `route`, and how many were hedged (two attempts).
fn p99(gw: &Gateway, route: &str, n: usize) -> (Duration, usize) {
    let (p50, p99, hedged) = quantiles(gw, route, n);
    eprintln!("{route}: p50 {p50:?}, p99 {p99:?} over {n} requests, {hedged} hedged");
    (p99, hedged)
}

fn quantiles(gw: &Gateway, route: &str, n: usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(n);
    let mut hedged = 0;
    for _ in 0..n {
        let (r, took) = post(gw, &chat_body(route, false));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        if attempts(&r).len() > 1 {
            hedged += 1;
        }
        times.push(took);
    }
    times.sort();
    (times[n / 2], times[(n * 99).div_ceil(100) - 1], hedged)
}

#[test]
fn a_hedge_cuts_the_slow_tail_within_its_share() {
    // One target answers 10% of its requests after 600 ms; the other always at once.
    let tail = start_mock(&["--fault", "p=0.1,slow:ms=600"]);
    let steady = start_mock(&[]);
    let routes = r#"
[[routes]]
name = "plain"
targets = ["tail/gpt-4o-mini"]

[[routes]]
name = "hedged"
strategy = "hedge"
hedge = { after = "100ms", max_extra = "15%" }
targets = ["tail/gpt-4o-mini", "steady/gpt-4o-mini"]
"#;
    let gw = start_gateway_with(&config(
        free_port(),
        &[("tail", tail.port), ("steady", steady.port)],
        routes,
    ));
    let n = 200;
    let (plain, _) = p99(&gw, "plain", n);
    let (hedged, count) = p99(&gw, "hedged", n);
    eprintln!("p99 over {n}: plain {plain:?}, hedged {hedged:?}, {count} hedges");
    assert!(plain >= Duration::from_millis(600), "{plain:?}");
    assert!(hedged < Duration::from_millis(400), "{hedged:?}");
    assert!(count >= 5, "{count} hedges");
    assert!(count * 100 <= n * 15, "{count} hedges of {n} requests");
}

fn script(port: u16, fault: Option<&str>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("mock");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = match fault {
        Some(f) => {
            let body = format!(r#"{{"fault":"{f}"}}"#);
            roundtrip(&mut s, "POST", "/mock/fault", &[], body.as_bytes())
        }
        None => roundtrip(&mut s, "DELETE", "/mock/fault", &[], b""),
    };
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// Sends `n` requests to `route`; the provider of each answer.
fn providers(gw: &Gateway, route: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (r, _) = post(gw, &chat_body(route, false));
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            r.header("x-switchyard-provider").unwrap_or("-").to_owned()
        })
        .collect()
}

/// Where the last `k` answers have come from `who` at least 70% of the time (10% of requests
/// explore the other target; the rest is room for a loaded test machine's noise).
fn settled(seen: &[String], who: &str, k: usize) -> bool {
    let tail = &seen[seen.len().saturating_sub(k)..];
    tail.iter().filter(|p| p.as_str() == who).count() * 10 >= tail.len() * 7
}

#[test]
fn fastest_converges_on_the_faster_target_and_moves_when_speeds_swap() {
    let a = start_mock(&[]);
    let b = start_mock(&[]);
    script(b.port, Some("slow:ms=200"));
    let routes = r#"
[[routes]]
name = "quick"
strategy = "fastest"
targets = ["b/gpt-4o-mini", "a/gpt-4o-mini"]
"#;
    let gw = start_gateway_with(&config(
        free_port(),
        &[("a", a.port), ("b", b.port)],
        routes,
    ));
    // b comes first in config order and is slow: within 60 requests the route is on a.
    let seen = providers(&gw, "quick", 60);
    assert!(settled(&seen, "a", 20), "{seen:?}");
    let (r, _) = post(&gw, &chat_body("quick", false));
    let reason = r.header("x-switchyard-route-reason").unwrap();
    assert!(reason.starts_with("fastest: "), "{reason}");
    assert!(
        reason.contains("a/gpt-4o-mini=") && reason.contains("ms"),
        "{reason}"
    );

    // The speeds swap: within tens of requests the route moves to b.
    script(a.port, Some("slow:ms=200"));
    script(b.port, None);
    let seen = providers(&gw, "quick", 80);
    assert!(settled(&seen, "b", 20), "{seen:?}");
}

/// Responses and Gemini-native clients race too: the winner's answer reaches them in their own
/// dialect, and a Responses answer from a race is kept, so the next turn can continue it.
#[test]
fn responses_and_gemini_clients_race_and_a_raced_turn_can_be_continued() {
    let fast = start_mock(&["--ttft-ms", "20"]);
    let slow = start_mock(&["--ttft-ms", "800"]);
    let gw = start_gateway_with(&config(
        free_port(),
        &[("fast", fast.port), ("slow", slow.port)],
        RACE,
    ));
    let auth = bearer();
    let respond = |body: serde_json::Value| {
        let mut s = connect(&gw);
        let headers = [("authorization", auth.as_str())];
        roundtrip(
            &mut s,
            "POST",
            "/v1/responses",
            &headers,
            body.to_string().as_bytes(),
        )
    };
    for stream in [false, true] {
        let r = respond(serde_json::json!({"model": "race", "input": "Hi", "stream": stream}));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(served(&r), "fast/gpt-4o-mini");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let id = if stream {
            assert!(text.contains("event: response.completed"), "{text}");
            let start = text.find("\"id\":\"resp_").expect("a response id") + 6;
            text[start..start + text[start..].find('"').unwrap()].to_owned()
        } else {
            let v = r.json();
            assert_eq!(v["object"], "response", "{v}");
            v["id"].as_str().expect("id").to_owned()
        };
        // The raced turn was kept: the next turn continues it (an unknown id is a 404).
        std::thread::sleep(Duration::from_millis(100));
        let r = respond(
            serde_json::json!({"model": "race", "input": "More", "previous_response_id": id}),
        );
        assert_eq!(
            r.status,
            200,
            "stream={stream}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    for (path, streamed) in [
        ("/v1beta/models/race:generateContent", false),
        ("/v1beta/models/race:streamGenerateContent?alt=sse", true),
    ] {
        let body = r#"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}"#;
        let mut s = connect(&gw);
        let r = roundtrip(
            &mut s,
            "POST",
            path,
            &[("x-goog-api-key", GW_KEY)],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(served(&r), "fast/gpt-4o-mini");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("\"candidates\""), "{text}");
        assert_eq!(text.starts_with("data: "), streamed, "{text}");
    }
}

/// `Budget exceeded ... (spent $X, $Y reserved ...; this request may cost up to $Z)`:
/// (X, Y, Z).
fn budget_figures(
    r: &RawResponse,
) -> (
    rust_decimal::Decimal,
    rust_decimal::Decimal,
    rust_decimal::Decimal,
) {
    let v = r.json();
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let after = |marker: &str| -> rust_decimal::Decimal {
        let at = msg
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {msg}"))
            + marker.len();
        let n: String = msg[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        n.trim_end_matches('.')
            .parse()
            .unwrap_or_else(|_| panic!("{msg}"))
    };
    (after("(spent $"), after(", $"), after("may cost up to $"))
}

fn post_as(gw: &Gateway, key: &str, body: &str) -> RawResponse {
    let auth = format!("Bearer {key}");
    roundtrip(
        &mut connect(gw),
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        body.as_bytes(),
    )
}

#[test]
fn a_race_charges_every_legs_cost_to_the_budget() {
    use rust_decimal::Decimal;
    let fast = start_mock(&["--ttft-ms", "20"]);
    let slow = start_mock(&["--ttft-ms", "800"]);
    let mocks = [("fast", fast.port), ("slow", slow.port)];
    let body = chat_body("race", false);
    // First, the figures: what one race costs (winner and loser, from the ledger) and what
    // it reserves (from a key whose budget refuses anything).
    let probe_key = "sk-sy-probe-key-00001";
    let gw = start_gateway_with(&config(
        free_port(),
        &mocks,
        &format!(
            "[[gateway_keys]]\nname = \"probe\"\nkey = \"{probe_key}\"\n\
             budget = {{ usd = \"0.000000001\", period = \"total\" }}\n{RACE}"
        ),
    ));
    let (r, _) = post(&gw, &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let row = ledger_row(&gw, r.header("x-switchyard-request-id").unwrap());
    let cost_of = |role: Role| {
        row.attempts
            .iter()
            .find(|a| a.role == role)
            .and_then(|a| a.cost_usd)
            .unwrap_or_else(|| panic!("{role:?} priced: {row:?}"))
    };
    let (winner, loser) = (cost_of(Role::Served), cost_of(Role::RaceLoser));
    assert!(loser > Decimal::ZERO && winner > Decimal::ZERO, "{row:?}");
    let r = post_as(&gw, probe_key, &body);
    assert_eq!(r.status, 402, "{}", String::from_utf8_lossy(&r.body));
    let (_, _, reserve) = budget_figures(&r);
    drop(gw);

    // A budget that admits one race and, after it, one more if only the winner were charged
    // (winner + reserve <= budget), but not when every leg is (winner + loser + reserve >
    // budget).
    let budget = (reserve + winner + loser / Decimal::TWO).round_dp(9);
    let key = "sk-sy-racer-key-00001";
    let gw = start_gateway_with(&config(
        free_port(),
        &mocks,
        &format!(
            "[[gateway_keys]]\nname = \"racer\"\nkey = \"{key}\"\n\
             budget = {{ usd = \"{budget}\", period = \"total\" }}\n{RACE}"
        ),
    ));
    let first = post_as(&gw, key, &body);
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let row = ledger_row(&gw, first.header("x-switchyard-request-id").unwrap());
    let total = row.cost_usd.expect("priced");
    assert_eq!(total, winner + loser, "{row:?}");
    // Once the first race has settled (nothing reserved), the key has spent both legs and
    // the next race is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = post_as(&gw, key, &body);
        assert_eq!(
            r.status,
            402,
            "admitted: the budget was charged less than every leg: {}",
            String::from_utf8_lossy(&r.body)
        );
        let (spent, reserved, _) = budget_figures(&r);
        if reserved.is_zero() {
            assert_eq!(spent, total, "settled to the sum of the legs' costs");
            break;
        }
        assert!(Instant::now() < deadline, "the first race never settled");
        std::thread::sleep(Duration::from_millis(50));
    }
}
