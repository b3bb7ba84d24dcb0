//! Reloads under continuous load lose no request:
//! - SIGHUP with an edited config (the route `chat` moves to another provider, a new route
//!   appears), several times while 8 clients send streaming and non-streaming requests;
//! - pingora's graceful upgrade: a second `serve --upgrade` takes the listening socket over,
//!   the old process gets SIGQUIT, drains and exits, all while the clients keep sending.
//!
//! The clients are strict HTTP/1.1: keep-alive, honouring `Connection: close`, no retries. Any
//! refused or reset connection, any status other than 200, and any stream that does not end
//! with its terminal event after exactly the expected number of events is a failure. Nothing
//! here asserts on timing: every wait is for a condition, with a generous limit.

mod common;
use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENTS: usize = 8;
/// Stream shape: 20 tokens, 20 ms apart (about 0.4 s per stream).
const STREAM_TOKENS: &str = "20";
const STREAM_ITL_MS: &str = "20";
/// Longest any single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for any condition (a reload taking effect, a process exiting).
const PATIENCE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// OpenAI chat, not streamed.
    Plain,
    /// OpenAI chat, streamed: ends with `data: [DONE]`.
    OpenAiStream,
    /// Anthropic messages, streamed: ends with `message_stop`.
    AnthropicStream,
}

impl Kind {
    fn for_client(i: usize) -> Kind {
        [Kind::Plain, Kind::OpenAiStream, Kind::AnthropicStream][i % 3]
    }

    fn request(self) -> Vec<u8> {
        let model = match self {
            Kind::AnthropicStream => "claude",
            _ => "chat",
        };
        self.request_for(model)
    }

    fn request_for(self, model: &str) -> Vec<u8> {
        let (path, auth, body) = match self {
            Kind::Plain | Kind::OpenAiStream => (
                "/v1/chat/completions",
                format!("authorization: Bearer {GW_KEY}"),
                chat_body(model, self == Kind::OpenAiStream),
            ),
            Kind::AnthropicStream => (
                "/v1/messages",
                format!("x-api-key: {GW_KEY}"),
                serde_json::json!({
                    "model": model,
                    "max_tokens": 64,
                    "stream": true,
                    "messages": [{"role": "user", "content": "Say hello"}],
                })
                .to_string(),
            ),
        };
        let pace = if self == Kind::Plain {
            String::new()
        } else {
            format!("x-mock-tokens: {STREAM_TOKENS}\r\nx-mock-itl-ms: {STREAM_ITL_MS}\r\n")
        };
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             {auth}\r\n{pace}content-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body.as_bytes());
        req
    }
}

/// One answered request, as the client saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    close: bool,
    provider: Option<String>,
    body: Vec<u8>,
}

/// One request's outcome in the load.
#[derive(Debug)]
struct Record {
    kind: Kind,
    started: Instant,
    finished: Instant,
    /// `Err` describes the failure.
    result: Result<Served, String>,
}

#[derive(Debug)]
struct Served {
    provider: Option<String>,
    close: bool,
    /// SSE events in a stream (0 for a plain answer).
    events: usize,
}

async fn read_answer(s: &mut TcpStream) -> Result<Answer, String> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut tmp = [0u8; 16 * 1024];
    let (status, head_len, close, provider, length) = loop {
        let n = s
            .read(&mut tmp)
            .await
            .map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed before the response head ({} bytes read)",
                buf.len()
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        if let httparse::Status::Complete(len) = r.parse(&buf).map_err(|e| e.to_string())? {
            let header = |name: &str| {
                r.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
            };
            let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let length = match header("content-length") {
                Some(v) => Some(v.parse::<usize>().map_err(|e| e.to_string())?),
                None => None,
            };
            break (
                r.code.unwrap_or(0),
                len,
                close,
                header("x-switchyard-provider"),
                length,
            );
        }
    };
    let mut raw = buf.split_off(head_len);
    let body = match length {
        Some(len) => {
            while raw.len() < len {
                let n = s
                    .read(&mut tmp)
                    .await
                    .map_err(|e| format!("read body: {e}"))?;
                if n == 0 {
                    return Err(format!("closed after {} of {len} body bytes", raw.len()));
                }
                raw.extend_from_slice(&tmp[..n]);
            }
            raw.truncate(len);
            raw
        }
        None => loop {
            if let Some(body) = dechunk(&raw)? {
                break body;
            }
            let n = s
                .read(&mut tmp)
                .await
                .map_err(|e| format!("read chunk: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "closed mid-stream: {:?}",
                    String::from_utf8_lossy(&raw)
                ));
            }
            raw.extend_from_slice(&tmp[..n]);
        },
    };
    Ok(Answer {
        status,
        close,
        provider,
        body,
    })
}

