//! The per-request context: everything one request carries through the proxy's hooks.

use super::body_session::Home;
use crate::config::Target;
use crate::dialect::{Dialect, Endpoint};
use crate::error::GatewayError;
use bytes::Bytes;
use std::ops::Range;
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
    pub status: Option<u16>,
    pub error: Option<String>,
}

pub struct RequestCtx {
    pub id: String,
    pub started: Instant,
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
    pub attempts: Vec<Attempt>,
    /// The body for the attempt in flight (the model renamed for its target).
    pub upstream_body: Bytes,
    /// Set when a large body is served through the body-session wrapper.
    pub body_home: Option<Home>,
    /// Whether the whole request body was read (the connection may then be reused).
    pub body_read: bool,
    /// The client connection must close after this response (pingora does not reuse a
    /// connection after a proxy failure).
    pub close_connection: bool,
    /// Status sent to the client.
    pub status: u16,
    pub first_byte: Option<Instant>,
    /// An error the gateway answered itself.
    pub error: Option<GatewayError>,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            id: new_request_id(),
            started: Instant::now(),
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
            body_read: false,
            close_connection: false,
            status: 0,
            first_byte: None,
            error: None,
        }
    }

    pub fn current_attempt(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut()
    }

    pub fn has_more_candidates(&self) -> bool {
        self.next_candidate < self.candidates.len()
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
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
