//! The ledger's schema and its migrations, versioned by `PRAGMA user_version`.
//!
//! [`MIGRATIONS`]`[i]` takes a database from version `i` to `i + 1`, in its own transaction
//! together with the version bump, so a crash leaves either the old or the new schema. A
//! database newer than [`SCHEMA_VERSION`] is refused rather than written to.
//!
//! Versions:
//! 1. `requests`, one row per client request, with its indexes.
//! 2. Drops the indexes no query used (each one cost every insert).
//! 3. Attempts move into their own table `attempts (request_id, idx, role, ...)`, each with
//!    tokens and exact cost. Existing rows are converted in place ([`super::legacy`]): the
//!    served attempt carries the row's tokens and cost, so every row keeps its cost and the
//!    reports their totals; `requests.attempts_json` is then dropped.
//! 4. `requests.unit` and `requests.quantity` (media endpoints: images, seconds, characters;
//!    see [`super::media_units`]).
//! 5. The request log's filter indexes (`/admin/requests`, the dashboard): see
//!    [`DASHBOARD_FILTER_INDEXES`].
//! 6. Experiments ([`crate::experiments`]): `experiment_requests` (which variant each request
//!    of an experiment got), `experiment_judgments` (the judge's verdicts), `experiment_feedback`
//!    (`POST /v1/feedback`) and `experiment_shifts` (promotions and blocked promotions).
//! 7. `requests.route_reason`: the routing decision as `x-switchyard-route-reason` gave it.
//! 8. `spend_hourly`: spend per hour by key, feature, model and provider, kept by the writer
//!    with the rows and backfilled from the rows already there ([`super::rollup`]).
//! 9. `requests.reserved_usd`: the worst-case cost governance reserved before the call.
//! 10. `requests.served_inline`, `served_key_index`, `served_ms`: a row's only attempt kept in
//!     the row ([`super::inline`]).
//! 11. Fewer index inserts per request: drops `requests_key_ts` (gateway key, time), as a
//!     key's spend in a period is read from the hourly rollup
//!     ([`crate::governance::spend::spent_since`]); `requests_feature_id` holds only rows that
//!     have a feature (the filter `feature = ?` still uses it).

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::legacy::{attempts_from_v2, V2Row};
use super::store::{from_sql_count, insert_attempts, parse_money, prepare_insert_attempt};
use super::LedgerError;
use crate::usage::Usage;

/// Schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One step of the schema's history.
enum Migration {
    Sql(&'static str),
    /// Data is converted in Rust, inside the migration's transaction.
    Rust(fn(&Transaction<'_>) -> rusqlite::Result<()>),
}

/// `MIGRATIONS[i]` upgrades a database from `user_version = i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(
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
    ),
    // Every index costs each insert (measured: 5 secondary indexes were most of the writer's
    // time per row). Spend reports group everything since a time (the ts index); per-key
    // lookups keep theirs. The others served no query.
    Migration::Sql(
        "DROP INDEX IF EXISTS requests_feature_ts;
    DROP INDEX IF EXISTS requests_route_ts;
    DROP INDEX IF EXISTS requests_provider_model_ts;",
    ),
    Migration::Rust(attempts_table),
    Migration::Sql(super::media_units::MIGRATION),
    Migration::Sql(DASHBOARD_FILTER_INDEXES),
    Migration::Sql(crate::experiments::store::SCHEMA),
    // Why routing chose as it did: the `x-switchyard-route-reason` text (routing issue #14).
    Migration::Sql("ALTER TABLE requests ADD COLUMN route_reason TEXT;"),
    // The dashboard's spend charts read hourly sums, not every row (issue #19).
    Migration::Rust(super::rollup::create_and_backfill),
    // What governance reserved before the call, beside what the request cost (issue #19).
    Migration::Sql("ALTER TABLE requests ADD COLUMN reserved_usd TEXT;"),
    // A row's only attempt kept in the row: one B-tree insert less per request.
    Migration::Sql(super::inline::SQLITE_MIGRATION),
    // Each index costs every insert: see REQUEST_PATH_INDEXES.
    Migration::Sql(REQUEST_PATH_INDEXES),
];

/// Version 11: a key's spend per period comes from the rollup, so its (key, time) index goes;
/// a request without a feature (most of them) no longer enters the feature index. Measured in
/// load-tests/RESULTS.md ("Ledger writer, fewer B-trees per row").
const REQUEST_PATH_INDEXES: &str = "DROP INDEX IF EXISTS requests_key_ts;
    DROP INDEX IF EXISTS requests_feature_id;
    CREATE INDEX requests_feature_id ON requests (feature, request_id) WHERE feature IS NOT NULL;";

/// Version 4: the indexes the request log's filters need (`/admin/requests`, the dashboard),
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

/// The `attempts` table (version 3). No secondary index: reports reach attempts from
/// `requests` by the primary key.
const CREATE_ATTEMPTS: &str = "CREATE TABLE attempts (
        request_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        role TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        key_index INTEGER,
        status INTEGER,
        error_class TEXT,
        ms REAL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cost_usd TEXT,
        cost_unknown INTEGER NOT NULL,
        PRIMARY KEY (request_id, idx)
    ) WITHOUT ROWID;";

/// Version 2 -> 3: creates `attempts`, converts every row's `attempts_json` into it, drops
/// the column. Rows are streamed (not loaded whole), one insert statement reused.
fn attempts_table(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(CREATE_ATTEMPTS)?;
    {
        let mut rows = tx.prepare(
            "SELECT request_id, provider, model, attempts_json, status, input_tokens, \
             output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
             cost_usd, cost_unknown FROM requests",
        )?;
        let mut rows = rows.query([])?;
        let mut insert = prepare_insert_attempt(tx)?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let (provider, model): (Option<String>, Option<String>) = (r.get(1)?, r.get(2)?);
            let json: String = r.get(3)?;
            let cost_usd = parse_money(r.get(10)?);
            let cost_unknown: bool = r.get(11)?;
            let v2 = V2Row {
                provider: provider.as_deref(),
                model: model.as_deref(),
                status: u16::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                usage: Usage {
                    input: from_sql_count(r.get(5)?),
                    output: from_sql_count(r.get(6)?),
                    cached_input: from_sql_count(r.get(7)?),
                    cache_write: from_sql_count(r.get(8)?),
                    reasoning: from_sql_count(r.get(9)?),
                },
                cost_usd,
                cost_unknown,
            };
            insert_attempts(&mut insert, &id, &attempts_from_v2(&json, &v2))?;
        }
    }
    tx.execute_batch("ALTER TABLE requests DROP COLUMN attempts_json;")
}

pub(crate) fn user_version(conn: &Connection) -> Result<i64, LedgerError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Refuses a database written by a newer switchyard.
pub(crate) fn check_not_newer(version: i64) -> Result<(), LedgerError> {
    if version > SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies the missing migrations, one transaction each (the version bump included).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let mut version = user_version(conn)?;
    check_not_newer(version)?;
    while version < SCHEMA_VERSION {
        let step = usize::try_from(version)
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
            match step {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::Rust(convert) => convert(&tx)?,
            }
            tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
        }
        tx.commit()?;
        version = user_version(conn)?;
    }
    Ok(())
}

/// Brings a fresh database to `version` (tests of older schemas and their migration).
#[cfg(test)]
pub(crate) fn migrate_to(conn: &mut Connection, version: i64) -> Result<(), LedgerError> {
    for i in user_version(conn)?..version {
        let tx = conn.transaction()?;
        match &MIGRATIONS[i as usize] {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::Rust(convert) => convert(&tx)?,
        }
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}
