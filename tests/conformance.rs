//! The dialect conformance corpus (`tests/fixtures/conformance/`): for each pair of dialects,
//! requests, whole answers, recorded streams and errors, each with its exact expected
//! translation.
//!
//! Dialects: `openai` (Chat Completions), `anthropic`, `gemini`, `responses` (the OpenAI
//! Responses API); every one is both a client and a provider dialect here.
//!
//! - `requests_<client>.json`: `[{name, request, expected: {<target>: body | {"error": {status,
//!   param}}}}]`: the client's body encoded for each target dialect.
//! - `responses_<provider>.json`: `[{name, response, expected: {<client>: body}}]`.
//! - `streams/<provider>_<name>.sse` + `.expected.json` (`{<client>: [events]}`): every event
//!   the client receives, as `{"event": name?, "data": json | text}`; the stream is fed split at
//!   every byte offset and must translate identically each time.
//! - `errors.json`: `[{name, provider, status, body, expected: {<client>: body}}]`.
//!
//! `created` / `created_at` timestamps are removed before comparing (the encoders stamp the current time when
//! the provider gave none). Run with `UPDATE_CONFORMANCE=1` to rewrite the expected parts from
//! the current output (then review the diff by hand: that is the point of the corpus).
//!
//! `cargo test --test conformance`

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use switchyard::dialect::canonical::{StreamEncoderOptions, TranslateOptions};
use switchyard::dialect::translate::{RequestTranslator, ResponseTranslator};
use switchyard::dialect::Dialect;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_CONFORMANCE").is_some()
}

fn dialect(name: &str) -> Dialect {
    match name {
        "openai" => Dialect::OpenAi,
        "anthropic" => Dialect::Anthropic,
        "gemini" => Dialect::Gemini,
        "responses" => Dialect::Responses,
        other => panic!("unknown dialect {other}"),
    }
}

