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

fn float(span: &Span, key: &str) -> f64 {
    match attr(span, key) {
        Some(Any::DoubleValue(n)) => *n,
        other => panic!("{key} is not a double on {}: {other:?}", span.name),
    }
}

fn boolean(span: &Span, key: &str) -> bool {
    match attr(span, key) {
        Some(Any::BoolValue(b)) => *b,
        other => panic!("{key} is not a bool on {}: {other:?}", span.name),
    }
}

fn strings(span: &Span, key: &str) -> Vec<String> {
    match attr(span, key) {
        Some(Any::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| match &v.value {
                Some(Any::StringValue(s)) => s.clone(),
                other => panic!("{key} holds a non-string {other:?}"),
            })
            .collect(),
        other => panic!("{key} is not an array on {}: {other:?}", span.name),
    }
}

/// A loopback OTLP/HTTP collector: the port, and every payload it received.
fn collector() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let payloads: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = Arc::clone(&payloads);
    let port = serve(move |_, body| {
        sink.lock().unwrap().push(body.to_vec());
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
            .to_vec()
    });
    (port, payloads)
}

/// The spans of trace `trace` received so far, once there are at least `n` (or 20 s passed).
fn spans_of(payloads: &Mutex<Vec<Vec<u8>>>, trace: &str, n: usize) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut spans = Vec::new();
        for p in payloads.lock().unwrap().iter() {
            let req = ExportTraceServiceRequest::decode(p.as_slice()).expect("OTLP protobuf");
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    spans.extend(ss.spans.into_iter().filter(|s| hex(&s.trace_id) == trace));
                }
            }
        }
        if spans.len() >= n || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(100));
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
        "model": "fb", "max_tokens": 8, "temperature": 0.25, "top_p": 0.5,
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
    // The request parameters and why the answer stopped, as the GenAI conventions name them.
    assert_eq!(int(request, "gen_ai.request.max_tokens"), 8);
    assert_eq!(float(request, "gen_ai.request.temperature"), 0.25);
    assert_eq!(float(request, "gen_ai.request.top_p"), 0.5);
    assert!(!boolean(request, "gen_ai.request.stream"));
    assert_eq!(strings(request, "gen_ai.response.finish_reasons"), ["stop"]);
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
    assert_eq!(text(served, "switchyard.attempt.role"), "served");
    assert_eq!(text(served, "switchyard.cost_usd"), cost);
    assert_eq!(strings(served, "gen_ai.response.finish_reasons"), ["stop"]);
    assert_eq!(text(failed, "switchyard.attempt.role"), "failed");
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

/// Every call the gateway makes is a child span of the request: both legs of a race (the
/// loser cancelled, with its role and cost) and, after the answer, the experiment's judge
/// call; a streamed answer has its finish reason too.
#[test]
fn race_legs_and_judge_calls_are_child_spans() {
    const RACE_TRACE: &str = "11111111111111111111111111111111";
    const JUDGE_TRACE: &str = "22222222222222222222222222222222";
    let (port, payloads) = collector();
    let mock = start_mock(&[]);
    let fast = start_mock(&["--ttft-ms", "20"]);
    let slow = start_mock(&["--ttft-ms", "800", "--itl-ms", "100", "--tokens", "30"]);
    let config = format!(
        r#"{}
[telemetry]
otlp_endpoint = "http://127.0.0.1:{port}"

[[providers]]
name = "fast"
kind = "openai"
base_url = "http://127.0.0.1:{}/v1"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "slow"
kind = "openai"
base_url = "http://127.0.0.1:{}/v1"
api_keys = ["env:MOCK_KEY"]

[[routes]]
name = "race"
targets = ["fast/gpt-4o-mini", "slow/gpt-4o-mini"]
strategy = "race"
race = {{ width = 2 }}

[[routes]]
name = "support"
targets = ["openai/gpt-4o-mini", "openai/gpt-4o"]

[[experiments]]
name = "answers"
route = "support"
sticky = "header:x-user-id"
variants = [
  {{ name = "mini", target = "openai/gpt-4o-mini", weight = 1 }},
  {{ name = "big", target = "openai/gpt-4o", weight = 1 }},
]
[experiments.judge]
target = "openai/judge"
rubric = "Score the answer."
sample = 1.0
mode = "score"
"#,
        standard_config(free_port(), mock.port, ""),
        fast.port,
        slow.port,
    );
    let gw = start_gateway_with(&config);
    let auth = bearer();
    let send = |trace: &str, body: &str| {
        let tp = format!("00-{trace}-{CALLER_SPAN}-01");
        let r = roundtrip(
            &mut connect(&gw),
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", auth.as_str()),
                ("traceparent", tp.as_str()),
                ("x-user-id", "user-1"),
            ],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r
    };
    send(RACE_TRACE, &chat_body("race", true));
    send(JUDGE_TRACE, &chat_body("support", false));

    let spans = spans_of(&payloads, RACE_TRACE, 3);
    assert_eq!(spans.len(), 3, "a request span and two legs: {spans:#?}");
    let request = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("request span");
    assert!(boolean(request, "gen_ai.request.stream"));
    assert_eq!(strings(request, "gen_ai.response.finish_reasons"), ["stop"]);
    let legs: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    for leg in &legs {
        assert_eq!(leg.parent_span_id, request.span_id, "legs are children");
        assert!(!text(leg, "switchyard.cost_usd").is_empty());
    }
    let won = legs
        .iter()
        .find(|s| text(s, "switchyard.attempt.role") == "served")
        .expect("the winning leg");
    assert_eq!(text(won, "gen_ai.provider.name"), "fast");
    let lost = legs
        .iter()
        .find(|s| text(s, "switchyard.attempt.role") == "race_loser")
        .expect("the cancelled leg");
    assert_eq!(text(lost, "gen_ai.provider.name"), "slow");
    assert!(boolean(lost, "switchyard.cancelled"), "{lost:#?}");
    assert_eq!(text(lost, "error.type"), "cancelled");

    // The judge call runs after the answer; its span joins the request's trace.
    let spans = spans_of(&payloads, JUDGE_TRACE, 3);
    let request = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("request span");
    let judge = spans
        .iter()
        .find(|s| {
            attr(s, "switchyard.attempt.role").is_some()
                && text(s, "switchyard.attempt.role") == "judge"
        })
        .unwrap_or_else(|| panic!("a judge span: {spans:#?}"));
    assert_eq!(judge.parent_span_id, request.span_id);
    assert_eq!(judge.kind, SpanKind::Client as i32);
    assert_eq!(text(judge, "gen_ai.request.model"), "judge");
    assert_eq!(text(judge, "gen_ai.provider.name"), "openai");
    assert_eq!(int(judge, "http.response.status_code"), 200);
    assert!(int(judge, "gen_ai.usage.input_tokens") > 0);
    assert_eq!(strings(judge, "gen_ai.response.finish_reasons"), ["stop"]);
    assert!(!text(judge, "switchyard.cost_usd").is_empty());
    assert!(judge.start_time_unix_nano >= request.end_time_unix_nano - 1_000_000);
}

