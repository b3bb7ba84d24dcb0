//! Layer 6: response caching. Decides per request whether the cache is used ([`plan`]), does
//! the pingora-cache hooks' work (key, cacheability), turns a provider's answer into a
//! canonical record before storage (the tap), and renders a record (fresh or a hit) into the
//! client's dialect.
//!
//! Chat answers (Chat Completions, Messages) are stored as canonical records; embeddings as
//! the OpenAI JSON the client gets (translation runs before the store), with their own key
//! (`crate::cache::key::embeddings_key`). Endpoints the table marks not cacheable never are.
//!
//! Opt-in only: a route's `cache = { ttl = "10m" }`, or a request's `x-switchyard-cache:
//! ttl=600`. `x-switchyard-cache: off` bypasses. The client's `Cache-Control` wins over both:
//! `no-store` bypasses (nothing read, nothing written); `no-cache` never serves a stored answer
//! but stores the fresh one (a refresh). Answers carry `x-switchyard-cache: hit|miss|bypass`
//! whenever caching was asked for.

use super::{Cx, Failure, Flow, Layer};
use crate::cache::key::request_key;
use crate::cache::record::{Renderer, Tap};
pub use crate::cache::Plan;
use crate::dialect::canonical::StreamEncoderOptions;
use crate::dialect::translate::decode_request;
use crate::dialect::Endpoint;
use crate::proxy::ctx::{RequestCtx, Response};
use crate::proxy::GatewayState;
use bytes::Bytes;
use pingora_cache::{CacheKey, CacheMeta, ForcedFreshness, NoCacheReason, RespCacheable};
use pingora_http::{RequestHeader, ResponseHeader};
use std::time::{Duration, SystemTime};

/// Response header naming the outcome.
pub const CACHE_HEADER: &str = "x-switchyard-cache";
/// Stored with an entry: who produced it (for the saved cost of a hit).
const CACHED_PROVIDER: &str = "x-switchyard-cached-provider";
const CACHED_MODEL: &str = "x-switchyard-cached-model";
/// Marks a body that is a canonical record.
const RECORD_TYPE: &str = "application/x-switchyard-record";

/// How the client asked, from its headers: `None` = no opinion.
enum Ask {
    Bypass,
    Ttl(Duration),
}

fn asked(req: &RequestHeader) -> Option<Ask> {
    let v = req.headers.get(CACHE_HEADER)?.to_str().ok()?;
    let v = v.trim().to_ascii_lowercase();
    if v == "off" || v == "bypass" || v == "no" {
        return Some(Ask::Bypass);
    }
    let secs = v.strip_prefix("ttl=")?.trim().parse::<u64>().ok()?;
    Some(if secs == 0 {
        Ask::Bypass
    } else {
        Ask::Ttl(Duration::from_secs(secs))
    })
}

/// The client's own `Cache-Control` request directives that concern the gateway's cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ClientDirectives {
    /// Nothing read from the cache, nothing written to it.
    no_store: bool,
    /// No stored answer served; a fresh one may be stored.
    no_cache: bool,
}

fn client_directives(req: &RequestHeader) -> ClientDirectives {
    let mut d = ClientDirectives::default();
    for value in req.headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let name = directive.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("no-store") {
                d.no_store = true;
            } else if name.eq_ignore_ascii_case("no-cache") {
                d.no_cache = true;
            }
        }
    }
    d
}

#[derive(Default)]
pub struct Cache;

impl Layer for Cache {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        if cx.ctx.request.model.is_some() {
            cx.ctx.cache = plan(cx.gw, cx.session.req_header(), cx.ctx);
        }
        Ok(Flow::Continue)
    }

    fn on_upstream_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        on_upstream_header(ctx, resp)
    }

    fn on_upstream_body(
        &self,
        cache: &mut pingora_cache::HttpCache,
        ctx: &mut RequestCtx,
        body: &mut Option<Bytes>,
        end: bool,
    ) {
        on_upstream_body(cache, ctx, body, end);
    }

    fn on_response_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        on_response_header(ctx, resp)
    }

    fn on_body(&self, ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
        render_body(ctx, body, end);
    }
}

