//! Anytime-valid statistics: confidence sequences for the mean of scores in [0, 1].
//!
//! **Method.** The predictable plug-in empirical-Bernstein confidence sequence (PrPl-EB) of
//! Waudby-Smith and Ramdas, "Estimating means of bounded random variables by betting" (JRSS-B,
//! 2023, Theorem 2), implemented here from the published formulas. For observations
//! `X_1, X_2, ...` in [0, 1] with a common mean `mu`, the intervals `C_t` satisfy
//! `P(exists t: mu not in C_t) <= alpha`: the guarantee holds simultaneously for every `t`, so
//! looking at the report after every request, and stopping whenever one likes, never raises
//! the error rate above `alpha`. Intervals are intersected as they come (still valid), so they
//! only shrink.
//!
//! With `mu_t = (1/2 + sum X_i) / (t + 1)` and `s2_t = (1/4 + sum (X_i - mu_i)^2) / (t + 1)`,
//! the bet on observation `t` is `lambda_t = min(sqrt(2 ln(2/alpha) / (s2_{t-1} t ln(1 + t))),
//! 1/2)`, and
//!
//! `C_t = sum(lambda_i X_i) / sum(lambda_i) +- (ln(2/alpha) + sum v_i psi(lambda_i)) / sum(lambda_i)`
//!
//! where `v_i = 4 (X_i - mu_{i-1})^2` and `psi(l) = (-ln(1 - l) - l) / 4`. The width adapts to
//! the observed variance: near-constant scores decide quickly, noisy ones take longer.
//!
//! **Decisions** ([`decide_scores`], [`decide_pairwise`]):
//! - score mode, `k` variants: each variant's sequence runs at `alpha / k` (a union bound), and
//!   a variant is the decided leader once its lower bound is above every other variant's upper
//!   bound. If the variants are identical, deciding requires some sequence to miss the common
//!   mean, which happens with probability at most `alpha` over the whole experiment.
//! - pairwise mode: one sequence on the first variant's win share (a win 1, a tie 1/2, a loss
//!   0); decided once it excludes 1/2. Identical variants (order randomised, so no position
//!   bias) have a win share of 1/2, so a false decision has probability at most `alpha`.

/// A running PrPl-EB confidence sequence for a mean in [0, 1].
#[derive(Clone, Debug)]
pub struct ConfidenceSequence {
    log_term: f64,
    n: u64,
    sum_x: f64,
    sum_sq: f64,
    sum_l: f64,
    sum_lx: f64,
    sum_vpsi: f64,
    lo: f64,
    hi: f64,
}

/// The largest bet: the paper's recommended truncation.
const MAX_BET: f64 = 0.5;

impl ConfidenceSequence {
    /// A sequence whose intervals all hold together with probability at least `1 - alpha`.
    pub fn new(alpha: f64) -> ConfidenceSequence {
        let alpha = alpha.clamp(1e-12, 0.999);
        ConfidenceSequence {
            log_term: (2.0 / alpha).ln(),
            n: 0,
            sum_x: 0.0,
            sum_sq: 0.0,
            sum_l: 0.0,
            sum_lx: 0.0,
            sum_vpsi: 0.0,
            lo: 0.0,
            hi: 1.0,
        }
    }

    /// Adds one observation (clamped into [0, 1]; NaN is ignored).
    pub fn push(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        let x = x.clamp(0.0, 1.0);
        let t = (self.n + 1) as f64;
        let mu_prev = (0.5 + self.sum_x) / t;
        let var_prev = (0.25 + self.sum_sq) / t;
        let lambda = (2.0 * self.log_term / (var_prev * t * (1.0 + t).ln()))
            .sqrt()
            .min(MAX_BET);
        let v = 4.0 * (x - mu_prev).powi(2);
        let psi = (-(1.0 - lambda).ln() - lambda) / 4.0;
        self.sum_l += lambda;
        self.sum_lx += lambda * x;
        self.sum_vpsi += v * psi;
        self.n += 1;
        self.sum_x += x;
        let mu_t = (0.5 + self.sum_x) / (t + 1.0);
        self.sum_sq += (x - mu_t).powi(2);
        let center = self.sum_lx / self.sum_l;
        let width = (self.log_term + self.sum_vpsi) / self.sum_l;
        self.lo = self.lo.max(center - width);
        self.hi = self.hi.min(center + width);
        if self.lo > self.hi {
            // Only possible on the alpha-probability event the guarantee excludes.
            let mid = (self.lo + self.hi) / 2.0;
            (self.lo, self.hi) = (mid, mid);
        }
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// The sample mean (`None` before any observation).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum_x / self.n as f64)
    }

