//! Reads from the Postgres ledger: spend reports and the admin API's request log, with the
//! same results as the SQLite readers ([`crate::ledger::report`], [`crate::admin::requests`]).

use std::sync::Arc;

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::report::{
    attempt_fact_of, now_ms, per_attempt_sql, Accumulator, RowParts, ROW_COLUMNS,
};
use super::super::store::{from_sql_count, parse_money};
use super::super::{GroupBy, LedgerAttempt, LedgerError, LedgerRow, Role, SpendReport};
use super::PgStore;
use crate::admin::requests::Query;
use crate::usage::Usage;

/// Every `requests` column, in the order [`ledger_row`] reads them.
const COLUMNS: &str = "request_id, ts_ms, gateway_key, feature, route, endpoint, requested_model, \
     provider, model, attempt_count, status, error_class, cache_hit, stream, \
     input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, \
     cost_usd, cost_unknown, saved_usd, estimated, ttft_ms, total_ms, unit, quantity, \
     route_reason, reserved_usd";

const ATTEMPT_COLUMNS: &str = "request_id, role, provider, model, key_index, status, \
     error_class, ms, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
     reasoning_tokens, cost_usd, cost_unknown";

fn usage_at(r: &Row, first: usize) -> Usage {
    Usage {
        input: from_sql_count(r.get(first)),
        output: from_sql_count(r.get(first + 1)),
        cached_input: from_sql_count(r.get(first + 2)),
        cache_write: from_sql_count(r.get(first + 3)),
        reasoning: from_sql_count(r.get(first + 4)),
    }
}

/// Spend grouped `by` since `since_ms` (until now).
pub async fn spend_report(
    store: &Arc<PgStore>,
    by: GroupBy,
    since_ms: i64,
) -> Result<SpendReport, LedgerError> {
    spend_report_range(store, by, since_ms, now_ms()).await
}

/// Spend grouped `by` over `[since_ms, until_ms]`, as
/// [`crate::ledger::spend_report_range`] computes it from SQLite.
pub async fn spend_report_range(
    store: &Arc<PgStore>,
    by: GroupBy,
    since_ms: i64,
    until_ms: i64,
) -> Result<SpendReport, LedgerError> {
    store
        .call(move |s| async move {
            let client = s.client().await?;
            let mut acc = Accumulator::new(by);
            if matches!(by, GroupBy::Model | GroupBy::Provider) {
                let sql = per_attempt_sql(ROW_COLUMNS, crate::ledger::inline::CONDITION)
                    .replace("?1", "$1")
                    .replace("?2", "$2");
                let rows = client.query(&sql, &[&since_ms, &until_ms]).await?;
                let width = 19;
                let mut current: Option<(String, super::super::report::RowFact)> = None;
                let mut attempts = Vec::new();
                for r in &rows {
                    let id: String = r.get(width);
                    if current.as_ref().is_none_or(|(cur, _)| *cur != id) {
                        if let Some((_, fact)) = current.take() {
                            acc.add(&fact, &attempts);
                        }
                        attempts.clear();
                        current = Some((id, row_parts(r).fact(by)));
                    }
                    let provider: Option<String> = r.get(width + 1);
                    if let Some(provider) = provider {
                        let fact = attempt_fact_of(
                            provider,
                            r.get(width + 2),
                            usage_at(r, width + 3),
                            r.get(width + 8),
                            r.get(width + 9),
                            by,
                        );
                        attempts.extend(fact);
                    }
                }
                if let Some((_, fact)) = current.take() {
                    acc.add(&fact, &attempts);
                }
            } else {
                let sql = format!(
                    "SELECT {ROW_COLUMNS} FROM requests r WHERE r.ts_ms >= $1 AND r.ts_ms <= $2"
                );
                for r in client.query(&sql, &[&since_ms, &until_ms]).await? {
                    acc.add(&row_parts(&r).fact(by), &[]);
                }
            }
            Ok(acc.finish(since_ms, until_ms))
        })
        .await
}

fn row_parts(r: &Row) -> RowParts {
    RowParts {
        key: r.get(0),
        feature: r.get(1),
        route: r.get(2),
        provider: r.get(3),
        model: r.get(4),
        status: i64::from(r.get::<_, i32>(5)),
        error_class: r.get(6),
        cache_hit: r.get(7),
        usage: usage_at(r, 8),
        cost: r.get(13),
        cost_unknown: r.get(14),
        saved: r.get(15),
        estimated: r.get(16),
        unit: r.get(17),
        quantity: r.get::<_, Option<i64>>(18).map(from_sql_count),
    }
}

fn ledger_row(r: &Row) -> LedgerRow {
    LedgerRow {
        request_id: r.get(0),
        ts_ms: r.get(1),
        gateway_key: r.get(2),
        feature: r.get(3),
        route: r.get(4),
        endpoint: r.get(5),
        requested_model: r.get(6),
        provider: r.get(7),
        model: r.get(8),
        attempts: Vec::new(),
        attempt_count: u32::try_from(r.get::<_, i64>(9)).unwrap_or(u32::MAX),
        status: u16::try_from(r.get::<_, i32>(10)).unwrap_or(0),
        error_class: r.get(11),
        cache_hit: r.get(12),
        stream: r.get(13),
        usage: usage_at(r, 14),
        cost_usd: parse_money(r.get(19)),
        cost_unknown: r.get(20),
        saved_usd: parse_money(r.get(21)),
        estimated: r.get(22),
        ttft_ms: r.get(23),
        total_ms: r.get(24),
        unit: r.get(25),
        quantity: r.get::<_, Option<i64>>(26).map(from_sql_count),
        route_reason: r.get(27),
        reserved_usd: parse_money(r.get(28)),
    }
}

