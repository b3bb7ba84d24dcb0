//! Spend reports over the ledger: read-only, on their own connection, so the CLI can run them
//! against a database file without a running gateway.
//!
//! Rows are grouped in Rust (missing values as `"(none)"`; the model group is
//! `provider/model`) and money is added up with exact [`Decimal`] arithmetic, never SQL `SUM`
//! over floats. Rounding happens only for display in [`SpendReport::to_table`];
//! [`SpendReport::to_json`] gives costs as exact decimal strings.

use crate::calendar::{civil_from_days, days_from_civil};
use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::store::{open_reader, parse_money};
use super::LedgerError;
use crate::usage::Usage;

/// Label for a missing group value.
pub const NONE_GROUP: &str = "(none)";

/// What a spend report groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Gateway key name.
    Key,
    Feature,
    /// `provider/model` (the final upstream model).
    Model,
    Provider,
    Route,
    /// What the cost is counted in (`tokens`, `images`, `seconds`, `characters`).
    Unit,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Key,
        GroupBy::Feature,
        GroupBy::Model,
        GroupBy::Provider,
        GroupBy::Route,
        GroupBy::Unit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Feature => "feature",
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::Route => "route",
            GroupBy::Unit => "unit",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "key" | "keys" | "gateway_key" => Ok(GroupBy::Key),
            "feature" | "features" => Ok(GroupBy::Feature),
            "model" | "models" => Ok(GroupBy::Model),
            "provider" | "providers" => Ok(GroupBy::Provider),
            "route" | "routes" => Ok(GroupBy::Route),
            "unit" | "units" => Ok(GroupBy::Unit),
            other => Err(format!(
                "unknown grouping {other:?}: expected key, feature, model, provider, route or unit"
            )),
        }
    }
}

/// Totals for one group (or for the whole report).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpendRow {
    pub group: String,
    pub requests: u64,
    /// Requests with no status sent, a 4xx/5xx status or an error class.
    pub errors: u64,
    pub cache_hits: u64,
    /// Token sums.
    pub usage: Usage,
    /// Exact sum of known costs (unknown costs are not in it; see `unknown_cost_requests`).
    pub cost_usd: Decimal,
    pub saved_usd: Decimal,
    pub unknown_cost_requests: u64,
    pub estimated_requests: u64,
    /// Quantities used, by unit (`images`, `seconds`, ...; rows with no unit are not in it).
    pub quantities: std::collections::BTreeMap<String, u64>,
}

impl SpendRow {
    fn new(group: String) -> SpendRow {
        SpendRow {
            group,
            ..SpendRow::default()
        }
    }

    fn add(&mut self, r: &Fact) {
        self.requests += 1;
        self.errors += u64::from(r.error);
        self.cache_hits += u64::from(r.cache_hit);
        add_usage(&mut self.usage, &r.usage);
        if let Some(cost) = r.cost {
            self.cost_usd = self.cost_usd.saturating_add(cost);
        }
        if let Some(saved) = r.saved {
            self.saved_usd = self.saved_usd.saturating_add(saved);
        }
        self.unknown_cost_requests += u64::from(r.cost_unknown);
        self.estimated_requests += u64::from(r.estimated);
        if let (Some(unit), Some(q)) = (&r.unit, r.quantity) {
            let sum = self.quantities.entry(unit.clone()).or_default();
            *sum = sum.saturating_add(q);
        }
    }

    fn merge(&mut self, other: &SpendRow) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.cache_hits += other.cache_hits;
        add_usage(&mut self.usage, &other.usage);
        self.cost_usd = self.cost_usd.saturating_add(other.cost_usd);
        self.saved_usd = self.saved_usd.saturating_add(other.saved_usd);
        self.unknown_cost_requests += other.unknown_cost_requests;
        self.estimated_requests += other.estimated_requests;
        for (unit, q) in &other.quantities {
            let sum = self.quantities.entry(unit.clone()).or_default();
            *sum = sum.saturating_add(*q);
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "group": self.group,
            "requests": self.requests,
            "errors": self.errors,
            "cache_hits": self.cache_hits,
            "input_tokens": self.usage.input,
            "output_tokens": self.usage.output,
            "cached_input_tokens": self.usage.cached_input,
            "cache_write_tokens": self.usage.cache_write,
            "reasoning_tokens": self.usage.reasoning,
            "cost_usd": self.cost_usd.to_string(),
            "saved_usd": self.saved_usd.to_string(),
            "unknown_cost_requests": self.unknown_cost_requests,
            "estimated_requests": self.estimated_requests,
            "quantities": self.quantities,
        })
    }
}

fn add_usage(sum: &mut Usage, u: &Usage) {
    sum.input = sum.input.saturating_add(u.input);
    sum.output = sum.output.saturating_add(u.output);
    sum.cached_input = sum.cached_input.saturating_add(u.cached_input);
    sum.cache_write = sum.cache_write.saturating_add(u.cache_write);
    sum.reasoning = sum.reasoning.saturating_add(u.reasoning);
}

