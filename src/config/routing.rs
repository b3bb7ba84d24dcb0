//! A route's strategy (`strategy = "..."` and its tables), validated into [`StrategyConfig`].
//!
//! ```toml
//! [[routes]]
//! name = "cheap"
//! strategy = "cheapest"       # fallback (default) | cheapest | fastest | weighted | rules | race | hedge
//! targets = ["openai/gpt-4o", "openai/gpt-4o-mini"]
//! weights = [3, 1]            # weighted: one per target
//! race = { width = 2 }        # race
//! hedge = { after = "p90", max_extra = "10%" }   # hedge: "300ms" or p50/p90/p99
//! [[routes.rules]]            # rules: first match wins; no match falls through to targets
//! when = { has_tools = true, header = { "x-switchyard-task" = "summarize" } }
//! use = "tools"
//! ```

use super::error::{ConfigError, Locator};
use super::raw::{RawRoute, RawWhen};
use std::time::Duration;
use toml::Spanned;

/// How a route orders its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyConfig {
    /// Config order.
    Fallback,
    /// Lowest expected cost of this request first.
    Cheapest,
    /// Lowest predicted completion time first (from live traffic).
    Fastest,
    /// A weighted random first choice; one weight per target.
    Weighted(Vec<u32>),
    /// The first rule whose `when` matches sends the request to its route.
    Rules(Vec<Rule>),
    /// `width` targets at once; the first acceptable answer wins.
    Race { width: usize },
    /// The next target starts only when the first is slow.
    Hedge(HedgeConfig),
}

/// One `[[routes.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    pub when: When,
    /// The route the request goes to (validated to exist, and not to loop).
    pub route: String,
}

/// What a rule matches; every given condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct When {
    pub has_tools: Option<bool>,
    pub has_images: Option<bool>,
    pub prompt_tokens_over: Option<u64>,
    pub max_tokens_over: Option<u64>,
    /// Header name (lower case) and value.
    pub headers: Vec<(String, String)>,
    /// Metadata key and value (OpenAI `metadata`, Anthropic `metadata.user_id`).
    pub metadata: Vec<(String, String)>,
}