/// Maps [`ATTEMPT_COLUMNS`] (after its `request_id`). An unknown role reads as `failed`.
fn attempt(r: &Row) -> LedgerAttempt {
    let role: String = r.get(1);
    LedgerAttempt {
        role: role.parse().unwrap_or(Role::Failed),
        provider: r.get(2),
        model: r.get(3),
        key_index: r
            .get::<_, Option<i64>>(4)
            .and_then(|k| u32::try_from(k).ok()),
        status: r
            .get::<_, Option<i32>>(5)
            .and_then(|s| u16::try_from(s).ok()),
        error_class: r.get(6),
        ms: r.get(7),
        usage: usage_at(r, 8),
        cost_usd: parse_money(r.get(13)),
        cost_unknown: r.get(14),
    }
}

/// Fills in the attempts of `rows` with one query.
async fn with_attempts(
    client: &tokio_postgres::Client,
    rows: &mut [LedgerRow],
) -> Result<(), LedgerError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.request_id.clone()).collect();
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE request_id = ANY($1) \
         ORDER BY request_id, idx"
    );
    let mut by_id: std::collections::HashMap<String, Vec<LedgerAttempt>> = Default::default();
    // A row's inline attempt is its only one ([`crate::ledger::inline`]).
    for r in client
        .query(crate::ledger::inline::PG_INLINE_OF, &[&ids])
        .await?
    {
        by_id.entry(r.get(0)).or_default().push(attempt(&r));
    }
    for r in client.query(&sql, &[&ids]).await? {
        by_id.entry(r.get(0)).or_default().push(attempt(&r));
    }
    for row in rows {
        row.attempts = by_id.remove(&row.request_id).unwrap_or_default();
    }
    Ok(())
}

/// One row with its attempts, or `None`.
pub async fn read_row(
    store: &Arc<PgStore>,
    request_id: String,
) -> Result<Option<LedgerRow>, LedgerError> {
    store
        .call(move |s| async move {
            let client = s.client().await?;
            let sql = format!("SELECT {COLUMNS} FROM requests WHERE request_id = $1");
            let Some(r) = client.query_opt(&sql, &[&request_id]).await? else {
                return Ok(None);
            };
            let mut rows = [ledger_row(&r)];
            with_attempts(&client, &mut rows).await?;
            let [row] = rows;
            Ok(Some(row))
        })
        .await
}

/// Rows in the ledger.
pub async fn count_rows(store: &Arc<PgStore>) -> Result<u64, LedgerError> {
    store
        .call(|s| async move {
            let client = s.client().await?;
            let n: i64 = client
                .query_one("SELECT COUNT(*) FROM requests", &[])
                .await?
                .get(0);
            Ok(from_sql_count(n))
        })
        .await
}

/// A page of requests, newest first, and whether there are more: the filters of
/// `GET /admin/requests` ([`Query`]).
pub async fn list(store: &Arc<PgStore>, q: Query) -> Result<(Vec<LedgerRow>, bool), LedgerError> {
    store
        .call(move |s| async move {
            let client = s.client().await?;
            let mut clauses = Vec::new();
            let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
            if let Some(b) = q.before {
                args.push(Box::new(b));
                clauses.push(format!("request_id < ${}", args.len()));
            }
            if let Some(k) = q.key {
                args.push(Box::new(k));
                clauses.push(format!("gateway_key = ${}", args.len()));
            }
            if let Some(m) = q.model {
                args.push(Box::new(m));
                let n = args.len();
                clauses.push(format!("(requested_model = ${n} OR model = ${n})"));
            }
            if let Some(st) = q.status {
                args.push(Box::new(i32::from(st)));
                clauses.push(format!("status = ${}", args.len()));
            }
            if let Some(f) = q.feature {
                args.push(Box::new(f));
                clauses.push(format!("feature = ${}", args.len()));
            }
            match q.cache_hit {
                Some(true) => clauses.push("cache_hit".to_owned()),
                Some(false) => clauses.push("NOT cache_hit".to_owned()),
                None => {}
            }
            let mut sql = format!("SELECT {COLUMNS} FROM requests ");
            if !clauses.is_empty() {
                sql.push_str("WHERE ");
                sql.push_str(&clauses.join(" AND "));
            }
            sql.push_str(&format!(" ORDER BY request_id DESC LIMIT {}", q.limit + 1));
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let mut out: Vec<LedgerRow> = client
                .query(&sql, &params)
                .await?
                .iter()
                .map(ledger_row)
                .collect();
            let more = out.len() > q.limit;
            out.truncate(q.limit);
            with_attempts(&client, &mut out).await?;
            Ok((out, more))
        })
        .await
}
