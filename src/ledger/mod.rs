//! Request ledger: exactly one SQLite row per client request (with its attempts), written off
//! the request path.
//!
//! Every request the gateway answers (successful, failed, served from cache or cancelled by the
//! client) becomes one [`LedgerRow`], keyed by `request_id` (the table's PRIMARY KEY; a second
//! row with the same id is ignored and counted as a duplicate).
//!
//! Writing never happens on the proxy's tokio worker threads:
//! - [`LedgerHandle::record`] puts the row on a bounded queue (`try_send`). When the queue is
//!   full it waits at most [`LedgerConfig::max_wait`] for room (counted in
//!   [`LedgerStats::producer_waits`]); if there is still no room, the row is appended to a JSONL
//!   *spill file* next to the database (counted in [`LedgerStats::rows_spilled`]) instead of
//!   being dropped.
//! - A dedicated OS thread (`switchyard-ledger`) owns the SQLite connection. It drains the queue
//!   in batches (up to [`LedgerConfig::batch_max`] rows, or whatever arrived within
//!   [`LedgerConfig::flush_interval`]), one transaction per batch, and re-imports spill files
//!   on start, whenever it has caught up with the queue, and at shutdown. A batch that fails to
//!   commit is spilled too, so a broken or locked database delays rows instead of losing them.
//! - [`Ledger::shutdown`] (or dropping the [`Ledger`]) closes the queue, writes everything
//!   already queued, imports the spill files and joins the thread.
//!
//! Money is [`rust_decimal::Decimal`], stored as exact TEXT; reports add it up in Rust.
//!
//! A row holds every costed call the request made ([`LedgerAttempt`]: the served one, the
//! failed and skipped ones before it, and calls that did not serve the client: race losers,
//! hedges, judge and shadow calls), each with its [`Role`], tokens and exact cost. The row's
//! usage and cost are their sums ([`LedgerRow::set_attempts`]); any attempt with an unknown
//! cost makes the row's cost unknown.
//!
//! Attempts are stored in a child table `attempts (request_id, idx, ...)` rather than as a
//! JSON column: the spend report by model or provider sums them per attempt with one indexed
//! join (the primary key `(request_id, idx)` of a `WITHOUT ROWID` table, so a row's attempts
//! sit together and are found by the request's key), exact TEXT money stays in one column per
//! attempt, and `sqlite3` users can query attempts directly (`... WHERE role = 'race_loser'`).
//! Reports that group by key, feature or route read only `requests`, as before. A JSON column
//! would have kept inserts to one B-tree but made every per-model report parse JSON per row.
//! Ids are time-ordered, so the child table grows at its end like the parent.
//!
//! Files:
//! - [`attempt`]: [`LedgerAttempt`], [`Role`] and the sums ([`Totals`]).
//! - `schema`: the tables and their migrations by `PRAGMA user_version`.
//! - [`store`]: connection set-up (WAL, `synchronous=NORMAL`, busy timeout), row
//!   (de)serialisation, inserts and small read helpers.
//! - `legacy`: schema-2 rows (one attempt priced, the rest as a JSON string) turned into
//!   attempts, for the in-place migration and for old spill files.
//! - `spill`: the append-only overflow files and their import.
//! - `writer`: [`Ledger`], [`LedgerHandle`] and the writer thread.
//! - [`extra`]: writes that are not rows (appended attempts, experiment results), queued,
//!   spilled and replayed like rows.
//! - [`rollup`]: the hourly spend rollup the writer keeps with the rows (dashboard charts).
//! - [`report`]: read-only spend reports ([`spend_report`]) and [`parse_since`].
//! - [`postgres`]: the ledger in Postgres for a fleet of gateways (`[ledger] store`): the
//!   writer's other store, and its readers.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::usage::Usage;

pub mod append;
pub mod attempt;
pub mod extra;
pub(crate) mod inline;
mod legacy;
mod media_units;
pub mod postgres;
pub mod report;
pub mod rollup;
pub(crate) mod schema;
mod spill;
pub mod store;
mod writer;

#[cfg(test)]
mod attempt_tests;
#[cfg(test)]
mod tests;