    /// The current interval, within [0, 1].
    pub fn interval(&self) -> (f64, f64) {
        (self.lo.max(0.0), self.hi.min(1.0))
    }
}

/// What the statistics say about an experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Index of the leading variant (best mean so far), `None` before any data.
    pub leader: Option<usize>,
    /// Whether the leader is better than every other variant at the configured error rate.
    pub decided: bool,
    /// Per variant: mean and interval on the [0, 1] scale (`None` without data).
    pub intervals: Vec<Option<(f64, f64, f64)>>,
}

/// Score mode: `scores[v]` are variant `v`'s normalised scores in arrival order.
pub fn decide_scores(scores: &[Vec<f64>], alpha: f64) -> Decision {
    let k = scores.len().max(1) as f64;
    let intervals: Vec<Option<(f64, f64, f64)>> = scores
        .iter()
        .map(|xs| {
            let mut cs = ConfidenceSequence::new(alpha / k);
            xs.iter().for_each(|x| cs.push(*x));
            cs.mean().map(|m| {
                let (lo, hi) = cs.interval();
                (m, lo, hi)
            })
        })
        .collect();
    let leader = intervals
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|(m, _, _)| (i, m)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i);
    let decided = leader.is_some_and(|l| {
        let Some((_, lo, _)) = intervals[l] else {
            return false;
        };
        intervals
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != l)
            .all(|(_, v)| v.is_some_and(|(_, _, hi)| lo > hi))
    });
    Decision {
        leader,
        decided,
        intervals,
    }
}

