//! Walking the candidate list: each outcome feeds the breakers and key health, and decides
//! whether another attempt is possible before the request's deadline and attempt budget run out.

use super::ctx::{Attempt, RequestCtx};
use super::GatewayState;
use crate::config::Target;
use crate::error::{ErrorKind, GatewayError};
use crate::resilience::classify::{classify_status, status_class, Verdict};
use crate::resilience::ratelimit;
use pingora_http::ResponseHeader;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// When `target` could next be tried (now, if it can): its breakers and keys allowing.
fn available_at(gw: &GatewayState, t: &Target, now: Instant) -> Instant {
    let up = &gw.upstreams[t.provider];
    let mut at = up.keys_available_at(now);
    if !up.breaker.would_allow(now) || !up.model_breaker(&t.model).would_allow(now) {
        at = at.max(now + gw.config.resilience.breaker.open_for);
    }
    at
}

/// How long to wait before walking the chain again, or `None` when nothing will be available
/// soon enough (within `backoff.max` and before the deadline).
pub fn wrap_delay(gw: &GatewayState, ctx: &RequestCtx, now: Instant) -> Option<Duration> {
    let policy = &gw.config.resilience;
    let earliest = ctx
        .candidates
        .iter()
        .map(|t| available_at(gw, t, now))
        .min()?;
    let jitter = policy.backoff.delay(ctx.round, rand::random::<f64>());
    let wait = jitter.max(earliest.saturating_duration_since(now));
    (wait <= policy.backoff.max && now + wait < ctx.deadline).then_some(wait)
}

/// Whether the request may make another upstream attempt after the current one failed.
pub fn can_retry(gw: &GatewayState, ctx: &RequestCtx, now: Instant) -> bool {
    if ctx.upstream_attempts() >= ctx.max_attempts as usize || now >= ctx.deadline {
        return false;
    }
    let rest = &ctx.candidates[ctx.next_candidate.min(ctx.candidates.len())..];
    rest.iter().any(|t| available_at(gw, t, now) <= now) || wrap_delay(gw, ctx, now).is_some()
}

/// The error when no further attempt is possible, shaped by what the attempts ran into.
pub fn exhausted(gw: &GatewayState, ctx: &RequestCtx, now: Instant) -> GatewayError {
    if now >= ctx.deadline {
        return GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!(
                "no provider answered within the request's deadline ({})",
                summary(ctx)
            ),
        );
    }
    let rate_limited = ctx
        .attempts
        .iter()
        .any(|a| a.status == Some(429) || a.error.as_deref() == Some("keys_resting"));
    let earliest = ctx
        .candidates
        .iter()
        .map(|t| available_at(gw, t, now))
        .min()
        .unwrap_or(now)
        .saturating_duration_since(now);
    let kind = if rate_limited {
        ErrorKind::RateLimited
    } else {
        ErrorKind::Unavailable
    };
    let mut e = GatewayError::new(
        kind,
        format!("no provider could serve this request ({})", summary(ctx)),
    );
    if !earliest.is_zero() {
        e = e.with_retry_after(earliest);
    }
    e
}

