//! The in-process limit store: one mutex over a map of scopes, held for a few hundred
//! nanoseconds per reserve or settle and never across an await.

use super::window::Window;
use super::{Ask, Denial, DenialKind, Settlement, Ticket, Verdict};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Spend {
    spent: i64,
    reserved: i64,
}

#[derive(Default)]
struct ScopeState {
    requests: Window,
    tokens: Window,
    /// Period id -> spend; only the current period of each budget is kept.
    spend: HashMap<String, Spend>,
}

#[derive(Default)]
pub struct MemoryStore {
    scopes: Mutex<HashMap<String, ScopeState>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Reserves `ask` in every scope, or in none: the first limit that does not hold denies.
    pub fn reserve(&self, ask: &Ask) -> Verdict {
        let mut scopes = match self.scopes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now_s = ask.now_ms.div_euclid(1000);
        // Check every scope first, then apply: all or nothing.
        for (i, s) in ask.scopes.iter().enumerate() {
            let st = scopes.entry(s.id.clone()).or_default();
            if let Some(rpm) = s.rpm {
                st.requests.expire(now_s);
                let wait = st.requests.wait_ms(1, rpm, ask.now_ms);
                if wait > 0 {
                    return Verdict::Denied(Denial {
                        scope: i,
                        kind: DenialKind::Rpm,
                        retry_after_ms: wait,
                    });
                }
            }
            if let Some(tpm) = s.tpm {
                if ask.tokens > tpm {
                    return Verdict::Denied(Denial {
                        scope: i,
                        kind: DenialKind::TooLarge,
                        retry_after_ms: 0,
                    });
                }
                st.tokens.expire(now_s);
                let wait = st.tokens.wait_ms(ask.tokens, tpm, ask.now_ms);
                if wait > 0 {
                    return Verdict::Denied(Denial {
                        scope: i,
                        kind: DenialKind::Tpm,
                        retry_after_ms: wait,
                    });
                }
            }
            if let Some(b) = &s.budget {
                st.spend.retain(|p, _| p == &b.period_id);
                let sp = st.spend.entry(b.period_id.clone()).or_default();
                if sp.spent + sp.reserved + ask.cost_nanos > b.nanos {
                    return Verdict::Denied(Denial {
                        scope: i,
                        kind: DenialKind::Budget {
                            spent_nanos: sp.spent,
                            reserved_nanos: sp.reserved,
                        },
                        retry_after_ms: 0,
                    });
                }
            }
        }
        for s in &ask.scopes {
            let st = scopes.entry(s.id.clone()).or_default();
            if s.rpm.is_some() {
                st.requests.add(now_s, 1);
            }
            if s.tpm.is_some() {
                st.tokens.add(now_s, ask.tokens);
            }
            if let Some(b) = &s.budget {
                st.spend.entry(b.period_id.clone()).or_default().reserved += ask.cost_nanos;
            }
        }
        Verdict::Granted(Ticket::new(ask, false))
    }

    /// Settles a reservation to what the request really used.
    pub fn settle(&self, t: &Ticket, used: &Settlement) {
        let mut scopes = match self.scopes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let at_s = t.at_ms.div_euclid(1000);
        let now_s = used.now_ms.div_euclid(1000);
        let delta = i64::try_from(used.tokens).unwrap_or(i64::MAX)
            - i64::try_from(t.tokens).unwrap_or(i64::MAX);
        for s in &t.scopes {
            let Some(st) = scopes.get_mut(&s.id) else {
                continue;
            };
            if s.tpm.is_some() && delta != 0 {
                st.tokens.adjust(at_s, now_s, delta);
            }
            if let Some(b) = &s.budget {
                if let Some(sp) = st.spend.get_mut(&b.period_id) {
                    sp.reserved = (sp.reserved - t.cost_nanos).max(0);
                    sp.spent += used.cost_nanos;
                }
            }
        }
    }

    /// Spend already on record for a scope's period (from the ledger at start): counted once,
    /// if the store has not seen that period yet.
    pub fn seed_spent(&self, scope: &str, period_id: &str, nanos: i64) {
        let mut scopes = match self.scopes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let st = scopes.entry(scope.to_owned()).or_default();
        st.spend.entry(period_id.to_owned()).or_insert(Spend {
            spent: nanos,
            reserved: 0,
        });
    }

    /// (spent, reserved) nano-dollars of a scope's period.
    pub fn spend(&self, scope: &str, period_id: &str) -> (i64, i64) {
        let scopes = match self.scopes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        scopes
            .get(scope)
            .and_then(|st| st.spend.get(period_id))
            .map_or((0, 0), |s| (s.spent, s.reserved))
    }
}
