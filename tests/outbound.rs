//! The outbound client (the gateway's own requests) against the mock provider, in process, on
//! real sockets: answers whole and streamed, key rests, breakers, connection reuse, failures
//! and the deadline, and TLS with the test CA.

mod mock_common;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_core::connectors::ConnectorOptions;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use switchyard::config::{Config, Target};
use switchyard::dialect::Endpoint;
use switchyard::mock::MockOptions;
use switchyard::net::Resolver;
use switchyard::outbound::{OutboundClient, OutboundErrorKind, OutboundRequest};
use switchyard::providers::admit::Skip;
use switchyard::proxy::GatewayState;
use switchyard::resilience::breaker::BreakerState;
use switchyard::resilience::Health;
use tokio::time::Instant;

const KEY_A: &str = "sk-mock-outbound-a";
const KEY_B: &str = "sk-mock-outbound-b";

/// A mock that accepts only `KEY_A` and `KEY_B`; returns its `http://127.0.0.1:PORT`.
async fn start_mock() -> String {
    mock_common::start(MockOptions {
        expect_keys: vec![KEY_A.to_owned(), KEY_B.to_owned()],
        ..MockOptions::default()
    })
    .await
}

/// Gateway state with `providers` (TOML) and a breaker that opens after `failures`.
fn state(providers: &str, failures: u32) -> Arc<GatewayState> {
    let text = format!(
        "[resilience]\nbreaker_failures = {failures}\nbreaker_open_for = \"60s\"\n{providers}"
    );
    let config = Config::parse("outbound.toml", &text, &|_| None).expect("config");
    Arc::new(GatewayState::new(
        config,
        Resolver::new(),
        Health::new(),
        switchyard::governance::Governance::in_memory(),
        Default::default(),
        switchyard::conversation::Store::new(1 << 20, std::time::Duration::from_secs(60)),
    ))
}

fn openai_provider(name: &str, base_url: &str, keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"openai-compatible\"\nbase_url = \"{base_url}\"\n\
         api_keys = [{}]\nconnect_timeout = \"2s\"\n",
        keys.join(", ")
    )
}

fn client() -> OutboundClient {
    OutboundClient::new(ConnectorOptions::new(16)).expect("client")
}

fn chat(model: &str, stream: bool, within: Duration) -> OutboundRequest {
    let body = json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello to the outbound client."}],
    });
    OutboundRequest {
        target: Target {
            provider: 0,
            model: model.to_owned(),
        },
        endpoint: Endpoint::ChatCompletions,
        body: Bytes::from(body.to_string()),
        stream,
        deadline: Instant::now() + within,
        headers: Vec::new(),
    }
}

fn with_header(mut req: OutboundRequest, name: &'static str, value: &str) -> OutboundRequest {
    req.headers.push((
        HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("header value"),
    ));
    req
}

fn header<'a>(h: &'a pingora_http::ResponseHeader, name: &str) -> &'a str {
    h.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn mock_stats(base: &str) -> Value {
    reqwest::get(format!("{base}/mock/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON")
}

/// Neither the error's message nor its debug form may hold a provider key.
fn assert_no_key(e: &switchyard::outbound::OutboundError) {
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(
            !text.contains(KEY_A) && !text.contains(KEY_B),
            "a key leaked: {text}"
        );
    }
}

#[tokio::test]
async fn a_json_call_is_shaped_like_a_proxied_one_and_reuses_its_connection() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A]),
        5,
    );
    let client = client();
    for i in 0..5 {
        let req = with_header(
            chat("mock-large", false, Duration::from_secs(10)),
            // The gateway's own and the client's credentials never reach the provider.
            "authorization",
            "Bearer sk-sy-not-a-provider-key",
        );
        let req = with_header(req, "x-switchyard-feature", "judge");
        let mut resp = client.send(&gw, req).await.expect("answer");
        assert_eq!(resp.status, 200);
        assert_eq!(
            header(&resp.header, "x-mock-auth"),
            "bearer",
            "our key, as a bearer"
        );
        assert_eq!(header(&resp.header, "x-mock-model"), "mock-large");
        assert_eq!(resp.attempt.provider, "local");
        assert_eq!(resp.attempt.key_index, Some(0));
        assert_eq!(resp.attempt.reused_connection, i > 0, "call {i}");
        let body = resp.read_to_end(1 << 20).await.expect("body");
        let v: Value = serde_json::from_slice(&body).expect("JSON body");
        assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
        assert!(resp.is_done());
        assert!(resp.next_chunk().await.expect("after the end").is_none());
    }
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["by_path"]["/v1/chat/completions"], 5, "{stats}");
    // The stats request itself is one more connection.
    let opened = stats["connections"].as_u64().unwrap_or(0);
    assert!(opened < 5, "5 calls opened {opened} connections");
    assert_eq!(opened, 2, "one for the calls, one for the stats");
}