fn summary(ctx: &RequestCtx) -> String {
    if ctx.attempts.is_empty() {
        return "no attempt was possible".to_owned();
    }
    ctx.attempts
        .iter()
        .map(|a| format!("{}/{}: {}", a.provider, a.model, a.outcome()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Before any attempt: when no candidate can be tried now or after a short wait (every key
/// resting, every circuit open), the answer is known without calling anyone. The gateway then
/// answers from `request_filter`, which keeps the client connection alive.
pub fn precheck(gw: &GatewayState, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    let now = Instant::now();
    let any_now = ctx
        .candidates
        .iter()
        .any(|t| available_at(gw, t, now) <= now);
    if any_now || wrap_delay(gw, ctx, now).is_some() {
        return Ok(());
    }
    for t in ctx.candidates.clone() {
        let up = &gw.upstreams[t.provider];
        let why = if !up.usable() {
            "no_key"
        } else if !up.breaker.would_allow(now) || !up.model_breaker(&t.model).would_allow(now) {
            "circuit_open"
        } else {
            "keys_resting"
        };
        skip(ctx, t.provider, up.name(), &t.model, why);
    }
    Err(exhausted(gw, ctx, now))
}

/// A candidate passed over without an attempt (why: `circuit_open`, `keys_resting`, ...).
pub fn skip(ctx: &mut RequestCtx, provider_index: usize, provider: &str, model: &str, why: &str) {
    ctx.attempts.push(Attempt {
        provider_index,
        provider: provider.to_owned(),
        model: model.to_owned(),
        key_index: None,
        started: std::time::Instant::now(),
        elapsed: Some(Duration::ZERO),
        status: None,
        error: Some(why.to_owned()),
        skipped: true,
    });
}

/// What to do with a provider's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send it to the client.
    Pass,
    /// Drop it and make another attempt.
    Retry,
    /// Drop it and answer with the gateway's own error (`ctx.error`).
    Fail,
}

/// What a provider's response status means for this request.
pub fn on_response(gw: &GatewayState, ctx: &mut RequestCtx, resp: &ResponseHeader) -> Next {
    let now = Instant::now();
    let status = resp.status.as_u16();
    let Some(a) = ctx.attempts.last_mut() else {
        return Next::Pass;
    };
    a.status = Some(status);
    a.elapsed = Some(a.started.elapsed());
    let up = &gw.upstreams[a.provider_index];
    let key = a.key_index.and_then(|i| up.key_health.get(i));
    let limits = ratelimit::parse(&resp.headers, SystemTime::now());
    if let Some(k) = key {
        k.observe_budget(now, limits.remaining, limits.reset_in);
    }
    let model_breaker = up.model_breaker(&a.model);
    let verdict = classify_status(status);
    match verdict {
        Verdict::Final => {
            // The breakers hear of a success when the body is complete (`on_complete`): a
            // provider that sends a 200 and then dies mid-body is failing, not succeeding.
            if let Some(k) = key {
                k.succeeded();
            }
            return Next::Pass;
        }
        Verdict::Retry if status == 429 => {
            if let Some(k) = key {
                k.rate_limited(
                    now,
                    limits.retry_after,
                    gw.config.resilience.rate_limit_rest,
                );
            }
        }
        Verdict::Retry => {
            up.breaker.record(false, now);
            model_breaker.record(false, now);
        }
        Verdict::BadKey => {
            if let Some(k) = key {
                k.rest(now, gw.config.resilience.auth_failure_rest, "auth_failed");
            }
            log::warn!(
                "provider `{}` rejected key #{} ({}) with {status}; it rests for {:?}",
                up.name(),
                a.key_index.unwrap_or(0),
                a.key_index
                    .and_then(|i| up.cfg.keys.get(i))
                    .map_or("-", |s| s.origin()),
                gw.config.resilience.auth_failure_rest
            );
        }
    }
    a.error = Some(status_class(status).to_owned());
    super::observe::failed(gw, a, Some(status), now);
    let provider = a.provider.clone();
    if verdict == Verdict::BadKey {
        // The same target again, with another key if it has one.
        ctx.next_candidate = ctx.next_candidate.saturating_sub(1);
    }
    if can_retry(gw, ctx, now) {
        Next::Retry
    } else if verdict == Verdict::BadKey {
        // Passing the provider's 401 on would tell the client its gateway key is bad.
        ctx.error = Some(GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("provider `{provider}` rejected the gateway's API key(s)"),
        ));
        Next::Fail
    } else {
        Next::Pass
    }
}

/// Takes the target of the attempt in flight out of this request's candidates (it cannot work,
/// e.g. its certificate is not trusted), keeping the walk position on the next one.
pub fn exclude_current_target(ctx: &mut RequestCtx) {
    if ctx.next_candidate == 0 || ctx.next_candidate > ctx.candidates.len() {
        return;
    }
    ctx.candidates.remove(ctx.next_candidate - 1);
    ctx.next_candidate -= 1;
}

/// The answer arrived whole: the breakers of its provider and model hear of a success.
pub fn on_complete(gw: &GatewayState, ctx: &RequestCtx) {
    let now = Instant::now();
    let served = ctx.served_attempt();
    // A passed-through 429/5xx is a failure already recorded, not a success.
    if let Some(a) = served.filter(|a| a.status.is_some_and(|s| s < 400)) {
        let up = &gw.upstreams[a.provider_index];
        up.breaker.record(true, now);
        up.model_breaker(&a.model).record(true, now);
    }
}

/// A connection, TLS, timeout or protocol failure before the response started.
pub fn on_transport_failure(gw: &GatewayState, ctx: &mut RequestCtx, class: &str) {
    let now = Instant::now();
    if let Some(a) = ctx.attempts.last_mut() {
        a.error = Some(class.to_owned());
        a.elapsed = Some(a.started.elapsed());
        let up = &gw.upstreams[a.provider_index];
        up.breaker.record(false, now);
        up.model_breaker(&a.model).record(false, now);
        super::observe::failed(gw, a, None, now);
    }
}
