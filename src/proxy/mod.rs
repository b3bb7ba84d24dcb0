//! The gateway's Pingora `ProxyHttp` implementation: a thin list of steps. A request passes
//! the layers of [`layers`] (their order is written there, once):
//!
//! 1. auth -> 2. request -> 3. conversation -> 4. routing -> 5. experiments -> 6. bodies ->
//!    7. translation -> 8. cache -> 9. accounting -> 10. limits -> 11. race -> 12. outputs,
//!    each hook top to bottom on the request and bottom to top on the response.
//!
//! Between the request and the response sits the attempt walk, which is the proxy's own job
//! and not a layer: `upstream_peer` picks the next candidate ([`upstream::next_peer`]),
//! `upstream_request_filter` shapes its request, `request_body_filter` sends this attempt's
//! body, `upstream_response_filter` decides whether an answer is served or dropped for another
//! attempt ([`attempts::on_response`]), and `fail_to_connect` / `error_while_proxy` decide
//! whether a failure is retried. Once a request is read and routed, the client session is
//! wrapped ([`downstream`]): the body is replayed whole to each attempt, and the response
//! header is held until the first body bytes (streams) or the end (whole answers), so a failed
//! attempt never reaches the client.
//!
//! pingora-cache sits between the provider side and the client side of the response: a hit
//! skips the walk and the provider-side hooks. `fail_to_proxy` answers in the client's dialect
//! when nothing was sent yet; `logging` restores the real client session and runs the finish
//! hooks (accounting settles, outputs record).
//!
//! Live target statistics ([`crate::stats`]) hear of each failed attempt as it fails and of
//! the served one when the request finishes ([`observe`]).

mod attempts;
pub mod ctx;
pub mod downstream;
pub mod drain;
mod layers;
mod models;
mod observe;
mod respond;
mod stream_error;
mod upstream;

pub use layers::cache;
pub use layers::outputs::ledger_row;

use crate::auth::KeyRing;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::governance::Governance;
use crate::net::Resolver;
use crate::providers::Upstream;
use crate::resilience::Health;
use crate::routing::Router;
use async_trait::async_trait;
use bytes::Bytes;
use ctx::{AttemptBody, Dropped, RequestCtx};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, RetryType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Everything the hooks share, built from one validated config. Replaced whole on reload;
/// requests in flight keep the state they started with.
pub struct GatewayState {
    pub config: Config,
    pub router: Router,
    pub keys: KeyRing,
    pub upstreams: Vec<Upstream>,
    pub resolver: Arc<Resolver>,
    pub health: Arc<Health>,
    /// Limits, runtime keys, kept bodies: process-wide, kept across reloads.
    pub governance: Arc<Governance>,
    /// Live statistics per provider/model (process-wide, like `health`).
    pub stats: Arc<crate::stats::TargetStats>,
    /// Responses API conversations (process-wide: they outlive a reload).
    pub conversations: Arc<crate::conversation::Store>,
    /// Experiments' judge queues and promotions (process-wide; see [`Self::with_experiments`]).
    pub experiments: Arc<crate::experiments::Runtime>,
    /// The longest deadline any route allows (computed at load: it bounds every body upload).
    pub max_deadline: std::time::Duration,
}

impl GatewayState {
    pub fn new(
        config: Config,
        resolver: Arc<Resolver>,
        health: Arc<Health>,
        governance: Arc<Governance>,
        stats: Arc<crate::stats::TargetStats>,
        conversations: Arc<crate::conversation::Store>,
    ) -> GatewayState {
        let breaker = config.resilience.breaker;
        let generation = health.next_generation();
        let c = &config.conversations;
        conversations.configure(c.max_size, c.ttl);
        GatewayState {
            conversations,
            max_deadline: config.max_deadline(),
            router: Router::with_stats(&config, stats.clone()),
            keys: KeyRing::with_live(&config.gateway_keys, governance.keys.clone()),
            governance,
            upstreams: config
                .providers
                .iter()
                .cloned()
                .map(|p| Upstream::new(p, &health, breaker, generation))
                .collect(),
            resolver,
            health,
            stats,
            config,
            experiments: Default::default(),
        }
    }

