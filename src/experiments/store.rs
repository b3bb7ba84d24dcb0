//! Experiment results in the ledger database (schema version 6, see `ledger::schema`): which
//! variant each request got, the judge's verdicts, application feedback and promotions.
//! Writes are [`ExperimentWrite`]s (data) applied on the ledger's writer thread; the SQLite
//! readers here open their own read-only connection and run off the proxy's threads. The
//! Postgres side of both is [`super::pg`]; [`super::source`] picks the configured one.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The tables (ledger migration 5 -> 6).
pub const SCHEMA: &str = "CREATE TABLE experiment_requests (
        request_id TEXT PRIMARY KEY NOT NULL,
        experiment TEXT NOT NULL,
        variant TEXT NOT NULL,
        gateway_key TEXT,
        ts_ms INTEGER NOT NULL,
        sampled INTEGER NOT NULL
    );
    CREATE INDEX experiment_requests_exp ON experiment_requests (experiment, ts_ms);
    CREATE TABLE experiment_judgments (
        request_id TEXT PRIMARY KEY NOT NULL,
        experiment TEXT NOT NULL,
        variant TEXT NOT NULL,
        mode TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        score REAL,
        opponent TEXT,
        first TEXT,
        winner TEXT,
        outcome REAL,
        unscored INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX experiment_judgments_exp ON experiment_judgments (experiment);
    CREATE TABLE experiment_feedback (
        request_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        ts_ms INTEGER NOT NULL,
        PRIMARY KEY (request_id, metric)
    ) WITHOUT ROWID;
    CREATE TABLE experiment_shifts (
        id INTEGER PRIMARY KEY,
        experiment TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        variant TEXT,
        reason TEXT NOT NULL
    );";

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A request of an experiment and the variant it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assigned {
    pub request_id: String,
    pub experiment: String,
    pub variant: String,
    pub gateway_key: Option<String>,
    pub ts_ms: i64,
    pub sampled: bool,
}

/// The judge's verdict on one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgment {
    pub request_id: String,
    pub experiment: String,
    /// The variant that served the request.
    pub variant: String,
    /// `score` or `pairwise`.
    pub mode: String,
    /// Score mode: 1 to 10.
    pub score: Option<f64>,
    /// Pairwise: the other variant, which of the two was shown first (as answer A), the
    /// judge's `winner` and the served variant's result (1 win, 0.5 tie, 0 loss).
    pub opponent: Option<String>,
    pub first: Option<String>,
    pub winner: Option<String>,
    pub outcome: Option<f64>,
    /// Why there is no verdict (`None` when there is one).
    pub unscored: Option<String>,
}

/// A promotion, or a promotion a guard blocked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub ts_ms: i64,
    /// `promoted` or `blocked`.
    pub kind: String,
    pub variant: Option<String>,
    pub reason: String,
}

/// One write of experiment results. Data, not code: the ledger's writer applies it to
/// whichever store it writes ([`ExperimentWrite::apply_sqlite`] here, [`super::pg`] for
/// Postgres), and when that store cannot take it, it waits in the spill file like a row.
/// Every write is idempotent, so a replayed one changes nothing: assignments are kept once,
/// a verdict or a feedback value replaces the same one, a shift is keyed by its experiment,
/// time and kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "write", rename_all = "snake_case")]
pub enum ExperimentWrite {
    Assignment(Assigned),
    Judgment {
        ts_ms: i64,
        judgment: Judgment,
    },
    Feedback {
        request_id: String,
        metric: String,
        value: f64,
        ts_ms: i64,
    },
    Shift {
        experiment: String,
        shift: Shift,
    },
}

pub fn record_assignment(a: Assigned) -> ExperimentWrite {
    ExperimentWrite::Assignment(a)
}

pub fn record_judgment(j: Judgment) -> ExperimentWrite {
    ExperimentWrite::Judgment {
        ts_ms: now_ms(),
        judgment: j,
    }
}

pub fn record_feedback(request_id: String, metric: String, value: f64) -> ExperimentWrite {
    ExperimentWrite::Feedback {
        request_id,
        metric,
        value,
        ts_ms: now_ms(),
    }
}

pub fn record_shift(experiment: String, shift: Shift) -> ExperimentWrite {
    ExperimentWrite::Shift { experiment, shift }
}

