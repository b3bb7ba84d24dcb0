//! Spend over time: `GET /admin/spend/series?since=24h&buckets=24&by=key,model`.
//!
//! Buckets of an hour or more are read from the ledger's hourly rollup
//! ([`crate::ledger::rollup`]: about 90 cells per hour of history, whatever the traffic), on the
//! hour grid, with the window's first partial hour read from the rows themselves, so a 30-day
//! or all-time chart over a million rows reads tens of thousands of cells, not a million rows.
//! Shorter buckets (periods under a day) read the rows in the window (by the `ts_ms` index).
//! Either way one read fills every asked grouping at once. Money is added up exactly
//! ([`Decimal`]) and returned as decimal strings. Each grouping keeps its [`TOP_GROUPS`]
//! costliest groups; the rest are summed into `(other)`.

use crate::ledger::report::NONE_GROUP;
use crate::ledger::rollup::{group_into, hour_of, Agg, Dim, HOUR_MS};
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

    fn add(&mut self, i: usize, cost: Option<Decimal>, saved: Option<Decimal>, requests: u64) {
        if let Some(c) = cost {
            self.cost[i] = self.cost[i].saturating_add(c);
            self.total_cost = self.total_cost.saturating_add(c);
        }
        if let Some(s) = saved {
            self.saved[i] = self.saved[i].saturating_add(s);
            self.total_saved = self.total_saved.saturating_add(s);
        }
        self.requests[i] += requests;
        self.total_requests += requests;
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
        Series::on_grid(q, since_ms, since_ms, bucket_ms, q.buckets)
    }

    fn on_grid(
        q: &SeriesQuery,
        since_ms: i64,
        grid_ms: i64,
        bucket_ms: i64,
        count: usize,
    ) -> Series {
        Series {
            since_ms,
            until_ms: q.until_ms,
            bucket_ms,
            starts: (0..count as i64).map(|i| grid_ms + i * bucket_ms).collect(),
            by: q.by.iter().map(|g| (*g, Vec::new())).collect(),
            total: GroupSeries::new("TOTAL".into(), count),
        }
    }
}

/// The rollup's grouping for a series grouping.
fn dim_of(by: GroupBy) -> Option<Dim> {
    match by {
        GroupBy::Key => Some(Dim::Key),
        GroupBy::Feature => Some(Dim::Feature),
        GroupBy::Model => Some(Dim::Model),
        GroupBy::Provider => Some(Dim::Provider),
        GroupBy::Route | GroupBy::Unit => None,
    }
}

/// How a series' window is read: its bucket grid, and which part comes from the rows and
/// which from the hourly rollup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub since_ms: i64,
    /// Start of the first bucket (`since_ms`, or the hour holding it on the rollup's grid).
    pub grid_ms: i64,
    pub bucket_ms: i64,
    pub count: usize,
    /// Rows in `[since_ms, rows_until)` are read one by one (`rows_until <= since_ms`: none).
    pub rows_until: i64,
    /// Rollup hours from this one to `until_ms` are read from the rollup; `None`: no rollup.
    pub rollup_from: Option<i64>,
}

impl Plan {
    /// The plan for `q` starting at `since_ms` (the oldest row's time for `since=all`). With
    /// a rollup and buckets of an hour or more, buckets are whole hours on the hour grid: whole
    /// hours in the window come from the rollup, the window's first partial hour from the rows
    /// (at most an hour of them). Shorter buckets read the rows.
    pub fn new(q: &SeriesQuery, since_ms: i64, has_rollup: bool) -> Plan {
        let span = (q.until_ms - since_ms).max(1);
        let n = i64::try_from(q.buckets).unwrap_or(1).max(1);
        let bucket_ms = ((span + n - 1) / n).max(1);
        if !has_rollup || bucket_ms < HOUR_MS {
            return Plan {
                since_ms,
                grid_ms: since_ms,
                bucket_ms,
                count: q.buckets,
                rows_until: q.until_ms.saturating_add(1),
                rollup_from: None,
            };
        }
        let bucket_ms = (bucket_ms + HOUR_MS - 1) / HOUR_MS * HOUR_MS;
        let grid_ms = hour_of(since_ms);
        // Buckets up to `until_ms`; a row at exactly `until_ms` on a boundary joins the last.
        let count = usize::try_from((q.until_ms - grid_ms + bucket_ms - 1) / bucket_ms)
            .unwrap_or(1)
            .max(1);
        // `since=all` starts at the oldest row: its whole hour is in the window.
        let first_whole = if q.since_ms == 0 || since_ms == grid_ms {
            grid_ms
        } else {
            grid_ms + HOUR_MS
        };
        Plan {
            since_ms,
            grid_ms,
            bucket_ms,
            count,
            rows_until: first_whole.min(q.until_ms.saturating_add(1)),
            rollup_from: Some(first_whole),
        }
    }

    fn index(&self, ts_ms: i64) -> usize {
        usize::try_from((ts_ms - self.grid_ms) / self.bucket_ms)
            .unwrap_or(0)
            .min(self.count.saturating_sub(1))
    }
}

