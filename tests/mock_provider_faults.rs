//! The built-in mock provider's faults and error answers over real sockets: status faults in
//! each dialect, hang / reset / cut / malformed / slow, scripted faults, routing and auth
//! errors, and the connection-level faults over TLS. Helpers are in `mock_common`.

mod mock_common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_common::*;
use serde_json::{json, Value};
use switchyard::mock::{FaultKind, FaultSpec, MockOptions, MockTls};
use tokio::io::{AsyncReadExt, BufReader};

#[tokio::test]
async fn status_faults_in_each_dialect() {
    let base = start_default().await;
    let r = post(
        &format!("{base}/v1/chat/completions"),
        &chat_body(false),
        &[("x-mock-fault", "429:retry-after=2")],
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), "2");
    assert_eq!(header(&r, "x-mock-model"), "mock-large");
    let v = json_body(r).await;
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let anthropic = json!({"model": "claude-mock", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    let r = post(
        &format!("{base}/v1/messages"),
        &anthropic,
        &[("x-mock-fault", "529")],
    )
    .await;
    assert_eq!(r.status(), 529);
    let v = json_body(r).await;
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    let r = post(
        &format!("{base}/v1/messages"),
        &anthropic,
        &[("x-mock-fault", "429")],
    )
    .await;
    let v = json_body(r).await;
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let r = post(
        &format!("{base}/v1beta/models/g:generateContent"),
        &json!({"contents": []}),
        &[("x-mock-fault", "503")],
    )
    .await;
    assert_eq!(r.status(), 503);
    let v = json_body(r).await;
    assert_eq!(v["error"]["status"], "UNAVAILABLE");
    assert_eq!(v["error"]["code"], 503);

    let r = post(
        &format!("{base}/v1/chat/completions"),
        &chat_body(false),
        &[("x-mock-fault", "418")],
    )
    .await;
    assert_eq!(r.status(), 418);
    let r = post(
        &format!("{base}/v1/chat/completions"),
        &chat_body(false),
        &[("x-mock-fault", "bogus")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let v = json_body(r).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown fault kind")),
        "{v}"
    );
}

#[tokio::test]
async fn hang_reset_cut_and_malformed() {
    let base = start_default().await;
    let url = format!("{base}/v1/chat/completions");

    // hang: the client gives up.
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let t0 = Instant::now();
    let e = c
        .post(&url)
        .json(&chat_body(false))
        .header("x-mock-fault", "hang")
        .send()
        .await
        .expect_err("hangs");
    assert!(e.is_timeout(), "{e:?}");
    assert!(t0.elapsed() >= Duration::from_millis(290));

    // reset: a connection error, no response.
    let e = client()
        .post(&url)
        .json(&chat_body(false))
        .header("x-mock-fault", "reset")
        .send()
        .await
        .expect_err("reset");
    assert!(!e.is_timeout() && e.status().is_none(), "{e:?}");

    // cut, streaming: head and 3 events arrive, then the body fails.
    let r = post(&url, &chat_body(true), &[("x-mock-fault", "cut:after=3")]).await;
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "stream should end with an error");
    assert_eq!(sse(&String::from_utf8_lossy(&got)).len(), 3);

    // cut, non-stream: half the declared body, then a body error.
    let r = post(&url, &chat_body(false), &[("x-mock-fault", "cut")]).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err());

    // malformed: framing is fine, the JSON is not; the connection stays usable.
    let c = client();
    let malformed = [("x-mock-fault", "malformed")];
    let r = call(&c, "POST", &url, Some(&chat_body(false)), &malformed).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    assert!(r.json::<Value>().await.is_err());
    let r = call(&c, "POST", &url, Some(&chat_body(true)), &malformed).await;
    let text = r.text().await.expect("complete chunked body");
    let first = &sse(&text)[0].1;
    assert!(serde_json::from_str::<Value>(first).is_err());
    let r = call(&c, "POST", &url, Some(&chat_body(false)), &[]).await;
    assert_eq!(r.status(), 200);

    // slow: an explicit time to first byte.
    let t0 = Instant::now();
    let r = post(&url, &chat_body(false), &[("x-mock-fault", "slow:ms=150")]).await;
    assert_eq!(r.status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn scripted_faults_counts_and_precedence() {
    let opts = MockOptions {
        fault: Some(FaultSpec::always(FaultKind::Status {
            code: 500,
            retry_after: None,
            retry_after_ms: None,
        })),
        ..MockOptions::default()
    };
    let base = start(opts).await;
    let url = format!("{base}/v1/chat/completions");
    let status = |h: &'static [(&'static str, &'static str)]| {
        let url = url.clone();
        async move { post(&url, &chat_body(false), h).await.status().as_u16() }
    };
    // The default (CLI) fault applies; a header overrides it.
    assert_eq!(status(&[]).await, 500);
    assert_eq!(status(&[("x-mock-fault", "none")]).await, 200);

    let c = client();
    let fault = format!("{base}/mock/fault");
    let script = |body: Value| {
        let (c, fault) = (c.clone(), fault.clone());
        async move { call(&c, "POST", &fault, Some(&body), &[]).await.status() }
    };
    assert_eq!(script(json!({"fault": "503", "count": 2})).await, 200);
    let v = json_body(call(&c, "GET", &fault, None, &[]).await).await;
    assert_eq!(v, json!({"fault": "503", "count": 2}));
    assert_eq!(status(&[]).await, 503);
    assert_eq!(status(&[("x-mock-fault", "429")]).await, 429); // header beats the script, uses no count
    assert_eq!(status(&[]).await, 503);
    assert_eq!(status(&[]).await, 500); // script used up: back to the default

    assert_eq!(script(json!({"fault": "p=0.5,429"})).await, 200);
    let mut hits = 0;
    for _ in 0..40 {
        if status(&[]).await == 429 {
            hits += 1;
        }
    }
    assert!((8..=32).contains(&hits), "{hits}/40");
    assert_eq!(call(&c, "DELETE", &fault, None, &[]).await.status(), 200);
    assert_eq!(status(&[]).await, 500);

    assert_eq!(script(json!({"fault": "nope"})).await, 400);
    assert_eq!(script(json!({"count": 1})).await, 400);
}

#[tokio::test]
async fn routing_errors_auth_and_bad_bodies() {
    let base = start(MockOptions {
        expect_keys: vec!["sk-good".into()],
        ..MockOptions::default()
    })
    .await;
    let c = client();
    let chat = format!("{base}/v1/chat/completions");
    let messages = format!("{base}/v1/messages");
    let body = chat_body(false);
    let r = call(
        &c,
        "POST",
        &format!("{base}/v1/completions"),
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(json_body(r).await["error"]["type"], "invalid_request_error");
    assert_eq!(call(&c, "GET", &chat, None, &[]).await.status(), 405);

    let bad_bearer = [("authorization", "Bearer sk-bad")];
    let r = call(&c, "POST", &chat, Some(&body), &bad_bearer).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "x-mock-auth"), "bearer");
    assert_eq!(
        json_body(r).await,
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
    );
    let r = call(&c, "POST", &messages, Some(&body), &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "x-mock-auth"), "none");
    assert_eq!(
        json_body(r).await,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );
    let gemini = format!("{base}/v1beta/models/g:generateContent?key=wrong");
    let r = call(&c, "POST", &gemini, Some(&json!({"contents": []})), &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        json_body(r).await,
        json!({"error": {"code": 401, "message": "API key not valid", "status": "UNAUTHENTICATED"}})
    );
    let query = format!("{chat}?key=sk-good");
    for (style, url, headers) in [
        ("bearer", &chat, &[("authorization", "Bearer sk-good")][..]),
        ("x-api-key", &chat, &[("x-api-key", "sk-good")][..]),
        (
            "x-goog-api-key",
            &chat,
            &[("x-goog-api-key", "sk-good")][..],
        ),
        ("query", &query, &[][..]),
    ] {
        let r = call(&c, "POST", url, Some(&body), headers).await;
        assert_eq!(r.status(), 200, "{style}");
        assert_eq!(header(&r, "x-mock-auth"), style);
    }

    let r = c
        .post(&chat)
        .bearer_auth("sk-good")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(json_body(r).await["error"]["message"].is_string());
    let key = [("x-api-key", "sk-good")];
    let r = call(&c, "POST", &messages, Some(&json!({"messages": []})), &key).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_body(r).await["error"]["type"], "invalid_request_error");
}

