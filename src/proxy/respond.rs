//! Responses the gateway writes itself: errors in the client's dialect, and local JSON.

use super::ctx::RequestCtx;
use crate::error::GatewayError;
use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

pub const REQUEST_ID_HEADER: &str = "x-switchyard-request-id";

/// An unread request body up to this size is drained before an early error response, so the
/// client's connection stays usable; a larger one closes the connection instead.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Makes sure an unread body cannot be mistaken for the next request: reads it away when it is
/// small (or empty), and reports whether that worked.
async fn settle_body(session: &mut Session, ctx: &mut RequestCtx) -> bool {
    if ctx.downstream.body_read {
        return true;
    }
    if ctx.downstream.close {
        // The connection closes anyway (e.g. a body that timed out): nothing to drain.
        return false;
    }
    if session.as_downstream_mut().is_body_empty() {
        ctx.downstream.body_read = true;
        return true;
    }
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n <= DRAIN_LIMIT) && session.drain_request_body().await.is_ok() {
        ctx.downstream.body_read = true;
    }
    ctx.downstream.body_read
}

/// Writes a complete JSON response. `close` drops the client connection afterwards; use it
/// when the request body was not read, so its bytes cannot be mistaken for the next request.
pub async fn json(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    body: Vec<u8>,
    extra: &[(&'static str, String)],
) -> pingora_error::Result<()> {
    if let Some(home) = ctx.downstream.home.take() {
        // The gateway answers itself: unwrap the client session first (dropping anything held
        // from a failed attempt), so connection handling is the real session's.
        super::downstream::restore(&mut session.downstream_session, &home);
    }
    let close = !settle_body(session, ctx).await || ctx.downstream.close;
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header(REQUEST_ID_HEADER, ctx.id.as_str())?;
    for (k, v) in extra {
        resp.insert_header(*k, v.as_str())?;
    }
    if !ctx.walk.attempts.is_empty() {
        resp.insert_header("x-switchyard-attempts", ctx.attempts_header())?;
    }
    if let Some(reason) = &ctx.plan.reason {
        resp.insert_header(super::layers::routing::ROUTE_REASON_HEADER, reason.as_str())?;
    }
    if close {
        resp.insert_header("connection", "close")?;
        session.set_keepalive(None);
    }
    ctx.outcome.status = status;
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await?;
    Ok(())
}

/// Writes `err` in the client's dialect.
pub async fn error(
    session: &mut Session,
    ctx: &mut RequestCtx,
    err: GatewayError,
) -> pingora_error::Result<()> {
    let body = ctx.client.dialect.error_body(&err);
    let status = err.status();
    let mut extra = Vec::new();
    if status == 405 {
        extra.push(("allow", allowed_methods(session).to_owned()));
    }
    if let Some(after) = err.retry_after {
        extra.push((
            "retry-after",
            after.as_secs_f64().ceil().max(1.0).to_string(),
        ));
    }
    log::debug!("request {} answered by the gateway: {err}", ctx.id);
    ctx.outcome.error = Some(err);
    json(session, ctx, status, body, &extra).await
}

fn allowed_methods(session: &Session) -> &'static str {
    match session.req_header().uri.path() {
        "/v1/models" | "/v1beta/models" | "/healthz" => "GET",
        _ => "POST",
    }
}
