//! Fault injection end to end: a chain whose first target misbehaves in every way the mock can
//! (429 with and without retry-after, 500, 503, 529, hang, reset) and whose second is healthy.
//! Clients must see no error, the breaker must open and recover, attempts stay bounded.

mod common;
use common::*;
use std::time::{Duration, Instant};

struct Stack {
    bad: Mock,
    _good: Mock,
    gw: Gateway,
    admin: u16,
}

fn stack(fault: &str, extra_resilience: &str) -> Stack {
    let bad = start_mock(&["--fault", fault]);
    let good = start_mock(&[]);
    let port = free_port();
    let admin = free_port();
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
threads = 2

[admin]
listen = "127.0.0.1:{admin}"

[pricing]
unpriced = "record_unknown"

[resilience]
breaker_failures = 5
breaker_open_for = "1s"
backoff_base = "10ms"
backoff_max = "200ms"
{extra_resilience}

[[providers]]
name = "flaky"
kind = "openai"
base_url = "http://127.0.0.1:{bad}/v1"
api_keys = ["env:MOCK_KEY"]
read_timeout = "300ms"
connect_timeout = "300ms"

[[providers]]
name = "flaky2"
kind = "openai"
base_url = "http://127.0.0.1:{bad}/v2"
api_keys = ["env:MOCK_KEY"]
read_timeout = "300ms"

[[providers]]
name = "healthy"
kind = "openai"
base_url = "http://127.0.0.1:{good}/v1"
api_keys = ["env:MOCK_KEY"]

[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"

[[routes]]
name = "chain"
targets = ["flaky/m1", "healthy/m1"]

[[routes]]
name = "alldown"
targets = ["flaky/m1", "flaky2/m1"]
"#,
        bad = bad.port,
        good = good.port
    );
    let gw = start_gateway_with(&cfg);
    Stack {
        bad,
        _good: good,
        gw,
        admin,
    }
}

fn http_get(port: u16, path: &str) -> RawResponse {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    roundtrip(&mut s, "GET", path, &[], b"")
}

fn mock_requests(port: u16) -> u64 {
    http_get(port, "/mock/stats").json()["requests"]
        .as_u64()
        .unwrap()
}

/// Sends `n` requests from `threads` keep-alive clients; returns (statuses, max attempts seen).
fn hammer(gw: &Gateway, model: &str, n: usize, threads: usize, stream: bool) -> (Vec<u16>, usize) {
    let per = n / threads;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let addr = gw.addr();
            let body = chat_body(model, stream);
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut max_attempts = 0;
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                for _ in 0..per {
                    let r = roundtrip(
                        &mut s,
                        "POST",
                        "/v1/chat/completions",
                        &[("authorization", &bearer())],
                        body.as_bytes(),
                    );
                    let real = attempts(&r)
                        .iter()
                        .filter(|a| !a.contains("skipped"))
                        .count();
                    max_attempts = max_attempts.max(real);
                    if r.status == 200 && stream {
                        let text = String::from_utf8_lossy(&r.body);
                        assert!(
                            text.contains("[DONE]") && !text.contains("\"error\""),
                            "{text}"
                        );
                    }
                    if r.header("connection") == Some("close") {
                        s = std::net::TcpStream::connect(&addr).unwrap();
                    }
                    out.push(r.status);
                }
                (out, max_attempts)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut max_attempts = 0;
    for h in handles {
        let (o, m) = h.join().unwrap();
        all.extend(o);
        max_attempts = max_attempts.max(m);
    }
    (all, max_attempts)
}

fn no_client_errors(fault: &str, stream: bool) {
    let st = stack(fault, "");
    let t = Instant::now();
    let (statuses, max_attempts) = hammer(&st.gw, "chain", 1000, 8, stream);
    let bad: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        bad.is_empty(),
        "{fault}: {} client-visible errors: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    assert!(
        max_attempts <= 4,
        "{fault}: attempts bounded, saw {max_attempts}"
    );
    // No retry storm: the breaker (or the key's rest) keeps traffic off the bad target. In
    // `elapsed` seconds the breaker half-opens about once a second, one probe each time.
    let to_bad = mock_requests(st.bad.port);
    let secs = t.elapsed().as_secs() + 1;
    assert!(
        to_bad <= 12 + 4 * secs,
        "{fault}: {to_bad} requests reached the bad target in {secs}s"
    );
    let metrics = String::from_utf8(http_get(st.admin, "/metrics").body).unwrap();
    assert!(
        metrics.contains("switchyard_upstream_attempts_total"),
        "{metrics}"
    );
}