/// The part of a ledger row a report needs.
struct Fact {
    error: bool,
    cache_hit: bool,
    usage: Usage,
    cost: Option<Decimal>,
    cost_unknown: bool,
    saved: Option<Decimal>,
    estimated: bool,
    unit: Option<String>,
    quantity: Option<u64>,
}

/// Spend per group over `[since_ms, until_ms]`, groups sorted by cost (highest first).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpendReport {
    pub since_ms: i64,
    pub until_ms: i64,
    pub by: GroupBy,
    pub rows: Vec<SpendRow>,
    /// Sum of all rows; its `group` is `"TOTAL"`.
    pub total: SpendRow,
}

/// Spend grouped `by`, for requests that started at or after `since_ms` and not after now.
pub fn spend_report(path: &Path, by: GroupBy, since_ms: i64) -> Result<SpendReport, LedgerError> {
    spend_report_range(path, by, since_ms, now_ms())
}

/// Spend grouped `by`, for requests with `since_ms <= ts_ms <= until_ms`.
pub fn spend_report_range(
    path: &Path,
    by: GroupBy,
    since_ms: i64,
    until_ms: i64,
) -> Result<SpendReport, LedgerError> {
    let conn = open_reader(path)?;
    let mut stmt = conn.prepare(
        "SELECT gateway_key, feature, route, provider, model, status, error_class, cache_hit, \
         input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
         cost_usd, cost_unknown, saved_usd, estimated, unit, quantity \
         FROM requests WHERE ts_ms >= ?1 AND ts_ms <= ?2",
    )?;
    let mut groups: HashMap<String, SpendRow> = HashMap::new();
    let mut rows = stmt.query([since_ms, until_ms])?;
    while let Some(r) = rows.next()? {
        let text = |i: usize| r.get::<_, Option<String>>(i);
        let count = |i: usize| r.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
        let (key, feature, route) = (text(0)?, text(1)?, text(2)?);
        let (provider, model) = (text(3)?, text(4)?);
        let unit = text(17)?;
        let quantity = r
            .get::<_, Option<i64>>(18)?
            .map(|n| u64::try_from(n).unwrap_or(0));
        let group = match by {
            GroupBy::Unit => unit.clone(),
            GroupBy::Key => key,
            GroupBy::Feature => feature,
            GroupBy::Route => route,
            GroupBy::Provider => provider,
            GroupBy::Model => match (provider, model) {
                (None, None) => None,
                (p, m) => Some(format!(
                    "{}/{}",
                    p.as_deref().unwrap_or(NONE_GROUP),
                    m.as_deref().unwrap_or(NONE_GROUP)
                )),
            },
        }
        .unwrap_or_else(|| NONE_GROUP.to_string());
        let status: i64 = r.get(5)?;
        let error_class = text(6)?;
        let cost = parse_money(text(13)?);
        let cost_unknown: bool = r.get(14)?;
        let fact = Fact {
            error: status == 0 || status >= 400 || error_class.is_some(),
            cache_hit: r.get(7)?,
            usage: Usage {
                input: count(8)?,
                output: count(9)?,
                cached_input: count(10)?,
                cache_write: count(11)?,
                reasoning: count(12)?,
            },
            cost_unknown: cost_unknown || cost.is_none(),
            cost,
            saved: parse_money(text(15)?),
            estimated: r.get(16)?,
            unit,
            quantity,
        };
        groups
            .entry(group)
            .or_insert_with_key(|g| SpendRow::new(g.clone()))
            .add(&fact);
    }
    let mut rows: Vec<SpendRow> = groups.into_values().collect();
    rows.sort_by(|a, b| {
        b.cost_usd
            .cmp(&a.cost_usd)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| a.group.cmp(&b.group))
    });
    let mut total = SpendRow::new("TOTAL".to_string());
    for row in &rows {
        total.merge(row);
    }
    Ok(SpendReport {
        since_ms,
        until_ms,
        by,
        rows,
        total,
    })
}

