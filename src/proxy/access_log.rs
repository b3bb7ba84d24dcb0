//! One structured JSON line per request, on the `switchyard::access` log target. Never
//! bodies, never keys: the gateway key appears by name, provider keys by index.

use super::accounting::{attempt_ms, Account};
use super::ctx::{Attempt, RequestCtx};
use pingora_error::Error;
use pingora_proxy::Session;
use serde_json::json;

pub const TARGET: &str = "switchyard::access";

pub fn write(session: &Session, e: Option<&Error>, ctx: &RequestCtx, account: &Account) {
    if !log::log_enabled!(target: TARGET, log::Level::Info) {
        return;
    }
    let req = session.req_header();
    let attempts: Vec<_> = ctx.attempts.iter().map(attempt_json).collect();
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

/// One attempt in the access line: its own duration, as in the ledger row (not the time from
/// its start to when the line is written).
fn attempt_json(a: &Attempt) -> serde_json::Value {
    json!({
        "provider": a.provider,
        "model": a.model,
        "key": a.key_index,
        "status": a.status,
        "error": a.error,
        "ms": attempt_ms(a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn an_attempt_shows_its_own_duration_not_the_time_since_it_started() {
        // A first attempt that failed after 20 ms, in a request logged 3 s after it started.
        let started = Instant::now()
            .checked_sub(Duration::from_secs(3))
            .unwrap_or_else(Instant::now);
        let a = Attempt {
            provider_index: 0,
            provider: "p".into(),
            model: "m".into(),
            key_index: Some(0),
            started,
            elapsed: Some(Duration::from_millis(20)),
            status: Some(503),
            error: Some("server_error".into()),
            skipped: false,
        };
        let v = attempt_json(&a);
        assert_eq!(v["ms"], json!(20.0), "{v}");
        assert_eq!(v["ms"].as_f64(), attempt_ms(&a), "the ledger's figure");
        // One still in flight has no duration yet.
        let pending = Attempt { elapsed: None, ..a };
        assert!(attempt_json(&pending)["ms"].is_null());
    }
}
