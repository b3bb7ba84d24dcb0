//! Request bodies of any size up to the limit reach the provider byte-exact (only the model
//! name renamed), on a kept-alive client connection, and survive a failed first target.
//! This also guards the body-session wrapper that lifts pingora's 64 KiB replay buffer.
//! A body that never finishes is bounded by the request deadline.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::time::{Duration, Instant};

/// A body of `size` bytes. The padding is a field of its own, not prompt text: a prompt of
/// megabytes would not fit the model's context window, and routing refuses it (issue #14).
fn body_of(size: usize, model: &str) -> Vec<u8> {
    let head = r#"{"messages":[{"role":"user","content":"hi"}],"pad":""#.to_string();
    let tail = format!(r#"","model":"{model}"}}"#);
    let mut b = head.into_bytes();
    b.extend(std::iter::repeat_n(
        b'a',
        size.saturating_sub(b.len() + tail.len()),
    ));
    b.extend_from_slice(tail.as_bytes());
    b
}

fn expected_upstream(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.replacen(
        &format!("\"model\":\"{from}\""),
        &format!("\"model\":\"{to}\""),
        1,
    )
    .into_bytes()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn bodies_of_every_size_arrive_whole_on_one_connection() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let mut s = connect(&gw);
    // Around the 64 KiB boundary, then large, then small again, all on the same socket.
    for size in [
        10,
        65_535,
        65_536,
        65_537,
        200 * 1024,
        3 << 20,
        16 << 20,
        5,
        70_000,
    ] {
        let body = body_of(size, "openai/gpt-4o-mini");
        let up = expected_upstream(&body, "openai/gpt-4o-mini", "gpt-4o-mini");
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &body,
        );
        assert_eq!(
            r.status,
            200,
            "size {size}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.header("x-mock-body-bytes").unwrap(),
            up.len().to_string(),
            "size {size}"
        );
        assert_eq!(
            r.header("x-mock-body-sha256").unwrap(),
            hex(&Sha256::digest(&up)),
            "size {size}"
        );
        assert_eq!(r.header("connection"), Some("keep-alive"), "size {size}");
    }
}

#[test]
fn large_bodies_fail_over_like_small_ones() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let mut s = connect(&gw);
    for size in [1000, 2 << 20] {
        let body = body_of(size, "failover");
        let up = expected_upstream(&body, "failover", "gpt-4o-mini");
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &auth)],
            &body,
        );
        assert_eq!(
            r.status,
            200,
            "size {size}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let a = attempts(&r);
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a[0].starts_with("down/never=") && a[1].starts_with("openai/gpt-4o-mini#0=200"),
            "{a:?}"
        );
        assert_eq!(r.header("x-switchyard-provider"), Some("openai"));
        assert_eq!(
            r.header("x-mock-body-sha256").unwrap(),
            hex(&Sha256::digest(&up)),
            "size {size}"
        );
    }
}

