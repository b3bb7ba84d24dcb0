//! One costed call to a provider inside a ledger row: the attempt that served the client, the
//! ones that failed or were skipped before it, and calls that did not serve the client (race
//! losers, hedges, judge and shadow calls), each with its own tokens, cost and [`Role`].
//!
//! A row's usage and cost are the sums over its attempts ([`Totals::of`]): a cost is exact
//! ([`Decimal`]) and an attempt whose model has no price has `cost_usd = None` and
//! `cost_unknown`, which makes the whole row's cost unknown (never silently $0). Failed and
//! skipped attempts are billed nothing: their cost is a known zero.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::usage::Usage;

/// Why an attempt was made and what became of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Its answer is the one the client got (a success, or an error passed through).
    Served,
    /// Reached the provider and failed (status, connection or protocol error).
    Failed,
    /// Passed over without a request (circuit open, every key resting, no key).
    Skipped,
    /// Ran in a race and lost: generated tokens the client never saw.
    RaceLoser,
    /// A hedge sent while the first attempt was slow, and not the one that served.
    Hedge,
    /// A call that judged or scored the served answer.
    Judge,
    /// A copy of the request sent to another target for comparison.
    Shadow,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Served,
        Role::Failed,
        Role::Skipped,
        Role::RaceLoser,
        Role::Hedge,
        Role::Judge,
        Role::Shadow,
    ];

    /// The stored name (`served`, `race_loser`, ...), the same as the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Served => "served",
            Role::Failed => "failed",
            Role::Skipped => "skipped",
            Role::RaceLoser => "race_loser",
            Role::Hedge => "hedge",
            Role::Judge => "judge",
            Role::Shadow => "shadow",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown attempt role {s:?}"))
    }
}

/// One call to one provider/model within a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerAttempt {
    pub role: Role,
    pub provider: String,
    pub model: String,
    /// Which of the provider's keys was used (an index: safe to store), if one was.
    pub key_index: Option<u32>,
    /// The provider's HTTP status, if it answered.
    pub status: Option<u16>,
    /// `rate_limited`, `server_error`, `ConnectRefused`, `circuit_open`, ...; `None` on success.
    pub error_class: Option<String>,
    /// Time to the response header (or to the failure).
    pub ms: Option<f64>,
    pub usage: Usage,
    /// Exact cost; `None` (with `cost_unknown`) when the model has no price.
    pub cost_usd: Option<Decimal>,
    pub cost_unknown: bool,
}

impl LedgerAttempt {
    /// An attempt that billed nothing (failed or skipped): zero tokens, a known zero cost.
    pub fn unbilled(role: Role, provider: &str, model: &str) -> LedgerAttempt {
        LedgerAttempt {
            role,
            provider: provider.to_owned(),
            model: model.to_owned(),
            key_index: None,
            status: None,
            error_class: None,
            ms: None,
            usage: Usage::default(),
            cost_usd: Some(Decimal::ZERO),
            cost_unknown: false,
        }
    }

    /// Whether the cost is unknown (`cost_usd` is `None` or `cost_unknown` is set).
    pub fn has_unknown_cost(&self) -> bool {
        self.cost_unknown || self.cost_usd.is_none()
    }

    /// Whether it carries anything a spend report must attribute: tokens, a non-zero cost,
    /// or an unknown cost. Failed and skipped attempts normally carry nothing.
    pub fn is_billed(&self) -> bool {
        self.has_unknown_cost()
            || self.cost_usd.is_some_and(|c| !c.is_zero())
            || self.usage != Usage::default()
    }
}

/// A stored row's usage and cost once `attempts` are appended to it: the sums again; the cost
/// is unknown when the row's or any new attempt's is (shared by both ledger stores).
pub fn appended(
    cost: Option<Decimal>,
    unknown: bool,
    usage: &Usage,
    attempts: &[LedgerAttempt],
) -> (Option<Decimal>, Usage) {
    let added = Totals::of(attempts);
    let mut total_usage = *usage;
    add_usage(&mut total_usage, &added.usage);
    let total = match (cost, added.cost_usd) {
        (Some(c), Some(d)) if !unknown && !added.cost_unknown => Some(c.saturating_add(d)),
        _ => None,
    };
    (total, total_usage)
}

/// What a row's attempts add up to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Totals {
    pub usage: Usage,
    /// The exact sum; `None` when any attempt's cost is unknown.
    pub cost_usd: Option<Decimal>,
    pub cost_unknown: bool,
}

impl Totals {
    /// Sums `attempts`: tokens saturating, cost exact. No attempts: zero tokens, a known $0.
    pub fn of(attempts: &[LedgerAttempt]) -> Totals {
        let mut usage = Usage::default();
        let mut cost = Some(Decimal::ZERO);
        for a in attempts {
            add_usage(&mut usage, &a.usage);
            cost = match (cost, a.cost_usd) {
                (Some(sum), Some(c)) if !a.cost_unknown => Some(sum.saturating_add(c)),
                _ => None,
            };
        }
        Totals {
            usage,
            cost_unknown: cost.is_none(),
            cost_usd: cost,
        }
    }
}

/// `sum += u`, field by field, saturating.
pub(crate) fn add_usage(sum: &mut Usage, u: &Usage) {
    sum.input = sum.input.saturating_add(u.input);
    sum.output = sum.output.saturating_add(u.output);
    sum.cached_input = sum.cached_input.saturating_add(u.cached_input);
    sum.cache_write = sum.cache_write.saturating_add(u.cache_write);
    sum.reasoning = sum.reasoning.saturating_add(u.reasoning);
}

/// `sum - u`, field by field, floored at zero.
pub(crate) fn sub_usage(sum: &Usage, u: &Usage) -> Usage {
    Usage {
        input: sum.input.saturating_sub(u.input),
        output: sum.output.saturating_sub(u.output),
        cached_input: sum.cached_input.saturating_sub(u.cached_input),
        cache_write: sum.cache_write.saturating_sub(u.cache_write),
        reasoning: sum.reasoning.saturating_sub(u.reasoning),
    }
}