/// Fills a series from rows and rollup cells, whichever store they come from.
pub struct Filler {
    plan: Plan,
    out: Series,
    groups: Vec<HashMap<String, GroupSeries>>,
    dims: Vec<Option<Dim>>,
    name: String,
}

impl Filler {
    pub fn new(q: &SeriesQuery, plan: Plan) -> Filler {
        Filler {
            plan,
            out: Series::on_grid(q, plan.since_ms, plan.grid_ms, plan.bucket_ms, plan.count),
            groups: vec![HashMap::new(); q.by.len()],
            dims: q.by.iter().map(|b| dim_of(*b)).collect(),
            name: String::new(),
        }
    }

    /// The rollup groupings this series needs (the total always).
    pub fn rollup_dims(&self) -> Vec<Dim> {
        std::iter::once(Dim::Total)
            .chain(self.dims.iter().flatten().copied())
            .collect()
    }

    /// Adds figures to group `self.name` of grouping `j` at bucket `i`.
    fn add_to(
        &mut self,
        j: usize,
        i: usize,
        cost: Option<Decimal>,
        saved: Option<Decimal>,
        requests: u64,
    ) {
        let map = &mut self.groups[j];
        match map.get_mut(self.name.as_str()) {
            Some(g) => g.add(i, cost, saved, requests),
            None => {
                let mut g = GroupSeries::new(self.name.clone(), self.plan.count);
                g.add(i, cost, saved, requests);
                map.insert(self.name.clone(), g);
            }
        }
    }

    /// One ledger row: its time, (key, feature, provider, model), cost and savings.
    pub fn row(
        &mut self,
        ts_ms: i64,
        dims: &[Option<&str>; 4],
        cost: Option<Decimal>,
        saved: Option<Decimal>,
    ) {
        let i = self.plan.index(ts_ms);
        self.out.total.add(i, cost, saved, 1);
        for j in 0..self.dims.len() {
            match self.dims[j] {
                Some(d) => group_into(d, dims, &mut self.name),
                None => {
                    self.name.clear();
                    self.name.push_str(NONE_GROUP);
                }
            }
            self.add_to(j, i, cost, saved, 1);
        }
    }

    /// One rollup cell: an hour's figures for one group of one grouping.
    pub fn cell(&mut self, hour_ms: i64, dim: Dim, grp: &str, agg: &Agg) {
        let i = self.plan.index(hour_ms);
        let requests = u64::try_from(agg.requests).unwrap_or(0);
        if dim == Dim::Total {
            self.out
                .total
                .add(i, Some(agg.cost), Some(agg.saved), requests);
            // Groupings the rollup does not keep count everything under `(none)`.
            for j in 0..self.dims.len() {
                if self.dims[j].is_none() {
                    self.name.clear();
                    self.name.push_str(NONE_GROUP);
                    self.add_to(j, i, Some(agg.cost), Some(agg.saved), requests);
                }
            }
            return;
        }
        for j in 0..self.dims.len() {
            if self.dims[j] == Some(dim) {
                self.name.clear();
                self.name.push_str(grp);
                self.add_to(j, i, Some(agg.cost), Some(agg.saved), requests);
            }
        }
    }

    /// The series, each grouping's costliest [`TOP_GROUPS`] kept and the rest folded.
    pub fn finish(self) -> Series {
        let n = self.plan.count;
        let mut out = self.out;
        for ((_, rows), map) in out.by.iter_mut().zip(self.groups) {
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
        out
    }
}

fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<Option<&'a str>, String> {
    match r.get_ref(i).map_err(|e| e.to_string())? {
        rusqlite::types::ValueRef::Text(t) => Ok(std::str::from_utf8(t).ok()),
        _ => Ok(None),
    }
}

