//! Batched inserts: one transaction per batch, each table filled by one statement over arrays
//! (`INSERT ... SELECT * FROM UNNEST($1::text[], ...)`), so a batch of any size is two round
//! trips with two statements prepared once per connection. `ON CONFLICT DO NOTHING` on the
//! request id makes a replay (a spill file imported twice, a batch retried after a commit whose
//! answer was lost) harmless; attempts are inserted only for rows that were new, and only those
//! rows are added to the hourly rollup ([`super::rollup`]).

use std::collections::HashSet;

use super::super::store::Inserted;
use super::super::LedgerAttempt;
use super::{LedgerError, LedgerRow};

const INSERT_REQUESTS: &str = "INSERT INTO requests (request_id, ts_ms, gateway_key, feature, \
     route, endpoint, requested_model, provider, model, attempt_count, status, error_class, \
     cache_hit, stream, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
     reasoning_tokens, cost_usd, cost_unknown, saved_usd, estimated, ttft_ms, total_ms, unit, \
     quantity, route_reason, reserved_usd, served_inline, served_key_index, served_ms) \
     SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::int4[], $12::text[], \
     $13::bool[], $14::bool[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::int8[], \
     $20::text[], $21::bool[], $22::text[], $23::bool[], $24::float8[], $25::float8[], \
     $26::text[], $27::int8[], $28::text[], $29::text[], $30::int4[], $31::int8[], \
     $32::float8[]) \
     ON CONFLICT (request_id) DO NOTHING RETURNING request_id";

pub(super) const INSERT_ATTEMPTS: &str =
    "INSERT INTO attempts (request_id, idx, role, provider, model, \
     key_index, status, error_class, ms, input_tokens, output_tokens, cached_input_tokens, \
     cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown) \
     SELECT * FROM UNNEST($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[], \
     $6::int8[], $7::int4[], $8::text[], $9::float8[], $10::int8[], $11::int8[], $12::int8[], \
     $13::int8[], $14::int8[], $15::text[], $16::bool[]) \
     ON CONFLICT (request_id, idx) DO NOTHING";

