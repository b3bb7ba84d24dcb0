//! The gateway's Pingora `ProxyHttp` implementation. Each hook is thin and hands its work to a
//! module with one job. A request passes these layers, in order:
//!
//! 1. `request_filter` -> [`intake`]: classify the endpoint (`/v1/chat/completions`,
//!    `/v1/messages`, `/v1/embeddings`; `/v1/models` and `/healthz` are answered here),
//!    authenticate the gateway key, read the whole body (bounded; 413 past the limit), find the
//!    model, check the key may use it, and resolve it into an ordered candidate list
//!    ([`crate::routing`]). Errors are answered in the client's dialect. Then the client session
//!    is wrapped ([`downstream`]): the body is replayed whole to each attempt, and the response
//!    header is held until the first body bytes (streams) or the end (non-streamed answers).
//!    The cache plan is decided here too ([`cache::plan`]): off, bypass, or on with a TTL.
//! 2. Cache (only when the plan is on): `request_cache_filter` enables pingora-cache with the
//!    gateway's bounded store and lock, `cache_key_callback` gives the namespaced canonical
//!    request hash. A hit skips every upstream layer: `response_filter` and
//!    `response_body_filter` render the stored canonical record in the client's dialect.
//!    A miss holds the lock while it fills; identical requests wait, then hit.
//! 3. `upstream_peer` -> [`upstream::next_peer`]: the next candidate with a usable key, its
//!    address from the non-blocking DNS cache ([`crate::net`]), timeouts from config.
//! 4. `upstream_request_filter` -> [`upstream::shape_request`]: provider path, host, the
//!    provider's key in place of the client's, framing for the rewritten body.
//! 5. `request_body_filter`: the body for this attempt (the model renamed for its target, or
//!    the request translated into the target's dialect: [`crate::dialect::translate`]).
//! 6. `fail_to_connect` / `error_while_proxy`: before any byte reached the client, move on to
//!    the next candidate (or retry a stale pooled connection); after, give up.
//! 7. `upstream_response_filter`: 408/429/5xx/529 and 401/403 answers are dropped for another
//!    attempt while the budget and deadline allow; key rests and breakers learn from each answer.
//!    `response_cache_filter`: a 200 to a cached request is stored (TTL from the plan).
//!    `upstream_response_body_filter`: for a cached request, usage is tallied from the
//!    provider's bytes, which become a canonical record ([`crate::cache::record`]); an answer
//!    that is cut, errored or excluded disables the cache before pingora commits it.
//!    `response_filter`: add `x-switchyard-request-id`, `-provider`, `-model`, `-attempts`.
//!    `response_body_filter`: bodies (SSE included) stream through chunk by chunk while usage is
//!    tallied ([`crate::usage`]); at the end of a non-streamed body its exact cost goes into
//!    `x-switchyard-cost-usd`. When the provider speaks another dialect than the client, the
//!    body is then translated back ([`translation`]): streams event by event, whole answers and
//!    errors at their end. A canonical record (fresh or a hit) is rendered instead.
//! 8. `fail_to_proxy`: an error in the client's dialect if nothing was sent yet.
//! 9. `logging`: restore the real client session; settle usage and cost ([`accounting`]);
//!    metrics, one JSON access-log line, and one ledger row (queued, never written here).
//!    Live target statistics ([`crate::stats`]) hear of each failed attempt as it fails and
//!    of the served one here ([`observe`]).

mod access_log;
pub mod accounting;
mod attempts;
pub mod cache;
pub mod ctx;
pub mod downstream;
pub mod drain;
mod intake;
mod models;
mod observe;
mod respond;
mod stream_error;
mod translation;
mod upstream;

use crate::auth::KeyRing;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::net::Resolver;
use crate::providers::Upstream;
use crate::resilience::Health;
use crate::routing::Router;
use async_trait::async_trait;
use bytes::Bytes;
use ctx::RequestCtx;
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
    /// Live statistics per provider/model (process-wide, like `health`).
    pub stats: Arc<crate::stats::TargetStats>,
}