/// Reads the series from the SQLite ledger at `path` (an absent ledger gives empty series).
/// `since=all` starts at the oldest row. The rows and the rollup are read in one read
/// transaction, so they agree.
pub fn read(path: &Path, q: &SeriesQuery) -> Result<Series, String> {
    if !path.exists() {
        return Ok(Series::empty(q, q.since_ms));
    }
    let err = |e: rusqlite::Error| e.to_string();
    let conn = crate::ledger::store::open_reader(path).map_err(|e| e.to_string())?;
    let _snapshot = conn.unchecked_transaction().map_err(err)?;
    let (oldest, newest): (Option<i64>, Option<i64>) = conn
        .query_row("SELECT MIN(ts_ms), MAX(ts_ms) FROM requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    let since_ms = if q.since_ms == 0 {
        oldest.unwrap_or(q.until_ms).min(q.until_ms)
    } else {
        q.since_ms
    };
    let has_rollup = crate::ledger::rollup::has_rollup(&conn).map_err(err)?;
    let plan = Plan::new(q, since_ms, has_rollup);
    let mut fill = Filler::new(q, plan);
    if plan.rows_until > since_ms {
        // Rows are appended in time order, so the window's share of the ledger's time span is
        // about its share of rows: past a third, reading the table straight is cheaper than
        // one index probe per row.
        let wide = match (oldest, newest) {
            (Some(o), Some(nw)) if nw > o => {
                let covered = nw.min(plan.rows_until) - since_ms.max(o);
                covered.saturating_mul(3) > nw - o
            }
            _ => false,
        };
        let sql = format!(
            "SELECT ts_ms, gateway_key, feature, provider, model, cost_usd, saved_usd \
             FROM requests {} WHERE ts_ms >= ?1 AND ts_ms < ?2",
            if wide { "NOT INDEXED" } else { "" }
        );
        let mut stmt = conn.prepare(&sql).map_err(err)?;
        let mut rows = stmt.query([since_ms, plan.rows_until]).map_err(err)?;
        let money = |t: Option<&str>| t.and_then(|t| Decimal::from_str(t.trim()).ok());
        while let Some(r) = rows.next().map_err(err)? {
            let ts: i64 = r.get(0).map_err(err)?;
            let dims = [text(r, 1)?, text(r, 2)?, text(r, 3)?, text(r, 4)?];
            fill.row(ts, &dims, money(text(r, 5)?), money(text(r, 6)?));
        }
    }
    if let Some(from) = plan.rollup_from {
        let dims = fill.rollup_dims();
        crate::ledger::rollup::read_cells(&conn, from, q.until_ms, &dims, |h, d, g, a| {
            fill.cell(h, d, g, &a)
        })
        .map_err(err)?;
    }
    Ok(fill.finish())
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
        // On the hour: the rollup's grid is the window's.
        let base = 277_778 * HOUR_MS;
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

    #[test]
    fn the_rollup_path_equals_a_sum_over_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut conn = crate::ledger::store::open_writer(&path).unwrap();
        // Four days of rows at uneven times, `now` not on the hour.
        let now = 1_000_000_000_000 + 37 * 60_000 + 123;
        let keys = ["alice", "bob", "carol"];
        let models = ["gpt", "mini"];
        let rows: Vec<LedgerRow> = (0..2000i64)
            .map(|i| {
                let ts = now - 4 * 86_400_000 + i * 172_811 + (i * i) % 9_999;
                let cost = format!("0.{:06}", (i * 7919) % 1_000_000);
                let saved = (i % 5 == 0).then_some("0.000003");
                row(
                    &format!("r{i:05}"),
                    ts,
                    keys[(i % 3) as usize],
                    models[(i % 2) as usize],
                    &cost,
                    saved,
                )
            })
            .collect();
        for chunk in rows.chunks(97) {
            crate::ledger::store::insert_rows(&mut conn, chunk).unwrap();
        }
        for since in ["24h", "2d", "7d", "all"] {
            let q = parse_query(&format!("since={since}&buckets=24&by=key,model"), now).unwrap();
            let s = read(&path, &q).unwrap();
            let since_ms = if q.since_ms == 0 {
                rows[0].ts_ms
            } else {
                q.since_ms
            };
            let plan = Plan::new(&q, since_ms, true);
            assert!(plan.rollup_from.is_some(), "{since}: read from the rollup");
            assert_eq!(s.starts.len(), plan.count);
            assert_eq!(
                s.starts[0] % HOUR_MS,
                0,
                "{since}: buckets on the hour grid"
            );
            assert!(s.starts[0] <= since_ms && *s.starts.last().unwrap() <= now);
            let mut cost = vec![Decimal::ZERO; plan.count];
            let mut saved = vec![Decimal::ZERO; plan.count];
            let mut requests = vec![0u64; plan.count];
            let mut alice = Decimal::ZERO;
            for r in rows
                .iter()
                .filter(|r| r.ts_ms >= since_ms && r.ts_ms <= now)
            {
                let i = plan.index(r.ts_ms);
                cost[i] += r.cost_usd.unwrap();
                saved[i] += r.saved_usd.unwrap_or_default();
                requests[i] += 1;
                if r.gateway_key.as_deref() == Some("alice") {
                    alice += r.cost_usd.unwrap();
                }
            }
            assert_eq!(s.total.cost, cost, "{since}");
            assert_eq!(s.total.saved, saved, "{since}");
            assert_eq!(s.total.requests, requests, "{since}");
            let a = s.by[0].1.iter().find(|g| g.group == "alice").unwrap();
            assert_eq!(a.total_cost, alice, "{since}");
            let models: u64 = s.by[1].1.iter().map(|g| g.total_requests).sum();
            assert_eq!(models, requests.iter().sum::<u64>());
        }
        // Short buckets read the rows, on a grid starting at `since`.
        let q = parse_query("since=6h&buckets=24", now).unwrap();
        let s = read(&path, &q).unwrap();
        assert_eq!(s.starts[0], now - 6 * HOUR_MS);
        assert_eq!(s.starts.len(), 24);
        let n = rows
            .iter()
            .filter(|r| r.ts_ms >= now - 6 * HOUR_MS && r.ts_ms <= now)
            .count();
        assert_eq!(s.total.total_requests, n as u64);
    }
}
