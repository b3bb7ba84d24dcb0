//! A provider's answer to an outbound request, read chunk by chunk within the request's
//! deadline. Reading it to the end reports the success to the breakers and puts the connection
//! back in the pool for the next call; a failure mid-body is a breaker failure, as for proxied
//! attempts.

use super::{AttemptInfo, OutboundError};
use crate::proxy::GatewayState;
use bytes::{Bytes, BytesMut};
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::ResponseHeader;
use std::fmt;
use std::sync::Arc;
use tokio::time::Instant;

/// An answer whose header has arrived: a 2xx, or a client error the provider was right about
/// (400, 403, 404, 422...), which the proxied path would pass on as is.
///
/// Dropping it before the end closes the connection and tells the breakers nothing (a race
/// loser or an abandoned hedge is no verdict on the provider).
pub struct OutboundResponse {
    pub status: u16,
    pub header: ResponseHeader,
    pub attempt: AttemptInfo,
    exchange: Option<Exchange>,
}

/// What is needed to finish reading and hand the connection back.
struct Exchange {
    session: HttpSession,
    peer: HttpPeer,
    connector: Arc<Connector>,
    gw: Arc<GatewayState>,
    deadline: Instant,
}

impl OutboundResponse {
    pub(crate) fn new(
        header: ResponseHeader,
        attempt: AttemptInfo,
        session: HttpSession,
        peer: HttpPeer,
        connector: Arc<Connector>,
        gw: Arc<GatewayState>,
        deadline: Instant,
    ) -> OutboundResponse {
        OutboundResponse {
            status: header.status.as_u16(),
            header,
            attempt,
            exchange: Some(Exchange {
                session,
                peer,
                connector,
                gw,
                deadline,
            }),
        }
    }

    /// The next piece of the body as it arrives (one read: for a stream, usually one or a few
    /// SSE events), `None` at its end. Each read is bounded by the request's deadline: a
    /// stalled answer returns a timeout error, never hangs. After the end or an error, further
    /// calls return `None`.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, OutboundError> {
        let Some(x) = self.exchange.as_mut() else {
            return Ok(None);
        };
        loop {
            let read = tokio::time::timeout_at(x.deadline, x.session.read_response_body()).await;
            match read {
                Ok(Ok(Some(chunk))) if chunk.is_empty() => continue,
                Ok(Ok(Some(chunk))) => return Ok(Some(chunk)),
                Ok(Ok(None)) => {
                    self.finish().await;
                    return Ok(None);
                }
                Ok(Err(e)) => {
                    let err = OutboundError::transport(&e, self.attempt.clone(), x.deadline);
                    self.fail();
                    return Err(err);
                }
                Err(_) => {
                    let err = OutboundError::deadline("reading the answer", self.attempt.clone());
                    self.fail();
                    return Err(err);
                }
            }
        }
    }

    /// The whole body (for answers that are not streamed), refused past `max_bytes`.
    pub async fn read_to_end(&mut self, max_bytes: usize) -> Result<Bytes, OutboundError> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.next_chunk().await? {
            if out.len() + chunk.len() > max_bytes {
                let err = OutboundError::new(
                    super::OutboundErrorKind::Protocol,
                    "body_too_large",
                    format!("the answer is larger than {max_bytes} bytes"),
                    self.attempt.clone(),
                    Instant::now(),
                );
                // Not the provider's fault: close the connection, tell the breakers nothing.
                self.exchange = None;
                return Err(err);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Whether the body has been read to its end (or given up).
    pub fn is_done(&self) -> bool {
        self.exchange.is_none()
    }

    /// The body is complete: a success for the breakers (unless the status is an error the
    /// provider passed on), and the connection goes back to the pool.
    async fn finish(&mut self) {
        let Some(x) = self.exchange.take() else {
            return;
        };
        if self.status < 400 {
            x.gw.upstreams[self.attempt.provider_index]
                .record_success(&self.attempt.model, Instant::now());
        }
        let idle = x.peer.options.idle_timeout;
        x.connector
            .release_http_session(x.session, &x.peer, idle)
            .await;
    }

    /// The body broke off: a failure for the breakers; the connection is closed (dropped:
    /// nothing more is written to a peer that may have stalled).
    fn fail(&mut self) {
        if let Some(x) = self.exchange.take() {
            x.gw.upstreams[self.attempt.provider_index]
                .record_failure(&self.attempt.model, Instant::now());
        }
    }
}

impl fmt::Debug for OutboundResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundResponse")
            .field("status", &self.status)
            .field("attempt", &self.attempt)
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}
