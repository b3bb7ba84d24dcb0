//! One structured JSON line per request, on the `switchyard::access` log target. Never
//! bodies, never keys: the gateway key appears by name, provider keys by index.

use super::accounting::Account;
use super::ctx::RequestCtx;
use pingora_error::Error;
use pingora_proxy::Session;
use serde_json::json;

pub const TARGET: &str = "switchyard::access";

pub fn write(session: &Session, e: Option<&Error>, ctx: &RequestCtx, account: &Account) {
    if !log::log_enabled!(target: TARGET, log::Level::Info) {
        return;
    }
    let req = session.req_header();
    let attempts: Vec<_> = ctx
        .attempts
        .iter()
        .map(|a| {
            json!({
                "provider": a.provider,
                "model": a.model,
                "key": a.key_index,
                "status": a.status,
                "error": a.error,
                "ms": a.started.elapsed().as_secs_f64() * 1000.0,
            })
        })
        .collect();
    let line = json!({
        "request_id": ctx.id,
        "method": req.method.as_str(),
        "path": req.uri.path(),
        "status": ctx.status,
        "gateway_key": ctx.key_name,
        "model": ctx.model,
        "route": ctx.route,
        "stream": ctx.stream,
        "request_bytes": ctx.body.len(),
        "feature": ctx.feature,
        "usage": account.usage,
        "usage_estimated": account.estimated,
        "cost_usd": account.cost_usd.map(|c| c.to_string()),
        "cost_unknown": account.cost_unknown,
        "cache": ctx.cache_outcome(),
        "saved_usd": account.saved_usd.map(|c| c.to_string()),
        "translated": ctx.translating().then(|| ctx.upstream_dialect().name()),
        "ttft_ms": ctx.first_token.map(|t| (t - ctx.started).as_secs_f64() * 1000.0),
        "attempts": attempts,
        "ttfb_ms": ctx.first_byte.map(|t| (t - ctx.started).as_secs_f64() * 1000.0),
        "total_ms": ctx.started.elapsed().as_secs_f64() * 1000.0,
        "error": ctx.error.as_ref().map(|e| e.message.clone()).or_else(|| e.map(|e| e.etype().as_str().to_owned())),
    });
    log::info!(target: TARGET, "{line}");
}
