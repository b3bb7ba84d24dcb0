//! SQLite side of the ledger: connection set-up, inserts and reads. The schema and its
//! migrations are in [`super::schema`].
//!
//! A row is one `requests` row plus its `attempts` rows (`idx` 0, 1, ... in the row's order),
//! inserted in the same transaction.
//!
//! Column notes: token counts are INTEGER (saturated at `i64::MAX`), booleans are 0/1, money
//! (`cost_usd`, `saved_usd`) is the exact decimal as TEXT (never REAL), timings are REAL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Row, Statement, TransactionBehavior,
};
use rust_decimal::Decimal;

use super::legacy::{attempts_from_v2, V2Row};
use super::schema::{check_not_newer, migrate, user_version};
use super::{LedgerAttempt, LedgerError, LedgerRow, Role};
use crate::usage::Usage;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every column, in table order; shared by the INSERT and the SELECTs.
const COLUMNS: &str = "request_id, ts_ms, gateway_key, feature, route, endpoint, requested_model, \
     provider, model, attempt_count, status, error_class, cache_hit, stream, \
     input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     cost_usd, cost_unknown, saved_usd, estimated, ttft_ms, total_ms, unit, quantity, \
     route_reason, reserved_usd";

const INSERT: &str = "INSERT OR IGNORE INTO requests (request_id, ts_ms, gateway_key, feature, \
     route, endpoint, requested_model, provider, model, attempt_count, status, \
     error_class, cache_hit, stream, input_tokens, output_tokens, cached_input_tokens, \
     cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown, saved_usd, estimated, \
     ttft_ms, total_ms, unit, quantity, route_reason, reserved_usd, served_inline, \
     served_key_index, served_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
     ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, \
     ?31, ?32)";

/// The `attempts` columns after `request_id, idx`, in table order.
const ATTEMPT_COLUMNS: &str = "role, provider, model, key_index, status, error_class, ms, \
     input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     cost_usd, cost_unknown";

const INSERT_ATTEMPT: &str = "INSERT OR IGNORE INTO attempts (request_id, idx, role, provider, \
     model, key_index, status, error_class, ms, input_tokens, output_tokens, \
     cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/// Opens (creating it and its directories if needed) the database for writing: WAL journal,
/// `synchronous=NORMAL`, busy timeout, schema migrated to [`super::SCHEMA_VERSION`].
pub(crate) fn open_writer(path: &Path) -> Result<Connection, LedgerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with the resulting mode; a read of the row is required.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens an existing database read-only (reports; never creates or migrates anything).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::NotFound(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    check_not_newer(user_version(&conn)?)?;
    Ok(conn)
}

/// What one [`insert_rows`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    pub new: u64,
    pub duplicates: u64,
}

/// Inserts `rows` in one transaction; rows whose `request_id` already exists are ignored and
/// counted as duplicates. The hourly rollup ([`super::rollup`]) gets the new rows in the same
/// transaction. On error nothing is committed.
pub(crate) fn insert_rows<'a>(
    conn: &mut Connection,
    rows: impl IntoIterator<Item = &'a LedgerRow>,
) -> rusqlite::Result<Inserted> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Inserted::default();
    let mut rollup = super::rollup::Rollup::default();
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        let mut attempt_stmt = prepare_insert_attempt(&tx)?;
        for r in rows {
            let inline = super::inline::inline_attempt(r);
            let changed = stmt.execute(params![
                r.request_id,
                r.ts_ms,
                r.gateway_key,
                r.feature,
                r.route,
                r.endpoint,
                r.requested_model,
                r.provider,
                r.model,
                r.attempt_count,
                r.status,
                r.error_class,
                r.cache_hit,
                r.stream,
                to_sql_count(r.usage.input),
                to_sql_count(r.usage.output),
                to_sql_count(r.usage.cached_input),
                to_sql_count(r.usage.cache_write),
                to_sql_count(r.usage.reasoning),
                r.cost_usd.map(|d| d.to_string()),
                r.cost_unknown,
                r.saved_usd.map(|d| d.to_string()),
                r.estimated,
                r.ttft_ms,
                r.total_ms,
                r.unit,
                r.quantity.map(to_sql_count),
                r.route_reason,
                r.reserved_usd.map(|d| d.to_string()),
                inline.is_some(),
                inline.and_then(|a| a.key_index),
                inline.and_then(|a| a.ms),
            ])?;
            if changed == 0 {
                done.duplicates += 1;
            } else {
                done.new += 1;
                if inline.is_none() {
                    insert_attempts(&mut attempt_stmt, &r.request_id, &r.attempts)?;
                }
                rollup.add(&super::rollup::Contribution::of(r), 1);
            }
        }
    }
    // Only rows actually inserted count: a replayed duplicate adds nothing.
    super::rollup::apply(&tx, &rollup)?;
    tx.commit()?;
    Ok(done)
}

