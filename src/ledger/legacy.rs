//! Rows as schema version 2 wrote them: one provider/model/usage/cost per row, and the attempts
//! as a JSON string (`attempts_json`: provider, model, key, outcome, ms) without tokens or cost.
//! Both the in-place migration ([`super::store`]) and the spill import ([`super::spill`]) turn
//! them into [`LedgerAttempt`]s with [`attempts_from_v2`], so an old row reads the same
//! whichever way it arrives.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::attempt::{LedgerAttempt, Role};
use super::LedgerRow;
use crate::resilience::classify::status_class;
use crate::usage::Usage;

/// One entry of a schema-2 `attempts_json` array.
#[derive(Deserialize)]
struct V2Attempt {
    provider: String,
    model: String,
    #[serde(default)]
    key: Option<u64>,
    /// `200`, `503`, `ConnectRefused`, `skipped:circuit_open`, `pending`.
    outcome: String,
    #[serde(default)]
    ms: Option<f64>,
}

/// The row-level fields of a schema-2 row that say which attempt served and what it cost.
pub(crate) struct V2Row<'a> {
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub status: u16,
    pub usage: Usage,
    pub cost_usd: Option<Decimal>,
    pub cost_unknown: bool,
}

impl<'a> V2Row<'a> {
    /// The fields of a row read with the current columns.
    pub(crate) fn of(row: &'a LedgerRow) -> V2Row<'a> {
        V2Row {
            provider: row.provider.as_deref(),
            model: row.model.as_deref(),
            status: row.status,
            usage: row.usage,
            cost_usd: row.cost_usd,
            cost_unknown: row.cost_unknown,
        }
    }
}

/// The attempts of a schema-2 row. The last attempt that reached a provider served the client
/// when the row names its provider and model (a priced answer) or the client got its status
/// (an error passed through); it carries the row's tokens and cost. The others failed or were
/// skipped and billed nothing. A row whose tokens or cost no listed attempt can carry (e.g. an
/// unreadable `attempts_json`) gets one served attempt for its provider and model, so the
/// attempts always add up to the row.
pub(crate) fn attempts_from_v2(attempts_json: &str, row: &V2Row<'_>) -> Vec<LedgerAttempt> {
    let parsed: Vec<V2Attempt> = serde_json::from_str(attempts_json).unwrap_or_default();
    let mut out: Vec<LedgerAttempt> = parsed.into_iter().map(convert).collect();
    let last_reached = out.iter().rposition(|a| a.role != Role::Skipped);
    let served = last_reached.filter(|&i| {
        let a = &out[i];
        let named = row.provider == Some(a.provider.as_str()) && row.model == Some(&a.model);
        named || a.status == Some(row.status)
    });
    match served {
        Some(i) => bill(&mut out[i], row),
        None => {
            let billed = row.usage != Usage::default()
                || row.cost_unknown
                || row.cost_usd.is_none_or(|c| !c.is_zero());
            if billed {
                let mut a = LedgerAttempt::unbilled(
                    Role::Served,
                    row.provider.unwrap_or_default(),
                    row.model.unwrap_or_default(),
                );
                bill(&mut a, row);
                out.push(a);
            }
        }
    }
    out
}

fn bill(a: &mut LedgerAttempt, row: &V2Row<'_>) {
    a.role = Role::Served;
    a.usage = row.usage;
    a.cost_usd = row.cost_usd;
    a.cost_unknown = row.cost_unknown || row.cost_usd.is_none();
}

fn convert(v: V2Attempt) -> LedgerAttempt {
    let mut a = LedgerAttempt::unbilled(Role::Failed, &v.provider, &v.model);
    a.key_index = v.key.and_then(|k| u32::try_from(k).ok());
    a.ms = v.ms;
    if let Some(why) = v.outcome.strip_prefix("skipped:") {
        a.role = Role::Skipped;
        a.error_class = Some(why.to_owned());
    } else if let Ok(status) = v.outcome.parse::<u16>() {
        a.status = Some(status);
        a.error_class = (status >= 400).then(|| status_class(status).to_owned());
    } else if v.outcome != "pending" {
        a.error_class = Some(v.outcome);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn row<'a>(provider: Option<&'a str>, model: Option<&'a str>, status: u16) -> V2Row<'a> {
        V2Row {
            provider,
            model,
            status,
            usage: Usage {
                input: 3,
                output: 16,
                ..Usage::default()
            },
            cost_usd: Decimal::from_str("0.00001005").ok(),
            cost_unknown: false,
        }
    }

    #[test]
    fn the_last_reached_attempt_serves_and_carries_the_cost() {
        let json = r#"[{"provider":"down","model":"never","key":null,"outcome":"ConnectRefused","ms":0.2},
            {"provider":"x","model":"y","key":null,"outcome":"skipped:circuit_open","ms":0.0},
            {"provider":"openai","model":"gpt-4o-mini","key":1,"outcome":"200","ms":1.1}]"#;
        let r = row(Some("openai"), Some("gpt-4o-mini"), 200);
        let a = attempts_from_v2(json, &r);
        assert_eq!(
            a.iter().map(|a| a.role).collect::<Vec<_>>(),
            [Role::Failed, Role::Skipped, Role::Served]
        );
        assert_eq!(a[0].error_class.as_deref(), Some("ConnectRefused"));
        assert_eq!((a[0].status, a[0].cost_usd), (None, Some(Decimal::ZERO)));
        assert_eq!(a[1].error_class.as_deref(), Some("circuit_open"));
        assert_eq!((a[2].key_index, a[2].status), (Some(1), Some(200)));
        assert_eq!((a[2].usage, a[2].cost_usd), (r.usage, r.cost_usd));
        let t = super::super::attempt::Totals::of(&a);
        assert_eq!((t.usage, t.cost_usd), (r.usage, r.cost_usd));
    }

    #[test]
    fn an_error_passed_through_is_served_at_no_cost() {
        let json = r#"[{"provider":"openai","model":"m","key":0,"outcome":"503","ms":1.0},
            {"provider":"openai","model":"m","key":0,"outcome":"503","ms":1.0}]"#;
        let mut r = row(None, None, 503);
        r.usage = Usage::default();
        r.cost_usd = Some(Decimal::ZERO);
        let a = attempts_from_v2(json, &r);
        assert_eq!(a[0].role, Role::Failed);
        assert_eq!(a[1].role, Role::Served);
        assert_eq!(a[1].error_class.as_deref(), Some("server_error"));
        assert!(a.iter().all(|a| !a.is_billed()));
    }

