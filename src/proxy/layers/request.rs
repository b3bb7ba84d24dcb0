//! Layer 2: the request itself. Reads the whole body (bounded by `server.max_body_size`, and
//! by the longest deadline any route could have, so a body that trickles in gets 408), finds
//! the model and the stream flag, and makes every stream report usage. A multipart upload
//! (the endpoint table says which endpoints take one) is spooled instead of held in memory,
//! and its model is read from the form (`crate::media::upload`).

use super::{Cx, Failure, Flow, Layer};
use crate::dialect::probe::with_include_usage;
use crate::dialect::{probe_path_request, probe_request, Endpoint};
use crate::endpoints::{BodyKind, ModelField};
use crate::error::{ErrorKind, GatewayError};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::GatewayState;
use bytes::{Bytes, BytesMut};
use pingora_proxy::Session;
use std::time::Duration;

#[derive(Default)]
pub struct Request;

impl Layer for Request {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx {
            gw, session, ctx, ..
        } = cx;
        let Some(endpoint) = ctx.client.endpoint else {
            return Ok(Flow::Continue);
        };
        // The request's deadline runs from its arrival: the body's upload counts against it.
        let client = client_deadline(session.req_header());
        ctx.request.client_deadline = client;
        let upload_budget = client.map_or(gw.max_deadline, |c| c.min(gw.max_deadline));
        let spec = endpoint.spec();
        let read = async {
            match spec.request {
                BodyKind::Json => read_body(gw, session, ctx).await,
                // Boxed: uploads are rare, and their future is large.
                BodyKind::Multipart => Box::pin(read_upload(gw, session, ctx)).await,
            }
        };
        match tokio::time::timeout(upload_budget, read).await {
            Ok(read) => read?,
            Err(_) => {
                ctx.downstream.close = true;
                return Err(body_timeout(upload_budget).into());
            }
        }
        if spec.request == BodyKind::Multipart {
            let model = ctx.request.model.clone().unwrap_or_default();
            check_model(&model)?;
            // Audio comes back whole (a transcript); nothing streams.
            return Ok(Flow::Continue);
        }
        let mut probe = if spec.model == ModelField::Path {
            let uri = &session.req_header().uri;
            probe_path_request(uri.path(), uri.query(), &ctx.request.body)?
        } else {
            probe_request(&ctx.request.body)?
        };
        if endpoint == Endpoint::ChatCompletions && probe.stream {
            // Every stream must report usage for its cost; the extra chunk is stripped again
            // for clients that did not ask for it.
            ctx.client.wants_usage = probe.include_usage;
            if let Some((body, moved)) = with_include_usage(&ctx.request.body, &probe) {
                probe = moved;
                ctx.request.body = body;
            }
        }
        check_model(&probe.model)?;
        ctx.request.model = Some(probe.model);
        ctx.request.model_span = probe.model_span;
        ctx.request.fields = probe.fields;
        // Audio answers stream as they are produced, whatever the body says.
        ctx.request.stream = spec.streams(probe.stream);
        if !spec.chat {
            ctx.media.facts = crate::media::json_facts(endpoint, &ctx.request.body);
        }
        Ok(Flow::Continue)
    }
}

/// Model names travel in response headers and metric labels.
fn check_model(model: &str) -> Result<(), GatewayError> {
    if !model.bytes().all(|b| b.is_ascii_graphic()) || model.len() > 256 {
        return Err(GatewayError::bad_request(
            "`model` must be at most 256 visible ASCII characters",
        )
        .with_param("model"));
    }
    Ok(())
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
    // Beyond what any route may allow anyway: capped, so no arithmetic on it can overflow.
    let asked = asked.min(crate::duration::Bound::Request.max());
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

fn too_large(limit: usize) -> GatewayError {
    GatewayError::new(
        ErrorKind::PayloadTooLarge,
        format!("The request body is larger than this gateway's limit of {limit} bytes"),
    )
}

/// Reads the whole request body, bounded by `server.max_body_size`.
async fn read_body(
    gw: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(), Failure> {
    let limit = gw.config.server.max_body_size;
    let declared = start_body(session, limit).await?;
    // A body that arrives in one chunk is kept as that chunk; only a second one starts a copy.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut read = 0usize;
    while let Some(chunk) = session.read_request_body().await.map_err(Failure::Io)? {
        read += chunk.len();
        if read > limit {
            return Err(too_large(limit).into());
        }
        if let Some(f) = first.take() {
            buf.reserve(declared.unwrap_or(0).min(limit).max(read));
            buf.extend_from_slice(&f);
            buf.extend_from_slice(&chunk);
        } else if buf.is_empty() {
            first = Some(chunk);
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    ctx.request.body = first.unwrap_or_else(|| buf.freeze());
    ctx.downstream.body_read = true;
    Ok(())
}

/// Before the body: refuses a declared length over `limit`, answers `Expect: 100-continue`.
/// Returns the declared length.
async fn start_body(session: &mut Session, limit: usize) -> Result<Option<usize>, Failure> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit).into());
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
    Ok(declared)
}

/// Reads a multipart upload into a spool (memory, then a temp file), bounded by
/// `server.max_body_size`, and finds its model field (see `crate::media::upload`).
async fn read_upload(
    gw: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(), Failure> {
    use crate::media::upload::{Spool, Upload};
    let limit = gw.config.server.max_body_size;
    let content_type = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = crate::media::multipart::boundary(content_type) else {
        return Err(GatewayError::bad_request(
            "this endpoint takes a multipart/form-data body (with a boundary)",
        )
        .into());
    };
    start_body(session, limit).await?;
    let spool_error = |e: std::io::Error| {
        log::error!("upload spool: {e}");
        Failure::Gateway(GatewayError::new(
            ErrorKind::Internal,
            "the upload could not be stored for forwarding",
        ))
    };
    let mut spool = Spool::new(&boundary);
    let mut read = 0usize;
    while let Some(chunk) = session.read_request_body().await.map_err(Failure::Io)? {
        read += chunk.len();
        if read > limit {
            return Err(too_large(limit).into());
        }
        spool.push(&chunk).await.map_err(spool_error)?;
    }
    ctx.downstream.body_read = true;
    let (parts, stored) = spool.finish().await.map_err(spool_error)?;
    let parts = parts.map_err(|why| {
        GatewayError::bad_request(format!("the multipart body is malformed: {why}"))
    })?;
    let field = endpoint_model_field(ctx).unwrap_or("model");
    let model = parts.iter().find(|p| p.name == field).ok_or_else(|| {
        GatewayError::bad_request(format!("you must provide a `{field}` form field"))
            .with_param(field)
    })?;
    let name = model
        .text()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            GatewayError::bad_request(format!("the `{field}` form field must be a short text"))
                .with_param(field)
        })?;
    if name.len() != model.text().map_or(0, str::len) {
        return Err(GatewayError::bad_request(format!(
            "the `{field}` form field must not have surrounding spaces"
        ))
        .with_param(field)
        .into());
    }
    ctx.request.model = Some(name.to_owned());
    ctx.media.facts.audio_seconds = parts
        .iter()
        .find(|p| p.filename.is_some())
        .and_then(|f| crate::media::wav::duration(&f.head, f.value.end - f.value.start));
    ctx.media.upload = Some(Upload::new(stored, model.value.clone()));
    Ok(())
}

/// The multipart field naming the model, from the endpoint table.
fn endpoint_model_field(ctx: &RequestCtx) -> Option<&'static str> {
    match ctx.client.endpoint?.spec().model {
        ModelField::Form(f) => Some(f),
        ModelField::Json(_) | ModelField::Path => None,
    }
}
