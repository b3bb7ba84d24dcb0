//! SQLite side of the ledger: connection set-up, schema migrations, inserts and reads.
//!
//! The schema is versioned by `PRAGMA user_version`; [`MIGRATIONS`]`[i]` takes version `i` to
//! `i + 1`, each in its own transaction. A database whose version is newer than
//! [`SCHEMA_VERSION`] is refused rather than written to.
//!
//! Column notes: token counts are INTEGER (saturated at `i64::MAX`), booleans are 0/1, money
//! (`cost_usd`, `saved_usd`) is the exact decimal as TEXT (never REAL), timings are REAL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use rust_decimal::Decimal;

use super::{LedgerError, LedgerRow};
use crate::usage::Usage;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `MIGRATIONS[i]` upgrades a database from `user_version = i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE requests (
        request_id TEXT PRIMARY KEY NOT NULL,
        ts_ms INTEGER NOT NULL,
        gateway_key TEXT,
        feature TEXT,
        route TEXT,
        endpoint TEXT NOT NULL,
        requested_model TEXT,
        provider TEXT,
        model TEXT,
        attempts_json TEXT NOT NULL,
        attempt_count INTEGER NOT NULL,
        status INTEGER NOT NULL,
        error_class TEXT,
        cache_hit INTEGER NOT NULL,
        stream INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cost_usd TEXT,
        cost_unknown INTEGER NOT NULL,
        saved_usd TEXT,
        estimated INTEGER NOT NULL,
        ttft_ms REAL,
        total_ms REAL NOT NULL
    );
    CREATE INDEX requests_ts ON requests (ts_ms);
    CREATE INDEX requests_key_ts ON requests (gateway_key, ts_ms);
    CREATE INDEX requests_feature_ts ON requests (feature, ts_ms);
    CREATE INDEX requests_route_ts ON requests (route, ts_ms);
    CREATE INDEX requests_provider_model_ts ON requests (provider, model, ts_ms);",
    // Every index costs each insert (measured: 5 secondary indexes were most of the writer's
    // time per row). Spend reports group everything since a time (the ts index); per-key
    // lookups keep theirs. The others served no query.
    "DROP INDEX IF EXISTS requests_feature_ts;
    DROP INDEX IF EXISTS requests_route_ts;
    DROP INDEX IF EXISTS requests_provider_model_ts;",
    DASHBOARD_FILTER_INDEXES,
];

/// Version 3: the indexes the request log's filters need (`/admin/requests`, the dashboard),
/// each ordered by `request_id` so a filtered page is read newest first straight off the index
/// and stops after one page, whatever the ledger's size. Status and cache filters use partial
/// indexes (only non-200 rows, only cache hits), which cost nothing for the common row; a
/// filter for status 200 or for misses walks the primary key, where matches are dense.
/// Measured in load-tests/RESULTS.md ("Dashboard at a million rows").
const DASHBOARD_FILTER_INDEXES: &str =
    "CREATE INDEX IF NOT EXISTS requests_key_id ON requests (gateway_key, request_id);
    CREATE INDEX IF NOT EXISTS requests_feature_id ON requests (feature, request_id);
    CREATE INDEX IF NOT EXISTS requests_model_id ON requests (model, request_id);
    CREATE INDEX IF NOT EXISTS requests_requested_model_id ON requests (requested_model, request_id);
    CREATE INDEX IF NOT EXISTS requests_not_ok_id ON requests (status, request_id) WHERE status <> 200;
    CREATE INDEX IF NOT EXISTS requests_cache_hit_id ON requests (request_id) WHERE cache_hit = 1;";

/// The partial index `requests_not_ok_id`'s condition; a query must spell it the same way for
/// SQLite to use the index.
pub(crate) const NOT_OK_CONDITION: &str = "status <> 200";
/// The partial index `requests_cache_hit_id`'s condition.
pub(crate) const CACHE_HIT_CONDITION: &str = "cache_hit = 1";

/// Every column, in table order; shared by the INSERT and the SELECTs.
const COLUMNS: &str = "request_id, ts_ms, gateway_key, feature, route, endpoint, requested_model, \
     provider, model, attempts_json, attempt_count, status, error_class, cache_hit, stream, \
     input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     cost_usd, cost_unknown, saved_usd, estimated, ttft_ms, total_ms";

const INSERT: &str = "INSERT OR IGNORE INTO requests (request_id, ts_ms, gateway_key, feature, \
     route, endpoint, requested_model, provider, model, attempts_json, attempt_count, status, \
     error_class, cache_hit, stream, input_tokens, output_tokens, cached_input_tokens, \
     cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown, saved_usd, estimated, \
     ttft_ms, total_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
     ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)";

/// Opens (creating it and its directories if needed) the database for writing: WAL journal,
/// `synchronous=NORMAL`, busy timeout, schema migrated to [`SCHEMA_VERSION`].
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
    let version = user_version(&conn)?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(conn)
}

fn user_version(conn: &Connection) -> Result<i64, LedgerError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Applies the missing migrations, one transaction each (the version bump included).
fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let mut version = user_version(conn)?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    while version < SCHEMA_VERSION {
        let sql = usize::try_from(version)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
            .ok_or(LedgerError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            })?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current == version {
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        }
        tx.commit()?;
        version = user_version(conn)?;
    }
    Ok(())
}

/// What one [`insert_rows`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    pub new: u64,
    pub duplicates: u64,
}

/// Inserts `rows` in one transaction; rows whose `request_id` already exists are ignored and
/// counted as duplicates. On error nothing is committed.
pub(crate) fn insert_rows<'a>(
    conn: &mut Connection,
    rows: impl IntoIterator<Item = &'a LedgerRow>,
) -> rusqlite::Result<Inserted> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Inserted::default();
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for r in rows {
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
                r.attempts_json,
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
            ])?;
            if changed == 0 {
                done.duplicates += 1;
            } else {
                done.new += 1;
            }
        }
    }
    tx.commit()?;
    Ok(done)
}

fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads a decimal stored as TEXT; an unparsable value reads as `None` (unknown).
pub(crate) fn parse_money(text: Option<String>) -> Option<Decimal> {
    text.and_then(|t| Decimal::from_str(t.trim()).ok())
}

/// The SELECT list for [`row_from_sql`].
pub(crate) fn select_all(where_clause: &str) -> String {
    format!("SELECT {COLUMNS} FROM requests {where_clause}")
}

/// Maps a row selected with [`select_all`] back to a [`LedgerRow`].
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
        attempts_json: r.get(9)?,
        attempt_count: u32::try_from(r.get::<_, i64>(10)?).unwrap_or(u32::MAX),
        status: u16::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
        error_class: r.get(12)?,
        cache_hit: r.get(13)?,
        stream: r.get(14)?,
        usage: Usage {
            input: from_sql_count(r.get(15)?),
            output: from_sql_count(r.get(16)?),
            cached_input: from_sql_count(r.get(17)?),
            cache_write: from_sql_count(r.get(18)?),
            reasoning: from_sql_count(r.get(19)?),
        },
        cost_usd: parse_money(r.get(20)?),
        cost_unknown: r.get(21)?,
        saved_usd: parse_money(r.get(22)?),
        estimated: r.get(23)?,
        ttft_ms: r.get(24)?,
        total_ms: r.get(25)?,
    })
}

/// Reads one row by `request_id` (read-only connection).
pub fn read_row(path: &Path, request_id: &str) -> Result<Option<LedgerRow>, LedgerError> {
    let conn = open_reader(path)?;
    let sql = select_all("WHERE request_id = ?1");
    Ok(conn
        .query_row(&sql, [request_id], row_from_sql)
        .optional()?)
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
