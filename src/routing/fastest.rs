//! `strategy = "fastest"`: targets ordered by the predicted completion time of this request,
//! from live traffic.
//!
//! Per target ([`LatencyModels`], process-wide beside the target statistics):
//! - time to first token as a linear function of prompt tokens (a weighted least-squares fit,
//!   so a long prompt is predicted slower where the target is slower per prompt token);
//! - time per output token (after the first);
//! - mean output tokens, which caps the request's `max_tokens` as the expected output.
//!
//! Prediction: for a stream, the time to first token alone (what the client waits for); for a
//! whole answer, time to first token plus expected output times the time per token.
//!
//! Every figure decays per observation (factor [`DECAY`]): a sample ten observations old counts
//! about 3% as much as a fresh one, so a target's prediction follows a change of speed within a
//! few of its own requests. A target that is not chosen gets no requests, so it is explored:
//! with probability [`EXPLORE`] the least recently measured target (one with no data first)
//! goes first; [`EXPLORE_UNMEASURED`] while some target has no prediction yet, so a new or
//! cold target is measured within a few requests (at 10 % its two samples took 20 requests
//! on average, and more than 40 one time in twelve). A target that never answers well stays
//! unmeasured; its breaker, not this, takes it out of the candidates. Targets with fewer than [`MIN_SAMPLES`] samples have no
//! prediction and sort after those that do (in config order).
//!
//! Fed only when the config has a `fastest` route ([`super::Router::has_fastest`]); a decision
//! reads one map under a read lock and one small mutex per candidate.

use super::strategy::{Decision, Inputs, Strategy};
use crate::stats::TargetStats;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::time::Instant;

/// Weight kept by older samples at each new one.
pub const DECAY: f64 = 0.75;
/// Share of decisions that put the least recently measured target first.
pub const EXPLORE: f64 = 0.1;
/// Share of decisions that explore while a target other than the first has no prediction.
pub const EXPLORE_UNMEASURED: f64 = 0.25;
/// Samples (decayed weight) a target needs before it is predicted.
pub const MIN_SAMPLES: f64 = 1.5;
/// Output tokens expected when neither the request nor traffic says.
const DEFAULT_OUTPUT: f64 = 500.0;
/// Targets kept at most (new ones beyond are not modelled).
const CAPACITY: usize = 512;

/// One target's decayed fit.
#[derive(Debug, Clone, Default)]
pub struct Fit {
    w: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
    /// Milliseconds per output token after the first, and its weight.
    tpot: f64,
    tpot_w: f64,
    /// Mean output tokens, and its weight.
    out: f64,
    out_w: f64,
    last: Option<Instant>,
}

impl Fit {
    /// One served answer: its prompt tokens, time to first token, total time and output
    /// tokens.
    pub fn add(
        &mut self,
        prompt: f64,
        ttft_ms: f64,
        total_ms: f64,
        output: Option<f64>,
        at: Instant,
    ) {
        if !(prompt.is_finite() && ttft_ms.is_finite() && ttft_ms >= 0.0) {
            return;
        }
        for v in [
            &mut self.w,
            &mut self.sx,
            &mut self.sy,
            &mut self.sxx,
            &mut self.sxy,
        ] {
            *v *= DECAY;
        }
        self.w += 1.0;
        self.sx += prompt;
        self.sy += ttft_ms;
        self.sxx += prompt * prompt;
        self.sxy += prompt * ttft_ms;
        if let Some(out) = output.filter(|o| *o >= 1.0) {
            self.out = mean(self.out, &mut self.out_w, out);
            if out > 1.0 && total_ms > ttft_ms {
                let per = (total_ms - ttft_ms) / (out - 1.0);
                self.tpot = mean(self.tpot, &mut self.tpot_w, per);
            }
        }
        self.last = Some(at);
    }

    /// Predicted time to first token for `prompt` tokens (`None`: too few samples).
    pub fn ttft(&self, prompt: f64) -> Option<f64> {
        if self.w < MIN_SAMPLES {
            return None;
        }
        let mean_x = self.sx / self.w;
        let mean_y = self.sy / self.w;
        let var = self.sxx / self.w - mean_x * mean_x;
        let slope = if var > 1.0 {
            ((self.sxy / self.w - mean_x * mean_y) / var).max(0.0)
        } else {
            0.0
        };
        Some((mean_y + slope * (prompt - mean_x)).max(0.0))
    }

    /// Predicted completion time: `ttft` alone for a stream, else plus the expected output.
    pub fn predict(&self, prompt: f64, max_tokens: Option<u64>, stream: bool) -> Option<f64> {
        let ttft = self.ttft(prompt)?;
        if stream {
            return Some(ttft);
        }
        let observed = (self.out_w > 0.0).then_some(self.out);
        let expected = match (max_tokens.map(|m| m as f64), observed) {
            (Some(m), Some(o)) => m.min(o),
            (Some(m), None) => m.min(DEFAULT_OUTPUT),
            (None, Some(o)) => o,
            (None, None) => DEFAULT_OUTPUT,
        };
        Some(ttft + (expected - 1.0).max(0.0) * self.tpot)
    }
}

