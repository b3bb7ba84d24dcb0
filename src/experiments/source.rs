//! Where experiment results are read from: one interface ([`ExperimentSource`]), two
//! implementations: the SQLite ledger file ([`SqliteSource`]) and the fleet's Postgres ledger
//! ([`PostgresSource`]), whichever `[ledger]` configures ([`for_config`]). The report, the
//! feedback owner check and the promotions read at start all go through it.
//!
//! The calls block: run them off the proxy's threads (`spawn_blocking`, the CLI). Postgres
//! queries run on the ledger store's own runtime ([`PgStore::call_blocking`]).

use super::store::{self, RequestFacts, Shift, StoredJudgment};
use crate::config::Config;
use crate::ledger::postgres::PgStore;
use crate::ledger::LedgerHandle;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything an experiment's report is built from.
#[derive(Clone, Debug, Default)]
pub struct ExperimentData {
    pub requests: Vec<RequestFacts>,
    /// In the order they were recorded.
    pub judgments: Vec<StoredJudgment>,
    /// (variant, metric, count, mean).
    pub feedback: Vec<(String, String, u64, f64)>,
    pub shifts: Vec<Shift>,
}

/// Reads experiment results from a ledger store.
pub trait ExperimentSource: Send + Sync {
    /// The results of `experiment` (empty when the store has none yet).
    fn data(&self, experiment: &str) -> Result<ExperimentData, String>;
    /// The gateway key that made `request_id`: `None` if no such request is stored,
    /// `Some(None)` for a request made without a key.
    fn owner(&self, request_id: &str) -> Result<Option<Option<String>>, String>;
    /// Promotions recorded so far, oldest first: (experiment, variant).
    fn promotions(&self) -> Result<Vec<(String, String)>, String>;
}

/// The SQLite ledger file; a missing file (or one older than experiments) reads as empty.
pub struct SqliteSource {
    pub path: PathBuf,
}

impl ExperimentSource for SqliteSource {
    fn data(&self, experiment: &str) -> Result<ExperimentData, String> {
        let Some(c) = store::open(&self.path)? else {
            return Ok(ExperimentData::default());
        };
        let err = |e: rusqlite::Error| format!("reading the ledger: {e}");
        Ok(ExperimentData {
            requests: store::requests(&c, experiment).map_err(err)?,
            judgments: store::judgments(&c, experiment).map_err(err)?,
            feedback: store::feedback(&c, experiment).map_err(err)?,
            shifts: store::shifts(&c, experiment).map_err(err)?,
        })
    }

    fn owner(&self, request_id: &str) -> Result<Option<Option<String>>, String> {
        let Some(c) = store::open(&self.path)? else {
            return Ok(None);
        };
        store::owner(&c, request_id).map_err(|e| e.to_string())
    }

    fn promotions(&self) -> Result<Vec<(String, String)>, String> {
        let Some(c) = store::open(&self.path)? else {
            return Ok(Vec::new());
        };
        store::promotions(&c).map_err(|e| e.to_string())
    }
}

/// The Postgres ledger shared by a fleet: every instance's requests, verdicts and feedback.
pub struct PostgresSource {
    pub store: Arc<PgStore>,
}

fn pg_err(e: tokio_postgres::Error) -> crate::ledger::LedgerError {
    e.into()
}

impl ExperimentSource for PostgresSource {
    fn data(&self, experiment: &str) -> Result<ExperimentData, String> {
        let name = experiment.to_owned();
        self.store
            .call_blocking(move |s| async move {
                let mut client = s.client().await?;
                // One snapshot, so the counts, verdicts and feedback agree with each other.
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(pg_err)?;
                let data = super::pg::data(&*tx, &name).await.map_err(pg_err)?;
                tx.commit().await.map_err(pg_err)?;
                Ok(data)
            })
            .map_err(|e| e.to_string())
    }

    fn owner(&self, request_id: &str) -> Result<Option<Option<String>>, String> {
        let id = request_id.to_owned();
        self.store
            .call_blocking(move |s| async move {
                let client = s.client().await?;
                super::pg::owner(&**client, &id).await.map_err(pg_err)
            })
            .map_err(|e| e.to_string())
    }

    fn promotions(&self) -> Result<Vec<(String, String)>, String> {
        self.store
            .call_blocking(move |s| async move {
                let client = s.client().await?;
                super::pg::promotions(&**client).await.map_err(pg_err)
            })
            .map_err(|e| e.to_string())
    }
}

/// The store `config`'s `[ledger]` names: its Postgres database (through `ledger`'s pool when
/// the gateway runs one; the CLI opens its own) or its SQLite file.
pub fn for_config(
    config: &Config,
    ledger: Option<&LedgerHandle>,
) -> Result<Box<dyn ExperimentSource>, String> {
    match &config.ledger.postgres {
        None => Ok(Box::new(SqliteSource {
            path: config.ledger.path.clone(),
        })),
        Some(url) => {
            let store = match ledger.and_then(LedgerHandle::postgres) {
                Some(pg) => Arc::clone(pg),
                None => PgStore::new(url).map_err(|e| e.to_string())?,
            };
            Ok(Box::new(PostgresSource { store }))
        }
    }
}
