//! Choosing the peer for the next attempt and shaping the request it receives.

use super::attempts;
use super::ctx::{Attempt, RequestCtx};
use super::GatewayState;
use crate::dialect::probe::rewrite_model;
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
        if ctx.upstream_attempts() >= ctx.max_attempts as usize || now >= ctx.deadline {
            return Err(attempts::exhausted(gw, ctx, now));
        }
        let Some(target) = ctx.candidates.get(ctx.next_candidate).cloned() else {
            let Some(wait) = attempts::wrap_delay(gw, ctx, now) else {
                return Err(attempts::exhausted(gw, ctx, now));
            };
            if ctx.round >= ctx.max_attempts {
                return Err(attempts::exhausted(gw, ctx, now));
            }
            tokio::time::sleep(wait).await;
            ctx.round += 1;
            ctx.next_candidate = 0;
            continue;
        };
        ctx.next_candidate += 1;
        let up = &gw.upstreams[target.provider];
        let skip = |ctx: &mut RequestCtx, why: &str| {
            attempts::skip(ctx, target.provider, up.name(), &target.model, why)
        };
        let admitted = match up.admit(&gw.resolver, &target.model, now).await {
            Ok(a) => a,
            Err(why) => {
                skip(ctx, why.as_str());
                continue;
            }
        };
        let key_index = admitted.key_index;
        let peer = up.peer(admitted.addr, ctx.deadline.saturating_duration_since(now));
        ctx.upstream_body = match &ctx.translator {
            Some(t) if up.cfg.dialect != ctx.dialect => {
                match t.body_for(up.cfg.dialect, &target.model, &gw.config.translation) {
                    Ok(body) => body,
                    Err(e) => {
                        // Checked at intake for each dialect; a failure here is a bug.
                        log::error!("translation for {}: {e}", up.name());
                        skip(ctx, "untranslatable");
                        continue;
                    }
                }
            }
            _ => rewrite_model(&ctx.body, &ctx.model_span, &target.model),
        };
        ctx.attempts.push(Attempt {
            provider_index: target.provider,
            provider: up.name().to_owned(),
            model: target.model.clone(),
            key_index,
            started: std::time::Instant::now(),
            elapsed: None,
            status: None,
            error: None,
            skipped: false,
        });
        return Ok(peer);
    }
}

/// Rewrites the client's request header into the provider's: path, host, auth, framing.
pub fn shape_request(
    gw: &GatewayState,
    ctx: &RequestCtx,
    req: &mut RequestHeader,
) -> pingora_error::Result<()> {
    let (Some(attempt), Some(endpoint)) = (ctx.attempts.last(), ctx.endpoint) else {
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
            stream: ctx.stream,
            client_dialect: ctx.dialect,
            body_len: ctx.upstream_body.len(),
            key_index: attempt.key_index,
        },
    )
}