pub use append::Append;
pub use attempt::{LedgerAttempt, Role, Totals};
pub use extra::Extra;
pub use report::{
    parse_query, parse_since, spend_report, spend_report_range, GroupBy, SpendReport, SpendRow,
};
pub use schema::SCHEMA_VERSION;
pub use store::{count_rows, read_row, schema_version};
pub use writer::{Ledger, LedgerHandle, WriterPause};

/// One client request, as written to the ledger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub request_id: String,
    /// Unix milliseconds when the request started.
    pub ts_ms: i64,
    /// The gateway key's NAME, never its secret.
    pub gateway_key: Option<String>,
    /// From the `x-switchyard-feature` header or request metadata.
    pub feature: Option<String>,
    pub route: Option<String>,
    /// `chat_completions`, `messages`, `embeddings`, ...
    pub endpoint: String,
    pub requested_model: Option<String>,
    /// The provider that served (for a cache hit: the one that produced the stored answer).
    pub provider: Option<String>,
    /// The upstream model that served (for a cache hit: the one that produced the answer).
    pub model: Option<String>,
    /// Every call the request made, in order, each with its role, tokens and cost.
    #[serde(default)]
    pub attempts: Vec<LedgerAttempt>,
    /// Attempts that reached a provider (skips excluded).
    pub attempt_count: u32,
    /// Status sent to the client (0 = the client went away before any was sent).
    pub status: u16,
    pub error_class: Option<String>,
    pub cache_hit: bool,
    pub stream: bool,
    /// Tokens of every attempt, summed.
    pub usage: Usage,
    /// The sum of the attempts' costs; `None` = unknown (some attempt's model is unpriced).
    pub cost_usd: Option<Decimal>,
    pub cost_unknown: bool,
    /// Cache hits: the cost that was avoided.
    pub saved_usd: Option<Decimal>,
    /// Tokens were estimated (the stream ended without a usage report).
    pub estimated: bool,
    pub ttft_ms: Option<f64>,
    pub total_ms: f64,
    /// What the cost is counted in: `tokens`, `images`, `seconds`, `characters`.
    #[serde(default)]
    pub unit: Option<String>,
    /// How many of `unit` the request used (`None`: unknown).
    #[serde(default)]
    pub quantity: Option<u64>,
    /// Why routing chose as it did (the `x-switchyard-route-reason` text).
    #[serde(default)]
    pub route_reason: Option<String>,
    /// What governance reserved for the request before its call (its worst case at the
    /// dearest candidate's price), when a limit or budget applied; `None` otherwise, or when
    /// a candidate had no price.
    #[serde(default)]
    pub reserved_usd: Option<Decimal>,
}

impl LedgerRow {
    /// Whether the request counts as an error in reports: no status sent (client went away),
    /// a 4xx/5xx status, or an error class (e.g. a stream that failed after its 200).
    pub fn is_error(&self) -> bool {
        self.status == 0 || self.status >= 400 || self.error_class.is_some()
    }

    /// Whether the cost is unknown (`cost_usd` is `None` or `cost_unknown` is set).
    pub fn has_unknown_cost(&self) -> bool {
        self.cost_unknown || self.cost_usd.is_none()
    }

    /// Sets the attempts and the row's usage and cost to their sums ([`Totals::of`]); no
    /// attempts (a cache hit, an error answered by the gateway) means no tokens and $0.
    pub fn set_attempts(&mut self, attempts: Vec<LedgerAttempt>) {
        let t = Totals::of(&attempts);
        self.usage = t.usage;
        self.cost_usd = t.cost_usd;
        self.cost_unknown = t.cost_unknown;
        self.attempts = attempts;
    }

    /// The attempt whose answer the client got, if any.
    pub fn served(&self) -> Option<&LedgerAttempt> {
        self.attempts.iter().rev().find(|a| a.role == Role::Served)
    }
}