/// A dead collector, refusing connections or accepting them and never answering, slows no
/// request: exports fail (or hang until their timeout) on the exporter's own thread.
#[test]
fn requests_do_not_wait_on_a_dead_collector() {
    let mock = start_mock(&[]);
    // Accepts connections and never answers: an export hangs until its 5 s timeout.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let accepted: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let held = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for c in hole.incoming().flatten() {
            held.lock().unwrap().push(c);
        }
    });
    let refused = free_port(); // nothing listens there
    let gateway = |telemetry: Option<u16>| {
        let extra = telemetry.map_or(String::new(), |p| {
            format!("\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:{p}\"\n")
        });
        start_gateway_with(&format!(
            "{}{extra}",
            standard_config(free_port(), mock.port, "")
        ))
    };
    let (off, dead, blackhole) = (
        gateway(None),
        gateway(Some(refused)),
        gateway(Some(hole_port)),
    );
    let auth = bearer();
    // Sequential latencies (ms) of `n` requests on one connection.
    let timings = |gw: &Gateway, n: usize| -> Vec<f64> {
        let mut s = connect(gw);
        let body = chat_body("openai/gpt-4o-mini", false);
        let mut out: Vec<f64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let r = roundtrip(
                    &mut s,
                    "POST",
                    "/v1/chat/completions",
                    &[("authorization", auth.as_str())],
                    body.as_bytes(),
                );
                assert_eq!(r.status, 200);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out
    };
    for gw in [&off, &dead, &blackhole] {
        timings(gw, 20); // warm-up
    }
    // Long enough that exports run (every 500 ms) and hang while requests flow.
    let n = 300;
    let (t_off, t_dead, t_hole) = (timings(&off, n), timings(&dead, n), timings(&blackhole, n));
    let p50 = |t: &[f64]| t[t.len() / 2];
    let max = |t: &[f64]| t[t.len() - 1];
    eprintln!(
        "p50/max ms: off {:.2}/{:.1}, refused {:.2}/{:.1}, blackhole {:.2}/{:.1}",
        p50(&t_off),
        max(&t_off),
        p50(&t_dead),
        max(&t_dead),
        p50(&t_hole),
        max(&t_hole)
    );
    assert!(
        !accepted.lock().unwrap().is_empty(),
        "the exporter did try the black hole"
    );
    for (name, t) in [("refused", &t_dead), ("blackhole", &t_hole)] {
        // Generous: a shared machine; waiting on an export would cost seconds, not these.
        assert!(
            p50(t) <= p50(&t_off) * 2.0 + 5.0,
            "{name}: p50 {:.2} ms vs {:.2} ms without telemetry",
            p50(t),
            p50(&t_off)
        );
        assert!(max(t) < 1000.0, "{name}: a request took {:.0} ms", max(t));
    }
}
