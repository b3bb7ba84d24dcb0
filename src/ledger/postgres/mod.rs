//! The ledger in Postgres (`[ledger] store = "postgres://user@host/db"`): one database shared
//! by every gateway instance of a fleet.
//!
//! The same queue, writer thread and spill files as with SQLite ([`super::writer`]) feed it;
//! only the store behind the writer changes ([`super::writer`]'s `Sink`). Everything that
//! talks to Postgres runs on a small tokio runtime of its own (one worker thread,
//! `switchyard-ledger-pg`), never on the proxy's workers:
//! - the writer thread hands a batch to that runtime and waits for it ([`PgStore::insert`]):
//!   one transaction, two multi-row inserts (`INSERT ... SELECT FROM UNNEST(...) ON CONFLICT
//!   DO NOTHING`), the attempts only for rows that were new, so a row replayed from a spill
//!   file is never counted twice;
//! - writes that are not rows (judge attempts, experiment results) go the same way, after
//!   their batch's rows ([`extras`]), and spill and replay like rows;
//! - readers (spend reports, `GET /admin/requests`, experiment reports) run their queries there too and await the
//!   answer ([`PgStore::call`]).
//!
//! Connections come from a small `deadpool-postgres` pool, over TLS (rustls, the platform's
//! roots) when the server offers it or the URL asks for it (`sslmode=require`). While Postgres
//! is unreachable a batch fails fast (connect timeout 5 s), its rows go to the spill file next
//! to `[ledger] path`, and the writer replays them when Postgres answers again.
//!
//! The schema is created and migrated by the gateway ([`schema`]), versioned in its own table.
//!
//! Files: [`url`] (the URL and its checks), [`schema`], [`insert`], [`extras`], [`read`];
//! the experiment tables' SQL is [`crate::experiments::pg`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use super::{LedgerError, LedgerRow};

mod extras;
mod insert;
pub mod read;
pub mod rollup;
mod schema;
pub mod url;

pub use schema::PG_SCHEMA_VERSION;
pub use url::PgUrl;

/// Longest a connection attempt waits.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one batch, migration or query may take before it counts as failed.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections in the pool (one writer, the rest for reports and the admin API).
const POOL_SIZE: usize = 4;

/// A Postgres ledger: the pool and the runtime its connections live on. Cheap to share.
pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    migrated: AtomicBool,
    url: PgUrl,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.url)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // May run inside another runtime (the writer's): never block here.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Builds the pool and its runtime. Connects lazily: an unreachable server is not an
    /// error here (rows spill until it answers).
    pub fn new(url: &PgUrl) -> Result<Arc<PgStore>, LedgerError> {
        let mut cfg = url.config().clone();
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("switchyard");
        }
        let roots = match crate::outbound::roots::load(None) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("ledger: {e}; TLS to Postgres will not verify any server");
                pingora_rustls::RootCertStore::empty()
            }
        };
        pingora_rustls::install_default_crypto_provider();
        let tls_config = pingora_rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
        let mgr = Manager::from_config(
            cfg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchyard-ledger-pg")
            .enable_all()
            .build()?;
        let pool = {
            let _guard = rt.enter();
            Pool::builder(mgr)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(OP_TIMEOUT))
                .create_timeout(Some(CONNECT_TIMEOUT * 2))
                .recycle_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| LedgerError::Postgres(format!("pool: {e}")))?
        };
        Ok(Arc::new(PgStore {
            rt: Some(rt),
            pool,
            migrated: AtomicBool::new(false),
            url: url.clone(),
        }))
    }

    /// The URL, password hidden, for logs.
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    /// Runs `op` on the store's runtime, bounded by [`OP_TIMEOUT`], and awaits it from any
    /// runtime.
    pub async fn call<T, F, Fut>(self: &Arc<Self>, op: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<PgStore>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, LedgerError>> + Send + 'static,
    {
        let Some(rt) = &self.rt else {
            return Err(LedgerError::Closed);
        };
        let me = Arc::clone(self);
        let task = rt.spawn(async move {
            match tokio::time::timeout(OP_TIMEOUT, op(me)).await {
                Ok(r) => r,
                Err(_) => Err(LedgerError::Postgres(format!(
                    "no answer within {}s",
                    OP_TIMEOUT.as_secs()
                ))),
            }
        });
        task.await
            .map_err(|e| LedgerError::Postgres(format!("task failed: {e}")))?
    }

    /// [`call`](Self::call) from a thread that may not await (the writer thread, the CLI):
    /// blocks it until the answer.
    pub fn call_blocking<T, F, Fut>(self: &Arc<Self>, op: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<PgStore>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, LedgerError>> + Send + 'static,
    {
        futures::executor::block_on(self.call(op))
    }

    /// A pooled connection, the schema migrated first (once per process).
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        if !self.migrated.load(Ordering::Acquire) {
            schema::migrate(&mut client).await?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(client)
    }

    /// Creates or migrates the schema now (at start, so a bad database is reported early).
    pub fn migrate_blocking(self: &Arc<Self>) -> Result<(), LedgerError> {
        self.call_blocking(|s| async move { s.client().await.map(drop) })
    }

    /// Writes `rows` in one transaction (blocking the calling thread; the writer's).
    pub(crate) fn insert_blocking(
        self: &Arc<Self>,
        rows: Vec<LedgerRow>,
    ) -> Result<super::store::Inserted, LedgerError> {
        self.call_blocking(move |s| async move {
            let mut client = s.client().await?;
            insert::insert_rows(&mut client, &rows).await
        })
    }
}

impl PgStore {
    /// Applies writes that are not rows (appended attempts, experiment results) in one
    /// transaction (blocking the calling thread; the writer's); the messages of those dropped.
    pub(crate) fn apply_extras_blocking(
        self: &Arc<Self>,
        extras: Vec<super::Extra>,
    ) -> Result<Vec<String>, LedgerError> {
        self.call_blocking(move |s| async move {
            let mut client = s.client().await?;
            extras::apply(&mut client, &extras).await
        })
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> LedgerError {
    LedgerError::Postgres(format!("cannot get a connection: {e}"))
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The driver's messages carry no password (the URL is never part of them).
        LedgerError::Postgres(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
    }
}
