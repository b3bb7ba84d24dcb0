//! Time-decayed accumulators: a mean ([`Mean`]) and a log-bucketed quantile sketch
//! ([`Sketch`]), both weighted by *forward decay*.
//!
//! A sample observed at time `t` gets the weight `2^((t - landmark) / half_life)`, so a sample
//! one half-life older than another counts half as much. Every figure read out (a mean, a
//! rate, a quantile) is a ratio of weights, so it does not change while nothing is observed,
//! and adding a sample costs O(1): nothing old is touched. Weights grow with time; before they
//! could lose precision the owner moves its landmark to the present and scales every
//! accumulator down by the same factor ([`Mean::rescale`], [`Sketch::rescale`]), which leaves
//! every ratio unchanged.

use std::time::Duration;
use tokio::time::Instant;

/// Weights are rescaled before they pass `2^RESCALE_EXPONENT` (f64 holds `2^1023`; staying
/// far below keeps sums of old and new weights exact enough).
pub(crate) const RESCALE_EXPONENT: f64 = 64.0;

/// The forward-decay weight of a sample at `at`, for a landmark and a half-life: positive,
/// `1` at the landmark, `2^k` `k` half-lives after it (and `2^-k` before it).
pub(crate) fn exponent(landmark: Instant, at: Instant, half_life: Duration) -> f64 {
    let h = half_life.as_secs_f64().max(1e-3);
    if at >= landmark {
        (at - landmark).as_secs_f64() / h
    } else {
        -(landmark - at).as_secs_f64() / h
    }
}

/// A decayed mean: `sum(w * x) / sum(w)`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mean {
    sum: f64,
    weight: f64,
}

impl Mean {
    pub(crate) fn add(&mut self, x: f64, w: f64) {
        self.sum += w * x;
        self.weight += w;
    }

    pub(crate) fn rescale(&mut self, factor: f64) {
        self.sum *= factor;
        self.weight *= factor;
    }

    /// `None` before the first sample (or once every sample has decayed to nothing).
    pub(crate) fn value(&self) -> Option<f64> {
        (self.weight > 0.0 && self.weight.is_finite()).then(|| self.sum / self.weight)
    }
}

/// Buckets per sketch.
const BUCKETS: usize = 128;
/// Buckets per doubling: bucket bounds grow by `2^(1/4)` (about 19%), so a bucket's geometric
/// middle is within `2^(1/8) - 1` (about 9%) of every value in it.
const PER_DOUBLING: f64 = 4.0;

/// A quantile sketch over positive values: decayed weights in logarithmic buckets. Bucket 0
/// holds `[0, lo)`, bucket `i >= 1` holds `[lo * 2^((i-1)/4), lo * 2^(i/4))`; the last one also
/// takes everything above (128 buckets span `lo` to `lo * 2^31.75`, e.g. 0.1 ms to 100 hours).
/// Fixed size (128 floats), O(1) to add, O(128) to read.
#[derive(Clone, Debug)]
pub(crate) struct Sketch {
    lo: f64,
    buckets: [f64; BUCKETS],
}

impl Sketch {
    /// A sketch whose finest bucket starts at `lo` (> 0).
    pub(crate) fn new(lo: f64) -> Sketch {
        Sketch {
            lo: if lo > 0.0 { lo } else { 1.0 },
            buckets: [0.0; BUCKETS],
        }
    }

    fn index(&self, x: f64) -> usize {
        if x.is_nan() || x < self.lo {
            return 0;
        }
        let i = 1.0 + ((x / self.lo).log2() * PER_DOUBLING).floor();
        // A float-to-int cast saturates; infinity lands in the last bucket.
        (i as usize).min(BUCKETS - 1)
    }

    /// The bounds of bucket `i`.
    fn bounds(&self, i: usize) -> (f64, f64) {
        if i == 0 {
            return (0.0, self.lo);
        }
        let lower = self.lo * ((i - 1) as f64 / PER_DOUBLING).exp2();
        (lower, lower * (1.0 / PER_DOUBLING).exp2())
    }

    pub(crate) fn add(&mut self, x: f64, w: f64) {
        let i = self.index(x);
        self.buckets[i] += w;
    }

    pub(crate) fn rescale(&mut self, factor: f64) {
        for b in &mut self.buckets {
            *b *= factor;
        }
    }

    /// The `q` quantile (`0 <= q <= 1`): the geometric middle of the bucket it falls in (half
    /// of `lo` for the first), so within about 9% of the true value; `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let total: f64 = self.buckets.iter().sum();
        if total <= 0.0 || !total.is_finite() {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * total;
        let last = self.buckets.iter().rposition(|&w| w > 0.0)?;
        let mut below = 0.0;
        let i = self
            .buckets
            .iter()
            .position(|&w| {
                below += w;
                w > 0.0 && below >= target
            })
            .unwrap_or(last);
        let (lower, upper) = self.bounds(i);
        Some(if i == 0 {
            upper / 2.0
        } else {
            (lower * upper).sqrt()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_spread_are_within_a_bucket() {
        let mut s = Sketch::new(1.0);
        for x in 1..=1000 {
            s.add(f64::from(x), 1.0);
        }
        for (q, exact) in [(0.5, 500.0), (0.9, 900.0), (0.1, 100.0)] {
            let got = s.quantile(q).expect("quantile");
            assert!((got - exact).abs() / exact < 0.1, "q{q}: {got} vs {exact}");
        }
    }

    #[test]
    fn a_constant_is_its_own_quantile_within_the_bucket_error() {
        for value in [0.25, 1.0, 3.0, 250.0, 60_000.0] {
            let mut s = Sketch::new(1.0);
            for _ in 0..10 {
                s.add(value, 1.0);
            }
            for q in [0.0, 0.5, 0.9, 1.0] {
                let got = s.quantile(q).expect("quantile");
                let err = (got - value).abs() / value;
                let bound = if value < 1.0 { 1.0 } else { 0.095 };
                assert!(err <= bound, "value {value} q{q}: {got}");
            }
        }
    }

    #[test]
    fn weights_decide_and_extremes_land_in_the_end_buckets() {
        let mut s = Sketch::new(1.0);
        s.add(10.0, 1.0);
        s.add(1000.0, 9.0);
        let p50 = s.quantile(0.5).expect("p50");
        assert!((p50 / 1000.0 - 1.0).abs() < 0.2, "{p50}");
        let mut s = Sketch::new(1.0);
        s.add(f64::INFINITY, 1.0);
        s.add(f64::NAN, 1.0);
        s.add(-5.0, 1.0);
        assert!(s.quantile(1.0).is_some_and(f64::is_finite));
        assert!(Sketch::new(1.0).quantile(0.5).is_none());
    }

    #[test]
    fn rescaling_keeps_means_and_quantiles() {
        let mut s = Sketch::new(1.0);
        let mut m = Mean::default();
        for x in [5.0, 50.0, 500.0] {
            s.add(x, 3.0);
            m.add(x, 3.0);
        }
        let (p50, mean) = (s.quantile(0.5), m.value());
        s.rescale(2f64.powi(-60));
        m.rescale(2f64.powi(-60));
        assert_eq!(s.quantile(0.5).map(|v| v as f32), p50.map(|v| v as f32));
        assert_eq!(m.value().map(|v| v as f32), mean.map(|v| v as f32));
        assert_eq!(Mean::default().value(), None);
    }
}