impl ExperimentWrite {
    /// The kind of write, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ExperimentWrite::Assignment(_) => "assignment",
            ExperimentWrite::Judgment { .. } => "judgment",
            ExperimentWrite::Feedback { .. } => "feedback",
            ExperimentWrite::Shift { .. } => "shift",
        }
    }

    /// Applies the write to the SQLite ledger (on the writer thread, inside its savepoint).
    pub fn apply_sqlite(&self, c: &Connection) -> rusqlite::Result<()> {
        match self {
            ExperimentWrite::Assignment(a) => c.execute(
                "INSERT OR IGNORE INTO experiment_requests (request_id, experiment, variant, \
                 gateway_key, ts_ms, sampled) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.request_id,
                    a.experiment,
                    a.variant,
                    a.gateway_key,
                    a.ts_ms,
                    a.sampled
                ],
            ),
            ExperimentWrite::Judgment { ts_ms, judgment: j } => c.execute(
                "INSERT OR REPLACE INTO experiment_judgments (request_id, experiment, variant, \
                 mode, ts_ms, score, opponent, first, winner, outcome, unscored, reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    j.request_id,
                    j.experiment,
                    j.variant,
                    j.mode,
                    ts_ms,
                    j.score,
                    j.opponent,
                    j.first,
                    j.winner,
                    j.outcome,
                    j.unscored.is_some(),
                    j.unscored,
                ],
            ),
            ExperimentWrite::Feedback {
                request_id,
                metric,
                value,
                ts_ms,
            } => c.execute(
                "INSERT OR REPLACE INTO experiment_feedback (request_id, metric, value, ts_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![request_id, metric, value, ts_ms],
            ),
            ExperimentWrite::Shift { experiment, shift } => c.execute(
                "INSERT INTO experiment_shifts (experiment, ts_ms, kind, variant, reason) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM experiment_shifts \
                 WHERE experiment = ?1 AND ts_ms = ?2 AND kind = ?3)",
                params![
                    experiment,
                    shift.ts_ms,
                    shift.kind,
                    shift.variant,
                    shift.reason
                ],
            ),
        }
        .map(drop)
    }
}

/// Opens the ledger read-only; `None` if it does not exist or predates experiments.
pub fn open(path: &Path) -> Result<Option<Connection>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = crate::ledger::store::open_reader(path).map_err(|e| e.to_string())?;
    let has: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = 'experiment_requests')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    Ok(has.then_some(conn))
}

/// The gateway key that made `request_id` (`Some(None)`: a request without a key).
pub fn owner(conn: &Connection, request_id: &str) -> rusqlite::Result<Option<Option<String>>> {
    conn.query_row(
        "SELECT gateway_key FROM requests WHERE request_id = ?1",
        [request_id],
        |r| r.get(0),
    )
    .optional()
}

/// One request of an experiment, with what the report needs from its ledger row.
#[derive(Clone, Debug, Default)]
pub struct RequestFacts {
    pub variant: String,
    pub ok: bool,
    pub total_ms: Option<f64>,
    /// Cost of the client's own attempts (`None`: unknown).
    pub served_cost: Option<rust_decimal::Decimal>,
    pub judge_cost: Option<rust_decimal::Decimal>,
    pub shadow_cost: Option<rust_decimal::Decimal>,
}

fn add_cost(
    sum: Option<rust_decimal::Decimal>,
    cost: Option<String>,
    unknown: bool,
) -> Option<rust_decimal::Decimal> {
    let c = crate::ledger::store::parse_money(cost)?;
    (!unknown).then_some(())?;
    Some(sum?.saturating_add(c))
}

/// The join the report reads requests from: every request of an experiment with its ledger
/// row (if written yet) and each of its attempts (`?1`: the experiment), a row's inline
/// attempt read from the row where `inline` holds ([`crate::ledger::inline`]). Both stores
/// run it.
pub fn requests_sql(inline: &str) -> String {
    use crate::ledger::inline::column;
    format!(
        "SELECT e.request_id, e.variant, r.status, r.error_class, r.total_ms, \
         CASE WHEN {inline} THEN 'served' ELSE a.role END, {}, {} \
         FROM experiment_requests e \
         LEFT JOIN requests r ON r.request_id = e.request_id \
         LEFT JOIN attempts a ON a.request_id = e.request_id \
         WHERE e.experiment = ?1 ORDER BY e.ts_ms, e.request_id, a.idx",
        column("cost_usd", inline),
        column("cost_unknown", inline),
    )
}

