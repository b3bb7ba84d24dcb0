//! Governance: who may call, how fast, for how much, and what gets logged.
//!
//! | part | file | job |
//! |---|---|---|
//! | rules | [`rules`] | rpm, tpm, budgets per UTC calendar period, logging modes |
//! | keys | [`keys`] | runtime gateway keys: SQLite store, CLI/admin operations, live snapshot |
//! | limits | [`limits`] | reserve the worst case before a call, settle after; memory or Redis |
//! | worst case | [`reserve`] | prompt estimate + max output at the dearest candidate's price |
//! | spend | [`spend`] | spend on record in the ledger (reports; seeds the memory store) |
//! | bodies | [`bodies`], [`redact`] | kept request/response bodies, redacted, with retention |
//!
//! The proxy uses it through two layers: `limits` (reserve, cut a stream that runs past its
//! reservation, settle) and `bodies` (capture and queue kept bodies). With no limits on the
//! key or feature and no body logging, neither does more than one check.

pub mod bodies;
pub mod keys;
pub mod limits;
pub mod redact;
pub mod reserve;
pub mod rules;
pub mod spend;

use crate::config::{Config, LimitStore};
use keys::LiveKeys;
use limits::{Limiter, Store};
use spend::ScopeColumn;
use std::sync::Arc;

/// The process-wide governance state: it outlives config reloads (counters, key snapshot).
pub struct Governance {
    /// Runtime keys (absent in tests of the proxy alone).
    pub keys: Option<Arc<LiveKeys>>,
    pub limiter: Limiter,
    /// Where kept bodies go (absent in tests of the proxy alone).
    pub bodies: Option<bodies::BodyLog>,
}

impl Governance {
    /// Nothing persistent: in-memory limits, no runtime keys, no kept bodies.
    pub fn in_memory() -> Arc<Governance> {
        Arc::new(Governance {
            keys: None,
            limiter: Limiter::memory(),
            bodies: None,
        })
    }

    /// Opens the key store and the body log beside the ledger, and the limit store; the
    /// in-memory store starts from this period's spend on record.
    pub fn start(config: &Config) -> Result<Arc<Governance>, String> {
        let path = &config.ledger.path;
        let keys = LiveKeys::follow(path)?;
        let l = &config.limits;
        let store = match &l.store {
            LimitStore::Memory => Store::Memory(limits::memory::MemoryStore::new()),
            LimitStore::Redis(url) => Store::Redis(limits::redis::RedisStore::new(
                url,
                l.store_timeout,
                l.reservation_ttl,
            )?),
        };
        let limiter = Limiter::new(store, l.on_store_error, l.local_lease);
        let bodies = bodies::BodyLog::start(path, &config.logging)?;
        let gov = Governance {
            keys: Some(keys),
            limiter,
            bodies: Some(bodies),
        };
        gov.seed(config);
        Ok(Arc::new(gov))
    }

    /// A reload: new redaction rules; budgets new to the config start from their spend.
    pub fn on_reload(&self, config: &Config) {
        if let Some(b) = &self.bodies {
            b.update(&config.logging);
        }
        self.seed(config);
    }

    /// Gives the in-memory store this period's spend of every budget from the ledger (a
    /// period it already counts is left alone).
    fn seed(&self, config: &Config) {
        let Store::Memory(mem) = &self.limiter.store else {
            return;
        };
        let conn = match spend::open(&config.ledger.path) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                log::warn!("budgets start from zero: cannot read the ledger: {e}");
                return;
            }
        };
        let now = keys::ops::now_ms();
        let mut budgets: Vec<(ScopeColumn, String, rules::Budget)> = Vec::new();
        for k in &config.gateway_keys {
            if let Some(b) = &k.rule.budget {
                budgets.push((ScopeColumn::Key, k.name.clone(), b.clone()));
            }
        }
        for f in &config.features {
            if let Some(b) = &f.rule.budget {
                budgets.push((ScopeColumn::Feature, f.name.clone(), b.clone()));
            }
        }
        if let Some(live) = &self.keys {
            for k in live.snapshot().iter() {
                if let Some(b) = k.rule.as_ref().and_then(|r| r.budget.clone()) {
                    budgets.push((ScopeColumn::Key, k.name.clone(), b));
                }
            }
        }
        for (column, name, b) in budgets {
            match spend::period_spend_nanos(&conn, column, &name, &b, now) {
                Ok(n) => mem.seed_spent(&column.scope_id(&name), &b.period.id(now), n),
                Err(e) => log::warn!("budget of {name} starts from zero: {e}"),
            }
        }
    }
}

/// A request's governance state (one field of the proxy's per-request context).
#[derive(Default)]
pub struct PerRequest {
    /// What the request reserved, settled when it ends.
    pub reservation: Option<Reservation>,
    /// The reservation's cost in USD (its worst case at the dearest candidate), kept after
    /// settling for the ledger row; `None` without a reservation or without a price.
    pub reserved_usd: Option<rust_decimal::Decimal>,
    /// Its bodies, captured for the body log.
    pub capture: Option<Capture>,
    /// The answer ran past its reservation: the proxy ends the stream.
    pub cut: bool,
}

/// A granted reservation.
pub struct Reservation {
    pub ticket: limits::Ticket,
    /// Output tokens reserved: a stream running past them is cut.
    pub output_tokens: u64,
}

/// Bodies being captured.
pub struct Capture {
    pub mode: rules::LogBodies,
    /// The bytes the client got (whole answers, cache hits), up to the size limit.
    pub response: Vec<u8>,
    pub truncated: bool,
}