/// Sends one request with `x-mock-fault: fault` on a fresh TLS connection and reads until the
/// connection ends: (bytes received, how the read ended).
async fn tls_fault(addr: &str, fault: &str, stream: bool) -> (String, std::io::Result<usize>) {
    let tls = tls_connect(&tls_connector("ca.pem"), addr, "localhost")
        .await
        .expect("handshake");
    let mut s = BufReader::new(tls);
    let headers = [("x-mock-fault", fault)];
    write_request(
        s.get_mut(),
        "POST",
        "/v1/chat/completions",
        &headers,
        &chat_bytes(stream),
    )
    .await
    .expect("write");
    let mut got = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .expect("the connection ends in time");
    (String::from_utf8_lossy(&got).into_owned(), end)
}

/// The connection-level faults over TLS: `reset` and `cut` reset the TCP connection under the
/// TLS session (SO_LINGER 0, no close_notify), `hang` answers nothing, and the others are
/// ordinary answers on a connection that stays usable.
#[tokio::test]
async fn faults_over_tls() {
    let addr = start_tls(MockOptions::default()).await;

    let (got, end) = tls_fault(&addr, "reset", false).await;
    let e = end.expect_err("reset");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e:?}");
    assert!(got.is_empty(), "{got}");

    // cut, streaming: the head and 2 events, then the RST (no last chunk).
    let (got, end) = tls_fault(&addr, "cut:after=2", true).await;
    let e = end.expect_err("cut");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e:?}");
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("x-mock-tls: TLSv1_3"), "{got}");
    assert_eq!(got.matches("data: ").count(), 2, "{got}");
    assert!(!got.ends_with("0\r\n\r\n"), "{got}");

    // cut, non-stream: half of the declared body.
    let (got, end) = tls_fault(&addr, "cut", false).await;
    assert_eq!(
        end.expect_err("cut").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let (head, body) = got.split_once("\r\n\r\n").expect("a head");
    let declared: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.parse().ok())
        .expect("content-length");
    assert_eq!(body.len(), declared / 2, "{got}");

    // hang: nothing comes back while the client waits.
    let tls = tls_connect(&tls_connector("ca.pem"), &addr, "localhost")
        .await
        .expect("handshake");
    let mut s = BufReader::new(tls);
    let hang = [("x-mock-fault", "hang")];
    write_request(
        s.get_mut(),
        "POST",
        "/v1/chat/completions",
        &hang,
        &chat_bytes(false),
    )
    .await
    .expect("write");
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), s.read(&mut byte)).await;
    assert!(waited.is_err(), "hang answered: {waited:?}");
    drop(s);

    // Status and malformed faults are answers: the connection stays usable.
    let tls = tls_connect(&tls_connector("ca.pem"), &addr, "localhost")
        .await
        .expect("handshake");
    let mut s = BufReader::new(tls);
    let r = chat_on(&mut s, &[("x-mock-fault", "429:retry-after=1")], false).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-mock-tls"), Some("TLSv1_3"));
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let malformed = [("x-mock-fault", "malformed")];
    let r = chat_on(&mut s, &malformed, true).await;
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    let r = chat_on(&mut s, &[], false).await;
    assert_eq!(r.status, 200);
    let stats = exchange(&mut s, "GET", "/mock/stats", &[], b"")
        .await
        .json();
    assert_eq!(stats["faults"], 6, "{stats}");
}

