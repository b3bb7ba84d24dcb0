//! The ledger's queue, its producers ([`LedgerHandle`]) and its writer thread ([`Ledger`]).
//!
//! Producers run on tokio worker threads and never touch SQLite: [`LedgerHandle::record`]
//! does a `try_send` on a bounded tokio channel, then waits at most `max_wait` for a slot
//! (`reserve`, so the row is kept if the wait times out), then hands the row to a blocking
//! task that appends it to the spill file.
//!
//! The writer is a dedicated OS thread running a tiny current-thread tokio runtime (only for
//! the channel and timers); all SQLite work happens there. Loop: wait for a first message,
//! gather more until `batch_max` rows or `flush_interval` has passed, commit them in one
//! transaction, then import spill files if the queue is empty
//! and something was spilled (or a flush asked for it). On shutdown it closes the channel
//! (later `record` calls spill), drains what is buffered, and imports spill files one last
//! time.
//!
//! While gathering, the writer sleeps on a timer, not on the channel: a producer's send does
//! not wake it. Waking it per row cost every request a cross-thread wake-up (two futex calls
//! and a context switch, on the proxy's core when they share one). It is woken early only by a
//! flush request, a queue more than half full, or shutdown ([`Shared::nudge`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, oneshot};

use super::extra::Extra;
use super::postgres::PgStore;
use super::spill::{self, Spill, SpillReadError};
use super::store;
use super::{LedgerConfig, LedgerError, LedgerRow, LedgerStats};
use crate::experiments::store::ExperimentWrite;

/// After a failed commit or import, the writer waits this long before importing again on its
/// own (a flush still forces an attempt).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Rows per transaction when importing a spill file.
const IMPORT_CHUNK: usize = 4096;

type FlushReply = oneshot::Sender<Result<(), String>>;

enum Msg {
    Row(Box<LedgerRow>),
    Flush(FlushReply),
    /// A write that is not a row (appended attempts, experiment results), applied after the
    /// rows of its batch.
    Extra(Box<Extra>),
}