impl GatewayState {
    pub fn new(
        config: Config,
        resolver: Arc<Resolver>,
        health: Arc<Health>,
        stats: Arc<crate::stats::TargetStats>,
    ) -> GatewayState {
        let breaker = config.resilience.breaker;
        let generation = health.next_generation();
        GatewayState {
            router: Router::new(&config),
            keys: KeyRing::new(&config.gateway_keys),
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
        }
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
}

impl Shared {
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        ledger: Option<crate::ledger::LedgerHandle>,
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
        let state = GatewayState::new(config, resolver.clone(), health.clone(), stats.clone());
        Arc::new(Shared {
            current: RwLock::new(Arc::new(state)),
            health,
            stats,
            resolver,
            config_path,
            ledger,
            cache,
            draining: AtomicBool::new(false),
        })
    }

    /// Whether requests should now close their client connection after the answer ([`drain`]).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn state(&self) -> Arc<GatewayState> {
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
        let state = GatewayState::new(
            config,
            self.resolver.clone(),
            self.health.clone(),
            self.stats.clone(),
        );
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
        intake::intake(&gw, session, ctx).await
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
                ctx.error = Some(e);
                Error::e_explain(ErrorType::ConnectNoRoute, msg)
            }
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        upstream::shape_request(&ctx.state, ctx, upstream_request)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        // The client's body was read whole in `request_filter`; each attempt sends its own
        // rewritten copy, once, at the end of the (replayed) stream.
        *body = Some(if end_of_stream {
            ctx.upstream_body.clone()
        } else {
            Bytes::new()
        });
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        let gw = ctx.state.clone();
        let next = attempts::on_response(&gw, ctx, upstream_response);
        if next != attempts::Next::Pass {
            // Drop this answer (429, 5xx, 401). To retry, pingora calls `error_while_proxy`,
            // then `upstream_peer` for the next attempt; otherwise `fail_to_proxy` answers
            // with `ctx.error`.
            let status = upstream_response.status.as_u16();
            let retry = next == attempts::Next::Retry;
            let mut e = Error::explain(ErrorType::HTTPStatus(status), "provider answer dropped");
            e.set_retry(retry);
            ctx.status_retry = retry;
            ctx.status_fail = !retry;
            return Err(e);
        }
        ctx.first_byte.get_or_insert_with(Instant::now);
        ctx.tally = if upstream_response.status.is_success() {
            accounting::tally_for(ctx)
        } else {
            None
        };
        if accounting::strips_usage_chunk(ctx) {
            // The body will be shorter than the provider framed it: let pingora re-frame it.
            upstream_response.remove_header(&http::header::CONTENT_LENGTH);
        }
        cache::on_upstream_header(ctx, upstream_response)?;
        ctx.response_translator = if ctx.tap.is_some() {
            // A cacheable answer is recorded canonically and rendered for the client from
            // the record (fresh or stored): no direct translation.
            None
        } else {
            translation::response_translator(ctx, upstream_response)?
        };
        if let Some(Ok(mut c)) = ctx.hold.as_ref().map(|c| c.lock()) {
            c.hold = if ctx.stream {
                downstream::Hold::UntilFirstBody
            } else {
                downstream::Hold::UntilEnd
            };
            c.extra_headers.clear();
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Option<std::time::Duration>> {
        if let Some(b) = body.as_ref() {
            if !b.is_empty() {
                ctx.first_token.get_or_insert_with(Instant::now);
            }
        }
        if ctx.renderer.is_some() {
            // A canonical record (tapped from the provider, or a cache hit): usage was read
            // upstream of the cache; the record is rendered in the client's dialect.
            cache::render_body(ctx, body, end_of_stream);
        } else if let Some(tally) = ctx.tally.as_mut() {
            let mut out = body.take().map(|b| tally.feed(b)).unwrap_or_default();
            if end_of_stream {
                let rest = tally.finish();
                out = append(out, rest);
            }
            *body = Some(out);
        }
        if let Some(t) = ctx.response_translator.as_mut() {
            translation::translate_body(t, body, end_of_stream, ctx.hold.as_ref());
            if let Some(code) = t.failed_status() {
                ctx.status = code;
            }
        }
        if end_of_stream && !ctx.cache_hit {
            attempts::on_complete(&ctx.state, ctx);
        }
        if end_of_stream && !ctx.stream && !ctx.cache_hit {
            // The held header goes out after this: it can carry the exact cost.
            let cost = accounting::cost_header(ctx);
            if let Some(Ok(mut c)) = ctx.hold.as_ref().map(|c| c.lock()) {
                c.extra_headers.push(("x-switchyard-cost-usd", cost));
            }
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        ctx.status = resp.status.as_u16();
        cache::on_response_header(_session.cache.phase(), ctx, resp)?;
        if ctx.cache_hit && !ctx.stream {
            // pingora writes a hit's header at once (no hold): its cost is known, nothing.
            resp.insert_header("x-switchyard-cost-usd", "0")?;
        }
        resp.insert_header(respond::REQUEST_ID_HEADER, ctx.id.as_str())?;
        if let (false, Some(a)) = (ctx.cache_hit, ctx.attempts.last()) {
            resp.insert_header("x-switchyard-provider", a.provider.as_str())?;
            resp.insert_header("x-switchyard-model", a.model.as_str())?;
        }
        resp.insert_header("x-switchyard-attempts", ctx.attempts_header())?;
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<Option<std::time::Duration>> {
        cache::on_upstream_body(&mut session.cache, ctx, body, end_of_stream);
        Ok(None)
    }

    fn request_cache_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora_error::Result<()> {
        if matches!(ctx.cache_plan, cache::Plan::On { .. }) {
            if let Some(layer) = self.shared.cache {
                layer.enable(&mut session.cache);
            }
        }
        Ok(())
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
            ctx.status_retry = false;
            e.set_retry(false);
            return e;
        }
        if std::mem::take(&mut ctx.status_retry) {
            // Our own status-based retry from `upstream_response_filter`: already decided.
            e.set_retry(true);
            return e;
        }
        if std::mem::take(&mut ctx.status_fail) {
            e.set_retry(false);
            return e;
        }
        let gw = ctx.state.clone();
        let nothing_sent = session.response_written().is_none();
        let stale_pooled_conn = client_reused && matches!(e.retry, RetryType::ReusedOnly);
        if nothing_sent && stale_pooled_conn {
            // The provider closed an idle pooled connection: the same target on a fresh one.
            if let Some(a) = ctx.attempts.pop() {
                log::debug!("retrying {}/{} on a fresh connection", a.provider, a.model);
            }
            ctx.next_candidate = ctx.next_candidate.saturating_sub(1);
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
        let err = ctx.error.take().unwrap_or_else(|| classify_failure(e, ctx));
        if session.response_written().is_some() {
            // Mid-stream: end the stream with an error event the client's SDK understands.
            stream_error::finish_with_error(session, ctx, &err).await;
            ctx.error = Some(err);
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let code = err.status();
        // pingora does not reuse a client connection after a proxy failure.
        ctx.close_connection = true;
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
        if let Some(home) = ctx.body_home.take() {
            downstream::restore(&mut session.downstream_session, &home);
        }
        if ctx.status == 0 {
            ctx.status = session.response_written().map_or(0, |r| r.status.as_u16());
        }
        let account = accounting::settle(ctx).await;
        crate::metrics::record_request(ctx, &account);
        access_log::write(session, e, ctx, &account);
        let client_gone = e.is_some_and(client_went_away);
        observe::served(ctx, &account, client_gone);
        if let (Some(ledger), Some(row)) = (
            self.shared.ledger.as_ref(),
            accounting::ledger_row(ctx, &account, client_gone),
        ) {
            // Queued for the batching writer thread; waits at most briefly, then spills.
            ledger.record(row).await;
        }
    }
}

/// A body chunk followed by what a filter still held at the end of the body (usage tally,
/// translator, record renderer); no copy when either is empty.
fn append(out: Bytes, rest: Bytes) -> Bytes {
    match (out.is_empty(), rest.is_empty()) {
        (_, true) => out,
        (true, false) => rest,
        (false, false) => {
            let mut joined = bytes::BytesMut::with_capacity(out.len() + rest.len());
            joined.extend_from_slice(&out);
            joined.extend_from_slice(&rest);
            joined.freeze()
        }
    }
}

fn is_certificate_failure(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert | ErrorType::TLSWantX509Lookup
    )
}

fn peer_name(ctx: &RequestCtx) -> String {
    ctx.attempts.last().map_or("the provider".to_owned(), |a| {
        format!("provider `{}`", a.provider)
    })
}

fn client_went_away(e: &Error) -> bool {
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
    let provider = ctx.attempts.last().map_or("the provider".to_owned(), |a| {
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

/// The log target of the per-request access lines.
pub fn access_log_target() -> &'static str {
    access_log::TARGET
}
