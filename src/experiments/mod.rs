//! A/B experiments on live traffic (`[[experiments]]`, see `config::experiments`).
//!
//! A request for a route with an experiment gets a variant ([`assign`]: a stable hash of the
//! experiment's name and the sticky key), the variant's target first among its candidates
//! and its prompt and params on top of the client's request ([`apply`]); the answer carries
//! `x-switchyard-variant: <experiment>/<variant>` (the proxy layer
//! `proxy::layers::experiments`). After the answer is delivered, a sample of the requests is
//! judged in the background ([`judge`], [`verdict`]); applications add their own feedback
//! (`POST /v1/feedback`, [`feedback`]). Everything is stored in the ledger, SQLite
//! ([`store`]) or a fleet's Postgres ([`pg`]), written by the ledger's writer and read back
//! through [`source`] by the [`report`], whose decision comes from anytime-valid
//! confidence sequences ([`stats`]); [`promote`] moves traffic to a decided leader when asked.
//!
//! A gateway without experiments pays one empty-list check per request.

pub mod apply;
pub mod assign;
pub mod cli;
pub mod feedback;
pub mod judge;
pub mod pg;
pub mod promote;
pub mod report;
pub mod source;
pub mod stats;
pub mod store;
pub mod verdict;

use crate::config::experiments::{ExperimentConfig, JudgeConfig, Promote};
use crate::proxy::GatewayState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::mpsc;

/// The header naming the variant a request got.
pub const VARIANT_HEADER: &str = "x-switchyard-variant";

/// How often, at most, an experiment is checked for promotion.
const PROMOTION_CHECK_MS: i64 = 2_000;

/// The variant one request got (kept in the request's context).
#[derive(Clone, Debug)]
pub struct Assignment {
    pub experiment: String,
    pub variant: usize,
    pub variant_name: String,
    /// Picked for judging (decided up front, so unsampled requests keep nothing).
    pub sampled: bool,
    /// The client's body before the variant was applied (for the judge and shadow calls).
    pub original_body: bytes::Bytes,
}

impl Assignment {
    pub fn header(&self) -> String {
        format!("{}/{}", self.experiment, self.variant_name)
    }
}

/// Judge outcomes per experiment, as the Prometheus counter
/// `switchyard_experiment_judge_total{experiment, outcome}`: `queued`, `skipped_queue_full`,
/// `judged`, `unscored`. Experiment names come from the config, so the labels are bounded.
pub struct Counters {
    counter: Option<prometheus::IntCounterVec>,
}

impl Counters {
    fn new() -> Counters {
        static C: OnceLock<Option<prometheus::IntCounterVec>> = OnceLock::new();
        let counter = C
            .get_or_init(|| {
                let c = prometheus::IntCounterVec::new(
                    prometheus::Opts::new(
                        "experiment_judge_total",
                        "Judge samples by experiment and outcome (queued, skipped_queue_full, \
                         judged, unscored)",
                    ),
                    &["experiment", "outcome"],
                )
                .ok()?;
                crate::metrics::metrics()
                    .registry
                    .register(Box::new(c.clone()))
                    .ok()?;
                Some(c)
            })
            .clone();
        Counters { counter }
    }

    pub fn count(&self, experiment: &str, outcome: &str) {
        if let Some(c) = &self.counter {
            c.with_label_values(&[experiment, outcome]).inc();
        }
    }

    pub fn get(&self, experiment: &str, outcome: &str) -> u64 {
        self.counter
            .as_ref()
            .map_or(0, |c| c.with_label_values(&[experiment, outcome]).get())
    }
}

struct Queue {
    /// The judge settings the queue was made for (a reload that changes them makes a new one).
    made_for: (usize, usize),
    tx: mpsc::Sender<judge::JudgeJob>,
}

/// Process-wide experiment state: judge queues, promotions, the ledger to write to. Kept
/// across reloads.
pub struct Runtime {
    ledger: Option<crate::ledger::LedgerHandle>,
    /// Where results are read back from (the ledger's store); `None` without a ledger.
    source: Option<Arc<dyn source::ExperimentSource>>,
    outbound: Option<Arc<crate::outbound::OutboundClient>>,
    /// Experiment name -> promoted variant name.
    promoted: RwLock<HashMap<String, String>>,
    /// Experiment name -> last reason a promotion was blocked (a shift is logged on change).
    blocked: Mutex<HashMap<String, String>>,
    queues: Mutex<HashMap<String, Queue>>,
    last_check: Mutex<HashMap<String, Arc<AtomicI64>>>,
    pub counters: Arc<Counters>,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new(None, None, None)
    }
}

