//! The per-request context, in parts owned by the layers that fill them:
//!
//! | part | filled by | holds |
//! |---|---|---|
//! | [`Client`] | auth, request layers | dialect, endpoint, key name, feature tag |
//! | [`Parsed`] | request layer | model, stream flag, body, translator |
//! | [`Plan`] | routing layer | route, ordered candidates, reason, attempt budget, deadline |
//! | [`Walk`] | the attempt walk | position, rounds, attempts, this attempt's body, the verdict on a dropped answer |
//! | [`Downstream`] | request layer | the wrapped client session and its hold control |
//! | [`Response`] | accounting, cache, translation layers | how the answer's bytes are processed |
//! | [`Outcome`] | every layer | status, timings, the gateway's own error |
//! | `governance` | limits, bodies layers | the reservation to settle, captured bodies |
//! | `conversation` | conversation layer | a Responses request's answer id, echoed fields, the turn to keep |
//!
//! Outputs never read this: they get a [`crate::summary::Summary`].

use super::downstream::{Control, Home};
use super::GatewayState;
use crate::cache::record::{Renderer, Tap};
use crate::config::Target;
use crate::dialect::translate::RequestTranslator;
use crate::dialect::{Dialect, Endpoint};
use crate::error::GatewayError;
pub use crate::summary::{Attempt, CacheOutcome, Outcome as AttemptOutcome, Skip};
use crate::usage::tally::StreamTally;
use crate::usage::Usage;
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// Who is asking, and how to answer them.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's dialect: how gateway errors are shaped.
    pub dialect: Dialect,
    pub endpoint: Option<Endpoint>,
    /// Name of the authenticated gateway key (never the key itself).
    pub key_name: Option<String>,
    /// The authenticated key: its allow-list, limits and logging rule.
    pub key: Option<Arc<crate::auth::GatewayKey>>,
    /// The caller's feature tag (`x-switchyard-feature`), for spend reports.
    pub feature: Option<String>,
    /// Whether the client itself asked for usage in its OpenAI-dialect stream.
    pub wants_usage: bool,
}

/// The request as the gateway read it.
#[derive(Default)]
pub struct Parsed {
    /// The model as the client wrote it.
    pub model: Option<String>,
    pub model_span: Range<usize>,
    /// Where the fields routing reads are in `body` (from the request probe).
    pub fields: crate::dialect::BodyFields,
    pub stream: bool,
    /// The request body as the client sent it (with `include_usage` added to streams).
    pub body: Bytes,
    /// The request decoded into the canonical model, when some candidate speaks another
    /// dialect than the client (see [`crate::dialect::translate`]).
    pub translator: Option<Arc<RequestTranslator>>,
    /// The time the client gives the request (its timeout headers, less a margin).
    pub client_deadline: Option<std::time::Duration>,
}

/// What routing decided.
pub struct Plan {
    pub route: Option<String>,
    /// Ordered targets to try.
    pub candidates: Vec<Target>,
    /// Why they are in this order.
    pub reason: Option<String>,
    /// Upstream attempts allowed for this request.
    pub max_attempts: u32,
    /// When the response must have started: every attempt and backoff shares it.
    pub deadline: tokio::time::Instant,
}

/// What to do with a provider answer the walk dropped (a 429, a 5xx, a rejected key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Make another attempt.
    Retry,
    /// Answer with the gateway's own error (`Outcome::error`).
    Fail,
}

/// The walk over the plan's candidates.
#[derive(Default)]
pub struct Walk {
    /// Index of the next candidate to try.
    pub next: usize,
    /// How many times the whole chain has been walked (for backoff).
    pub round: u32,
    pub attempts: Vec<Attempt>,
    /// The body for the attempt in flight (the model renamed, or translated, for its target).
    pub body: AttemptBody,
    /// Set while a provider's answer is being dropped, until pingora asks what to do.
    pub dropped: Option<Dropped>,
    /// Race and hedge legs that lost, with what they used (see `layers::race`).
    pub legs: Vec<crate::summary::LegBill>,
}

/// What the attempt in flight sends as its request body.
pub enum AttemptBody {
    /// Sent whole, in one piece, at the end of the (replayed) client body.
    Whole(Bytes),
    /// Sent piece by piece through the wrapped client session (`downstream`): an upload
    /// streamed from its spool, or a large body as pieces; its length in bytes.
    Piecewise(u64),
}

impl Default for AttemptBody {
    fn default() -> Self {
        AttemptBody::Whole(Bytes::new())
    }
}

impl AttemptBody {
    /// Its length in bytes (the upstream request's Content-Length).
    pub fn byte_len(&self) -> u64 {
        match self {
            AttemptBody::Whole(b) => b.len() as u64,
            AttemptBody::Piecewise(n) => *n,
        }
    }
}

impl Walk {
    /// The attempt that reached a provider last: the one whose answer the client got.
    pub fn served(&self) -> Option<&Attempt> {
        self.attempts.iter().rev().find(|a| !a.is_skipped())
    }

    /// Attempts that reached a provider (skips excluded).
    pub fn upstream_attempts(&self) -> usize {
        self.attempts.iter().filter(|a| !a.is_skipped()).count()
    }
}

/// The client connection's plumbing.
#[derive(Default)]
pub struct Downstream {
    /// Set once the client session is wrapped (see `downstream`): how to restore it.
    pub home: Option<Home>,
    /// The wrapper's hold control: how long the response header is held, extra headers.
    pub hold: Option<Control>,
    /// Whether the whole request body was read (the connection may then be reused).
    pub body_read: bool,
    /// The client connection must close after this response.
    pub close: bool,
}

