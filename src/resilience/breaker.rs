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
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            cfg,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// Whether a request may go through now. In half-open, each `true` is a probe.
    pub fn allow(&self, now: Instant) -> bool {
        let Ok(mut s) = self.inner.lock() else {
            return true;
        };
        match *s {
            Inner::Closed { .. } => true,
            Inner::Open { until } if now >= until => {
                *s = Inner::HalfOpen {
                    probes: 1,
                    since: now,
                };
                true
            }
            Inner::Open { .. } => false,
            Inner::HalfOpen { probes, since } => {
                if probes < self.cfg.half_open_probes || now >= since + self.cfg.open_for {
                    *s = Inner::HalfOpen {
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
            .map(|s| match *s {
                Inner::Closed { .. } => true,
                Inner::Open { until } => now >= until,
                Inner::HalfOpen { probes, since } => {
                    probes < self.cfg.half_open_probes || now >= since + self.cfg.open_for
                }
            })
            .unwrap_or(true)
    }

    pub fn record(&self, success: bool, now: Instant) {
        let Ok(mut s) = self.inner.lock() else {
            return;
        };
        *s = match (&*s, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) => {
                let failures = failures + 1;
                if failures >= self.cfg.failure_threshold {
                    Inner::Open {
                        until: now + self.cfg.open_for,
                    }
                } else {
                    Inner::Closed { failures }
                }
            }
            (Inner::HalfOpen { .. }, false) | (Inner::Open { .. }, false) => Inner::Open {
                until: now + self.cfg.open_for,
            },
        };
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner.lock().map(|s| match *s {
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
