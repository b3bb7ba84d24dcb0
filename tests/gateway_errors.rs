//! Every way a client can get it wrong gets a clear 4xx in its own dialect, over real sockets.

mod common;
use common::*;

const OPENAI: &str = "/v1/chat/completions";
const ANTHROPIC: &str = "/v1/messages";

fn assert_openai_error(r: &RawResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(v["error"]["type"].is_string());
    assert!(r.header("x-switchyard-request-id").is_some());
    assert_eq!(r.header("content-type"), Some("application/json"));
}

fn assert_anthropic_error(r: &RawResponse, status: u16, etype: &str) {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], etype, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[test]
fn auth_errors_in_each_dialect() {
    let (_mock, gw) = start_stack("");
    let body = chat_body("chat", false);
    let mut s = connect(&gw);
    let r = roundtrip(&mut s, "POST", OPENAI, &[], body.as_bytes());
    assert_openai_error(&r, 401, "invalid_api_key");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &[("authorization", "Bearer sk-sy-wrong-key")],
        body.as_bytes(),
    );
    assert_openai_error(&r, 401, "invalid_api_key");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("sk-sy-wrong-key"),
        "the presented key is not echoed"
    );

    let anth = r#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        ANTHROPIC,
        &[("x-api-key", "nope-nope-nope")],
        anth.as_bytes(),
    );
    assert_anthropic_error(&r, 401, "authentication_error");
    // x-api-key works for OpenAI-dialect paths too, and Bearer for Anthropic's.
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        ANTHROPIC,
        &[("authorization", &bearer())],
        anth.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &[("x-api-key", GW_KEY)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn request_errors_in_each_dialect() {
    let (_mock, gw) = start_stack("");
    let auth = bearer();
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let mut s = connect(&gw);
    // All on one keep-alive connection: a gateway error leaves it usable.
    let r = roundtrip(&mut s, "POST", OPENAI, &h, b"{not json");
    assert_openai_error(&r, 400, "invalid_request");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("JSON"));
    let r = roundtrip(&mut s, "POST", OPENAI, &h, br#"{"messages":[]}"#);
    assert_openai_error(&r, 400, "invalid_request");
    assert_eq!(r.json()["error"]["param"], "model");
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &h,
        chat_body("nope/x", false).as_bytes(),
    );
    assert_openai_error(&r, 404, "model_not_found");
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &h,
        chat_body("no-such-route", false).as_bytes(),
    );
    assert_openai_error(&r, 404, "model_not_found");
    // The `claude` route's target speaks Anthropic: a field it cannot express is a 400 that
    // names it, never silently dropped.
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &h,
        br#"{"model":"claude","messages":[{"role":"user","content":"hi"}],"n":2}"#,
    );
    assert_openai_error(&r, 400, "invalid_request");
    assert_eq!(r.json()["error"]["param"], "n");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("translation.drop"));
    let r = roundtrip(&mut s, "POST", "/v1/nothing-here", &h, b"{}");
    assert_openai_error(&r, 404, "unknown_url");
    let r = roundtrip(&mut s, "GET", OPENAI, &h, b"");
    assert_openai_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &h,
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "connection still good after errors");

    let ah = [("x-api-key", GW_KEY), ("anthropic-version", "2023-06-01")];
    let mut s = connect(&gw);
    let r = roundtrip(&mut s, "POST", ANTHROPIC, &ah, b"[]");
    assert_anthropic_error(&r, 400, "invalid_request_error");
    let r = roundtrip(
        &mut s,
        "POST",
        ANTHROPIC,
        &ah,
        br#"{"model":"nope/x","max_tokens":5,"messages":[]}"#,
    );
    assert_anthropic_error(&r, 404, "not_found_error");
    let r = roundtrip(&mut s, "GET", ANTHROPIC, &ah, b"");
    assert_anthropic_error(&r, 405, "invalid_request_error");
    // An unknown path from the Anthropic SDK (it sends anthropic-version) answers in its dialect.
    let r = roundtrip(&mut s, "POST", "/v1/complete", &ah, b"{}");
    assert_anthropic_error(&r, 404, "not_found_error");
}

#[test]
fn allow_lists_give_403() {
    let (_mock, gw) = start_stack("");
    let auth = format!("Bearer {LIMITED_KEY}");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &[("authorization", &auth)],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    );
    assert_openai_error(&r, 403, "model_not_allowed");
    let r = roundtrip(
        &mut s,
        "POST",
        OPENAI,
        &[("authorization", &auth)],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 200);
    let anth = r#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(
        &mut s,
        "POST",
        ANTHROPIC,
        &[("x-api-key", LIMITED_KEY)],
        anth.as_bytes(),
    );
    assert_anthropic_error(&r, 403, "permission_error");
}

#[test]
fn oversize_bodies_get_413_and_the_connection_closes() {
    let (_mock, gw) = start_stack("max_body_size = \"64KiB\"");
    let auth = bearer();
    let big = vec![b'x'; 64 * 1024 + 1];
    // Declared up front: refused before reading.
    let mut s = connect(&gw);
    let r = roundtrip(&mut s, "POST", OPENAI, &[("authorization", &auth)], &big);
    assert_openai_error(&r, 413, "request_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    // Chunked, no length: refused once the limit is crossed.
    use std::io::Write;
    let mut s = connect(&gw);
    let head = format!("POST {OPENAI} HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\ntransfer-encoding: chunked\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    for _ in 0..3 {
        let chunk = vec![b'y'; 30 * 1024];
        let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = s.write_all(&chunk);
        let _ = s.write_all(b"\r\n");
    }
    let r = read_response(&mut s);
    assert_openai_error(&r, 413, "request_too_large");
    // Exactly at the limit is fine.
    let mut body = chat_body("chat", false).into_bytes();
    let pad = 64 * 1024 - body.len() - 20;
    let filler = format!(",\"user\":\"{}\"}}", "p".repeat(pad));
    body.pop();
    body.extend_from_slice(filler.as_bytes());
    assert!(body.len() <= 64 * 1024);
    let mut s = connect(&gw);
    let r = roundtrip(&mut s, "POST", OPENAI, &[("authorization", &auth)], &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn health_and_models() {
    let (_mock, gw) = start_stack("");
    let mut s = connect(&gw);
    let r = roundtrip(&mut s, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = roundtrip(&mut s, "GET", "/v1/models", &[], b"");
    assert_openai_error(&r, 401, "invalid_api_key");
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "GET",
        "/v1/models",
        &[("authorization", &bearer())],
        b"",
    );
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.contains(&"chat".to_owned())
            && ids.contains(&"groq/llama-3.3-70b-versatile".to_owned()),
        "{ids:?}"
    );
    let r = roundtrip(
        &mut s,
        "GET",
        "/v1/models",
        &[("x-api-key", LIMITED_KEY)],
        b"",
    );
    let v = r.json();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat"]);
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["object"], "list");
}