/// Decides the plan once the request is resolved (route, key name and body known).
pub fn plan(gw: &GatewayState, req: &RequestHeader, ctx: &RequestCtx) -> Plan {
    let Some(endpoint) = ctx.client.endpoint.filter(|e| e.spec().cacheable) else {
        return Plan::Off;
    };
    let route = ctx
        .plan
        .route
        .as_deref()
        .and_then(|r| gw.config.route(r))
        .and_then(|r| r.cache);
    let client = client_directives(req);
    let (ttl, tool_calls) = match (asked(req), route) {
        // The client's own Cache-Control wins over the gateway's opt-ins (header or route).
        _ if client.no_store => return Plan::Bypass,
        (Some(Ask::Bypass), _) => return Plan::Bypass,
        (None, None) if client.no_cache => return Plan::Bypass,
        (Some(Ask::Ttl(t)), r) => (t, r.is_none_or(|r| r.tool_calls)),
        (None, Some(r)) => (r.ttl, r.tool_calls),
        (None, None) => return Plan::Off,
    };
    let ttl = ttl.min(gw.config.cache.max_ttl);
    let model = ctx.request.model.as_deref().unwrap_or_default();
    let key = if endpoint == Endpoint::Embeddings {
        crate::cache::key::embeddings_key(&ctx.request.body, model)
    } else {
        chat_key(gw, ctx, model)
    };
    let Some(key) = key else {
        log::debug!("request {}: not cacheable (no canonical form)", ctx.id);
        return Plan::Bypass;
    };
    let namespace = ctx
        .client
        .key
        .as_deref()
        .map_or("", |k| k.cache_namespace.as_str());
    Plan::On {
        ttl,
        tool_calls,
        // Length-framed so no namespace can collide with another's keys.
        key: format!("{}:{namespace}|{key}", namespace.len()),
        refresh: client.no_cache,
    }
}

/// A chat request's key: from its canonical form, whichever dialect it came in.
fn chat_key(gw: &GatewayState, ctx: &RequestCtx, model: &str) -> Option<String> {
    match &ctx.request.translator {
        Some(t) => Some(request_key(&t.request, model)),
        None => decode_request(
            ctx.client.dialect,
            &ctx.request.body,
            &gw.config.translation,
        )
        .ok()
        .map(|c| request_key(&c, model)),
    }
}

/// `cache_hit_filter`: a refresh never serves the stored answer; pingora then treats the
/// lookup as a miss, and the fresh answer replaces the entry.
pub fn hit_filter(ctx: &RequestCtx) -> Option<ForcedFreshness> {
    matches!(ctx.cache, Plan::On { refresh: true, .. }).then_some(ForcedFreshness::ForceMiss)
}

pub fn cache_key(ctx: &RequestCtx) -> CacheKey {
    match &ctx.cache {
        Plan::On { key, .. } => CacheKey::new(key.as_bytes().to_vec(), ""),
        _ => CacheKey::new(ctx.id.as_bytes().to_vec(), ""),
    }
}

/// Only complete 200 answers are stored (chat answers as records, embeddings as the client's
/// JSON); the TTL is the plan's.
pub fn cacheable(ctx: &RequestCtx, resp: &ResponseHeader) -> RespCacheable {
    let recorded = matches!(*ctx.response, Response::Recorded { .. })
        || ctx.client.endpoint == Some(Endpoint::Embeddings);
    match (&ctx.cache, recorded) {
        (Plan::On { ttl, .. }, true) if resp.status.as_u16() == 200 => {
            let now = SystemTime::now();
            RespCacheable::Cacheable(CacheMeta::new(now + *ttl, now, 0, 0, resp.clone()))
        }
        _ => RespCacheable::Uncacheable(NoCacheReason::OriginNotCache),
    }
}

/// `upstream_response_filter`: a 2xx answer to a cached request is recorded canonically
/// (accounting, below this layer, has already given it a usage tally).
fn on_upstream_header(
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<()> {
    if !matches!(ctx.cache, Plan::On { .. }) || !resp.status.is_success() {
        return Ok(());
    }
    if ctx.client.endpoint == Some(Endpoint::Embeddings) {
        // Stored as the client gets it (translation turns a Gemini answer into OpenAI's
        // before the cache writes it), with who produced it.
        return stored_from(ctx, resp);
    }
    let tally = match &mut *ctx.response {
        Response::Proxied(t) => t.tally.take(),
        _ => None,
    };
    let Some(tally) = tally else {
        return Ok(());
    };
    *ctx.response = Response::Recorded {
        tally,
        tap: Tap::new(ctx.upstream_dialect(), ctx.request.stream),
        renderer: None,
    };
    // The record replaces the provider's body: its framing and type no longer apply.
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    resp.insert_header(http::header::CONTENT_TYPE, RECORD_TYPE)?;
    stored_from(ctx, resp)
}

/// Marks a stored answer with the provider and model that produced it (for a hit's saving).
fn stored_from(ctx: &RequestCtx, resp: &mut ResponseHeader) -> pingora_error::Result<()> {
    if let Some(a) = ctx.walk.attempts.last() {
        resp.insert_header(CACHED_PROVIDER, a.provider.as_str())?;
        resp.insert_header(CACHED_MODEL, a.model.as_str())?;
    }
    Ok(())
}

/// `upstream_response_body_filter`: the provider's bytes (usage already read from them)
/// become record lines. At the end, an answer not worth storing (cut, errored, or with tool
/// calls the route excludes) disables the cache before pingora commits the entry.
fn on_upstream_body(
    cache: &mut pingora_cache::HttpCache,
    ctx: &mut RequestCtx,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) {
    let Response::Recorded { tap, .. } = &mut *ctx.response else {
        return;
    };
    let chunk = body.take().unwrap_or_default();
    let mut out = tap.feed(&chunk).to_vec();
    if end_of_stream {
        out.extend_from_slice(&tap.finish());
        let tool_calls = matches!(
            ctx.cache,
            Plan::On {
                tool_calls: true,
                ..
            }
        );
        if !tap.storable(tool_calls) && cache.enabled() {
            cache.disable(NoCacheReason::Custom("incomplete or excluded answer"));
        }
        if tap.failed() {
            // An unreadable whole answer: the client gets a 502 in its dialect.
            ctx.outcome.status = 502;
            if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
                c.status = Some(502);
            }
        }
    }
    *body = Some(Bytes::from(out));
}

