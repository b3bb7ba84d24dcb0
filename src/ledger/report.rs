//! Spend reports over the ledger: read-only, on their own connection, so the CLI can run them
//! against a database file without a running gateway.
//!
//! Rows are grouped in Rust (missing values as `"(none)"`; the model group is
//! `provider/model`) and money is added up with exact [`Decimal`] arithmetic, never SQL `SUM`
//! over floats. By model or provider, each attempt's tokens and cost count for its own model
//! or provider ([`spend_report_range`]). Rounding happens only for display in
//! [`SpendReport::to_table`]; [`SpendReport::to_json`] gives costs as exact decimal strings.

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

use super::attempt::{add_usage, sub_usage};
use super::store::{has_attempts_table, inline_condition, open_reader, parse_money, usage_at};
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
    /// `provider/model`: the request counts for the model that served, each attempt's
    /// tokens and cost for its own model.
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

    /// Counts the request itself: everything but its tokens and cost.
    fn count_request(&mut self, r: &RowFact) {
        self.requests += 1;
        self.errors += u64::from(r.error);
        self.cache_hits += u64::from(r.cache_hit);
        if let Some(saved) = r.saved {
            self.saved_usd = self.saved_usd.saturating_add(saved);
        }
        self.estimated_requests += u64::from(r.estimated);
        if let (Some(unit), Some(q)) = (&r.unit, r.quantity) {
            let sum = self.quantities.entry(unit.clone()).or_default();
            *sum = sum.saturating_add(q);
        }
    }

    fn add_spend(&mut self, usage: &Usage, cost: Option<Decimal>) {
        add_usage(&mut self.usage, usage);
        if let Some(cost) = cost {
            self.cost_usd = self.cost_usd.saturating_add(cost);
        }
    }

    /// `quantities` only when some row had a unit (media endpoints).
    fn to_json(&self) -> serde_json::Value {
        let mut v = json!({
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
        });
        if !self.quantities.is_empty() {
            v["quantities"] = json!(self.quantities);
        }
        v
    }
}

/// The part of a ledger row a report needs.
pub(crate) struct RowFact {
    /// The row's group (for model and provider: the one that served).
    group: String,
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

/// The part of a billed attempt a per-attempt report needs.
pub(crate) struct AttemptFact {
    group: String,
    usage: Usage,
    /// Known cost (an unknown one counts nothing here; the row is flagged instead).
    cost: Decimal,
}

/// Spend per group over `[since_ms, until_ms]`, groups sorted by cost (highest first).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpendReport {
    pub since_ms: i64,
    pub until_ms: i64,
    pub by: GroupBy,
    pub rows: Vec<SpendRow>,
    /// Every request in the window; its `group` is `"TOTAL"`. Its cost is the sum of the rows'
    /// known costs, which is also the sum of the groups' costs.
    pub total: SpendRow,
}

/// Spend grouped `by`, for requests that started at or after `since_ms` and not after now.
pub fn spend_report(path: &Path, by: GroupBy, since_ms: i64) -> Result<SpendReport, LedgerError> {
    spend_report_range(path, by, since_ms, now_ms())
}

/// The `requests` columns every report reads, as `r.`; [`row_fact`] maps them.
pub(crate) const ROW_COLUMNS: &str =
    "r.gateway_key, r.feature, r.route, r.provider, r.model, r.status, \
     r.error_class, r.cache_hit, r.input_tokens, r.output_tokens, r.cached_input_tokens, \
     r.cache_write_tokens, r.reasoning_tokens, r.cost_usd, r.cost_unknown, r.saved_usd, \
     r.estimated, r.unit, r.quantity";
/// The same for a file from before the `unit` and `quantity` columns (reports never migrate).
const ROW_COLUMNS_NO_UNITS: &str = "r.gateway_key, r.feature, r.route, r.provider, r.model, \
     r.status, r.error_class, r.cache_hit, r.input_tokens, r.output_tokens, \
     r.cached_input_tokens, r.cache_write_tokens, r.reasoning_tokens, r.cost_usd, \
     r.cost_unknown, r.saved_usd, r.estimated, NULL, NULL";
/// Columns of [`ROW_COLUMNS`].
const ROW_WIDTH: usize = 19;

/// The row columns this file has.
fn row_columns(conn: &rusqlite::Connection) -> rusqlite::Result<&'static str> {
    Ok(if super::store::has_column(conn, "unit")? {
        ROW_COLUMNS
    } else {
        ROW_COLUMNS_NO_UNITS
    })
}

