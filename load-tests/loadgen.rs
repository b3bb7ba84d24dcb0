//! switchyard-loadgen: a small, bounded HTTP/1.1 load generator for loopback measurements.
//!
//!   cargo run --release --bin switchyard-loadgen -- \
//!       --url http://127.0.0.1:8080/v1/chat/completions \
//!       --header 'authorization: Bearer sk-sy-demo-key' \
//!       --body '{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
//!       --concurrency 1 --requests 2000
//!
//! Each worker keeps one connection alive and sends requests back to back. For every request it
//! records the time to the first body byte (for SSE: the first event, i.e. time to first token)
//! and the time to the end of the response. Prints one JSON object with throughput and
//! percentiles. Bounded by --requests and --duration; it never runs open-ended.
//!
//! Mixed traffic (`--mix FILE`, used by load-tests/soak.sh): a JSON array of cases
//! `{"name", "path", "headers": ["k: v", ...], "body": <JSON or string>, "weight": N}`, sent to
//! the host of `--url`. Each worker walks the weighted schedule from its own offset, so the mix
//! is the same in every run. The output adds per-case statuses and errors, and counts streams
//! that ended with an error event (`stream_error_events`).
//!
//! Held streams (`--hold N --hold-secs S`, used by load-tests/streams_rss.sh): opens N
//! streaming requests at once (the first case), reads each until the hold ends, and reports how
//! many were open at the same time. `--ready-file F` is created once all N have their first
//! byte, so a script can measure while they are held.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    host: String,
    path: String,
    headers: Vec<String>,
    body: Vec<u8>,
    concurrency: usize,
    requests: usize,
    duration: Duration,
    warmup: usize,
    mix: Option<String>,
    hold: usize,
    hold_secs: u64,
    ready_file: Option<String>,
}

