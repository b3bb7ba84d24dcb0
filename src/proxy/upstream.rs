//! Choosing the peer for the next attempt and shaping the request it receives.

use super::attempts;
use super::ctx::{Attempt, AttemptOutcome, RequestCtx, Skip};
use super::GatewayState;
use crate::dialect::probe::rewrite_model;
use crate::error::GatewayError;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use std::time::Duration;
use tokio::time::Instant;

/// How long a pooled upstream connection may sit idle before it is closed.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for one write of the request to the provider.
const UPSTREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers the client sent that must not reach a provider: framing (recomputed), connection
/// management, the client's identity towards its own OpenAI org, and the gateway's own.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "expect",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "accept-encoding",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "openai-organization",
    "openai-project",
];

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
        if !up.usable() {
            skip(ctx, Skip::NoKey);
            continue;
        }
        let model_breaker = up.model_breaker(&target.model);
        if !up.breaker.would_allow(now) || !model_breaker.would_allow(now) {
            skip(ctx, Skip::CircuitOpen);
            continue;
        }
        let key_index = if up.cfg.keys.is_empty() {
            None
        } else {
            match up.choose_key(now) {
                Some(k) => Some(k.index),
                None => {
                    skip(ctx, Skip::KeysResting);
                    continue;
                }
            }
        };
        let base = &up.cfg.base_url;
        let addr = match gw.resolver.resolve(&base.host, base.port).await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("provider `{}`: {e}", up.name());
                skip(ctx, Skip::Dns);
                continue;
            }
        };
        // Take the probe slots now that the attempt is certain to happen.
        if !up.breaker.allow(now) || !model_breaker.allow(now) {
            skip(ctx, Skip::CircuitOpen);
            continue;
        }
        let remaining = ctx.plan.deadline.saturating_duration_since(now);
        let mut peer = HttpPeer::new(addr, base.tls, base.host.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(up.cfg.connect_timeout.min(remaining));
        o.total_connection_timeout = Some(up.cfg.connect_timeout.min(remaining));
        o.read_timeout = Some(up.cfg.read_timeout.min(remaining));
        o.write_timeout = Some(UPSTREAM_WRITE_TIMEOUT.min(remaining));
        o.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
        let to = ctx
            .client
            .endpoint
            .map_or(up.cfg.dialect, |e| up.wire_dialect(e));
        ctx.walk.body = match &ctx.request.translator {
            Some(t) if to != ctx.client.dialect => {
                match t.body_for(to, &target.model, &gw.config.translation) {
                    Ok(body) => body,
                    Err(e) => {
                        // Checked at intake for each dialect; a failure here is a bug.
                        log::error!("translation for {}: {e}", up.name());
                        skip(ctx, Skip::Untranslatable);
                        continue;
                    }
                }
            }
            // A model named in the path (Gemini) is in the upstream path, not the body.
            _ if ctx.request.model_span.is_empty() => ctx.request.body.clone(),
            _ => rewrite_model(&ctx.request.body, &ctx.request.model_span, &target.model),
        };
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
    let up = &gw.upstreams[attempt.provider_index];
    let path = up.path_for(endpoint, &attempt.model, ctx.request.stream);
    req.set_uri(
        http::Uri::builder()
            .path_and_query(path.as_str())
            .build()
            .map_err(|e| {
                pingora_error::Error::because(
                    pingora_error::ErrorType::InternalError,
                    "upstream path",
                    e,
                )
            })?,
    );
    // One pass over the (few) headers present, rather than a removal per listed name.
    let drop: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|k| {
            let n = k.as_str();
            n.starts_with("x-switchyard-") || DROPPED_REQUEST_HEADERS.contains(&n)
        })
        .cloned()
        .collect();
    for h in drop {
        req.remove_header(&h);
    }
    if up.wire_dialect(endpoint) != ctx.client.dialect {
        // The client's dialect-specific headers mean nothing (or something wrong) to a provider
        // of another dialect; the translated body is JSON whatever the client sent.
        for h in [
            "anthropic-version",
            "anthropic-beta",
            "content-type",
            "accept",
        ] {
            req.remove_header(h);
        }
        req.insert_header("content-type", "application/json")?;
    }
    req.insert_header("host", up.cfg.base_url.host_header())?;
    req.insert_header("content-length", ctx.walk.body.len().to_string())?;
    let key = attempt.key_index.and_then(|i| up.cfg.keys.get(i));
    up.apply_auth(req, key)?;
    Ok(())
}
