//! Walking the candidate list: each outcome feeds the breakers and key health, and decides
//! whether another attempt is possible before the request's deadline and attempt budget run out.

use super::ctx::{Attempt, AttemptOutcome, Dropped, RequestCtx, Skip};
use super::GatewayState;
use crate::config::Target;
use crate::error::{ErrorKind, GatewayError};
use crate::resilience::classify::Verdict;
use crate::routing::filter;
use pingora_http::ResponseHeader;
use std::time::Duration;
use tokio::time::Instant;

/// When `target` could next be tried (now, if it can): its breakers and keys allowing.
fn available_at(gw: &GatewayState, t: &Target, now: Instant) -> Instant {
    let open_for = gw.config.resilience.breaker.open_for;
    filter::available_at(&gw.upstreams[t.provider], &t.model, open_for, now)
}

/// How long to wait before walking the chain again, or `None` when nothing will be available
/// soon enough (within `backoff.max` and before the deadline).
pub fn wrap_delay(gw: &GatewayState, ctx: &RequestCtx, now: Instant) -> Option<Duration> {
    let policy = &gw.config.resilience;
    let earliest = ctx
        .plan
        .candidates
        .iter()
        .map(|t| available_at(gw, t, now))
        .min()?;
    let jitter = policy.backoff.delay(ctx.walk.round, rand::random::<f64>());
    let wait = jitter.max(earliest.saturating_duration_since(now));
    (wait <= policy.backoff.max && now + wait < ctx.plan.deadline).then_some(wait)
}

/// Whether the request may make another upstream attempt after the current one failed.
pub fn can_retry(gw: &GatewayState, ctx: &RequestCtx, now: Instant) -> bool {
    let plan = &ctx.plan;
    if ctx.walk.upstream_attempts() >= plan.max_attempts as usize || now >= plan.deadline {
        return false;
    }
    let rest = &plan.candidates[ctx.walk.next.min(plan.candidates.len())..];
    rest.iter().any(|t| available_at(gw, t, now) <= now) || wrap_delay(gw, ctx, now).is_some()
}

/// The error when no further attempt is possible, shaped by what the attempts ran into.
pub fn exhausted(gw: &GatewayState, ctx: &RequestCtx, now: Instant) -> GatewayError {
    if now >= ctx.plan.deadline {
        return GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!(
                "no provider answered within the request's deadline ({})",
                summary(ctx)
            ),
        );
    }
    let rate_limited = ctx.walk.attempts.iter().any(Attempt::rate_limited);
    let earliest = ctx
        .plan
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
    if ctx.walk.attempts.is_empty() {
        return "no attempt was possible".to_owned();
    }
    ctx.walk
        .attempts
        .iter()
        .map(|a| format!("{}/{}: {}", a.provider, a.model, a.outcome_label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Before any attempt: when no candidate can be tried now or after a short wait (every key
/// resting, every circuit open), the answer is known without calling anyone. The gateway then
/// answers from `request_filter`, which keeps the client connection alive.
pub fn precheck(gw: &GatewayState, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    let now = Instant::now();
    let any_now = ctx
        .plan
        .candidates
        .iter()
        .any(|t| available_at(gw, t, now) <= now);
    if any_now || wrap_delay(gw, ctx, now).is_some() {
        return Ok(());
    }
    for t in &ctx.plan.candidates {
        let up = &gw.upstreams[t.provider];
        let why = filter::unavailable(up, &t.model, now).unwrap_or(Skip::KeysResting);
        ctx.walk
            .attempts
            .push(Attempt::skipped(t.provider, up.name(), &t.model, why));
    }
    Err(exhausted(gw, ctx, now))
}

/// A candidate passed over without an attempt.
pub fn skip(ctx: &mut RequestCtx, provider_index: usize, provider: &str, model: &str, why: Skip) {
    ctx.walk
        .attempts
        .push(Attempt::skipped(provider_index, provider, model, why));
}

/// What a provider's response status means for this request: `None` serves the answer;
/// otherwise it is dropped, for another attempt or for the gateway's own error.
pub fn on_response(
    gw: &GatewayState,
    ctx: &mut RequestCtx,
    resp: &ResponseHeader,
) -> Option<Dropped> {
    let now = Instant::now();
    let status = resp.status.as_u16();
    let a = ctx.walk.attempts.last_mut()?;
    a.outcome = AttemptOutcome::Answered(status);
    a.elapsed = Some(a.started.elapsed());
    let up = &gw.upstreams[a.provider_index];
    let verdict = up
        .record_answer(&a.model, a.key_index, resp, &gw.config.resilience, now)
        .verdict;
    if verdict == Verdict::Final {
        // The breakers hear of a success when the body is complete (`on_complete`): a
        // provider that sends a 200 and then dies mid-body is failing, not succeeding.
        return None;
    }
    super::observe::failed(gw, a, Some(status), now);
    let provider = a.provider.clone();
    if verdict == Verdict::BadKey {
        // The same target again, with another key if it has one.
        ctx.walk.next = ctx.walk.next.saturating_sub(1);
    }
    if can_retry(gw, ctx, now) {
        Some(Dropped::Retry)
    } else if verdict == Verdict::BadKey {
        // Passing the provider's 401 on would tell the client its gateway key is bad.
        ctx.outcome.error = Some(GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("provider `{provider}` rejected the gateway's API key(s)"),
        ));
        Some(Dropped::Fail)
    } else {
        None
    }
}

/// Takes the target of the attempt in flight out of this request's candidates (it cannot work,
/// e.g. its certificate is not trusted), keeping the walk position on the next one.
pub fn exclude_current_target(ctx: &mut RequestCtx) {
    if ctx.walk.next == 0 || ctx.walk.next > ctx.plan.candidates.len() {
        return;
    }
    ctx.plan.candidates.remove(ctx.walk.next - 1);
    ctx.walk.next -= 1;
}

/// The answer arrived whole: the breakers of its provider and model hear of a success.
pub fn on_complete(gw: &GatewayState, ctx: &RequestCtx) {
    let now = Instant::now();
    let served = ctx.walk.served();
    // A passed-through 429/5xx is a failure already recorded, not a success.
    if let Some(a) = served.filter(|a| a.status().is_some_and(|s| s < 400)) {
        gw.upstreams[a.provider_index].record_success(&a.model, now);
    }
}

/// A connection, TLS, timeout or protocol failure before the response started.
pub fn on_transport_failure(gw: &GatewayState, ctx: &mut RequestCtx, class: &'static str) {
    let now = Instant::now();
    if let Some(a) = ctx.walk.attempts.last_mut() {
        a.outcome = AttemptOutcome::Transport(class);
        a.elapsed = Some(a.started.elapsed());
        gw.upstreams[a.provider_index].record_failure(&a.model, now);
        super::observe::failed(gw, a, None, now);
    }
}
