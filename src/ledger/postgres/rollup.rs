//! The hourly spend rollup in Postgres: the same cells as SQLite's ([`crate::ledger::rollup`]),
//! with money as NUMERIC so the upsert adds it exactly in the database. The insert batch adds
//! the rows it actually inserted (`RETURNING request_id`), in the same transaction, so a replay
//! adds nothing and two gateways writing the same hour add up (row locks on the cell; cells
//! are upserted in key order, so two batches cannot deadlock on each other).

use rust_decimal::Decimal;
use std::str::FromStr;

use super::LedgerError;
use crate::ledger::rollup::{Agg, Dim, Rollup};

/// Schema step 5: the table, backfilled from the rows (grouping by hour for each grouping,
/// with the group names [`crate::ledger::rollup::group_into`] gives).
pub(crate) const MIGRATION: &str = "CREATE TABLE spend_hourly (
        hour_ms BIGINT NOT NULL,
        dim TEXT NOT NULL,
        grp TEXT NOT NULL,
        requests BIGINT NOT NULL,
        input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        cost_usd NUMERIC NOT NULL,
        saved_usd NUMERIC NOT NULL,
        unpriced BIGINT NOT NULL,
        PRIMARY KEY (hour_ms, dim, grp)
    );
    INSERT INTO spend_hourly
    SELECT (floor(ts_ms / 3600000.0) * 3600000)::bigint AS hour_ms, d.dim, d.grp,
        COUNT(*), SUM(input_tokens), SUM(output_tokens),
        COALESCE(SUM(cost_usd::numeric), 0), COALESCE(SUM(saved_usd::numeric), 0),
        COUNT(*) FILTER (WHERE cost_usd IS NULL)
    FROM requests CROSS JOIN LATERAL (VALUES
        ('total', ''),
        ('key', COALESCE(gateway_key, '(none)')),
        ('feature', COALESCE(feature, '(none)')),
        ('model', CASE WHEN provider IS NULL AND model IS NULL THEN '(none)'
            ELSE COALESCE(provider, '(none)') || '/' || COALESCE(model, '(none)') END),
        ('provider', COALESCE(provider, '(none)'))
    ) AS d (dim, grp)
    GROUP BY 1, 2, 3;";

const UPSERT: &str = "INSERT INTO spend_hourly (hour_ms, dim, grp, requests, input_tokens, \
     output_tokens, cost_usd, saved_usd, unpriced) \
     SELECT h, d, g, r, i, o, c::numeric, s::numeric, u FROM UNNEST($1::int8[], $2::text[], \
     $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::text[], $8::text[], $9::int8[]) \
     AS t (h, d, g, r, i, o, c, s, u) \
     ON CONFLICT (hour_ms, dim, grp) DO UPDATE SET \
     requests = spend_hourly.requests + EXCLUDED.requests, \
     input_tokens = spend_hourly.input_tokens + EXCLUDED.input_tokens, \
     output_tokens = spend_hourly.output_tokens + EXCLUDED.output_tokens, \
     cost_usd = spend_hourly.cost_usd + EXCLUDED.cost_usd, \
     saved_usd = spend_hourly.saved_usd + EXCLUDED.saved_usd, \
     unpriced = spend_hourly.unpriced + EXCLUDED.unpriced";

/// Adds a batch's cells (inside the batch's transaction): one statement for the whole batch.
pub(crate) async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    rollup: &Rollup,
) -> Result<(), tokio_postgres::Error> {
    if rollup.is_empty() {
        return Ok(());
    }
    let mut cells: Vec<(i64, Dim, &str, &Agg)> = rollup.cells().collect();
    cells.sort_by(|a, b| (a.0, a.1.as_str(), a.2).cmp(&(b.0, b.1.as_str(), b.2)));
    let hour: Vec<i64> = cells.iter().map(|c| c.0).collect();
    let dim: Vec<&str> = cells.iter().map(|c| c.1.as_str()).collect();
    let grp: Vec<&str> = cells.iter().map(|c| c.2).collect();
    let requests: Vec<i64> = cells.iter().map(|c| c.3.requests).collect();
    let input: Vec<i64> = cells.iter().map(|c| c.3.input_tokens).collect();
    let output: Vec<i64> = cells.iter().map(|c| c.3.output_tokens).collect();
    let cost: Vec<String> = cells.iter().map(|c| c.3.cost.to_string()).collect();
    let saved: Vec<String> = cells.iter().map(|c| c.3.saved.to_string()).collect();
    let unpriced: Vec<i64> = cells.iter().map(|c| c.3.unpriced).collect();
    let stmt = tx.prepare_cached(UPSERT).await?;
    tx.execute(
        &stmt,
        &[
            &hour, &dim, &grp, &requests, &input, &output, &cost, &saved, &unpriced,
        ],
    )
    .await?;
    Ok(())
}

/// The cells of the hours in `[from_hour, to_hour]` for `dims`.
pub(crate) async fn read_cells(
    client: &impl deadpool_postgres::GenericClient,
    from_hour: i64,
    to_hour: i64,
    dims: &[Dim],
) -> Result<Vec<(i64, Dim, String, Agg)>, LedgerError> {
    let names: Vec<&str> = dims.iter().map(|d| d.as_str()).collect();
    let rows = client
        .query(
            "SELECT hour_ms, dim, grp, requests, input_tokens, output_tokens, cost_usd::text, \
             saved_usd::text, unpriced FROM spend_hourly \
             WHERE hour_ms >= $1 AND hour_ms <= $2 AND dim = ANY($3)",
            &[&from_hour, &to_hour, &names],
        )
        .await?;
    let money = |s: String| Decimal::from_str(s.trim()).unwrap_or(Decimal::ZERO);
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let dim = Dim::parse(r.get::<_, &str>(1))?;
            Some((
                r.get(0),
                dim,
                r.get(2),
                Agg {
                    requests: r.get(3),
                    input_tokens: r.get(4),
                    output_tokens: r.get(5),
                    cost: money(r.get(6)),
                    saved: money(r.get(7)),
                    unpriced: r.get(8),
                },
            ))
        })
        .collect())
}