impl SpendReport {
    /// An aligned text table with a total line; costs rounded to 6 decimals for display only.
    pub fn to_table(&self) -> String {
        let header = [
            self.by.as_str(),
            "requests",
            "errors",
            "input",
            "output",
            "cached",
            "cache-write",
            "cost USD",
            "saved USD",
        ];
        let cells = |r: &SpendRow| -> [String; 9] {
            [
                r.group.clone(),
                r.requests.to_string(),
                r.errors.to_string(),
                r.usage.input.to_string(),
                r.usage.output.to_string(),
                r.usage.cached_input.to_string(),
                r.usage.cache_write.to_string(),
                money(r.cost_usd),
                money(r.saved_usd),
            ]
        };
        let body: Vec<([String; 9], u64)> = self
            .rows
            .iter()
            .map(|r| (cells(r), r.unknown_cost_requests))
            .collect();
        let total = cells(&self.total);
        let mut widths = header.map(str::len);
        for line in body.iter().map(|(c, _)| c).chain(std::iter::once(&total)) {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let format_line = |cells: &[&str], note: Option<String>| -> String {
            let mut line = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    let _ = write!(line, "{cell:<w$}");
                } else {
                    let _ = write!(line, "  {cell:>w$}");
                }
            }
            if let Some(note) = note {
                let _ = write!(line, "  {note}");
            }
            line.truncate(line.trim_end().len());
            line.push('\n');
            line
        };
        let unknown_note = |n: u64| (n > 0).then(|| format!("(+{n} unknown cost)"));

        let mut out = format!(
            "Spend by {} from {} to {}\n",
            self.by,
            format_ms(self.since_ms),
            format_ms(self.until_ms)
        );
        out.push_str(&format_line(&header, None));
        let rule_len = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        out.push_str(&"-".repeat(rule_len));
        out.push('\n');
        for (line, unknown) in &body {
            let refs: Vec<&str> = line.iter().map(String::as_str).collect();
            out.push_str(&format_line(&refs, unknown_note(*unknown)));
        }
        out.push_str(&"-".repeat(rule_len));
        out.push('\n');
        let refs: Vec<&str> = total.iter().map(String::as_str).collect();
        out.push_str(&format_line(&refs, None));
        let t = &self.total;
        if t.unknown_cost_requests > 0 {
            let _ = writeln!(
                out,
                "+ {} {} with unknown cost (not included in cost USD)",
                t.unknown_cost_requests,
                plural(t.unknown_cost_requests)
            );
        }
        if t.estimated_requests > 0 {
            let _ = writeln!(
                out,
                "~ {} {} with estimated token counts",
                t.estimated_requests,
                plural(t.estimated_requests)
            );
        }
        out
    }

    /// The report as JSON; money as exact decimal strings, tokens as numbers.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "by": self.by.as_str(),
            "rows": self.rows.iter().map(SpendRow::to_json).collect::<Vec<_>>(),
            "total": self.total.to_json(),
        })
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        "request"
    } else {
        "requests"
    }
}

/// `d` rounded (half away from zero) to 6 decimals, always showing 6.
fn money(d: Decimal) -> String {
    format!(
        "{:.6}",
        d.round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero)
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const MS_PER_DAY: i64 = 86_400_000;

/// Start of the report window from `"7d"`, `"24h"`, `"30m"`, `"45s"`, `"2w"` (ago, relative to
/// `now_ms`), a UTC date `"2026-11-01"` (its midnight), or `"all"` (0).
/// A spend query as people write it (`by = "model"`, `since = "7d"`), read against the clock.
/// The CLI and the admin port share it; errors name the parameter.
pub fn parse_query(by: &str, since: &str) -> Result<(GroupBy, i64), String> {
    let by: GroupBy = by.parse().map_err(|e| format!("by: {e}"))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since_ms = parse_since(since, now_ms).map_err(|e| format!("since: {e}"))?;
    Ok((by, since_ms))
}

pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    let hint = "expected a duration like 7d, 24h or 30m, a date like 2026-11-01, or all";
    if t.is_empty() {
        return Err(format!("empty --since: {hint}"));
    }
    if t.eq_ignore_ascii_case("all") {
        return Ok(0);
    }
    if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') && t.as_bytes().get(7) == Some(&b'-') {
        return parse_date(t).ok_or_else(|| format!("invalid date {t:?}: {hint}"));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("invalid --since {t:?}: {hint}"))?;
    let unit_ms: i64 = match unit.trim() {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => MS_PER_DAY,
        "w" => 7 * MS_PER_DAY,
        _ => return Err(format!("invalid --since {t:?}: {hint}")),
    };
    n.checked_mul(unit_ms)
        .and_then(|ago| now_ms.checked_sub(ago))
        .ok_or_else(|| format!("--since {t:?} is too far back"))
}

/// `YYYY-MM-DD` -> unix ms at 00:00 UTC.
fn parse_date(t: &str) -> Option<i64> {
    let year: i64 = t.get(0..4)?.parse().ok()?;
    let month: u32 = t.get(5..7)?.parse().ok()?;
    let day: u32 = t.get(8..10)?.parse().ok()?;
    let all_digits = t.char_indices().all(|(i, c)| {
        if i == 4 || i == 7 {
            c == '-'
        } else {
            c.is_ascii_digit()
        }
    });
    if !all_digits || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * MS_PER_DAY)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn format_ms(ms: i64) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let mins = ms.rem_euclid(MS_PER_DAY) / 60_000;
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02} UTC",
        mins / 60,
        mins % 60
    )
}