#[derive(Default)]
struct Counters {
    rows_written: AtomicU64,
    producer_waits: AtomicU64,
    rows_spilled: AtomicU64,
    spill_imported: AtomicU64,
    write_errors: AtomicU64,
    batches: AtomicU64,
    duplicates: AtomicU64,
    rows_lost: AtomicU64,
    spill_bad_lines: AtomicU64,
    extras_lost: AtomicU64,
    extras_spilled: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Lets tests hold the writer just before it touches the database.
#[derive(Default)]
struct Gate {
    holds: Mutex<u32>,
    open: Condvar,
}

impl Gate {
    fn wait_open(&self) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        while *holds > 0 {
            holds = self.open.wait(holds).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// State shared by the handles and the writer.
struct Shared {
    counters: Counters,
    spill: Spill,
    gate: Gate,
    max_wait: Duration,
    /// Wakes a gathering writer before its deadline: a flush request, or a queue more than
    /// half full. A nudge sent while the writer is busy is kept for its next wait.
    nudge: tokio::sync::Notify,
    /// The Postgres store when the ledger lives there (readers use it too).
    postgres: Option<Arc<PgStore>>,
}

/// Where the writer commits rows: the SQLite file or a Postgres database.
enum Sink {
    Sqlite(Connection),
    Postgres(Arc<PgStore>),
}

impl Sink {
    /// Commits `rows` in one transaction (blocking the writer thread).
    fn insert(&mut self, rows: &[LedgerRow]) -> Result<store::Inserted, String> {
        match self {
            Sink::Sqlite(conn) => store::insert_rows(conn, rows.iter()).map_err(|e| e.to_string()),
            Sink::Postgres(pg) => pg.insert_blocking(rows.to_vec()).map_err(|e| e.to_string()),
        }
    }

    /// Applies writes that are not rows in one transaction, each in its own savepoint:
    /// `Ok` with a message per write that was dropped (its row missing, a statement refused),
    /// `Err` when the store could not take them at all (nothing applied; spill them).
    fn apply_extras(&mut self, extras: &[Extra]) -> Result<Vec<String>, String> {
        match self {
            Sink::Sqlite(conn) => {
                super::extra::apply_sqlite(conn, extras).map_err(|e| e.to_string())
            }
            Sink::Postgres(pg) => pg
                .apply_extras_blocking(extras.to_vec())
                .map_err(|e| e.to_string()),
        }
    }
}

impl Shared {
    /// Appends rows to the spill file, counting them as spilled, or as lost if that fails
    /// (then `false`).
    /// Appends extras to the spill file, counting them as spilled, or as lost if that fails.
    fn spill_extras(&self, extras: &[Extra]) {
        let n = extras.len() as u64;
        match self.spill.append_extras(extras) {
            Ok(()) => add(&self.counters.extras_spilled, n),
            Err(e) => {
                add(&self.counters.write_errors, 1);
                add(&self.counters.extras_lost, n);
                log::error!("ledger: could not spill {n} write(s) that are not rows: {e}; lost");
            }
        }
    }

    fn spill_rows<'a>(&self, rows: impl ExactSizeIterator<Item = &'a LedgerRow> + Clone) -> bool {
        let n = rows.len() as u64;
        let first_id = rows.clone().next().map(|r| r.request_id.clone());
        match self.spill.append(rows) {
            Ok(()) => {
                add(&self.counters.rows_spilled, n);
                true
            }
            Err(e) => {
                add(&self.counters.write_errors, 1);
                add(&self.counters.rows_lost, n);
                log::error!(
                    "ledger: could not spill {n} row(s) (first request_id {}): {e}; rows lost",
                    first_id.unwrap_or_default()
                );
                false
            }
        }
    }
}

/// Owns the writer thread. [`Ledger::shutdown`] (or dropping it) flushes and joins it.
pub struct Ledger {
    handle: LedgerHandle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Records rows; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct LedgerHandle {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

/// Test hook: while alive, the writer stops just before its next database write.
/// Returned by [`LedgerHandle::pause_writer`].
pub struct WriterPause {
    shared: Arc<Shared>,
}

impl Drop for WriterPause {
    fn drop(&mut self) {
        let gate = &self.shared.gate;
        let mut holds = gate.holds.lock().unwrap_or_else(|e| e.into_inner());
        *holds = holds.saturating_sub(1);
        gate.open.notify_all();
    }
}

impl Ledger {
    /// Opens (creating) the database, migrates its schema and starts the writer thread, which
    /// first imports any spill files left by an earlier run.
    pub fn open(cfg: LedgerConfig) -> Result<(Ledger, LedgerHandle), LedgerError> {
        let (sink, postgres) = match &cfg.postgres {
            None => (Sink::Sqlite(store::open_writer(&cfg.path)?), None),
            Some(url) => {
                if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let pg = PgStore::new(url)?;
                // An unreachable server is not fatal: rows spill until it answers.
                if let Err(e) = pg.migrate_blocking() {
                    match e {
                        LedgerError::SchemaTooNew { .. } => return Err(e),
                        e => log::warn!("ledger: Postgres at {url} not ready yet ({e}); rows spill to disk until it is"),
                    }
                }
                (Sink::Postgres(Arc::clone(&pg)), Some(pg))
            }
        };
        let spill = Spill::new(&cfg.path);
        if spill.any_files() {
            spill.set_pending();
        }
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            spill,
            gate: Gate::default(),
            max_wait: cfg.max_wait,
            nudge: tokio::sync::Notify::new(),
            postgres,
        });
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let writer = Writer {
            sink,
            rx,
            shared: Arc::clone(&shared),
            batch_max: cfg.batch_max.max(1),
            flush_interval: cfg.flush_interval,
            retry_at: None,
        };
        let thread = std::thread::Builder::new()
            .name("switchyard-ledger".to_string())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = ready_tx.send(Ok(()));
                        rt.block_on(writer.run(stop_rx));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(LedgerError::Io(e));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(LedgerError::WriterPanicked);
            }
        }
        let handle = LedgerHandle { tx, shared };
        let ledger = Ledger {
            handle: handle.clone(),
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        Ok((ledger, handle))
    }

    /// Another handle to this ledger.
    pub fn handle(&self) -> LedgerHandle {
        self.handle.clone()
    }

    /// Closes the queue, writes everything queued, imports spill files and joins the writer.
    /// Rows recorded after this spill to the file and are imported on the next start.
    /// Blocks the calling thread until the writer is done.
    pub fn shutdown(mut self) -> Result<LedgerStats, LedgerError> {
        self.stop_writer()?;
        Ok(self.handle.stats())
    }

    fn stop_writer(&mut self) -> Result<(), LedgerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| LedgerError::WriterPanicked),
            None => Ok(()),
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Err(e) = self.stop_writer() {
            log::error!("ledger: {e}");
        }
    }
}