/// The whole body of a chunked message, or `None` if its last chunk has not arrived yet.
fn dechunk(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(eol) = raw[i..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&raw[i..i + eol]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        i += eol + 2;
        if size == 0 {
            return Ok((raw.len() >= i + 2).then_some(out));
        }
        if raw.len() < i + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&raw[i..i + size]);
        i += size + 2;
    }
}

/// The SSE events of a stream body (blocks separated by a blank line).
fn sse_events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks one answer; returns the number of SSE events of a stream.
fn check(kind: Kind, a: &Answer) -> Result<usize, String> {
    if a.status != 200 {
        return Err(format!(
            "status {}: {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        ));
    }
    let events = sse_events(&a.body);
    let text = String::from_utf8_lossy(&a.body);
    match kind {
        Kind::Plain => {
            let v: serde_json::Value =
                serde_json::from_slice(&a.body).map_err(|e| format!("not JSON: {e}: {text}"))?;
            if v["choices"][0]["message"]["content"].as_str().is_none() {
                return Err(format!("no message content: {text}"));
            }
            Ok(0)
        }
        Kind::OpenAiStream => {
            if events.last().map(String::as_str) != Some("data: [DONE]") {
                return Err(format!("stream did not end with [DONE]: {text}"));
            }
            if text.contains("\"error\"") {
                return Err(format!("error event in stream: {text}"));
            }
            Ok(events.len())
        }
        Kind::AnthropicStream => {
            let last = events.last().map(String::as_str).unwrap_or_default();
            if !last.starts_with("event: message_stop") {
                return Err(format!("stream did not end with message_stop: {text}"));
            }
            if text.contains("event: error") {
                return Err(format!("error event in stream: {text}"));
            }
            Ok(events.len())
        }
    }
}

/// Sends one request on `conn` (connecting first if needed) and reads the answer.
async fn send(addr: &str, conn: &mut Option<TcpStream>, req: &[u8]) -> Result<Answer, String> {
    if conn.is_none() {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else {
        return Err("no connection".into());
    };
    s.write_all(req)
        .await
        .map_err(|e| format!("write request: {e}"))?;
    read_answer(s).await
}

/// One request on a fresh connection (for calibration and probes).
async fn once(addr: &str, req: &[u8]) -> Result<Answer, String> {
    let mut conn = None;
    tokio::time::timeout(REQUEST_TIMEOUT, send(addr, &mut conn, req))
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Continuous load: `CLIENTS` tasks, each on its own keep-alive connection, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<Record>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `expected[kind]`: the event count every stream of that kind must have.
    fn start(addr: String, expected: [usize; 3]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..CLIENTS)
            .map(|i| {
                let (stop, records, addr) = (stop.clone(), records.clone(), addr.clone());
                tokio::spawn(async move {
                    let kind = Kind::for_client(i);
                    let req = kind.request();
                    let mut conn = None;
                    while !stop.load(Ordering::Acquire) {
                        let started = Instant::now();
                        let result = match tokio::time::timeout(
                            REQUEST_TIMEOUT,
                            send(&addr, &mut conn, &req),
                        )
                        .await
                        {
                            Err(_) => Err("timed out".to_owned()),
                            Ok(Err(e)) => Err(e),
                            Ok(Ok(a)) => check(kind, &a).and_then(|events| {
                                let want = expected[i % 3];
                                if kind != Kind::Plain && events != want {
                                    return Err(format!(
                                        "stream had {events} events, expected {want}: {}",
                                        String::from_utf8_lossy(&a.body)
                                    ));
                                }
                                Ok(Served {
                                    provider: a.provider.clone(),
                                    close: a.close,
                                    events,
                                })
                            }),
                        };
                        let keep = matches!(&result, Ok(s) if !s.close);
                        if !keep {
                            conn = None;
                        }
                        let failed = result.is_err();
                        records.lock().unwrap().push(Record {
                            kind,
                            started,
                            finished: Instant::now(),
                            result,
                        });
                        if failed {
                            // Do not spin on a dead gateway; the failure is already recorded.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            records,
            tasks,
        }
    }

    /// Waits until `cond` holds for the records so far.
    async fn wait_for(&self, what: &str, cond: impl Fn(&[Record]) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if cond(&self.records.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Release);
        for t in self.tasks {
            t.await.expect("load task");
        }
        Arc::try_unwrap(self.records)
            .expect("records still shared")
            .into_inner()
            .unwrap()
    }
}

/// The event count of one stream of each kind, measured before the load starts.
async fn calibrate(addr: &str) -> [usize; 3] {
    let mut out = [0; 3];
    for (i, kind) in [Kind::Plain, Kind::OpenAiStream, Kind::AnthropicStream]
        .into_iter()
        .enumerate()
    {
        let a = once(addr, &kind.request()).await.expect("calibration");
        out[i] = check(kind, &a).expect("calibration answer");
    }
    assert!(
        out[1] >= 20 && out[2] >= 20,
        "streams should carry one event per token at least: {out:?}"
    );
    out
}

fn assert_no_failures(records: &[Record]) {
    let failures: Vec<String> = records
        .iter()
        .filter_map(|r| {
            r.result
                .as_ref()
                .err()
                .map(|e| format!("{:?}: {e}", r.kind))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed; first ones:\n{}",
        failures.len(),
        records.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for kind in [Kind::Plain, Kind::OpenAiStream, Kind::AnthropicStream] {
        assert!(
            records.iter().any(|r| r.kind == kind),
            "no {kind:?} request completed"
        );
    }
}

/// Streams that were in flight at `t`: started before, finished after.
fn streams_across(records: &[Record], t: Instant) -> usize {
    records
        .iter()
        .filter(|r| r.kind != Kind::Plain && r.started < t && r.finished > t)
        .count()
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

/// The test config: `chat` goes to `chat_target`; `extra` adds server settings or routes.
fn config(port: u16, mock: u16, chat_target: &str, server_extra: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
threads = 2
{server_extra}

[pricing]
unpriced = "record_unknown"

[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:{mock}/v1"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "groq"
kind = "groq"
base_url = "http://127.0.0.1:{mock}/openai/v1"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock}/v1"
api_keys = ["env:MOCK_KEY"]

[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"

[[routes]]
name = "chat"
targets = ["{chat_target}"]

[[routes]]
name = "claude"
targets = ["anthropic/claude-sonnet-4-5"]
{extra}
"#
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sighup_reloads_under_load_lose_no_request() {
    let mock = start_mock(&[]);
    let port = free_port();
    let targets = ["openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"];
    let gw = start_gateway_with(&config(port, mock.port, targets[0], "", ""));
    let addr = gw.addr();
    runtime().block_on(async {
        let expected = calibrate(&addr).await;
        let load = Load::start(addr.clone(), expected);
        load.wait_for("the first answers", |r| r.len() >= CLIENTS)
            .await;
        let mut reload_times = Vec::new();
        let mut routes = String::new();
        for i in 1..=5usize {
            // Pace the reloads over about 3 s of load.
            tokio::time::sleep(Duration::from_millis(500)).await;
            // A real change: `chat` moves to the other provider, and a new route appears.
            let target = targets[i % 2];
            routes.push_str(&format!(
                "\n[[routes]]\nname = \"fresh{i}\"\ntargets = [\"openai/gpt-4o-mini\"]\n"
            ));
            std::fs::write(&gw.config, config(port, mock.port, target, "", &routes)).unwrap();
            reload_times.push(Instant::now());
            signal(gw.proc_.pid(), "-HUP");
            // The new route answers once the reload is in...
            let probe = Kind::Plain.request_for(&format!("fresh{i}"));
            let deadline = Instant::now() + PATIENCE;
            loop {
                let a = once(&addr, &probe).await.expect("probe");
                if a.status == 200 {
                    break;
                }
                assert_eq!(a.status, 404, "{}", String::from_utf8_lossy(&a.body));
                assert!(Instant::now() < deadline, "reload {i} never took effect");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // ...and the load's own `chat` requests reach the new provider.
            let since = Instant::now();
            let provider = target.split('/').next().unwrap().to_owned();
            load.wait_for(&format!("`chat` answered by {provider}"), |rs| {
                rs.iter().any(|r| {
                    r.started > since
                        && matches!(&r.result, Ok(s) if s.provider.as_deref() == Some(&provider))
                })
            })
            .await;
        }
        let records = load.finish().await;
        assert_no_failures(&records);
        let spanning: usize = reload_times
            .iter()
            .map(|t| streams_across(&records, *t))
            .sum();
        assert!(
            spanning > 0,
            "no stream was in flight during a reload; the test proved nothing about streams"
        );
        let streams = records
            .iter()
            .filter(|r| matches!(&r.result, Ok(s) if s.events > 0))
            .count();
        eprintln!(
            "{} requests, {streams} streams ({spanning} in flight across a reload), 0 failed",
            records.len()
        );
    });
    assert!(
        gw.proc_.stderr().matches("config reloaded").count() >= 5,
        "{}",
        gw.proc_.stderr()
    );
}

fn wait_for_file(path: &Path, p: &mut Proc) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(p.alive(), "the new process exited:\n{}", p.stderr());
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn graceful_upgrade_under_load_loses_no_request() {
    let mock = start_mock(&[]);
    let port = free_port();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("upgrade.sock");
    // After it stops accepting, the old process gives requests in flight the grace period
    // (and as long again) to finish: ample for these short streams on a slow machine.
    let server_extra = format!(
        "grace_period = \"5s\"\nupgrade_sock = \"{}\"",
        sock.display()
    );
    let cfg = config(port, mock.port, "openai/gpt-4o-mini", &server_extra, "");
    let mut gw = start_gateway_with(&cfg);
    let addr = gw.addr();
    let cfg_path = gw.config.to_string_lossy().into_owned();
    let rt = runtime();
    let expected = rt.block_on(calibrate(&addr));
    let load = rt.block_on(async {
        let load = Load::start(addr.clone(), expected);
        load.wait_for("the first answers", |r| r.len() >= CLIENTS)
            .await;
        load
    });

    // The new process waits on the upgrade socket for the old one's listeners.
    let mut new = Proc::spawn_in(
        gw.config.parent(),
        &["serve", "--upgrade", "--config", &cfg_path],
        &[("MOCK_KEY", PROVIDER_KEY)],
    );
    wait_for_file(&sock, &mut new);
    let quit_at = Instant::now();
    signal(gw.proc_.pid(), "-QUIT");

    // The old process hands over, drains and exits by itself.
    let deadline = Instant::now() + PATIENCE;
    while gw.proc_.alive() {
        assert!(
            Instant::now() < deadline,
            "the old process never exited:\n{}",
            gw.proc_.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let old_gone = Instant::now();
    assert!(new.alive(), "the new process died:\n{}", new.stderr());

    let records = rt.block_on(async {
        // Only the new process is left: it must serve every kind of request.
        load.wait_for("answers from the new process alone", |rs| {
            [Kind::Plain, Kind::OpenAiStream, Kind::AnthropicStream]
                .iter()
                .all(|k| {
                    rs.iter()
                        .filter(|r| r.kind == *k && r.started > old_gone)
                        .count()
                        >= 3
                })
        })
        .await;
        load.finish().await
    });
    assert_no_failures(&records);
    assert!(
        streams_across(&records, quit_at) > 0,
        "no stream was in flight at SIGQUIT; the test proved nothing about streams"
    );
    assert!(
        records.iter().any(|r| r.started > quit_at
            && r.finished < old_gone
            && matches!(&r.result, Ok(s) if s.close)),
        "the old process never asked a client to reconnect while draining"
    );
    assert!(new.alive(), "the new process died:\n{}", new.stderr());
    let after = records.iter().filter(|r| r.started > old_gone).count();
    eprintln!(
        "{} requests, {after} after the old process exited, 0 failed",
        records.len()
    );
}

/// A client whose connection the old process accepted just before it stopped accepting, but
/// whose request arrives only after (a remote client's request trails its handshake by one
/// trip), is still answered. pingora alone closes such a connection unanswered.
#[test]
fn graceful_upgrade_answers_requests_that_arrive_after_the_handover() {
    let mock = start_mock(&[]);
    let port = free_port();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("upgrade.sock");
    // A long grace period: the old process must outlive the late requests even on a slow
    // machine; the test does not wait for it to end.
    let server_extra = format!(
        "grace_period = \"20s\"\nupgrade_sock = \"{}\"",
        sock.display()
    );
    let gw = start_gateway_with(&config(
        port,
        mock.port,
        "openai/gpt-4o-mini",
        &server_extra,
        "",
    ));
    let cfg_path = gw.config.to_string_lossy().into_owned();
    let mut new = Proc::spawn_in(
        gw.config.parent(),
        &["serve", "--upgrade", "--config", &cfg_path],
        &[("MOCK_KEY", PROVIDER_KEY)],
    );
    wait_for_file(&sock, &mut new);
    signal(gw.proc_.pid(), "-QUIT");
    // pingora keeps the old process accepting for 5 s after SIGQUIT. Connect near the end of
    // that window (most connections land on the old process), send after it.
    std::thread::sleep(Duration::from_millis(4500));
    let mut conns: Vec<std::net::TcpStream> = (0..20)
        .map(|_| {
            let s = std::net::TcpStream::connect(gw.addr()).expect("connect");
            s.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let req = Kind::Plain.request();
    let mut failures = Vec::new();
    for (i, s) in conns.iter_mut().enumerate() {
        use std::io::Write;
        if let Err(e) = s.write_all(&req) {
            failures.push(format!("#{i}: write: {e}"));
            continue;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_response(s)));
        match r {
            Ok(r) if r.status == 200 => {}
            Ok(r) => failures.push(format!("#{i}: status {}", r.status)),
            Err(_) => failures.push(format!("#{i}: no answer")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} late requests failed: {failures:?}",
        failures.len(),
        conns.len()
    );
    assert!(new.alive(), "the new process died:\n{}", new.stderr());
}
