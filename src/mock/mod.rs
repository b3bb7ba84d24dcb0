//! A built-in mock AI provider: OpenAI, Anthropic and Gemini wire formats, with fault injection.
//!
//! No real provider is reachable from the machines this project is built and tested on, so the
//! gateway's integration tests, its offline demo and its load tests all talk to this mock
//! instead. It is a small, fast HTTP/1.1 server (keep-alive, pipelining, chunked and
//! `Content-Length` request bodies, `text/event-stream` responses with one chunk per event)
//! whose answers are deterministic and close enough to the real APIs for the official
//! `openai` and `anthropic` SDKs to parse them.
//!
//! Run it on its own with:
//!
//! ```text
//! cargo run -- mock --listen 127.0.0.1:9100
//! ```
//!
//! With `--tls-cert FILE --tls-key FILE` ([`MockOptions::tls`]) it speaks HTTPS instead: every
//! connection starts with a TLS handshake (ALPN `http/1.1`), and every reply on it also carries
//! `x-mock-tls` (the protocol version), `x-mock-tls-sni` (the server name the client sent, if
//! any) and `x-mock-tls-alpn`. The connection-level faults work the same over TLS (`reset`
//! resets the TCP connection under it).
//!
//! Endpoints (matched by path suffix, so a provider prefix such as `/openai/v1` is fine):
//! `POST …/chat/completions`, `POST …/responses` (OpenAI's Responses API, whole or as its
//! event stream), `POST …/messages`, `POST …/messages/count_tokens`,
//! `POST …/embeddings`, `GET …/models`, `GET …/models/{id}`,
//! `POST …/models/{model}:generateContent`, `POST …/models/{model}:streamGenerateContent`
//! (`?alt=sse` for SSE), and the media endpoints (`media`): `POST …/images/generations`,
//! `POST …/audio/transcriptions`, `POST …/audio/translations` (multipart),
//! `POST …/audio/speech` (a streamed WAV), `POST …/models/{model}:batchEmbedContents`. Control endpoints: `GET /mock/stats`, `POST /mock/reset`,
//! `GET|POST|DELETE /mock/fault`.
//!
//! Per-request behaviour can be changed with request headers: `x-mock-ttft-ms`,
//! `x-mock-itl-ms`, `x-mock-tokens`, `x-mock-fault` (see [`FaultSpec`]),
//! `x-mock-cached-tokens`, `x-mock-cache-write-tokens`, `x-mock-reasoning-tokens` and
//! `x-mock-parallel-tools`. Every provider response echoes `x-mock-body-bytes`,
//! `x-mock-body-sha256`, `x-mock-model`, `x-mock-auth` and `x-request-id`.
//!
//! A chat model named `judge*` is a mock judge for experiments (OpenAI dialect, whole answers):
//! it answers with a JSON verdict on the answers in its prompt, grading each by the `-qN` in
//! the name of the model that wrote it (see `judge.rs`).
//!
//! Token accounting is deterministic: one streamed piece is one token, and the uncached prompt
//! is `ceil(bytes of message text / 4)` (minimum 1) in every dialect. Cached tokens asked for
//! with `x-mock-cached-tokens` come on top of it, reported the way each provider does (OpenAI
//! and Gemini include them in the prompt count, Anthropic reports them beside `input_tokens`);
//! reasoning tokens are part of the completion count (OpenAI `completion_tokens`, Anthropic
//! `output_tokens`) or reported beside it (Gemini `thoughtsTokenCount`).

mod anthropic;
mod conn;
mod faults;
mod gemini;
mod http;
mod judge;
mod media;
mod openai;
mod responses;
mod route;
mod text;
mod tls;

pub use faults::{FaultKind, FaultSpec};
pub use tls::MockTls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

/// How the mock behaves when a request does not say otherwise.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Delay before the first byte of a (successful) response. Default 0.
    pub ttft: Duration,
    /// Delay between streamed events. Default 0.
    pub itl: Duration,
    /// Completion tokens to produce. Default 16.
    pub tokens: usize,
    /// Fault applied to every provider request unless a scripted fault or a header overrides it.
    pub fault: Option<FaultSpec>,
    /// When non-empty, provider requests must carry one of these keys.
    pub expect_keys: Vec<String>,
    /// Serve HTTPS with this identity instead of plain HTTP. Default `None`.
    pub tls: Option<MockTls>,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            tokens: 16,
            fault: None,
            expect_keys: Vec::new(),
            tls: None,
        }
    }
}