#[test]
fn fault_429_without_retry_after() {
    no_client_errors("429", false);
}

#[test]
fn fault_429_with_retry_after() {
    no_client_errors("429:retry-after=1", false);
}

#[test]
fn fault_500() {
    no_client_errors("500", false);
}

#[test]
fn fault_503_streaming() {
    no_client_errors("503", true);
}

#[test]
fn fault_529() {
    no_client_errors("529", false);
}

#[test]
fn fault_hang() {
    no_client_errors("hang", false);
}

#[test]
fn fault_reset_streaming() {
    no_client_errors("reset", true);
}

#[test]
fn fault_cut_after_the_header_before_the_first_event() {
    // The provider sends its 200 header, then dies: the gateway held the header, so nothing
    // reached the client and the request fails over.
    no_client_errors("cut:after=0", true);
}

#[test]
fn fault_cut_in_the_middle_of_a_non_streamed_body() {
    // Half the JSON, then a reset: held until the end, so the client never sees it.
    no_client_errors("cut", false);
}

#[test]
fn every_target_down_gives_one_clean_error_within_the_deadline() {
    let st = stack("503", "");
    let mut s = connect(&st.gw);
    for _ in 0..20 {
        let t = Instant::now();
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &bearer()),
                ("x-switchyard-timeout-ms", "2000"),
            ],
            chat_body("alldown", false).as_bytes(),
        );
        assert!(
            t.elapsed() < Duration::from_millis(2000),
            "{:?}",
            t.elapsed()
        );
        assert!(
            r.status == 503,
            "{} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.json()["error"]["message"].is_string());
        let real = attempts(&r)
            .iter()
            .filter(|a| !a.contains("skipped"))
            .count();
        assert!(
            real <= 4,
            "the attempt budget bounds calls: {:?}",
            attempts(&r)
        );
        if r.header("connection") == Some("close") {
            s = connect(&st.gw);
        }
    }
}

#[test]
fn hung_targets_answer_before_the_client_deadline() {
    let st = stack("hang", "");
    let mut s = connect(&st.gw);
    let t = Instant::now();
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &bearer()),
            ("x-switchyard-timeout-ms", "1000"),
        ],
        chat_body("alldown", false).as_bytes(),
    );
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(1000),
        "answered before the client's deadline: {took:?}"
    );
    assert!(
        r.status == 504 || r.status == 503,
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.json()["error"]["code"].is_string());
}

#[test]
fn the_breaker_opens_and_recovers() {
    let st = stack("503", "");
    let mut s = connect(&st.gw);
    for _ in 0..10 {
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bearer())],
            chat_body("chain", false).as_bytes(),
        );
        assert_eq!(r.status, 200);
    }
    let health = http_get(st.admin, "/admin/health").json();
    assert_eq!(health["breakers"]["flaky"], "open", "{health}");
    let metrics = String::from_utf8(http_get(st.admin, "/metrics").body).unwrap();
    assert!(
        metrics.contains("switchyard_circuit_breaker_state{target=\"flaky\"} 2"),
        "{metrics}"
    );
    // While open, requests skip the bad target without calling it.
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("chain", false).as_bytes(),
    );
    assert!(
        attempts(&r)[0].contains("skipped:circuit_open"),
        "{:?}",
        attempts(&r)
    );
    // The provider recovers; after open_for a probe closes the breaker.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", st.bad.port)).unwrap();
    let r = roundtrip(&mut c, "POST", "/mock/fault", &[], br#"{"fault":"none"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    std::thread::sleep(Duration::from_millis(1100));
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("chain", false).as_bytes(),
    );
    assert_eq!(
        r.header("x-switchyard-provider"),
        Some("flaky"),
        "{:?}",
        attempts(&r)
    );
    let health = http_get(st.admin, "/admin/health").json();
    assert_eq!(health["breakers"]["flaky"], "closed", "{health}");
}

#[test]
fn a_rejected_key_is_retired_and_the_next_key_serves() {
    // The mock accepts only PROVIDER_KEY; the provider holds a bad key first.
    let good = start_mock(&[]);
    let port = free_port();
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:{}/v1"
api_keys = ["sk-revoked-key", "env:MOCK_KEY"]
[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"
"#,
        good.port
    );
    let gw = start_gateway_with(&cfg);
    let mut s = connect(&gw);
    for i in 0..6 {
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bearer())],
            chat_body("openai/gpt-4o-mini", false).as_bytes(),
        );
        assert_eq!(
            r.status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let a = attempts(&r);
        if i == 0 {
            assert_eq!(a.len(), 2, "first: bad key, then good key: {a:?}");
            assert!(a[0].starts_with("openai/gpt-4o-mini#0=401"), "{a:?}");
        } else {
            assert_eq!(
                a,
                vec![a[0].clone()],
                "the revoked key is not used again: {a:?}"
            );
            assert!(a[0].starts_with("openai/gpt-4o-mini#1=200"), "{a:?}");
        }
    }
    assert!(
        gw.proc_.stderr().contains("rejected key #0"),
        "{}",
        gw.proc_.stderr()
    );
    assert!(!gw.proc_.stderr().contains("sk-revoked-key"));
}

