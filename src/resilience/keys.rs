//! Health of each provider key: rests after a 429 or an exhausted rate-limit budget, retires
//! after an auth failure, and the choice of key for the next attempt.
//!
//! State is keyed by the provider name and the key's origin (`env:GROQ_API_KEY`), never by
//! the secret, so it survives a config reload and never holds a secret twice.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct State {
    /// Not to be used before this instant.
    resting_until: Option<Instant>,
    /// Why it rests (for the admin view): "rate_limited", "auth_failed", ...
    reason: Option<&'static str>,
    /// Last reported remaining budget (lower is closer to a 429).
    remaining: Option<u64>,
    /// Consecutive 429s, for exponential rest when no retry-after is given.
    strikes: u32,
}

#[derive(Debug, Default)]
pub struct KeyHealth {
    state: Mutex<State>,
}

/// A snapshot for the admin endpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    pub available: bool,
    pub resting_ms: u64,
    pub reason: Option<&'static str>,
    pub remaining: Option<u64>,
}

impl KeyHealth {
    pub fn available(&self, now: Instant) -> bool {
        self.state
            .lock()
            .map(|s| s.resting_until.is_none_or(|t| now >= t))
            .unwrap_or(true)
    }

    pub fn available_at(&self, now: Instant) -> Instant {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.resting_until)
            .map_or(now, |t| t.max(now))
    }

    pub fn remaining(&self) -> Option<u64> {
        self.state.lock().ok().and_then(|s| s.remaining)
    }

    /// Puts the key to rest until `now + rest` (never shortens an existing rest).
    pub fn rest(&self, now: Instant, rest: Duration, reason: &'static str) {
        if let Ok(mut s) = self.state.lock() {
            let until = now
                .checked_add(rest)
                .unwrap_or(now + crate::resilience::ratelimit::MAX_REST);
            if s.resting_until.is_none_or(|t| t < until) {
                s.resting_until = Some(until);
                s.reason = Some(reason);
            }
        }
    }

    /// A 429: rest for `retry_after`, else exponentially longer with each consecutive strike.
    pub fn rate_limited(
        &self,
        now: Instant,
        retry_after: Option<Duration>,
        default_rest: Duration,
    ) {
        let strikes = self
            .state
            .lock()
            .map(|mut s| {
                s.strikes = s.strikes.saturating_add(1);
                s.strikes
            })
            .unwrap_or(1);
        let rest = retry_after
            .unwrap_or_else(|| default_rest.saturating_mul(1u32 << (strikes - 1).min(6)));
        self.rest(now, rest, "rate_limited");
    }

    /// A response that reported the key's remaining budget (and when it resets).
    pub fn observe_budget(&self, now: Instant, remaining: Option<u64>, reset_in: Option<Duration>) {
        if let Ok(mut s) = self.state.lock() {
            if remaining.is_some() {
                s.remaining = remaining;
            }
        }
        if remaining == Some(0) {
            // Out of budget: rest until the reset instead of collecting a 429.
            self.rest(
                now,
                reset_in.unwrap_or(Duration::from_secs(1)),
                "budget_exhausted",
            );
        }
    }

    pub fn succeeded(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.strikes = 0;
        }
    }

    pub fn view(&self, now: Instant) -> KeyView {
        let s = self.state.lock();
        match s {
            Ok(s) => {
                let resting = s
                    .resting_until
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
                KeyView {
                    available: resting.is_zero(),
                    resting_ms: resting.as_millis() as u64,
                    reason: (!resting.is_zero()).then_some(s.reason).flatten(),
                    remaining: s.remaining,
                }
            }
            Err(_) => KeyView {
                available: true,
                resting_ms: 0,
                reason: None,
                remaining: None,
            },
        }
    }
}

/// Picks the key for the next attempt among `keys` (by index): the available ones in
/// round-robin order starting at `start`, preferring a key not known to be nearly out of
/// budget. `None` when every key rests.
pub fn choose(keys: &[&KeyHealth], start: usize, now: Instant) -> Option<usize> {
    let n = keys.len();
    let order = (0..n).map(|i| (start + i) % n);
    let available: Vec<usize> = order.filter(|&i| keys[i].available(now)).collect();
    // Low budget (under 5 left): use only if nothing healthier is free.
    available
        .iter()
        .copied()
        .find(|&i| keys[i].remaining().is_none_or(|r| r >= 5))
        .or_else(|| available.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_key_rests_and_others_carry_the_traffic() {
        let k: Vec<KeyHealth> = (0..3).map(|_| KeyHealth::default()).collect();
        let refs: Vec<&KeyHealth> = k.iter().collect();
        let now = Instant::now();
        assert_eq!(choose(&refs, 0, now), Some(0));
        k[0].rate_limited(now, Some(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(choose(&refs, 0, now), Some(1));
        assert_eq!(choose(&refs, 2, now), Some(2));
        k[1].rate_limited(now, None, Duration::from_secs(1));
        k[2].rest(now, Duration::from_secs(60), "auth_failed");
        assert_eq!(choose(&refs, 0, now), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            choose(&refs, 0, Instant::now()),
            Some(1),
            "1 s default rest is over"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            choose(&refs, 0, Instant::now()),
            Some(0),
            "retry-after of 2 s is over"
        );
        assert_eq!(k[2].view(Instant::now()).reason, Some("auth_failed"));
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_429s_without_retry_after_back_off_exponentially() {
        let k = KeyHealth::default();
        let t = Instant::now();
        k.rate_limited(t, None, Duration::from_secs(1));
        k.rate_limited(t, None, Duration::from_secs(1));
        k.rate_limited(t, None, Duration::from_secs(1));
        assert_eq!(k.available_at(t), t + Duration::from_secs(4));
        k.succeeded();
        k.rate_limited(t, None, Duration::from_secs(1));
        assert_eq!(
            k.available_at(t),
            t + Duration::from_secs(4),
            "a rest is never shortened"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_near_its_limit_is_avoided_before_it_429s() {
        let k: Vec<KeyHealth> = (0..2).map(|_| KeyHealth::default()).collect();
        let refs: Vec<&KeyHealth> = k.iter().collect();
        let now = Instant::now();
        k[0].observe_budget(now, Some(2), Some(Duration::from_secs(5)));
        assert_eq!(
            choose(&refs, 0, now),
            Some(1),
            "low budget: prefer the other key"
        );
        k[1].observe_budget(now, Some(0), Some(Duration::from_secs(5)));
        assert_eq!(
            choose(&refs, 0, now),
            Some(0),
            "exhausted key rests; the low one still serves"
        );
        assert!(!k[1].available(now));
    }
}
