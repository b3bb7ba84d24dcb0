//! Hourly spend rollup: `spend_hourly (hour_ms, dim, grp)` holds, for each hour and each
//! grouping of the dashboard (`total`, `key`, `feature`, `model`, `provider`), the requests,
//! tokens, exact cost and cache savings of that hour's rows. The spend-over-time charts read it
//! instead of every row ([`crate::dashboard::series`]), so a 30-day or all-time chart reads
//! about 90 rows per hour of history, whatever the traffic.
//!
//! One table per grouping rather than one row per (key, feature, model, provider) combination:
//! with 50 keys, 20 features and 12 models, nearly every request of an hour is its own
//! combination, and such a rollup would be as large as the ledger.
//!
//! The writer maintains it in the same transaction as the rows ([`super::store::insert_rows`]),
//! counting only rows actually inserted (a replayed duplicate adds nothing). A batch is first
//! summed in memory ([`Rollup`]), then each touched (hour, grouping, group) is read, added to
//! and written back once: exact decimal money cannot be added by SQLite, and a batch of 512
//! rows touches far fewer rollup rows than it has rows. Appended attempts (judge and shadow
//! calls that change a row's cost after it was written, [`super::append`]) retract the row's
//! old contribution and add its new one.
//!
//! Money is exact TEXT like the ledger's; a row with an unknown cost adds no cost and counts in
//! `unpriced`.

use std::collections::HashMap;
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rust_decimal::Decimal;

use super::report::NONE_GROUP;
use super::LedgerRow;

/// The rollup's bucket: one hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The hour (unix ms, floor) holding `ts_ms`.
pub fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The table (schema migration). `WITHOUT ROWID`: the primary key is the only index, and a
/// period's rows sit together in it.
pub(crate) const CREATE: &str = "CREATE TABLE IF NOT EXISTS spend_hourly (
        hour_ms INTEGER NOT NULL,
        dim TEXT NOT NULL,
        grp TEXT NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_usd TEXT NOT NULL,
        saved_usd TEXT NOT NULL,
        unpriced INTEGER NOT NULL,
        PRIMARY KEY (hour_ms, dim, grp)
    ) WITHOUT ROWID;";

/// A grouping of the rollup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Total,
    Key,
    Feature,
    Model,
    Provider,
}

