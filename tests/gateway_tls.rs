//! Upstream TLS end to end, on loopback: the gateway (pingora's rustls connector) in front of
//! the mock provider serving HTTPS with the test identity in `tests/fixtures/tls`. The gateway
//! trusts the test CA through `SSL_CERT_FILE`, which rustls-native-certs reads in place of the
//! platform's roots.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A TLS mock provider (`switchyard mock --tls-cert .. --tls-key ..`) listening on `ip:port`.
struct TlsMock {
    ip: &'static str,
    /// What a client must trust to reach it: `ca.pem`, or a self-signed certificate itself.
    root: &'static str,
    port: u16,
    _proc: Proc,
}

fn start_tls_mock(ip: &'static str, cert: &'static str, key: &str) -> TlsMock {
    let port = free_port();
    let listen = format!("{ip}:{port}");
    let root = if cert == "server.pem" { "ca.pem" } else { cert };
    let (cert, key) = (fixture(cert), fixture(key));
    let mut p = Proc::spawn(
        &[
            "mock",
            "--listen",
            &listen,
            "--expect-key",
            PROVIDER_KEY,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    );
    if ip == "127.0.0.1" {
        wait_for_port(port, &mut p);
    } else {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((ip, port)).is_err() {
            assert!(p.alive(), "mock exited:\n{}", p.stderr());
            assert!(Instant::now() < deadline, "{listen} never opened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    TlsMock {
        ip,
        root,
        port,
        _proc: p,
    }
}

/// `switchyard serve` with `config`, its environment being `env` (plus what the test inherits).
fn start_gateway(config: &str, env: &[(&str, &str)]) -> (u16, Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, config).expect("write config");
    let port: u16 = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("listen = \"127.0.0.1:"))
        .and_then(|rest| rest.trim_end_matches('"').parse().ok())
        .expect("server.listen on 127.0.0.1");
    let path = path.to_string_lossy().into_owned();
    // Working directory: the temp dir, so the default ledger file lands there.
    let mut p = Proc::spawn_in(Some(dir.path()), &["serve", "--config", &path], env);
    wait_for_port(port, &mut p);
    (port, p, dir)
}

fn provider(name: &str, kind: &str, base_url: &str) -> String {
    format!(
        r#"
[[providers]]
name = "{name}"
kind = "{kind}"
base_url = "{base_url}"
api_keys = ["env:MOCK_KEY"]
connect_timeout = "2s"
"#
    )
}

fn config(gw_port: u16, providers: &[String], routes: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{gw_port}"
threads = 2
{}
[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"
{routes}"#,
        providers.concat()
    )
}

fn gw_connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn chat(s: &mut TcpStream, model: &str, stream: bool) -> RawResponse {
    roundtrip(
        s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body(model, stream).as_bytes(),
    )
}

fn body_text(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// A control request (`GET /mock/stats`, `POST /mock/reset`) straight to a TLS mock, with a
/// blocking rustls client that trusts the mock's root (the connection ends with the mock's
/// close_notify); returns the JSON answer.
fn mock_control(mock: &TlsMock, method: &str, path: &str) -> Value {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture(mock.root)).expect("root file") {
        roots.add(cert.expect("PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let tcp = TcpStream::connect((mock.ip, mock.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).expect("read to a clean close");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).expect("JSON answer")
}

/// The data lines of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Asserts `r` is the gateway's own clean 502 in the OpenAI dialect after failed TLS
/// handshakes with `provider`, not an answer of the provider's.
fn assert_tls_refused(r: &RawResponse, provider: &str) {
    assert_eq!(r.status, 502, "{}", body_text(r));
    assert_eq!(r.header("x-mock-auth"), None, "the provider never answered");
    let v = r.json();
    assert_eq!(v["error"]["code"], "upstream_unavailable", "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(provider), "{v}");
    let tried = attempts(r);
    assert!(!tried.is_empty(), "{:?}", r.headers);
    for a in &tried {
        assert!(a.starts_with(provider), "{tried:?}");
        assert!(
            a.contains("=TLSHandshakeFailure(") || a.contains("skipped:circuit_open"),
            "{tried:?}"
        );
    }
}

/// Waits (briefly) for the gateway's log to say `what`: pingora logs why a handshake failed.
fn assert_logged(gw: &Proc, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.stderr().contains(what) {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in:\n{}",
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The gateway trusts the test CA: chat (plain and streamed, OpenAI and Anthropic dialects)
/// reaches the HTTPS mock by host name (SNI `localhost`, async DNS) and by IP (IP SAN, no SNI),
/// on one client connection and over pooled upstream TLS connections; untrusted and
/// wrong-name certificates are clean 502s, and a failover route moves past them.
#[test]
fn chat_over_upstream_tls() {
    let mock = start_tls_mock("127.0.0.1", "server.pem", "server.key");
    let untrusted = start_tls_mock("127.0.0.1", "untrusted.pem", "untrusted.key");
    // The right certificate, but on an address it does not name (its SANs: localhost, 127.0.0.1).
    let elsewhere = start_tls_mock("127.0.0.2", "server.pem", "server.key");
    let gw_port = free_port();
    let providers = [
        provider(
            "tls-name",
            "openai",
            &format!("https://localhost:{}/v1", mock.port),
        ),
        provider(
            "tls-ip",
            "openai",
            &format!("https://127.0.0.1:{}/v1", mock.port),
        ),
        provider(
            "tls-anthropic",
            "anthropic",
            &format!("https://localhost:{}/v1", mock.port),
        ),
        provider(
            "tls-untrusted",
            "openai",
            &format!("https://localhost:{}/v1", untrusted.port),
        ),
        provider(
            "tls-elsewhere",
            "openai",
            &format!("https://127.0.0.2:{}/v1", elsewhere.port),
        ),
    ];
    let routes = r#"
[[routes]]
name = "tls-failover"
targets = ["tls-untrusted/gpt-4o-mini", "tls-name/gpt-4o-mini"]
"#;
    let ca = fixture("ca.pem");
    let (gw_port, mut gw, _dir) = start_gateway(
        &config(gw_port, &providers, routes),
        &[("MOCK_KEY", PROVIDER_KEY), ("SSL_CERT_FILE", &ca)],
    );
    let mut s = gw_connect(gw_port);

    // By name, several requests on one client connection. (Zero the mock's counters first: the
    // harness's probe for its port was a connection too.)
    mock_control(&mock, "POST", "/mock/reset");
    for round in 0..3 {
        let r = chat(&mut s, "tls-name/gpt-4o-mini", false);
        assert_eq!(r.status, 200, "round {round}: {}", body_text(&r));
        assert_eq!(r.header("x-mock-auth"), Some("bearer"));
        assert_eq!(r.header("x-mock-model"), Some("gpt-4o-mini"));
        assert_eq!(r.header("x-switchyard-provider"), Some("tls-name"));
        assert_eq!(r.header("x-mock-tls-sni"), Some("localhost"), "SNI sent");
        assert_eq!(r.header("x-mock-tls-alpn"), Some("http/1.1"));
        assert!(r
            .header("x-mock-tls")
            .is_some_and(|v| v.starts_with("TLSv1_")));
        let v = r.json();
        assert!(v["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|t| t.contains("Hello")));

        let r = chat(&mut s, "tls-name/gpt-4o-mini", true);
        assert_eq!(r.status, 200, "round {round}: {}", body_text(&r));
        assert_eq!(r.header("x-mock-auth"), Some("bearer"));
        assert_eq!(r.header("x-mock-tls-sni"), Some("localhost"));
        let events = sse_data(&body_text(&r));
        assert!(events.len() > 3, "{events:?}");
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let text: String = events[..events.len() - 1]
            .iter()
            .map(|d| serde_json::from_str::<Value>(d).expect("chunk JSON"))
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert!(text.starts_with("Hello"), "{text}");
    }
    // Six requests, one after another: the gateway kept its TLS connection to the mock. (The
    // mock counts the connection that asks for its stats too.)
    let stats = mock_control(&mock, "GET", "/mock/stats");
    assert_eq!(stats["requests"], 6, "{stats}");
    assert_eq!(
        stats["connections"], 2,
        "one pooled upstream TLS connection: {stats}"
    );

    // The Anthropic dialect over the same TLS mock.
    let anth = r#"{"model":"tls-anthropic/claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", GW_KEY)],
        anth.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.header("x-mock-auth"), Some("x-api-key"));
    assert!(body_text(&r).contains("event: message_stop"));

    // By IP: verified against the IP SAN; rustls sends no SNI for an IP address.
    for stream in [false, true] {
        let r = chat(&mut s, "tls-ip/gpt-4o-mini", stream);
        assert_eq!(r.status, 200, "{}", body_text(&r));
        assert_eq!(r.header("x-mock-auth"), Some("bearer"));
        assert_eq!(r.header("x-switchyard-provider"), Some("tls-ip"));
        assert_eq!(r.header("x-mock-tls-sni"), None);
        assert!(r.header("x-mock-tls").is_some());
    }

    // A certificate no trusted CA signed: the gateway's own 502, quickly, on a fresh connection.
    let t0 = Instant::now();
    let r = chat(&mut gw_connect(gw_port), "tls-untrusted/gpt-4o-mini", false);
    assert_tls_refused(&r, "tls-untrusted");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_logged(
        &gw,
        "invalid peer certificate: UnknownIssuer, SNI: localhost",
    );
    // The right CA, but not this address's certificate: hostname verification is on.
    let r = chat(&mut gw_connect(gw_port), "tls-elsewhere/gpt-4o-mini", true);
    assert_tls_refused(&r, "tls-elsewhere");
    assert_logged(&gw, "certificate not valid for name \"127.0.0.2\"");
    assert_eq!(
        mock_control(&elsewhere, "GET", "/mock/stats")["requests"],
        0
    );
    assert_eq!(
        mock_control(&untrusted, "GET", "/mock/stats")["requests"],
        0
    );

    // A route whose first target fails TLS moves on to the next one.
    let r = chat(&mut gw_connect(gw_port), "tls-failover", false);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.header("x-switchyard-provider"), Some("tls-name"));
    let tried = attempts(&r);
    assert!(
        tried
            .first()
            .is_some_and(|a| a.starts_with("tls-untrusted")),
        "{tried:?}"
    );

    assert!(gw.alive(), "gateway died:\n{}", gw.stderr());
    assert!(!gw.stderr().contains("panicked"), "{}", gw.stderr());
}

/// Without the test CA among its roots (no `SSL_CERT_FILE` for it: the platform's roots, or
/// whatever bundle `SSL_CERT_FILE` / `SSL_CERT_DIR` in the inherited environment name), the
/// gateway refuses the mock's certificate with a clean 502 in the OpenAI dialect, and stays up.
#[test]
fn untrusted_upstream_certificate_is_a_clean_502() {
    let mock = start_tls_mock("127.0.0.1", "server.pem", "server.key");
    let gw_port = free_port();
    let base_url = format!("https://localhost:{}/v1", mock.port);
    // One provider per request, so that the first one's failures (which feed its circuit
    // breaker) cannot turn the second answer into a 503.
    let providers = [
        provider("tls-plain", "openai", &base_url),
        provider("tls-stream", "openai", &base_url),
    ];
    let (gw_port, mut gw, _dir) = start_gateway(
        &config(gw_port, &providers, ""),
        &[("MOCK_KEY", PROVIDER_KEY)],
    );
    for (name, stream) in [("tls-plain", false), ("tls-stream", true)] {
        let t0 = Instant::now();
        let r = chat(
            &mut gw_connect(gw_port),
            &format!("{name}/gpt-4o-mini"),
            stream,
        );
        assert_tls_refused(&r, name);
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }
    assert_logged(
        &gw,
        "invalid peer certificate: UnknownIssuer, SNI: localhost",
    );
    assert_eq!(mock_control(&mock, "GET", "/mock/stats")["requests"], 0);
    assert!(gw.alive(), "gateway died:\n{}", gw.stderr());
    assert!(!gw.stderr().contains("panicked"), "{}", gw.stderr());
}
