//! Handing over to a new process without losing a request (pingora's graceful upgrade).
//!
//! On SIGQUIT pingora sends the listening sockets to the new process (`serve --upgrade`), keeps
//! accepting for 5 s alongside it, then stops accepting and, as it stops, closes every client
//! connection that is waiting for its next request. A keep-alive client that sends its next
//! request at that moment, or a client whose fresh connection the old process accepted just
//! before but whose request bytes have not arrived yet, would see its connection closed with no
//! answer. Two things close those gaps, both only while draining (zero cost otherwise):
//! - every request answered after SIGQUIT carries `Connection: close` (see
//!   [`Shared::draining`](super::Shared::draining)), so within the 5 s window each active
//!   client finishes its request on the old process and reconnects, reaching whichever
//!   process accepts; no idle keep-alive connection is left for the close to race with.
//! - [`DrainAware`] waits for the first bytes of a connection accepted while draining before
//!   handing it to pingora, whose request reader then finds the request already buffered
//!   instead of giving up on an empty socket at shutdown.
//!
//! Stopping (SIGTERM, and the old process after a hand-over): pingora stops accepting, then
//! sleeps the whole `grace_period` before it ends the runtimes, even when nothing is in flight,
//! so `systemctl stop` took 30 s on an idle gateway. [`watch_phases`] ends the process as soon
//! as the grace period starts with no client connection open (counted by [`Open`]), or as the
//! last one closes, after flushing the ledger and spans as the shutdown path does. Requests in
//! flight still get the whole grace period.
//!
//! What remains: a connection opened before SIGQUIT that stays idle through the whole window
//! and sends exactly as the old process closes it. That is the race every HTTP/1.1 server has
//! when it closes an idle keep-alive connection; clients retry a request that failed on a
//! reused connection before any byte came back.

use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::{ExecutionPhase, ShutdownWatch};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// Longest wait for the first request bytes on a connection accepted while draining.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(30);

/// The proxy's pingora app, wrapped: see the module docs.
pub struct DrainAware<A> {
    pub inner: Arc<A>,
    pub shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for DrainAware<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let _open = Open::new(&self.shared.open_connections);
        if self.shared.draining() {
            let mut first = [0u8; 1];
            // `try_peek` reads into the stream's rewind buffer: nothing is consumed.
            match tokio::time::timeout(FIRST_BYTES_WAIT, stream.try_peek(&mut first)).await {
                Ok(Ok(_)) => {}
                // Closed or silent: no request was sent, so none is lost.
                _ => return None,
            }
        }
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// One client connection being served; counted while it lives.
pub struct Open<'a>(&'a AtomicUsize);

impl<'a> Open<'a> {
    pub fn new(count: &'a AtomicUsize) -> Open<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Open(count)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How often the stopping process looks at its open connections.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Sets [`Shared::draining`](super::Shared::draining) when the server is told to hand over
/// (SIGQUIT) or to stop (SIGTERM), and ends the process early once a stop's grace period
/// has nothing left to wait for. Runs on a thread of its own until the server ends.
pub fn watch_phases(
    mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
    shared: Arc<Shared>,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name("drain-watch".into())
        .spawn(move || loop {
            use tokio::sync::broadcast::error::RecvError;
            match phases.blocking_recv() {
                Ok(
                    ExecutionPhase::GracefulUpgradeTransferringFds
                    | ExecutionPhase::GracefulTerminate
                    | ExecutionPhase::ShutdownStarted,
                ) => {
                    if !shared.draining.swap(true, Ordering::AcqRel) {
                        log::info!(
                            "draining: answering with `Connection: close` until the listeners close"
                        );
                    }
                }
                Ok(ExecutionPhase::ShutdownGracePeriod) => exit_when_idle(&shared),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the drain watcher thread: {e}"))
}

/// In the grace period (listeners closed): waits for the last client connection to close,
/// flushes what the shutdown path flushes, and exits. Returns never; the grace period's own end
/// exits the process if a connection outlives it.
fn exit_when_idle(shared: &Shared) {
    while shared.open_connections.load(Ordering::Acquire) > 0 {
        std::thread::sleep(IDLE_POLL);
    }
    log::info!("shutting down: no request in flight, exiting before the grace period ends");
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(flush_outputs(shared.ledger.as_ref())),
        Err(e) => log::error!("cannot flush the ledger: {e}"),
    }
    std::process::exit(0)
}

/// Flushes what requests left queued: ledger rows, then spans (exporting blocks up to the
/// export timeout, so it runs on the blocking pool). Used as shutdown begins and on the way out.
pub async fn flush_outputs(ledger: Option<&crate::ledger::LedgerHandle>) {
    if let Some(ledger) = ledger {
        if let Err(e) = ledger.flush().await {
            log::error!("ledger flush failed: {e}");
        }
    }
    if crate::telemetry::enabled() {
        let _ = tokio::task::spawn_blocking(crate::telemetry::flush).await;
    }
}