impl LedgerHandle {
    /// Queues `row` for the writer. Never blocks the calling thread: a full queue is waited on
    /// asynchronously for at most `max_wait`; after that (or if the writer has stopped) the
    /// row is appended to the spill file on a blocking-pool thread. Every wait and spill is
    /// counted. If the future is dropped while waiting, the row is spilled (inline) on drop.
    ///
    /// The common case (room in the queue) completes before the future is first polled; the
    /// future itself is a few words (the waiting path is boxed), since it sits in every
    /// request's finish hook.
    pub fn record(&self, row: LedgerRow) -> impl std::future::Future<Output = ()> + Send + '_ {
        let slow = match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {
                self.nudge_if_filling();
                None
            }
            Err(TrySendError::Closed(msg)) => Some((msg, false)),
            Err(TrySendError::Full(msg)) => Some((msg, true)),
        };
        async move {
            if let Some((msg, full)) = slow {
                Box::pin(self.record_slow(msg, full)).await;
            }
        }
    }

    /// `record` when the queue is full (wait, then spill) or closed (spill).
    async fn record_slow(&self, msg: Msg, full: bool) {
        if full {
            add(&self.shared.counters.producer_waits, 1);
            self.shared.nudge.notify_one();
            // If this future is dropped while waiting, dropping `unsent` spills the row.
            let mut unsent = self.unsent(msg);
            if let Ok(Ok(permit)) =
                tokio::time::timeout(self.shared.max_wait, self.tx.reserve()).await
            {
                if let Some(row) = unsent.row.take() {
                    permit.send(Msg::Row(row));
                }
                return;
            }
            // Spill on a blocking-pool thread: dropping `unsent` appends the row (and if
            // the task never runs, e.g. at runtime shutdown, dropping the closure does).
            let _ = tokio::task::spawn_blocking(move || drop(unsent)).await;
            return;
        }
        let unsent = self.unsent(msg);
        let _ = tokio::task::spawn_blocking(move || drop(unsent)).await;
    }

    /// [`record`](Self::record) for code outside an async context: the same policy, with a
    /// blocking bounded wait (polling) and an inline spill. Do not call it on a tokio worker.
    pub fn record_blocking(&self, row: LedgerRow) {
        let msg = match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => return self.nudge_if_filling(),
            Err(TrySendError::Closed(msg)) => msg,
            Err(TrySendError::Full(msg)) => {
                add(&self.shared.counters.producer_waits, 1);
                self.shared.nudge.notify_one();
                let deadline = Instant::now() + self.shared.max_wait;
                let mut pause = Duration::from_micros(100);
                let mut msg = msg;
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        break msg;
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(2));
                    match self.tx.try_send(msg) {
                        Ok(()) => return,
                        Err(TrySendError::Closed(m)) => break m,
                        Err(TrySendError::Full(m)) => msg = m,
                    }
                }
            }
        };
        drop(self.unsent(msg));
    }

    /// Wakes the writer early once the queue is more than half full, so a burst is written
    /// before producers have to wait; below that, rows wait for the writer's timer.
    fn nudge_if_filling(&self) {
        if self.tx.capacity() * 2 < self.tx.max_capacity() {
            self.shared.nudge.notify_one();
        }
    }

    fn unsent(&self, msg: Msg) -> Unsent {
        let (row, extra) = match msg {
            Msg::Row(row) => (Some(row), None),
            Msg::Flush(_) => (None, None),
            Msg::Extra(extra) => (None, Some(extra)),
        };
        Unsent {
            row,
            extra,
            shared: Arc::clone(&self.shared),
        }
    }

    /// The Postgres store, when the ledger lives there; readers (spend reports, the admin
    /// API) query it through [`crate::ledger::postgres::read`].
    pub fn postgres(&self) -> Option<&Arc<PgStore>> {
        self.shared.postgres.as_ref()
    }

    /// Counters for metrics; `rows_queued` is the current queue length.
    pub fn stats(&self) -> LedgerStats {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LedgerStats {
            rows_written: load(&c.rows_written),
            rows_queued: self.tx.max_capacity().saturating_sub(self.tx.capacity()) as u64,
            producer_waits: load(&c.producer_waits),
            rows_spilled: load(&c.rows_spilled),
            spill_imported: load(&c.spill_imported),
            write_errors: load(&c.write_errors),
            batches: load(&c.batches),
            duplicates: load(&c.duplicates),
            rows_lost: load(&c.rows_lost),
            spill_bad_lines: load(&c.spill_bad_lines),
            extras_lost: load(&c.extras_lost),
            extras_spilled: load(&c.extras_spilled),
        }
    }

    /// Resolves when every row recorded (queued or spilled) before this call is committed.
    /// `Err(Write)` if some could not be committed yet (they stay in spill files and are
    /// retried); `Err(Closed)` once the writer has stopped.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Flush(reply))
            .await
            .map_err(|_| LedgerError::Closed)?;
        self.shared.nudge.notify_one();
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(LedgerError::Write(msg)),
            Err(_) => Err(LedgerError::Closed),
        }
    }

    /// Adds attempts to a row recorded earlier (judge and shadow calls made after the answer;
    /// see [`super::append`]). Queued like a row: a full queue is waited on for at most
    /// `max_wait`, then the append is spilled (counted in `extras_spilled`) and replayed with
    /// the spill file. One whose row never reached the database is dropped and counted in
    /// `extras_lost`.
    pub async fn append(&self, append: super::Append) {
        self.send_extra(Msg::Extra(Box::new(Extra::append(append))))
            .await;
    }

    /// Applies an experiment write on the writer thread, after the rows queued before it, in
    /// its own savepoint, to whichever store the ledger writes. The same queueing and spill
    /// policy as [`append`](Self::append).
    pub async fn execute(&self, write: ExperimentWrite) {
        self.send_extra(Msg::Extra(Box::new(Extra::Experiment(write))))
            .await;
    }

    async fn send_extra(&self, msg: Msg) {
        let msg = match self.tx.try_send(msg) {
            Ok(()) => return self.nudge_if_filling(),
            Err(TrySendError::Closed(msg)) => msg,
            Err(TrySendError::Full(msg)) => {
                add(&self.shared.counters.producer_waits, 1);
                self.shared.nudge.notify_one();
                match tokio::time::timeout(self.shared.max_wait, self.tx.reserve()).await {
                    Ok(Ok(permit)) => return permit.send(msg),
                    _ => msg,
                }
            }
        };
        drop(self.unsent(msg));
    }

    /// Test hook: holds the writer just before its next database write until the returned
    /// guard is dropped (to fill the queue on purpose). Not for production use.
    #[doc(hidden)]
    pub fn pause_writer(&self) -> WriterPause {
        let gate = &self.shared.gate;
        let mut holds = gate.holds.lock().unwrap_or_else(|e| e.into_inner());
        *holds += 1;
        WriterPause {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A row or extra that has not reached the queue: spilled when dropped, unless taken out
/// first.
struct Unsent {
    row: Option<Box<LedgerRow>>,
    extra: Option<Box<Extra>>,
    shared: Arc<Shared>,
}

impl Drop for Unsent {
    fn drop(&mut self) {
        if let Some(row) = self.row.take() {
            let _spilled = self.shared.spill_rows(std::iter::once(&*row));
        }
        if let Some(extra) = self.extra.take() {
            self.shared.spill_extras(std::slice::from_ref(&*extra));
        }
    }
}

/// The writer thread's state.
struct Writer {
    sink: Sink,
    rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    batch_max: usize,
    flush_interval: Duration,
    /// After a failure: no unforced import before this instant.
    retry_at: Option<Instant>,
}

impl Writer {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let _ = self.import_spills(true);
        let idle_tick = self.flush_interval.max(Duration::from_millis(10));
        let mut closing = false;
        loop {
            let first = tokio::select! {
                biased;
                _ = &mut stop, if !closing => {
                    closing = true;
                    self.rx.close();
                    continue;
                }
                msg = self.rx.recv() => msg,
                _ = tokio::time::sleep(idle_tick), if self.shared.spill.is_pending() => {
                    let _ = self.import_spills(false);
                    continue;
                }
            };
            let Some(first) = first else { break };
            // A nudge stored while the writer was busy is stale: everything queued is about
            // to be read anyway. Left in place it would end this batch at once.
            let _ = futures::FutureExt::now_or_never(self.shared.nudge.notified());
            let mut batch = Vec::new();
            let mut waiters = Vec::new();
            let mut extras = Vec::new();
            sort(first, &mut batch, &mut waiters, &mut extras);
            let deadline = tokio::time::Instant::now() + self.flush_interval;
            let mut nudged = false;
            while batch.len() < self.batch_max && waiters.is_empty() {
                match self.rx.try_recv() {
                    Ok(msg) => {
                        sort(msg, &mut batch, &mut waiters, &mut extras);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) if closing => break,
                    Err(TryRecvError::Empty) => {}
                }
                if nudged || tokio::time::Instant::now() >= deadline {
                    break;
                }
                // Sleep on the timer, not on the channel (see the module doc).
                tokio::select! {
                    biased;
                    _ = &mut stop, if !closing => {
                        closing = true;
                        self.rx.close();
                    }
                    _ = self.shared.nudge.notified() => nudged = true,
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
            let written = self.write_batch(batch);
            self.write_extras(extras);
            let imported = if !waiters.is_empty() {
                self.import_spills(true)
            } else if self.shared.spill.is_pending() && self.rx.is_empty() {
                self.import_spills(false)
            } else {
                Ok(())
            };
            let result = written.and(imported);
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
        let _ = self.import_spills(true);
    }

    /// Commits one batch; if that fails, the rows go to the spill file to be retried (they
    /// are then committed by the next successful import). `Err` only if rows were lost.
    fn write_batch(&mut self, batch: Vec<LedgerRow>) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        self.shared.gate.wait_open();
        let c = &self.shared.counters;
        match self.sink.insert(&batch) {
            Ok(done) => {
                add(&c.rows_written, done.new);
                add(&c.duplicates, done.duplicates);
                add(&c.batches, 1);
                Ok(())
            }
            Err(e) => {
                add(&c.write_errors, 1);
                log::error!(
                    "ledger: writing a batch of {} row(s) failed: {e}; spilling them",
                    batch.len()
                );
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                if self.shared.spill_rows(batch.iter()) {
                    Ok(())
                } else {
                    Err(format!(
                        "batch commit failed ({e}) and spilling it failed too"
                    ))
                }
            }
        }
    }

    /// Applies appends and experiment writes, each in its own savepoint of one transaction:
    /// a failing one is logged and counted (`extras_lost`) without undoing the others. When
    /// the store cannot take them at all, they are spilled and replayed later.
    fn write_extras(&mut self, extras: Vec<Extra>) {
        if extras.is_empty() {
            return;
        }
        self.shared.gate.wait_open();
        let c = &self.shared.counters;
        match self.sink.apply_extras(&extras) {
            Ok(dropped) => {
                add(&c.extras_lost, dropped.len() as u64);
                for msg in dropped {
                    log::warn!("ledger: {msg}");
                }
            }
            Err(e) => {
                add(&c.write_errors, 1);
                log::error!(
                    "ledger: writing {} experiment result(s) failed: {e}; spilling them",
                    extras.len()
                );
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                self.shared.spill_extras(&extras);
            }
        }
    }

    /// Rotates the active spill file and imports every rotated file, deleting each once its
    /// rows are committed. Unless `force`, does nothing while a retry back-off is running.
    fn import_spills(&mut self, force: bool) -> Result<(), String> {
        if !force && self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err("spill import is backing off after a failure".to_string());
        }
        let result = self.import_spills_now();
        if let Err(e) = &result {
            add(&self.shared.counters.write_errors, 1);
            log::error!("ledger: importing spill files failed: {e}");
            self.shared.spill.set_pending();
            self.retry_at = Some(Instant::now() + RETRY_AFTER);
        } else {
            self.retry_at = None;
        }
        result
    }

    fn import_spills_now(&mut self) -> Result<(), String> {
        let spill = &self.shared.spill;
        spill
            .rotate()
            .map_err(|e| format!("rotating spill file: {e}"))?;
        let files = spill
            .rotated_files()
            .map_err(|e| format!("listing spill files: {e}"))?;
        if files.is_empty() {
            return Ok(());
        }
        self.shared.gate.wait_open();
        for path in files {
            let c = &self.shared.counters;
            let sink = &mut self.sink;
            let read = spill::read_chunks(&path, IMPORT_CHUNK, |rows, extras| {
                let done = sink.insert(&rows)?;
                add(&c.rows_written, done.new);
                add(&c.duplicates, done.duplicates);
                add(&c.spill_imported, rows.len() as u64);
                if !extras.is_empty() {
                    let dropped = sink.apply_extras(&extras)?;
                    add(&c.extras_lost, dropped.len() as u64);
                    for msg in dropped {
                        log::warn!("ledger: replaying {}: {msg}", path.display());
                    }
                }
                Ok::<(), String>(())
            });
            match read {
                Ok(bad) => add(&c.spill_bad_lines, bad),
                Err(SpillReadError::Io(e)) => return Err(format!("{}: {e}", path.display())),
                Err(SpillReadError::Sink(e)) => return Err(format!("{}: {e}", path.display())),
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("removing {}: {e}", path.display())),
            }
        }
        Ok(())
    }
}

fn sort(
    msg: Msg,
    batch: &mut Vec<LedgerRow>,
    waiters: &mut Vec<FlushReply>,
    extras: &mut Vec<Extra>,
) {
    match msg {
        Msg::Row(row) => batch.push(*row),
        Msg::Flush(reply) => waiters.push(reply),
        Msg::Extra(extra) => extras.push(*extra),
    }
}
