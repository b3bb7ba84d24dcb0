//! A sliding one-minute window of counts in one-second buckets: what `rpm` and `tpm` count.
//! An amount counted at second `s` leaves the window at second `s + 60`.

use std::collections::VecDeque;

/// Seconds in the window.
pub const WINDOW_SECS: i64 = 60;

#[derive(Debug, Default)]
pub struct Window {
    /// (second, amount), oldest first.
    buckets: VecDeque<(i64, u64)>,
    total: u64,
}

impl Window {
    /// Drops the buckets that left the window at `now_s`.
    pub fn expire(&mut self, now_s: i64) {
        while let Some(&(s, n)) = self.buckets.front() {
            if s > now_s - WINDOW_SECS {
                break;
            }
            self.total -= n;
            self.buckets.pop_front();
        }
    }

    /// The amount in the window (call [`Self::expire`] first).
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn add(&mut self, now_s: i64, n: u64) {
        match self.buckets.back_mut() {
            Some((s, m)) if *s == now_s => *m += n,
            _ => self.buckets.push_back((now_s, n)),
        }
        self.total += n;
    }

    /// Corrects the amount counted at second `at_s` by `delta` (a settled request's true
    /// tokens less its reservation). When that bucket has left the window, a positive
    /// correction is counted now and a negative one has nothing left to undo.
    pub fn adjust(&mut self, at_s: i64, now_s: i64, delta: i64) {
        self.expire(now_s);
        if delta >= 0 {
            let n = delta.unsigned_abs();
            match self.buckets.iter_mut().find(|(s, _)| *s == at_s) {
                Some((_, m)) => {
                    *m += n;
                    self.total += n;
                }
                None => self.add(now_s, n),
            }
        } else if let Some((_, m)) = self.buckets.iter_mut().find(|(s, _)| *s == at_s) {
            let n = delta.unsigned_abs().min(*m);
            *m -= n;
            self.total -= n;
        }
    }

    /// Milliseconds from `now_ms` until `need` more fits under `limit` (0: it fits now).
    pub fn wait_ms(&self, need: u64, limit: u64, now_ms: i64) -> i64 {
        if self.total + need <= limit {
            return 0;
        }
        let mut left = self.total;
        for &(s, n) in &self.buckets {
            left -= n;
            if left + need <= limit {
                return ((s + WINDOW_SECS) * 1000 - now_ms).max(1);
            }
        }
        // `need` alone is over the limit: it never fits.
        WINDOW_SECS * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leave_after_a_minute() {
        let mut w = Window::default();
        w.add(100, 3);
        w.add(130, 2);
        w.expire(159);
        assert_eq!(w.total(), 5);
        assert_eq!(w.wait_ms(1, 5, 159_500), 500);
        assert_eq!(w.wait_ms(4, 5, 159_500), 30_500);
        w.expire(160);
        assert_eq!(w.total(), 2);
        w.adjust(130, 160, -1);
        assert_eq!(w.total(), 1);
        w.adjust(100, 160, 4); // gone: counted now
        assert_eq!(w.total(), 5);
        w.expire(220);
        assert_eq!(w.total(), 0);
    }
}
