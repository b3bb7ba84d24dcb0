//! The proxy path against the mock provider over real sockets: auth swap, streaming pass-through,
//! failover on connect failure, provider errors, timeouts, and what reaches the logs.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn provider_key_replaces_gateway_key_and_model_is_renamed() {
    // The mock demands the provider key: a 200 proves the gateway swapped it in.
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("groq/llama-3.3-70b-versatile", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-mock-auth"), Some("bearer"));
    assert_eq!(r.header("x-mock-model"), Some("llama-3.3-70b-versatile"));
    assert_eq!(r.header("x-switchyard-provider"), Some("groq"));
    assert_eq!(
        r.header("x-switchyard-model"),
        Some("llama-3.3-70b-versatile")
    );
    assert!(r
        .header("x-switchyard-request-id")
        .unwrap()
        .starts_with("req_"));
    let v = r.json();
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello"));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let anth = r#"{"model":"anthropic/claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", GW_KEY)],
        anth.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-mock-auth"), Some("x-api-key"));
    assert_eq!(r.json()["type"], "message");
}

#[test]
fn provider_errors_pass_through_in_their_dialect() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &bearer()),
            ("x-mock-fault", "429:retry-after=7"),
        ],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(r.json()["error"]["message"].is_string());
    let anth = r#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", GW_KEY), ("x-mock-fault", "529")],
        anth.as_bytes(),
    );
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    // The 529 was retried up to the attempt budget before it was passed through.
    assert_eq!(attempts(&r).len(), 4, "{:?}", attempts(&r));
    // The key that got `retry-after: 7` rests: the gateway answers 429 itself, without
    // calling the provider, and says when to come back.
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((5..=7).contains(&after), "{after}");
    assert!(
        attempts(&r)[0].contains("skipped:keys_resting"),
        "{:?}",
        attempts(&r)
    );
    // Other providers are unaffected, on the same connection.
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("groq/llama-3.3-70b-versatile", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "connection reusable after provider errors");
}

#[test]
fn connect_failures_fall_over_to_the_next_target() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("failover", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(attempts(&r).len(), 2, "{:?}", attempts(&r));
    assert_eq!(r.header("x-switchyard-provider"), Some("openai"));
    // Routing says why the candidates came in this order, on answers and on errors alike.
    assert_eq!(r.header("x-switchyard-route-reason"), Some("fallback"));
    // A target that is down, with nothing behind it: one clean error in the client's dialect.
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("down/never", false).as_bytes(),
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("x-switchyard-route-reason"), Some("fallback"));
    let v = r.json();
    assert_eq!(v["error"]["code"], "upstream_unavailable");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("down"),
        "{v}"
    );
}

#[test]
fn a_hung_provider_times_out_with_a_clean_error() {
    let mock = start_mock(&[]);
    let port = free_port();
    let cfg = standard_config(port, mock.port, "").replace(
        "models = [\"gpt-4o-mini\"]",
        "models = [\"gpt-4o-mini\"]\nread_timeout = \"500ms\"",
    );
    let gw = start_gateway_with(&cfg);
    let mut s = connect(&gw);
    let t = Instant::now();
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer()), ("x-mock-fault", "hang")],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "upstream_timeout");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_stream_cut_by_the_provider_ends_the_client_stream() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\nx-mock-fault: cut:after=3\r\ncontent-length: {}\r\n\r\n",
        bearer(),
        chat_body("chat", true).len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(chat_body("chat", true).as_bytes()).unwrap();
    let t = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(10), "no hang");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("data: "),
        "the events before the cut arrive: {text}"
    );
    // The stream ends well-formed: an error event in the client's dialect, then the chunked
    // terminator, and never a [DONE] that would pass it off as complete.
    assert!(text.contains("data: {\"error\":{"), "error event: {text}");
    assert!(text.ends_with("\r\n0\r\n\r\n"), "terminated: {text}");
    assert!(!text.contains("[DONE]"));
}

