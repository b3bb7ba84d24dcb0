//! Attempts added to a row after it was written: calls the gateway makes for a request once
//! its answer is delivered (judge and shadow calls of experiments). They run on the writer
//! thread, like every write; the row's usage and cost become the sums again, with the new
//! attempts included (an unknown cost makes the row's cost unknown). `attempt_count` is left
//! alone: it counts the attempts of the client's own walk.

use rusqlite::{params, Connection, OptionalExtension};

use super::attempt::{appended, LedgerAttempt};
use super::rollup::Place;
use super::store::{from_sql_count, insert_attempts, parse_money, prepare_insert_attempt};
use crate::usage::Usage;

/// Attempts to add to the row `request_id`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Append {
    pub request_id: String,
    pub attempts: Vec<LedgerAttempt>,
}

/// Applies one [`Append`]; `Ok(false)` when the row is not in the database (yet).
pub(crate) fn append(conn: &Connection, a: &Append) -> rusqlite::Result<bool> {
    let row = conn
        .query_row(
            "SELECT cost_usd, cost_unknown, input_tokens, output_tokens, cached_input_tokens, \
             cache_write_tokens, reasoning_tokens, ts_ms, gateway_key, feature, provider, model, \
             saved_usd FROM requests WHERE request_id = ?1",
            [&a.request_id],
            |r| {
                Ok((
                    parse_money(r.get(0)?),
                    r.get::<_, bool>(1)?,
                    Usage {
                        input: from_sql_count(r.get(2)?),
                        output: from_sql_count(r.get(3)?),
                        cached_input: from_sql_count(r.get(4)?),
                        cache_write: from_sql_count(r.get(5)?),
                        reasoning: from_sql_count(r.get(6)?),
                    },
                    Place {
                        ts_ms: r.get(7)?,
                        dims: [r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?],
                        saved: parse_money(r.get(12)?),
                    },
                ))
            },
        )
        .optional()?;
    let Some((cost, unknown, usage, place)) = row else {
        return Ok(false);
    };
    let before_cost = cost.filter(|_| !unknown);
    // An inline attempt moves out to `attempts` first: the new ones follow it.
    conn.execute(super::inline::MATERIALISE, [&a.request_id])?;
    conn.execute(super::inline::CLEAR, [&a.request_id])?;
    let next: i64 = conn.query_row(
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM attempts WHERE request_id = ?1",
        [&a.request_id],
        |r| r.get(0),
    )?;
    // Inserted as their own numbered list, then shifted past the row's existing attempts.
    {
        let mut stmt = prepare_insert_attempt(conn)?;
        let tmp_id = format!("\u{1}append:{}", a.request_id);
        insert_attempts(&mut stmt, &tmp_id, &a.attempts)?;
        conn.execute(
            "UPDATE attempts SET request_id = ?1, idx = idx + ?2 WHERE request_id = ?3",
            params![a.request_id, next, tmp_id],
        )?;
    }
    let (total, new_usage) = appended(cost, unknown, &usage, &a.attempts);
    // The hourly rollup: the row's old figures out, its new ones in.
    let rollup = place.moved((before_cost, &usage), (total, &new_usage));
    super::rollup::apply(conn, &rollup)?;
    conn.execute(
        "UPDATE requests SET cost_usd = ?2, cost_unknown = ?3, input_tokens = ?4, \
         output_tokens = ?5, cached_input_tokens = ?6, cache_write_tokens = ?7, \
         reasoning_tokens = ?8 WHERE request_id = ?1",
        params![
            a.request_id,
            total.map(|d| d.to_string()),
            total.is_none(),
            i64::try_from(new_usage.input).unwrap_or(i64::MAX),
            i64::try_from(new_usage.output).unwrap_or(i64::MAX),
            i64::try_from(new_usage.cached_input).unwrap_or(i64::MAX),
            i64::try_from(new_usage.cache_write).unwrap_or(i64::MAX),
            i64::try_from(new_usage.reasoning).unwrap_or(i64::MAX),
        ],
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{read_row, Ledger, LedgerConfig, LedgerRow, Role};
    use rust_decimal::Decimal;

    fn served(cost: Decimal) -> LedgerAttempt {
        LedgerAttempt {
            status: Some(200),
            usage: Usage {
                input: 10,
                output: 5,
                ..Usage::default()
            },
            cost_usd: Some(cost),
            ..LedgerAttempt::unbilled(Role::Served, "openai", "gpt-4o-mini")
        }
    }

    #[tokio::test]
    async fn appended_attempts_join_the_row_and_its_cost_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let (ledger, handle) = Ledger::open(LedgerConfig::new(&path)).unwrap();
        let mut row = LedgerRow {
            request_id: "req_1".into(),
            endpoint: "chat_completions".into(),
            status: 200,
            ..LedgerRow::default()
        };
        row.set_attempts(vec![served(Decimal::new(3, 3))]);
        handle.record(row).await;
        let judge = LedgerAttempt {
            role: Role::Judge,
            model: "judge".into(),
            ..served(Decimal::new(2, 3))
        };
        handle
            .append(Append {
                request_id: "req_1".into(),
                attempts: vec![judge.clone(), judge],
            })
            .await;
        // A row that does not exist: dropped and counted, nothing else disturbed.
        handle
            .append(Append {
                request_id: "req_missing".into(),
                attempts: vec![served(Decimal::ONE)],
            })
            .await;
        handle.flush().await.unwrap();
        let got = read_row(&path, "req_1").unwrap().unwrap();
        assert_eq!(got.attempts.len(), 3);
        assert_eq!(got.attempts[1].role, Role::Judge);
        assert_eq!(got.cost_usd, Some(Decimal::new(7, 3)));
        assert_eq!((got.usage.input, got.usage.output), (30, 15));
        assert_eq!(handle.stats().extras_lost, 1);
        assert!(read_row(&path, "req_missing").unwrap().is_none());
        ledger.shutdown().unwrap();
    }
}
