//! Choosing the peer for the next attempt and shaping the request it receives.

use super::attempts;
use super::ctx::{Attempt, AttemptBody, AttemptOutcome, RequestCtx, Skip};
use super::GatewayState;
use crate::dialect::probe::{model_literal, rewrite_model};
use crate::error::GatewayError;
use crate::providers::shape::RequestShape;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use tokio::time::Instant;

/// Picks the next candidate that can take the request and builds its peer. Candidates that
/// cannot (no usable key, circuit open, every key resting, a name that does not resolve) are
/// recorded as skipped. When the chain is used up, it is walked again after a backoff, while
/// the attempt budget and the deadline allow.
pub async fn next_peer(gw: &GatewayState, ctx: &mut RequestCtx) -> Result<HttpPeer, GatewayError> {
    loop {
        let now = Instant::now();
        if ctx.walk.upstream_attempts() >= ctx.plan.max_attempts as usize
            || now >= ctx.plan.deadline
        {
            return Err(attempts::exhausted(gw, ctx, now));
        }
        let Some(target) = ctx.plan.candidates.get(ctx.walk.next).cloned() else {
            let Some(wait) = attempts::wrap_delay(gw, ctx, now) else {
                return Err(attempts::exhausted(gw, ctx, now));
            };
            if ctx.walk.round >= ctx.plan.max_attempts {
                return Err(attempts::exhausted(gw, ctx, now));
            }
            tokio::time::sleep(wait).await;
            ctx.walk.round += 1;
            ctx.walk.next = 0;
            continue;
        };
        ctx.walk.next += 1;
        let up = &gw.upstreams[target.provider];
        let skip = |ctx: &mut RequestCtx, why: Skip| {
            attempts::skip(ctx, target.provider, up.name(), &target.model, why)
        };
        let admitted = match up.admit(&gw.resolver, &target.model, now).await {
            Ok(a) => a,
            Err(why) => {
                skip(ctx, why);
                continue;
            }
        };
        let key_index = admitted.key_index;
        let peer = up.peer(
            admitted.addr,
            ctx.plan.deadline.saturating_duration_since(now),
        );
        let to = ctx
            .client
            .endpoint
            .map_or(up.cfg.dialect, |e| up.wire_dialect(e));
        clear_pieces(ctx);
        let body = match &ctx.request.translator {
            Some(t) if to != ctx.client.dialect => {
                match t.body_for(to, &target.model, &gw.config.translation) {
                    Ok(body) => AttemptBody::Whole(body),
                    Err(e) => {
                        // Checked at intake for each dialect; a failure here is a bug.
                        log::error!("translation for {}: {e}", up.name());
                        skip(ctx, Skip::Untranslatable);
                        continue;
                    }
                }
            }
            _ => match media_body(ctx, to, &target.model) {
                Some(Ok(body)) => body,
                Some(Err(e)) => {
                    log::error!("request for {}: {e}", up.name());
                    skip(ctx, Skip::Untranslatable);
                    continue;
                }
                // A model named in the path (Gemini) is in the upstream path, not the body.
                None if ctx.request.model_span.is_empty() => {
                    AttemptBody::Whole(ctx.request.body.clone())
                }
                None => renamed(ctx, &target.model),
            },
        };
        ctx.walk.body = body;
        ctx.walk.attempts.push(Attempt {
            provider_index: target.provider,
            provider: up.name().to_owned(),
            model: target.model.clone(),
            key_index,
            started: std::time::Instant::now(),
            elapsed: None,
            outcome: AttemptOutcome::Pending,
        });
        return Ok(peer);
    }
}

/// Bodies at least this large are sent as pieces when their model is renamed: the copy would
/// cost more than the extra writes.
const PIECES_FROM: usize = 64 << 10;

/// The client's JSON with the model renamed for `model`: a copy for a small body; a large one
/// is replayed from memory like an upload (`crate::media::upload`), the client's bytes around
/// the new name, handed to the wrapped session (`downstream`): no copy.
fn renamed(ctx: &RequestCtx, model: &str) -> AttemptBody {
    let (body, span) = (&ctx.request.body, &ctx.request.model_span);
    if body.len() >= PIECES_FROM {
        if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
            use crate::media::upload::{Stored, Upload};
            let span = span.start as u64..span.end as u64;
            let mut replay = Upload::new(Stored::memory(body.clone()), span);
            c.upload = Some(replay.cursor(&model_literal(model)));
            return AttemptBody::Piecewise(replay.attempt_len());
        }
    }
    AttemptBody::Whole(rewrite_model(body, span, model))
}

/// Takes back the last attempt's replay of a large body, if it sent one: this attempt sends
/// its own body.
fn clear_pieces(ctx: &RequestCtx) {
    if matches!(ctx.walk.body, AttemptBody::Piecewise(_)) && !ctx.media.streams_upload() {
        if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
            c.upload = None;
        }
    }
}

/// A media request's body for this attempt (`crate::media`): an upload replayed from its
/// spool (the body then streams through the wrapped session), or a translation. `None`: the
/// client's JSON with the model renamed.
fn media_body(
    ctx: &mut RequestCtx,
    to: crate::dialect::Dialect,
    model: &str,
) -> Option<Result<AttemptBody, GatewayError>> {
    if let Some(upload) = ctx.media.upload.as_mut() {
        let cursor = upload.cursor(model);
        let len = upload.attempt_len();
        if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
            c.upload = Some(cursor);
        }
        return Some(Ok(AttemptBody::Piecewise(len)));
    }
    let endpoint = ctx.client.endpoint?;
    crate::media::attempt_body(endpoint, ctx.client.dialect, to, &ctx.request.body, model)
        .map(|r| r.map(AttemptBody::Whole))
}

/// Rewrites the client's request header into the provider's: path, host, auth, framing.
pub fn shape_request(
    gw: &GatewayState,
    ctx: &RequestCtx,
    req: &mut RequestHeader,
) -> pingora_error::Result<()> {
    let (Some(attempt), Some(endpoint)) = (ctx.walk.attempts.last(), ctx.client.endpoint) else {
        return pingora_error::Error::e_explain(
            pingora_error::ErrorType::InternalError,
            "upstream request without an attempt",
        );
    };
    gw.upstreams[attempt.provider_index].shape_request(
        req,
        &RequestShape {
            endpoint,
            model: &attempt.model,
            stream: ctx.request.stream,
            client_dialect: ctx.client.dialect,
            body_len: ctx.walk.body.byte_len(),
            key_index: attempt.key_index,
        },
    )
}
