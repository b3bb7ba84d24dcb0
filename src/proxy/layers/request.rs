//! Layer 2: the request itself. Reads the whole body (bounded by `server.max_body_size`, and
//! by the longest deadline any route could have, so a body that trickles in gets 408), finds
//! the model and the stream flag, and makes every stream report usage.

use super::{Cx, Failure, Flow, Layer};
use crate::dialect::probe::with_include_usage;
use crate::dialect::{probe_path_request, probe_request, Endpoint, ModelSource};
use crate::error::{ErrorKind, GatewayError};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::GatewayState;
use bytes::BytesMut;
use pingora_proxy::Session;
use std::time::Duration;

#[derive(Default)]
pub struct Request;

impl Layer for Request {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx { gw, session, ctx } = cx;
        let Some(endpoint) = ctx.client.endpoint else {
            return Ok(Flow::Continue);
        };
        // The request's deadline runs from its arrival: the body's upload counts against it.
        let client = client_deadline(session.req_header());
        ctx.request.client_deadline = client;
        let upload_budget = client.map_or(gw.config.max_deadline(), |c| {
            c.min(gw.config.max_deadline())
        });
        match tokio::time::timeout(upload_budget, read_body(gw, session, ctx)).await {
            Ok(read) => read?,
            Err(_) => {
                ctx.downstream.close = true;
                return Err(body_timeout(upload_budget).into());
            }
        }
        let mut probe = match endpoint.model_source() {
            ModelSource::Body => probe_request(&ctx.request.body)?,
            ModelSource::Path => {
                let uri = &session.req_header().uri;
                probe_path_request(uri.path(), uri.query(), &ctx.request.body)?
            }
        };
        if endpoint == Endpoint::ChatCompletions && probe.stream {
            // Every stream must report usage for its cost; the extra chunk is stripped again
            // for clients that did not ask for it.
            ctx.client.wants_usage = probe.include_usage;
            if let Some(body) = with_include_usage(&ctx.request.body, &probe) {
                probe = probe_request(&body)?;
                ctx.request.body = body;
            }
        }
        if !probe.model.bytes().all(|b| b.is_ascii_graphic()) || probe.model.len() > 256 {
            // Model names travel in response headers and metric labels.
            return Err(GatewayError::bad_request(
                "`model` must be at most 256 visible ASCII characters",
            )
            .with_param("model")
            .into());
        }
        ctx.request.model = Some(probe.model);
        ctx.request.model_span = probe.model_span;
        ctx.request.stream = probe.stream;
        Ok(Flow::Continue)
    }
}

/// The time the client gives the request: `x-switchyard-timeout-ms`, or the OpenAI/Anthropic
/// SDKs' own `x-stainless-timeout` (seconds). The gateway answers a little before it, so the
/// client gets a clean error rather than its own timeout.
fn client_deadline(req: &pingora_http::RequestHeader) -> Option<Duration> {
    let get = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let asked = get("x-switchyard-timeout-ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .or_else(|| {
            get("x-stainless-timeout")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
        })?;
    let margin = (asked / 10).min(Duration::from_millis(250));
    Some(asked.saturating_sub(margin))
}

pub fn body_timeout(budget: Duration) -> GatewayError {
    GatewayError::new(
        ErrorKind::RequestTimeout,
        format!(
            "The request body did not arrive within the request's deadline ({} s)",
            budget.as_secs_f64()
        ),
    )
}

/// Reads the whole request body, bounded by `server.max_body_size`.
async fn read_body(
    gw: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(), Failure> {
    let limit = gw.config.server.max_body_size;
    let too_large = || {
        GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body is larger than this gateway's limit of {limit} bytes"),
        )
    };
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large().into());
    }
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        session
            .as_downstream_mut()
            .write_continue_response()
            .await
            .map_err(Failure::Io)?;
    }
    session.enable_retry_buffering();
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = session.read_request_body().await.map_err(Failure::Io)? {
        if buf.len() + chunk.len() > limit {
            return Err(too_large().into());
        }
        buf.extend_from_slice(&chunk);
    }
    ctx.request.body = buf.freeze();
    ctx.downstream.body_read = true;
    Ok(())
}