#[test]
fn clients_hanging_up_do_not_trip_a_healthy_providers_breaker() {
    // A slow but healthy provider; each client gives up before the first byte.
    let st = stack("none", "");
    for _ in 0..8 {
        let mut s = connect(&st.gw);
        let body = chat_body("healthy/m1", false);
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\nx-mock-ttft-ms: 1500\r\ncontent-length: {}\r\n\r\n",
            bearer(),
            body.len()
        );
        use std::io::Write;
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        drop(s);
    }
    std::thread::sleep(Duration::from_millis(1800));
    let health = http_get(st.admin, "/admin/health").json();
    assert_ne!(health["breakers"]["healthy"], "open", "{health}");
    assert_ne!(health["breakers"]["healthy/m1"], "open", "{health}");
    let mut s = connect(&st.gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("healthy/m1", false).as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(attempts(&r).len(), 1, "{:?}", attempts(&r));
}

#[test]
fn a_dead_single_target_opens_its_breaker_even_when_its_errors_pass_through() {
    let st = stack("503", "");
    let mut s = connect(&st.gw);
    for _ in 0..4 {
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bearer())],
            chat_body("flaky/m1", false).as_bytes(),
        );
        assert!(r.status == 503, "{}", r.status);
        if r.header("connection") == Some("close") {
            s = connect(&st.gw);
        }
    }
    let health = http_get(st.admin, "/admin/health").json();
    assert_eq!(health["breakers"]["flaky"], "open", "{health}");
}

fn mock_connections(port: u16) -> u64 {
    http_get(port, "/mock/stats").json()["connections"]
        .as_u64()
        .unwrap()
}

/// Upstream connections across N fallbacks (503 from the first target, 200 from the second),
/// counted at both mocks. The healthy target's connection is pooled and reused by every
/// request. The failed attempt's connection is not: pingora 0.9.1 closes an HTTP/1 upstream
/// connection whenever the attempt ends in an error, and an error is the only way to make it
/// try another peer (README, "Resilience": why, with the pingora source lines). This pins that
/// cost; if it starts failing because the failing target's connections are reused, pingora
/// changed: update the README and this test.
#[test]
fn connections_across_fallbacks_healthy_reused_failed_not() {
    const N: u64 = 8;
    let bad = start_mock(&["--fault", "503"]);
    let good = start_mock(&[]);
    let port = free_port();
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
threads = 1

[pricing]
unpriced = "record_unknown"

[resilience]
breaker_failures = 1000
backoff_base = "1ms"
backoff_max = "10ms"

[[providers]]
name = "flaky"
kind = "openai"
base_url = "http://127.0.0.1:{bad}/v1"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "healthy"
kind = "openai"
base_url = "http://127.0.0.1:{good}/v1"
api_keys = ["env:MOCK_KEY"]

[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"

[[routes]]
name = "chain"
targets = ["flaky/m1", "healthy/m1"]
"#,
        bad = bad.port,
        good = good.port
    );
    let gw = start_gateway_with(&cfg);
    let (bad_before, good_before) = (mock_connections(bad.port), mock_connections(good.port));
    let mut client = connect(&gw);
    for i in 0..N {
        let r = roundtrip(
            &mut client,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &bearer())],
            chat_body("chain", false).as_bytes(),
        );
        assert_eq!(
            r.status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(attempts(&r).len(), 2, "request {i}: {:?}", attempts(&r));
        assert!(attempts(&r)[0].contains("=503("), "{:?}", attempts(&r));
    }
    // Each stats request is a connection of its own: the second reading counts itself.
    let good_conns = mock_connections(good.port) - good_before - 1;
    let bad_conns = mock_connections(bad.port) - bad_before - 1;
    assert_eq!(
        mock_requests(bad.port),
        N,
        "every request tried the failing target"
    );
    assert_eq!(
        good_conns, 1,
        "the healthy target's pooled connection serves all {N} fallbacks"
    );
    assert_eq!(
        bad_conns, N,
        "pingora 0.9.1 drops the connection of an attempt that ends in an error (see README)"
    );
}