/// How the bytes of the answer are processed. Each state holds only what can coexist: a cache
/// hit has no tally and no tap; a recorded answer is rendered, never translated directly.
// The context is allocated once per request and each state is as large as what it holds;
// boxing a variant would add an allocation per answer instead.
#[allow(clippy::large_enum_variant)]
#[derive(Default)]
pub enum Response {
    /// No answer yet, or one passed through untouched (an error in the client's dialect).
    #[default]
    Pass,
    /// A provider's answer streams to the client: usage is read from its bytes, then it is
    /// translated when the provider speaks another dialect.
    Proxied(crate::transform::Transform),
    /// A provider's answer recorded for the cache: usage is read and the bytes become a
    /// canonical record before storage; the record is rendered for the client.
    Recorded {
        tally: StreamTally,
        tap: Tap,
        renderer: Option<Renderer>,
    },
    /// Served from the cache: the stored record is rendered for the client.
    Hit {
        renderer: Option<Renderer>,
        /// The provider and model that produced the stored answer.
        from: Option<(String, String)>,
        /// The usage the stored answer reports (what it would have cost).
        usage: Option<Usage>,
    },
}

impl Response {
    pub fn is_hit(&self) -> bool {
        matches!(self, Response::Hit { .. })
    }

    /// The usage tally of a provider's answer (none for a hit or a pass-through).
    pub fn tally(&self) -> Option<&StreamTally> {
        match self {
            Response::Proxied(t) => t.tally.as_ref(),
            Response::Recorded { tally, .. } => Some(tally),
            _ => None,
        }
    }

    pub fn take_tally(&mut self) -> Option<StreamTally> {
        match std::mem::take(self) {
            Response::Proxied(t) => t.tally,
            Response::Recorded { tally, .. } => Some(tally),
            _ => None,
        }
    }
}

/// What happened.
#[derive(Default)]
pub struct Outcome {
    /// Status sent to the client.
    pub status: u16,
    /// When the provider's response header arrived.
    pub first_byte: Option<Instant>,
    /// When the first response body byte reached the gateway (time to first token).
    pub first_token: Option<Instant>,
    /// An error the gateway answered itself.
    pub error: Option<GatewayError>,
}

pub struct RequestCtx {
    /// The gateway state this request runs under (a config reload does not change it).
    pub state: Arc<GatewayState>,
    pub id: String,
    pub started: Instant,
    /// Wall-clock start, for the ledger.
    pub started_at: std::time::SystemTime,
    pub client: Client,
    // The larger parts are boxed: pingora moves the context (and the futures holding it)
    // several times per request, and a small context is cheaper to move than a few
    // allocations are to make (load-tests/instructions.sh).
    pub request: Box<Parsed>,
    pub plan: Plan,
    pub walk: Walk,
    pub downstream: Downstream,
    /// What the response cache does for this request.
    pub cache: crate::cache::Plan,
    pub response: Box<Response>,
    pub outcome: Outcome,
    /// Limits reserved, bodies captured (see [`crate::governance`]).
    pub governance: crate::governance::PerRequest,
    /// Media endpoints' state: upload spool, request facts, answer meter (empty for chat).
    pub media: Box<crate::media::MediaCtx>,
    /// A Responses request's part in its conversation (see the conversation layer).
    pub conversation: Box<crate::conversation::Turn>,
    /// The experiment variant this request got (see [`crate::experiments`]).
    pub experiment: Option<crate::experiments::Assignment>,
}

impl RequestCtx {
    pub fn new(state: Arc<GatewayState>) -> RequestCtx {
        let policy = &state.config.resilience;
        let (max_attempts, deadline) = (policy.max_attempts, policy.deadline);
        let started = Instant::now();
        RequestCtx {
            plan: Plan {
                route: None,
                candidates: Vec::new(),
                reason: None,
                max_attempts,
                deadline: crate::duration::later(tokio::time::Instant::from_std(started), deadline),
            },
            state,
            id: new_request_id(),
            started,
            started_at: std::time::SystemTime::now(),
            client: Client {
                dialect: Dialect::OpenAi,
                endpoint: None,
                key_name: None,
                key: None,
                feature: None,
                wants_usage: false,
            },
            request: Box::default(),
            walk: Walk::default(),
            downstream: Downstream::default(),
            cache: crate::cache::Plan::Off,
            response: Box::default(),
            outcome: Outcome::default(),
            governance: Default::default(),
            media: Box::default(),
            conversation: Default::default(),
            experiment: None,
        }
    }

    /// `hit`, `miss` or `bypass` when the request asked for the cache.
    pub fn cache_outcome(&self) -> Option<CacheOutcome> {
        match self.cache {
            crate::cache::Plan::Off => None,
            crate::cache::Plan::Bypass => Some(CacheOutcome::Bypass),
            crate::cache::Plan::On { .. } if self.response.is_hit() => Some(CacheOutcome::Hit),
            crate::cache::Plan::On { .. } => Some(CacheOutcome::Miss),
        }
    }

    /// The dialect of the provider of the attempt in flight (or last made).
    pub fn upstream_dialect(&self) -> Dialect {
        self.walk.attempts.last().map_or(self.client.dialect, |a| {
            let up = &self.state.upstreams[a.provider_index];
            self.client
                .endpoint
                .map_or(up.cfg.dialect, |e| up.wire_dialect(e))
        })
    }

    /// Whether the answer in flight is translated into the client's dialect.
    pub fn translating(&self) -> bool {
        self.upstream_dialect() != self.client.dialect
    }

    /// The `x-switchyard-attempts` header.
    pub fn attempts_header(&self) -> String {
        crate::summary::attempts_header(&self.walk.attempts)
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