pub(super) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Inserts `rows` and their attempts in one transaction; rows whose id is already stored are
/// counted as duplicates. On error nothing is committed.
pub(crate) async fn insert_rows(
    client: &mut deadpool_postgres::Object,
    rows: &[LedgerRow],
) -> Result<Inserted, LedgerError> {
    if rows.is_empty() {
        return Ok(Inserted::default());
    }
    let tx = client.transaction().await?;
    let insert_requests = tx.prepare_cached(INSERT_REQUESTS).await?;
    let insert_attempts = tx.prepare_cached(INSERT_ATTEMPTS).await?;

    let col = |f: &dyn Fn(&LedgerRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<String> = rows.iter().map(|r| r.request_id.clone()).collect();
    let ts: Vec<i64> = rows.iter().map(|r| r.ts_ms).collect();
    let key = col(&|r| r.gateway_key.clone());
    let feature = col(&|r| r.feature.clone());
    let route = col(&|r| r.route.clone());
    let endpoint: Vec<String> = rows.iter().map(|r| r.endpoint.clone()).collect();
    let requested = col(&|r| r.requested_model.clone());
    let provider = col(&|r| r.provider.clone());
    let model = col(&|r| r.model.clone());
    let attempt_count: Vec<i64> = rows.iter().map(|r| i64::from(r.attempt_count)).collect();
    let status: Vec<i32> = rows.iter().map(|r| i32::from(r.status)).collect();
    let error_class = col(&|r| r.error_class.clone());
    let cache_hit: Vec<bool> = rows.iter().map(|r| r.cache_hit).collect();
    let stream: Vec<bool> = rows.iter().map(|r| r.stream).collect();
    let tok = |f: &dyn Fn(&LedgerRow) -> u64| rows.iter().map(|r| count(f(r))).collect::<Vec<_>>();
    let input = tok(&|r| r.usage.input);
    let output = tok(&|r| r.usage.output);
    let cached = tok(&|r| r.usage.cached_input);
    let cache_write = tok(&|r| r.usage.cache_write);
    let reasoning = tok(&|r| r.usage.reasoning);
    let cost = col(&|r| r.cost_usd.map(|d| d.to_string()));
    let cost_unknown: Vec<bool> = rows.iter().map(|r| r.cost_unknown).collect();
    let saved = col(&|r| r.saved_usd.map(|d| d.to_string()));
    let estimated: Vec<bool> = rows.iter().map(|r| r.estimated).collect();
    let ttft: Vec<Option<f64>> = rows.iter().map(|r| r.ttft_ms).collect();
    let total: Vec<f64> = rows.iter().map(|r| r.total_ms).collect();
    let unit = col(&|r| r.unit.clone());
    let quantity: Vec<Option<i64>> = rows.iter().map(|r| r.quantity.map(count)).collect();
    let route_reason = col(&|r| r.route_reason.clone());
    let reserved = col(&|r| r.reserved_usd.map(|d| d.to_string()));
    // A row's only attempt kept in the row ([`crate::ledger::inline`]).
    let inline: Vec<Option<&LedgerAttempt>> = rows
        .iter()
        .map(crate::ledger::inline::inline_attempt)
        .collect();
    let served_inline: Vec<i32> = inline.iter().map(|a| i32::from(a.is_some())).collect();
    let served_key: Vec<Option<i64>> = inline
        .iter()
        .map(|a| a.and_then(|a| a.key_index).map(i64::from))
        .collect();
    let served_ms: Vec<Option<f64>> = inline.iter().map(|a| a.and_then(|a| a.ms)).collect();
    let new_ids: HashSet<String> = tx
        .query(
            &insert_requests,
            &[
                &ids,
                &ts,
                &key,
                &feature,
                &route,
                &endpoint,
                &requested,
                &provider,
                &model,
                &attempt_count,
                &status,
                &error_class,
                &cache_hit,
                &stream,
                &input,
                &output,
                &cached,
                &cache_write,
                &reasoning,
                &cost,
                &cost_unknown,
                &saved,
                &estimated,
                &ttft,
                &total,
                &unit,
                &quantity,
                &route_reason,
                &reserved,
                &served_inline,
                &served_key,
                &served_ms,
            ],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();

    let mut a = AttemptColumns::default();
    let mut rollup = crate::ledger::rollup::Rollup::default();
    // A request id twice in one batch: only its first row's attempts (the row kept).
    let mut seen: HashSet<&str> = HashSet::new();
    for (r, inline) in rows.iter().zip(&inline) {
        if new_ids.contains(&r.request_id) && seen.insert(&r.request_id) {
            if inline.is_none() {
                a.push(&r.request_id, &r.attempts, 0);
            }
            rollup.add(&crate::ledger::rollup::Contribution::of(r), 1);
        }
    }
    // Only rows this transaction inserted count: a replay adds nothing to the rollup.
    super::rollup::apply(&tx, &rollup).await?;
    a.insert(&*tx, &insert_attempts).await?;
    tx.commit().await?;
    let new = new_ids.len() as u64;
    Ok(Inserted {
        new,
        duplicates: rows.len() as u64 - new,
    })
}

impl AttemptColumns {
    /// Inserts the collected attempts with the prepared [`INSERT_ATTEMPTS`] (nothing if none).
    pub(super) async fn insert<C: tokio_postgres::GenericClient>(
        &self,
        c: &C,
        stmt: &tokio_postgres::Statement,
    ) -> Result<(), tokio_postgres::Error> {
        let a = self;
        if a.request_id.is_empty() {
            return Ok(());
        }
        c.execute(
            stmt,
            &[
                &a.request_id,
                &a.idx,
                &a.role,
                &a.provider,
                &a.model,
                &a.key_index,
                &a.status,
                &a.error_class,
                &a.ms,
                &a.input,
                &a.output,
                &a.cached,
                &a.cache_write,
                &a.reasoning,
                &a.cost,
                &a.cost_unknown,
            ],
        )
        .await
        .map(drop)
    }
}

/// The attempts of a batch, one array per column.
#[derive(Default)]
pub(super) struct AttemptColumns {
    request_id: Vec<String>,
    idx: Vec<i32>,
    role: Vec<&'static str>,
    provider: Vec<String>,
    model: Vec<String>,
    key_index: Vec<Option<i64>>,
    status: Vec<Option<i32>>,
    error_class: Vec<Option<String>>,
    ms: Vec<Option<f64>>,
    input: Vec<i64>,
    output: Vec<i64>,
    cached: Vec<i64>,
    cache_write: Vec<i64>,
    reasoning: Vec<i64>,
    cost: Vec<Option<String>>,
    cost_unknown: Vec<bool>,
}

impl AttemptColumns {
    /// Adds `attempts` of `request_id`, numbered from `first`.
    pub(super) fn push(&mut self, request_id: &str, attempts: &[LedgerAttempt], first: i32) {
        for (i, at) in attempts.iter().enumerate() {
            self.request_id.push(request_id.to_owned());
            self.idx
                .push(first.saturating_add(i32::try_from(i).unwrap_or(i32::MAX)));
            self.role.push(at.role.as_str());
            self.provider.push(at.provider.clone());
            self.model.push(at.model.clone());
            self.key_index.push(at.key_index.map(i64::from));
            self.status.push(at.status.map(i32::from));
            self.error_class.push(at.error_class.clone());
            self.ms.push(at.ms);
            self.input.push(count(at.usage.input));
            self.output.push(count(at.usage.output));
            self.cached.push(count(at.usage.cached_input));
            self.cache_write.push(count(at.usage.cache_write));
            self.reasoning.push(count(at.usage.reasoning));
            self.cost.push(at.cost_usd.map(|d| d.to_string()));
            self.cost_unknown.push(at.cost_unknown);
        }
    }
}
