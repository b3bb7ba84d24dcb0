//! Rate limits and budgets, reserved before a call and settled after it.
//!
//! A request asks ([`Ask`]) for one request, its worst-case tokens and its worst-case cost in
//! every scope it belongs to (its gateway key, its feature tag). The store grants all of it
//! or none ([`Verdict`]); the grant ([`Ticket`]) is settled to the true figures when the
//! request ends ([`Settlement`]). Concurrent requests therefore cannot overshoot a budget by
//! more than the gap between what they reserved and what they used.
//!
//! Stores: [`memory::MemoryStore`] (one process) and [`redis::RedisStore`] (shared by several
//! instances; each reserve and settle is one Lua script). With `on_store_error = "local"`, an
//! instance that loses Redis goes on against a local store with a lease of each limit
//! (`local_lease`, a share of it), so the overshoot during an outage is at most
//! instances x lease.

pub mod memory;
pub mod redis;
pub mod window;

#[cfg(test)]
mod tests;

use super::rules::{from_nanos, rfc3339, Period, Rule};
use crate::error::{ErrorKind, GatewayError};
use rust_decimal::Decimal;
use std::time::Duration;

/// The budget part of a scope's ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetAsk {
    /// The budget in nano-dollars.
    pub nanos: i64,
    pub period: Period,
    /// The period the request falls in ([`Period::id`]).
    pub period_id: String,
}

/// One scope a request is counted in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeAsk {
    /// The store's name for it: `key:<name>` or `feature:<name>`.
    pub id: String,
    /// For messages: "key `team-a`", "feature `search`".
    pub label: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget: Option<BudgetAsk>,
}

impl ScopeAsk {
    pub fn new(id: String, label: String, rule: &Rule, now_ms: i64) -> ScopeAsk {
        ScopeAsk {
            id,
            label,
            rpm: rule.rpm,
            tpm: rule.tpm,
            budget: rule.budget.as_ref().map(|b| BudgetAsk {
                nanos: super::rules::to_nanos(b.usd).unwrap_or(i64::MAX),
                period: b.period,
                period_id: b.period.id(now_ms),
            }),
        }
    }

    /// This scope with every limit cut to `share` of itself (at least 1 request, 1 token).
    fn leased(&self, share: Decimal) -> ScopeAsk {
        let cut = |n: u64| {
            let v = (Decimal::from(n) * share).floor();
            u64::try_from(v).unwrap_or(0).max(1)
        };
        ScopeAsk {
            rpm: self.rpm.map(cut),
            tpm: self.tpm.map(cut),
            budget: self.budget.as_ref().map(|b| BudgetAsk {
                nanos: i64::try_from((Decimal::from(b.nanos) * share).floor()).unwrap_or(0),
                ..b.clone()
            }),
            ..self.clone()
        }
    }
}

/// What a request reserves before its call.
#[derive(Clone, Debug)]
pub struct Ask {
    /// Wall clock, unix ms (budgets follow the calendar).
    pub now_ms: i64,
    /// Worst-case tokens: the prompt estimate plus the most the answer may use.
    pub tokens: u64,
    /// Worst-case cost in nano-dollars.
    pub cost_nanos: i64,
    pub scopes: Vec<ScopeAsk>,
}

/// A granted reservation.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub at_ms: i64,
    pub tokens: u64,
    pub cost_nanos: i64,
    pub scopes: Vec<ScopeAsk>,
    /// Granted by the local lease while the shared store was away.
    pub local: bool,
}

impl Ticket {
    pub fn new(ask: &Ask, local: bool) -> Ticket {
        Ticket {
            at_ms: ask.now_ms,
            tokens: ask.tokens,
            cost_nanos: ask.cost_nanos,
            scopes: ask.scopes.clone(),
            local,
        }
    }
}

