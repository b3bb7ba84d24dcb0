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
pub fn spent_since(
    conn: &Connection,
    column: ScopeColumn,
    name: &str,
    since_ms: i64,
) -> Result<Decimal, String> {
    let sql = format!(
        "SELECT cost_usd FROM requests WHERE {} = ?1 AND ts_ms >= ?2 AND cost_usd IS NOT NULL",
        column.column()
    );
    let mut stmt = match conn.prepare(&sql) {
        Ok(s) => s,
        Err(e) if e.to_string().contains("no such table") => return Ok(Decimal::ZERO),
        Err(e) => return Err(e.to_string()),
    };
    let rows = stmt
        .query_map(rusqlite::params![name, since_ms], |r| r.get::<_, String>(0))
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
