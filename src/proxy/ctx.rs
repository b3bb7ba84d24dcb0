//! The per-request context: everything one request carries through the proxy's hooks.

use super::downstream::{Control, Home};
use super::GatewayState;
use crate::config::Target;
use crate::dialect::translate::{RequestTranslator, ResponseTranslator};
use crate::dialect::{Dialect, Endpoint};
use crate::error::GatewayError;
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// One try at one candidate target.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub provider_index: usize,
    pub provider: String,
    pub model: String,
    /// Which of the provider's keys was used (an index: safe to log).
    pub key_index: Option<usize>,
    pub started: Instant,
    /// Time to the response header (or to the failure).
    pub elapsed: Option<std::time::Duration>,
    pub status: Option<u16>,
    /// Error class: `rate_limited`, `server_error`, `ConnectRefused`, `circuit_open`, ...
    pub error: Option<String>,
    /// Passed over without a request (circuit open, every key resting, no key).
    pub skipped: bool,
}

impl Attempt {
    /// `200`, `503`, `ConnectRefused`, `skipped:circuit_open`.
    pub fn outcome(&self) -> String {
        match (self.skipped, self.status, &self.error) {
            (true, _, e) => format!("skipped:{}", e.as_deref().unwrap_or("-")),
            (false, Some(s), _) => s.to_string(),
            (false, None, Some(e)) => e.clone(),
            (false, None, None) => "pending".to_owned(),
        }
    }
}

pub struct RequestCtx {
    /// The gateway state this request runs under (a config reload does not change it).
    pub state: Arc<GatewayState>,
    pub id: String,
    pub started: Instant,
    /// Wall-clock start, for the ledger.
    pub started_at: std::time::SystemTime,
    /// The client's dialect: how gateway errors are shaped.
    pub dialect: Dialect,
    pub endpoint: Option<Endpoint>,
    /// Name of the authenticated gateway key (never the key itself).
    pub key_name: Option<String>,
    /// The model as the client wrote it.
    pub model: Option<String>,
    pub route: Option<String>,
    pub stream: bool,
    /// The request body as the client sent it.
    pub body: Bytes,
    pub model_span: Range<usize>,
    /// Ordered targets to try; filled by routing, walked by the proxy.
    pub candidates: Vec<Target>,
    /// Index of the next candidate to try.
    pub next_candidate: usize,
    /// How many times the whole chain has been walked (for backoff).
    pub round: u32,
    /// Upstream attempts allowed for this request.
    pub max_attempts: u32,
    /// When the response must have started: every attempt and backoff shares it.
    pub deadline: tokio::time::Instant,
    pub attempts: Vec<Attempt>,
    /// The body for the attempt in flight (the model renamed for its target).
    pub upstream_body: Bytes,
    /// Set once the client session is wrapped (see `downstream`): how to restore it.
    pub body_home: Option<Home>,
    /// The wrapper's hold control: how long the response header is held, extra headers.
    pub hold: Option<Control>,
    /// Whether the whole request body was read (the connection may then be reused).
    pub body_read: bool,
    /// The client connection must close after this response (pingora does not reuse a
    /// connection after a proxy failure).
    pub close_connection: bool,
    /// Set while a provider's answer is being dropped for another attempt.
    pub status_retry: bool,
    /// Set while a provider's answer is being dropped for the gateway's own error.
    pub status_fail: bool,
    /// Status sent to the client.
    pub status: u16,
    pub first_byte: Option<Instant>,
    /// An error the gateway answered itself.
    pub error: Option<GatewayError>,
    /// The caller's feature tag (`x-switchyard-feature`), for spend reports.
    pub feature: Option<String>,
    /// Whether the client itself asked for usage in its OpenAI-dialect stream.
    pub client_wants_usage: bool,
    /// Reads usage from the response as it streams through (set on a final 2xx answer).
    pub tally: Option<crate::usage::tally::StreamTally>,
    /// When the first response body byte reached the gateway (time to first token).
    pub first_token: Option<Instant>,
    /// The request decoded into the canonical model, when some candidate speaks another
    /// dialect than the client (see [`crate::dialect::translate`]).
    pub translator: Option<Arc<RequestTranslator>>,
    /// Translates the served answer back into the client's dialect (set when the provider
    /// that answered speaks another dialect).
    pub response_translator: Option<ResponseTranslator>,
    /// What the response cache does for this request.
    pub cache_plan: super::cache::Plan,
    /// Records the provider's answer canonically for the cache (a cacheable 2xx answer).
    pub tap: Option<crate::cache::record::Tap>,
    /// Renders a canonical record (fresh or cached) into the client's dialect.
    pub renderer: Option<crate::cache::record::Renderer>,
    /// The answer came from the cache.
    pub cache_hit: bool,
    /// For a hit: the provider and model that produced the stored answer.
    pub cached_from: Option<(String, String)>,
    /// For a hit: the usage the stored answer reports (what it would have cost).
    pub cached_usage: Option<crate::usage::Usage>,
}

