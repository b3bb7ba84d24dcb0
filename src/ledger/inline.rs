//! A row's only attempt, kept in the row itself.
//!
//! Most requests make one call, and that call is the row: the same provider, model, status,
//! error, tokens and cost. Such a row keeps its attempt inline (`requests.served_inline = 1`,
//! with the two facts the row lacks in `served_key_index` and `served_ms`) instead of as a
//! row of `attempts`. A second B-tree insert per request was a fifth of the writer's work
//! (load-tests/RESULTS.md, "Inline served attempts").
//!
//! Every reader puts the attempt back, in SQL, for both stores:
//! - one row's attempts ([`ATTEMPTS_OF_ONE`] and the Postgres reader) add the inline one with
//!   `UNION ALL`, numbered 0;
//! - the joins of reports ([`column`]) read the row's own columns where `served_inline` is set
//!   (such a row has no `attempts` rows to join);
//! - an append ([`MATERIALISE`], then [`CLEAR`]) first moves the inline attempt out to
//!   `attempts` as idx 0, so appended attempts follow it as before.
//!
//! Rows written before this (schema 10 in SQLite, 7 in Postgres) have `served_inline = 0` and
//! their attempts in `attempts`, and read as they always did.

use super::{LedgerAttempt, LedgerRow, Role};

/// SQLite schema 10.
pub const SQLITE_MIGRATION: &str =
    "ALTER TABLE requests ADD COLUMN served_inline INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN served_key_index INTEGER;
    ALTER TABLE requests ADD COLUMN served_ms REAL;";

/// Postgres schema 7.
pub const PG_MIGRATION: &str = "ALTER TABLE requests \
    ADD COLUMN served_inline INTEGER NOT NULL DEFAULT 0, \
    ADD COLUMN served_key_index BIGINT, \
    ADD COLUMN served_ms DOUBLE PRECISION;";

/// The condition, on `requests r`, of a row whose attempt is inline.
pub const CONDITION: &str = "r.served_inline = 1";
/// [`CONDITION`] for a SQLite file from before schema 10 (readers never migrate).
pub const NEVER: &str = "0 = 1";

/// The attempt `row` keeps inline, if it qualifies: its only attempt, the one that served,
/// with the row's own provider, model, status, error, tokens and cost (same scale).
pub fn inline_attempt(row: &LedgerRow) -> Option<&LedgerAttempt> {
    let [a] = row.attempts.as_slice() else {
        return None;
    };
    let same_cost = match (a.cost_usd, row.cost_usd) {
        (Some(x), Some(y)) => x == y && x.scale() == y.scale(),
        (None, None) => true,
        _ => false,
    };
    (a.role == Role::Served
        && row.provider.as_deref() == Some(a.provider.as_str())
        && row.model.as_deref() == Some(a.model.as_str())
        && a.status == Some(row.status)
        && a.error_class == row.error_class
        && a.usage == row.usage
        && same_cost
        && a.cost_unknown == row.cost_unknown)
        .then_some(a)
}

/// An attempt column of a report's `requests r LEFT JOIN attempts a`: the row's own column
/// when its attempt is inline (`inline` is [`CONDITION`] or [`NEVER`]).
pub fn column(name: &str, inline: &str) -> String {
    format!("CASE WHEN {inline} THEN r.{name} ELSE a.{name} END")
}

/// One row's attempts, each with its idx first, in order (`?1`: the request id; schema 10).
/// The attempt columns are `ATTEMPT_COLUMNS` of the store.
pub const ATTEMPTS_OF_ONE: &str = "SELECT idx, role, provider, model, key_index, status, \
     error_class, ms, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
     reasoning_tokens, cost_usd, cost_unknown FROM attempts WHERE request_id = ?1 \
     UNION ALL SELECT 0, 'served', provider, model, served_key_index, status, error_class, \
     served_ms, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
     reasoning_tokens, cost_usd, cost_unknown FROM requests \
     WHERE request_id = ?1 AND served_inline = 1 ORDER BY 1";

/// The inline attempts of several rows (Postgres, `$1`: the ids), in the columns of
/// `request_id` then the attempt columns.
pub const PG_INLINE_OF: &str = "SELECT request_id, 'served', provider, model, \
     served_key_index, status, error_class, served_ms, input_tokens, output_tokens, \
     cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown \
     FROM requests WHERE request_id = ANY($1) AND served_inline = 1";

/// Moves row `?1`'s inline attempt out to `attempts` as idx 0 (nothing if it has none).
/// Followed by [`CLEAR`]. Both stores run them (`$1` for Postgres).
pub const MATERIALISE: &str = "INSERT INTO attempts (request_id, idx, role, provider, model, \
     key_index, status, error_class, ms, input_tokens, output_tokens, cached_input_tokens, \
     cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown) \
     SELECT request_id, 0, 'served', provider, model, served_key_index, status, error_class, \
     served_ms, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
     reasoning_tokens, cost_usd, cost_unknown FROM requests \
     WHERE request_id = ?1 AND served_inline = 1";

/// Marks row `?1`'s attempt as no longer inline (after [`MATERIALISE`]).
pub const CLEAR: &str = "UPDATE requests SET served_inline = 0, served_key_index = NULL, \
     served_ms = NULL WHERE request_id = ?1 AND served_inline = 1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;
    use rust_decimal::Decimal;

    fn row(attempts: Vec<LedgerAttempt>) -> LedgerRow {
        let mut r = LedgerRow {
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            status: 200,
            ..LedgerRow::default()
        };
        r.set_attempts(attempts);
        r
    }

    fn served() -> LedgerAttempt {
        LedgerAttempt {
            status: Some(200),
            key_index: Some(1),
            ms: Some(12.5),
            usage: Usage {
                input: 10,
                output: 3,
                ..Usage::default()
            },
            cost_usd: Some(Decimal::new(1500, 6)),
            ..LedgerAttempt::unbilled(Role::Served, "openai", "gpt-4o-mini")
        }
    }

    #[test]
    fn only_a_lone_served_attempt_that_matches_its_row_is_inline() {
        assert!(inline_attempt(&row(vec![served()])).is_some());
        assert!(inline_attempt(&row(vec![])).is_none());
        let failed = LedgerAttempt {
            status: Some(503),
            ..LedgerAttempt::unbilled(Role::Failed, "openai", "gpt-4o-mini")
        };
        assert!(inline_attempt(&row(vec![failed, served()])).is_none());
        // Served by another model than the row names.
        let mut other = row(vec![served()]);
        other.model = Some("gpt-4o".into());
        assert!(inline_attempt(&other).is_none());
        // A stream that failed after its 200: the row's error is not the attempt's.
        let mut broken = row(vec![served()]);
        broken.error_class = Some("stream_error".into());
        assert!(inline_attempt(&broken).is_none());
        // The same cost at another scale would read back differently.
        let mut scaled = row(vec![served()]);
        scaled.cost_usd = Some(Decimal::new(15, 4));
        assert!(inline_attempt(&scaled).is_none());
        // An unpriced model: unknown on both sides.
        let unpriced = LedgerAttempt {
            cost_usd: None,
            cost_unknown: true,
            ..served()
        };
        assert!(inline_attempt(&row(vec![unpriced])).is_some());
    }
}
