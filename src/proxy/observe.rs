//! Feeds live target statistics ([`crate::stats`]) from the proxy: each failed attempt when it
//! fails ([`failed`], from the attempt walk), the attempt that served when the request is logged
//! ([`served`]). A few float operations under a per-target mutex; nothing awaits.

use super::ctx::{Attempt, RequestCtx};
use super::GatewayState;
use crate::stats::Observation;
use crate::summary::Account;
use tokio::time::Instant;

/// A failed attempt: a retryable status (`status`), or a connection, protocol or mid-stream
/// failure (`None`).
pub fn failed(gw: &GatewayState, a: &Attempt, status: Option<u16>, now: Instant) {
    gw.stats
        .observe(&a.provider, &a.model, Observation::failure(now, status));
}

/// The attempt that served, at the end of the request: its time to first token and total time
/// (from the attempt's own start) and its output tokens. Not observed: cache hits, failures
/// (observed when they failed), client errors (4xx: not the target's doing) and requests the
/// client left (their timings are cut short).
pub fn served(ctx: &RequestCtx, account: &Account, client_gone: bool) {
    if ctx.response.is_hit() || client_gone {
        return;
    }
    let Some(a) = ctx.walk.served() else {
        return;
    };
    if a.status().is_none_or(|s| s >= 400) || ctx.outcome.error.is_some() {
        return;
    }
    let ttft = ctx
        .outcome
        .first_token
        .map(|t| t.saturating_duration_since(a.started));
    let total = a.started.elapsed();
    let obs = Observation::success(Instant::now(), ttft, total, Some(account.usage.output));
    if let (true, Some(ttft)) = (ctx.state.router.has_fastest(), ttft) {
        let sample = crate::routing::fastest::Sample {
            prompt_tokens: account.usage.input,
            ttft_ms: ttft.as_secs_f64() * 1000.0,
            total_ms: total.as_secs_f64() * 1000.0,
            output_tokens: Some(account.usage.output),
            at: Instant::now(),
        };
        ctx.state
            .stats
            .latency
            .observe(&a.provider, &a.model, sample);
    }
    ctx.state.stats.observe(&a.provider, &a.model, obs);
}