/// Loading the identity: clear errors for missing or wrong files, and from the CLI too.
#[test]
fn tls_identity_errors_are_clear() {
    let e = MockTls::from_pem_files(fixture("nope.pem"), fixture("server.key")).expect_err("");
    assert!(e.contains("nope.pem"), "{e}");
    let e = MockTls::from_pem_files(fixture("server.key"), fixture("server.key")).expect_err("");
    assert!(e.contains("no certificate"), "{e}");
    let e = MockTls::from_pem_files(fixture("server.pem"), fixture("server.pem")).expect_err("");
    assert!(e.contains("server.pem"), "{e}");
    let e = MockTls::from_pem_files(fixture("server.pem"), fixture("untrusted.key"))
        .expect_err("the key of another certificate");
    assert!(e.contains("do not make a TLS identity"), "{e}");
    let tls = MockTls::from_pem_files(fixture("server.pem"), fixture("server.key")).expect("ok");
    assert!(format!("{tls:?}").contains("chain_len: 1"), "{tls:?}");

    let bin = env!("CARGO_BIN_EXE_switchyard");
    let cert = fixture("server.pem");
    let cert = cert.to_str().expect("utf-8 path");
    let mock = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(["mock", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run switchyard mock")
    };
    let out = mock(&["--tls-cert", cert]);
    assert_eq!(out.status.code(), Some(2), "--tls-cert needs --tls-key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
    let out = mock(&["--tls-cert", cert, "--tls-key", "/nonexistent/server.key"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/server.key"), "{stderr}");
}