/// The statement [`insert_attempts`] runs, from the connection's statement cache (most
/// batches never run it: a lone attempt stays in its row).
pub(crate) fn prepare_insert_attempt(
    conn: &Connection,
) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
    conn.prepare_cached(INSERT_ATTEMPT)
}

/// Inserts the attempts of row `request_id` (same transaction as the row) with a statement
/// from [`prepare_insert_attempt`].
pub(crate) fn insert_attempts(
    stmt: &mut Statement<'_>,
    request_id: &str,
    attempts: &[LedgerAttempt],
) -> rusqlite::Result<()> {
    for (idx, a) in attempts.iter().enumerate() {
        stmt.execute(params![
            request_id,
            idx as i64,
            a.role.as_str(),
            a.provider,
            a.model,
            a.key_index,
            a.status,
            a.error_class,
            a.ms,
            to_sql_count(a.usage.input),
            to_sql_count(a.usage.output),
            to_sql_count(a.usage.cached_input),
            to_sql_count(a.usage.cache_write),
            to_sql_count(a.usage.reasoning),
            a.cost_usd.map(|d| d.to_string()),
            a.cost_unknown,
        ])?;
    }
    Ok(())
}

fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads a decimal stored as TEXT; an unparsable value reads as `None` (unknown).
pub(crate) fn parse_money(text: Option<String>) -> Option<Decimal> {
    text.and_then(|t| Decimal::from_str(t.trim()).ok())
}

/// The SELECT list for [`row_from_sql`]. A file from before the `unit` and `quantity`
/// columns, or before `route_reason` or `reserved_usd` (readers never migrate), reads them as
/// NULL.
pub(crate) fn select_all(conn: &Connection, where_clause: &str) -> rusqlite::Result<String> {
    let has = |column: &str| has_column(conn, column);
    let mut columns = COLUMNS.to_owned();
    if !has("unit")? {
        columns = columns.replace("unit, quantity", "NULL, NULL");
    }
    if !has("route_reason")? {
        columns = columns.replace("route_reason", "NULL");
    }
    if !has("reserved_usd")? {
        columns = columns.replace("reserved_usd", "NULL");
    }
    Ok(format!("SELECT {columns} FROM requests {where_clause}"))
}

/// Maps a row selected with [`select_all`] back to a [`LedgerRow`] (without its attempts:
/// see [`read_attempts`]).
pub(crate) fn row_from_sql(r: &Row<'_>) -> rusqlite::Result<LedgerRow> {
    Ok(LedgerRow {
        request_id: r.get(0)?,
        ts_ms: r.get(1)?,
        gateway_key: r.get(2)?,
        feature: r.get(3)?,
        route: r.get(4)?,
        endpoint: r.get(5)?,
        requested_model: r.get(6)?,
        provider: r.get(7)?,
        model: r.get(8)?,
        attempts: Vec::new(),
        attempt_count: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(u32::MAX),
        status: u16::try_from(r.get::<_, i64>(10)?).unwrap_or(0),
        error_class: r.get(11)?,
        cache_hit: r.get(12)?,
        stream: r.get(13)?,
        usage: usage_at(r, 14)?,
        cost_usd: parse_money(r.get(19)?),
        cost_unknown: r.get(20)?,
        saved_usd: parse_money(r.get(21)?),
        estimated: r.get(22)?,
        ttft_ms: r.get(23)?,
        total_ms: r.get(24)?,
        unit: r.get(25)?,
        quantity: r.get::<_, Option<i64>>(26)?.map(from_sql_count),
        route_reason: r.get(27)?,
        reserved_usd: parse_money(r.get(28)?),
    })
}

