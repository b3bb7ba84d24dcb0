//! Experiment results in the ledger database (schema version 6, see `ledger::schema`): which
//! variant each request got, the judge's verdicts, application feedback and promotions.
//! Writes are [`crate::ledger::Job`]s run on the ledger's writer thread; reads open their own
//! read-only connection (reports, the feedback owner check) and run off the proxy's threads.

use crate::ledger::Job;
use rusqlite::{params, Connection, OptionalExtension};
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
#[derive(Clone, Debug, PartialEq)]
pub struct Assigned {
    pub request_id: String,
    pub experiment: String,
    pub variant: String,
    pub gateway_key: Option<String>,
    pub ts_ms: i64,
    pub sampled: bool,
}

pub fn record_assignment(a: Assigned) -> Job {
    Box::new(move |c: &Connection| {
        c.execute(
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
        )
        .map(drop)
    })
}

/// The judge's verdict on one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgment {
    pub request_id: String,
    pub experiment: String,
    /// The variant that served the request.
    pub variant: String,
    pub mode: &'static str,
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

pub fn record_judgment(j: Judgment) -> Job {
    Box::new(move |c: &Connection| {
        c.execute(
            "INSERT OR REPLACE INTO experiment_judgments (request_id, experiment, variant, mode, \
             ts_ms, score, opponent, first, winner, outcome, unscored, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                j.request_id,
                j.experiment,
                j.variant,
                j.mode,
                now_ms(),
                j.score,
                j.opponent,
                j.first,
                j.winner,
                j.outcome,
                j.unscored.is_some(),
                j.unscored,
            ],
        )
        .map(drop)
    })
}

pub fn record_feedback(request_id: String, metric: String, value: f64) -> Job {
    Box::new(move |c: &Connection| {
        c.execute(
            "INSERT OR REPLACE INTO experiment_feedback (request_id, metric, value, ts_ms) \
             VALUES (?1, ?2, ?3, ?4)",
            params![request_id, metric, value, now_ms()],
        )
        .map(drop)
    })
}

/// A promotion, or a promotion a guard blocked.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Shift {
    pub ts_ms: i64,
    /// `promoted` or `blocked`.
    pub kind: String,
    pub variant: Option<String>,
    pub reason: String,
}

pub fn record_shift(experiment: String, s: Shift) -> Job {
    Box::new(move |c: &Connection| {
        c.execute(
            "INSERT INTO experiment_shifts (experiment, ts_ms, kind, variant, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![experiment, s.ts_ms, s.kind, s.variant, s.reason],
        )
        .map(drop)
    })
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

/// Every request of `experiment`, with its status, time and cost by role.
pub fn requests(conn: &Connection, experiment: &str) -> rusqlite::Result<Vec<RequestFacts>> {
    let mut stmt = conn.prepare(
        "SELECT e.request_id, e.variant, r.status, r.error_class, r.total_ms \
         FROM experiment_requests e LEFT JOIN requests r ON r.request_id = e.request_id \
         WHERE e.experiment = ?1 ORDER BY e.ts_ms",
    )?;
    let mut attempts = conn.prepare_cached(
        "SELECT role, cost_usd, cost_unknown FROM attempts WHERE request_id = ?1",
    )?;
    let rows = stmt.query_map([experiment], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<f64>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, variant, status, error_class, total_ms) = row?;
        let zero = Some(rust_decimal::Decimal::ZERO);
        let mut f = RequestFacts {
            variant,
            ok: status.is_some_and(|s| (200..300).contains(&s)) && error_class.is_none(),
            total_ms,
            served_cost: zero,
            judge_cost: zero,
            shadow_cost: zero,
        };
        if status.is_none() {
            // The ledger row is not there (yet): nothing is known of its cost.
            f.served_cost = None;
        }
        let costs = attempts.query_map([&id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        for c in costs {
            let (role, cost, unknown) = c?;
            let slot = match role.as_str() {
                "judge" => &mut f.judge_cost,
                "shadow" => &mut f.shadow_cost,
                _ => &mut f.served_cost,
            };
            *slot = add_cost(*slot, cost, unknown);
        }
        out.push(f);
    }
    Ok(out)
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