#[tokio::test]
async fn a_streamed_answer_arrives_chunk_by_chunk() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A]),
        5,
    );
    let client = client();
    let req = with_header(
        with_header(
            chat("mock-large", true, Duration::from_secs(10)),
            "x-mock-itl-ms",
            "40",
        ),
        "x-mock-tokens",
        "5",
    );
    let started = std::time::Instant::now();
    let mut resp = client.send(&gw, req).await.expect("answer");
    assert_eq!(resp.status, 200);
    assert!(header(&resp.header, "content-type").starts_with("text/event-stream"));
    let mut chunks: Vec<(Duration, Bytes)> = Vec::new();
    while let Some(c) = resp.next_chunk().await.expect("chunk") {
        chunks.push((started.elapsed(), c));
    }
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    // Pieces arrive as the mock sends them, not all at the end.
    let (first, last) = (chunks[0].0, chunks[chunks.len() - 1].0);
    assert!(
        last - first >= Duration::from_millis(150),
        "{first:?}..{last:?}"
    );
    let text: String = chunks
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    let data = mock_common::sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    let pieces: String = data
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| {
            let v: Value = serde_json::from_str(d).ok()?;
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!pieces.is_empty(), "{text}");
    // Read to the end: the connection went back to the pool.
    let again = client
        .send(&gw, chat("mock-large", true, Duration::from_secs(10)))
        .await
        .expect("second answer");
    assert!(again.attempt.reused_connection);
}

#[tokio::test]
async fn a_429_rests_the_key_for_its_retry_after_and_the_next_call_takes_another() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A, KEY_B]),
        5,
    );
    let client = client();
    let before = Instant::now();
    let req = with_header(
        chat("mock-large", false, Duration::from_secs(10)),
        "x-mock-fault",
        "429:retry-after=7",
    );
    let e = client.send(&gw, req).await.expect_err("429");
    assert_eq!(e.kind, OutboundErrorKind::Status(429));
    assert!(e.retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(e.class(), "rate_limited");
    assert_eq!(e.attempt.key_index, Some(0));
    assert_no_key(&e);
    let up = &gw.upstreams[0];
    let rests_until = up.key_health[0].available_at(Instant::now());
    assert!(
        rests_until >= before + Duration::from_secs(7),
        "key #0 rests for the provider's retry-after"
    );
    assert!(up.key_health[1].available(Instant::now()));
    // Key #0 rests: both next calls carry key #1.
    for _ in 0..2 {
        let mut ok = client
            .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
            .await
            .expect("answer with the other key");
        assert_eq!(ok.attempt.key_index, Some(1));
        ok.read_to_end(1 << 20).await.expect("body");
    }
    // A 429 does not count against the breaker.
    assert_eq!(up.breaker.state(Instant::now()), BreakerState::Closed);
    // With every key resting, nothing is sent.
    let req = with_header(
        chat("mock-large", false, Duration::from_secs(10)),
        "x-mock-fault",
        "429:retry-after=7",
    );
    let e = client.send(&gw, req).await.expect_err("429 on key #1");
    assert_eq!(e.attempt.key_index, Some(1));
    let e = client
        .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
        .await
        .expect_err("every key rests");
    assert_eq!(e.kind, OutboundErrorKind::Unavailable(Skip::KeysResting));
    assert!(e.retryable, "another candidate may serve");
    assert_eq!(e.class(), "keys_resting");
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["by_path"]["/v1/chat/completions"], 4, "{stats}");
    assert_eq!(
        stats["connections"], 2,
        "the 429s were read whole and pooled: {stats}"
    );
}