/// The five token columns starting at `first` (input, output, cached input, cache write,
/// reasoning).
pub(crate) fn usage_at(r: &Row<'_>, first: usize) -> rusqlite::Result<Usage> {
    Ok(Usage {
        input: from_sql_count(r.get(first)?),
        output: from_sql_count(r.get(first + 1)?),
        cached_input: from_sql_count(r.get(first + 2)?),
        cache_write: from_sql_count(r.get(first + 3)?),
        reasoning: from_sql_count(r.get(first + 4)?),
    })
}

/// Maps `ATTEMPT_COLUMNS`, starting at column `first`, to a [`LedgerAttempt`]. An unknown
/// role (written by a newer build) reads as `failed`.
pub(crate) fn attempt_from_sql(r: &Row<'_>, first: usize) -> rusqlite::Result<LedgerAttempt> {
    let role: String = r.get(first)?;
    Ok(LedgerAttempt {
        role: role.parse().unwrap_or(Role::Failed),
        provider: r.get(first + 1)?,
        model: r.get(first + 2)?,
        key_index: r
            .get::<_, Option<i64>>(first + 3)?
            .and_then(|k| u32::try_from(k).ok()),
        status: r
            .get::<_, Option<i64>>(first + 4)?
            .and_then(|s| u16::try_from(s).ok()),
        error_class: r.get(first + 5)?,
        ms: r.get(first + 6)?,
        usage: usage_at(r, first + 7)?,
        cost_usd: parse_money(r.get(first + 12)?),
        cost_unknown: r.get(first + 13)?,
    })
}

/// The attempts of one row, in order, its inline one included ([`super::inline`]).
pub(crate) fn read_attempts(
    conn: &Connection,
    request_id: &str,
) -> rusqlite::Result<Vec<LedgerAttempt>> {
    let sql = if has_column(conn, "served_inline")? {
        super::inline::ATTEMPTS_OF_ONE.to_owned()
    } else {
        format!("SELECT idx, {ATTEMPT_COLUMNS} FROM attempts WHERE request_id = ?1 ORDER BY idx")
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([request_id], |r| attempt_from_sql(r, 1))?;
    rows.collect()
}

/// The condition under which a report's join reads a row's attempt from the row itself:
/// [`super::inline::NEVER`] for a file from before schema 10.
pub(crate) fn inline_condition(conn: &Connection) -> rusqlite::Result<&'static str> {
    Ok(if has_column(conn, "served_inline")? {
        super::inline::CONDITION
    } else {
        super::inline::NEVER
    })
}

/// Reads one row by `request_id` (read-only connection).
pub fn read_row(path: &Path, request_id: &str) -> Result<Option<LedgerRow>, LedgerError> {
    let conn = open_reader(path)?;
    let sql = select_all(&conn, "WHERE request_id = ?1")?;
    let Some(mut row) = conn
        .query_row(&sql, [request_id], row_from_sql)
        .optional()?
    else {
        return Ok(None);
    };
    row.attempts = if has_attempts_table(&conn)? {
        read_attempts(&conn, request_id)?
    } else {
        // A schema-2 file not yet migrated (reports never migrate): convert its JSON.
        legacy_attempts(&conn, &row)?
    };
    Ok(Some(row))
}

/// Whether `requests` has `column` (readers open files of any schema version).
pub(crate) fn has_column(conn: &Connection, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('requests') WHERE name = ?1)",
        [column],
        |r| r.get(0),
    )
}

/// Whether the database has the `attempts` table (schema 3 and later).
pub(crate) fn has_attempts_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'attempts')",
        [],
        |r| r.get(0),
    )
}

fn legacy_attempts(conn: &Connection, row: &LedgerRow) -> rusqlite::Result<Vec<LedgerAttempt>> {
    let json: String = conn.query_row(
        "SELECT attempts_json FROM requests WHERE request_id = ?1",
        [&row.request_id],
        |r| r.get(0),
    )?;
    Ok(attempts_from_v2(&json, &V2Row::of(row)))
}

/// Number of rows in the ledger (read-only connection).
pub fn count_rows(path: &Path) -> Result<u64, LedgerError> {
    let conn = open_reader(path)?;
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))?;
    Ok(from_sql_count(n))
}

/// The database's schema version (`PRAGMA user_version`; read-only connection).
pub fn schema_version(path: &Path) -> Result<i64, LedgerError> {
    let conn = open_reader(path)?;
    user_version(&conn)
}
