//! Writes that are not rows ([`Extra`]), in Postgres: one transaction per batch, each write in
//! its own savepoint, so a write the server refuses (or an append whose row is missing) is
//! dropped and reported without undoing the others. A lost connection fails the whole batch
//! (the writer spills it).
//!
//! An append is applied once: its id goes into `ledger_appends` first (`ON CONFLICT DO
//! NOTHING`); an id already there means a replay, and nothing more is done. The row is locked
//! (`FOR UPDATE`) while its attempts are numbered after the existing ones and its usage and
//! cost become the sums again, as in SQLite ([`crate::ledger::append`]).

use super::super::attempt::appended;
use super::super::store::{from_sql_count, parse_money};
use super::super::{Append, Extra, LedgerError};
use super::insert::{count, AttemptColumns, INSERT_ATTEMPTS};
use crate::ledger::rollup::Place;
use crate::usage::Usage;
use deadpool_postgres::Transaction;

/// Applies `extras`; the messages of those dropped.
pub(crate) async fn apply(
    client: &mut deadpool_postgres::Object,
    extras: &[Extra],
) -> Result<Vec<String>, LedgerError> {
    let mut dropped = Vec::new();
    let mut tx = client.transaction().await?;
    for extra in extras {
        let sp = tx.savepoint("switchyard_extra").await?;
        let done = match extra {
            Extra::Append { id, append } => append_once(&sp, id, append).await,
            Extra::Experiment(w) => crate::experiments::pg::apply(&*sp, w).await.map(|()| None),
        };
        match done {
            Ok(None) => sp.commit().await?,
            Ok(Some(why)) => {
                dropped.push(format!("{} dropped: {why}", extra.describe()));
                sp.rollback().await?;
            }
            // The server refused this statement: drop it, keep the rest.
            Err(e) if e.as_db_error().is_some() => {
                dropped.push(format!(
                    "{} dropped: {}",
                    extra.describe(),
                    LedgerError::from(e)
                ));
                sp.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    Ok(dropped)
}

/// Adds `a`'s attempts unless the append `id` was applied before; `Some(why)` when it cannot
/// be (its row is not in the database).
async fn append_once(
    tx: &Transaction<'_>,
    id: &str,
    a: &Append,
) -> Result<Option<String>, tokio_postgres::Error> {
    let now = crate::experiments::store::now_ms();
    let fresh = tx
        .execute(
            "INSERT INTO ledger_appends (id, request_id, ts_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
            &[&id, &a.request_id, &now],
        )
        .await?;
    if fresh == 0 {
        return Ok(None);
    }
    let Some(row) = tx
        .query_opt(
            "SELECT cost_usd, cost_unknown, input_tokens, output_tokens, cached_input_tokens, \
             cache_write_tokens, reasoning_tokens, ts_ms, gateway_key, feature, provider, model, \
             saved_usd FROM requests WHERE request_id = $1 FOR UPDATE",
            &[&a.request_id],
        )
        .await?
    else {
        return Ok(Some("the row is not in the database".to_owned()));
    };
    let cost = parse_money(row.get(0));
    let unknown: bool = row.get(1);
    let usage = Usage {
        input: from_sql_count(row.get(2)),
        output: from_sql_count(row.get(3)),
        cached_input: from_sql_count(row.get(4)),
        cache_write: from_sql_count(row.get(5)),
        reasoning: from_sql_count(row.get(6)),
    };
    let place = Place {
        ts_ms: row.get(7),
        dims: [row.get(8), row.get(9), row.get(10), row.get(11)],
        saved: parse_money(row.get(12)),
    };
    // An inline attempt moves out to `attempts` first: the new ones follow it.
    let rid: &(dyn tokio_postgres::types::ToSql + Sync) = &a.request_id;
    tx.execute(
        &crate::ledger::inline::MATERIALISE.replace("?1", "$1"),
        &[rid],
    )
    .await?;
    tx.execute(&crate::ledger::inline::CLEAR.replace("?1", "$1"), &[rid])
        .await?;
    let next: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM attempts WHERE request_id = $1",
            &[&a.request_id],
        )
        .await?
        .get(0);
    let mut cols = AttemptColumns::default();
    cols.push(&a.request_id, &a.attempts, next);
    let stmt = tx.prepare_cached(INSERT_ATTEMPTS).await?;
    cols.insert(&**tx, &stmt).await?;
    let (total, new_usage) = appended(cost, unknown, &usage, &a.attempts);
    tx.execute(
        "UPDATE requests SET cost_usd = $2, cost_unknown = $3, input_tokens = $4, \
         output_tokens = $5, cached_input_tokens = $6, cache_write_tokens = $7, \
         reasoning_tokens = $8 WHERE request_id = $1",
        &[
            &a.request_id,
            &total.map(|d| d.to_string()),
            &total.is_none(),
            &count(new_usage.input),
            &count(new_usage.output),
            &count(new_usage.cached_input),
            &count(new_usage.cache_write),
            &count(new_usage.reasoning),
        ],
    )
    .await?;
    // The hourly rollup: the row's old figures out, its new ones in.
    let rollup = place.moved((cost, &usage), (total, &new_usage));
    super::rollup::apply(tx, &rollup).await?;
    Ok(None)
}
