//! Starting the gateway: the pingora server with the proxy service, and (for the demo) the
//! built-in mock provider on a thread of its own.

use crate::admin::AdminApp;
use crate::config::{Config, MockSettings};
use crate::mock::{self, MockOptions};
use crate::net::Resolver;
use crate::proxy::drain::DrainAware;
use crate::proxy::{Gateway, Shared};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use std::path::PathBuf;
use std::sync::Arc;

/// Process-level options for `serve`: run as a daemon, take over from a running instance.
#[derive(Debug, Default, Clone)]
pub struct ServeOptions {
    pub daemon: bool,
    pub upgrade: bool,
}

/// Runs the gateway until it is told to stop. Returns only on a start-up error.
/// `config_path` is re-read on SIGHUP or `POST /admin/reload` (`None`: the embedded demo).
pub fn serve(
    config: Config,
    config_path: Option<PathBuf>,
    opts: ServeOptions,
) -> Result<(), String> {
    for w in &config.warnings {
        log::warn!("{w}");
    }
    if !opts.upgrade {
        // A clear message instead of a panic deep in pingora when the port is taken.
        std::net::TcpListener::bind(&config.server.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    }
    check_trust_store(&config)?;
    // Before any thread starts: a fork keeps only the calling thread, so the ledger writer,
    // the demo mock and the signal watchers must be started in the daemon.
    let mut daemon = if opts.daemon {
        Some(crate::daemon::detach(&config.server.pid_file)?)
    } else {
        None
    };
    if let Some(m) = &config.mock {
        start_mock(m)?;
    }

    let mut conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        // After the grace period: how long the runtimes' blocking work may take to end
        // (systemd's TimeoutStopSec is the grace period plus this).
        graceful_shutdown_timeout_seconds: Some(RUNTIME_SHUTDOWN_SECS),
        upgrade_sock: config.server.upgrade_sock.to_string_lossy().into_owned(),
        ..ServerConf::default()
    };
    // Already daemonized above if asked: pingora forks only in `run_forever`, after the
    // threads this function starts, which the child would not have.
    conf.daemon = false;
    let pingora_opt = Opt {
        upgrade: opts.upgrade,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(Some(pingora_opt), conf);
    if let (true, Some(d)) = (opts.upgrade, daemon.as_mut()) {
        // The old daemon hands its sockets over only on SIGQUIT: let the command return now.
        d.report_ready();
    }
    server.bootstrap();
    if let (true, Some(d)) = (opts.upgrade, daemon.as_ref()) {
        d.write_pid_file()?;
    }

    let listen = config.server.listen.clone();
    let admin = config.admin.clone();
    let mut ledger_cfg = crate::ledger::LedgerConfig::new(&config.ledger.path);
    ledger_cfg.queue_capacity = config.ledger.queue_capacity;
    ledger_cfg.postgres = config.ledger.postgres.clone();
    let where_ = match &config.ledger.postgres {
        Some(url) => url.to_string(),
        None => config.ledger.path.display().to_string(),
    };
    let (ledger, ledger_handle) = crate::ledger::Ledger::open(ledger_cfg)
        .map_err(|e| format!("cannot open the ledger at {where_}: {e}"))?;
    log::info!("ledger: {where_}");
    crate::telemetry::start(&config.telemetry)?;
    if let Some(url) = &config.telemetry.otlp_traces_url {
        log::info!("telemetry: OTLP traces to {url}");
    }
    // The writer thread lives as long as the process; rows are flushed as shutdown begins.
    std::mem::forget(ledger);
    let governance = crate::governance::Governance::start(&config)?;
    // The gateway's own requests connect as proxied ones do: the same connector options.
    let outbound = crate::outbound::OutboundClient::new(
        pingora_core::connectors::ConnectorOptions::from_server_conf(&server.configuration),
    )?;
    let shared = Shared::new(
        config,
        config_path,
        Some(ledger_handle.clone()),
        governance,
        Arc::new(outbound),
    );
    warm_dns(&shared.state().config, &shared.resolver);
    {
        let state = shared.state();
        log::info!(
            "switchyard listening on {listen}: {} providers, {} routes, {} gateway keys",
            state.config.providers.len(),
            state.config.routes.len(),
            state.config.gateway_keys.len()
        );
    }
    reload_on_sighup(shared.clone())?;
    crate::proxy::drain::watch_phases(server.watch_execution_phase(), shared.clone())?;
    let proxy = pingora_proxy::http_proxy(
        &server.configuration,
        Gateway {
            shared: shared.clone(),
        },
    );
    let mut svc = pingora_core::services::listening::Service::new(
        "switchyard proxy".to_owned(),
        DrainAware {
            inner: Arc::new(proxy),
            shared: shared.clone(),
        },
    );
    svc.add_listener(client_listener(&listen));
    server.add_service(svc);
    server.add_service(pingora_core::services::background::background_service(
        "ledger flush",
        LedgerFlush(ledger_handle),
    ));
    if let Some(admin) = admin {
        let mut svc = pingora_core::services::listening::Service::new(
            "switchyard admin".to_owned(),
            AdminApp::new(shared, admin.key),
        );
        svc.add_tcp(&admin.listen.to_string());
        log::info!("admin port on {}", admin.listen);
        server.add_service(svc);
    }
    if let (false, Some(d)) = (opts.upgrade, daemon.as_mut()) {
        d.write_pid_file()?;
        d.report_ready();
    }
    server.run_forever()
}

/// Seconds the runtimes get to end after the grace period (see the systemd unit).
const RUNTIME_SHUTDOWN_SECS: u64 = 5;

/// The client listener. pingora puts a 64 KiB read buffer in front of every accepted
/// connection by default, allocated zeroed, so each open connection held 64 KiB of resident
/// memory for a request that is usually a few KiB (heaptrack: 62 MiB of 138 MiB with 1,000
/// streams open). pingora reads request headers into its own 4 KiB buffer and bodies into its
/// own body buffer, so reads go straight to the socket instead; writes keep pingora's default
/// buffer, which joins a small response header with the first body bytes.
fn client_listener(addr: &str) -> pingora_core::listeners::ListenerConfig {
    use pingora_core::listeners::L4BufferSettings;
    pingora_core::listeners::ListenerConfig::tcp(addr)
        .l4_buffer(L4BufferSettings::default().read(0))
}

/// pingora builds its TLS connector with the platform's roots (honouring `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`) and panics if they cannot be loaded; check first and say what is wrong.
fn check_trust_store(config: &Config) -> Result<(), String> {
    let store = crate::outbound::roots::load(None)?;
    let https = config.providers.iter().any(|p| p.base_url.tls);
    if store.is_empty() && https {
        log::warn!(
            "no TLS root certificates were found ({}); every https provider will fail its handshake",
            crate::outbound::roots::env_hint()
        );
    }
    Ok(())
}

/// Binds the mock's port now (so a clash fails start-up) and serves it on its own thread.
fn start_mock(m: &MockSettings) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(m.listen)
        .map_err(|e| format!("cannot start the mock provider on {}: {e}", m.listen))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("mock listener: {e}"))?;
    let opts = MockOptions {
        ttft: m.ttft,
        itl: m.itl,
        tokens: m.tokens,
        ..MockOptions::default()
    };
    log::info!("mock provider listening on {}", m.listen);
    std::thread::Builder::new()
        .name("mock-provider".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("mock provider runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        log::error!("mock provider listener: {e}");
                        return;
                    }
                };
                if let Err(e) = mock::serve(listener, opts).await {
                    log::error!("mock provider stopped: {e}");
                }
            });
        })
        .map_err(|e| format!("cannot start the mock provider thread: {e}"))?;
    Ok(())
}