/// A large body goes out as pieces around the renamed model (no copy): a target that answers
/// 503 after reading it all, then a second one of the same dialect, both get the whole body;
/// a translated attempt after pieces sends its own body; the connection then serves a small
/// request as usual.
#[test]
fn large_bodies_survive_a_503_then_a_translated_target() {
    let mock = start_mock(&[]);
    let flaky = start_mock(&["--fault", "503"]);
    let mut config = standard_config(free_port(), mock.port, "");
    config.push_str(&format!(
        r#"
[[providers]]
name = "flaky"
kind = "openai"
base_url = "http://127.0.0.1:{}/v1"
api_keys = ["env:MOCK_KEY"]

[[routes]]
name = "flaky-then-openai"
targets = ["flaky/gpt-4o-mini", "openai/gpt-4o-mini"]

[[routes]]
name = "flaky-then-claude"
targets = ["flaky/gpt-4o-mini", "anthropic/claude-sonnet-4-5"]

[translation]
drop = ["pad"]
"#,
        flaky.port
    ));
    let gw = start_gateway_with(&config);
    let auth = bearer();
    let mut s = connect(&gw);
    let send = |s: &mut std::net::TcpStream, body: &[u8]| {
        roundtrip(
            s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &auth)],
            body,
        )
    };
    for size in [300 << 10, 2 << 20] {
        let body = body_of(size, "flaky-then-openai");
        let up = expected_upstream(&body, "flaky-then-openai", "gpt-4o-mini");
        let r = send(&mut s, &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let a = attempts(&r);
        assert!(
            a.len() == 2 && a[0].starts_with("flaky/gpt-4o-mini#0=503"),
            "{a:?}"
        );
        assert_eq!(
            r.header("x-mock-body-sha256").unwrap(),
            hex(&Sha256::digest(&up)),
            "size {size}"
        );

        let body = body_of(size, "flaky-then-claude");
        let r = send(&mut s, &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("x-switchyard-provider"), Some("anthropic"));
        assert_eq!(r.json()["object"], "chat.completion", "translated back");
    }
    let r = send(&mut s, &body_of(10, "chat"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn chunked_uploads_are_read_whole() {
    use std::io::Write;
    let (_mock, gw) = start_stack("");
    let body = body_of(300 * 1024, "chat");
    let up = expected_upstream(&body, "chat", "gpt-4o-mini");
    let mut s = connect(&gw);
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ntransfer-encoding: chunked\r\n\r\n", bearer());
    s.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(7919) {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        s.write_all(chunk).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-mock-body-sha256").unwrap(),
        hex(&Sha256::digest(&up))
    );
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 200);
}

/// A body that trickles in (each byte well inside pingora's 60 s per-read timeout) is bounded
/// by the request's deadline: 408 in the client's dialect, and the connection is closed.
#[test]
fn a_body_that_never_finishes_gets_408_within_the_deadline() {
    let mock = start_mock(&[]);
    let config =
        standard_config(free_port(), mock.port, "") + "\n[resilience]\ndeadline = \"2s\"\n";
    let gw = start_gateway_with(&config);
    for (path, auth, dialect_type) in [
        (
            "/v1/chat/completions",
            "authorization",
            "invalid_request_error",
        ),
        ("/v1/messages", "x-api-key", "invalid_request_error"),
    ] {
        let mut s = connect(&gw);
        let key = if auth == "authorization" {
            bearer()
        } else {
            GW_KEY.to_owned()
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             {auth}: {key}\r\ncontent-length: 1000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        // One byte a second, never the whole body.
        let mut writer = s.try_clone().unwrap();
        let trickle = std::thread::spawn(move || {
            for b in b"{\"model\":\"gpt-4o-mini\"" {
                if writer.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = read_response(&mut s);
        let waited = started.elapsed();
        assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
            "answered after {waited:?}"
        );
        assert_eq!(r.header("connection"), Some("close"));
        let v = r.json();
        assert_eq!(v["error"]["type"], dialect_type, "{v}");
        if path == "/v1/chat/completions" {
            assert_eq!(v["error"]["code"], "request_timeout", "{v}");
        } else {
            assert_eq!(v["type"], "error", "{v}");
        }
        drop(s);
        let _ = trickle.join();
    }
}

/// The deadline runs from the request's arrival: an upload slower than its route's deadline
/// (but within the longest one, which bounds every upload) is answered 408 too.
#[test]
fn an_upload_slower_than_its_routes_deadline_gets_408() {
    let mock = start_mock(&[]);
    let config = standard_config(free_port(), mock.port, "")
        + "\n[[routes]]\nname = \"quick\"\ntargets = [\"openai/gpt-4o-mini\"]\ndeadline = \"1s\"\n";
    let gw = start_gateway_with(&config);
    let body = chat_body("quick", false);
    let (first, rest) = body.as_bytes().split_at(10);
    let mut s = connect(&gw);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         authorization: {}\r\ncontent-length: {}\r\n\r\n",
        bearer(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(rest).unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "request_timeout");
    // The same request sent at once is served.
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &bearer()),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
