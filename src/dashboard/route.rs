//! The routing waterfall of one request: its route reason (the `x-switchyard-route-reason`
//! text [`crate::routing`] builds, stored in the ledger row) read back into structure, and
//! joined with the row's attempts (role, outcome, cost).
//!
//! The reason's grammar, as routing writes it: `; `-separated steps, each optional but the
//! strategy's:
//!
//! ```text
//! rules: `chat` rule 0 (has_tools=true) -> `tools`      a rules route redirected (0 or more)
//! rules: no rule matched `chat`
//! cheapest: openai/gpt=$0.0001 groq/llama=unpriced       the strategy and its scores, in order
//! fastest: a/x=120ms b/y=no-data (exploring b/y)
//! weighted: drew a/x (weights [0.7, 0.3])
//! fallback
//! removed groq/x (vision: the request has images), a/b (endpoint)
//! race: a/x won in 120ms, cancelled b/y                   the race layer's outcome
//! hedge: no leg won
//! ```
//!
//! Text that does not fit is kept whole in `unparsed`, so a newer routing's wording is shown
//! rather than lost.

use serde_json::{json, Map, Value};

/// One candidate in the order the strategy gave, with its score as written (`$0.0001`,
/// `120ms`, `unpriced`, `no-data`), when the strategy scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scored {
    pub target: String,
    pub score: Option<String>,
}

/// A candidate a filter removed before the strategy ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub target: String,
    /// The filter and its detail: `endpoint`, `unpriced`, `untranslatable`,
    /// `vision: the request has images`, `context: ...`.
    pub filter: String,
}

/// A route reason read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reason {
    /// Rules redirections, in order (`` `chat` rule 0 (has_tools=true) -> `tools` ``).
    pub rules: Vec<String>,
    /// `cheapest`, `fastest`, `weighted`, `fallback`, ...
    pub strategy: Option<String>,
    pub scored: Vec<Scored>,
    /// The strategy's remark: `exploring b/y`, `drew a/x (weights [0.7, 0.3])`.
    pub note: Option<String>,
    pub removed: Vec<Removed>,
    /// A race or hedge route's outcome: `race: a/x won in 120ms, cancelled b/y`.
    pub legs: Option<String>,
    pub unparsed: Vec<String>,
}

/// Splits `p/m (why)` into target and why.
fn removed_item(item: &str) -> Option<Removed> {
    let item = item.trim();
    let open = item.find(" (")?;
    let filter = item[open + 2..].strip_suffix(')')?;
    Some(Removed {
        target: item[..open].to_owned(),
        filter: filter.to_owned(),
    })
}

fn strategy(step: &str, out: &mut Reason) {
    let (name, rest) = match step.split_once(": ") {
        Some((n, r)) => (n, r),
        None => (step, ""),
    };
    out.strategy = Some(name.to_owned());
    if name == "weighted" {
        out.note = (!rest.is_empty()).then(|| rest.to_owned());
        if let Some(t) = rest.strip_prefix("drew ").and_then(|r| r.split(' ').next()) {
            out.scored.push(Scored {
                target: t.to_owned(),
                score: Some("drawn".to_owned()),
            });
        }
        return;
    }
    let (scores, note) = match rest.find(" (") {
        Some(i) if rest.ends_with(')') => (&rest[..i], Some(&rest[i + 2..rest.len() - 1])),
        _ => (rest, None),
    };
    out.note = note.map(str::to_owned);
    for token in scores.split(' ').filter(|t| !t.is_empty()) {
        match token.rsplit_once('=') {
            Some((target, score)) => out.scored.push(Scored {
                target: target.to_owned(),
                score: Some(score.to_owned()),
            }),
            None => out.scored.push(Scored {
                target: token.to_owned(),
                score: None,
            }),
        }
    }
}

