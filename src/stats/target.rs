//! One target's statistics: decayed means and sketches under one forward-decay landmark.

use std::time::Duration;
use tokio::time::Instant;

use super::decay::{exponent, Mean, Sketch, RESCALE_EXPONENT};
use super::{Observation, Outcome, Summary, TargetSnapshot};

/// A figure kept as a decayed mean and a sketch for its quantiles.
#[derive(Clone, Debug)]
struct Series {
    mean: Mean,
    sketch: Sketch,
}

impl Series {
    fn new(lo: f64) -> Series {
        Series {
            mean: Mean::default(),
            sketch: Sketch::new(lo),
        }
    }

    fn add(&mut self, x: f64, w: f64) {
        if x.is_finite() && x >= 0.0 {
            self.mean.add(x, w);
            self.sketch.add(x, w);
        }
    }

    fn rescale(&mut self, factor: f64) {
        self.mean.rescale(factor);
        self.sketch.rescale(factor);
    }

    fn summary(&self) -> Summary {
        Summary {
            avg: self.mean.value(),
            p50: self.sketch.quantile(0.5),
            p90: self.sketch.quantile(0.9),
            p99: self.sketch.quantile(0.99),
        }
    }
}

/// Everything kept for one provider/model (about 3 KiB).
#[derive(Clone, Debug)]
pub(crate) struct TargetState {
    /// Forward-decay landmark: a sample at this instant weighs 1.
    landmark: Instant,
    pub(crate) last_seen: Instant,
    ttft_ms: Series,
    total_ms: Series,
    tokens_per_sec: Series,
    /// Output tokens of the attempts that served (and reported them).
    output_tokens: Mean,
    /// Decayed share of attempts that failed (429s included), and of 429s alone.
    errors: Mean,
    rate_limited: Mean,
    samples: u64,
    successes: u64,
    error_count: u64,
    rate_limited_count: u64,
}

impl TargetState {
    pub(crate) fn new(at: Instant) -> TargetState {
        TargetState {
            landmark: at,
            last_seen: at,
            // Durations from 0.1 ms, throughput from 0.01 tokens/s.
            ttft_ms: Series::new(0.1),
            total_ms: Series::new(0.1),
            tokens_per_sec: Series::new(0.01),
            output_tokens: Mean::default(),
            errors: Mean::default(),
            rate_limited: Mean::default(),
            samples: 0,
            successes: 0,
            error_count: 0,
            rate_limited_count: 0,
        }
    }

    pub(crate) fn record(&mut self, obs: &Observation, half_life: Duration) {
        let mut e = exponent(self.landmark, obs.at, half_life);
        if e > RESCALE_EXPONENT {
            // Move the landmark to now: every weight shrinks by the same factor.
            let factor = (-e).exp2();
            for s in [
                &mut self.ttft_ms,
                &mut self.total_ms,
                &mut self.tokens_per_sec,
            ] {
                s.rescale(factor);
            }
            self.errors.rescale(factor);
            self.output_tokens.rescale(factor);
            self.rate_limited.rescale(factor);
            self.landmark = obs.at;
            e = 0.0;
        }
        let w = e.exp2();
        self.samples += 1;
        self.last_seen = self.last_seen.max(obs.at);
        let (error, limited) = match obs.outcome {
            Outcome::Success => (0.0, 0.0),
            Outcome::Error => (1.0, 0.0),
            Outcome::RateLimited => (1.0, 1.0),
        };
        self.errors.add(error, w);
        self.rate_limited.add(limited, w);
        match obs.outcome {
            Outcome::Success => self.successes += 1,
            Outcome::Error => self.error_count += 1,
            Outcome::RateLimited => {
                self.error_count += 1;
                self.rate_limited_count += 1;
            }
        }
        if obs.outcome != Outcome::Success {
            return;
        }
        if let Some(t) = obs.ttft {
            self.ttft_ms.add(t.as_secs_f64() * 1000.0, w);
        }
        // An answer that reported no output tokens says nothing about their number.
        if let Some(n) = obs.output_tokens.filter(|&n| n > 0) {
            self.output_tokens.add(n as f64, w);
        }
        if let Some(total) = obs.total {
            self.total_ms.add(total.as_secs_f64() * 1000.0, w);
            let secs = total.as_secs_f64();
            if let Some(n) = obs.output_tokens.filter(|&n| n > 0 && secs > 0.0) {
                self.tokens_per_sec.add(n as f64 / secs, w);
            }
        }
    }

    /// The decayed mean of the output tokens of the answers that served.
    pub(crate) fn output_tokens(&self) -> Option<f64> {
        self.output_tokens.value()
    }

    pub(crate) fn snapshot(&self, now: Instant) -> TargetSnapshot {
        TargetSnapshot {
            samples: self.samples,
            successes: self.successes,
            errors: self.error_count,
            rate_limited: self.rate_limited_count,
            error_rate: self.errors.value().unwrap_or(0.0),
            rate_429: self.rate_limited.value().unwrap_or(0.0),
            ttft_ms: self.ttft_ms.summary(),
            total_ms: self.total_ms.summary(),
            tokens_per_sec: self.tokens_per_sec.summary(),
            output_tokens: self.output_tokens.value(),
            idle: now.saturating_duration_since(self.last_seen),
        }
    }
}
