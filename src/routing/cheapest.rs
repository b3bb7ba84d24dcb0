//! `strategy = "cheapest"`: targets ordered by the expected cost of this request.
//!
//! Expected cost = estimated prompt tokens at the target's input price, plus expected output
//! tokens at its output price, through the same exact pricing (tiers included) that bills the
//! call. Expected output is the request's `max_tokens`, or [`DEFAULT_EXPECTED_OUTPUT`] when it
//! sets none. (Capping it by the route's observed mean output needs live target statistics,
//! which are not on main yet.) An unpriced target
//! (allowed under `unpriced = "record_unknown"`) sorts last. Ties keep config order.

use super::strategy::{Decision, Inputs, Strategy};
use crate::usage::Usage;
use rust_decimal::Decimal;

/// Output tokens expected when neither the request nor live traffic says.
pub const DEFAULT_EXPECTED_OUTPUT: u64 = 500;

pub struct Cheapest;

impl Strategy for Cheapest {
    fn order(&self, mut inputs: Inputs<'_>) -> Decision {
        let (prompt, max_tokens) = (
            inputs.features.prompt().prompt_tokens,
            inputs.features.max_tokens(),
        );
        let candidates = std::mem::take(&mut inputs.candidates);
        let mut scored: Vec<(Option<Decimal>, usize, crate::config::Target)> = candidates
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let p = &inputs.providers[t.provider];
                let output = max_tokens.unwrap_or(DEFAULT_EXPECTED_OUTPUT);
                let usage = Usage {
                    input: prompt,
                    output,
                    ..Usage::default()
                };
                let cost = inputs.pricing.cost(p, &t.model, &usage).map(|c| c.total);
                (cost, i, t)
            })
            .collect();
        // Priced first, cheapest first; config order breaks ties.
        scored.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        let scores: Vec<String> = scored
            .iter()
            .map(|(c, _, t)| {
                let name = &inputs.providers[t.provider].name;
                match c {
                    Some(c) => format!("{name}/{}=${}", t.model, c.round_dp(8).normalize()),
                    None => format!("{name}/{}=unpriced", t.model),
                }
            })
            .collect();
        Decision {
            reason: format!("cheapest: {}", scores.join(" ")),
            candidates: scored.into_iter().map(|(_, _, t)| t).collect(),
        }
    }
}