    #[test]
    fn an_unknown_cost_stays_unknown() {
        let json = r#"[{"provider":"openai","model":"private","key":0,"outcome":"200","ms":1.0}]"#;
        let mut r = row(Some("openai"), Some("private"), 200);
        r.cost_usd = None;
        r.cost_unknown = true;
        let a = attempts_from_v2(json, &r);
        assert!(a[0].has_unknown_cost() && a[0].cost_usd.is_none());
        assert_eq!(super::super::attempt::Totals::of(&a).cost_usd, None);
    }

    #[test]
    fn a_row_no_attempt_can_carry_gets_a_served_attempt() {
        let r = row(Some("openai"), Some("gpt-4o-mini"), 200);
        for json in [
            "not json",
            "[]",
            r#"[{"provider":"a","model":"b","outcome":"500"}]"#,
        ] {
            let a = attempts_from_v2(json, &r);
            let served = a.last().unwrap();
            assert_eq!(served.role, Role::Served, "{json}");
            assert_eq!(
                (served.provider.as_str(), served.model.as_str()),
                ("openai", "gpt-4o-mini")
            );
            assert_eq!(served.cost_usd, r.cost_usd);
        }
        // Nothing billed (a gateway error or a cache hit): no attempt is made up.
        let mut free = row(None, None, 404);
        free.usage = Usage::default();
        free.cost_usd = Some(Decimal::ZERO);
        assert!(attempts_from_v2("[]", &free).is_empty());
    }
}
