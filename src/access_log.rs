//! One structured JSON line per request, on the `switchyard::access` log target. Never
//! bodies, never keys: the gateway key appears by name, provider keys by index. Each attempt's
//! `ms` is its own duration (to its answer or failure), the figure the ledger records.

use crate::summary::Summary;
use serde_json::json;

pub const TARGET: &str = "switchyard::access";

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The access line for a finished request.
pub fn line(s: &Summary<'_>) -> serde_json::Value {
    let attempts: Vec<_> = s
        .attempts
        .iter()
        .map(|a| {
            json!({
                "provider": a.provider,
                "model": a.model,
                "key": a.key_index,
                "status": a.status(),
                "error": a.error_class(),
                "ms": a.elapsed.map(ms),
            })
        })
        .collect();
    let a = s.account;
    json!({
        "request_id": s.id,
        "method": s.method,
        "path": s.path,
        "status": s.status,
        "gateway_key": s.key_name,
        "model": s.requested_model,
        "route": s.route,
        "route_reason": s.route_reason,
        "stream": s.stream,
        "request_bytes": s.request_bytes,
        "feature": s.feature,
        "usage": a.usage,
        "usage_estimated": a.estimated,
        "cost_usd": a.cost_usd.map(|c| c.to_string()),
        "cost_unknown": a.cost_unknown,
        "cache": s.cache.map(|c| c.as_str()),
        "saved_usd": a.saved_usd.map(|c| c.to_string()),
        "translated": s.translated_from.map(|d| d.name()),
        "ttft_ms": s.ttft.map(ms),
        "attempts": attempts,
        "ttfb_ms": s.ttfb.map(ms),
        "total_ms": ms(s.total),
        "error": s.error,
    })
}

pub fn write(s: &Summary<'_>) {
    if !log::log_enabled!(target: TARGET, log::Level::Info) {
        return;
    }
    log::info!(target: TARGET, "{}", line(s));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Account, Attempt, Outcome};
    use std::time::{Duration, Instant, SystemTime};

    #[test]
    fn attempt_ms_is_the_attempts_own_duration() {
        // An attempt that took 40 ms, logged long after it started: the line shows 40 ms.
        let started = Instant::now() - Duration::from_secs(5);
        let attempts = [Attempt {
            provider_index: 0,
            provider: "groq".into(),
            model: "llama".into(),
            key_index: Some(0),
            started,
            elapsed: Some(Duration::from_millis(40)),
            outcome: Outcome::Answered(503),
        }];
        let account = Account::default();
        let s = Summary {
            legs: &[],
            id: "req_1",
            method: "POST",
            path: "/v1/chat/completions",
            endpoint: None,
            route: Some("chat"),
            route_reason: Some("fallback"),
            key_name: Some("k"),
            feature: None,
            requested_model: Some("chat"),
            stream: false,
            request_bytes: 10,
            attempts: &attempts,
            served: None,
            status: 503,
            cache: None,
            translated_from: None,
            account: &account,
            reserved_usd: None,
            error: None,
            error_kind: None,
            client_gone: false,
            started_at: SystemTime::now(),
            ttfb: None,
            ttft: None,
            total: Duration::from_secs(5),
        };
        let l = line(&s);
        assert_eq!(l["attempts"][0]["ms"], 40.0);
        assert_eq!(l["attempts"][0]["error"], "server_error");
        assert_eq!(l["route_reason"], "fallback");
    }
}