impl Runtime {
    /// The runtime for a process. Promotions recorded by earlier runs are read back from the
    /// ledger at `ledger_path` (blocking: call at start).
    pub fn new(
        ledger: Option<crate::ledger::LedgerHandle>,
        ledger_path: Option<PathBuf>,
        outbound: Option<Arc<crate::outbound::OutboundClient>>,
    ) -> Runtime {
        let source: Option<Arc<dyn source::ExperimentSource>> =
            match (ledger.as_ref().and_then(|l| l.postgres()), ledger_path) {
                (Some(pg), _) => Some(Arc::new(source::PostgresSource { store: pg.clone() })),
                (None, Some(path)) => Some(Arc::new(source::SqliteSource { path })),
                (None, None) => None,
            };
        let mut promoted = HashMap::new();
        if let Some(source) = &source {
            match source.promotions() {
                Ok(rows) => promoted.extend(rows),
                Err(e) => log::warn!("experiments: reading promotions: {e}"),
            }
        }
        Runtime {
            ledger,
            source,
            outbound,
            promoted: RwLock::new(promoted),
            blocked: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
            last_check: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::new()),
        }
    }

    pub fn ledger(&self) -> Option<&crate::ledger::LedgerHandle> {
        self.ledger.as_ref()
    }

    /// Where experiment results are read from (`None` without a ledger).
    pub fn source(&self) -> Option<&Arc<dyn source::ExperimentSource>> {
        self.source.as_ref()
    }

    /// The promoted variant of `exp`, if it was promoted and still exists.
    pub fn promoted(&self, exp: &ExperimentConfig) -> Option<usize> {
        if exp.promote != Promote::WhenDecided {
            return None;
        }
        let map = self.promoted.read().unwrap_or_else(|e| e.into_inner());
        let name = map.get(&exp.name)?;
        exp.variants.iter().position(|v| &v.name == name)
    }

    /// Queues a sampled request for the judge; `false` (counted) when its queue is full.
    pub fn enqueue(self: &Arc<Self>, judge: &JudgeConfig, job: judge::JudgeJob) -> bool {
        let name = job.experiment.clone();
        let Some(outbound) = self.outbound.clone() else {
            return false;
        };
        let tx = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let made_for = (judge.queue, judge.max_concurrency);
            match queues.get(&name) {
                Some(q) if q.made_for == made_for && !q.tx.is_closed() => q.tx.clone(),
                _ => {
                    let (tx, rx) = mpsc::channel(judge.queue);
                    let tools = judge::Tools {
                        outbound,
                        ledger: self.ledger.clone(),
                        counters: self.counters.clone(),
                    };
                    tokio::spawn(dispatch(rx, judge.max_concurrency, tools, self.clone()));
                    queues.insert(
                        name.clone(),
                        Queue {
                            made_for,
                            tx: tx.clone(),
                        },
                    );
                    tx
                }
            }
        };
        match tx.try_send(job) {
            Ok(()) => {
                self.counters.count(&name, "queued");
                true
            }
            Err(_) => {
                self.counters.count(&name, "skipped_queue_full");
                false
            }
        }
    }

    /// After a verdict: when the experiment promotes, checks the report (at most every
    /// [`PROMOTION_CHECK_MS`]) and promotes a decided leader the guards allow.
    async fn maybe_promote(&self, state: Arc<GatewayState>, name: &str) {
        let Some(exp) = state.config.experiment(name) else {
            return;
        };
        if exp.promote != Promote::WhenDecided || self.promoted(exp).is_some() {
            return;
        }
        let (Some(ledger), Some(source)) = (&self.ledger, self.source.clone()) else {
            return;
        };
        let last = {
            let mut m = self.last_check.lock().unwrap_or_else(|e| e.into_inner());
            m.entry(name.to_owned()).or_default().clone()
        };
        let now = store::now_ms();
        let before = last.load(Ordering::Relaxed);
        if now - before < PROMOTION_CHECK_MS
            || last
                .compare_exchange(before, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // The verdict just queued must be in the database before the report is read.
        if let Err(e) = ledger.flush().await {
            log::warn!("experiments: promotion check for `{name}`: {e}");
            return;
        }
        let owned = name.to_owned();
        let st = state.clone();
        let report =
            match tokio::task::spawn_blocking(move || report::read(&*source, &st.config, &owned))
                .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return log::warn!("experiments: promotion check for `{name}`: {e}"),
                Err(_) => return,
            };
        let p = report.promotion;
        let reason = p.reason.clone().unwrap_or_default();
        match p.status {
            "ready" => {
                let Some(variant) = p.variant.clone() else {
                    return;
                };
                log::info!("experiments: `{name}` promoted `{variant}`: {reason}");
                self.promoted
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_owned(), variant.clone());
                let shift = store::Shift {
                    ts_ms: store::now_ms(),
                    kind: "promoted".into(),
                    variant: Some(variant),
                    reason,
                };
                ledger
                    .execute(store::record_shift(name.to_owned(), shift))
                    .await;
            }
            "blocked" => {
                let changed = {
                    let mut b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                    b.insert(name.to_owned(), reason.clone()).as_ref() != Some(&reason)
                };
                if changed {
                    log::warn!("experiments: `{name}` not promoted: {reason}");
                    let shift = store::Shift {
                        ts_ms: store::now_ms(),
                        kind: "blocked".into(),
                        variant: p.variant.clone(),
                        reason,
                    };
                    ledger
                        .execute(store::record_shift(name.to_owned(), shift))
                        .await;
                }
            }
            _ => {}
        }
    }
}

/// Hands queued samples to at most `max` workers at a time.
async fn dispatch(
    mut rx: mpsc::Receiver<judge::JudgeJob>,
    max: usize,
    tools: judge::Tools,
    runtime: Arc<Runtime>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
    while let Some(job) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tools = tools.clone();
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let state = job.state.clone();
            let name = job.experiment.clone();
            judge::run(job, tools).await;
            drop(permit);
            runtime.maybe_promote(state, &name).await;
        });
    }
}