/// One kind of request in the traffic.
struct Case {
    name: String,
    /// The whole request, head and body.
    raw: Vec<u8>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        host: String::new(),
        path: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        concurrency: 1,
        requests: 1000,
        duration: Duration::from_secs(60),
        warmup: 50,
        mix: None,
        hold: 0,
        hold_secs: 10,
        ready_file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => {
                let url = val()?;
                let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                a.host = host.to_owned();
                a.path = format!("/{path}");
            }
            "--header" => a.headers.push(val()?),
            "--body" => a.body = val()?.into_bytes(),
            "--body-file" => a.body = std::fs::read(val()?).map_err(|e| e.to_string())?,
            "--concurrency" => a.concurrency = val()?.parse().map_err(|_| "bad --concurrency")?,
            "--requests" => a.requests = val()?.parse().map_err(|_| "bad --requests")?,
            "--duration-secs" => {
                a.duration = Duration::from_secs(val()?.parse().map_err(|_| "bad --duration-secs")?)
            }
            "--warmup" => a.warmup = val()?.parse().map_err(|_| "bad --warmup")?,
            "--mix" => a.mix = Some(val()?),
            "--hold" => a.hold = val()?.parse().map_err(|_| "bad --hold")?,
            "--hold-secs" => a.hold_secs = val()?.parse().map_err(|_| "bad --hold-secs")?,
            "--ready-file" => a.ready_file = Some(val()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.host.is_empty() {
        return Err("--url is required".into());
    }
    Ok(a)
}

#[derive(Default)]
struct Stats {
    ttfb: Vec<Duration>,
    total: Vec<Duration>,
    errors: usize,
    statuses: BTreeMap<u16, usize>,
    /// Per case: statuses and transport errors.
    cases: BTreeMap<String, CaseStats>,
    /// Streams that ended with an error event (a mid-stream failure the gateway reported).
    stream_error_events: usize,
    /// Requests sent again because the kept-alive connection had been closed by the server.
    stale_connection_retries: usize,
    /// Transport errors by message.
    error_kinds: BTreeMap<String, usize>,
}

#[derive(Default)]
struct CaseStats {
    statuses: BTreeMap<u16, usize>,
    errors: usize,
}

impl Stats {
    fn merge(&mut self, s: Stats) {
        self.ttfb.extend(s.ttfb);
        self.total.extend(s.total);
        self.errors += s.errors;
        self.stream_error_events += s.stream_error_events;
        self.stale_connection_retries += s.stale_connection_retries;
        for (k, v) in s.error_kinds {
            *self.error_kinds.entry(k).or_default() += v;
        }
        for (k, v) in s.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (name, c) in s.cases {
            let mine = self.cases.entry(name).or_default();
            mine.errors += c.errors;
            for (k, v) in c.statuses {
                *mine.statuses.entry(k).or_default() += v;
            }
        }
    }
}

/// One response as read: status, time of the first body byte, and whether a stream carried
/// an error event.
struct Response {
    status: u16,
    first: Option<Instant>,
    error_event: bool,
    /// The server said `Connection: close`: the next request needs a new connection.
    close: bool,
}

/// Reads one response. `on_first` runs when the first body byte arrives.
async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut on_first: impl FnMut(),
) -> Result<Response, String> {
    buf.clear();
    let mut tmp = [0u8; 16384];
    let (status, head_len, framing, close) = loop {
        let n = s.read(&mut tmp).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        if let httparse::Status::Complete(len) = r.parse(buf).map_err(|e| e.to_string())? {
            let mut framing = None;
            let mut close = false;
            for h in r.headers.iter() {
                if h.name.eq_ignore_ascii_case("connection") {
                    close = h.value.eq_ignore_ascii_case(b"close");
                } else if h.name.eq_ignore_ascii_case("content-length") {
                    framing = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<usize>().ok());
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    framing = None;
                }
            }
            break (r.code.unwrap_or(0), len, framing, close);
        }
    };
    let mut first = None;
    if buf.len() > head_len {
        first = Some(Instant::now());
        on_first();
    }
    let mut error_event = false;
    match framing {
        Some(len) => {
            let mut have = buf.len() - head_len;
            while have < len {
                let n = s.read(&mut tmp).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed mid-body".into());
                }
                if first.is_none() {
                    first = Some(Instant::now());
                    on_first();
                }
                have += n;
            }
        }
        None => {
            // Chunked: read until the terminating zero-size chunk.
            let mut body = buf.split_off(head_len);
            loop {
                if body.ends_with(b"0\r\n\r\n") && chunked_done(&body) {
                    break;
                }
                let n = s.read(&mut tmp).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed mid-stream".into());
                }
                if first.is_none() {
                    first = Some(Instant::now());
                    on_first();
                }
                body.extend_from_slice(&tmp[..n]);
            }
            // OpenAI-style `data: {"error":...}` or Anthropic's `event: error`.
            error_event = contains(&body, b"event: error") || contains(&body, b"data: {\"error\"");
            *buf = body;
        }
    }
    Ok(Response {
        status,
        first,
        error_event,
        close,
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Walks chunk sizes to confirm the final `0\r\n\r\n` is the terminator, not chunk data.
fn chunked_done(body: &[u8]) -> bool {
    let mut i = 0;
    loop {
        let Some(eol) = body[i..].windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let Ok(size) = usize::from_str_radix(
            std::str::from_utf8(&body[i..i + eol]).unwrap_or("x").trim(),
            16,
        ) else {
            return false;
        };
        i += eol + 2;
        if size == 0 {
            return body.len() >= i + 2;
        }
        i += size + 2;
        if i >= body.len() {
            return false;
        }
    }
}

/// Why a request got no complete answer.
enum Failure {
    /// Not one byte of a response came back (write failed, or closed/reset before the head).
    NoResponse(String),
    Other(String),
}

/// Sends `req` on `conn` and reads the answer.
async fn send(
    conn: &mut Option<TcpStream>,
    req: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Response, Failure> {
    let Some(s) = conn.as_mut() else {
        return Err(Failure::Other("no connection".into()));
    };
    if let Err(e) = s.write_all(req).await {
        return Err(Failure::NoResponse(e.to_string()));
    }
    buf.clear();
    read_response(s, buf, || {}).await.map_err(|e| {
        if buf.is_empty() {
            Failure::NoResponse(e)
        } else {
            Failure::Other(e)
        }
    })
}

/// The requests to send: the cases of `--mix`, or the one request of `--url`/`--body`.
fn build_cases(a: &Args) -> Result<(Vec<Case>, Vec<usize>), String> {
    let build = |path: &str, headers: &[String], body: &[u8]| {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            a.host,
            body.len()
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let mut req = req.into_bytes();
        req.extend_from_slice(body);
        req
    };
    let Some(file) = &a.mix else {
        let case = Case {
            name: "default".into(),
            raw: build(&a.path, &a.headers, &a.body),
        };
        return Ok((vec![case], vec![0]));
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("--mix {file}: {e}"))?;
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| format!("--mix {file}: {e}"))?;
    let mut cases = Vec::new();
    let mut schedule = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let field = |k: &str| c.get(k).ok_or(format!("--mix case {i}: no `{k}`"));
        let name = field("name")?.as_str().ok_or("name must be a string")?;
        let path = field("path")?.as_str().ok_or("path must be a string")?;
        let mut headers: Vec<String> = Vec::new();
        for h in c
            .get("headers")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            headers.push(h.as_str().ok_or("headers must be strings")?.to_owned());
        }
        headers.extend(a.headers.iter().cloned());
        let body = match field("body")? {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let weight = c.get("weight").and_then(|w| w.as_u64()).unwrap_or(1) as usize;
        schedule.extend(std::iter::repeat_n(cases.len(), weight));
        cases.push(Case {
            name: name.to_owned(),
            raw: build(path, &headers, body.as_bytes()),
        });
    }
    if schedule.is_empty() {
        return Err(format!("--mix {file}: no case with a weight above 0"));
    }
    Ok((cases, schedule))
}

struct Plan {
    host: String,
    cases: Vec<Case>,
    schedule: Vec<usize>,
}

async fn worker(
    plan: Arc<Plan>,
    offset: usize,
    quota: usize,
    warmup: usize,
    deadline: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let mut conn: Option<TcpStream> = None;
    // Whether `conn` has carried a request before.
    let mut reused = false;
    let mut buf = Vec::with_capacity(64 * 1024);
    for i in 0..quota + warmup {
        if Instant::now() > deadline {
            break;
        }
        let case = &plan.cases[plan.schedule[(offset + i) % plan.schedule.len()]];
        let counted = i >= warmup;
        if conn.is_none() {
            match TcpStream::connect(&plan.host).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                    reused = false;
                }
                Err(_) => {
                    if counted {
                        stats.errors += 1;
                        stats.cases.entry(case.name.clone()).or_default().errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let t0 = Instant::now();
        let mut res = send(&mut conn, &case.raw, &mut buf).await;
        if matches!(res, Err(Failure::NoResponse(_))) && reused {
            // The server closed this kept-alive connection after its last answer (as it may,
            // e.g. after a stream that broke) before it saw this request: nothing was
            // processed, so send it again on a new connection, as HTTP clients do.
            stats.stale_connection_retries += 1;
            conn = None;
            res = match TcpStream::connect(&plan.host).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                    send(&mut conn, &case.raw, &mut buf).await
                }
                Err(e) => Err(Failure::Other(e.to_string())),
            };
        }
        reused = true;
        match res {
            Ok(r) => {
                if r.close {
                    conn = None;
                }
                if counted {
                    let end = Instant::now();
                    *stats.statuses.entry(r.status).or_default() += 1;
                    *stats
                        .cases
                        .entry(case.name.clone())
                        .or_default()
                        .statuses
                        .entry(r.status)
                        .or_default() += 1;
                    stats.stream_error_events += usize::from(r.error_event);
                    stats.ttfb.push(r.first.unwrap_or(end) - t0);
                    stats.total.push(end - t0);
                }
            }
            Err(Failure::NoResponse(e) | Failure::Other(e)) => {
                if counted {
                    stats.errors += 1;
                    stats.cases.entry(case.name.clone()).or_default().errors += 1;
                    *stats.error_kinds.entry(e).or_default() += 1;
                }
                conn = None;
            }
        }
    }
    stats
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx].as_secs_f64() * 1e6
}

