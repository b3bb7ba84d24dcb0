//! Racing and hedging, the policy half: how many legs start at once, when a hedge may start,
//! the per-route hedge budget, and when a streamed leg has produced its first content token.
//! The legs themselves run in the proxy's race layer (`proxy::layers::race`), through the
//! outbound client.
//!
//! - `race = { width = N }`: N legs start at once; the first acceptable answer wins.
//! - `hedge = { after, max_extra }`: one leg starts; the next starts when no first token came
//!   within `after` (fixed, or the first target's live time-to-first-token quantile), and only
//!   while hedged requests stay within `max_extra` of the route's requests.
//!
//! In both, a failed leg does not win: when every running leg has failed, the next candidate
//! starts (the fallback chain), within the route's attempt budget.

use crate::config::{HedgeAfter, HedgeConfig, StrategyConfig};
use crate::dialect::Dialect;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a race or hedge route runs its legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Race { width: usize },
    Hedge(HedgeConfig),
}

impl Mode {
    /// The mode of a route's strategy (`None`: the route is walked one target at a time).
    pub fn of(s: &StrategyConfig) -> Option<Mode> {
        match s {
            StrategyConfig::Race { width } => Some(Mode::Race { width: *width }),
            StrategyConfig::Hedge(h) => Some(Mode::Hedge(*h)),
            _ => None,
        }
    }

    /// Legs started at once.
    pub fn initial(&self) -> usize {
        match self {
            Mode::Race { width } => (*width).max(1),
            Mode::Hedge(_) => 1,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Mode::Race { .. } => "race",
            Mode::Hedge(_) => "hedge",
        }
    }
}

/// The delay before a hedge, from the first target's live time to first token when `after`
/// names a quantile (`p50`, `p90`, `p99`, as the live statistics keep them). `None`: no data yet, so
/// no hedge (a hedge on a guess would double the traffic of a target nobody has measured).
pub fn hedge_delay(
    after: HedgeAfter,
    snapshot: Option<&crate::stats::TargetSnapshot>,
) -> Option<Duration> {
    match after {
        HedgeAfter::Fixed(d) => Some(d),
        HedgeAfter::Quantile(q) => {
            let s = snapshot?;
            let ms = match q {
                0..=50 => s.ttft_ms.p50,
                51..=90 => s.ttft_ms.p90,
                _ => s.ttft_ms.p99,
            }?;
            (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
        }
    }
}

/// Holds one route's hedges to `max_extra` percent of its requests.
#[derive(Debug, Default)]
pub struct HedgeBudget {
    requests: AtomicU64,
    hedges: AtomicU64,
}

impl HedgeBudget {
    /// Counts one request of the route.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one hedge if that keeps hedges within `percent` of the requests counted.
    pub fn try_hedge(&self, percent: u32) -> bool {
        let requests = self.requests.load(Ordering::Relaxed);
        let allowed = requests.saturating_mul(u64::from(percent)) / 100;
        self.hedges
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                (h < allowed).then_some(h + 1)
            })
            .is_ok()
    }

    /// (requests, hedges) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.hedges.load(Ordering::Relaxed),
        )
    }
}

/// Whether a piece of a provider's stream carries content: text, a tool call or reasoning.
/// Role-only and metadata events (an OpenAI first chunk with an empty content, Anthropic's
/// `message_start`) do not count.
pub fn has_content(dialect: Dialect, chunk: &[u8]) -> bool {
    match dialect {
        Dialect::OpenAi => {
            find_nonempty(chunk, b"\"content\":\"")
                || contains(chunk, b"\"tool_calls\":[")
                || find_nonempty(chunk, b"\"reasoning_content\":\"")
                || find_nonempty(chunk, b"\"delta\":\"")
        }
        Dialect::Anthropic => contains(chunk, b"content_block_delta"),
        Dialect::Gemini => find_nonempty(chunk, b"\"text\":\"") || contains(chunk, b"functionCall"),
        // Text, argument and reasoning deltas all carry `delta`; a function call item is
        // content before its arguments stream.
        Dialect::Responses => {
            find_nonempty(chunk, b"\"delta\":\"") || contains(chunk, b"\"type\":\"function_call\"")
        }
    }
}

/// `key` followed by at least one character before its closing quote.
fn find_nonempty(hay: &[u8], key: &[u8]) -> bool {
    let mut rest = hay;
    while let Some(at) = find(rest, key) {
        let after = &rest[at + key.len()..];
        if after.first().is_some_and(|&b| b != b'"') {
            return true;
        }
        rest = after;
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_text_tools_or_reasoning_not_a_role_chunk() {
        let role = br#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
        assert!(!has_content(Dialect::OpenAi, role));
        let text = br#"data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
        assert!(has_content(Dialect::OpenAi, text));
        let start = br#"event: message_start
data: {"type":"message_start","message":{"content":[]}}"#;
        assert!(!has_content(Dialect::Anthropic, start));
        assert!(has_content(
            Dialect::Anthropic,
            br#"event: content_block_delta
data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#
        ));
        assert!(has_content(
            Dialect::Gemini,
            br#"{"candidates":[{"content":{"parts":[{"text":"x"}]}}]}"#
        ));
    }

    #[test]
    fn the_hedge_budget_holds_to_its_share() {
        let b = HedgeBudget::default();
        let mut hedged = 0;
        for _ in 0..1000 {
            b.request();
            if b.try_hedge(10) {
                hedged += 1;
            }
        }
        assert_eq!(hedged, 100);
        assert_eq!(b.counts(), (1000, 100));
        let none = HedgeBudget::default();
        none.request();
        assert!(!none.try_hedge(10), "1 request allows no 10% hedge yet");
    }

    #[test]
    fn a_quantile_delay_needs_data() {
        assert_eq!(
            hedge_delay(HedgeAfter::Fixed(Duration::from_millis(300)), None),
            Some(Duration::from_millis(300))
        );
        assert_eq!(hedge_delay(HedgeAfter::Quantile(90), None), None);
    }

    #[test]
    fn each_quantile_delay_reads_its_own_quantile() {
        let stats = crate::stats::TargetStats::default();
        let t0 = tokio::time::Instant::now();
        for i in 0..200u64 {
            // 2% of first tokens take 2 s, the rest 100 ms.
            let ttft = Duration::from_millis(if i % 50 == 49 { 2000 } else { 100 });
            let obs = crate::stats::Observation::success(t0, Some(ttft), ttft, Some(5));
            stats.observe("p", "m", obs);
        }
        let snap = stats.snapshot_at("p", "m", t0);
        let delay = |q| hedge_delay(HedgeAfter::Quantile(q), snap.as_ref()).expect("data");
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert!((ms(delay(50)) / 100.0 - 1.0).abs() < 0.1, "{:?}", delay(50));
        assert!((ms(delay(90)) / 100.0 - 1.0).abs() < 0.1, "{:?}", delay(90));
        assert!(
            (ms(delay(99)) / 2000.0 - 1.0).abs() < 0.1,
            "p99 is the slow tail, not p90: {:?}",
            delay(99)
        );
    }
}
