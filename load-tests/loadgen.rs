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
    statuses: std::collections::BTreeMap<u16, usize>,
}

/// Reads one response; returns (status, time of first body byte).
async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, Option<Instant>), String> {
    buf.clear();
    let mut tmp = [0u8; 16384];
    let (status, head_len, framing) = loop {
        let n = s.read(&mut tmp).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        if let httparse::Status::Complete(len) = r.parse(buf).map_err(|e| e.to_string())? {
            let mut framing = None;
            for h in r.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    framing = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<usize>().ok());
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    framing = None;
                }
            }
            break (r.code.unwrap_or(0), len, framing);
        }
    };
    let mut body_seen = buf.len() > head_len;
    let mut first = body_seen.then(Instant::now);
    match framing {
        Some(len) => {
            let mut have = buf.len() - head_len;
            while have < len {
                let n = s.read(&mut tmp).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed mid-body".into());
                }
                if !body_seen {
                    body_seen = true;
                    first = Some(Instant::now());
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
                }
                body.extend_from_slice(&tmp[..n]);
            }
        }
    }
    Ok((status, first))
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

async fn worker(a: std::sync::Arc<Args>, quota: usize, warmup: usize, deadline: Instant) -> Stats {
    let mut stats = Stats::default();
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        a.path,
        a.host,
        a.body.len()
    );
    for h in &a.headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(&a.body);
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    for i in 0..quota + warmup {
        if Instant::now() > deadline {
            break;
        }
        if conn.is_none() {
            match TcpStream::connect(&a.host).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                }
                Err(_) => {
                    stats.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = conn.as_mut() else { continue };
        let t0 = Instant::now();
        let res = match s.write_all(&req).await {
            Ok(()) => read_response(s, &mut buf).await,
            Err(e) => Err(e.to_string()),
        };
        match res {
            Ok((status, first)) => {
                if i >= warmup {
                    let end = Instant::now();
                    *stats.statuses.entry(status).or_default() += 1;
                    stats.ttfb.push(first.unwrap_or(end) - t0);
                    stats.total.push(end - t0);
                }
            }
            Err(_) => {
                if i >= warmup {
                    stats.errors += 1;
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

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("switchyard-loadgen: {e}");
            std::process::exit(2);
        }
    };
    let deadline = Instant::now() + a.duration;
    let per = a.requests.div_ceil(a.concurrency);
    let warm = a.warmup.div_ceil(a.concurrency);
    let started = Instant::now();
    let handles: Vec<_> = (0..a.concurrency)
        .map(|_| tokio::spawn(worker(a.clone(), per, warm, deadline)))
        .collect();
    let mut all = Stats::default();
    for h in handles {
        if let Ok(s) = h.await {
            all.ttfb.extend(s.ttfb);
            all.total.extend(s.total);
            all.errors += s.errors;
            for (k, v) in s.statuses {
                *all.statuses.entry(k).or_default() += v;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.ttfb.sort();
    all.total.sort();
    let out = serde_json::json!({
        "requests": all.total.len(),
        "errors": all.errors,
        "statuses": all.statuses,
        "concurrency": a.concurrency,
        "rps": all.total.len() as f64 / elapsed,
        "ttfb_us": {"p50": pct(&all.ttfb, 0.5), "p90": pct(&all.ttfb, 0.9), "p99": pct(&all.ttfb, 0.99)},
        "total_us": {"p50": pct(&all.total, 0.5), "p90": pct(&all.total, 0.9), "p99": pct(&all.total, 0.99)},
    });
    println!("{out}");
}