/// Spend grouped `by`, for requests with `since_ms <= ts_ms <= until_ms`.
///
/// By key, feature or route, each request counts whole in its group. By model or provider,
/// each attempt's tokens and cost go to ITS model or provider (race losers, hedges, judge and
/// shadow calls count against their own), while the request itself (requests, errors, cache
/// hits, savings) counts for the one that served. A request whose cost is unknown adds no cost
/// to any group and counts in `unknown_cost_requests` of every group it touches, so the groups'
/// costs always add up to the total, the sum of the rows' known costs.
pub fn spend_report_range(
    path: &Path,
    by: GroupBy,
    since_ms: i64,
    until_ms: i64,
) -> Result<SpendReport, LedgerError> {
    let conn = open_reader(path)?;
    let mut acc = Accumulator::new(by);
    let per_attempt =
        matches!(by, GroupBy::Model | GroupBy::Provider) && has_attempts_table(&conn)?;
    if per_attempt {
        // One row per attempt (or one for a request without any), a request's attempts
        // together: the ORDER BY is unique per request, and its sort only breaks ties of
        // ts_ms (the index gives ts_ms order).
        let sql = per_attempt_sql(row_columns(&conn)?, inline_condition(&conn)?);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([since_ms, until_ms])?;
        let mut current: Option<(String, RowFact)> = None;
        let mut attempts: Vec<AttemptFact> = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(ROW_WIDTH)?;
            if current.as_ref().is_none_or(|(cur, _)| *cur != id) {
                if let Some((_, fact)) = current.take() {
                    acc.add(&fact, &attempts);
                }
                attempts.clear();
                current = Some((id, row_fact(r, by)?));
            }
            if let Some(a) = attempt_fact(r, ROW_WIDTH + 1, by)? {
                attempts.push(a);
            }
        }
        if let Some((_, fact)) = current.take() {
            acc.add(&fact, &attempts);
        }
    } else {
        let columns = row_columns(&conn)?;
        let sql = format!("SELECT {columns} FROM requests r WHERE r.ts_ms >= ?1 AND r.ts_ms <= ?2");
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([since_ms, until_ms])?;
        while let Some(r) = rows.next()? {
            acc.add(&row_fact(r, by)?, &[]);
        }
    }
    Ok(acc.finish(since_ms, until_ms))
}

/// Every request in `[?1, ?2]` joined with its attempts (one row for a request without any;
/// an inline attempt is read from the row, where `inline` holds: see [`super::inline`]).
pub(crate) fn per_attempt_sql(columns: &str, inline: &str) -> String {
    let attempt = [
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "cost_unknown",
    ]
    .map(|c| super::inline::column(c, inline))
    .join(", ");
    format!(
        "SELECT {columns}, r.request_id, {attempt} \
         FROM requests r LEFT JOIN attempts a ON a.request_id = r.request_id \
         WHERE r.ts_ms >= ?1 AND r.ts_ms <= ?2 ORDER BY r.ts_ms, r.request_id"
    )
}

/// The values of [`ROW_COLUMNS`], whatever store they were read from.
pub(crate) struct RowParts {
    pub key: Option<String>,
    pub feature: Option<String>,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: i64,
    pub error_class: Option<String>,
    pub cache_hit: bool,
    pub usage: Usage,
    pub cost: Option<String>,
    pub cost_unknown: bool,
    pub saved: Option<String>,
    pub estimated: bool,
    pub unit: Option<String>,
    pub quantity: Option<u64>,
}