#[tokio::test]
async fn a_rejected_key_is_retired() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &["sk-not-accepted", KEY_A]),
        5,
    );
    let client = client();
    let e = client
        .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
        .await
        .expect_err("401");
    assert_eq!(e.kind, OutboundErrorKind::Status(401));
    assert!(e.retryable, "another key may do");
    assert_eq!(e.attempt.key_index, Some(0));
    assert!(!e.to_string().contains("sk-not-accepted"), "{e}");
    assert!(!gw.upstreams[0].key_health[0].available(Instant::now()));
    for _ in 0..2 {
        let mut ok = client
            .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
            .await
            .expect("the other key");
        assert_eq!(ok.attempt.key_index, Some(1));
        ok.read_to_end(1 << 20).await.expect("body");
    }
}

#[tokio::test]
async fn server_errors_open_the_breaker() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A]),
        2,
    );
    let client = client();
    for _ in 0..2 {
        let req = with_header(
            chat("mock-large", false, Duration::from_secs(10)),
            "x-mock-fault",
            "503",
        );
        let e = client.send(&gw, req).await.expect_err("503");
        assert_eq!(e.kind, OutboundErrorKind::Status(503));
        assert!(e.retryable);
        assert_eq!(e.class(), "server_error");
    }
    let up = &gw.upstreams[0];
    assert_eq!(up.breaker.state(Instant::now()), BreakerState::Open);
    assert_eq!(
        up.model_breaker("mock-large").state(Instant::now()),
        BreakerState::Open
    );
    let e = client
        .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
        .await
        .expect_err("circuit open");
    assert_eq!(e.kind, OutboundErrorKind::Unavailable(Skip::CircuitOpen));
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["by_path"]["/v1/chat/completions"], 2, "{stats}");
}

#[tokio::test]
async fn a_whole_answer_closes_the_breaker_count() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A]),
        2,
    );
    let client = client();
    let fail = || {
        with_header(
            chat("mock-large", false, Duration::from_secs(10)),
            "x-mock-fault",
            "500",
        )
    };
    client.send(&gw, fail()).await.expect_err("500");
    // A success read to its end resets the count of consecutive failures...
    let mut ok = client
        .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
        .await
        .expect("answer");
    ok.read_to_end(1 << 20).await.expect("body");
    client.send(&gw, fail()).await.expect_err("500");
    assert_eq!(
        gw.upstreams[0].breaker.state(Instant::now()),
        BreakerState::Closed,
        "1 failure since the success"
    );
    // ...but an answer dropped before its end is no success.
    let ok = client
        .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
        .await
        .expect("answer");
    drop(ok);
    client.send(&gw, fail()).await.expect_err("500");
    assert_eq!(
        gw.upstreams[0].breaker.state(Instant::now()),
        BreakerState::Open
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_connect_error_and_a_breaker_failure() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let gw = state(
        &openai_provider("down", &format!("http://127.0.0.1:{closed}/v1"), &[KEY_A]),
        1,
    );
    let client = client();
    let e = client
        .send(&gw, chat("m", false, Duration::from_secs(10)))
        .await
        .expect_err("refused");
    assert_eq!(e.kind, OutboundErrorKind::Connect, "{e}");
    assert!(e.retryable);
    assert_eq!(e.class(), "ConnectRefused");
    assert_eq!(e.attempt.provider, "down");
    assert_no_key(&e);
    assert_eq!(
        gw.upstreams[0].breaker.state(Instant::now()),
        BreakerState::Open
    );
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out_at_the_deadline() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A]),
        5,
    );
    let client = client();
    let started = std::time::Instant::now();
    let req = with_header(
        chat("mock-large", false, Duration::from_millis(300)),
        "x-mock-fault",
        "hang",
    );
    let e = client.send(&gw, req).await.expect_err("hang");
    let took = started.elapsed();
    assert_eq!(e.kind, OutboundErrorKind::Timeout, "{e}");
    assert_eq!(e.class(), "deadline");
    assert!(!e.retryable, "no time is left");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        gw.upstreams[0].breaker.state(Instant::now()),
        BreakerState::Closed,
        "one failure of five"
    );
    // A deadline already past sends nothing.
    let req = chat("mock-large", false, Duration::ZERO);
    let e = client.send(&gw, req).await.expect_err("past");
    assert_eq!(e.kind, OutboundErrorKind::Timeout);
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["by_path"]["/v1/chat/completions"], 1, "{stats}");
}