/// Removes `created` and `created_at` keys anywhere in `v`.
fn scrub(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("created");
                m.remove("created_at");
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn load(name: &str) -> Value {
    parse_json(&std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn store(name: &str, v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    std::fs::write(dir().join(name), text).unwrap();
}

/// Checks (or, when updating, records) `actual` as `cases[i].expected[target]`.
fn check(
    file: &str,
    cases: &mut Value,
    i: usize,
    target: &str,
    actual: Value,
    failures: &mut Vec<String>,
) {
    let name = cases[i]["name"].as_str().unwrap_or("?").to_owned();
    let expected = &mut cases[i]["expected"][target];
    if updating() {
        *expected = actual;
    } else if *expected != actual {
        failures.push(format!(
            "{file} / {name} -> {target}\n  expected: {expected}\n  actual:   {actual}"
        ));
    }
}

/// Every dialect: each is a client and a provider dialect.
const CLIENTS: [&str; 4] = ["openai", "anthropic", "gemini", "responses"];

/// The clients a provider's answer is translated for (or the targets a client's request is
/// translated to): every dialect but its own.
fn clients_of(provider: &str) -> Vec<&'static str> {
    CLIENTS.into_iter().filter(|c| *c != provider).collect()
}

/// Runs every case of `file` for each target `targets` gives it. The targets come from the
/// corpus layout, not from the case's own `expected` map: a case missing an expectation (an
/// empty map included) fails instead of being checked against nothing, and so does one with an
/// expectation for a target that is not translated to (stale). `UPDATE_CONFORMANCE=1` fills
/// in missing ones and drops stale ones.
fn run_cases(
    file: &str,
    targets: impl Fn(&Value) -> Vec<&'static str>,
    each: impl Fn(&Value, &str) -> Value,
) {
    let mut cases = load(file);
    let mut failures = Vec::new();
    let n = cases.as_array().map_or(0, Vec::len);
    assert!(n > 0, "{file} has no cases");
    for i in 0..n {
        let name = cases[i]["name"].as_str().unwrap_or("?").to_owned();
        let wanted = targets(&cases[i]);
        assert!(!wanted.is_empty(), "{file} / {name}: no target to check");
        let have: Vec<String> = match cases[i]["expected"].as_object() {
            Some(m) => m.keys().cloned().collect(),
            None if updating() => {
                cases[i]["expected"] = json!({});
                Vec::new()
            }
            None => panic!("{file} / {name} has no expected map"),
        };
        for stale in have.iter().filter(|k| !wanted.contains(&k.as_str())) {
            if updating() {
                if let Some(m) = cases[i]["expected"].as_object_mut() {
                    m.remove(stale);
                }
            } else {
                failures.push(format!(
                    "{file} / {name}: an expectation for `{stale}`, which is not a target"
                ));
            }
        }
        for target in wanted {
            if !updating() && !have.iter().any(|k| k == target) {
                failures.push(format!(
                    "{file} / {name}: no expectation for `{target}` (run with \
                     UPDATE_CONFORMANCE=1, then review the diff)"
                ));
                continue;
            }
            let actual = each(&cases[i], target);
            check(file, &mut cases, i, target, actual, &mut failures);
        }
    }
    if updating() {
        store(file, &cases);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn translate_request(case: &Value, from: &str, target: &str) -> Value {
    let opts = TranslateOptions::default();
    let body = case["request"].to_string();
    let model = case["model"].as_str().unwrap_or("target-model");
    let result = RequestTranslator::new(dialect(from), body.as_bytes(), &opts)
        .and_then(|t| t.body_for(dialect(target), model, &opts));
    match result {
        Ok(b) => parse_json(&b),
        Err(e) => json!({"error": {"status": e.status(), "param": e.param.as_deref()}}),
    }
}

#[test]
fn requests_from_openai_clients() {
    run_cases(
        "requests_openai.json",
        |_| clients_of("openai"),
        |c, t| translate_request(c, "openai", t),
    );
}

#[test]
fn requests_from_anthropic_clients() {
    run_cases(
        "requests_anthropic.json",
        |_| clients_of("anthropic"),
        |c, t| translate_request(c, "anthropic", t),
    );
}

#[test]
fn requests_from_responses_clients() {
    run_cases(
        "requests_responses.json",
        |_| clients_of("responses"),
        |c, t| translate_request(c, "responses", t),
    );
}

#[test]
fn requests_from_gemini_clients() {
    // The model and the stream choice are in a Gemini client's URL; the body has neither.
    run_cases(
        "requests_gemini.json",
        |_| clients_of("gemini"),
        |c, t| translate_request(c, "gemini", t),
    );
}

fn translate_whole(provider: &str, client: &str, status: u16, body: &[u8]) -> Value {
    let mut t = ResponseTranslator::whole(dialect(provider), dialect(client), status);
    // Fed in two pieces: a whole answer is collected, whatever its framing.
    let mid = body.len() / 2;
    let mut out = t.feed(&body[..mid]).to_vec();
    out.extend_from_slice(&t.feed(&body[mid..]));
    out.extend_from_slice(&t.finish());
    let mut v = scrub(parse_json(&out));
    if let Some(code) = t.failed_status() {
        v = json!({"failed_status": code, "body": v});
    }
    v
}

#[test]
fn whole_answers_from_each_provider() {
    for provider in ["openai", "anthropic", "gemini", "responses"] {
        let file = format!("responses_{provider}.json");
        run_cases(
            &file,
            |_| clients_of(provider),
            |c, client| {
                translate_whole(provider, client, 200, c["response"].to_string().as_bytes())
            },
        );
    }
}

#[test]
fn provider_errors() {
    run_cases(
        "errors.json",
        |c| clients_of(c["provider"].as_str().unwrap_or("?")),
        |c, client| {
            let body = match &c["body"] {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            };
            let provider = c["provider"].as_str().unwrap();
            translate_whole(
                provider,
                client,
                c["status"].as_u64().unwrap() as u16,
                &body,
            )
        },
    );
}

/// The client's events for a stream fed in the given pieces.
fn translate_stream(provider: &str, client: &str, pieces: &[&[u8]], usage: bool) -> Vec<u8> {
    let mut t = ResponseTranslator::stream(
        dialect(provider),
        dialect(client),
        StreamEncoderOptions {
            include_usage: usage,
            model: "requested-model".into(),
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&t.feed(p));
    }
    out.extend_from_slice(&t.finish());
    out
}

/// Client output as `[{"event": name?, "data": json | text}]`, `created` removed.
fn events(body: &[u8]) -> Value {
    // Gemini's encoder ends events with CRLF pairs, as Google's servers do.
    let text = String::from_utf8(body.to_vec())
        .expect("client stream is UTF-8")
        .replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut event = Value::Null;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = json!(v);
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            } else {
                panic!("unexpected SSE line {line:?} in {text}");
            }
        }
        let data = serde_json::from_str(&data).map_or(json!(data), scrub);
        out.push(json!({"event": event, "data": data}));
    }
    Value::Array(out)
}

#[test]
fn recorded_streams_from_each_provider() {
    let streams = dir().join("streams");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&streams)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sse"))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "too few recorded streams: {names:?}");
    let mut failures = Vec::new();
    for path in names {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let provider = stem.split('_').next().unwrap().to_owned();
        let input = std::fs::read(&path).unwrap();
        let expected_path = streams.join(format!("{stem}.expected.json"));
        let mut expected: Value = match std::fs::read(&expected_path) {
            Ok(b) => parse_json(&b),
            Err(_) if updating() => json!({}),
            Err(e) => panic!("{stem}: no {}: {e}", expected_path.display()),
        };
        let clients = clients_of(&provider);
        let mut checked = Vec::new();
        for client in clients {
            for usage in [false, true] {
                if usage && client != "openai" {
                    continue;
                }
                let key = if usage {
                    format!("{client}+usage")
                } else {
                    client.to_owned()
                };
                let whole = translate_stream(&provider, client, &[&input], usage);
                // Any chunk boundary gives the same bytes (streams up to 8 KiB: every offset).
                let step = (input.len() / 512).max(1);
                for at in (1..input.len()).step_by(step) {
                    let split =
                        translate_stream(&provider, client, &[&input[..at], &input[at..]], usage);
                    assert_eq!(
                        events(&split),
                        events(&whole),
                        "{stem} -> {key}: split at byte {at} changed the output"
                    );
                }
                let byte_by_byte: Vec<&[u8]> = input.chunks(1).collect();
                assert_eq!(
                    events(&translate_stream(&provider, client, &byte_by_byte, usage)),
                    events(&whole),
                    "{stem} -> {key}: byte-by-byte feed changed the output"
                );
                let actual = events(&whole);
                checked.push(key.clone());
                if updating() {
                    expected[&key] = actual;
                } else if expected[&key] != actual {
                    failures.push(format!(
                        "{stem} -> {key}\n  expected: {}\n  actual:   {actual}",
                        expected[&key]
                    ));
                }
            }
        }
        if let Some(m) = expected.as_object_mut() {
            let stale: Vec<String> = m.keys().filter(|k| !checked.contains(k)).cloned().collect();
            for k in stale {
                if updating() {
                    m.remove(&k);
                } else {
                    failures.push(format!(
                        "{stem}: an expectation for `{k}`, which is not a target"
                    ));
                }
            }
        }
        if updating() {
            let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
            std::fs::write(&expected_path, text).unwrap();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_stream_cut_short_still_ends_well_formed() {
    // Only the first half of each recorded stream arrives: the client still gets a closed
    // stream (`[DONE]` / `message_stop`), whatever the cut.
    let streams = dir().join("streams");
    for entry in std::fs::read_dir(&streams).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "sse") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let provider = stem.split('_').next().unwrap().to_owned();
        let input = std::fs::read(&path).unwrap();
        let cut = &input[..input.len() / 2];
        for client in CLIENTS {
            if client == provider {
                continue;
            }
            let out = events(&translate_stream(&provider, client, &[cut], false));
            let last = out
                .as_array()
                .unwrap()
                .last()
                .cloned()
                .unwrap_or(Value::Null);
            match client {
                "openai" => assert_eq!(last["data"], "[DONE]", "{stem}: {out}"),
                "anthropic" => assert_eq!(last["event"], "message_stop", "{stem}: {out}"),
                // A Responses stream ends with its terminal event (or `response.failed` after
                // an error that came before the cut).
                "responses" => assert!(
                    ["response.completed", "response.failed"]
                        .contains(&last["event"].as_str().unwrap_or_default()),
                    "{stem}: {out}"
                ),
                // Gemini has no terminal event: every chunk is whole JSON.
                _ => assert!(
                    out.as_array()
                        .unwrap()
                        .iter()
                        .all(|e| e["data"].is_object()),
                    "{stem}: {out}"
                ),
            }
        }
    }
}