    /// The process's experiment runtime (the default one judges nothing and writes nothing).
    pub fn with_experiments(mut self, rt: Arc<crate::experiments::Runtime>) -> GatewayState {
        self.experiments = rt;
        self
    }
}

/// Process-wide: the current state (swapped on reload), health and DNS that outlive it.
pub struct Shared {
    current: RwLock<Arc<GatewayState>>,
    pub health: Arc<Health>,
    /// Live statistics per provider/model: kept across reloads.
    pub stats: Arc<crate::stats::TargetStats>,
    pub resolver: Arc<Resolver>,
    /// The config file, for reloads (`None` for the embedded demo).
    pub config_path: Option<PathBuf>,
    /// Where every request is recorded (`None` only in tests of the proxy alone).
    pub ledger: Option<crate::ledger::LedgerHandle>,
    /// The response cache (built once at start: its size does not change on reload).
    pub cache: Option<&'static crate::cache::CacheLayer>,
    /// Set once the server is handing over to a new process or stopping: see [`drain`].
    pub draining: AtomicBool,
    /// Client connections the proxy is serving (see [`drain::Open`]): a stop waits for these.
    pub open_connections: std::sync::atomic::AtomicUsize,
    /// Limits, runtime keys, kept bodies (outlive reloads).
    pub governance: Arc<Governance>,
    /// The client for the gateway's own requests (race legs, hedges, judge calls, probes).
    pub outbound: Arc<crate::outbound::OutboundClient>,
    /// Experiments' judge queues and promotions: kept across reloads.
    pub experiments: Arc<crate::experiments::Runtime>,
}

impl Shared {
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        ledger: Option<crate::ledger::LedgerHandle>,
        governance: Arc<Governance>,
        outbound: Arc<crate::outbound::OutboundClient>,
    ) -> Arc<Shared> {
        let health = Health::new();
        let resolver = Resolver::new();
        let c = &config.cache;
        // A filling answer may take the whole request deadline; readers wait `lock_timeout`.
        let lock_age = c.lock_timeout.max(config.resilience.deadline);
        let cache = Some(crate::cache::CacheLayer::new(
            c.max_size,
            c.max_entry_size,
            lock_age,
            c.lock_timeout,
        ));
        let stats = Arc::new(crate::stats::TargetStats::default());
        let c = &config.conversations;
        let conversations = crate::conversation::Store::new(c.max_size, c.ttl);
        let experiments = Arc::new(crate::experiments::Runtime::new(
            ledger.clone(),
            ledger.as_ref().map(|_| config.ledger.path.clone()),
            Some(outbound.clone()),
        ));
        let state = GatewayState::new(
            config,
            resolver.clone(),
            health.clone(),
            governance.clone(),
            stats.clone(),
            conversations,
        )
        .with_experiments(experiments.clone());
        Arc::new(Shared {
            governance,
            current: RwLock::new(Arc::new(state)),
            health,
            stats,
            resolver,
            config_path,
            ledger,
            cache,
            draining: AtomicBool::new(false),
            open_connections: std::sync::atomic::AtomicUsize::new(0),
            outbound,
            experiments,
        })
    }

    /// Whether requests should now close their client connection after the answer ([`drain`]).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn state(&self) -> Arc<GatewayState> {
        // An uncontended read lock: arc-swap's `load_full` measured no cheaper per request
        // (load-tests/instructions.sh, chat 307.8 k vs 310.1 k instructions).
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-reads the config file and swaps it in. On any error the running config stays.
    pub fn reload(&self) -> Result<String, String> {
        let Some(path) = &self.config_path else {
            return Err("the embedded demo config cannot be reloaded".to_owned());
        };
        let config = Config::load(path).map_err(|e| e.to_string())?;
        let old = self.state();
        if config.server.listen != old.config.server.listen {
            log::warn!("reload: server.listen changed; the new address needs a restart or upgrade");
        }
        if config.server.upgrade_sock != old.config.server.upgrade_sock {
            log::warn!(
                "reload: server.upgrade_sock changed; it takes effect at the next restart, and a \
                 `serve --upgrade` must still use {}",
                old.config.server.upgrade_sock.display()
            );
        }
        for w in &config.warnings {
            log::warn!("{w}");
        }
        let keep: Vec<(String, String)> = config
            .providers
            .iter()
            .flat_map(|p| {
                p.keys
                    .iter()
                    .map(|k| (p.name.clone(), k.origin().to_owned()))
            })
            .collect();
        let summary = format!(
            "{} providers ({} keys), {} routes, {} gateway keys",
            config.providers.len(),
            keep.len(),
            config.routes.len(),
            config.gateway_keys.len()
        );
        self.governance.on_reload(&config);
        let old_conversations = old.conversations.clone();
        let state = GatewayState::new(
            config,
            self.resolver.clone(),
            self.health.clone(),
            self.governance.clone(),
            self.stats.clone(),
            old_conversations,
        )
        .with_experiments(self.experiments.clone());
        self.health.retain_keys(&keep);
        match self.current.write() {
            Ok(mut cur) => *cur = Arc::new(state),
            Err(p) => *p.into_inner() = Arc::new(state),
        }
        log::info!("config reloaded from {}: {summary}", path.display());
        Ok(summary)
    }
}