/// Serve until the listener fails. Spawns one task per connection.
///
/// Transient accept errors (aborted connections, running out of file descriptors) are logged
/// and waited out; any other accept error ends the server with that error.
pub async fn serve(listener: tokio::net::TcpListener, opts: MockOptions) -> std::io::Result<()> {
    let state = Arc::new(State::new(opts));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) if is_transient_accept_error(&e) => {
                log::warn!("mock: accept failed: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("mock: set_nodelay for {peer}: {e}");
        }
        state.connections.fetch_add(1, Ordering::Relaxed);
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            st.open.fetch_add(1, Ordering::Relaxed);
            conn::connection(stream, Arc::clone(&st)).await;
            st.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
    ) || matches!(e.raw_os_error(), Some(12 | 23 | 24 | 105)) // ENOMEM ENFILE EMFILE ENOBUFS
}

/// A fault scripted through `POST /mock/fault`.
#[derive(Debug, Clone)]
struct Scripted {
    spec: FaultSpec,
    /// Requests left; `None` = until cleared.
    remaining: Option<u64>,
}

/// State shared by all connections of one server.
pub(crate) struct State {
    opts: MockOptions,
    requests: AtomicU64,
    faults: AtomicU64,
    connections: AtomicU64,
    /// Connections open now (a client that hung up is gone from it once its task ends).
    open: AtomicU64,
    next_id: AtomicU64,
    rng: AtomicU64,
    by_path: Mutex<HashMap<String, u64>>,
    scripted: Mutex<Option<Scripted>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    fn new(opts: MockOptions) -> Self {
        Self {
            opts,
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            rng: AtomicU64::new(0),
            by_path: Mutex::new(HashMap::new()),
            scripted: Mutex::new(None),
        }
    }

    /// Counts a provider request and returns its number (used in ids and `x-request-id`).
    fn record(&self, path: &str) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut by_path = lock(&self.by_path);
        match by_path.get_mut(path) {
            Some(n) => *n += 1,
            None => {
                by_path.insert(path.to_string(), 1);
            }
        }
        drop(by_path);
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn stats(&self) -> Value {
        let by_path: serde_json::Map<String, Value> = lock(&self.by_path)
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(*v)))
            .collect();
        serde_json::json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "by_path": by_path,
            "faults": self.faults.load(Ordering::Relaxed),
            "connections": self.connections.load(Ordering::Relaxed),
            "open": self.open.load(Ordering::Relaxed),
        })
    }

    fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.faults.store(0, Ordering::Relaxed);
        self.connections.store(0, Ordering::Relaxed);
        lock(&self.by_path).clear();
        *lock(&self.scripted) = None;
    }

    fn set_scripted(&self, spec: FaultSpec, count: Option<u64>) {
        *lock(&self.scripted) = Some(Scripted {
            spec,
            remaining: count,
        });
    }

    fn clear_scripted(&self) {
        *lock(&self.scripted) = None;
    }

    fn scripted_json(&self) -> Value {
        match &*lock(&self.scripted) {
            Some(s) => serde_json::json!({"fault": s.spec.to_string(), "count": s.remaining}),
            None => serde_json::json!({"fault": null, "count": null}),
        }
    }

    /// The fault for one provider request: the `x-mock-fault` header if given, else the
    /// scripted fault (consuming one of its count), else the default. The probability is rolled
    /// here; `FaultKind::None` means "answer normally".
    fn choose_fault(&self, header: Option<&str>) -> Result<FaultKind, String> {
        let spec = match header {
            Some(h) => Some(h.parse::<FaultSpec>()?),
            None => {
                let mut scripted = lock(&self.scripted);
                match scripted.as_mut() {
                    Some(s) => {
                        let spec = s.spec.clone();
                        if let Some(left) = s.remaining.as_mut() {
                            *left = left.saturating_sub(1);
                            if *left == 0 {
                                *scripted = None;
                            }
                        }
                        Some(spec)
                    }
                    None => self.opts.fault.clone(),
                }
            }
        };
        let Some(spec) = spec else {
            return Ok(FaultKind::None);
        };
        let roll = faults::uniform(self.rng.fetch_add(1, Ordering::Relaxed));
        if spec.kind == FaultKind::None || !spec.fires(roll) {
            return Ok(FaultKind::None);
        }
        self.faults.fetch_add(1, Ordering::Relaxed);
        Ok(spec.kind)
    }
}

