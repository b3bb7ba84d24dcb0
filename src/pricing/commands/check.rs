//! `switchyard prices check --config FILE`: every model a config can send calls to (route
//! targets and providers' listed models), with what is missing or stale about its price and
//! capabilities.

use super::super::{provider_names, Lifecycle, PriceBook, PriceDate, UnpricedPolicy};
use crate::config::Config;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One provider + model the config can call, and where the config names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `provider/model` as configured.
    pub target: String,
    /// Where: `route "chat"`, `providers[0].models`.
    pub used_by: Vec<String>,
    /// What must be fixed, one sentence each: no price, no capabilities, a stale price, a
    /// deprecated or retired model.
    pub problems: Vec<String>,
    /// Worth knowing, not wrong: prices marked uncertain.
    pub notes: Vec<String>,
}

/// Checks every target of `config` on `today`; a price whose `checked` date is more than
/// `max_age_days` old is stale. Only targets with a problem or a note are returned.
pub fn check(config: &Config, today: PriceDate, max_age_days: i64) -> Vec<Finding> {
    let book: &PriceBook = &config.pricing.book;
    // (provider index, model) -> places, in config order.
    let mut targets: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for r in &config.routes {
        for t in &r.targets {
            targets
                .entry((t.provider, t.model.clone()))
                .or_default()
                .push(format!("route \"{}\"", r.name));
        }
    }
    for (i, p) in config.providers.iter().enumerate() {
        for m in &p.models {
            targets
                .entry((i, m.clone()))
                .or_default()
                .push(format!("providers[{i}].models"));
        }
    }
    let mut out = Vec::new();
    for ((provider, model), used_by) in targets {
        let p = &config.providers[provider];
        let names = provider_names(p);
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        match book.lookup_for(&names, &model, today) {
            None => problems.push(match config.pricing.unpriced {
                UnpricedPolicy::Reject => {
                    "no price: calls to it are refused (pricing.unpriced = \"reject\")".to_owned()
                }
                UnpricedPolicy::RecordUnknown => {
                    "no price: its calls are recorded with an unknown cost".to_owned()
                }
            }),
            Some(price) => {
                let age = today.days_since_epoch() - price.checked.days_since_epoch();
                if age > max_age_days {
                    problems.push(format!(
                        "price (effective {}) last checked {} ({age} days ago, more than \
                         {max_age_days}); source: {}",
                        price.effective, price.checked, price.source
                    ));
                }
                if let Some(u) = &price.uncertain {
                    notes.push(format!("price uncertain: {u}"));
                }
            }
        }
        match book.model_info_for(&names, &model) {
            None => problems.push(
                "no capabilities (context window, output limit, features): add a [[models]] \
                 entry to pricing.overrides"
                    .to_owned(),
            ),
            Some(info) => {
                if let Some(state) = info.lifecycle(today).describe() {
                    let what = match info.lifecycle(today) {
                        Lifecycle::Retired { .. } => "calls to it fail upstream; move the route",
                        _ => "move the route before it is retired",
                    };
                    problems.push(format!("{state}: {what}"));
                }
            }
        }
        if !problems.is_empty() || !notes.is_empty() {
            out.push(Finding {
                target: format!("{}/{model}", p.name),
                used_by,
                problems,
                notes,
            });
        }
    }
    out
}

/// The findings as text, with a summary line.
pub fn render(findings: &[Finding], targets: usize) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "{} ({})", f.target, f.used_by.join(", "));
        for p in &f.problems {
            let _ = writeln!(out, "  - {p}");
        }
        for n in &f.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    let bad = findings.iter().filter(|f| !f.problems.is_empty()).count();
    let _ = writeln!(out, "{bad} of {targets} targets need attention");
    out
}

/// How many distinct provider + model targets `config` has.
pub fn target_count(config: &Config) -> usize {
    let mut all: Vec<(usize, &str)> = config
        .routes
        .iter()
        .flat_map(|r| r.targets.iter().map(|t| (t.provider, t.model.as_str())))
        .chain(
            config
                .providers
                .iter()
                .enumerate()
                .flat_map(|(i, p)| p.models.iter().map(move |m| (i, m.as_str()))),
        )
        .collect();
    all.sort_unstable();
    all.dedup();
    all.len()
}

/// Parses `--max-age`: whole days (`180d`) or weeks (`26w`).
pub fn parse_age(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not an age; write e.g. 180d or 26w"))?;
    match unit {
        "d" => Ok(n),
        "w" => n
            .checked_mul(7)
            .ok_or_else(|| format!("`{t}` is too large")),
        _ => Err(format!(
            "`{t}`: the unit must be d (days) or w (weeks), e.g. 180d"
        )),
    }
}
