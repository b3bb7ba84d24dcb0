//! The outbound client: requests the gateway makes on its own (race legs, hedges, judge calls,
//! probes), as opposed to requests it proxies.
//!
//! One [`OutboundClient`] per process ([`crate::proxy::Shared::outbound`]), built on
//! pingora-core's HTTP connector with the same connector options (TLS roots, pool size) as the
//! proxy's. Each [`OutboundClient::send`] is one attempt at one target, made exactly as a
//! proxied attempt is, through the same functions ([`crate::providers`]):
//!
//! 1. admission ([`Upstream::admit`](crate::providers::Upstream::admit)): a usable key, closed
//!    breakers, the next key in rotation that is not resting, the address from the
//!    non-blocking DNS cache ([`crate::net`]);
//! 2. the peer ([`Upstream::peer`](crate::providers::Upstream::peer)): the provider's connect
//!    and read timeouts, cut to the deadline;
//! 3. the header ([`Upstream::shape_request`](crate::providers::Upstream::shape_request)):
//!    path, host, the provider's key, framing, no forbidden headers;
//! 4. the outcome ([`crate::providers::outcome`]): 429 rests the key (for `retry-after`), 401
//!    retires it, 5xx and transport failures count against the breakers, and a body read to
//!    its end counts for them.
//!
//! The caller walks candidates: an [`OutboundError`] says whether another attempt may help.
//! The whole exchange (connect, header, every body read) ends by the request's deadline.
//! Connections go back to the pool once an answer is read to its end, so repeated calls to
//! one provider reuse them; error answers (429, 5xx) are small and read to the end too.

mod error;
mod request;
mod response;
pub mod roots;

pub use error::{OutboundError, OutboundErrorKind};
pub use request::OutboundRequest;
pub use response::OutboundResponse;

use crate::proxy::GatewayState;
use crate::resilience::classify::Verdict;
use pingora_core::connectors::http::Connector;
use pingora_core::connectors::ConnectorOptions;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::RetryType;
use pingora_http::RequestHeader;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The most of an error answer (429, 5xx) read so that its connection can be reused; a larger
/// one closes the connection instead.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Who was asked, with which key, and how long the answer took to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptInfo {
    /// Index into [`GatewayState::upstreams`] (and `Config::providers`).
    pub provider_index: usize,
    pub provider: String,
    pub model: String,
    /// Which of the provider's keys was used (an index: safe to log).
    pub key_index: Option<usize>,
    /// From the call to [`OutboundClient::send`] to the response header (or to the failure).
    pub elapsed: Duration,
    /// Whether the request went out on a pooled connection.
    pub reused_connection: bool,
}

/// The gateway's client for its own requests. Cheap to share (`Arc`); holds the connection
/// pool.
pub struct OutboundClient {
    connector: Arc<Connector>,
}

