//! OpenTelemetry traces against a loopback OTLP/HTTP receiver that decodes the payloads with
//! the OpenTelemetry protobuf definitions (`opentelemetry-proto`): a request that falls back
//! once (a provider that refuses connections, then one that answers) becomes a server span,
//! child of the caller's `traceparent`, with one client span per attempt, GenAI and
//! switchyard attributes, and the provider receives a `traceparent` naming its attempt's span.
//! A dead collector costs nothing but a counter.

mod common;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One HTTP/1.1 request read off `stream`: header lines and body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let len = lines
        .iter()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((lines, body))
}

/// Serves `answer(lines, body)` on every request, keep-alive, until the test ends.
fn serve(answer: impl Fn(&[String], &[u8]) -> Vec<u8> + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                while let Some((lines, body)) = read_request(&mut reader) {
                    if writer.write_all(&answer(&lines, &body)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s,
        other => panic!("{key} is not a string on {}: {other:?}", span.name),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(n)) => *n,
        other => panic!("{key} is not an int on {}: {other:?}", span.name),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_request_that_falls_back_once_is_a_span_tree() {
    let payloads: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = Arc::clone(&payloads);
    let collector = serve(move |lines, body| {
        assert!(lines[0].starts_with("POST /v1/traces "), "{lines:?}");
        sink.lock().unwrap().push(body.to_vec());
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
            .to_vec()
    });
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let heard = Arc::clone(&seen);
    let provider = serve(move |lines, _| {
        let tp = lines
            .iter()
            .find_map(|l| l.strip_prefix("traceparent: "))
            .unwrap_or("")
            .to_owned();
        heard.lock().unwrap().push(tp);
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let mock = start_mock(&[]);
    let config = format!(
        "{}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:{collector}\"\n\n\
         [[providers]]\nname = \"fake\"\nkind = \"openai\"\n\
         base_url = \"http://127.0.0.1:{provider}/v1\"\napi_keys = [\"env:MOCK_KEY\"]\n\
         models = [\"gpt-4o-mini\"]\n\n\
         [[routes]]\nname = \"fb\"\ntargets = [\"down/never\", \"fake/gpt-4o-mini\"]\n",
        standard_config(free_port(), mock.port, "")
    );
    let gw = start_gateway_with(&config);

    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let body = serde_json::json!({
        "model": "fb", "max_tokens": 8,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string();
    let mut s = connect(&gw);
    let auth = bearer();
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("traceparent", traceparent.as_str()),
            ("x-switchyard-feature", "tracing"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(attempts(&r).len(), 2, "one fallback: {:?}", attempts(&r));
    let cost = r.header("x-switchyard-cost-usd").unwrap().to_owned();

    // Spans arrive within a few export intervals.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (resource_names, spans) = loop {
        let mut spans = Vec::new();
        let mut names = Vec::new();
        for p in payloads.lock().unwrap().iter() {
            let req = ExportTraceServiceRequest::decode(p.as_slice()).expect("OTLP protobuf");
            for rs in req.resource_spans {
                if let Some(res) = &rs.resource {
                    for kv in &res.attributes {
                        if kv.key == "service.name" {
                            names.push(format!("{:?}", kv.value));
                        }
                    }
                }
                for ss in rs.scope_spans {
                    spans.extend(ss.spans.into_iter().filter(|s| hex(&s.trace_id) == TRACE));
                }
            }
        }
        if spans.len() >= 3 || Instant::now() > deadline {
            break (names, spans);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        spans.len(),
        3,
        "one request span and two attempt spans: {spans:#?}"
    );
    assert!(
        resource_names.iter().all(|n| n.contains("switchyard")),
        "{resource_names:?}"
    );

    let request = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span for the request");
    assert_eq!(
        hex(&request.parent_span_id),
        CALLER_SPAN,
        "continues the caller's trace"
    );
    assert_eq!(request.name, "chat fb");
    assert_eq!(text(request, "gen_ai.operation.name"), "chat");
    assert_eq!(text(request, "gen_ai.request.model"), "fb");
    assert_eq!(text(request, "gen_ai.provider.name"), "fake");
    assert_eq!(text(request, "gen_ai.response.model"), "gpt-4o-mini");
    assert_eq!(int(request, "gen_ai.usage.input_tokens"), 12);
    assert_eq!(int(request, "gen_ai.usage.output_tokens"), 3);
    assert_eq!(int(request, "http.response.status_code"), 200);
    assert_eq!(
        text(request, "switchyard.cost_usd"),
        cost,
        "the exact cost header"
    );
    assert_eq!(text(request, "switchyard.key_name"), "tests");
    assert_eq!(text(request, "switchyard.route"), "fb");
    assert_eq!(text(request, "switchyard.feature"), "tracing");
    assert!(!text(request, "switchyard.route_reason").is_empty());
    assert!(!text(request, "switchyard.cache").is_empty());
    assert_eq!(int(request, "switchyard.attempts"), 2);
    for s in &spans {
        for kv in &s.attributes {
            assert!(
                !format!("{:?}", kv.value).contains(GW_KEY),
                "the gateway key never appears: {kv:?}"
            );
        }
    }

    let mut children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    children.sort_by_key(|s| int(s, "switchyard.attempt.index"));
    assert_eq!(children.len(), 2);
    for c in &children {
        assert_eq!(
            c.parent_span_id, request.span_id,
            "attempts are children of the request"
        );
        assert!(c.start_time_unix_nano >= request.start_time_unix_nano);
        assert!(c.end_time_unix_nano <= request.end_time_unix_nano);
        assert!(c.end_time_unix_nano >= c.start_time_unix_nano);
        assert_eq!(text(c, "gen_ai.operation.name"), "chat");
    }
    let (failed, served) = (children[0], children[1]);
    assert_eq!(text(failed, "gen_ai.provider.name"), "down");
    assert_eq!(text(failed, "gen_ai.request.model"), "never");
    assert!(!text(failed, "error.type").is_empty());
    assert!(attr(failed, "gen_ai.usage.input_tokens").is_none());
    assert_eq!(text(served, "gen_ai.provider.name"), "fake");
    assert_eq!(text(served, "gen_ai.response.model"), "gpt-4o-mini");
    assert_eq!(int(served, "http.response.status_code"), 200);
    assert_eq!(int(served, "gen_ai.usage.output_tokens"), 3);
    assert!(
        failed.end_time_unix_nano <= served.start_time_unix_nano,
        "failed {}..{} served {}..{} request {}..{}",
        failed.start_time_unix_nano,
        failed.end_time_unix_nano,
        served.start_time_unix_nano,
        served.end_time_unix_nano,
        request.start_time_unix_nano,
        request.end_time_unix_nano
    );

    // The provider heard the caller's trace, with the served attempt's span as its parent.
    let heard = seen.lock().unwrap().clone();
    assert_eq!(
        heard,
        vec![format!("00-{TRACE}-{}-01", hex(&served.span_id))],
        "traceparent sent upstream"
    );
}

#[test]
fn a_dead_collector_costs_a_counter() {
    let dead = free_port(); // nothing listens there
    let mock = start_mock(&[]);
    let admin = free_port();
    let config = format!(
        "{}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:{dead}\"\n\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        standard_config(free_port(), mock.port, "")
    );
    let mut gw = start_gateway_with(&config);
    wait_for_port(admin, &mut gw.proc_);
    let auth = bearer();
    for _ in 0..5 {
        let mut s = connect(&gw);
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[("authorization", auth.as_str())],
            chat_body("openai/gpt-4o-mini", false).as_bytes(),
        );
        assert_eq!(r.status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut s = TcpStream::connect(("127.0.0.1", admin)).unwrap();
        let m = roundtrip(&mut s, "GET", "/metrics", &[], b"");
        let text = String::from_utf8_lossy(&m.body).to_string();
        let failed: u64 = text
            .lines()
            .find(|l| l.starts_with("switchyard_telemetry{stat=\"spans_failed\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no telemetry counters in /metrics:\n{text}"));
        if failed >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "spans_failed stays at {failed}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The gateway still answers.
    let mut s = connect(&gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    );
    assert_eq!(r.status, 200);
}