/// The wire dialect of an endpoint, which decides the shape of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Dialect {
    /// An error response in this dialect.
    pub(crate) fn error(self, status: u16, message: &str) -> Reply {
        let body = match self {
            Dialect::OpenAi => openai::error_json(status, message, None),
            Dialect::Anthropic => anthropic::error_json(status, message),
            Dialect::Gemini => gemini::error_json(status, message),
        };
        Reply::full(status, "application/json", body.to_string().into_bytes())
    }
}

/// Produces a streamed response one event at a time, so that many long streams stay cheap.
pub(crate) trait EventGen: Send {
    /// Appends the next event's bytes to `out`; returns false when the stream is over.
    fn next_event(&mut self, out: &mut Vec<u8>) -> bool;
}

pub(crate) enum Body {
    Full(Vec<u8>),
    Stream(Box<dyn EventGen>),
}

/// A response, before framing.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Delay before the first byte.
    pub ttft: Duration,
    /// Delay between streamed events.
    pub itl: Duration,
    /// Reset the connection after this many events (non-stream: after half the body).
    pub cut: Option<usize>,
}

impl Reply {
    pub(crate) fn full(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: Body::Full(body),
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            cut: None,
        }
    }

    pub(crate) fn json(status: u16, value: &Value) -> Self {
        Self::full(status, "application/json", value.to_string().into_bytes())
    }

    pub(crate) fn stream(content_type: &'static str, gen: Box<dyn EventGen>) -> Self {
        Self {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: Body::Stream(gen),
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            cut: None,
        }
    }

    /// A copy of a whole (error) reply.
    pub(crate) fn clone_error(&self) -> Self {
        let body = match &self.body {
            Body::Full(b) => b.clone(),
            Body::Stream(_) => Vec::new(),
        };
        let mut r = Self::full(self.status, self.content_type, body);
        r.headers = self.headers.clone();
        r
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A fixed list of pre-rendered events (used for short streams such as malformed ones).
pub(crate) struct FixedEvents(std::collections::VecDeque<Vec<u8>>);

impl FixedEvents {
    pub(crate) fn new(events: Vec<Vec<u8>>) -> Self {
        Self(events.into())
    }
}

impl EventGen for FixedEvents {
    fn next_event(&mut self, out: &mut Vec<u8>) -> bool {
        match self.0.pop_front() {
            Some(e) => {
                out.extend_from_slice(&e);
                true
            }
            None => false,
        }
    }
}

/// Per-request generation parameters, after header overrides.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Request number, used in ids.
    pub n: u64,
    pub model: String,
    /// Completion tokens to produce before any `max_tokens` limit.
    pub tokens: usize,
    pub cached: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    pub parallel_tools: bool,
    /// Unix time of the request.
    pub created: u64,
}

/// The `limit` from a request (e.g. `max_tokens`), applied to `ctx.tokens`: the number of
/// tokens to produce and whether the limit cut the answer short.
pub(crate) fn apply_limit(ctx: &Ctx, limit: Option<u64>) -> (usize, bool) {
    match limit {
        Some(l) if l < ctx.tokens as u64 => (l as usize, true),
        _ => (ctx.tokens, false),
    }
}

/// One tool call the mock decided to make.
#[derive(Debug, Clone)]
pub(crate) struct ToolCall {
    pub id: String,
    pub name: String,
    /// Arguments as compact JSON.
    pub args: String,
}

impl ToolCall {
    /// Argument pieces as streamed; also the tokens the call counts for.
    pub(crate) fn pieces(&self) -> Vec<&str> {
        text::split_pieces(&self.args, text::ARG_PIECE)
    }
}

/// Picks the tools to call from `(name, parameters schema)` candidates: the first one, or the
/// first two when parallel tool calls are asked for.
pub(crate) fn pick_calls(
    ctx: &Ctx,
    candidates: Vec<(String, Option<&Value>)>,
    id_prefix: &str,
) -> Vec<ToolCall> {
    let take = if ctx.parallel_tools { 2 } else { 1 };
    candidates
        .into_iter()
        .take(take)
        .enumerate()
        .map(|(k, (name, schema))| ToolCall {
            id: format!("{id_prefix}{}_{k}", ctx.n),
            name,
            args: text::tool_arguments(schema),
        })
        .collect()
}
