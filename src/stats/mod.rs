//! Live target statistics: how each provider/model has been answering lately, for routing
//! strategies, Prometheus (`switchyard_target_*`) and `GET /admin/targets`.
//!
//! Per target, from every finished attempt ([`Observation`]):
//! - time to first token and total time of the attempts that served (milliseconds), and their
//!   output tokens per second (output tokens over the attempt's total time);
//! - the output tokens of the attempts that served and reported them (a decayed mean, which
//!   `strategy = "cheapest"` caps a request's `max_tokens` with);
//! - the error rate (any failed attempt: a retryable status, a connection or protocol failure,
//!   a stream cut short; 429s included) and the 429 rate.
//!
//! Each figure is an exponentially decaying average (half-life [`DEFAULT_HALF_LIFE`]: a sample
//! one half-life old counts half as much as a fresh one), and the three timings also have a
//! decayed quantile sketch for p50, p90 and p99 ([`decay`]: 128 logarithmic buckets, about 9%
//! relative error, O(1) to add; written here rather than taken from a crate because the
//! decay had to be the same as the averages' and the whole thing is 100 lines). Counts
//! (`samples`, `errors`, ...) are plain totals.
//!
//! Bounded: at most `capacity` targets (default [`DEFAULT_CAPACITY`]); a new one beyond that
//! evicts the least recently seen, so model names made up by clients cannot grow it (or the
//! metric label sets built from it) without bound.
//!
//! Cheap on the request path: an observation takes a read lock on the map (a write lock only
//! the first time a target is seen) and one per-target mutex for the few float operations;
//! no lock is held across an await. [`TargetStats`] is created once per process (held by
//! `proxy::Shared` beside `Health`) and survives config reloads.

mod decay;
mod target;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use target::TargetState;

/// Targets kept by default.
pub const DEFAULT_CAPACITY: usize = 512;
/// How fast old samples fade by default.
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(60);

/// What became of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It served the client with a success.
    Success,
    /// It failed: a retryable status (not 429), a connection, TLS, timeout or protocol error,
    /// or a stream cut short.
    Error,
    /// The provider answered 429.
    RateLimited,
}

/// One finished attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// When it finished (weights decay from here).
    pub at: Instant,
    pub outcome: Outcome,
    /// From the attempt's start to its first body byte (successes only).
    pub ttft: Option<Duration>,
    /// From the attempt's start to the end of its answer (successes only).
    pub total: Option<Duration>,
    /// Output tokens generated (successes only; none or 0: no throughput sample).
    pub output_tokens: Option<u64>,
}

impl Observation {
    /// An attempt that served the client.
    pub fn success(
        at: Instant,
        ttft: Option<Duration>,
        total: Duration,
        output_tokens: Option<u64>,
    ) -> Observation {
        Observation {
            at,
            outcome: Outcome::Success,
            ttft,
            total: Some(total),
            output_tokens,
        }
    }

    /// A failed attempt; `status` 429 counts as rate limited.
    pub fn failure(at: Instant, status: Option<u16>) -> Observation {
        Observation {
            at,
            outcome: if status == Some(429) {
                Outcome::RateLimited
            } else {
                Outcome::Error
            },
            ttft: None,
            total: None,
            output_tokens: None,
        }
    }
}

/// A figure's decayed average and quantiles; `None` until it has a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// One target's statistics as they stand.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetSnapshot {
    /// Attempts observed (every outcome).
    pub samples: u64,
    pub successes: u64,
    /// Failed attempts, 429s included.
    pub errors: u64,
    /// Attempts answered with 429.
    pub rate_limited: u64,
    /// Decayed share of attempts that failed (0..=1), 429s included.
    pub error_rate: f64,
    /// Decayed share of attempts answered with 429 (0..=1).
    pub rate_429: f64,
    /// Time to first token, milliseconds.
    pub ttft_ms: Summary,
    /// Total time of an attempt that served, milliseconds.
    pub total_ms: Summary,
    /// Output tokens per second of an attempt that served.
    pub tokens_per_sec: Summary,
    /// Decayed mean of the output tokens of an attempt that served (`None` before one
    /// reported them).
    pub output_tokens: Option<f64>,
    /// Since the last observation (`idle_secs` in JSON).
    #[serde(rename = "idle_secs", serialize_with = "as_secs")]
    pub idle: Duration,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Targets by provider, then model (looked up by `&str` without building a key).
