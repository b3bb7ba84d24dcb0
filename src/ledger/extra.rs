//! Writes that are not rows: attempts added to a row already written ([`super::Append`]:
//! judge and shadow calls) and experiment results ([`ExperimentWrite`]). They go through the
//! same queue and writer as rows, after the rows of their batch, into whichever store the
//! writer has; when it cannot take them (the queue stays full, the writer has stopped,
//! Postgres is unreachable) they wait in the spill file, one `{"extra": ...}` line each, and
//! are replayed in order with the rows around them.
//!
//! A replay must not count anything twice. Experiment writes are idempotent by their keys;
//! an append carries a random `id`, which the Postgres ledger records with the attempts it
//! adds (`ledger_appends`), so an append seen again is skipped. (The SQLite ledger adds the
//! attempts again if a spill file is replayed twice, which only a crash between committing
//! an import and deleting its file can cause.)

use serde::{Deserialize, Serialize};

use super::Append;
use crate::experiments::store::ExperimentWrite;

/// One write that is not a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extra {
    /// Attempts for the row `append.request_id`; `id` names this append (for replays).
    Append {
        id: String,
        append: Append,
    },
    Experiment(ExperimentWrite),
}

impl Extra {
    /// An append with a fresh id.
    pub fn append(append: Append) -> Extra {
        Extra::Append {
            id: format!("{:032x}", rand::random::<u128>()),
            append,
        }
    }

    /// For logs: what the write is about.
    pub fn describe(&self) -> String {
        match self {
            Extra::Append { append, .. } => format!("attempts for {}", append.request_id),
            Extra::Experiment(w) => format!("experiment write ({})", w.kind()),
        }
    }
}

/// The spill-file line of an extra (rows are bare [`super::LedgerRow`] objects).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Line {
    pub(crate) extra: Extra,
}

/// Applies `extras` to the SQLite ledger in one transaction, each in its own savepoint; the
/// messages of those that were dropped (see [`super::writer`]'s `Sink::apply_extras`).
pub(crate) fn apply_sqlite(
    conn: &mut rusqlite::Connection,
    extras: &[Extra],
) -> rusqlite::Result<Vec<String>> {
    let mut dropped = Vec::new();
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for extra in extras {
        let sp = tx.savepoint()?;
        let done = match extra {
            Extra::Append { append, .. } => match super::append::append(&sp, append) {
                Ok(true) => Ok(()),
                Ok(false) => Err("the row is not in the database".to_owned()),
                Err(e) => Err(e.to_string()),
            },
            Extra::Experiment(w) => w.apply_sqlite(&sp).map_err(|e| e.to_string()),
        };
        match done {
            Ok(()) => sp.commit()?,
            Err(why) => {
                dropped.push(format!("{} dropped: {why}", extra.describe()));
                drop(sp);
            }
        }
    }
    tx.commit()?;
    Ok(dropped)
}
