//! `strategy = "cheapest"`: targets ordered by the expected cost of this request.
//!
//! Expected cost = estimated prompt tokens at the target's input price, plus expected output
//! tokens at its output price, through the same exact pricing (tiers included) that bills the
//! call. Expected output is the request's `max_tokens` capped by the target's observed mean
//! output (the live statistics' decayed mean of its answers' output tokens, [`TargetStats`]):
//! a request that allows 100,000 tokens but whose answers run to 200 is priced at 200. With no
//! `max_tokens`, the observed mean; with neither, [`DEFAULT_EXPECTED_OUTPUT`]. An unpriced
//! target (allowed under `unpriced = "record_unknown"`) sorts last. Ties keep config order.
//!
//! [`TargetStats`]: crate::stats::TargetStats

use super::strategy::{Decision, Inputs, Strategy};
use crate::stats::TargetStats;
use crate::usage::Usage;
use rust_decimal::Decimal;
use std::sync::Arc;

/// Output tokens expected when neither the request nor live traffic says.
pub const DEFAULT_EXPECTED_OUTPUT: u64 = 500;

pub struct Cheapest {
    /// The process-wide live statistics (their output-token means).
    pub stats: Arc<TargetStats>,
}

/// The output tokens to price a request at: `max_tokens` capped by the observed mean, either
/// alone, or [`DEFAULT_EXPECTED_OUTPUT`] before any data.
pub fn expected_output(max_tokens: Option<u64>, observed_mean: Option<f64>) -> u64 {
    // A float mean of token counts, rounded up (a mean of 0.3 tokens still prices one).
    let observed = observed_mean
        .filter(|m| m.is_finite() && *m >= 0.0)
        .map(|m| m.ceil().min(u64::MAX as f64) as u64);
    match (max_tokens, observed) {
        (Some(m), Some(o)) => m.min(o),
        (Some(m), None) => m,
        (None, Some(o)) => o,
        (None, None) => DEFAULT_EXPECTED_OUTPUT,
    }
}

impl Strategy for Cheapest {
    fn order(&self, mut inputs: Inputs<'_>) -> Decision {
        let (prompt, max_tokens) = (
            inputs.features.prompt().prompt_tokens,
            inputs.features.max_tokens(),
        );
        let candidates = std::mem::take(&mut inputs.candidates);
        let mut scored: Vec<(Option<Decimal>, u64, usize, crate::config::Target)> = candidates
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let p = &inputs.providers[t.provider];
                let mean = self.stats.output_tokens_mean(&p.name, &t.model);
                let output = expected_output(max_tokens, mean);
                let usage = Usage {
                    input: prompt,
                    output,
                    ..Usage::default()
                };
                let cost = inputs.pricing.cost(p, &t.model, &usage).map(|c| c.total);
                (cost, output, i, t)
            })
            .collect();
        // Priced first, cheapest first; config order breaks ties.
        scored.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y).then(a.2.cmp(&b.2)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.2.cmp(&b.2),
        });
        let scores: Vec<String> = scored
            .iter()
            .map(|(c, out, _, t)| {
                let name = &inputs.providers[t.provider].name;
                match c {
                    // The output tokens priced: what the observed mean made of max_tokens.
                    Some(c) => format!(
                        "{name}/{}=${},out={out}",
                        t.model,
                        c.round_dp(8).normalize()
                    ),
                    None => format!("{name}/{}=unpriced", t.model),
                }
            })
            .collect();
        Decision {
            reason: format!("cheapest: {}", scores.join(" ")),
            candidates: scored.into_iter().map(|(_, _, _, t)| t).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_output_is_max_tokens_capped_by_the_observed_mean() {
        assert_eq!(expected_output(Some(100_000), Some(180.2)), 181);
        assert_eq!(expected_output(Some(50), Some(180.0)), 50);
        assert_eq!(expected_output(None, Some(42.0)), 42);
        assert_eq!(expected_output(Some(7), None), 7);
        assert_eq!(expected_output(None, None), DEFAULT_EXPECTED_OUTPUT);
        assert_eq!(
            expected_output(None, Some(f64::NAN)),
            DEFAULT_EXPECTED_OUTPUT
        );
    }

    /// Gemini 2.5 Flash has the cheaper input ($0.30 against $0.59 a million), Llama 3.3 70B
    /// on Groq the cheaper output ($0.79 against $2.50).
    #[test]
    fn the_observed_mean_output_changes_the_order_of_a_huge_max_tokens() {
        use crate::routing::{Request, Router};
        let cfg = crate::config::Config::parse(
            "t.toml",
            r#"
[[providers]]
name = "gemini"
kind = "gemini-native"
api_keys = ["k"]
[[providers]]
name = "groq"
kind = "groq"
api_keys = ["k"]
[[gateway_keys]]
name = "k"
key = "sk-sy-cheapest-test"
[[routes]]
name = "cheap"
strategy = "cheapest"
targets = ["gemini/gemini-2.5-flash", "groq/llama-3.3-70b-versatile"]
"#,
            &|_| None,
        )
        .unwrap();
        let keys = crate::auth::KeyRing::new(&cfg.gateway_keys);
        let key = keys.authenticate("sk-sy-cheapest-test").unwrap();
        let stats = Arc::new(TargetStats::default());
        let router = Router::with_stats(&cfg, stats.clone());
        let headers = http::HeaderMap::new();
        // About 1000 prompt tokens, and up to 30000 output tokens allowed.
        let body = serde_json::json!({
            "model": "cheap", "max_tokens": 30000,
            "messages": [{"role": "user", "content": "abcd".repeat(1000)}],
        })
        .to_string();
        let fields = crate::dialect::BodyFields::of(body.as_bytes());
        let plan = || {
            let p = router
                .plan(
                    &cfg,
                    &Request {
                        key: &key,
                        endpoint: crate::dialect::Endpoint::ChatCompletions,
                        dialect: crate::dialect::Dialect::OpenAi,
                        model: "cheap",
                        stream: false,
                        body: body.as_bytes(),
                        fields: &fields,
                        headers: &headers,
                    },
                )
                .unwrap();
            let first = p.candidates[0].model.clone();
            (first, p.reason)
        };
        // No data: priced at max_tokens, where the cheaper output wins.
        let (first, reason) = plan();
        assert_eq!(first, "llama-3.3-70b-versatile", "{reason}");
        assert!(reason.contains("out=30000"), "{reason}");
        // Answers run to about 20 tokens: priced at that, the cheaper input wins.
        let now = tokio::time::Instant::now();
        for (p, m) in [
            ("gemini", "gemini-2.5-flash"),
            ("groq", "llama-3.3-70b-versatile"),
        ] {
            for n in [18, 22] {
                let obs = crate::stats::Observation::success(
                    now,
                    None,
                    std::time::Duration::from_millis(200),
                    Some(n),
                );
                stats.observe(p, m, obs);
            }
        }
        let (first, reason) = plan();
        assert_eq!(first, "gemini-2.5-flash", "{reason}");
        assert!(
            reason.starts_with("cheapest: gemini/gemini-2.5-flash=$0.00035,out=20 "),
            "{reason}"
        );
    }
}
