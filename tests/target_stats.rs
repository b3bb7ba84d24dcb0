//! Live target statistics end to end: the real gateway against the mock provider, answers that
//! succeed, fail with 503 and 429, or cannot connect, then `GET /admin/targets` and `/metrics`
//! on the admin port must show each target's counts, rates and timings.

mod common;
use common::*;
use serde_json::Value;

fn admin_get(port: u16, path: &str) -> RawResponse {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin port");
    roundtrip(&mut s, "GET", path, &[], b"")
}

/// Sends one chat request; returns the status and the attempts the gateway listed.
fn chat(gw: &Gateway, model: &str, stream: bool, headers: &[(&str, &str)]) -> (u16, Vec<String>) {
    let mut s = connect(gw);
    let auth = bearer();
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(headers);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &h,
        chat_body(model, stream).as_bytes(),
    );
    (r.status, attempts(&r))
}

/// Attempts in `list` at `target` that ended with `outcome` (`200`, `503`, `ConnectRefused`).
fn count(lists: &[Vec<String>], target: &str, outcome: &str) -> u64 {
    lists
        .iter()
        .flatten()
        .filter(|a| a.starts_with(&format!("{target}#")) || a.starts_with(&format!("{target}=")))
        .filter(|a| a.contains(&format!("={outcome}(")))
        .count() as u64
}

fn target<'a>(v: &'a Value, provider: &str, model: &str) -> &'a Value {
    v["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["provider"] == provider && t["model"] == model)
        .unwrap_or_else(|| panic!("no {provider}/{model} in {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn admin_targets_shows_counts_rates_and_timings_per_target() {
    let mock = start_mock(&[]);
    let admin = free_port();
    let cfg = standard_config(
        free_port(),
        mock.port,
        &format!("\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n"),
    );
    let gw = start_gateway_with(&cfg);
    let empty = admin_get(admin, "/admin/targets").json();
    assert_eq!(empty["targets"], serde_json::json!([]), "{empty}");
    assert_eq!(empty["half_life_secs"], 60.0);

    let mut seen = Vec::new();
    let slow = [("x-mock-ttft-ms", "60"), ("x-mock-tokens", "20")];
    for stream in [false, false, false, true, true] {
        let (status, list) = chat(&gw, "openai/gpt-4o-mini", stream, &slow);
        assert_eq!(status, 200);
        seen.push(list);
    }
    // A target that refuses connections, then the fallback serves.
    let (status, list) = chat(&gw, "failover", false, &[]);
    assert_eq!(status, 200);
    seen.push(list);
    // Every attempt answered 503: retried, then the last 503 passed on.
    for _ in 0..2 {
        let (status, list) = chat(&gw, "openai/gpt-4o-mini", false, &[("x-mock-fault", "503")]);
        assert_eq!(status, 503, "{list:?}");
        seen.push(list);
    }
    // groq: one success, then 429s (the key then rests: later tries are skipped, not made).
    let (status, list) = chat(&gw, "groq/llama-3.3-70b-versatile", false, &[]);
    assert_eq!(status, 200);
    seen.push(list);
    let (status, list) = chat(
        &gw,
        "groq/llama-3.3-70b-versatile",
        false,
        &[("x-mock-fault", "429")],
    );
    assert_eq!(status, 429, "{list:?}");
    seen.push(list);

    let v = admin_get(admin, "/admin/targets").json();
    let gpt = target(&v, "openai", "gpt-4o-mini");
    let (ok, failed) = (
        count(&seen, "openai/gpt-4o-mini", "200"),
        count(&seen, "openai/gpt-4o-mini", "503"),
    );
    assert_eq!(ok, 6, "{seen:?}"); // five above and the failover's second attempt
    assert!(failed >= 2, "{seen:?}");
    assert_eq!(gpt["successes"], ok, "{gpt}");
    assert_eq!(gpt["errors"], failed, "{gpt}");
    assert_eq!(gpt["rate_limited"], 0, "{gpt}");
    assert_eq!(gpt["samples"], ok + failed, "{gpt}");
    // Everything happened within seconds of a 60 s half-life: the decayed rate is within a
    // few percent of the plain share.
    let share = failed as f64 / (ok + failed) as f64;
    assert!(
        (f(&gpt["error_rate"]) - share).abs() < 0.05 * share,
        "{gpt}"
    );
    assert_eq!(f(&gpt["rate_429"]), 0.0, "{gpt}");
    // The mock waited 60 ms before its first byte: p50 and p90 at least that (minus the
    // sketch's 9%), well under a second.
    for q in ["p50", "p90"] {
        let ttft = f(&gpt["ttft_ms"][q]);
        assert!((54.0..1000.0).contains(&ttft), "ttft {q}: {gpt}");
        let total = f(&gpt["total_ms"][q]);
        assert!(total >= ttft * 0.9 && total < 5000.0, "total {q}: {gpt}");
    }
    assert!(f(&gpt["tokens_per_sec"]["avg"]) > 0.0, "{gpt}");
    assert!(
        ["closed", "half_open", "open"].contains(&gpt["breaker"].as_str().unwrap_or("")),
        "{gpt}"
    );
    assert!(gpt["idle_secs"].as_f64().is_some(), "{gpt}");

    let groq = target(&v, "groq", "llama-3.3-70b-versatile");
    let limited = count(&seen, "groq/llama-3.3-70b-versatile", "429");
    assert!(limited >= 1, "{seen:?}");
    assert_eq!(groq["successes"], 1, "{groq}");
    assert_eq!(groq["rate_limited"], limited, "{groq}");
    assert_eq!(groq["errors"], limited, "429s are errors too: {groq}");
    let share = limited as f64 / (1 + limited) as f64;
    assert!(
        (f(&groq["rate_429"]) - share).abs() < 0.05 * share,
        "{groq}"
    );
    assert_eq!(groq["rate_429"], groq["error_rate"], "{groq}");

    let down = target(&v, "down", "never");
    assert_eq!(count(&seen, "down/never", "ConnectRefused"), 1, "{seen:?}");
    assert_eq!(
        (down["errors"].as_u64(), down["successes"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(f(&down["error_rate"]), 1.0, "{down}");
    assert!(
        down["ttft_ms"]["p50"].is_null(),
        "a failure has no timings: {down}"
    );

    let metrics = String::from_utf8(admin_get(admin, "/metrics").body).expect("utf-8");
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .to_owned()
    };
    let ratio = line(r#"switchyard_target_error_ratio{model="gpt-4o-mini",provider="openai"}"#);
    let value: f64 = ratio
        .rsplit(' ')
        .next()
        .and_then(|x| x.parse().ok())
        .expect(&ratio);
    assert!((value - f(&gpt["error_rate"])).abs() < 1e-9, "{ratio}");
    line(r#"switchyard_target_ttft_seconds{model="gpt-4o-mini",provider="openai",quantile="0.9"}"#);
    line(
        r#"switchyard_target_rate_limited_ratio{model="llama-3.3-70b-versatile",provider="groq"}"#,
    );
}
