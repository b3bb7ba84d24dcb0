//! The gateway's Pingora `ProxyHttp` implementation. Each hook is thin and hands its work to a
//! module with one job. A request passes these layers, in order:
//!
//! 1. `request_filter` -> [`intake`]: classify the endpoint (`/v1/chat/completions`,
//!    `/v1/messages`, `/v1/embeddings`; `/v1/models` and `/healthz` are answered here),
//!    authenticate the gateway key, read the whole body (bounded; 413 past the limit), find the
//!    model, check the key may use it, and resolve it into an ordered candidate list
//!    ([`crate::routing`]). Bodies over pingora's 64 KiB replay buffer are served through
//!    [`body_session`]. Errors are answered in the client's dialect.
//! 2. `upstream_peer` -> [`upstream::next_peer`]: the next candidate with a usable key, its
//!    address from the non-blocking DNS cache ([`crate::net`]), timeouts from config.
//! 3. `upstream_request_filter` -> [`upstream::shape_request`]: provider path, host, the
//!    provider's key in place of the client's, framing for the rewritten body.
//! 4. `request_body_filter`: the body for this attempt (the model renamed for its target).
//! 5. `fail_to_connect` / `error_while_proxy`: before any byte reached the client, move on to
//!    the next candidate (or retry a stale pooled connection); after, give up.
//! 6. `upstream_response_filter` / `response_filter`: record the attempt; add
//!    `x-switchyard-request-id`, `-provider`, `-model`. Bodies (SSE included) stream through
//!    untouched, chunk by chunk.
//! 7. `fail_to_proxy`: an error in the client's dialect if nothing was sent yet.
//! 8. `logging`: restore the real client session; one JSON access-log line.

mod access_log;
pub mod body_session;
pub mod ctx;
mod intake;
mod models;
mod respond;
mod upstream;

use crate::auth::KeyRing;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::net::Resolver;
use crate::providers::Upstream;
use crate::routing::Router;
use async_trait::async_trait;
use bytes::Bytes;
use ctx::RequestCtx;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, RetryType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Instant;

/// Everything the hooks share, built once from a validated config.
pub struct GatewayState {
    pub config: Config,
    pub router: Router,
    pub keys: KeyRing,
    pub upstreams: Vec<Upstream>,
    pub resolver: Arc<Resolver>,
}

impl GatewayState {
    pub fn new(config: Config, resolver: Arc<Resolver>) -> GatewayState {
        GatewayState {
            router: Router::new(&config),
            keys: KeyRing::new(&config.gateway_keys),
            upstreams: config
                .providers
                .iter()
                .cloned()
                .map(Upstream::new)
                .collect(),
            resolver,
            config,
        }
    }
}

pub struct Gateway {
    pub state: Arc<GatewayState>,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<bool> {
        intake::intake(&self.state, session, ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Box<HttpPeer>> {
        match upstream::next_peer(&self.state, ctx).await {
            Ok(peer) => Ok(Box::new(peer)),
            Err(e) => {
                let msg = e.message.clone();
                ctx.error = Some(e);
                Error::e_explain(ErrorType::ConnectNoRoute, msg)
            }
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        upstream::shape_request(&self.state, ctx, upstream_request)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        // The client's body was read whole in `request_filter`; each attempt sends its own
        // rewritten copy, once, at the end of the (replayed) stream.
        *body = Some(if end_of_stream {
            ctx.upstream_body.clone()
        } else {
            Bytes::new()
        });
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        ctx.first_byte.get_or_insert_with(Instant::now);
        if let Some(a) = ctx.current_attempt() {
            a.status = Some(upstream_response.status.as_u16());
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        ctx.status = resp.status.as_u16();
        resp.insert_header(respond::REQUEST_ID_HEADER, ctx.id.as_str())?;
        if let Some(a) = ctx.attempts.last() {
            resp.insert_header("x-switchyard-provider", a.provider.as_str())?;
            resp.insert_header("x-switchyard-model", a.model.as_str())?;
        }
        resp.insert_header("x-switchyard-attempts", ctx.attempts.len().to_string())?;
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(a) = ctx.current_attempt() {
            a.error = Some(e.etype().as_str().to_owned());
        }
        e.set_retry(ctx.has_more_candidates());
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        if let Some(a) = ctx.current_attempt() {
            a.error = Some(e.etype().as_str().to_owned());
        }
        let nothing_sent = session.response_written().is_none();
        let stale_pooled_conn = client_reused && matches!(e.retry, RetryType::ReusedOnly);
        if nothing_sent && stale_pooled_conn {
            // The provider closed an idle pooled connection: the same target on a fresh one.
            ctx.next_candidate = ctx.next_candidate.saturating_sub(1);
            e.set_retry(true);
        } else {
            e.set_retry(nothing_sent && ctx.has_more_candidates());
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if client_went_away(e) || session.response_written().is_some() {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let err = ctx.error.take().unwrap_or_else(|| classify_failure(e, ctx));
        let code = err.status();
        ctx.close_connection = true;
        if let Err(write_err) = respond::error(session, ctx, err).await {
            log::debug!("could not send the error response: {write_err}");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        // A client hanging up mid-stream is routine; the access log records it.
        client_went_away(e)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(home) = ctx.body_home.take() {
            body_session::restore(&mut session.downstream_session, &home);
        }
        if ctx.status == 0 {
            ctx.status = session.response_written().map_or(0, |r| r.status.as_u16());
        }
        access_log::write(session, e, ctx);
    }
}

fn client_went_away(e: &Error) -> bool {
    matches!(e.esource(), ErrorSource::Downstream)
        && matches!(
            e.etype(),
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
        )
}

/// A proxy failure the gateway did not classify itself, in client terms.
fn classify_failure(e: &Error, ctx: &RequestCtx) -> GatewayError {
    let provider = ctx.attempts.last().map_or("the provider".to_owned(), |a| {
        format!("provider `{}`", a.provider)
    });
    match e.etype() {
        ErrorType::ConnectTimedout => GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!("connecting to {provider} timed out"),
        ),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!("{provider} did not answer in time"),
        ),
        _ if matches!(e.esource(), ErrorSource::Downstream) => {
            GatewayError::bad_request("the request could not be read")
        }
        _ => GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("{provider} failed: {}", e.etype().as_str()),
        ),
    }
}

/// The log target of the per-request access lines.
pub fn access_log_target() -> &'static str {
    access_log::TARGET
}
