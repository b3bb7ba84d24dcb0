//! Promotion (off by default): with `promote = "when_decided"`, all of an experiment's traffic
//! moves to the leader once the report says `decided`, unless a guard says the leader costs or
//! waits too much more than another variant (`max_cost_increase`, `max_p95_increase`). Every
//! promotion and every newly blocked promotion is a shift: logged, stored, and shown in the
//! report. A promotion survives restarts (it is read back from the ledger at start).

use super::report::{Promotion, Report};
use crate::config::experiments::{ExperimentConfig, Promote};
use rust_decimal::prelude::ToPrimitive;

/// How much higher `leader` is than `other`, in percent (`None`: no increase to speak of).
fn increase(leader: f64, other: f64) -> Option<f64> {
    if leader <= other {
        return None;
    }
    if other <= 0.0 {
        return Some(f64::INFINITY);
    }
    Some((leader - other) / other * 100.0)
}

/// Why the guards stop `leader` from being promoted, if they do.
fn blocked(exp: &ExperimentConfig, r: &Report, leader: usize) -> Option<String> {
    let l = &r.variants[leader];
    for (i, o) in r.variants.iter().enumerate() {
        if i == leader {
            continue;
        }
        if let Some(max) = exp.max_cost_increase {
            let (Some(lc), Some(oc)) = (l.cost_per_request_usd, o.cost_per_request_usd) else {
                return Some(format!(
                    "the cost per request of `{}` or `{}` is unknown (max_cost_increase {max}%)",
                    l.name, o.name
                ));
            };
            let (lf, of) = (lc.to_f64().unwrap_or(0.0), oc.to_f64().unwrap_or(0.0));
            if let Some(up) = increase(lf, of).filter(|up| *up > max) {
                return Some(format!(
                    "`{}` costs ${lc} per request, {up:.0}% more than `{}` (${oc}); \
                     max_cost_increase is {max}%",
                    l.name, o.name
                ));
            }
        }
        if let Some(max) = exp.max_p95_increase {
            let (Some(lp), Some(op)) = (l.p95_ms, o.p95_ms) else {
                return Some(format!(
                    "no latency yet for `{}` or `{}` (max_p95_increase {max}%)",
                    l.name, o.name
                ));
            };
            if let Some(up) = increase(lp, op).filter(|up| *up > max) {
                return Some(format!(
                    "`{}` has a p95 of {lp:.0} ms, {up:.0}% more than `{}` ({op:.0} ms); \
                     max_p95_increase is {max}%",
                    l.name, o.name
                ));
            }
        }
    }
    None
}

/// The promotion state the report shows.
pub fn evaluate(exp: &ExperimentConfig, r: &Report) -> Promotion {
    let mode = r.promotion.mode;
    let state = |status, variant: Option<String>, reason: Option<String>| Promotion {
        mode,
        status,
        variant,
        reason,
    };
    if exp.promote == Promote::Off {
        return state("off", None, None);
    }
    if let Some(s) = r.shifts.iter().rev().find(|s| s.kind == "promoted") {
        return state("promoted", s.variant.clone(), Some(s.reason.clone()));
    }
    let Some(leader) = r.leader.as_ref() else {
        return state("waiting", None, Some("no verdicts yet".into()));
    };
    if !r.decided {
        return state(
            "waiting",
            Some(leader.clone()),
            Some("the difference is not significant yet".into()),
        );
    }
    let Some(i) = r.variants.iter().position(|v| &v.name == leader) else {
        return state("waiting", None, None);
    };
    match blocked(exp, r, i) {
        Some(why) => state("blocked", Some(leader.clone()), Some(why)),
        None => state(
            "ready",
            Some(leader.clone()),
            Some(format!("`{leader}` is better at alpha {}", exp.alpha)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use rust_decimal::Decimal;

    fn setup(extra: &str) -> (Config, Report) {
        let text = format!(
            r#"
[[providers]]
name = "p"
kind = "openai"
api_keys = ["k"]
[[routes]]
name = "r"
targets = ["p/a"]
[[experiments]]
name = "e"
route = "r"
promote = "when_decided"
{extra}
variants = [{{ name = "a", target = "p/a" }}, {{ name = "b", target = "p/b" }}]
judge = {{ target = "p/j", rubric = "x" }}
"#
        );
        let c = Config::parse("t.toml", &text, &|_| None).unwrap();
        let mut r = super::super::report::build(Default::default(), &c.experiments[0], &c).unwrap();
        r.leader = Some("a".into());
        r.decided = true;
        r.variants[0].cost_per_request_usd = Some(Decimal::new(12, 3));
        r.variants[1].cost_per_request_usd = Some(Decimal::new(10, 3));
        r.variants[0].p95_ms = Some(100.0);
        r.variants[1].p95_ms = Some(100.0);
        (c, r)
    }

    #[test]
    fn guards_block_a_leader_that_is_too_expensive_or_slow() {
        let (c, r) = setup("max_cost_increase = \"10%\"");
        let p = evaluate(&c.experiments[0], &r);
        assert_eq!(p.status, "blocked");
        assert!(p.reason.unwrap().contains("20% more than `b`"));
        let (c, r) = setup("max_cost_increase = \"25%\"");
        assert_eq!(evaluate(&c.experiments[0], &r).status, "ready");
        let (c, mut r) = setup("max_p95_increase = \"20%\"");
        r.variants[0].p95_ms = Some(150.0);
        let p = evaluate(&c.experiments[0], &r);
        assert_eq!(p.status, "blocked");
        assert!(p.reason.unwrap().contains("p95"));
        let (c, mut r) = setup("");
        r.decided = false;
        assert_eq!(evaluate(&c.experiments[0], &r).status, "waiting");
        r.shifts.push(super::super::store::Shift {
            ts_ms: 1,
            kind: "promoted".into(),
            variant: Some("a".into()),
            reason: "x".into(),
        });
        assert_eq!(evaluate(&c.experiments[0], &r).status, "promoted");
    }
}