/// Reads an SSE response and returns (time to first event, time to last byte, events).
fn timed_stream(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (Duration, Duration, Vec<String>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("connection: close\r\n\r\n");
    let t = Instant::now();
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut first = None;
    let mut all = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if first.is_none() && all.windows(6).any(|w| w == b"data: ") {
            first = Some(t.elapsed());
        }
    }
    let text = String::from_utf8_lossy(&all).to_string();
    let events = text
        .lines()
        .filter(|l| l.starts_with("data: "))
        .map(|l| l[6..].to_owned())
        .collect();
    (first.expect("an event arrived"), t.elapsed(), events)
}

#[test]
fn streams_pass_through_event_by_event() {
    let (mock, gw) = start_stack("");
    let body = chat_body("chat", true);
    let h = [
        ("authorization", bearer()),
        ("x-mock-itl-ms", "40".into()),
        ("x-mock-tokens", "10".into()),
    ];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (first, total, events) = timed_stream(gw.port, "/v1/chat/completions", &h, &body);
    // 10 tokens 40 ms apart: the first event must arrive long before the stream ends.
    assert!(total >= Duration::from_millis(400), "{total:?}");
    assert!(
        first + Duration::from_millis(300) < total,
        "first {first:?} total {total:?}: buffered?"
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    // Same stream from the mock directly: identical events (apart from ids/timestamps).
    let direct_body = body.replace("\"chat\"", "\"gpt-4o-mini\"");
    let auth = format!("Bearer {PROVIDER_KEY}");
    let dh = [
        ("authorization", auth.as_str()),
        ("x-mock-itl-ms", "40"),
        ("x-mock-tokens", "10"),
    ];
    let (_, _, direct) = timed_stream(mock.port, "/v1/chat/completions", &dh, &direct_body);
    assert_eq!(events.len(), direct.len());
}

#[test]
fn keys_never_reach_logs() {
    let (_mock, gw) = start_stack("");
    for model in ["chat", "failover", "down/never", "nope/x"] {
        let mut s = connect(&gw);
        let _ = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bearer())],
            chat_body(model, false).as_bytes(),
        );
    }
    let mut s = connect(&gw);
    let _ = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-sy-guessed-wrong")],
        b"{}",
    );
    std::thread::sleep(Duration::from_millis(200));
    let logs = format!("{}{}", gw.proc_.stderr(), gw.proc_.stdout());
    assert!(
        logs.contains("\"gateway_key\":\"tests\""),
        "access log names the key: {logs}"
    );
    for secret in [GW_KEY, PROVIDER_KEY, "sk-sy-guessed-wrong"] {
        assert!(!logs.contains(secret), "{secret} leaked into logs:\n{logs}");
    }
}

#[test]
fn non_streamed_answers_carry_their_exact_cost() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    );
    assert_eq!(r.status, 200);
    let usage = &r.json()["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    // gpt-4o-mini: $0.15 in, $0.60 out per million tokens; 3 and 16 tokens here.
    assert_eq!((prompt, completion), (3, 16));
    assert_eq!(r.header("x-switchyard-cost-usd"), Some("0.00001005"));
    // A streamed answer's header leaves before its usage exists: no cost header.
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("openai/gpt-4o-mini", true).as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(r.header("x-switchyard-cost-usd").is_none());
    // An unpriced model says so rather than claiming $0.
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("openai/private-finetune", false).as_bytes(),
    );
    assert_eq!(r.header("x-switchyard-cost-usd"), Some("unknown"));
}

#[test]
fn huge_client_timeouts_are_capped_not_a_panic() {
    // A client's own deadline headers feed the request's deadline arithmetic: the largest
    // values they can carry still give a normal answer (the config's deadline applies).
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    for (h, v) in [
        ("x-switchyard-timeout-ms", "18446744073709551615"),
        ("x-stainless-timeout", "999999999"),
    ] {
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bearer()), (h, v)],
            chat_body("chat", false).as_bytes(),
        );
        assert_eq!(r.status, 200, "{h}: {}", String::from_utf8_lossy(&r.body));
    }
}