impl Dim {
    pub const ALL: [Dim; 5] = [
        Dim::Total,
        Dim::Key,
        Dim::Feature,
        Dim::Model,
        Dim::Provider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Total => "total",
            Dim::Key => "key",
            Dim::Feature => "feature",
            Dim::Model => "model",
            Dim::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// The group a row falls in for `dim`, written into `out`: the key, feature or provider (or
/// [`NONE_GROUP`]), `provider/model` for the model, and `""` for the total.
pub fn group_into(dim: Dim, dims: &[Option<&str>; 4], out: &mut String) {
    let [key, feature, provider, model] = *dims;
    out.clear();
    let v = match dim {
        Dim::Total => return,
        Dim::Key => key,
        Dim::Feature => feature,
        Dim::Provider => provider,
        Dim::Model => {
            if provider.is_some() || model.is_some() {
                out.push_str(provider.unwrap_or(NONE_GROUP));
                out.push('/');
                out.push_str(model.unwrap_or(NONE_GROUP));
                return;
            }
            None
        }
    };
    out.push_str(v.unwrap_or(NONE_GROUP));
}

/// One rollup cell's figures (or a change to them: counts may be negative).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agg {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost: Decimal,
    pub saved: Decimal,
    pub unpriced: i64,
}

/// What one row adds to each of its cells (`sign` -1 retracts it).
#[derive(Clone, Copy, Debug)]
pub struct Contribution<'a> {
    pub ts_ms: i64,
    /// key, feature, provider, model.
    pub dims: [Option<&'a str>; 4],
    pub cost: Option<Decimal>,
    pub saved: Option<Decimal>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl<'a> Contribution<'a> {
    pub fn of(r: &'a LedgerRow) -> Contribution<'a> {
        Contribution {
            ts_ms: r.ts_ms,
            dims: [
                r.gateway_key.as_deref(),
                r.feature.as_deref(),
                r.provider.as_deref(),
                r.model.as_deref(),
            ],
            cost: r.cost_usd,
            saved: r.saved_usd,
            input_tokens: r.usage.input,
            output_tokens: r.usage.output,
        }
    }
}

/// Where a stored row sits in the rollup (its hour and groups) and its cache savings: enough
/// to move its figures when attempts are appended to it (SQLite and Postgres alike).
pub struct Place {
    pub ts_ms: i64,
    /// key, feature, provider, model.
    pub dims: [Option<String>; 4],
    pub saved: Option<Decimal>,
}

impl Place {
    fn contribution(&self, cost: Option<Decimal>, usage: &crate::usage::Usage) -> Contribution<'_> {
        Contribution {
            ts_ms: self.ts_ms,
            dims: [
                self.dims[0].as_deref(),
                self.dims[1].as_deref(),
                self.dims[2].as_deref(),
                self.dims[3].as_deref(),
            ],
            cost,
            saved: self.saved,
            input_tokens: usage.input,
            output_tokens: usage.output,
        }
    }

    /// The cells' change when the row's cost and usage go from `before` to `after`.
    pub fn moved(
        &self,
        before: (Option<Decimal>, &crate::usage::Usage),
        after: (Option<Decimal>, &crate::usage::Usage),
    ) -> Rollup {
        let mut rollup = Rollup::default();
        rollup.add(&self.contribution(before.0, before.1), -1);
        rollup.add(&self.contribution(after.0, after.1), 1);
        rollup
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Agg {
    fn add(&mut self, c: &Contribution<'_>, sign: i64) {
        self.requests += sign;
        self.input_tokens = self
            .input_tokens
            .saturating_add(sign.saturating_mul(count(c.input_tokens)));
        self.output_tokens = self
            .output_tokens
            .saturating_add(sign.saturating_mul(count(c.output_tokens)));
        let signed = |d: Decimal| if sign < 0 { -d } else { d };
        match c.cost {
            Some(d) => self.cost = self.cost.saturating_add(signed(d)),
            None => self.unpriced += sign,
        }
        if let Some(s) = c.saved {
            self.saved = self.saved.saturating_add(signed(s));
        }
    }

    fn merge(&mut self, o: &Agg) {
        self.requests += o.requests;
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cost = self.cost.saturating_add(o.cost);
        self.saved = self.saved.saturating_add(o.saved);
        self.unpriced += o.unpriced;
    }
}

/// A batch's changes to the rollup, summed in memory before they are written.
#[derive(Default, Debug)]
pub struct Rollup {
    cells: HashMap<(i64, Dim), HashMap<String, Agg>>,
    name: String,
}

impl Rollup {
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) one row.
    pub fn add(&mut self, c: &Contribution<'_>, sign: i64) {
        let hour = hour_of(c.ts_ms);
        for dim in Dim::ALL {
            group_into(dim, &c.dims, &mut self.name);
            let groups = self.cells.entry((hour, dim)).or_default();
            match groups.get_mut(self.name.as_str()) {
                Some(agg) => agg.add(c, sign),
                None => {
                    let mut agg = Agg::default();
                    agg.add(c, sign);
                    groups.insert(self.name.clone(), agg);
                }
            }
        }
    }

    /// Every touched cell: (hour, grouping, group, change).
    pub fn cells(&self) -> impl Iterator<Item = (i64, Dim, &str, &Agg)> {
        self.cells.iter().flat_map(|((hour, dim), groups)| {
            groups
                .iter()
                .map(move |(g, agg)| (*hour, *dim, g.as_str(), agg))
        })
    }
}

fn money(text: &str) -> Decimal {
    Decimal::from_str(text.trim()).unwrap_or(Decimal::ZERO)
}

/// Adds a batch's changes to `spend_hourly` (inside the caller's transaction): one read and one
/// write per touched cell.
pub(crate) fn apply(conn: &Connection, rollup: &Rollup) -> rusqlite::Result<()> {
    if rollup.is_empty() {
        return Ok(());
    }
    let mut read = conn.prepare_cached(
        "SELECT requests, input_tokens, output_tokens, cost_usd, saved_usd, unpriced \
         FROM spend_hourly WHERE hour_ms = ?1 AND dim = ?2 AND grp = ?3",
    )?;
    let mut write = conn.prepare_cached(
        "INSERT OR REPLACE INTO spend_hourly (hour_ms, dim, grp, requests, input_tokens, \
         output_tokens, cost_usd, saved_usd, unpriced) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (hour, dim, grp, change) in rollup.cells() {
        let mut cell = read
            .query_row(params![hour, dim.as_str(), grp], |r| {
                Ok(Agg {
                    requests: r.get(0)?,
                    input_tokens: r.get(1)?,
                    output_tokens: r.get(2)?,
                    cost: money(&r.get::<_, String>(3)?),
                    saved: money(&r.get::<_, String>(4)?),
                    unpriced: r.get(5)?,
                })
            })
            .optional()?
            .unwrap_or_default();
        cell.merge(change);
        write.execute(params![
            hour,
            dim.as_str(),
            grp,
            cell.requests,
            cell.input_tokens,
            cell.output_tokens,
            cell.cost.normalize().to_string(),
            cell.saved.normalize().to_string(),
            cell.unpriced,
        ])?;
    }
    Ok(())
}

/// Schema migration: creates `spend_hourly` and fills it from the rows already in the ledger
/// (streamed; the sums are kept in memory, about 90 cells per hour of history).
pub(crate) fn create_and_backfill(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(CREATE)?;
    let mut rollup = Rollup::default();
    {
        let mut stmt = tx.prepare(
            "SELECT ts_ms, gateway_key, feature, provider, model, cost_usd, saved_usd, \
             input_tokens, output_tokens FROM requests",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (key, feature, provider, model): (
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            ) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let cost: Option<String> = r.get(5)?;
            let saved: Option<String> = r.get(6)?;
            let c = Contribution {
                ts_ms: r.get(0)?,
                dims: [
                    key.as_deref(),
                    feature.as_deref(),
                    provider.as_deref(),
                    model.as_deref(),
                ],
                cost: cost.and_then(|t| Decimal::from_str(t.trim()).ok()),
                saved: saved.and_then(|t| Decimal::from_str(t.trim()).ok()),
                input_tokens: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                output_tokens: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
            };
            rollup.add(&c, 1);
        }
    }
    apply(tx, &rollup)
}

/// One rollup cell as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub hour_ms: i64,
    pub dim: Dim,
    pub grp: String,
    pub agg: Agg,
}

/// Whether the database has the rollup (readers open files of any schema version).
pub(crate) fn has_rollup(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spend_hourly')",
        [],
        |r| r.get(0),
    )
}

/// The cells of the hours in `[from_hour, to_hour]`, for `dims`, in `visit` (off the primary
/// key's range).
pub(crate) fn read_cells(
    conn: &Connection,
    from_hour: i64,
    to_hour: i64,
    dims: &[Dim],
    mut visit: impl FnMut(i64, Dim, &str, Agg),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT hour_ms, dim, grp, requests, input_tokens, output_tokens, cost_usd, saved_usd, \
         unpriced FROM spend_hourly WHERE hour_ms >= ?1 AND hour_ms <= ?2",
    )?;
    let mut rows = stmt.query([from_hour, to_hour])?;
    while let Some(r) = rows.next()? {
        let dim = match r.get_ref(1)? {
            rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(Dim::parse),
            _ => None,
        };
        let Some(dim) = dim.filter(|d| dims.contains(d)) else {
            continue;
        };
        let grp = match r.get_ref(2)? {
            rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or(""),
            _ => "",
        };
        let text = |i: usize| -> rusqlite::Result<Decimal> {
            Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Text(t) => {
                    std::str::from_utf8(t).map_or(Decimal::ZERO, money)
                }
                _ => Decimal::ZERO,
            })
        };
        let agg = Agg {
            requests: r.get(3)?,
            input_tokens: r.get(4)?,
            output_tokens: r.get(5)?,
            cost: text(6)?,
            saved: text(7)?,
            unpriced: r.get(8)?,
        };
        visit(r.get(0)?, dim, grp, agg);
    }
    Ok(())
}

/// Every cell, ordered (tests).
#[cfg(test)]
pub(crate) fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Cell>> {
    let mut out = Vec::new();
    read_cells(
        conn,
        i64::MIN,
        i64::MAX,
        &Dim::ALL,
        |hour_ms, dim, grp, agg| {
            out.push(Cell {
                hour_ms,
                dim,
                grp: grp.to_owned(),
                agg,
            })
        },
    )?;
    out.sort_by(|a, b| (a.hour_ms, a.dim, &a.grp).cmp(&(b.hour_ms, b.dim, &b.grp)));
    Ok(out)
}

#[cfg(test)]
#[path = "rollup_tests.rs"]
mod tests;
