//! Surviving provider failures: which answers to retry ([`classify`]), how long to wait
//! ([`backoff`]), which keys to rest ([`keys`], fed by [`ratelimit`]) and which targets to stop
//! calling for a while ([`breaker`]).
//!
//! The state lives in [`Health`], created once per process and kept across config reloads:
//! breakers are keyed by provider name and `provider/model`, key health by provider name and
//! key origin (`env:VAR`), so a reload that keeps a key keeps its rest, and one that drops a
//! key forgets it.

pub mod backoff;
pub mod breaker;
pub mod classify;
pub mod keys;
pub mod ratelimit;

use breaker::{Breaker, BreakerConfig};
use keys::KeyHealth;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Retry, backoff, deadline and breaker settings (config `[resilience]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Upstream attempts per request, across the whole fallback chain and its retries.
    pub max_attempts: u32,
    pub backoff: backoff::Backoff,
    /// The longest a request may take until its response starts; a client may ask for less
    /// (`x-switchyard-timeout-ms`).
    pub deadline: Duration,
    /// How long a key rests after a 429 that gave no `retry-after` (doubling on repeats).
    pub rate_limit_rest: Duration,
    /// How long a key rests after the provider rejected it (401/403).
    pub auth_failure_rest: Duration,
    pub breaker: BreakerConfig,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 4,
            backoff: backoff::Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(2),
            },
            deadline: Duration::from_secs(300),
            rate_limit_rest: Duration::from_secs(1),
            auth_failure_rest: Duration::from_secs(600),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Process-wide health of providers, models and keys.
#[derive(Default)]
pub struct Health {
    breakers: Mutex<BTreeMap<String, Arc<Breaker>>>,
    keys: Mutex<BTreeMap<(String, String), Arc<KeyHealth>>>,
    /// Config generations handed out ([`Health::next_generation`]).
    generations: std::sync::atomic::AtomicU64,
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    /// A number for a newly loaded config, larger than every earlier one.
    pub fn next_generation(&self) -> u64 {
        self.generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1)
    }

    /// The breaker for `name` (a provider, or `provider/model`), created closed on first use.
    /// An existing one keeps its state and takes `cfg` (the thresholds after a reload) unless
    /// `generation` is older than the config it has.
    pub fn breaker(&self, name: &str, cfg: BreakerConfig, generation: u64) -> Arc<Breaker> {
        let mut map = match self.breakers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(b) = map.get(name) {
            b.set_config(cfg, generation);
            return b.clone();
        }
        let b = Arc::new(Breaker::new(cfg));
        b.set_config(cfg, generation);
        map.insert(name.to_owned(), b.clone());
        b
    }

    pub fn key(&self, provider: &str, origin: &str) -> Arc<KeyHealth> {
        let mut map = match self.keys.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry((provider.to_owned(), origin.to_owned()))
            .or_default()
            .clone()
    }

    /// Forgets keys no longer configured (after a reload).
    pub fn retain_keys(&self, keep: &[(String, String)]) {
        if let Ok(mut map) = self.keys.lock() {
            map.retain(|k, _| keep.contains(k));
        }
    }

    /// Breaker states by name, for metrics.
    pub fn breaker_states(&self, now: Instant) -> Vec<(String, breaker::BreakerState)> {
        self.breakers
            .lock()
            .map(|m| m.iter().map(|(k, b)| (k.clone(), b.state(now))).collect())
            .unwrap_or_default()
    }

    /// The admin view: every breaker and every key (by origin, never the secret).
    pub fn snapshot(&self, now: Instant) -> Value {
        let breakers: BTreeMap<String, &str> = self
            .breaker_states(now)
            .into_iter()
            .map(|(k, s)| (k, s.name()))
            .collect();
        let keys: Vec<Value> = self
            .keys
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((provider, origin), h)| {
                        json!({"provider": provider, "key": origin, "state": h.view(now)})
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({"breakers": breakers, "keys": keys})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_reload_gives_an_existing_breaker_the_new_thresholds_and_keeps_its_state() {
        let health = Health::new();
        let old = BreakerConfig {
            failure_threshold: 2,
            ..BreakerConfig::default()
        };
        let now = Instant::now();
        let b = health.breaker("openai", old, health.next_generation());
        b.record(false, now);
        // The reload: the same name asked for with new thresholds.
        let new = BreakerConfig {
            failure_threshold: 4,
            ..BreakerConfig::default()
        };
        let reloaded = health.next_generation();
        let again = health.breaker("openai", new, reloaded);
        assert!(
            Arc::ptr_eq(&b, &again),
            "the breaker (and its count) is kept"
        );
        // A request still running on the old config asks for the breaker: no change.
        health.breaker("openai", old, reloaded - 1);
        again.record(false, now);
        assert_eq!(again.state(now), breaker::BreakerState::Closed, "2 of 4");
        again.record(false, now);
        again.record(false, now);
        assert_eq!(again.state(now), breaker::BreakerState::Open, "4 of 4");
        assert_eq!(
            again.state(now + Duration::from_secs(30)),
            breaker::BreakerState::HalfOpen
        );
    }
}