fn mean(cur: f64, w: &mut f64, x: f64) -> f64 {
    *w = *w * DECAY + 1.0;
    cur + (x - cur) / *w
}

/// One served answer, as the fits learn from it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub prompt_tokens: u64,
    pub ttft_ms: f64,
    pub total_ms: f64,
    pub output_tokens: Option<u64>,
    pub at: Instant,
}

/// Every target's fit, by provider then model.
#[derive(Default)]
pub struct LatencyModels {
    map: RwLock<HashMap<String, HashMap<String, Mutex<Fit>>>>,
}

impl LatencyModels {
    /// Records one served answer of `provider`/`model`.
    pub fn observe(&self, provider: &str, model: &str, s: Sample) {
        let add = |f: &Mutex<Fit>| {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let output = s.output_tokens.map(|o| o as f64);
            f.add(s.prompt_tokens as f64, s.ttft_ms, s.total_ms, output, s.at);
        };
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = map.get(provider).and_then(|m| m.get(model)) {
                add(f);
                return;
            }
            if map.values().map(HashMap::len).sum::<usize>() >= CAPACITY {
                return;
            }
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let f = map
            .entry(provider.to_owned())
            .or_default()
            .entry(model.to_owned())
            .or_default();
        add(f);
    }

    /// A copy of one target's fit.
    pub fn fit(&self, provider: &str, model: &str) -> Option<Fit> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let f = map.get(provider)?.get(model)?;
        let f = f.lock().unwrap_or_else(|e| e.into_inner());
        Some(f.clone())
    }
}

/// The strategy: reads the process-wide fits.
pub struct Fastest {
    pub stats: Arc<TargetStats>,
}

impl Strategy for Fastest {
    fn order(&self, mut inputs: Inputs<'_>) -> Decision {
        let features = inputs.features;
        let (prompt, max_tokens, stream) = (
            features.prompt().prompt_tokens as f64,
            features.max_tokens(),
            features.stream,
        );
        let candidates = std::mem::take(&mut inputs.candidates);
        let mut scored: Vec<(Option<f64>, Option<Instant>, usize, crate::config::Target)> =
            candidates
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let name = &inputs.providers[t.provider].name;
                    let fit = self.stats.latency.fit(name, &t.model);
                    let predicted = fit
                        .as_ref()
                        .and_then(|f| f.predict(prompt, max_tokens, stream));
                    (predicted, fit.and_then(|f| f.last), i, t)
                })
                .collect();
        scored.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.total_cmp(&y).then(a.2.cmp(&b.2)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.2.cmp(&b.2),
        });
        let mut explored = None;
        let unmeasured = scored.iter().skip(1).any(|s| s.0.is_none());
        let explore = if unmeasured {
            EXPLORE_UNMEASURED
        } else {
            EXPLORE
        };
        if scored.len() > 1 && rand::random::<f64>() < explore {
            // The least recently measured target other than the first (never measured first).
            let pick = (1..scored.len()).min_by_key(|&i| scored[i].1);
            if let Some(i) = pick {
                let t = scored.remove(i);
                explored = Some(format!(
                    "{}/{}",
                    inputs.providers[t.3.provider].name, t.3.model
                ));
                scored.insert(0, t);
            }
        }
        let scores: Vec<String> = scored
            .iter()
            .map(|(p, _, _, t)| {
                let name = &inputs.providers[t.provider].name;
                match p {
                    Some(ms) => format!("{name}/{}={:.0}ms", t.model, ms),
                    None => format!("{name}/{}=no-data", t.model),
                }
            })
            .collect();
        let mut reason = format!("fastest: {}", scores.join(" "));
        if let Some(e) = explored {
            reason.push_str(&format!(" (exploring {e})"));
        }
        Decision {
            reason,
            candidates: scored.into_iter().map(|(_, _, _, t)| t).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_follows_prompt_length_and_output_adds_per_token_time() {
        let now = Instant::now();
        let mut f = Fit::default();
        assert_eq!(f.ttft(100.0), None);
        for i in 0..20 {
            let p = (i % 5) as f64 * 1000.0;
            // 50 ms plus 0.1 ms per prompt token; 10 ms per output token after the first.
            f.add(p, 50.0 + 0.1 * p, 50.0 + 0.1 * p + 90.0, Some(10.0), now);
        }
        let at_2k = f.ttft(2000.0).unwrap();
        assert!((at_2k - 250.0).abs() < 1.0, "{at_2k}");
        let whole = f.predict(2000.0, Some(100), false).unwrap();
        // Expected output is max_tokens capped by the observed mean (10 tokens).
        assert!((whole - 340.0).abs() < 1.0, "{whole}");
        assert!((f.predict(2000.0, Some(100), true).unwrap() - at_2k).abs() < 1e-9);
    }

    #[test]
    fn a_change_of_speed_is_followed_within_a_few_samples() {
        let now = Instant::now();
        let mut f = Fit::default();
        for _ in 0..50 {
            f.add(100.0, 20.0, 40.0, Some(3.0), now);
        }
        for _ in 0..10 {
            f.add(100.0, 500.0, 520.0, Some(3.0), now);
        }
        let t = f.ttft(100.0).unwrap();
        assert!(t > 470.0, "{t}");
    }
}