pub struct Gateway {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.shared.state())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<bool> {
        if self.shared.draining() {
            // Before the session may be wrapped: the real client session must close.
            session.set_keepalive(None);
        }
        let gw = ctx.state.clone();
        let mut cx = layers::Cx {
            gw: &gw,
            shared: &self.shared,
            session,
            ctx,
        };
        let failure = match layers::on_request(&mut cx).await {
            Ok(layers::Flow::Answered) => return Ok(true),
            Ok(layers::Flow::Continue) => match walk_ready(&gw, cx.ctx) {
                Ok(()) => None,
                Err(e) => Some(layers::Failure::Gateway(e)),
            },
            Err(f) => Some(f),
        };
        match failure {
            None => {
                // From here on the client session is wrapped: the body is replayed whole to
                // every attempt (past pingora's 64 KiB buffer) and the response header is
                // held as `downstream` explains.
                let (home, control) =
                    downstream::install(&mut session.downstream_session, ctx.request.body.clone());
                ctx.downstream.home = Some(home);
                ctx.downstream.hold = Some(control);
                Ok(false)
            }
            Some(layers::Failure::Gateway(e)) => {
                respond::error(session, ctx, e).await?;
                Ok(true)
            }
            Some(layers::Failure::Io(e)) => Err(e),
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Box<HttpPeer>> {
        let gw = ctx.state.clone();
        match upstream::next_peer(&gw, ctx).await {
            Ok(peer) => Ok(Box::new(peer)),
            Err(e) => {
                let msg = e.message.clone();
                ctx.outcome.error = Some(e);
                Error::e_explain(ErrorType::ConnectNoRoute, msg)
            }
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        upstream::shape_request(&ctx.state, ctx, upstream_request)?;
        crate::telemetry::propagate(session.req_header(), ctx, upstream_request)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        // The client's body was read whole in `request_filter`; each attempt sends its own
        // rewritten copy, once, at the end of the (replayed) stream. A piecewise body passes
        // as the wrapped session serves it (`downstream`).
        if let AttemptBody::Whole(whole) = &ctx.walk.body {
            *body = Some(if end_of_stream {
                whole.clone()
            } else {
                Bytes::new()
            });
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        let gw = ctx.state.clone();
        if let Some(dropped) = attempts::on_response(&gw, ctx, upstream_response) {
            // Drop this answer (429, 5xx, 401). To retry, pingora calls `error_while_proxy`,
            // then `upstream_peer` for the next attempt; otherwise `fail_to_proxy` answers
            // with the gateway's error.
            let status = upstream_response.status.as_u16();
            let mut e = Error::explain(ErrorType::HTTPStatus(status), "provider answer dropped");
            e.set_retry(dropped == Dropped::Retry);
            ctx.walk.dropped = Some(dropped);
            return Err(e);
        }
        ctx.outcome.first_byte.get_or_insert_with(Instant::now);
        if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
            c.hold = if ctx.request.stream {
                downstream::Hold::UntilFirstBody
            } else {
                downstream::Hold::UntilEnd
            };
            c.extra_headers.clear();
        }
        layers::on_upstream_header(ctx, upstream_response)
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Option<std::time::Duration>> {
        layers::on_upstream_body(&mut session.cache, ctx, body, end_of_stream);
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        ctx.outcome.status = resp.status.as_u16();
        if session.cache.phase() == pingora_cache::CachePhase::Hit && !ctx.response.is_hit() {
            *ctx.response = ctx::Response::Hit {
                renderer: None,
                from: None,
                usage: None,
            };
        }
        layers::on_response_header(ctx, resp)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Option<std::time::Duration>> {
        if body.as_ref().is_some_and(|b| !b.is_empty()) {
            ctx.outcome.first_token.get_or_insert_with(Instant::now);
        }
        layers::on_body(ctx, body, end_of_stream);
        if ctx.governance.cut {
            // The stream ran past its reservation: `fail_to_proxy` ends it in the client's
            // dialect with the error the limits layer set.
            return Error::e_explain(ErrorType::Custom("reservation exceeded"), "stream cut");
        }
        if end_of_stream && !ctx.response.is_hit() {
            attempts::on_complete(&ctx.state, ctx);
        }
        Ok(None)
    }

    fn request_cache_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        if matches!(ctx.cache, cache::Plan::On { .. }) {
            if let Some(layer) = self.shared.cache {
                layer.enable(&mut session.cache);
            }
        }
        Ok(())
    }

    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        _meta: &pingora_cache::CacheMeta,
        _hit_handler: &mut pingora_cache::HitHandler,
        _is_fresh: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Option<pingora_cache::ForcedFreshness>> {
        Ok(cache::hit_filter(ctx))
    }

    fn cache_key_callback(
        &self,
        _session: &Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<pingora_cache::CacheKey> {
        Ok(cache::cache_key(ctx))
    }

    fn response_cache_filter(
        &self,
        _session: &Session,
        resp: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<pingora_cache::RespCacheable> {
        Ok(cache::cacheable(ctx, resp))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let gw = ctx.state.clone();
        attempts::on_transport_failure(&gw, ctx, e.etype().as_str());
        if is_certificate_failure(&e) {
            // A certificate problem is configuration, not a blip: no second try at this target
            // within the request (other targets are still tried).
            attempts::exclude_current_target(ctx);
            log::warn!("TLS to {} failed: {}", peer_name(ctx), e.root_cause());
        }
        e.set_retry(attempts::can_retry(&gw, ctx, tokio::time::Instant::now()));
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        if matches!(e.esource(), ErrorSource::Downstream) || client_went_away(&e) {
            // The client went away or failed: not the provider's fault, and nobody to answer.
            ctx.walk.dropped = None;
            e.set_retry(false);
            return e;
        }
        if let Some(dropped) = ctx.walk.dropped.take() {
            // Our own status-based verdict from `upstream_response_filter`: already decided.
            e.set_retry(dropped == Dropped::Retry);
            return e;
        }
        let gw = ctx.state.clone();
        let nothing_sent = session.response_written().is_none();
        let stale_pooled_conn = client_reused && matches!(e.retry, RetryType::ReusedOnly);
        if nothing_sent && stale_pooled_conn {
            // The provider closed an idle pooled connection: the same target on a fresh one.
            if let Some(a) = ctx.walk.attempts.pop() {
                log::debug!("retrying {}/{} on a fresh connection", a.provider, a.model);
            }
            ctx.walk.next = ctx.walk.next.saturating_sub(1);
            e.set_retry(true);
            return e;
        }
        attempts::on_transport_failure(&gw, ctx, e.etype().as_str());
        e.set_retry(nothing_sent && attempts::can_retry(&gw, ctx, tokio::time::Instant::now()));
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if client_went_away(e) {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let err = ctx
            .outcome
            .error
            .take()
            .unwrap_or_else(|| classify_failure(e, ctx));
        if session.response_written().is_some() {
            // Mid-stream: end the stream with an error event the client's SDK understands.
            stream_error::finish_with_error(session, ctx, &err).await;
            ctx.outcome.error = Some(err);
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let code = err.status();
        // pingora does not reuse a client connection after a proxy failure.
        ctx.downstream.close = true;
        if let Err(write_err) = respond::error(session, ctx, err).await {
            log::debug!("could not send the error response: {write_err}");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &RequestCtx,
        _error: &Error,
        _context: pingora_proxy::ProxyWarnLogContext,
    ) -> bool {
        // Retries are routine and every attempt is in the access log and metrics.
        true
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        // A client hanging up mid-stream is routine; the access log records it.
        client_went_away(e)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(home) = ctx.downstream.home.take() {
            downstream::restore(&mut session.downstream_session, &home);
        }
        if ctx.outcome.status == 0 {
            ctx.outcome.status = session.response_written().map_or(0, |r| r.status.as_u16());
        }
        let mut fin = layers::Finish {
            shared: &self.shared,
            session,
            error: e,
            account: Default::default(),
        };
        layers::on_finish(ctx, &mut fin).await;
    }
}

/// After the layers: the walk can start. Unless a cached answer may serve, the chain must be
/// walkable now or after a short wait (every key resting or every circuit open means the
/// answer is known without calling anyone; answering from `request_filter` keeps the client
/// connection alive).
fn walk_ready(gw: &GatewayState, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    if ctx.cache.may_serve_stored() {
        return Ok(());
    }
    attempts::precheck(gw, ctx)
}

fn is_certificate_failure(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert | ErrorType::TLSWantX509Lookup
    )
}

fn peer_name(ctx: &RequestCtx) -> String {
    ctx.walk
        .attempts
        .last()
        .map_or("the provider".to_owned(), |a| {
            format!("provider `{}`", a.provider)
        })
}

pub fn client_went_away(e: &Error) -> bool {
    matches!(e.esource(), ErrorSource::Downstream)
        && matches!(
            e.etype(),
            ErrorType::WriteError
                | ErrorType::ReadError
                | ErrorType::ConnectionClosed
                | ErrorType::H2Error
        )
}

/// A proxy failure the gateway did not classify itself, in client terms.
fn classify_failure(e: &Error, ctx: &RequestCtx) -> GatewayError {
    let provider = ctx
        .walk
        .attempts
        .last()
        .map_or("the provider".to_owned(), |a| {
            format!("provider `{}`", a.provider)
        });
    if matches!(e.esource(), ErrorSource::Downstream) {
        return GatewayError::bad_request("the request could not be read from the client");
    }
    match e.etype() {
        ErrorType::ConnectTimedout => GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!("connecting to {provider} timed out"),
        ),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!("{provider} did not answer in time"),
        ),
        _ if is_certificate_failure(e) => GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("TLS with {provider} failed: {}", e.root_cause()),
        ),
        _ => GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("{provider} failed: {}", e.etype().as_str()),
        ),
    }
}
