//! Circuit breakers: stop sending traffic to a provider (or one of its models) that keeps
//! failing, and let a few probes through after a pause to find out when it is back.
//!
//! Closed --(`failure_threshold` consecutive failures)--> Open --(`open_for`)--> HalfOpen
//! HalfOpen --(a probe succeeds)--> Closed;  HalfOpen --(a probe fails)--> Open again.
//! Time comes in as an argument (tokio's `Instant`, pausable in tests).

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_for: Duration,
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 half-open, 2 open: the value exported as a metric.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// Probes let through and when the last one started (a probe that never reports, e.g.
    /// its client went away, stops counting after `open_for`).
    HalfOpen {
        probes: u32,
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Guarded>,
}

/// The thresholds live beside the state, under one lock: a config reload changes them for a
/// breaker that keeps its state ([`Breaker::set_config`]).
#[derive(Debug)]
struct Guarded {
    cfg: BreakerConfig,
    /// The config generation `cfg` came from: an older one never replaces it.
    generation: u64,
    phase: Inner,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            inner: Mutex::new(Guarded {
                cfg,
                generation: 0,
                phase: Inner::Closed { failures: 0 },
            }),
        }
    }

    /// New thresholds from the next event on, if `generation` is not older than the config
    /// in force (a request still running on an old config must not put old thresholds
    /// back); the current state (an open circuit's end included) is kept.
    pub fn set_config(&self, cfg: BreakerConfig, generation: u64) {
        if let Ok(mut g) = self.inner.lock() {
            if generation >= g.generation {
                g.cfg = cfg;
                g.generation = generation;
            }
        }
    }

    /// Whether a request may go through now. In half-open, each `true` is a probe.
    pub fn allow(&self, now: Instant) -> bool {
        let Ok(mut g) = self.inner.lock() else {
            return true;
        };
        let cfg = g.cfg;
        match g.phase {
            Inner::Closed { .. } => true,
            Inner::Open { until } if now >= until => {
                g.phase = Inner::HalfOpen {
                    probes: 1,
                    since: now,
                };
                true
            }
            Inner::Open { .. } => false,
            Inner::HalfOpen { probes, since } => {
                if probes < cfg.half_open_probes || now >= since + cfg.open_for {
                    g.phase = Inner::HalfOpen {
                        probes: probes.saturating_add(1),
                        since: now,
                    };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether `allow` would say yes, without taking a probe.
    pub fn would_allow(&self, now: Instant) -> bool {
        self.inner
            .lock()
            .map(|g| match g.phase {
                Inner::Closed { .. } => true,
                Inner::Open { until } => now >= until,
                Inner::HalfOpen { probes, since } => {
                    probes < g.cfg.half_open_probes || now >= since + g.cfg.open_for
                }
            })
            .unwrap_or(true)
    }

    pub fn record(&self, success: bool, now: Instant) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        let cfg = g.cfg;
        g.phase = match (&g.phase, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) => {
                let failures = failures + 1;
                if failures >= cfg.failure_threshold {
                    Inner::Open {
                        until: now + cfg.open_for,
                    }
                } else {
                    Inner::Closed { failures }
                }
            }
            (Inner::HalfOpen { .. }, false) | (Inner::Open { .. }, false) => Inner::Open {
                until: now + cfg.open_for,
            },
        };
    }

    /// Closed with no failure counted: it holds nothing a fresh breaker would not, so it may
    /// be forgotten (see [`crate::resilience::Health::model_breaker`]).
    pub fn is_idle(&self) -> bool {
        self.inner
            .lock()
            .map(|g| matches!(g.phase, Inner::Closed { failures: 0 }))
            .unwrap_or(false)
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner.lock().map(|g| match g.phase {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }) {
            Ok(s) => s,
            Err(_) => BreakerState::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(10),
            half_open_probes: 1,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_recovers_through_a_probe() {
        let b = breaker();
        let t = Instant::now();
        b.record(false, t);
        b.record(false, t);
        b.record(true, t); // a success resets the count
        b.record(false, t);
        b.record(false, t);
        assert_eq!(b.state(t), BreakerState::Closed);
        b.record(false, t);
        assert_eq!(b.state(t), BreakerState::Open);
        assert!(!b.allow(t));
        tokio::time::advance(Duration::from_secs(10)).await;
        let t = Instant::now();
        assert_eq!(b.state(t), BreakerState::HalfOpen);
        assert!(b.allow(t), "one probe");
        assert!(!b.allow(t), "only one probe at a time");
        b.record(true, t);
        assert_eq!(b.state(t), BreakerState::Closed);
        assert!(b.allow(t));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, t);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        let t = Instant::now();
        assert!(b.allow(t));
        b.record(false, t);
        assert_eq!(b.state(t), BreakerState::Open);
        assert!(!b.would_allow(t + Duration::from_secs(9)));
        assert!(b.would_allow(t + Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn new_thresholds_apply_to_a_breaker_that_keeps_its_state() {
        let b = breaker(); // opens after 3 failures
        let t = Instant::now();
        b.record(false, t);
        b.record(false, t);
        b.set_config(
            BreakerConfig {
                failure_threshold: 10,
                open_for: Duration::from_secs(5),
                half_open_probes: 1,
            },
            1,
        );
        // A request still on the first config asks for its thresholds: ignored.
        b.set_config(
            BreakerConfig {
                failure_threshold: 1,
                ..BreakerConfig::default()
            },
            0,
        );
        b.record(false, t);
        assert_eq!(b.state(t), BreakerState::Closed, "3 of 10: still closed");
        for _ in 0..7 {
            b.record(false, t);
        }
        assert_eq!(b.state(t), BreakerState::Open);
        assert_eq!(
            b.state(t + Duration::from_secs(5)),
            BreakerState::HalfOpen,
            "the new open_for"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_does_not_wedge_the_breaker() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, t);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(b.allow(Instant::now()));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(b.allow(Instant::now()), "the lost probe expired");
    }
}
