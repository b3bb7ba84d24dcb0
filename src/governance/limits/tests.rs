//! The limit rules on the in-memory store, with the clock passed in: each kind is enforced and
//! recovers when its window or period passes; reservations settle to the true figures.

use super::memory::MemoryStore;
use super::*;
use crate::governance::rules::{Budget, Period, Rule};
use std::str::FromStr;

const DAY: i64 = 86_400_000;
/// 2026-05-03 12:00 UTC.
const NOON: i64 = 20_576 * DAY + DAY / 2;

fn scope(rule: Rule, now: i64) -> ScopeAsk {
    ScopeAsk::new("key:k".into(), "key `k`".into(), &rule, now)
}

fn ask(rule: &Rule, now: i64, tokens: u64, cost_nanos: i64) -> Ask {
    Ask {
        now_ms: now,
        tokens,
        cost_nanos,
        scopes: vec![scope(rule.clone(), now)],
    }
}

fn granted(v: Verdict) -> Ticket {
    match v {
        Verdict::Granted(t) => t,
        Verdict::Denied(d) => panic!("denied: {d:?}"),
    }
}

fn denied(v: Verdict) -> Denial {
    match v {
        Verdict::Denied(d) => d,
        Verdict::Granted(t) => panic!("granted: {t:?}"),
    }
}

#[test]
fn rpm_is_enforced_and_recovers_after_the_window() {
    let s = MemoryStore::new();
    let rule = Rule {
        rpm: Some(2),
        ..Rule::default()
    };
    granted(s.reserve(&ask(&rule, NOON, 1, 0)));
    granted(s.reserve(&ask(&rule, NOON + 10_000, 1, 0)));
    let d = denied(s.reserve(&ask(&rule, NOON + 20_000, 1, 0)));
    assert_eq!(d.kind, DenialKind::Rpm);
    assert_eq!(d.retry_after_ms, 40_000);
    let e = d.to_error(&ask(&rule, NOON + 20_000, 1, 0));
    assert_eq!(
        (e.status(), e.retry_after.map(|d| d.as_secs())),
        (429, Some(40))
    );
    assert!(e.message.contains("key `k`") && e.message.contains("2 requests per minute"));
    // The first request leaves the window a minute after it came.
    granted(s.reserve(&ask(&rule, NOON + 60_000, 1, 0)));
}

#[test]
fn tpm_counts_the_reservation_then_the_true_tokens() {
    let s = MemoryStore::new();
    let rule = Rule {
        tpm: Some(1000),
        ..Rule::default()
    };
    let t = granted(s.reserve(&ask(&rule, NOON, 800, 0)));
    let d = denied(s.reserve(&ask(&rule, NOON + 1_000, 300, 0)));
    assert_eq!(d.kind, DenialKind::Tpm);
    // Settled at 100 true tokens: 900 are free again at once.
    s.settle(
        &t,
        &Settlement {
            now_ms: NOON + 2_000,
            tokens: 100,
            cost_nanos: 0,
        },
    );
    granted(s.reserve(&ask(&rule, NOON + 3_000, 900, 0)));
    denied(s.reserve(&ask(&rule, NOON + 4_000, 1, 0)));
    granted(s.reserve(&ask(&rule, NOON + 63_000, 1, 0)));
    // A request that can never fit is told so (400), not to retry.
    let d = denied(s.reserve(&ask(&rule, NOON + 64_000, 1001, 0)));
    assert_eq!(d.kind, DenialKind::TooLarge);
    assert_eq!(d.to_error(&ask(&rule, NOON, 1001, 0)).status(), 400);
}

#[test]
fn budget_reserves_worst_case_settles_and_resets_with_the_period() {
    let s = MemoryStore::new();
    let rule = Rule {
        budget: Some(Budget {
            usd: Decimal::from_str("1.00").unwrap(),
            period: Period::Day,
        }),
        ..Rule::default()
    };
    let dollar = 1_000_000_000;
    let a = granted(s.reserve(&ask(&rule, NOON, 1, dollar * 6 / 10)));
    // 0.6 reserved: another 0.6 would overshoot even though nothing is spent yet.
    let d = denied(s.reserve(&ask(&rule, NOON, 1, dollar * 6 / 10)));
    let e = d.to_error(&ask(&rule, NOON, 1, dollar * 6 / 10));
    assert_eq!(e.status(), 402);
    assert!(
        e.message.contains("key `k`") && e.message.contains("per day"),
        "{}",
        e.message
    );
    assert!(e.message.contains("2026-05-04T00:00:00Z"), "{}", e.message);
    s.settle(
        &a,
        &Settlement {
            now_ms: NOON + 1,
            tokens: 1,
            cost_nanos: dollar / 10,
        },
    );
    assert_eq!(s.spend("key:k", "d20260503"), (dollar / 10, 0));
    granted(s.reserve(&ask(&rule, NOON + 2, 1, dollar * 9 / 10)));
    denied(s.reserve(&ask(&rule, NOON + 3, 1, 1)));
    // The next UTC day starts from zero.
    granted(s.reserve(&ask(&rule, NOON + DAY / 2, 1, dollar)));
}

#[test]
fn all_scopes_or_none() {
    let s = MemoryStore::new();
    let key = Rule {
        rpm: Some(10),
        ..Rule::default()
    };
    let feature = Rule {
        rpm: Some(1),
        ..Rule::default()
    };
    let both = |now| Ask {
        now_ms: now,
        tokens: 1,
        cost_nanos: 0,
        scopes: vec![
            ScopeAsk::new("key:k".into(), "key `k`".into(), &key, now),
            ScopeAsk::new("feature:f".into(), "feature `f`".into(), &feature, now),
        ],
    };
    granted(s.reserve(&both(NOON)));
    let d = denied(s.reserve(&both(NOON)));
    assert_eq!(d.scope, 1);
    assert!(d.to_error(&both(NOON)).message.contains("feature `f`"));
    // The denied request counted nowhere: the key has 9 left.
    for _ in 0..9 {
        granted(s.reserve(&ask(&key, NOON, 1, 0)));
    }
    denied(s.reserve(&ask(&key, NOON, 1, 0)));
}

#[test]
fn seeded_spend_counts_once() {
    let s = MemoryStore::new();
    let rule = Rule {
        budget: Some(Budget {
            usd: Decimal::ONE,
            period: Period::Day,
        }),
        ..Rule::default()
    };
    s.seed_spent("key:k", "d20260503", 900_000_000);
    s.seed_spent("key:k", "d20260503", 0);
    denied(s.reserve(&ask(&rule, NOON, 1, 200_000_000)));
    granted(s.reserve(&ask(&rule, NOON, 1, 100_000_000)));
}

#[tokio::test]
async fn concurrent_reservations_never_overshoot() {
    let limiter = std::sync::Arc::new(Limiter::memory());
    let rule = Rule {
        budget: Some(Budget {
            usd: Decimal::ONE,
            period: Period::Total,
        }),
        ..Rule::default()
    };
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (l, r) = (limiter.clone(), rule.clone());
            tokio::spawn(async move {
                let a = ask(&r, NOON, 10, 100_000_000);
                match l.reserve(&a).await.unwrap() {
                    Verdict::Granted(t) => {
                        tokio::task::yield_now().await;
                        let used = Settlement {
                            now_ms: NOON,
                            tokens: 10,
                            cost_nanos: 100_000_000,
                        };
                        l.settle(&t, &used).await;
                        1
                    }
                    Verdict::Denied(_) => 0,
                }
            })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        served += t.await.unwrap();
    }
    assert_eq!(served, 10);
}
