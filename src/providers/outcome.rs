//! What one attempt's outcome teaches the provider's health: key rests and budgets, and the
//! provider's and model's circuit breakers. Proxied attempts and the gateway's own calls report
//! through these, so both keep the same books.

use super::Upstream;
use crate::resilience::classify::{classify_status, Verdict};
use crate::resilience::{ratelimit, Policy};
use pingora_http::ResponseHeader;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What a response header meant for the provider's health, and for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    pub verdict: Verdict,
    /// How long the provider asked to wait (`retry-after`, `retry-after-ms`), if it did.
    pub retry_after: Option<Duration>,
}

impl Upstream {
    /// A response header from this provider, for `model`, with the key at `key_index`: its
    /// rate-limit budget is noted; a 429 rests the key (for `retry-after`, else the policy's
    /// doubling rest); a 401 retires it for `auth_failure_rest`; 408/5xx are breaker failures.
    /// A success reaches the breakers only when its body is complete ([`Self::record_success`]):
    /// a 200 that dies mid-body is a failure.
    pub fn record_answer(
        &self,
        model: &str,
        key_index: Option<usize>,
        resp: &ResponseHeader,
        policy: &Policy,
        now: Instant,
    ) -> Answered {
        let status = resp.status.as_u16();
        let key = key_index.and_then(|i| self.key_health.get(i));
        let limits = ratelimit::parse(&resp.headers, SystemTime::now());
        if let Some(k) = key {
            k.observe_budget(now, limits.remaining, limits.reset_in);
        }
        let verdict = classify_status(status);
        match verdict {
            Verdict::Final => {
                if let Some(k) = key {
                    k.succeeded();
                }
            }
            Verdict::Retry if status == 429 => {
                if let Some(k) = key {
                    k.rate_limited(now, limits.retry_after, policy.rate_limit_rest);
                }
            }
            Verdict::Retry => self.record_failure(model, now),
            Verdict::BadKey => {
                if let Some(k) = key {
                    k.rest(now, policy.auth_failure_rest, "auth_failed");
                }
                log::warn!(
                    "provider `{}` rejected key #{} ({}) with {status}; it rests for {:?}",
                    self.name(),
                    key_index.unwrap_or(0),
                    key_index
                        .and_then(|i| self.cfg.keys.get(i))
                        .map_or("-", |s| s.origin()),
                    policy.auth_failure_rest
                );
            }
        }
        Answered {
            verdict,
            retry_after: limits.retry_after,
        }
    }

    /// An answer of `model` arrived whole: the provider's and the model's breakers hear of a
    /// success.
    pub fn record_success(&self, model: &str, now: Instant) {
        self.breaker.record(true, now);
        self.model_breaker(model).record(true, now);
    }

    /// A failure of this provider at `model` (connect, TLS, timeout, a broken body, a 5xx): the
    /// provider's and the model's breakers hear of it.
    pub fn record_failure(&self, model: &str, now: Instant) {
        self.breaker.record(false, now);
        self.model_breaker(model).record(false, now);
    }
}