/// On shutdown (SIGTERM, SIGQUIT), keeps flushing the ledger while in-flight requests finish,
/// so the rows of the last requests are on disk before the process exits.
struct LedgerFlush(crate::ledger::LedgerHandle);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for LedgerFlush {
    async fn start(&self, mut shutdown: pingora_core::server::ShutdownWatch) {
        let _ = shutdown.changed().await;
        log::info!("shutting down: flushing the ledger until exit");
        loop {
            crate::proxy::drain::flush_outputs(Some(&self.0)).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// SIGHUP re-reads the config (what `systemctl reload` sends). In-flight requests finish on the
/// state they started with; new requests get the new one.
fn reload_on_sighup(shared: Arc<Shared>) -> Result<(), String> {
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("SIGHUP handler: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let mut hup = match signal(SignalKind::hangup()) {
                    Ok(s) => s,
                    Err(e) => {
                        log::error!("cannot listen for SIGHUP: {e}");
                        return;
                    }
                };
                while hup.recv().await.is_some() {
                    if let Err(e) = shared.reload() {
                        log::error!("reload failed, keeping the running config: {e}");
                    }
                }
            });
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the SIGHUP thread: {e}"))
}

/// Resolves every provider host once before serving, so no early request waits on DNS.
fn warm_dns(config: &Config, resolver: &Arc<Resolver>) {
    let hosts: Vec<(String, u16)> = config
        .providers
        .iter()
        .map(|p| (p.base_url.host.clone(), p.base_url.port))
        .collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::warn!("skipping DNS warm-up: {e}");
            return;
        }
    };
    for e in rt.block_on(resolver.warm(&hosts)) {
        log::warn!("{e} (will retry when a request needs it)");
    }
}
