//! Experiment results in the Postgres ledger (a fleet's shared database): the tables (Postgres
//! ledger migration 4), the writes ([`apply`], run by the ledger's writer inside its batch
//! transaction) and the reads ([`data`], [`owner`], [`promotions`]), with the same results as
//! the SQLite side in [`super::store`]. Every write is idempotent (see
//! [`ExperimentWrite`]), so a write replayed from a spill file, or sent by two instances,
//! is stored once.

use super::source::ExperimentData;
use super::store::{fold_facts, ExperimentWrite, FactRow, Shift, StoredJudgment};
use tokio_postgres::GenericClient;

/// The tables (Postgres ledger migration 3 -> 4). `experiment_shifts` is keyed by experiment,
/// time and kind so that a replayed shift is not logged twice.
pub const SCHEMA: &str = "CREATE TABLE experiment_requests (
        request_id TEXT PRIMARY KEY,
        experiment TEXT NOT NULL,
        variant TEXT NOT NULL,
        gateway_key TEXT,
        ts_ms BIGINT NOT NULL,
        sampled BOOLEAN NOT NULL
    );
    CREATE INDEX experiment_requests_exp ON experiment_requests (experiment, ts_ms);
    CREATE TABLE experiment_judgments (
        request_id TEXT PRIMARY KEY,
        experiment TEXT NOT NULL,
        variant TEXT NOT NULL,
        mode TEXT NOT NULL,
        ts_ms BIGINT NOT NULL,
        score DOUBLE PRECISION,
        opponent TEXT,
        first TEXT,
        winner TEXT,
        outcome DOUBLE PRECISION,
        unscored BOOLEAN NOT NULL,
        reason TEXT
    );
    CREATE INDEX experiment_judgments_exp ON experiment_judgments (experiment, ts_ms);
    CREATE TABLE experiment_feedback (
        request_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        ts_ms BIGINT NOT NULL,
        PRIMARY KEY (request_id, metric)
    );
    CREATE TABLE experiment_shifts (
        id BIGSERIAL PRIMARY KEY,
        experiment TEXT NOT NULL,
        ts_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        variant TEXT,
        reason TEXT NOT NULL,
        UNIQUE (experiment, ts_ms, kind)
    );";

/// Applies one write (inside the caller's transaction or savepoint).
pub async fn apply<C: GenericClient>(
    c: &C,
    w: &ExperimentWrite,
) -> Result<(), tokio_postgres::Error> {
    match w {
        ExperimentWrite::Assignment(a) => {
            c.execute(
                "INSERT INTO experiment_requests (request_id, experiment, variant, gateway_key, \
                 ts_ms, sampled) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (request_id) DO NOTHING",
                &[
                    &a.request_id,
                    &a.experiment,
                    &a.variant,
                    &a.gateway_key,
                    &a.ts_ms,
                    &a.sampled,
                ],
            )
            .await
        }
        ExperimentWrite::Judgment { ts_ms, judgment: j } => {
            c.execute(
                "INSERT INTO experiment_judgments (request_id, experiment, variant, mode, ts_ms, \
                 score, opponent, first, winner, outcome, unscored, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (request_id) DO UPDATE SET experiment = EXCLUDED.experiment, \
                 variant = EXCLUDED.variant, mode = EXCLUDED.mode, ts_ms = EXCLUDED.ts_ms, \
                 score = EXCLUDED.score, opponent = EXCLUDED.opponent, first = EXCLUDED.first, \
                 winner = EXCLUDED.winner, outcome = EXCLUDED.outcome, \
                 unscored = EXCLUDED.unscored, reason = EXCLUDED.reason",
                &[
                    &j.request_id,
                    &j.experiment,
                    &j.variant,
                    &j.mode,
                    ts_ms,
                    &j.score,
                    &j.opponent,
                    &j.first,
                    &j.winner,
                    &j.outcome,
                    &j.unscored.is_some(),
                    &j.unscored,
                ],
            )
            .await
        }
        ExperimentWrite::Feedback {
            request_id,
            metric,
            value,
            ts_ms,
        } => {
            c.execute(
                "INSERT INTO experiment_feedback (request_id, metric, value, ts_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (request_id, metric) \
                 DO UPDATE SET value = EXCLUDED.value, ts_ms = EXCLUDED.ts_ms",
                &[request_id, metric, value, ts_ms],
            )
            .await
        }
        ExperimentWrite::Shift { experiment, shift } => {
            c.execute(
                "INSERT INTO experiment_shifts (experiment, ts_ms, kind, variant, reason) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (experiment, ts_ms, kind) DO NOTHING",
                &[
                    experiment,
                    &shift.ts_ms,
                    &shift.kind,
                    &shift.variant,
                    &shift.reason,
                ],
            )
            .await
        }
    }
    .map(drop)
}

/// Everything the report of `experiment` needs, read in one repeatable-read snapshot.
pub async fn data<C: GenericClient>(
    c: &C,
    experiment: &str,
) -> Result<ExperimentData, tokio_postgres::Error> {
    let sql = super::store::requests_sql(crate::ledger::inline::CONDITION).replace("?1", "$1");
    let facts = c
        .query(&sql, &[&experiment])
        .await?
        .iter()
        .map(|r| {
            let role: Option<String> = r.get(5);
            FactRow {
                request_id: r.get(0),
                variant: r.get(1),
                status: r.get::<_, Option<i32>>(2).map(i64::from),
                error_class: r.get(3),
                total_ms: r.get(4),
                attempt: role.map(|role| (role, r.get(6), r.get(7))),
            }
        })
        .collect::<Vec<_>>();
    let judgments = c
        .query(
            "SELECT variant, score, opponent, outcome, unscored FROM experiment_judgments \
             WHERE experiment = $1 ORDER BY ts_ms, request_id",
            &[&experiment],
        )
        .await?
        .iter()
        .map(|r| StoredJudgment {
            variant: r.get(0),
            score: r.get(1),
            opponent: r.get(2),
            outcome: r.get(3),
            unscored: r.get(4),
        })
        .collect();
    let feedback = c
        .query(
            "SELECT e.variant, f.metric, COUNT(*), AVG(f.value) FROM experiment_feedback f \
             JOIN experiment_requests e ON e.request_id = f.request_id \
             WHERE e.experiment = $1 GROUP BY e.variant, f.metric ORDER BY f.metric",
            &[&experiment],
        )
        .await?
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                r.get(3),
            )
        })
        .collect();
    let shifts = c
        .query(
            "SELECT ts_ms, kind, variant, reason FROM experiment_shifts WHERE experiment = $1 \
             ORDER BY ts_ms, id",
            &[&experiment],
        )
        .await?
        .iter()
        .map(|r| Shift {
            ts_ms: r.get(0),
            kind: r.get(1),
            variant: r.get(2),
            reason: r.get(3),
        })
        .collect();
    Ok(ExperimentData {
        requests: fold_facts(facts),
        judgments,
        feedback,
        shifts,
    })
}

/// The gateway key that made `request_id` (`Some(None)`: a request without a key).
pub async fn owner<C: GenericClient>(
    c: &C,
    request_id: &str,
) -> Result<Option<Option<String>>, tokio_postgres::Error> {
    Ok(c.query_opt(
        "SELECT gateway_key FROM requests WHERE request_id = $1",
        &[&request_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Promotions recorded so far by any instance, oldest first: (experiment, variant).
pub async fn promotions<C: GenericClient>(
    c: &C,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    Ok(c.query(
        "SELECT experiment, variant FROM experiment_shifts \
             WHERE kind = 'promoted' AND variant IS NOT NULL ORDER BY ts_ms, id",
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}
