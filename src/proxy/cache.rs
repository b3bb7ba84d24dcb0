//! The proxy's side of response caching: deciding per request whether the cache is used
//! ([`plan`]), the pingora-cache hooks' work (key, cacheability), the upstream tap that turns a
//! provider's answer into a canonical record, and the renderer that turns a record (fresh or
//! from the cache) into the client's dialect.
//!
//! Opt-in only: a route's `cache = { ttl = "10m" }`, or a request's `x-switchyard-cache:
//! ttl=600`. `x-switchyard-cache: off` bypasses. The client's `Cache-Control` wins over both:
//! `no-store` bypasses (nothing read, nothing written); `no-cache` never serves a stored answer
//! but stores the fresh one (a refresh). Answers carry `x-switchyard-cache: hit|miss|bypass`
//! whenever caching was asked for.

use super::ctx::RequestCtx;
use super::GatewayState;
use crate::cache::key::request_key;
use crate::cache::record::{Renderer, Tap};
use crate::dialect::canonical::StreamEncoderOptions;
use crate::dialect::translate::decode_request;
use crate::dialect::Endpoint;
use bytes::Bytes;
use pingora_cache::{
    CacheKey, CacheMeta, CachePhase, ForcedFreshness, NoCacheReason, RespCacheable,
};
use pingora_http::{RequestHeader, ResponseHeader};
use std::time::{Duration, SystemTime};

/// Response header naming the outcome.
pub const CACHE_HEADER: &str = "x-switchyard-cache";
/// Stored with an entry: who produced it (for the saved cost of a hit).
const CACHED_PROVIDER: &str = "x-switchyard-cached-provider";
const CACHED_MODEL: &str = "x-switchyard-cached-model";
/// Marks a body that is a canonical record.
const RECORD_TYPE: &str = "application/x-switchyard-record";

/// What the cache does for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Caching was not asked for.
    Off,
    /// Asked to skip the cache (or the request cannot be keyed).
    Bypass,
    On {
        ttl: Duration,
        tool_calls: bool,
        /// Namespace-framed canonical request hash.
        key: String,
        /// The client sent `Cache-Control: no-cache`: a stored answer is not served, the
        /// fresh one replaces it.
        refresh: bool,
    },
}

impl Plan {
    /// Whether a stored answer may be served (so the request may need no provider at all).
    pub fn may_serve_stored(&self) -> bool {
        matches!(self, Plan::On { refresh: false, .. })
    }
}

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

/// Decides the plan once the request is resolved (route, key name and body known).
pub fn plan(gw: &GatewayState, req: &RequestHeader, ctx: &RequestCtx) -> Plan {
    if !matches!(
        ctx.endpoint,
        Some(Endpoint::ChatCompletions | Endpoint::Messages)
    ) {
        return Plan::Off;
    }
    let route = ctx
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
    let canonical = match &ctx.translator {
        Some(t) => Some(t.request.clone()),
        None => decode_request(ctx.dialect, &ctx.body, &gw.config.translation).ok(),
    };
    let Some(canonical) = canonical else {
        log::debug!("request {}: not cacheable (no canonical form)", ctx.id);
        return Plan::Bypass;
    };
    let model = ctx.model.as_deref().unwrap_or_default();
    let namespace = ctx
        .key_name
        .as_deref()
        .and_then(|k| gw.keys.namespace_of(k))
        .unwrap_or_default();
    Plan::On {
        ttl,
        tool_calls,
        // Length-framed so no namespace can collide with another's keys.
        key: format!(
            "{}:{namespace}|{}",
            namespace.len(),
            request_key(&canonical, model)
        ),
        refresh: client.no_cache,
    }
}

/// `cache_hit_filter`: a refresh never serves the stored answer; pingora then treats the
/// lookup as a miss, and the fresh answer replaces the entry.
pub fn hit_filter(ctx: &RequestCtx) -> Option<ForcedFreshness> {
    matches!(ctx.cache_plan, Plan::On { refresh: true, .. }).then_some(ForcedFreshness::ForceMiss)
}

pub fn cache_key(ctx: &RequestCtx) -> CacheKey {
    match &ctx.cache_plan {
        Plan::On { key, .. } => CacheKey::new(key.as_bytes().to_vec(), ""),
        _ => CacheKey::new(ctx.id.as_bytes().to_vec(), ""),
    }
}