impl OutboundClient {
    /// A client with these connector options: `ca_file` (else the platform's roots, with
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`), the keep-alive pool size. The roots are loaded here,
    /// and a failure is an error, not pingora's panic.
    pub fn new(options: ConnectorOptions) -> Result<OutboundClient, String> {
        roots::load(options.ca_file.as_deref())?;
        Ok(OutboundClient {
            connector: Arc::new(Connector::new(Some(options))),
        })
    }

    /// One attempt at `req.target`. `Ok` for an answer to pass on (2xx, or a client error the
    /// provider was right about); `Err` for everything else, the provider's health updated as
    /// for a proxied attempt.
    pub async fn send(
        &self,
        gw: &Arc<GatewayState>,
        req: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let started = std::time::Instant::now();
        let deadline = req.deadline;
        let Some(up) = gw.upstreams.get(req.target.provider) else {
            let attempt = AttemptInfo {
                provider_index: req.target.provider,
                provider: String::new(),
                model: req.target.model.clone(),
                key_index: None,
                elapsed: Duration::ZERO,
                reused_connection: false,
            };
            return Err(OutboundError::new(
                OutboundErrorKind::Invalid,
                "invalid",
                format!("no provider #{}", req.target.provider),
                attempt,
                deadline,
            ));
        };
        let model = req.target.model.as_str();
        let mut attempt = AttemptInfo {
            provider_index: req.target.provider,
            provider: up.name().to_owned(),
            model: model.to_owned(),
            key_index: None,
            elapsed: Duration::ZERO,
            reused_connection: false,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(OutboundError::deadline("starting", attempt));
        }
        let admitted =
            match tokio::time::timeout_at(deadline, up.admit(&gw.resolver, model, now)).await {
                Ok(Ok(a)) => a,
                Ok(Err(why)) => return Err(OutboundError::skipped(why, attempt, deadline)),
                Err(_) => {
                    return Err(OutboundError::deadline(
                        "resolving the provider's address",
                        attempt,
                    ))
                }
            };
        attempt.key_index = admitted.key_index;
        let peer = up.peer(admitted.addr, deadline.saturating_duration_since(now));
        let header = match req.header(up, admitted.key_index) {
            Ok(h) => h,
            Err(e) => {
                return Err(OutboundError::new(
                    OutboundErrorKind::Invalid,
                    "invalid",
                    format!("the request header: {}", e.etype().as_str()),
                    attempt,
                    deadline,
                ))
            }
        };
        let exchange = self.exchange(&peer, &header, &req.body);
        let result = tokio::time::timeout_at(deadline, exchange).await;
        attempt.elapsed = started.elapsed();
        let (session, reused) = match result {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                up.record_failure(model, Instant::now());
                return Err(OutboundError::transport(&e, attempt, deadline));
            }
            Err(_) => {
                up.record_failure(model, Instant::now());
                return Err(OutboundError::deadline("waiting for the answer", attempt));
            }
        };
        attempt.reused_connection = reused;
        let Some(resp) = session.response_header().cloned() else {
            up.record_failure(model, Instant::now());
            return Err(OutboundError::new(
                OutboundErrorKind::Protocol,
                "InvalidHTTPHeader",
                "no response header",
                attempt,
                deadline,
            ));
        };
        let answered = up.record_answer(
            model,
            admitted.key_index,
            &resp,
            &gw.config.resilience,
            Instant::now(),
        );
        let status = resp.status.as_u16();
        if answered.verdict == Verdict::Final {
            return Ok(OutboundResponse::new(
                resp,
                attempt,
                session,
                peer,
                self.connector.clone(),
                gw.clone(),
                deadline,
            ));
        }
        // The answer is dropped; reading its (small) body keeps the connection for reuse.
        self.drain(session, &peer, deadline).await;
        Err(OutboundError::status(
            status,
            Instant::now() < deadline,
            answered.retry_after,
            attempt,
        ))
    }

    /// Connects (or takes a pooled connection), sends the request and reads the response
    /// header. A pooled connection the provider had closed gets one retry on another one, as
    /// pingora's proxy loop does for proxied attempts.
    async fn exchange(
        &self,
        peer: &HttpPeer,
        header: &RequestHeader,
        body: &bytes::Bytes,
    ) -> pingora_error::Result<(HttpSession, bool)> {
        let mut stale_retries = 1;
        loop {
            let (mut session, reused) = self.connector.get_http_session(peer).await?;
            session.set_read_timeout(peer.options.read_timeout);
            session.set_write_timeout(peer.options.write_timeout);
            match request_and_header(&mut session, header, body).await {
                Ok(()) => return Ok((session, reused)),
                Err(e) => {
                    if reused && stale_retries > 0 && matches!(e.retry, RetryType::ReusedOnly) {
                        stale_retries -= 1;
                        log::debug!("outbound: retrying on a fresh connection: {e}");
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Reads an error answer's body to its end (bounded in size and by the deadline) and
    /// returns the connection to the pool; otherwise the connection is closed.
    async fn drain(&self, mut session: HttpSession, peer: &HttpPeer, deadline: Instant) {
        let mut read = 0usize;
        let complete = tokio::time::timeout_at(deadline, async {
            while let Ok(Some(chunk)) = session.read_response_body().await {
                read += chunk.len();
                if read > ERROR_BODY_LIMIT {
                    return false;
                }
            }
            session.response_done()
        })
        .await
        .unwrap_or(false);
        if complete {
            self.connector
                .release_http_session(session, peer, peer.options.idle_timeout)
                .await;
        }
    }
}

/// Writes the request and reads the response header (skipping informational 1xx heads).
async fn request_and_header(
    session: &mut HttpSession,
    header: &RequestHeader,
    body: &bytes::Bytes,
) -> pingora_error::Result<()> {
    session
        .write_request_header(Box::new(header.clone()))
        .await?;
    if !body.is_empty() {
        session.write_request_body(body.clone(), true).await?;
    }
    session.finish_request_body().await?;
    for _ in 0..8 {
        session.read_response_header().await?;
        let informational = session
            .response_header()
            .map(|r| r.status.as_u16())
            .is_some_and(|s| (100..200).contains(&s) && s != 101);
        if !informational {
            return Ok(());
        }
    }
    pingora_error::Error::e_explain(
        pingora_error::ErrorType::InvalidHTTPHeader,
        "too many informational responses",
    )
}
