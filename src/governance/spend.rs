//! Spend on record in the ledger, per key or feature and period: what `keys list` and the
//! admin API report as "spent this period", and what the in-memory limit store starts from
//! (so a restart does not give a budget back).

use super::rules::{to_nanos, Budget};
use rusqlite::{Connection, OpenFlags};
use rust_decimal::Decimal;
use std::path::Path;
use std::str::FromStr;

/// Which ledger column names the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeColumn {
    Key,
    Feature,
}

impl ScopeColumn {
    fn column(self) -> &'static str {
        match self {
            ScopeColumn::Key => "gateway_key",
            ScopeColumn::Feature => "feature",
        }
    }

    /// The limit store's id for a scope of this kind.
    pub fn scope_id(self, name: &str) -> String {
        match self {
            ScopeColumn::Key => format!("key:{name}"),
            ScopeColumn::Feature => format!("feature:{name}"),
        }
    }
}

/// Opens the ledger read-only; `None` when there is no ledger yet.
pub fn open(path: &Path) -> Result<Option<Connection>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(Some(conn))
}

/// Exact settled spend of `name` since `since_ms` (unix ms). No ledger table yet: zero.
///
/// Whole hours come from the hourly rollup (`spend_hourly`, kept by the ledger's writer with
/// the rows), the part of an hour before the first whole one from the rows by their time
/// index. The ledger keeps no (key, time) index for this: it was one more B-tree insert per
/// request, for a read made when a key is loaded.
pub fn spent_since(
    conn: &Connection,
    column: ScopeColumn,
    name: &str,
    since_ms: i64,
) -> Result<Decimal, String> {
    use crate::ledger::rollup::{has_rollup, hour_of, read_cells, Dim, HOUR_MS};
    let dim = match column {
        ScopeColumn::Key => Dim::Key,
        ScopeColumn::Feature => Dim::Feature,
    };
    // The rollup groups rows without a key or feature as `(none)`: such a name reads the rows.
    let rollup =
        name != crate::ledger::report::NONE_GROUP && has_rollup(conn).map_err(|e| e.to_string())?;
    if !rollup {
        return sum_rows(conn, column, name, since_ms, i64::MAX);
    }
    let first_hour = match hour_of(since_ms) {
        h if h < since_ms => h.saturating_add(HOUR_MS),
        h => h,
    };
    let mut total = sum_rows(conn, column, name, since_ms, first_hour)?;
    read_cells(conn, first_hour, i64::MAX, &[dim], |_, _, grp, agg| {
        if grp == name {
            total = total.saturating_add(agg.cost);
        }
    })
    .map_err(|e| e.to_string())?;
    Ok(total)
}

/// The settled cost of `name`'s rows with `since_ms <= ts_ms < until_ms`, off the time index
/// (the unary `+` keeps SQLite from choosing the name's own index, which holds every row of
/// the name whatever its time).
fn sum_rows(
    conn: &Connection,
    column: ScopeColumn,
    name: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<Decimal, String> {
    if since_ms >= until_ms {
        return Ok(Decimal::ZERO);
    }
    let sql = format!(
        "SELECT cost_usd FROM requests WHERE +{} = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 \
         AND cost_usd IS NOT NULL",
        column.column()
    );
    let mut stmt = match conn.prepare(&sql) {
        Ok(s) => s,
        Err(e) if e.to_string().contains("no such table") => return Ok(Decimal::ZERO),
        Err(e) => return Err(e.to_string()),
    };
    let rows = stmt
        .query_map(rusqlite::params![name, since_ms, until_ms], |r| {
            r.get::<_, String>(0)
        })
        .map_err(|e| e.to_string())?;
    let mut total = Decimal::ZERO;
    for r in rows {
        let text = r.map_err(|e| e.to_string())?;
        if let Ok(d) = Decimal::from_str(text.trim()) {
            total += d;
        }
    }
    Ok(total)
}

/// Spend of the period of `budget` that contains `now_ms`, in nano-dollars.
pub fn period_spend_nanos(
    conn: &Connection,
    column: ScopeColumn,
    name: &str,
    budget: &Budget,
    now_ms: i64,
) -> Result<i64, String> {
    let (start, _) = budget.period.bounds(now_ms);
    let spent = spent_since(conn, column, name, start)?;
    Ok(to_nanos(spent).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::rollup::HOUR_MS;
    use crate::ledger::store::{insert_rows, open_writer};
    use crate::ledger::LedgerRow;

    fn row(
        id: &str,
        ts_ms: i64,
        key: Option<&str>,
        feature: &str,
        cost: Option<&str>,
    ) -> LedgerRow {
        LedgerRow {
            request_id: id.into(),
            ts_ms,
            gateway_key: key.map(str::to_owned),
            feature: Some(feature.into()),
            endpoint: "chat_completions".into(),
            status: 200,
            cost_usd: cost.map(|c| Decimal::from_str(c).expect("decimal")),
            cost_unknown: cost.is_none(),
            ..LedgerRow::default()
        }
    }

    #[test]
    fn spend_since_adds_the_part_hour_from_rows_and_whole_hours_from_the_rollup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("l.db");
        let h = 1_000 * HOUR_MS;
        let since = h + HOUR_MS / 2; // half past: half an hour of rows, then whole hours
        let rows = [
            row("a", since - 1, Some("k"), "f", Some("100")), // before the period
            row("b", since, Some("k"), "f", Some("0.001")),   // first instant of it
            row("c", h + HOUR_MS - 1, Some("k"), "g", Some("0.02")),
            row("d", h + HOUR_MS, Some("k"), "f", Some("0.3")), // first whole hour
            row("e", h + 5 * HOUR_MS + 7, Some("k"), "f", Some("4")),
            row("f", h + 5 * HOUR_MS, Some("other"), "f", Some("50")),
            row("g", h + 2 * HOUR_MS, Some("k"), "f", None), // unpriced: no cost
        ];
        let mut conn = open_writer(&path).expect("open");
        insert_rows(&mut conn, &rows).expect("insert");
        let read = |column, name: &str, since_ms| {
            spent_since(&conn, column, name, since_ms).expect("spent")
        };
        let dec = |s: &str| Decimal::from_str(s).expect("decimal");
        assert_eq!(read(ScopeColumn::Key, "k", since), dec("4.321"));
        assert_eq!(read(ScopeColumn::Key, "other", since), dec("50"));
        assert_eq!(read(ScopeColumn::Feature, "f", since), dec("54.301"));
        assert_eq!(read(ScopeColumn::Feature, "g", since), dec("0.02"));
        // Since an hour's start: whole hours only.
        assert_eq!(read(ScopeColumn::Key, "k", h + HOUR_MS), dec("4.3"));
        assert_eq!(read(ScopeColumn::Key, "k", 0), dec("104.321"));
        assert_eq!(read(ScopeColumn::Key, "nobody", 0), Decimal::ZERO);
    }
}
