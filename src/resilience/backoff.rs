//! Exponential backoff with full jitter: attempt n waits a random time in
//! `[0, min(max, base * 2^n)]`, so clients that failed together do not retry together.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The ceiling for retry number `n` (0-based).
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A jittered delay for retry `n`; `unit` is a uniform random number in [0, 1).
    pub fn delay(&self, n: u32, unit: f64) -> Duration {
        self.ceiling(n).mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(2));
        assert_eq!(b.ceiling(1000), Duration::from_secs(2));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
        assert!(b.delay(3, 0.999) < Duration::from_millis(800));
    }
}
