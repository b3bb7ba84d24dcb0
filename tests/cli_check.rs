//! `switchyard check` and start-up: bad config fails naming file, line and field.

mod common;
use common::*;
use std::process::Command;

fn check(text: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config", path.to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).replace(path.to_str().unwrap(), "gw.toml"),
        String::from_utf8_lossy(&out.stderr).replace(path.to_str().unwrap(), "gw.toml"),
    )
}

#[test]
fn check_reports_file_line_and_field() {
    let (ok, _, err) = check("[server]\nlisten = \"127.0.0.1:1\"\n\n[[providers]]\nname = \"g\"\nkind = \"grok\"\napi_keys = [\"k\"]\n", &[]);
    assert!(!ok);
    assert!(
        err.contains("gw.toml:6:8: providers[0].kind: unknown provider kind `grok`"),
        "{err}"
    );
    let (ok, _, err) = check("[server]\nlisen = \"x\"\n", &[]);
    assert!(!ok);
    assert!(
        err.contains("gw.toml:2:1: server.lisen: unknown field `lisen`"),
        "{err}"
    );
}

#[test]
fn check_refuses_a_duration_the_clock_cannot_hold() {
    // Fits a `Duration` but overflows `Instant + Duration`: it used to pass `check` and then
    // panic on every request.
    let (ok, _, err) = check(
        "[server]\nlisten = \"127.0.0.1:1\"\n\n[resilience]\ndeadline = \"5124095576030431h\"\n",
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("gw.toml:5:12: resilience.deadline: must be at most 24h"),
        "{err}"
    );
}

#[test]
fn check_warns_about_unset_key_variables_without_failing() {
    let text = "[[providers]]\nname = \"groq\"\nkind = \"groq\"\napi_keys = [\"env:SY_TEST_GROQ\", \"env:SY_TEST_GROQ_2\"]\n[[gateway_keys]]\nname = \"app\"\nkey = \"env:SY_TEST_GW\"\n";
    let (ok, out, err) = check(
        text,
        &[
            ("SY_TEST_GROQ", "gsk-secret-value"),
            ("SY_TEST_GW", "sk-sy-secret-gw"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("OK (1 providers, 0 routes, 1 gateway keys, 1 warnings)"),
        "{out}"
    );
    assert!(
        err.contains("gw.toml:4:") && err.contains("env:SY_TEST_GROQ_2") && err.contains("not set"),
        "{err}"
    );
    assert!(!err.contains("gsk-secret-value") && !out.contains("sk-sy-secret-gw"));
}

#[test]
fn the_shipped_configs_check_clean() {
    for path in ["conf/switchyard.toml", "conf/demo.toml"] {
        let out = Command::new(BIN)
            .args(["check", "--config", path])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(BIN).arg("check").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("<embedded demo>: OK"));
}

#[test]
fn serve_refuses_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[routes]]\nname = \"r\"\ntargets = [\"ghost/m\"]\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:")
            && err.contains("routes[0].targets[0]")
            && err.contains("ghost"),
        "{err}"
    );
}

#[test]
fn the_demo_serves_offline() {
    // `switchyard serve` with no config: the embedded demo, mock provider included.
    // Ports 8080/9100/9091 may be taken on a dev machine; run the demo config on free ports.
    let gw_port = free_port();
    let mock_port = free_port();
    let admin_port = free_port();
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gw_port}"))
        .replace("127.0.0.1:9100", &format!("127.0.0.1:{mock_port}"))
        .replace("127.0.0.1:9091", &format!("127.0.0.1:{admin_port}"));
    let gw = start_gateway_with(&demo);
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-sy-demo-key")],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", "sk-sy-demo-key")],
        br#"{"model":"claude","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/embeddings",
        &[("authorization", "Bearer sk-sy-demo-key")],
        br#"{"model":"embed","input":["a","b"]}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
}

#[test]
fn an_unloadable_trust_store_fails_start_up_clearly() {
    // pingora would panic building its TLS connector; the gateway checks first.
    let out = Command::new(BIN)
        .args(["serve"])
        .env_remove("SSL_CERT_DIR")
        .env("SSL_CERT_FILE", "/nonexistent/switchyard-ca.pem")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot load TLS root certificates"), "{err}");
    assert!(err.contains("/nonexistent/switchyard-ca.pem"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