impl RequestCtx {
    pub fn new(state: Arc<GatewayState>) -> RequestCtx {
        let policy = &state.config.resilience;
        let (max_attempts, deadline) = (policy.max_attempts, policy.deadline);
        RequestCtx {
            state,
            round: 0,
            max_attempts,
            deadline: crate::duration::later(tokio::time::Instant::now(), deadline),
            id: new_request_id(),
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
            dialect: Dialect::OpenAi,
            endpoint: None,
            key_name: None,
            model: None,
            route: None,
            stream: false,
            body: Bytes::new(),
            model_span: 0..0,
            candidates: Vec::new(),
            next_candidate: 0,
            attempts: Vec::new(),
            upstream_body: Bytes::new(),
            body_home: None,
            hold: None,
            body_read: false,
            close_connection: false,
            status_retry: false,
            status_fail: false,
            feature: None,
            client_wants_usage: false,
            tally: None,
            first_token: None,
            translator: None,
            response_translator: None,
            cache_plan: super::cache::Plan::Off,
            tap: None,
            renderer: None,
            cache_hit: false,
            cached_from: None,
            cached_usage: None,
            status: 0,
            first_byte: None,
            error: None,
        }
    }

    pub fn current_attempt(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut()
    }

    /// `hit`, `miss` or `bypass` when the request asked for the cache.
    pub fn cache_outcome(&self) -> Option<&'static str> {
        match self.cache_plan {
            super::cache::Plan::Off => None,
            super::cache::Plan::Bypass => Some("bypass"),
            super::cache::Plan::On { .. } if self.cache_hit => Some("hit"),
            super::cache::Plan::On { .. } => Some("miss"),
        }
    }

    /// The dialect of the provider of the attempt in flight (or last made).
    pub fn upstream_dialect(&self) -> Dialect {
        self.attempts.last().map_or(self.dialect, |a| {
            self.state.upstreams[a.provider_index].cfg.dialect
        })
    }

    /// Whether the answer in flight is translated into the client's dialect.
    pub fn translating(&self) -> bool {
        self.upstream_dialect() != self.dialect
    }

    /// The attempt that reached a provider last: the one whose answer the client got.
    pub fn served_attempt(&self) -> Option<&Attempt> {
        self.attempts.iter().rev().find(|a| !a.skipped)
    }

    /// Attempts that reached a provider (skips excluded).
    pub fn upstream_attempts(&self) -> usize {
        self.attempts.iter().filter(|a| !a.skipped).count()
    }

    /// The `x-switchyard-attempts` header: `provider/model#key=outcome(ms)`, comma-separated.
    pub fn attempts_header(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(64 * self.attempts.len());
        for (i, a) in self.attempts.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&a.provider);
            out.push('/');
            out.push_str(&a.model);
            if let Some(k) = a.key_index {
                let _ = write!(out, "#{k}");
            }
            let ms = a.elapsed.map_or(0, |d| d.as_millis());
            match (a.skipped, a.status, &a.error) {
                (false, Some(s), _) => {
                    let _ = write!(out, "={s}({ms}ms)");
                }
                _ => {
                    let _ = write!(out, "={}({ms}ms)", a.outcome());
                }
            }
        }
        out
    }
}

/// A request id that sorts by time: 12 hex digits of milliseconds, then 12 random.
fn new_request_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let r: u64 = rand::random();
    format!(
        "req_{:012x}{:012x}",
        ms & 0xffff_ffff_ffff,
        r & 0xffff_ffff_ffff
    )
}