/// Where the ledger lives and how the writer batches.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// SQLite database file; parent directories are created. Spill files are written next to
    /// it as `<file name>.spill*.jsonl`.
    pub path: PathBuf,
    /// Rows the queue holds before producers have to wait (at least 1).
    pub queue_capacity: usize,
    /// Most rows written in one transaction (at least 1).
    pub batch_max: usize,
    /// How long the writer gathers rows for one batch after the first one arrives.
    pub flush_interval: Duration,
    /// How long a producer waits for room in a full queue before spilling the row.
    pub max_wait: Duration,
    /// Write to this Postgres database instead of the SQLite file at `path` (spill files
    /// still go next to `path`).
    pub postgres: Option<postgres::PgUrl>,
}

impl LedgerConfig {
    /// The defaults: queue 8192, batches of up to 512 rows, 200 ms flush interval,
    /// 50 ms bounded producer wait.
    pub fn new(path: impl Into<PathBuf>) -> LedgerConfig {
        LedgerConfig {
            path: path.into(),
            queue_capacity: 8192,
            batch_max: 512,
            flush_interval: Duration::from_millis(200),
            max_wait: Duration::from_millis(50),
            postgres: None,
        }
    }
}

/// Counters for Prometheus. All are monotonic except `rows_queued` (a gauge).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LedgerStats {
    /// Rows newly inserted into the database (from the queue and from spill files).
    pub rows_written: u64,
    /// Rows waiting in the queue right now (gauge).
    pub rows_queued: u64,
    /// Times a producer found the queue full and had to wait.
    pub producer_waits: u64,
    /// Rows appended to a spill file (queue still full after `max_wait`, queue closed, or a
    /// batch that failed to commit).
    pub rows_spilled: u64,
    /// Rows read back from spill files and committed (new rows and duplicates alike).
    pub spill_imported: u64,
    /// Failed batch commits, spill imports and spill appends.
    pub write_errors: u64,
    /// Batches committed from the queue.
    pub batches: u64,
    /// Rows ignored because their `request_id` was already in the database.
    pub duplicates: u64,
    /// Rows that could be neither written nor spilled (e.g. disk full); logged as errors.
    pub rows_lost: u64,
    /// Unreadable spill-file lines skipped on import (e.g. a line cut short by a crash).
    pub spill_bad_lines: u64,
    /// Appended attempts and experiment writes that could not be applied (their row
    /// missing, a statement refused) or not even spilled; logged.
    pub extras_lost: u64,
    /// Appended attempts and experiment writes put in the spill file (the queue full, the
    /// writer stopped, the store unreachable), to be replayed with it.
    pub extras_spilled: u64,
}

/// Everything that can go wrong opening, writing or reading the ledger.
#[derive(Debug)]
pub enum LedgerError {
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
    /// The database was written by a newer switchyard (its `user_version` is higher than ours).
    SchemaTooNew {
        found: i64,
        supported: i64,
    },
    /// The database file does not exist (reports never create one).
    NotFound(PathBuf),
    /// The writer has stopped (shut down or died); rows now go to the spill file.
    Closed,
    /// Rows could not be committed yet (they are kept in spill files and retried).
    Write(String),
    /// The writer thread panicked.
    WriterPanicked,
    /// A Postgres ledger could not be reached or refused a statement.
    Postgres(String),
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Sqlite(e) => write!(f, "ledger database error: {e}"),
            LedgerError::Io(e) => write!(f, "ledger I/O error: {e}"),
            LedgerError::SchemaTooNew { found, supported } => write!(
                f,
                "ledger schema version {found} is newer than this switchyard supports ({supported})"
            ),
            LedgerError::NotFound(p) => write!(f, "ledger database {} does not exist", p.display()),
            LedgerError::Closed => f.write_str("ledger writer has stopped"),
            LedgerError::Write(msg) => write!(f, "ledger rows not yet written: {msg}"),
            LedgerError::WriterPanicked => f.write_str("ledger writer thread panicked"),
            LedgerError::Postgres(msg) => write!(f, "ledger Postgres error: {msg}"),
        }
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LedgerError::Sqlite(e) => Some(e),
            LedgerError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Sqlite(e)
    }
}

impl From<std::io::Error> for LedgerError {
    fn from(e: std::io::Error) -> Self {
        LedgerError::Io(e)
    }
}