/// Only complete 200 answers are stored; the TTL is the plan's.
pub fn cacheable(ctx: &RequestCtx, resp: &ResponseHeader) -> RespCacheable {
    match (&ctx.cache_plan, ctx.tap.is_some()) {
        (Plan::On { ttl, .. }, true) if resp.status.as_u16() == 200 => {
            let now = SystemTime::now();
            RespCacheable::Cacheable(CacheMeta::new(now + *ttl, now, 0, 0, resp.clone()))
        }
        _ => RespCacheable::Uncacheable(NoCacheReason::OriginNotCache),
    }
}

/// `upstream_response_filter`: a 2xx answer to a cached request is recorded canonically.
pub fn on_upstream_header(
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<()> {
    if !matches!(ctx.cache_plan, Plan::On { .. }) || !resp.status.is_success() {
        ctx.tap = None;
        return Ok(());
    }
    ctx.tap = Some(Tap::new(ctx.upstream_dialect(), ctx.stream));
    // The record replaces the provider's body: its framing and type no longer apply.
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    resp.insert_header(http::header::CONTENT_TYPE, RECORD_TYPE)?;
    if let Some(a) = ctx.attempts.last() {
        resp.insert_header(CACHED_PROVIDER, a.provider.as_str())?;
        resp.insert_header(CACHED_MODEL, a.model.as_str())?;
    }
    Ok(())
}

/// `upstream_response_body_filter`: usage is read from the provider's own bytes, then the
/// bytes become record lines. At the end, an answer not worth storing (cut, errored, or with
/// tool calls the route excludes) disables the cache before pingora commits the entry.
pub fn on_upstream_body(
    cache: &mut pingora_cache::HttpCache,
    ctx: &mut RequestCtx,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) {
    let Some(tap) = ctx.tap.as_mut() else {
        return;
    };
    let chunk = body.take().unwrap_or_default();
    if let Some(tally) = ctx.tally.as_mut() {
        tally.feed(chunk.clone());
    }
    let mut out = tap.feed(&chunk).to_vec();
    if end_of_stream {
        if let Some(tally) = ctx.tally.as_mut() {
            tally.finish();
        }
        out.extend_from_slice(&tap.finish());
        let tool_calls = matches!(
            ctx.cache_plan,
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
            ctx.status = 502;
            if let Some(Ok(mut c)) = ctx.hold.as_ref().map(|c| c.lock()) {
                c.status = Some(502);
            }
        }
    }
    *body = Some(Bytes::from(out));
}

/// `response_filter`: the outcome header, and a renderer for a record (a fresh one from the
/// tap, or a stored one on a hit).
pub fn on_response_header(
    phase: CachePhase,
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<()> {
    let outcome = match (&ctx.cache_plan, phase) {
        (Plan::Off, _) => None,
        (Plan::Bypass, _) => Some("bypass"),
        (Plan::On { .. }, CachePhase::Hit) => Some("hit"),
        (Plan::On { .. }, _) => Some("miss"),
    };
    ctx.cache_hit = outcome == Some("hit");
    if let Some(o) = outcome {
        resp.insert_header(CACHE_HEADER, o)?;
    }
    let is_record = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == RECORD_TYPE.as_bytes());
    if !is_record {
        return Ok(());
    }
    let text = |name: &str| {
        resp.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if ctx.cache_hit {
        ctx.cached_from = text(CACHED_PROVIDER).zip(text(CACHED_MODEL));
        if let Some((p, m)) = &ctx.cached_from {
            resp.insert_header("x-switchyard-provider", p.as_str())?;
            resp.insert_header("x-switchyard-model", m.as_str())?;
        }
    }
    resp.remove_header(CACHED_PROVIDER);
    resp.remove_header(CACHED_MODEL);
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::AGE);
    let content_type = if ctx.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    let model = ctx.cached_from.as_ref().map_or_else(
        || {
            ctx.attempts
                .last()
                .map(|a| a.model.clone())
                .unwrap_or_default()
        },
        |(_, m)| m.clone(),
    );
    ctx.renderer = Some(Renderer::new(
        ctx.dialect,
        ctx.stream,
        StreamEncoderOptions {
            include_usage: ctx.client_wants_usage,
            model,
        },
    ));
    Ok(())
}

/// `response_body_filter` for a record: rendered into the client's dialect.
pub fn render_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
    let Some(r) = ctx.renderer.as_mut() else {
        return;
    };
    let mut out = body.take().map(|b| r.feed(&b)).unwrap_or_default();
    if end_of_stream {
        let rest = r.finish();
        out = super::append(out, rest);
        if ctx.cache_hit {
            ctx.cached_usage = r.usage();
        }
    }
    *body = Some(out);
}