/// One row of [`requests_sql`].
#[derive(Clone, Debug, Default)]
pub struct FactRow {
    pub request_id: String,
    pub variant: String,
    pub status: Option<i64>,
    pub error_class: Option<String>,
    pub total_ms: Option<f64>,
    /// The attempt's role, cost and unknown flag (`None`: a request without attempts).
    pub attempt: Option<(String, Option<String>, bool)>,
}

/// Folds the join's rows (ordered by request) into one [`RequestFacts`] per request.
pub fn fold_facts(rows: impl IntoIterator<Item = FactRow>) -> Vec<RequestFacts> {
    let mut out: Vec<RequestFacts> = Vec::new();
    let mut current: Option<String> = None;
    for row in rows {
        if current.as_deref() != Some(row.request_id.as_str()) {
            let zero = Some(rust_decimal::Decimal::ZERO);
            out.push(RequestFacts {
                variant: row.variant.clone(),
                ok: row.status.is_some_and(|s| (200..300).contains(&s))
                    && row.error_class.is_none(),
                total_ms: row.total_ms,
                // No ledger row (yet): nothing is known of its cost.
                served_cost: if row.status.is_none() { None } else { zero },
                judge_cost: zero,
                shadow_cost: zero,
            });
            current = Some(row.request_id.clone());
        }
        let (Some(f), Some((role, cost, unknown))) = (out.last_mut(), row.attempt) else {
            continue;
        };
        let slot = match role.as_str() {
            "judge" => &mut f.judge_cost,
            "shadow" => &mut f.shadow_cost,
            _ => &mut f.served_cost,
        };
        *slot = add_cost(*slot, cost, unknown);
    }
    out
}

/// Every request of `experiment`, with its status, time and cost by role.
pub fn requests(conn: &Connection, experiment: &str) -> rusqlite::Result<Vec<RequestFacts>> {
    let sql = requests_sql(crate::ledger::store::inline_condition(conn)?);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([experiment], |r| {
        let role: Option<String> = r.get(5)?;
        Ok(FactRow {
            request_id: r.get(0)?,
            variant: r.get(1)?,
            status: r.get(2)?,
            error_class: r.get(3)?,
            total_ms: r.get(4)?,
            attempt: match role {
                Some(role) => Some((role, r.get(6)?, r.get(7)?)),
                None => None,
            },
        })
    })?;
    Ok(fold_facts(rows.collect::<rusqlite::Result<Vec<_>>>()?))
}

/// A stored verdict, as the report reads it (in the order they were recorded).
#[derive(Clone, Debug)]
pub struct StoredJudgment {
    pub variant: String,
    pub score: Option<f64>,
    pub opponent: Option<String>,
    pub outcome: Option<f64>,
    pub unscored: bool,
}

pub fn judgments(conn: &Connection, experiment: &str) -> rusqlite::Result<Vec<StoredJudgment>> {
    let mut stmt = conn.prepare(
        "SELECT variant, score, opponent, outcome, unscored FROM experiment_judgments \
         WHERE experiment = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([experiment], |r| {
        Ok(StoredJudgment {
            variant: r.get(0)?,
            score: r.get(1)?,
            opponent: r.get(2)?,
            outcome: r.get(3)?,
            unscored: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Feedback per variant and metric: (variant, metric, count, mean).
pub fn feedback(
    conn: &Connection,
    experiment: &str,
) -> rusqlite::Result<Vec<(String, String, u64, f64)>> {
    let mut stmt = conn.prepare(
        "SELECT e.variant, f.metric, COUNT(*), AVG(f.value) FROM experiment_feedback f \
         JOIN experiment_requests e ON e.request_id = f.request_id \
         WHERE e.experiment = ?1 GROUP BY e.variant, f.metric ORDER BY f.metric",
    )?;
    let rows = stmt.query_map([experiment], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            r.get(3)?,
        ))
    })?;
    rows.collect()
}

/// Promotions recorded by earlier runs, oldest first: (experiment, variant).
pub fn promotions(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT experiment, variant FROM experiment_shifts \
         WHERE kind = 'promoted' AND variant IS NOT NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn shifts(conn: &Connection, experiment: &str) -> rusqlite::Result<Vec<Shift>> {
    let mut stmt = conn.prepare(
        "SELECT ts_ms, kind, variant, reason FROM experiment_shifts WHERE experiment = ?1 \
         ORDER BY id",
    )?;
    let rows = stmt.query_map([experiment], |r| {
        Ok(Shift {
            ts_ms: r.get(0)?,
            kind: r.get(1)?,
            variant: r.get(2)?,
            reason: r.get(3)?,
        })
    })?;
    rows.collect()
}