/// Reads a route reason.
pub fn parse(text: &str) -> Reason {
    let mut out = Reason::default();
    for step in text.split("; ").map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(rule) = step.strip_prefix("rules: ") {
            out.rules.push(rule.to_owned());
        } else if let Some(list) = step.strip_prefix("removed ") {
            // Items are `target (why)`, joined by `, `; a why may hold commas itself.
            let mut items: Vec<&str> = list.split("), ").collect();
            let last = items.len() - 1;
            for (i, item) in items.iter_mut().enumerate() {
                let whole = if i < last {
                    format!("{item})")
                } else {
                    (*item).to_owned()
                };
                match removed_item(&whole) {
                    Some(r) => out.removed.push(r),
                    None => out.unparsed.push(whole),
                }
            }
        } else if step.starts_with("race: ") || step.starts_with("hedge: ") {
            out.legs = Some(step.to_owned());
        } else if out.strategy.is_none() {
            strategy(step, &mut out);
        } else {
            out.unparsed.push(step.to_owned());
        }
    }
    out
}

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The waterfall of a request as the admin API shows it (`route_plan` in
/// `GET /admin/requests/{id}`), from its row's JSON (`route_reason`, `attempts`): the rules
/// steps, the strategy, each candidate in order with its score and the attempts made at it
/// (role, outcome, ms, cost), the candidates filters removed and why, and the attempts at
/// targets the reason does not list (race and hedge legs, judge and shadow calls).
pub fn waterfall(row: &Value) -> Value {
    let reason = row
        .get("route_reason")
        .and_then(Value::as_str)
        .map(parse)
        .unwrap_or_default();
    let attempts: Vec<&Value> = row
        .get("attempts")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let target_of = |a: &Value| format!("{}/{}", text(a, "provider"), text(a, "model"));
    let leg = |(i, a): (usize, &&Value)| {
        let mut m = Map::new();
        m.insert("attempt".into(), json!(i + 1));
        for k in [
            "role",
            "status",
            "error_class",
            "ms",
            "cost_usd",
            "cost_unknown",
        ] {
            m.insert(k.into(), a.get(k).cloned().unwrap_or(Value::Null));
        }
        Value::Object(m)
    };
    let mut listed = vec![false; attempts.len()];
    let mut candidates = Vec::new();
    for (order, s) in reason.scored.iter().enumerate() {
        let legs: Vec<Value> = attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| target_of(a) == s.target)
            .inspect(|(i, _)| listed[*i] = true)
            .map(leg)
            .collect();
        candidates.push(json!({
            "order": order + 1,
            "target": s.target,
            "score": s.score,
            "attempts": legs,
        }));
    }
    // Attempts at targets the reason does not score (the fallback strategy lists none).
    let others: Vec<Value> = attempts
        .iter()
        .enumerate()
        .filter(|(i, _)| !listed[*i])
        .map(|(i, a)| {
            let mut v = leg((i, a));
            v["target"] = Value::String(target_of(a));
            v
        })
        .collect();
    json!({
        "rules": reason.rules,
        "strategy": reason.strategy,
        "note": reason.note,
        "candidates": candidates,
        "removed": reason.removed.iter().map(|r| json!({"target": r.target, "filter": r.filter})).collect::<Vec<_>>(),
        "legs": reason.legs,
        "other_attempts": others,
        "unparsed": reason.unparsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_of_a_reason_reads_back() {
        let r = parse(
            "rules: `chat` rule 1 (has_tools=true,x-tier=gold) -> `tools`; cheapest: \
             openai/gpt-4o-mini=$0.0001 groq/llama=unpriced; removed anthropic/claude (vision: \
             the request has images), gemini/flash (context: ~9000 prompt + 10 max_tokens > \
             8192), x/y (endpoint)",
        );
        assert_eq!(
            r.rules,
            vec!["`chat` rule 1 (has_tools=true,x-tier=gold) -> `tools`"]
        );
        assert_eq!(r.strategy.as_deref(), Some("cheapest"));
        assert_eq!(
            r.scored,
            vec![
                Scored {
                    target: "openai/gpt-4o-mini".into(),
                    score: Some("$0.0001".into())
                },
                Scored {
                    target: "groq/llama".into(),
                    score: Some("unpriced".into())
                },
            ]
        );
        assert_eq!(r.removed.len(), 3);
        assert_eq!(r.removed[0].target, "anthropic/claude");
        assert_eq!(r.removed[0].filter, "vision: the request has images");
        assert_eq!(
            r.removed[1].filter,
            "context: ~9000 prompt + 10 max_tokens > 8192"
        );
        assert_eq!(r.removed[2].filter, "endpoint");
        assert!(r.unparsed.is_empty());

        let f = parse("fastest: a/x=120ms b/y=no-data (exploring b/y)");
        assert_eq!(f.note.as_deref(), Some("exploring b/y"));
        assert_eq!(f.scored[1].score.as_deref(), Some("no-data"));
        let w = parse("weighted: drew a/x (weights [0.7, 0.3])");
        assert_eq!(w.scored[0].target, "a/x");
        assert_eq!(w.note.as_deref(), Some("drew a/x (weights [0.7, 0.3])"));
        let plain = parse("fallback");
        assert_eq!(plain.strategy.as_deref(), Some("fallback"));
        assert!(plain.scored.is_empty());
        assert_eq!(
            parse("fallback; something new").unparsed,
            vec!["something new"]
        );
        let race = parse("fallback; race: a/x won in 12ms, cancelled b/y, c/z");
        assert_eq!(
            race.legs.as_deref(),
            Some("race: a/x won in 12ms, cancelled b/y, c/z")
        );
        assert!(race.unparsed.is_empty());
    }

    #[test]
    fn the_waterfall_joins_candidates_with_their_attempts() {
        let row = json!({
            "route_reason": "cheapest: a/x=$0.001 b/y=$0.002; removed c/z (unpriced)",
            "attempts": [
                {"role": "failed", "provider": "a", "model": "x", "status": 503, "ms": 12.0, "cost_usd": null, "cost_unknown": false},
                {"role": "served", "provider": "b", "model": "y", "status": 200, "ms": 40.0, "cost_usd": "0.002", "cost_unknown": false},
                {"role": "hedge", "provider": "d", "model": "w", "status": 200, "ms": 30.0, "cost_usd": "0.003", "cost_unknown": false},
            ]
        });
        let w = waterfall(&row);
        assert_eq!(w["strategy"], "cheapest");
        assert_eq!(w["candidates"][0]["target"], "a/x");
        assert_eq!(w["candidates"][0]["attempts"][0]["status"], 503);
        assert_eq!(w["candidates"][1]["attempts"][0]["role"], "served");
        assert_eq!(w["candidates"][1]["attempts"][0]["cost_usd"], "0.002");
        assert_eq!(w["removed"][0]["filter"], "unpriced");
        assert_eq!(w["other_attempts"][0]["target"], "d/w");
        assert_eq!(w["other_attempts"][0]["role"], "hedge");
        assert_eq!(w["other_attempts"][0]["attempt"], 3);
        // No reason (an older row): the attempts still show.
        let w = waterfall(&json!({"attempts": [{"provider": "a", "model": "x"}]}));
        assert_eq!(w["other_attempts"][0]["target"], "a/x");
    }
}