/// Pairwise mode: `outcomes` are the first variant's results against the second in arrival
/// order (1 win, 0.5 tie, 0 loss).
pub fn decide_pairwise(outcomes: &[f64], alpha: f64) -> Decision {
    let mut cs = ConfidenceSequence::new(alpha);
    outcomes.iter().for_each(|x| cs.push(*x));
    let Some(m) = cs.mean() else {
        return Decision {
            leader: None,
            decided: false,
            intervals: vec![None, None],
        };
    };
    let (lo, hi) = cs.interval();
    let leader = Some(if m >= 0.5 { 0 } else { 1 });
    let decided = lo > 0.5 || hi < 0.5;
    Decision {
        leader,
        decided,
        intervals: vec![Some((m, lo, hi)), Some((1.0 - m, 1.0 - hi, 1.0 - lo))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const ALPHA: f64 = 0.05;

    /// A judge's 1..=10 score, normalised: quality `q` in [0, 1] shifts the distribution.
    fn score(rng: &mut StdRng, q: f64) -> f64 {
        let s = (1.0 + 9.0 * q + rng.gen_range(-3.0..3.0))
            .round()
            .clamp(1.0, 10.0);
        (s - 1.0) / 9.0
    }

    /// Runs a score-mode experiment, peeking after every pair of observations; returns the
    /// number of pairs after which it was first decided and for whom.
    fn run_scores(rng: &mut StdRng, qa: f64, qb: f64, max_pairs: usize) -> Option<(usize, usize)> {
        let (mut a, mut b) = (
            ConfidenceSequence::new(ALPHA / 2.0),
            ConfidenceSequence::new(ALPHA / 2.0),
        );
        for n in 1..=max_pairs {
            a.push(score(rng, qa));
            b.push(score(rng, qb));
            let ((alo, ahi), (blo, bhi)) = (a.interval(), b.interval());
            if alo > bhi {
                return Some((n, 0));
            }
            if blo > ahi {
                return Some((n, 1));
            }
        }
        None
    }

    #[test]
    fn identical_variants_rarely_get_a_winner_however_often_one_looks() {
        let mut rng = StdRng::seed_from_u64(15);
        let runs = 400;
        let false_wins = (0..runs)
            .filter(|_| run_scores(&mut rng, 0.5, 0.5, 2000).is_some())
            .count();
        // The guarantee is <= alpha (20 of 400); the union bound makes it conservative.
        assert!(
            (false_wins as f64) <= ALPHA * runs as f64,
            "{false_wins} of {runs} runs declared a winner between identical variants"
        );
    }

    #[test]
    fn a_better_variant_is_decided_within_a_bound() {
        let mut rng = StdRng::seed_from_u64(16);
        let runs = 200;
        let mut decided_right = 0;
        let mut worst = 0;
        for _ in 0..runs {
            if let Some((n, who)) = run_scores(&mut rng, 0.7, 0.45, 400) {
                if who == 0 {
                    decided_right += 1;
                    worst = worst.max(n);
                }
            }
        }
        assert!(
            decided_right as f64 >= 0.95 * runs as f64,
            "only {decided_right} of {runs} runs decided for the better variant within 400 pairs"
        );
        assert!(worst <= 400);
    }

    #[test]
    fn pairwise_identical_variants_keep_the_error_rate_and_a_real_edge_is_found() {
        let mut rng = StdRng::seed_from_u64(17);
        let runs = 400;
        let mut false_wins = 0;
        for _ in 0..runs {
            let mut cs = ConfidenceSequence::new(ALPHA);
            for _ in 0..2000 {
                let r: f64 = rng.gen();
                cs.push(if r < 0.4 {
                    1.0
                } else if r < 0.8 {
                    0.0
                } else {
                    0.5
                });
                let (lo, hi) = cs.interval();
                if lo > 0.5 || hi < 0.5 {
                    false_wins += 1;
                    break;
                }
            }
        }
        assert!((false_wins as f64) <= ALPHA * runs as f64, "{false_wins}");
        let mut found = 0;
        for _ in 0..200 {
            let outcomes: Vec<f64> = (0..600)
                .map(|_| if rng.gen::<f64>() < 0.7 { 0.0 } else { 1.0 })
                .collect();
            let d = decide_pairwise(&outcomes, ALPHA);
            if d.decided && d.leader == Some(1) {
                found += 1;
            }
        }
        assert!(found >= 190, "{found} of 200");
    }

    #[test]
    fn the_interval_covers_the_mean_and_shrinks() {
        let mut rng = StdRng::seed_from_u64(18);
        let mut cs = ConfidenceSequence::new(ALPHA);
        let mut last = 1.0;
        for _ in 0..500 {
            cs.push(rng.gen_range(0.2..0.6));
            let (lo, hi) = cs.interval();
            assert!(hi - lo <= last + 1e-12);
            last = hi - lo;
        }
        let (lo, hi) = cs.interval();
        assert!(lo < 0.4 && 0.4 < hi && hi - lo < 0.2, "{lo} {hi}");
        assert_eq!(cs.count(), 500);
    }

    #[test]
    fn decide_scores_names_the_leader_only_when_separated() {
        let d = decide_scores(&[vec![0.9; 40], vec![0.2; 40]], ALPHA);
        assert_eq!((d.leader, d.decided), (Some(0), true));
        let d = decide_scores(&[vec![0.9; 2], vec![0.2; 2]], ALPHA);
        assert_eq!((d.leader, d.decided), (Some(0), false));
        let d = decide_scores(&[vec![], vec![]], ALPHA);
        assert_eq!((d.leader, d.decided), (None, false));
        // A variant with no data cannot be beaten yet.
        let d = decide_scores(&[vec![0.9; 40], vec![]], ALPHA);
        assert!(!d.decided);
    }
}