/// When a hedge starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    Fixed(Duration),
    /// The first target's live time-to-first-token quantile (50, 90 or 99).
    Quantile(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgeConfig {
    pub after: HedgeAfter,
    /// Hedged requests as a share of the route's requests, in percent.
    pub max_extra_percent: u32,
}

/// The longest a fixed hedge delay may be.
const MAX_HEDGE_AFTER: Duration = Duration::from_secs(600);

pub(super) fn strategy(
    loc: &Locator<'_>,
    r: &RawRoute,
    field: &str,
    targets: usize,
) -> Result<StrategyConfig, ConfigError> {
    let name = r.strategy.as_ref();
    let kind = name.map_or("fallback", |s| s.get_ref().as_str());
    let at = |s: Option<&Spanned<String>>| s.map_or(r.name.span(), Spanned::span);
    let unused = |present: bool, what: &str, owner: &str, span: std::ops::Range<usize>| {
        if present {
            Err(loc.error(
                span,
                format!("{field}.{what}"),
                format!("`{what}` goes with strategy = \"{owner}\", not \"{kind}\""),
            ))
        } else {
            Ok(())
        }
    };
    if kind != "weighted" {
        unused(r.weights.is_some(), "weights", "weighted", at(name))?;
    }
    if kind != "rules" {
        unused(r.rules.is_some(), "rules", "rules", at(name))?;
    }
    if kind != "race" {
        unused(r.race.is_some(), "race", "race", at(name))?;
    }
    if kind != "hedge" {
        unused(r.hedge.is_some(), "hedge", "hedge", at(name))?;
    }
    Ok(match kind {
        "fallback" => StrategyConfig::Fallback,
        "cheapest" => StrategyConfig::Cheapest,
        "fastest" => StrategyConfig::Fastest,
        "weighted" => {
            let Some(ws) = &r.weights else {
                return Err(loc.error(
                    at(name),
                    format!("{field}.weights"),
                    "strategy = \"weighted\" needs `weights`, one per target",
                ));
            };
            if ws.len() != targets {
                return Err(loc.error(
                    at(name),
                    format!("{field}.weights"),
                    format!("{} weights for {targets} targets", ws.len()),
                ));
            }
            let mut out = Vec::with_capacity(ws.len());
            for (i, w) in ws.iter().enumerate() {
                let v = *w.get_ref();
                if !(0..=1_000_000).contains(&v) {
                    return Err(loc.error(
                        w.span(),
                        format!("{field}.weights[{i}]"),
                        "a weight is a whole number from 0 to 1000000",
                    ));
                }
                out.push(v as u32);
            }
            if out.iter().all(|w| *w == 0) {
                return Err(loc.error(
                    at(name),
                    format!("{field}.weights"),
                    "at least one weight must be above 0",
                ));
            }
            StrategyConfig::Weighted(out)
        }
        "rules" => {
            let raw = r.rules.as_deref().unwrap_or_default();
            if raw.is_empty() {
                return Err(loc.error(
                    at(name),
                    format!("{field}.rules"),
                    "strategy = \"rules\" needs at least one [[routes.rules]] entry",
                ));
            }
            let mut rules = Vec::with_capacity(raw.len());
            for (i, rule) in raw.iter().enumerate() {
                let f = format!("{field}.rules[{i}]");
                rules.push(Rule {
                    when: when(loc, &rule.when, &format!("{f}.when"), rule.route.span())?,
                    route: rule.route.get_ref().clone(),
                });
            }
            StrategyConfig::Rules(rules)
        }
        "race" => {
            let Some(race) = &r.race else {
                return Err(loc.error(
                    at(name),
                    format!("{field}.race"),
                    "strategy = \"race\" needs race = { width = N }",
                ));
            };
            let w = *race.get_ref().width.get_ref();
            if w < 2 || w as usize > targets.min(8) {
                return Err(loc.error(
                    race.get_ref().width.span(),
                    format!("{field}.race.width"),
                    format!("width must be from 2 to the number of targets ({targets}), at most 8"),
                ));
            }
            StrategyConfig::Race { width: w as usize }
        }
        "hedge" => {
            let Some(h) = &r.hedge else {
                return Err(loc.error(
                    at(name),
                    format!("{field}.hedge"),
                    "strategy = \"hedge\" needs hedge = { after = \"p90\" | \"300ms\" }",
                ));
            };
            let h = h.get_ref();
            if targets < 2 {
                return Err(loc.error(
                    r.name.span(),
                    format!("{field}.targets"),
                    "a hedge needs at least two targets",
                ));
            }
            let a = h.after.get_ref().trim();
            let after = match a {
                "p50" => HedgeAfter::Quantile(50),
                "p90" => HedgeAfter::Quantile(90),
                "p99" => HedgeAfter::Quantile(99),
                _ => {
                    let d = crate::duration::parse(a).map_err(|m| {
                        loc.error(
                            h.after.span(),
                            format!("{field}.hedge.after"),
                            m.to_string(),
                        )
                    })?;
                    if d > MAX_HEDGE_AFTER || d.is_zero() {
                        return Err(loc.error(
                            h.after.span(),
                            format!("{field}.hedge.after"),
                            "after must be above 0 and at most 10m, or p50, p90 or p99",
                        ));
                    }
                    HedgeAfter::Fixed(d)
                }
            };
            let max_extra_percent = match &h.max_extra {
                None => 10,
                Some(m) => m
                    .get_ref()
                    .trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .filter(|n| *n <= 100)
                    .ok_or_else(|| {
                        loc.error(
                            m.span(),
                            format!("{field}.hedge.max_extra"),
                            "max_extra is a percentage from 0% to 100%, e.g. \"10%\"",
                        )
                    })?,
            };
            StrategyConfig::Hedge(HedgeConfig {
                after,
                max_extra_percent,
            })
        }
        other => {
            return Err(loc.error(
                at(name),
                format!("{field}.strategy"),
                format!(
                    "unknown strategy `{other}`; expected one of: fallback, cheapest, fastest, \
                     weighted, rules, race, hedge"
                ),
            ))
        }
    })
}

fn when(
    loc: &Locator<'_>,
    w: &RawWhen,
    field: &str,
    span: std::ops::Range<usize>,
) -> Result<When, ConfigError> {
    let count = |v: &Option<Spanned<i64>>, what: &str| -> Result<Option<u64>, ConfigError> {
        match v {
            None => Ok(None),
            Some(n) if *n.get_ref() >= 0 => Ok(Some(*n.get_ref() as u64)),
            Some(n) => Err(loc.error(n.span(), format!("{field}.{what}"), "must not be negative")),
        }
    };
    let pairs = |m: &Option<std::collections::BTreeMap<String, String>>, lower: bool| {
        m.iter()
            .flatten()
            .map(|(k, v)| {
                let k = if lower {
                    k.to_ascii_lowercase()
                } else {
                    k.clone()
                };
                (k, v.clone())
            })
            .collect::<Vec<_>>()
    };
    let out = When {
        has_tools: w.has_tools,
        has_images: w.has_images,
        prompt_tokens_over: count(&w.prompt_tokens_over, "prompt_tokens_over")?,
        max_tokens_over: count(&w.max_tokens_over, "max_tokens_over")?,
        headers: pairs(&w.header, true),
        metadata: pairs(&w.metadata, false),
    };
    if out == When::default() {
        return Err(loc.error(span, field, "a rule needs at least one condition in `when`"));
    }
    Ok(out)
}

/// After every route is known: each rule names a route that exists, and following rules from
/// any route never comes back to it.
pub(super) fn check_rules(
    loc: &Locator<'_>,
    raw: &[Spanned<RawRoute>],
    routes: &[super::RouteConfig],
) -> Result<(), ConfigError> {
    for (i, r) in routes.iter().enumerate() {
        let StrategyConfig::Rules(rules) = &r.strategy else {
            continue;
        };
        for (j, rule) in rules.iter().enumerate() {
            let span = raw[i].get_ref().rules.as_deref().unwrap_or_default()[j]
                .route
                .span();
            let field = format!("routes[{i}].rules[{j}].use");
            if !routes.iter().any(|q| q.name == rule.route) {
                return Err(loc.error(span, field, format!("no route named `{}`", rule.route)));
            }
            // Depth-first over rule edges from the used route: reaching `r` again is a loop.
            let mut stack = vec![rule.route.as_str()];
            let mut seen: Vec<&str> = Vec::new();
            while let Some(name) = stack.pop() {
                if name == r.name {
                    return Err(loc.error(
                        span,
                        field,
                        format!("rules loop: `{}` leads back to `{}`", rule.route, r.name),
                    ));
                }
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                if let Some(StrategyConfig::Rules(next)) =
                    routes.iter().find(|q| q.name == name).map(|q| &q.strategy)
                {
                    stack.extend(next.iter().map(|x| x.route.as_str()));
                }
            }
        }
    }
    Ok(())
}