/// `response_filter`: the outcome header, and a renderer for a record (a fresh one from the
/// tap, or a stored one on a hit; the proxy marks a hit before the layers run).
fn on_response_header(
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<()> {
    if let Some(o) = ctx.cache_outcome() {
        resp.insert_header(CACHE_HEADER, o.as_str())?;
    }
    if ctx.client.endpoint == Some(Endpoint::Embeddings) && matches!(ctx.cache, Plan::On { .. }) {
        return embeddings_header(ctx, resp);
    }
    let is_record = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == RECORD_TYPE.as_bytes());
    if !is_record {
        return Ok(());
    }
    let stored_from = take_stored_from(ctx, resp)?;
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::AGE);
    let content_type = if ctx.request.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    let model = match (&*ctx.response, &stored_from) {
        (Response::Hit { .. }, Some((_, m))) => m.clone(),
        _ => ctx
            .walk
            .attempts
            .last()
            .map(|a| a.model.clone())
            .unwrap_or_default(),
    };
    let new = Renderer::new(
        ctx.client.dialect,
        ctx.request.stream,
        StreamEncoderOptions {
            include_usage: ctx.client.wants_usage,
            model,
            response_id: ctx.conversation.response_id.clone(),
            echo: ctx.conversation.echo.clone(),
        },
    );
    match &mut *ctx.response {
        Response::Hit { renderer, from, .. } => {
            *from = stored_from;
            *renderer = Some(new);
        }
        Response::Recorded { renderer, .. } => *renderer = Some(new),
        _ => {}
    }
    Ok(())
}

/// Takes the marks [`stored_from`] put on a stored answer off its header (they are the
/// gateway's, never the client's); on a hit, the client is told who produced the answer.
fn take_stored_from(
    ctx: &RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<Option<(String, String)>> {
    let text = |name: &str| {
        resp.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let from = text(CACHED_PROVIDER).zip(text(CACHED_MODEL));
    resp.remove_header(CACHED_PROVIDER);
    resp.remove_header(CACHED_MODEL);
    if let (true, Some((p, m))) = (ctx.response.is_hit(), &from) {
        resp.insert_header("x-switchyard-provider", p.as_str())?;
        resp.insert_header("x-switchyard-model", m.as_str())?;
    }
    Ok(from)
}

/// An embeddings answer, fresh or stored: the stored-from marks are the gateway's, never the
/// client's; a hit names who produced it and reads the usage its saving is priced from.
fn embeddings_header(ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> pingora_error::Result<()> {
    let from = take_stored_from(ctx, resp)?;
    if let Response::Hit { from: f, .. } = &mut *ctx.response {
        *f = from;
        // Stored in OpenAI's shape whichever provider produced it.
        ctx.media.hit_usage = Some(crate::usage::tally::StreamTally::new(
            crate::dialect::Dialect::OpenAi,
            false,
            false,
        ));
    }
    Ok(())
}

/// `response_body_filter` for a record: rendered into the client's dialect. An embeddings
/// hit passes as stored; its usage is read on the way.
fn render_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
    if let Some(tally) = ctx.media.hit_usage.as_mut() {
        if let Some(b) = body.as_ref() {
            tally.feed(b.clone());
        }
        if end_of_stream {
            tally.finish();
            let usage = tally.usage();
            if let Response::Hit { usage: u, .. } = &mut *ctx.response {
                *u = usage;
            }
        }
        return;
    }
    let (r, hit_usage) = match &mut *ctx.response {
        Response::Recorded {
            renderer: Some(r), ..
        } => (r, None),
        Response::Hit {
            renderer: Some(r),
            usage,
            ..
        } => (r, Some(usage)),
        _ => return,
    };
    let mut out = body.take().map(|b| r.feed(&b)).unwrap_or_default();
    if end_of_stream {
        out = crate::transform::append(out, r.finish());
        if let Some(usage) = hit_usage {
            *usage = r.usage();
        }
    }
    *body = Some(out);
}