#[tokio::test]
async fn a_stalled_stream_times_out_at_the_deadline() {
    let mock = start_mock().await;
    let gw = state(
        &openai_provider("local", &format!("{mock}/v1"), &[KEY_A]),
        5,
    );
    let client = client();
    let req = with_header(
        chat("mock-large", true, Duration::from_millis(500)),
        "x-mock-itl-ms",
        "20000",
    );
    let started = std::time::Instant::now();
    let mut resp = client.send(&gw, req).await.expect("the head arrives");
    let mut got = 0;
    let e = loop {
        match resp.next_chunk().await {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("the stream cannot end within 20 s per event"),
            Err(e) => break e,
        }
    };
    let took = started.elapsed();
    assert!(got >= 1, "the first event came before the stall");
    assert_eq!(e.kind, OutboundErrorKind::Timeout, "{e}");
    assert!(!e.retryable);
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(resp.is_done());
    assert!(resp.next_chunk().await.expect("after the error").is_none());
}

#[tokio::test]
async fn an_anthropic_target_gets_its_path_and_key_header() {
    let mock = start_mock().await;
    let providers = format!(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{mock}/v1\"\n\
         api_keys = [\"{KEY_A}\"]\n"
    );
    let gw = state(&providers, 5);
    let body = json!({
        "model": "claude-mock",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "Hello"}],
    });
    let req = OutboundRequest {
        target: Target {
            provider: 0,
            model: "claude-mock".to_owned(),
        },
        endpoint: Endpoint::Messages,
        body: Bytes::from(body.to_string()),
        stream: false,
        deadline: Instant::now() + Duration::from_secs(10),
        headers: Vec::new(),
    };
    let mut resp = client().send(&gw, req).await.expect("answer");
    assert_eq!(resp.status, 200);
    assert_eq!(header(&resp.header, "x-mock-auth"), "x-api-key");
    let v: Value =
        serde_json::from_slice(&resp.read_to_end(1 << 20).await.expect("body")).expect("JSON");
    assert_eq!(v["type"], "message", "{v}");
    let stats = mock_stats(&mock).await;
    assert_eq!(stats["by_path"]["/v1/messages"], 1, "{stats}");
}

#[tokio::test]
async fn tls_uses_the_configured_roots_and_the_host_name() {
    let addr = mock_common::start_tls(MockOptions {
        expect_keys: vec![KEY_A.to_owned()],
        ..MockOptions::default()
    })
    .await;
    let port = addr.rsplit(':').next().expect("port");
    let gw = state(
        &openai_provider("secure", &format!("https://localhost:{port}/v1"), &[KEY_A]),
        5,
    );
    let fixture = |name: &str| mock_common::fixture(name).to_string_lossy().into_owned();
    let mut trusting = ConnectorOptions::new(16);
    trusting.ca_file = Some(fixture("ca.pem"));
    let client = OutboundClient::new(trusting).expect("client");
    for i in 0..2 {
        let mut resp = client
            .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
            .await
            .expect("answer over TLS");
        assert_eq!(resp.status, 200);
        assert_eq!(header(&resp.header, "x-mock-tls-sni"), "localhost");
        assert_eq!(header(&resp.header, "x-mock-auth"), "bearer");
        assert_eq!(resp.attempt.reused_connection, i > 0);
        resp.read_to_end(1 << 20).await.expect("body");
    }

    // A client that trusts another root refuses the mock's certificate.
    let mut other = ConnectorOptions::new(16);
    other.ca_file = Some(fixture("untrusted.pem"));
    let e = OutboundClient::new(other)
        .expect("client")
        .send(&gw, chat("mock-large", false, Duration::from_secs(10)))
        .await
        .expect_err("untrusted");
    assert_eq!(e.kind, OutboundErrorKind::Tls, "{e}");
    assert!(e.excludes_target());
    assert_no_key(&e);

    // Roots that cannot be loaded are an error, not a panic.
    let mut missing = ConnectorOptions::new(16);
    missing.ca_file = Some(fixture("no-such-file.pem"));
    let err = OutboundClient::new(missing).err().expect("no roots");
    assert!(err.contains("no-such-file.pem"), "{err}");
}