/// What a request really used.
#[derive(Clone, Copy, Debug)]
pub struct Settlement {
    pub now_ms: i64,
    pub tokens: u64,
    pub cost_nanos: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenialKind {
    Rpm,
    Tpm,
    /// The request alone is over the scope's tokens per minute.
    TooLarge,
    Budget {
        spent_nanos: i64,
        reserved_nanos: i64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Index into [`Ask::scopes`].
    pub scope: usize,
    pub kind: DenialKind,
    pub retry_after_ms: i64,
}

#[derive(Clone, Debug)]
pub enum Verdict {
    Granted(Ticket),
    Denied(Denial),
}

impl Denial {
    /// The answer for the client: 429 with `retry-after`, 402 `budget_exceeded`, or 400 for a
    /// request that can never fit.
    pub fn to_error(&self, ask: &Ask) -> GatewayError {
        let Some(s) = ask.scopes.get(self.scope) else {
            return GatewayError::new(ErrorKind::Internal, "limit denial without a scope");
        };
        let retry = Duration::from_millis(u64::try_from(self.retry_after_ms).unwrap_or(0));
        let secs = retry.as_secs_f64().ceil().max(1.0);
        match self.kind {
            DenialKind::Rpm => GatewayError::new(
                ErrorKind::RateLimited,
                format!(
                    "Rate limit reached for {}: {} requests per minute. Retry after {secs} s.",
                    s.label,
                    s.rpm.unwrap_or(0)
                ),
            )
            .with_retry_after(retry),
            DenialKind::Tpm => GatewayError::new(
                ErrorKind::RateLimited,
                format!(
                    "Token rate limit reached for {}: {} tokens per minute, and this request may \
                     use up to {} tokens. Retry after {secs} s.",
                    s.label,
                    s.tpm.unwrap_or(0),
                    ask.tokens
                ),
            )
            .with_retry_after(retry),
            DenialKind::TooLarge => GatewayError::bad_request(format!(
                "This request may use up to {} tokens (prompt estimate plus its maximum output), \
                 more than the {} tokens per minute {} allows; lower max_tokens",
                ask.tokens,
                s.tpm.unwrap_or(0),
                s.label
            )),
            DenialKind::Budget {
                spent_nanos,
                reserved_nanos,
            } => {
                let Some(b) = &s.budget else {
                    return GatewayError::new(ErrorKind::Internal, "budget denial without budget");
                };
                let reset = match b.period.bounds(ask.now_ms).1 {
                    Some(end) => format!("It resets at {}.", rfc3339(end)),
                    None => "It does not reset (period: total).".to_owned(),
                };
                GatewayError::new(
                    ErrorKind::BudgetExceeded,
                    format!(
                        "Budget exceeded for {}: ${} per {} (spent ${}, ${} reserved by requests \
                         in flight; this request may cost up to ${}). {reset}",
                        s.label,
                        from_nanos(b.nanos),
                        b.period,
                        from_nanos(spent_nanos),
                        from_nanos(reserved_nanos),
                        from_nanos(ask.cost_nanos),
                    ),
                )
            }
        }
    }
}

/// What to do when the shared store cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnStoreError {
    /// Refuse requests that have limits (503) until it is back.
    #[default]
    FailClosed,
    /// Go on with a local lease of each limit.
    Local,
}

/// The shared store could not answer.
#[derive(Debug)]
pub struct StoreDown(pub String);

/// The store behind the limits.
pub enum Store {
    Memory(memory::MemoryStore),
    Redis(redis::RedisStore),
}

/// The process's limiter: its store, and the local lease for when a shared store is away.
pub struct Limiter {
    pub store: Store,
    pub on_store_error: OnStoreError,
    /// The share of each limit an instance may use alone while the shared store is away.
    pub lease: Decimal,
    local: memory::MemoryStore,
}

impl Limiter {
    pub fn new(store: Store, on_store_error: OnStoreError, lease: Decimal) -> Limiter {
        Limiter {
            store,
            on_store_error,
            lease,
            local: memory::MemoryStore::new(),
        }
    }

    pub fn memory() -> Limiter {
        Limiter::new(
            Store::Memory(memory::MemoryStore::new()),
            OnStoreError::FailClosed,
            Decimal::ZERO,
        )
    }

    /// Reserves `ask`, or says why not. `Err` only when the shared store is away and the
    /// policy is to fail closed.
    pub async fn reserve(&self, ask: &Ask) -> Result<Verdict, GatewayError> {
        let err = match &self.store {
            Store::Memory(m) => return Ok(m.reserve(ask)),
            Store::Redis(r) => match r.reserve(ask).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            },
        };
        match self.on_store_error {
            OnStoreError::FailClosed => {
                log::warn!(
                    "limits store unavailable, refusing limited requests: {}",
                    err.0
                );
                Err(GatewayError::new(
                    ErrorKind::Unavailable,
                    "The gateway's limits store is unavailable; try again shortly",
                )
                .with_retry_after(Duration::from_secs(1)))
            }
            OnStoreError::Local => {
                log::warn!("limits store unavailable, using the local lease: {}", err.0);
                let leased = Ask {
                    scopes: ask.scopes.iter().map(|s| s.leased(self.lease)).collect(),
                    ..ask.clone()
                };
                Ok(match self.local.reserve(&leased) {
                    Verdict::Granted(mut t) => {
                        t.local = true;
                        Verdict::Granted(t)
                    }
                    denied => denied,
                })
            }
        }
    }

    /// Settles a reservation where it was made.
    pub async fn settle(&self, t: &Ticket, used: &Settlement) {
        if t.local {
            self.local.settle(t, used);
            if let Store::Redis(r) = &self.store {
                r.defer_local(t, used);
            }
            return;
        }
        match &self.store {
            Store::Memory(m) => m.settle(t, used),
            Store::Redis(r) => r.settle(t, used).await,
        }
    }
}
