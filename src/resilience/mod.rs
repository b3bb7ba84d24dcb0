//! Surviving provider failures: which answers to retry ([`classify`]), how long to wait
//! ([`backoff`]), which keys to rest ([`keys`], fed by [`ratelimit`]) and which targets to stop
//! calling for a while ([`breaker`]).
//!
//! The state lives in [`Health`], created once per process and kept across config reloads:
//! breakers are keyed by provider name and `provider/model`, key health by provider name and
//! key origin (`env:VAR`), so a reload that keeps a key keeps its rest, and one that drops a
//! key forgets it.
//!
//! Model breakers are bounded: clients may name any `provider/<model>` (with
//! `pricing.unpriced = "record_unknown"`), so at most [`MAX_MODEL_BREAKERS`] are kept per
//! provider. Past that, idle ones (closed, no failure counted: nothing a fresh breaker would not
//! know) that no running config holds are forgotten; if none can be, the model gets a breaker
//! that is not kept (the provider-wide breaker still counts its failures).

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

/// Most model breakers kept per provider (see the module docs).
pub const MAX_MODEL_BREAKERS: usize = 1024;

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

    /// The breaker of `model` at `provider` (named `provider/model`), created closed on first
    /// use, as [`Health::breaker`] does, but bounded to [`MAX_MODEL_BREAKERS`] per provider.
    pub fn model_breaker(
        &self,
        provider: &str,
        model: &str,
        cfg: BreakerConfig,
        generation: u64,
    ) -> Arc<Breaker> {
        let name = format!("{provider}/{model}");
        let mut map = match self.breakers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(b) = map.get(&name) {
            b.set_config(cfg, generation);
            return b.clone();
        }
        let prefix = &name[..=provider.len()];
        let of_provider = || {
            map.range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
        };
        if of_provider().count() >= MAX_MODEL_BREAKERS {
            // Held only here (no upstream caches it) and idle: forgetting it loses nothing.
            let forget: Vec<String> = of_provider()
                .filter(|(_, b)| Arc::strong_count(b) == 1 && b.is_idle())
                .map(|(k, _)| k.clone())
                .collect();
            for k in &forget {
                map.remove(k);
            }
            if forget.is_empty() {
                let b = Arc::new(Breaker::new(cfg));
                b.set_config(cfg, generation);
                return b;
            }
        }
        let b = Arc::new(Breaker::new(cfg));
        b.set_config(cfg, generation);
        map.insert(name, b.clone());
        b
    }

    /// How many model breakers are kept for `provider`.
    pub fn model_breaker_count(&self, provider: &str) -> usize {
        let prefix = format!("{provider}/");
        self.breakers
            .lock()
            .map(|m| m.keys().filter(|k| k.starts_with(&prefix)).count())
            .unwrap_or(0)
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
    async fn model_breakers_stay_bounded_and_keep_the_ones_with_state() {
        let health = Health::new();
        let cfg = BreakerConfig {
            failure_threshold: 2,
            ..BreakerConfig::default()
        };
        let now = Instant::now();
        // One model with a failure counted: it must survive the flood.
        health.model_breaker("p", "real", cfg, 1).record(false, now);
        for i in 0..10_000 {
            let b = health.model_breaker("p", &format!("junk-{i}"), cfg, 1);
            assert!(b.allow(now));
        }
        assert!(health.model_breaker_count("p") <= MAX_MODEL_BREAKERS);
        assert!(health.breaker_states(now).len() <= MAX_MODEL_BREAKERS + 1);
        let real = health.model_breaker("p", "real", cfg, 1);
        real.record(false, now);
        assert_eq!(real.state(now), breaker::BreakerState::Open, "2 of 2");
        // Another provider's breakers are not touched by p's bound.
        health.model_breaker("q", "m", cfg, 1).record(false, now);
        assert_eq!(health.model_breaker_count("q"), 1);

        // Every kept breaker has state: a new name gets a working breaker that is not kept.
        let full = Health::new();
        let held: Vec<_> = (0..MAX_MODEL_BREAKERS)
            .map(|i| full.model_breaker("p", &format!("m{i}"), cfg, 1))
            .collect();
        let extra = full.model_breaker("p", "extra", cfg, 1);
        extra.record(false, now);
        extra.record(false, now);
        assert_eq!(extra.state(now), breaker::BreakerState::Open);
        assert_eq!(full.model_breaker_count("p"), MAX_MODEL_BREAKERS);
        drop(held);
    }

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