impl RowParts {
    /// The row's facts, grouped `by`.
    pub(crate) fn fact(self, by: GroupBy) -> RowFact {
        let RowParts {
            key,
            feature,
            route,
            provider,
            model,
            ..
        } = self;
        let group = match by {
            GroupBy::Unit => self.unit.clone(),
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
        let cost = parse_money(self.cost);
        RowFact {
            group,
            error: self.status == 0 || self.status >= 400 || self.error_class.is_some(),
            cache_hit: self.cache_hit,
            usage: self.usage,
            cost_unknown: self.cost_unknown || cost.is_none(),
            cost,
            saved: parse_money(self.saved),
            estimated: self.estimated,
            unit: self.unit,
            quantity: self.quantity,
        }
    }
}

/// Maps [`ROW_COLUMNS`] to a [`RowFact`] grouped `by`.
fn row_fact(r: &rusqlite::Row<'_>, by: GroupBy) -> rusqlite::Result<RowFact> {
    let text = |i: usize| r.get::<_, Option<String>>(i);
    Ok(RowParts {
        key: text(0)?,
        feature: text(1)?,
        route: text(2)?,
        provider: text(3)?,
        model: text(4)?,
        status: r.get(5)?,
        error_class: text(6)?,
        cache_hit: r.get(7)?,
        usage: usage_at(r, 8)?,
        cost: text(13)?,
        cost_unknown: r.get(14)?,
        saved: text(15)?,
        estimated: r.get(16)?,
        unit: text(17)?,
        quantity: r
            .get::<_, Option<i64>>(18)?
            .map(super::store::from_sql_count),
    }
    .fact(by))
}

/// The attempt joined at column `first` (provider, model, five token counts, cost, unknown),
/// if there is one and it billed anything (failed and skipped attempts bill nothing).
fn attempt_fact(
    r: &rusqlite::Row<'_>,
    first: usize,
    by: GroupBy,
) -> rusqlite::Result<Option<AttemptFact>> {
    let Some(provider) = r.get::<_, Option<String>>(first)? else {
        return Ok(None); // a request without attempts
    };
    Ok(attempt_fact_of(
        provider,
        r.get(first + 1)?,
        usage_at(r, first + 2)?,
        r.get(first + 7)?,
        r.get(first + 8)?,
        by,
    ))
}

/// A billed attempt's facts grouped `by`; `None` when it billed nothing.
pub(crate) fn attempt_fact_of(
    provider: String,
    model: String,
    usage: Usage,
    cost: Option<String>,
    cost_unknown: bool,
    by: GroupBy,
) -> Option<AttemptFact> {
    let cost = parse_money(cost);
    let unknown = cost_unknown || cost.is_none();
    let billed = unknown || cost.is_some_and(|c| !c.is_zero()) || usage != Usage::default();
    if !billed {
        return None;
    }
    Some(AttemptFact {
        group: match by {
            GroupBy::Provider => provider,
            _ => format!("{provider}/{model}"),
        },
        usage,
        cost: if unknown {
            Decimal::ZERO
        } else {
            cost.unwrap_or_default()
        },
    })
}

/// Groups and the total, built one request at a time.
pub(crate) struct Accumulator {
    by: GroupBy,
    groups: HashMap<String, SpendRow>,
    total: SpendRow,
}

impl Accumulator {
    pub(crate) fn new(by: GroupBy) -> Accumulator {
        Accumulator {
            by,
            groups: HashMap::new(),
            total: SpendRow::new("TOTAL".to_string()),
        }
    }

    fn group(&mut self, name: &str) -> &mut SpendRow {
        self.groups
            .entry(name.to_owned())
            .or_insert_with_key(|g| SpendRow::new(g.clone()))
    }

    /// One request and its billed attempts (none: the whole row goes to its own group). The
    /// attempts' tokens and known costs go to their groups; what the row holds beyond them
    /// (normally nothing; a row recorded without attempts) goes to the row's group.
    pub(crate) fn add(&mut self, row: &RowFact, attempts: &[AttemptFact]) {
        self.total.count_request(row);
        self.total.add_spend(&row.usage, row.cost);
        self.total.unknown_cost_requests += u64::from(row.cost_unknown);
        self.group(&row.group).count_request(row);
        let mut rest_usage = row.usage;
        let mut rest_cost = row.cost;
        for a in attempts {
            rest_usage = sub_usage(&rest_usage, &a.usage);
            rest_cost = rest_cost.map(|c| c.saturating_sub(a.cost));
            // A row of unknown cost adds no cost anywhere (it is flagged below).
            let cost = row.cost.map(|_| a.cost);
            self.group(&a.group).add_spend(&a.usage, cost);
        }
        self.group(&row.group).add_spend(&rest_usage, rest_cost);
        if row.cost_unknown {
            let mut flagged: Vec<&str> = vec![&row.group];
            for a in attempts {
                if !flagged.contains(&a.group.as_str()) {
                    flagged.push(&a.group);
                }
            }
            for g in flagged {
                self.group(g).unknown_cost_requests += 1;
            }
        }
    }

    pub(crate) fn finish(self, since_ms: i64, until_ms: i64) -> SpendReport {
        let mut rows: Vec<SpendRow> = self.groups.into_values().collect();
        rows.sort_by(|a, b| {
            b.cost_usd
                .cmp(&a.cost_usd)
                .then(b.requests.cmp(&a.requests))
                .then_with(|| a.group.cmp(&b.group))
        });
        SpendReport {
            since_ms,
            until_ms,
            by: self.by,
            rows,
            total: self.total,
        }
    }
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

pub(crate) fn now_ms() -> i64 {
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
    use crate::duration::DurationError;
    let ago = match crate::duration::parse(t) {
        Ok(d) => i64::try_from(d.as_millis()).ok(),
        Err(DurationError::TooLarge(_)) => None,
        Err(_) => return Err(format!("invalid --since {t:?}: {hint}")),
    };
    ago.and_then(|ago| now_ms.checked_sub(ago))
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
