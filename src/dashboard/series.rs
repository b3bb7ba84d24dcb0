//! Spend over time: `GET /admin/spend/series?since=24h&buckets=24&by=key,model`.
//!
//! One read of the ledger's rows in the window (by the `ts_ms` index) fills every asked
//! grouping at once, so the dashboard's four charts cost one scan. Money is added up exactly
//! ([`Decimal`]) and returned as decimal strings. Each grouping keeps its [`TOP_GROUPS`]
//! costliest groups; the rest are summed into `(other)`.

use crate::ledger::report::NONE_GROUP;
use crate::ledger::GroupBy;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

/// Groups drawn per grouping; the rest are summed into [`OTHER_GROUP`].
pub const TOP_GROUPS: usize = 8;
/// The group holding everything past the top ones.
pub const OTHER_GROUP: &str = "(other)";
/// Most buckets a series may ask for.
pub const MAX_BUCKETS: usize = 240;
const DEFAULT_BUCKETS: usize = 24;

/// A parsed `/admin/spend/series` query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesQuery {
    pub since: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub buckets: usize,
    pub by: Vec<GroupBy>,
    /// Also render each grouping as an SVG chart (`charts=svg`).
    pub charts: bool,
}

/// Reads the query; unknown parameters are refused so a typo is not silently ignored.
pub fn parse_query(q: &str, now_ms: i64) -> Result<SeriesQuery, String> {
    let mut since = "24h".to_owned();
    let mut buckets = DEFAULT_BUCKETS;
    let mut by = vec![
        GroupBy::Key,
        GroupBy::Feature,
        GroupBy::Model,
        GroupBy::Provider,
    ];
    let mut charts = false;
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = crate::admin::requests::decode(v);
        match k {
            "since" => since = v,
            "buckets" => {
                buckets = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_BUCKETS).contains(n))
                    .ok_or_else(|| format!("buckets must be 1 to {MAX_BUCKETS}"))?
            }
            "by" => {
                by = v
                    .split(',')
                    .map(|s| s.parse::<GroupBy>().map_err(|e| format!("by: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                by.dedup();
            }
            "charts" if v == "svg" => charts = true,
            "charts" => return Err(format!("charts must be `svg`, not `{v}`")),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`; known: since, buckets, by, charts"
                ))
            }
        }
    }
    let since_ms = crate::ledger::parse_since(&since, now_ms).map_err(|e| format!("since: {e}"))?;
    Ok(SeriesQuery {
        since,
        since_ms,
        until_ms: now_ms,
        buckets,
        by,
        charts,
    })
}

/// One group's figures per bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSeries {
    pub group: String,
    pub cost: Vec<Decimal>,
    pub saved: Vec<Decimal>,
    pub requests: Vec<u64>,
    pub total_cost: Decimal,
    pub total_saved: Decimal,
    pub total_requests: u64,
}

impl GroupSeries {
    fn new(group: String, n: usize) -> GroupSeries {
        GroupSeries {
            group,
            cost: vec![Decimal::ZERO; n],
            saved: vec![Decimal::ZERO; n],
            requests: vec![0; n],
            total_cost: Decimal::ZERO,
            total_saved: Decimal::ZERO,
            total_requests: 0,
        }
    }

    fn add(&mut self, i: usize, cost: Option<Decimal>, saved: Option<Decimal>) {
        if let Some(c) = cost {
            self.cost[i] = self.cost[i].saturating_add(c);
            self.total_cost = self.total_cost.saturating_add(c);
        }
        if let Some(s) = saved {
            self.saved[i] = self.saved[i].saturating_add(s);
            self.total_saved = self.total_saved.saturating_add(s);
        }
        self.requests[i] += 1;
        self.total_requests += 1;
    }

    fn merge(&mut self, other: &GroupSeries) {
        for i in 0..self.cost.len() {
            self.cost[i] = self.cost[i].saturating_add(other.cost[i]);
            self.saved[i] = self.saved[i].saturating_add(other.saved[i]);
            self.requests[i] += other.requests[i];
        }
        self.total_cost = self.total_cost.saturating_add(other.total_cost);
        self.total_saved = self.total_saved.saturating_add(other.total_saved);
        self.total_requests += other.total_requests;
    }

    fn to_json(&self) -> Value {
        let money = |v: &[Decimal]| {
            v.iter()
                .map(|d| d.normalize().to_string())
                .collect::<Vec<_>>()
        };
        json!({
            "group": self.group,
            "cost_usd": money(&self.cost),
            "saved_usd": money(&self.saved),
            "requests": self.requests,
            "total_cost_usd": self.total_cost.normalize().to_string(),
            "total_saved_usd": self.total_saved.normalize().to_string(),
            "total_requests": self.total_requests,
        })
    }
}

/// Spend per bucket for each asked grouping, and the total.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket_ms: i64,
    /// Start of each bucket (unix ms).
    pub starts: Vec<i64>,
    pub by: Vec<(GroupBy, Vec<GroupSeries>)>,
    pub total: GroupSeries,
}

impl Series {
    pub fn to_json(&self) -> Value {
        let by: serde_json::Map<String, Value> = self
            .by
            .iter()
            .map(|(g, rows)| {
                let rows: Vec<Value> = rows.iter().map(GroupSeries::to_json).collect();
                (g.as_str().to_owned(), Value::Array(rows))
            })
            .collect();
        json!({
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "bucket_ms": self.bucket_ms,
            "buckets": self.starts,
            "by": by,
            "total": self.total.to_json(),
        })
    }

    fn empty(q: &SeriesQuery, since_ms: i64) -> Series {
        let span = (q.until_ms - since_ms).max(1);
        let n = i64::try_from(q.buckets).unwrap_or(1).max(1);
        let bucket_ms = ((span + n - 1) / n).max(1);
        Series {
            since_ms,
            until_ms: q.until_ms,
            bucket_ms,
            starts: (0..n).map(|i| since_ms + i * bucket_ms).collect(),
            by: q.by.iter().map(|g| (*g, Vec::new())).collect(),
            total: GroupSeries::new("TOTAL".into(), q.buckets),
        }
    }
}

/// Writes the group name of one row into `out` (no allocation once `out` has grown).
fn group_into(by: GroupBy, dims: &[Option<&str>; 4], out: &mut String) {
    let [key, feature, provider, model] = *dims;
    out.clear();
    let v = match by {
        GroupBy::Key => key,
        GroupBy::Feature => feature,
        GroupBy::Provider => provider,
        GroupBy::Model => {
            if provider.is_some() || model.is_some() {
                out.push_str(provider.unwrap_or(NONE_GROUP));
                out.push('/');
                out.push_str(model.unwrap_or(NONE_GROUP));
                return;
            }
            None
        }
        // Routes and units are not dashboard groupings; kept total-only.
        GroupBy::Route | GroupBy::Unit => None,
    };
    out.push_str(v.unwrap_or(NONE_GROUP));
}

fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<Option<&'a str>, String> {
    match r.get_ref(i).map_err(|e| e.to_string())? {
        rusqlite::types::ValueRef::Text(t) => Ok(std::str::from_utf8(t).ok()),
        _ => Ok(None),
    }
}

/// Reads the series from the ledger at `path` (an absent ledger gives empty series).
/// `since=all` starts at the oldest row.
pub fn read(path: &Path, q: &SeriesQuery) -> Result<Series, String> {
    if !path.exists() {
        return Ok(Series::empty(q, q.since_ms));
    }
    let conn = crate::ledger::store::open_reader(path).map_err(|e| e.to_string())?;
    let mut since_ms = q.since_ms;
    if since_ms == 0 {
        let oldest: Option<i64> = conn
            .query_row("SELECT MIN(ts_ms) FROM requests", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        since_ms = oldest.unwrap_or(q.until_ms).min(q.until_ms);
    }
    let mut out = Series::empty(q, since_ms);
    let n = q.buckets;
    let mut groups: Vec<HashMap<String, GroupSeries>> = vec![HashMap::new(); q.by.len()];
    // Rows are appended in time order, so the window's share of the ledger's time span is
    // about its share of rows: past a third, reading the table straight is cheaper than one
    // index probe per row.
    let (oldest, newest): (Option<i64>, Option<i64>) = conn
        .query_row("SELECT MIN(ts_ms), MAX(ts_ms) FROM requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(|e| e.to_string())?;
    let wide = match (oldest, newest) {
        (Some(o), Some(nw)) if nw > o => {
            let covered = nw.min(q.until_ms) - since_ms.max(o);
            covered.saturating_mul(3) > nw - o
        }
        _ => false,
    };
    let sql = format!(
        "SELECT ts_ms, gateway_key, feature, provider, model, cost_usd, saved_usd \
         FROM requests {} WHERE ts_ms >= ?1 AND ts_ms <= ?2",
        if wide { "NOT INDEXED" } else { "" }
    );
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let mut rows = stmt
        .query([since_ms, q.until_ms])
        .map_err(|e| e.to_string())?;
    let money = |t: Option<&str>| t.and_then(|t| Decimal::from_str(t.trim()).ok());
    let mut name = String::new();
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let ts: i64 = r.get(0).map_err(|e| e.to_string())?;
        let dims = [text(r, 1)?, text(r, 2)?, text(r, 3)?, text(r, 4)?];
        let cost = money(text(r, 5)?);
        let saved = money(text(r, 6)?);
        let i = usize::try_from((ts - since_ms) / out.bucket_ms)
            .unwrap_or(0)
            .min(n - 1);
        out.total.add(i, cost, saved);
        for (map, by) in groups.iter_mut().zip(&q.by) {
            group_into(*by, &dims, &mut name);
            match map.get_mut(name.as_str()) {
                Some(g) => g.add(i, cost, saved),
                None => {
                    let mut g = GroupSeries::new(name.clone(), n);
                    g.add(i, cost, saved);
                    map.insert(name.clone(), g);
                }
            }
        }
    }
    for ((_, rows), map) in out.by.iter_mut().zip(groups) {
        let mut all: Vec<GroupSeries> = map.into_values().collect();
        all.sort_by(|a, b| {
            b.total_cost
                .cmp(&a.total_cost)
                .then(b.total_requests.cmp(&a.total_requests))
                .then_with(|| a.group.cmp(&b.group))
        });
        if all.len() > TOP_GROUPS {
            let mut other = GroupSeries::new(OTHER_GROUP.into(), n);
            for g in all.drain(TOP_GROUPS - 1..) {
                other.merge(&g);
            }
            all.push(other);
        }
        *rows = all;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerRow;

    fn row(
        id: &str,
        ts: i64,
        key: &str,
        model: &str,
        cost: &str,
        saved: Option<&str>,
    ) -> LedgerRow {
        LedgerRow {
            request_id: id.into(),
            ts_ms: ts,
            gateway_key: Some(key.into()),
            provider: Some("openai".into()),
            model: Some(model.into()),
            endpoint: "chat_completions".into(),
            status: 200,
            cost_usd: Decimal::from_str(cost).ok(),
            saved_usd: saved.and_then(|s| Decimal::from_str(s).ok()),
            ..LedgerRow::default()
        }
    }

    #[test]
    fn queries_parse_and_refuse_typos() {
        let q = parse_query("since=2h&buckets=12&by=model,key&charts=svg", 10_000_000).unwrap();
        assert_eq!(q.since_ms, 10_000_000 - 7_200_000);
        assert_eq!(q.buckets, 12);
        assert_eq!(q.by, vec![GroupBy::Model, GroupBy::Key]);
        assert!(q.charts);
        assert_eq!(parse_query("", 5).unwrap().by.len(), 4);
        assert!(parse_query("buckets=0", 5).is_err());
        assert!(parse_query("buckets=241", 5).is_err());
        assert!(parse_query("by=colour", 5).is_err());
        assert!(parse_query("sinec=1h", 5).is_err());
        assert!(parse_query("since=yesterday", 5).is_err());
    }

    #[test]
    fn buckets_add_exact_money_per_group_and_fold_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut conn = crate::ledger::store::open_writer(&path).unwrap();
        let base = 1_000_000_000_000;
        let mut rows = vec![
            row("a1", base, "alice", "gpt", "0.1", None),
            row("a2", base + 10, "alice", "gpt", "0.2", Some("0.05")),
            row("b1", base + 3_600_000 + 5, "bob", "mini", "0.000001", None),
        ];
        for i in 0..12 {
            rows.push(row(
                &format!("z{i}"),
                base + 20,
                &format!("k{i}"),
                "gpt",
                "0",
                None,
            ));
        }
        crate::ledger::store::insert_rows(&mut conn, &rows).unwrap();
        let q = parse_query("since=all&buckets=2&by=key,model", base + 7_200_000).unwrap();
        let s = read(&path, &q).unwrap();
        assert_eq!(s.since_ms, base);
        assert_eq!(s.bucket_ms, 3_600_000);
        assert_eq!(s.starts, vec![base, base + 3_600_000]);
        assert_eq!(s.total.cost[0], Decimal::from_str("0.3").unwrap());
        assert_eq!(s.total.cost[1], Decimal::from_str("0.000001").unwrap());
        assert_eq!(s.total.saved[0], Decimal::from_str("0.05").unwrap());
        assert_eq!(s.total.total_requests, 15);
        let (by, keys) = &s.by[0];
        assert_eq!(*by, GroupBy::Key);
        assert_eq!(keys.len(), TOP_GROUPS, "the tail is folded into (other)");
        assert_eq!(keys[0].group, "alice");
        assert_eq!(keys[0].requests, vec![2, 0]);
        assert_eq!(keys.last().unwrap().group, OTHER_GROUP);
        let models = &s.by[1].1;
        assert_eq!(models[0].group, "openai/gpt");
        assert_eq!(models[1].group, "openai/mini");
        let j = s.to_json();
        assert_eq!(j["total"]["cost_usd"][0], "0.3");
        assert_eq!(j["by"]["model"][1]["cost_usd"][1], "0.000001");
        // An empty window and a missing ledger both answer with zeros.
        let q = parse_query("since=1h&buckets=3", base - 10_000_000).unwrap();
        assert_eq!(read(&path, &q).unwrap().total.total_requests, 0);
        let s = read(&dir.path().join("none.db"), &q).unwrap();
        assert_eq!(s.starts.len(), 3);
    }
}