#[derive(Default)]
struct Map {
    by_provider: HashMap<String, HashMap<String, Box<Mutex<TargetState>>>>,
    len: usize,
}

/// Process-wide live statistics per provider/model, bounded in size.
pub struct TargetStats {
    map: RwLock<Map>,
    capacity: usize,
    half_life: Duration,
    /// Per-target latency fits for `strategy = "fastest"` (fed only when a route uses it).
    pub latency: crate::routing::fastest::LatencyModels,
}

impl Default for TargetStats {
    fn default() -> Self {
        TargetStats::new(DEFAULT_CAPACITY, DEFAULT_HALF_LIFE)
    }
}

impl TargetStats {
    /// Keeps at most `capacity` targets (at least 1); samples fade with `half_life`.
    pub fn new(capacity: usize, half_life: Duration) -> TargetStats {
        TargetStats {
            map: RwLock::new(Map::default()),
            capacity: capacity.max(1),
            half_life,
            latency: Default::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn half_life(&self) -> Duration {
        self.half_life
    }

    /// Targets currently kept.
    pub fn len(&self) -> usize {
        self.read().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one finished attempt of `provider`/`model`.
    pub fn observe(&self, provider: &str, model: &str, obs: Observation) {
        {
            let map = self.read();
            if let Some(t) = map.by_provider.get(provider).and_then(|m| m.get(model)) {
                lock(t).record(&obs, self.half_life);
                return;
            }
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let known = map
            .by_provider
            .get(provider)
            .is_some_and(|m| m.contains_key(model));
        if !known {
            if map.len >= self.capacity {
                evict_least_recent(&mut map);
            }
            map.by_provider
                .entry(provider.to_owned())
                .or_default()
                .insert(
                    model.to_owned(),
                    Box::new(Mutex::new(TargetState::new(obs.at))),
                );
            map.len += 1;
        }
        if let Some(t) = map.by_provider.get(provider).and_then(|m| m.get(model)) {
            lock(t).record(&obs, self.half_life);
        }
    }

    /// One target's statistics now, if it has been observed (and not evicted).
    pub fn snapshot(&self, provider: &str, model: &str) -> Option<TargetSnapshot> {
        self.snapshot_at(provider, model, Instant::now())
    }

    /// [`snapshot`](Self::snapshot) with `idle` measured to `now`.
    pub fn snapshot_at(&self, provider: &str, model: &str, now: Instant) -> Option<TargetSnapshot> {
        let map = self.read();
        let t = map.by_provider.get(provider)?.get(model)?;
        let snap = lock(t).snapshot(now);
        Some(snap)
    }

    /// The decayed mean output tokens of `provider`/`model`'s answers (`None`: none yet). One
    /// map lookup and one float division; no snapshot is built.
    pub fn output_tokens_mean(&self, provider: &str, model: &str) -> Option<f64> {
        let map = self.read();
        let t = map.by_provider.get(provider)?.get(model)?;
        let mean = lock(t).output_tokens();
        mean
    }

    /// Every target's statistics, sorted by provider then model.
    pub fn all(&self) -> Vec<(String, String, TargetSnapshot)> {
        let now = Instant::now();
        let map = self.read();
        let mut out: Vec<(String, String, TargetSnapshot)> = map
            .by_provider
            .iter()
            .flat_map(|(p, models)| {
                models
                    .iter()
                    .map(move |(m, t)| (p.clone(), m.clone(), lock(t).snapshot(now)))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }
}

fn lock(t: &Mutex<TargetState>) -> std::sync::MutexGuard<'_, TargetState> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the target seen longest ago (a scan: only when a new target arrives at capacity).
fn evict_least_recent(map: &mut Map) {
    let oldest = map
        .by_provider
        .iter()
        .flat_map(|(p, models)| models.iter().map(move |(m, t)| (lock(t).last_seen, p, m)))
        .min_by_key(|(seen, _, _)| *seen)
        .map(|(_, p, m)| (p.clone(), m.clone()));
    let Some((provider, model)) = oldest else {
        return;
    };
    if let Some(models) = map.by_provider.get_mut(&provider) {
        if models.remove(&model).is_some() {
            map.len -= 1;
        }
        if models.is_empty() {
            map.by_provider.remove(&provider);
        }
    }
}
