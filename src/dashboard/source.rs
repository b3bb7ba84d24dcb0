//! Where the dashboard reads the ledger: one interface ([`Source`]) with a SQLite and a
//! Postgres implementation, so the page shows the fleet's traffic when `[ledger] store` is a
//! Postgres URL. Both read the spend series the same way ([`series::Plan`]: the hourly rollup
//! for whole hours, the rows for the window's first partial hour or for short buckets) and give
//! the same JSON for one request (its row, attempts, routing waterfall and kept bodies; bodies
//! stay in the local SQLite file either way).
//!
//! The request list (`GET /admin/requests`) already reads either store in
//! [`crate::admin::requests`]; the page reads it there.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use super::series::{self, Filler, Plan, Series, SeriesQuery};
use crate::ledger::postgres::PgStore;
use crate::ledger::LedgerError;

/// The configured ledger store, as the dashboard reads it.
#[derive(Clone, Debug)]
pub enum Source {
    /// The SQLite file (`[ledger] path`).
    Sqlite(PathBuf),
    /// Postgres (`[ledger] store`); `bodies` is the local file holding kept bodies.
    Postgres {
        store: Arc<PgStore>,
        bodies: PathBuf,
    },
}

impl Source {
    /// The store a gateway writes to: Postgres when its ledger has one, else the file.
    pub fn of(ledger: Option<&crate::ledger::LedgerHandle>, path: PathBuf) -> Source {
        match ledger.and_then(|l| l.postgres()) {
            Some(pg) => Source::Postgres {
                store: Arc::clone(pg),
                bodies: path,
            },
            None => Source::Sqlite(path),
        }
    }

    /// Spend over time (`GET /admin/spend/series`).
    pub async fn series(&self, q: SeriesQuery) -> Result<Series, String> {
        match self {
            Source::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || series::read(&path, &q))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Source::Postgres { store, .. } => {
                postgres_series(store, q).await.map_err(|e| e.to_string())
            }
        }
    }

    /// One request as `GET /admin/requests/{id}` shows it; `None` when there is none.
    pub async fn request(&self, id: String) -> Result<Option<Value>, String> {
        match self {
            Source::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || crate::admin::requests::one(&path, &id))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Source::Postgres { store, bodies } => {
                crate::admin::requests::one_from_postgres(store, bodies.clone(), id).await
            }
        }
    }
}

fn money(t: Option<String>) -> Option<Decimal> {
    t.and_then(|t| Decimal::from_str(t.trim()).ok())
}

/// The series from Postgres, read in one repeatable-read transaction so the rows and the
/// rollup agree.
async fn postgres_series(store: &Arc<PgStore>, q: SeriesQuery) -> Result<Series, LedgerError> {
    store
        .call(move |s| async move {
            let mut client = s.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let oldest: Option<i64> = tx
                .query_one("SELECT MIN(ts_ms) FROM requests", &[])
                .await?
                .get(0);
            let since_ms = if q.since_ms == 0 {
                oldest.unwrap_or(q.until_ms).min(q.until_ms)
            } else {
                q.since_ms
            };
            let plan = Plan::new(&q, since_ms, true);
            let mut fill = Filler::new(&q, plan);
            if plan.rows_until > since_ms {
                let rows = tx
                    .query(
                        "SELECT ts_ms, gateway_key, feature, provider, model, cost_usd, saved_usd \
                         FROM requests WHERE ts_ms >= $1 AND ts_ms < $2",
                        &[&since_ms, &plan.rows_until],
                    )
                    .await?;
                for r in rows {
                    let dims: [Option<&str>; 4] = [r.get(1), r.get(2), r.get(3), r.get(4)];
                    fill.row(r.get(0), &dims, money(r.get(5)), money(r.get(6)));
                }
            }
            if let Some(from) = plan.rollup_from {
                let dims = fill.rollup_dims();
                let cells =
                    crate::ledger::postgres::rollup::read_cells(&tx, from, q.until_ms, &dims)
                        .await?;
                for (hour, dim, grp, agg) in cells {
                    fill.cell(hour, dim, &grp, &agg);
                }
            }
            tx.commit().await?;
            Ok(fill.finish())
        })
        .await
}
