//! What a finished request did, as the outputs (metrics, access log, ledger) read it.
//!
//! The proxy builds one [`Summary`] when a request ends and hands it to each output; outputs
//! never see the proxy's per-request context. That keeps the dependency one-way (proxy ->
//! outputs), and anything that finishes a request outside the proxy loop (an answer written by
//! the outbound client, a background call) can produce the same record.
//!
//! Attempts are typed: [`Outcome`] says whether an attempt is in flight, answered with a status,
//! failed in transport, or was passed over without a call ([`Skip`]).

use crate::dialect::{Dialect, Endpoint};
use crate::resilience::classify::status_class;
use crate::usage::Usage;
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

/// Why a candidate was passed over without a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The provider's or the model's circuit breaker is open.
    CircuitOpen,
    /// Every key of the provider is resting (429s, auth failures).
    KeysResting,
    /// The provider has no usable key (its environment variables are unset).
    NoKey,
    /// The provider's host name did not resolve.
    Dns,
    /// The request cannot be expressed in the provider's dialect.
    Untranslatable,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::CircuitOpen => "circuit_open",
            Skip::KeysResting => "keys_resting",
            Skip::NoKey => "no_key",
            Skip::Dns => "dns",
            Skip::Untranslatable => "untranslatable",
        }
    }
}

/// How one attempt ended (or that it has not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent; no answer yet.
    Pending,
    /// The provider answered with this status (passed on, or dropped for another attempt).
    Answered(u16),
    /// Connection, TLS, timeout or protocol failure before an answer (pingora's error name).
    Transport(&'static str),
    /// Passed over without a request.
    Skipped(Skip),
}

/// One try at one candidate target.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub provider_index: usize,
    pub provider: String,
    pub model: String,
    /// Which of the provider's keys was used (an index: safe to log).
    pub key_index: Option<usize>,
    pub started: Instant,
    /// Time to the response header (or to the failure); `None` while in flight.
    pub elapsed: Option<Duration>,
    pub outcome: Outcome,
}

impl Attempt {
    pub fn skipped(provider_index: usize, provider: &str, model: &str, why: Skip) -> Attempt {
        Attempt {
            provider_index,
            provider: provider.to_owned(),
            model: model.to_owned(),
            key_index: None,
            started: Instant::now(),
            elapsed: Some(Duration::ZERO),
            outcome: Outcome::Skipped(why),
        }
    }

    pub fn is_skipped(&self) -> bool {
        matches!(self.outcome, Outcome::Skipped(_))
    }

    /// The provider's status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Answered(s) => Some(s),
            _ => None,
        }
    }

    /// The error class of a failed attempt: `rate_limited`, `server_error`, `ConnectRefused`,
    /// `circuit_open`, ...; `None` for a success or an attempt in flight.
    pub fn error_class(&self) -> Option<&'static str> {
        match self.outcome {
            Outcome::Pending => None,
            Outcome::Answered(s) if s < 400 => None,
            Outcome::Answered(s) => Some(status_class(s)),
            Outcome::Transport(e) => Some(e),
            Outcome::Skipped(s) => Some(s.as_str()),
        }
    }

    /// `200`, `503`, `ConnectRefused`, `skipped:circuit_open`, `pending`.
    pub fn outcome_label(&self) -> String {
        match self.outcome {
            Outcome::Pending => "pending".to_owned(),
            Outcome::Answered(s) => s.to_string(),
            Outcome::Transport(e) => e.to_owned(),
            Outcome::Skipped(s) => format!("skipped:{}", s.as_str()),
        }
    }

    /// Whether this attempt ran into a rate limit (a 429, or every key resting).
    pub fn rate_limited(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Answered(429) | Outcome::Skipped(Skip::KeysResting)
        )
    }
}

/// The `x-switchyard-attempts` header: `provider/model#key=outcome(ms)`, comma-separated.
pub fn attempts_header(attempts: &[Attempt]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(64 * attempts.len());
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&a.provider);
        out.push('/');
        out.push_str(&a.model);
        if let Some(k) = a.key_index {
            let _ = write!(out, "#{k}");
        }
        let ms = a.elapsed.map_or(0, |d| d.as_millis());
        match a.outcome {
            Outcome::Answered(s) => {
                let _ = write!(out, "={s}({ms}ms)");
            }
            _ => {
                let _ = write!(out, "={}({ms}ms)", a.outcome_label());
            }
        }
    }
    out
}

/// A race or hedge leg that did not serve the client, and what it used: its tokens count in
/// the request's ledger row (see the race layer).
#[derive(Debug, Clone)]
pub struct LegBill {
    /// Index into the request's attempts.
    pub attempt: usize,
    /// `RaceLoser` or `Hedge`.
    pub role: crate::ledger::Role,
    pub usage: Usage,
    /// The leg was cancelled before it reported usage: the tokens are an estimate.
    pub estimated: bool,
    /// Exact cost; `None` when the model has no price.
    pub cost_usd: Option<Decimal>,
}

