//! Editing the config and reloading (SIGHUP or `POST /admin/reload`) swaps provider keys and
//! routes without dropping a request in flight; a bad edit is refused and the old config stays.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

fn config(port: u16, admin: u16, mock: u16, keys: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:{admin}"
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:{mock}/v1"
api_keys = [{keys}]
[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"
{extra}
"#
    )
}

fn chat(gw: &Gateway, model: &str) -> RawResponse {
    let mut s = connect(gw);
    roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body(model, false).as_bytes(),
    )
}

#[test]
fn sighup_swaps_keys_and_routes_without_dropping_a_stream() {
    let mock = start_mock(&[]);
    let (port, admin) = (free_port(), free_port());
    let gw = start_gateway_with(&config(port, admin, mock.port, "\"sk-revoked\"", ""));
    assert_ne!(
        chat(&gw, "openai/gpt-4o-mini").status,
        200,
        "the only key is rejected"
    );

    // A slow stream is in flight during the reload: 20 tokens, 60 ms apart.
    let mut s = connect(&gw);
    let body = chat_body("openai/gpt-4o-mini", true);
    // The old config's key is rejected, so start the stream after fixing the key once via
    // the admin endpoint, then reload again (SIGHUP) while it runs.
    std::fs::write(
        &gw.config,
        config(port, admin, mock.port, "\"env:MOCK_KEY\"", ""),
    )
    .unwrap();
    let mut a = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    let r = roundtrip(&mut a, "POST", "/admin/reload", &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        chat(&gw, "openai/gpt-4o-mini").status,
        200,
        "new key in use"
    );

    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\nx-mock-itl-ms: 60\r\nx-mock-tokens: 20\r\ncontent-length: {}\r\n\r\n",
        bearer(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Revoke every key and add a route, then SIGHUP.
    std::fs::write(
        &gw.config,
        config(
            port,
            admin,
            mock.port,
            "\"sk-revoked-again\"",
            "[[routes]]\nname = \"fresh\"\ntargets = [\"openai/gpt-4o\"]\n",
        ),
    )
    .unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &gw.proc_.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    // The in-flight stream finishes on the state it started with.
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&all).contains("[DONE]") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stream cut during reload: {}",
            String::from_utf8_lossy(&all)
        );
        all.extend_from_slice(&buf[..n]);
    }
    // New requests see the new config: the route exists, the revoked key fails.
    let r = chat(&gw, "fresh");
    assert_ne!(r.status, 404, "route added by the reload");
    assert_ne!(r.status, 200, "key revoked by the reload");
    assert!(
        gw.proc_.stderr().contains("config reloaded"),
        "{}",
        gw.proc_.stderr()
    );
}

#[test]
fn a_broken_edit_is_refused_and_the_running_config_stays() {
    let mock = start_mock(&[]);
    let (port, admin) = (free_port(), free_port());
    let gw = start_gateway_with(&config(port, admin, mock.port, "\"env:MOCK_KEY\"", ""));
    assert_eq!(chat(&gw, "openai/gpt-4o-mini").status, 200);
    std::fs::write(&gw.config, "[server]\nlisten = 12\n").unwrap();
    let mut a = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    let r = roundtrip(&mut a, "POST", "/admin/reload", &[], b"");
    assert_eq!(r.status, 400);
    let err = r.json()["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("switchyard.toml:2:") && err.contains("server.listen"),
        "{err}"
    );
    assert_eq!(
        chat(&gw, "openai/gpt-4o-mini").status,
        200,
        "old config still serves"
    );
}