/// `--hold`: N streams open at once, each read until it ends or the hold is over.
async fn hold(a: &Args, plan: Arc<Plan>) -> serde_json::Value {
    let n = a.hold;
    let first_bytes = Arc::new(AtomicUsize::new(0));
    let req = plan.cases[plan.schedule[0]].raw.clone();
    let req = Arc::new(req);
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (plan, first_bytes, req) = (plan.clone(), first_bytes.clone(), req.clone());
            tokio::spawn(async move {
                let mut s = TcpStream::connect(&plan.host)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let _ = s.set_nodelay(true);
                s.write_all(&req).await.map_err(|e| e.to_string())?;
                let mut buf = Vec::new();
                let r = read_response(&mut s, &mut buf, || {
                    first_bytes.fetch_add(1, Ordering::AcqRel);
                })
                .await?;
                Ok::<u16, String>(r.status)
            })
        })
        .collect();
    // Wait (bounded) until every stream has its first byte, then tell the script.
    let open_deadline = Instant::now() + Duration::from_secs(120);
    while first_bytes.load(Ordering::Acquire) < n && Instant::now() < open_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_open_after = started.elapsed().as_secs_f64();
    let open = first_bytes.load(Ordering::Acquire);
    eprintln!("switchyard-loadgen: {open} of {n} streams open after {all_open_after:.1} s");
    if let Some(f) = &a.ready_file {
        let _ = std::fs::write(f, format!("{open}\n"));
    }
    tokio::time::sleep(Duration::from_secs(a.hold_secs)).await;
    let mut ended = BTreeMap::<String, usize>::new();
    let mut still_open = 0;
    for t in tasks {
        if t.is_finished() {
            let key = match t.await {
                Ok(Ok(status)) => format!("ended {status}"),
                Ok(Err(e)) => format!("error: {e}"),
                Err(e) => format!("task: {e}"),
            };
            *ended.entry(key).or_default() += 1;
        } else {
            still_open += 1;
            t.abort();
        }
    }
    serde_json::json!({
        "streams": n,
        "open_at_once": open,
        "seconds_to_open_all": all_open_after,
        "still_open_at_release": still_open,
        "ended_before_release": ended,
    })
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("switchyard-loadgen: {e}");
            std::process::exit(2);
        }
    };
    let (cases, schedule) = match build_cases(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard-loadgen: {e}");
            std::process::exit(2);
        }
    };
    let plan = Arc::new(Plan {
        host: a.host.clone(),
        cases,
        schedule,
    });
    if a.hold > 0 {
        println!("{}", hold(&a, plan).await);
        return;
    }
    let deadline = Instant::now() + a.duration;
    let per = a.requests.div_ceil(a.concurrency);
    let warm = a.warmup.div_ceil(a.concurrency);
    let started = Instant::now();
    let handles: Vec<_> = (0..a.concurrency)
        .map(|w| tokio::spawn(worker(plan.clone(), w, per, warm, deadline)))
        .collect();
    let mut all = Stats::default();
    for h in handles {
        if let Ok(s) = h.await {
            all.merge(s);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.ttfb.sort();
    all.total.sort();
    let mut out = serde_json::json!({
        "requests": all.total.len(),
        "errors": all.errors,
        "statuses": all.statuses,
        "concurrency": a.concurrency,
        "rps": all.total.len() as f64 / elapsed,
        "ttfb_us": {"p50": pct(&all.ttfb, 0.5), "p90": pct(&all.ttfb, 0.9), "p99": pct(&all.ttfb, 0.99)},
        "total_us": {"p50": pct(&all.total, 0.5), "p90": pct(&all.total, 0.9), "p99": pct(&all.total, 0.99)},
    });
    if a.mix.is_some() {
        let cases: serde_json::Map<String, serde_json::Value> = all
            .cases
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    serde_json::json!({"statuses": c.statuses, "errors": c.errors}),
                )
            })
            .collect();
        out["cases"] = serde_json::Value::Object(cases);
        out["stream_error_events"] = all.stream_error_events.into();
        out["stale_connection_retries"] = all.stale_connection_retries.into();
        out["error_kinds"] = serde_json::json!(all.error_kinds);
    }
    println!("{out}");
}