/// What a request used and cost.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub usage: Usage,
    /// Tokens were estimated (the provider's answer ended without usage).
    pub estimated: bool,
    /// Exact cost in USD; `None` with `cost_unknown` when the model has no price.
    pub cost_usd: Option<Decimal>,
    pub cost_unknown: bool,
    /// The provider/model that served (and was priced).
    pub provider: Option<String>,
    pub model: Option<String>,
    /// For a cache hit: what the stored answer would have cost (`None` if unpriced).
    pub saved_usd: Option<Decimal>,
    /// What the cost is counted in (`tokens`, `images`, `seconds`, `characters`).
    pub unit: Option<&'static str>,
    /// How many of `unit` the call used (`None`: unknown).
    pub quantity: Option<u64>,
    /// Why the served answer stopped (`stop`, `length`, `end_turn`, ...), as the provider
    /// said; read only while traces are exported (empty otherwise).
    pub finish_reasons: Vec<String>,
}

/// The cache's part in a request that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Bypass,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Bypass => "bypass",
        }
    }
}

/// One finished request: everything the outputs record.
#[derive(Debug)]
pub struct Summary<'a> {
    pub id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// `None` for a path that is not a model endpoint (health, model list, unknown paths).
    pub endpoint: Option<Endpoint>,
    pub route: Option<&'a str>,
    /// Why routing ordered the candidates as it did.
    pub route_reason: Option<&'a str>,
    /// The gateway key's name, never the key.
    pub key_name: Option<&'a str>,
    pub feature: Option<&'a str>,
    /// The model as the client wrote it.
    pub requested_model: Option<&'a str>,
    pub stream: bool,
    pub request_bytes: usize,
    pub attempts: &'a [Attempt],
    /// Race and hedge legs that lost (their attempts' roles, tokens and cost).
    pub legs: &'a [LegBill],
    /// The provider and model whose answer the client got (the stored one's, for a hit).
    pub served: Option<(&'a str, &'a str)>,
    /// Status sent to the client (0: none was sent).
    pub status: u16,
    pub cache: Option<CacheOutcome>,
    /// The provider's dialect, when the answer was translated into the client's.
    pub translated_from: Option<Dialect>,
    pub account: &'a Account,
    /// The worst-case cost governance reserved before the call (`None`: no limit applied, or
    /// unpriced).
    pub reserved_usd: Option<Decimal>,
    /// The gateway's own error message, or pingora's error name.
    pub error: Option<String>,
    /// The gateway's own error kind (`rate_limited`, `unavailable`, ...).
    pub error_kind: Option<&'static str>,
    /// The client went away before the answer was complete.
    pub client_gone: bool,
    pub started_at: std::time::SystemTime,
    pub ttfb: Option<Duration>,
    pub ttft: Option<Duration>,
    pub total: Duration,
}

impl Summary<'_> {
    /// Attempts that reached a provider (skips excluded).
    pub fn upstream_attempts(&self) -> usize {
        self.attempts.iter().filter(|a| !a.is_skipped()).count()
    }

    /// The error class for the ledger: the client left, the gateway's own error, or the
    /// class of the status sent.
    pub fn error_class(&self) -> Option<String> {
        if self.client_gone {
            Some("client_disconnected".to_owned())
        } else if let Some(k) = self.error_kind {
            Some(k.to_owned())
        } else if self.status >= 400 {
            Some(status_class(self.status).to_owned())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: Outcome, key: Option<usize>, ms: u64) -> Attempt {
        Attempt {
            provider_index: 0,
            provider: "groq".into(),
            model: "llama".into(),
            key_index: key,
            started: Instant::now(),
            elapsed: Some(Duration::from_millis(ms)),
            outcome,
        }
    }

    #[test]
    fn outcomes_label_and_classify() {
        let ok = attempt(Outcome::Answered(200), Some(0), 5);
        assert_eq!(ok.error_class(), None);
        assert_eq!(ok.outcome_label(), "200");
        let limited = attempt(Outcome::Answered(429), Some(1), 5);
        assert_eq!(limited.error_class(), Some("rate_limited"));
        assert!(limited.rate_limited());
        let refused = attempt(Outcome::Transport("ConnectRefused"), None, 1);
        assert_eq!(refused.error_class(), Some("ConnectRefused"));
        let skipped = Attempt::skipped(0, "groq", "llama", Skip::KeysResting);
        assert!(skipped.is_skipped() && skipped.rate_limited());
        assert_eq!(skipped.outcome_label(), "skipped:keys_resting");
        assert_eq!(attempt(Outcome::Pending, None, 0).error_class(), None);
    }

    #[test]
    fn attempts_header_lists_each_attempt() {
        let h = attempts_header(&[
            attempt(Outcome::Answered(503), Some(0), 41),
            Attempt::skipped(1, "openai", "gpt", Skip::CircuitOpen),
            attempt(Outcome::Transport("ConnectRefused"), None, 3),
        ]);
        assert_eq!(
            h,
            "groq/llama#0=503(41ms), openai/gpt=skipped:circuit_open(0ms), \
             groq/llama=ConnectRefused(3ms)"
        );
    }
}
