//! `strategy = "weighted"`: the first choice is drawn at random in proportion to the
//! targets' weights; the rest follow in a weighted draw without replacement, so fallback
//! still has every target. A weight of 0 puts its target last (only a fallback).

use super::strategy::{Decision, Inputs, Strategy};

pub struct Weighted {
    /// One per route target, in config order.
    pub weights: Vec<u32>,
}

impl Weighted {
    /// The order for a draw: `unit` gives one uniform number in [0, 1) per pick.
    fn draw(&self, n: usize, mut unit: impl FnMut() -> f64) -> Vec<usize> {
        let mut left: Vec<usize> = (0..n).collect();
        let mut out = Vec::with_capacity(n);
        while !left.is_empty() {
            let total: u64 = left
                .iter()
                .map(|&i| u64::from(self.weights.get(i).copied().unwrap_or(0)))
                .sum();
            if total == 0 {
                out.append(&mut left);
                break;
            }
            let mut at = (unit() * total as f64) as u64;
            let mut pick = left.len() - 1;
            for (k, &i) in left.iter().enumerate() {
                let w = u64::from(self.weights.get(i).copied().unwrap_or(0));
                if at < w {
                    pick = k;
                    break;
                }
                at -= w;
            }
            out.push(left.remove(pick));
        }
        out
    }
}

impl Strategy for Weighted {
    fn order(&self, inputs: Inputs<'_>) -> Decision {
        // The weights are by route target; filtering may have removed some targets.
        let route_targets = inputs.route.map(|r| r.targets.as_slice()).unwrap_or(&[]);
        let weights: Vec<u32> = inputs
            .candidates
            .iter()
            .map(|t| {
                route_targets
                    .iter()
                    .position(|r| r == t)
                    .and_then(|i| self.weights.get(i).copied())
                    .unwrap_or(0)
            })
            .collect();
        let here = Weighted { weights };
        let order = here.draw(inputs.candidates.len(), rand::random::<f64>);
        let mut slots: Vec<Option<crate::config::Target>> =
            inputs.candidates.into_iter().map(Some).collect();
        let candidates: Vec<_> = order.iter().filter_map(|&i| slots[i].take()).collect();
        let reason = match candidates.first() {
            Some(t) => format!(
                "weighted: drew {}/{} (weights {:?})",
                inputs.providers[t.provider].name, t.model, here.weights
            ),
            None => "weighted".to_owned(),
        };
        Decision { candidates, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_split_holds_over_ten_thousand_draws() {
        let w = Weighted {
            weights: vec![3, 1, 0],
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut first = [0u32; 3];
        for _ in 0..10_000 {
            let order = w.draw(3, || rng.gen::<f64>());
            assert_eq!(order.len(), 3, "every target stays for fallback");
            assert_eq!(order[2], 2, "a zero weight is only ever last");
            first[order[0]] += 1;
        }
        // 75% / 25% within 2 points.
        assert!((7300..=7700).contains(&first[0]), "{first:?}");
        assert!((2300..=2700).contains(&first[1]), "{first:?}");
        assert_eq!(first[2], 0);
    }
}
