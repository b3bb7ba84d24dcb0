//! The Postgres ledger's schema, created and migrated by the gateway.
//!
//! Versions are rows of `switchyard_schema (version, applied_ms)`; [`MIGRATIONS`]`[i]` takes
//! the database from version `i` to `i + 1`. Every instance of a fleet migrates at start, so
//! the whole check-and-apply runs in one transaction under a transaction-level advisory lock:
//! a second instance waits, then finds the work done. A database newer than this build is
//! refused.
//!
//! The tables mirror the SQLite ledger (schema 7, experiments included): `requests` keyed by `request_id`, and
//! `attempts (request_id, idx, ...)`. Money is the exact decimal as TEXT, as in SQLite, and
//! added up in Rust.

use super::LedgerError;

/// Schema version this build writes and understands (its own numbering, not SQLite's).
pub const PG_SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Key of the advisory lock that serialises migrations across instances.
const MIGRATION_LOCK: i64 = 0x5359_4c45_4447_5231; // "SYLEDGR1"

/// Each migration: its SQL texts, run in order.
const MIGRATIONS: &[&[&str]] = &[
    // 1: requests and attempts, as SQLite schema 3.
    &["CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        ts_ms BIGINT NOT NULL,
        gateway_key TEXT,
        feature TEXT,
        route TEXT,
        endpoint TEXT NOT NULL,
        requested_model TEXT,
        provider TEXT,
        model TEXT,
        attempt_count BIGINT NOT NULL,
        status INTEGER NOT NULL,
        error_class TEXT,
        cache_hit BOOLEAN NOT NULL,
        stream BOOLEAN NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cached_input_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL,
        reasoning_tokens BIGINT NOT NULL,
        cost_usd TEXT,
        cost_unknown BOOLEAN NOT NULL,
        saved_usd TEXT,
        estimated BOOLEAN NOT NULL,
        ttft_ms DOUBLE PRECISION,
        total_ms DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX requests_ts ON requests (ts_ms);
    CREATE INDEX requests_key_ts ON requests (gateway_key, ts_ms);
    CREATE TABLE attempts (
        request_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        role TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        key_index BIGINT,
        status INTEGER,
        error_class TEXT,
        ms DOUBLE PRECISION,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cached_input_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL,
        reasoning_tokens BIGINT NOT NULL,
        cost_usd TEXT,
        cost_unknown BOOLEAN NOT NULL,
        PRIMARY KEY (request_id, idx)
    );"],
    // 2: media units (SQLite schema 4) and the request log's filter indexes (SQLite schema 5),
    // each ordered by request_id so a filtered page is read newest first off the index.
    &[
        "ALTER TABLE requests ADD COLUMN unit TEXT, ADD COLUMN quantity BIGINT;
    CREATE INDEX requests_key_id ON requests (gateway_key, request_id);
    CREATE INDEX requests_feature_id ON requests (feature, request_id);
    CREATE INDEX requests_model_id ON requests (model, request_id);
    CREATE INDEX requests_requested_model_id ON requests (requested_model, request_id);
    CREATE INDEX requests_not_ok_id ON requests (status, request_id) WHERE status <> 200;
    CREATE INDEX requests_cache_hit_id ON requests (request_id) WHERE cache_hit;",
    ],
    // 3: the routing decision (SQLite schema 7).
    &["ALTER TABLE requests ADD COLUMN route_reason TEXT;"],
    // 4: experiments (SQLite schema 6), and the appends already applied (by id), so that an
    // append replayed from a spill file adds nothing.
    &[
        crate::experiments::pg::SCHEMA,
        "CREATE TABLE ledger_appends (
            id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            ts_ms BIGINT NOT NULL
        );",
    ],
    // 5: what governance reserved before the call (SQLite schema 9).
    &["ALTER TABLE requests ADD COLUMN reserved_usd TEXT;"],
    // 6: the hourly spend rollup (SQLite schema 8), backfilled from the rows already there.
    // Money is NUMERIC here: Postgres adds it exactly, so an upsert needs no read first.
    &[super::rollup::MIGRATION],
    // 7: a row's only attempt kept in the row (SQLite schema 10).
    &[crate::ledger::inline::PG_MIGRATION],
];

/// Applies the missing migrations in one transaction, under the advisory lock.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), LedgerError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS switchyard_schema (
            version INTEGER PRIMARY KEY,
            applied_ms BIGINT NOT NULL
        )",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM switchyard_schema",
            &[],
        )
        .await?;
    let found: i32 = row.get(0);
    if found > PG_SCHEMA_VERSION {
        return Err(LedgerError::SchemaTooNew {
            found: i64::from(found),
            supported: i64::from(PG_SCHEMA_VERSION),
        });
    }
    let now = crate::governance::keys::ops::now_ms();
    for version in found..PG_SCHEMA_VERSION {
        let Some(texts) = usize::try_from(version)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            break;
        };
        for sql in *texts {
            tx.batch_execute(sql).await?;
        }
        tx.execute(
            "INSERT INTO switchyard_schema (version, applied_ms) VALUES ($1, $2)",
            &[&(version + 1), &now],
        )
        .await?;
        log::info!(
            "ledger: Postgres schema migrated to version {}",
            version + 1
        );
    }
    tx.commit().await?;
    Ok(())
}
