//! Layer 7: what a request used and cost. Usage is read from the provider's own bytes as they
//! stream through (before the cache records them or translation rewrites them), or estimated
//! when the stream ended without it, and priced exactly from the price list in force today. A
//! non-streamed answer carries its exact cost in `x-switchyard-cost-usd` (its header is held
//! until the end of the body, see `downstream`).

use super::{Finish, Layer};
use crate::dialect::{Dialect, Endpoint};
use crate::proxy::ctx::{RequestCtx, Response};
use crate::summary::Account;
use crate::usage::tally::{StreamTally, Wire};
use crate::usage::Usage;
use bytes::Bytes;
use pingora_http::ResponseHeader;
use rust_decimal::Decimal;

pub const COST_HEADER: &str = "x-switchyard-cost-usd";

#[derive(Default)]
pub struct Accounting;

impl Layer for Accounting {
    fn on_upstream_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        let success = resp.status.is_success();
        let strip = strips_usage_chunk(ctx, success);
        if strip {
            // The body will be shorter than the provider framed it: let pingora re-frame it.
            resp.remove_header(&http::header::CONTENT_LENGTH);
        }
        let tally = if success { tally_for(ctx, strip) } else { None };
        ctx.response = Response::Proxied {
            tally,
            translator: None,
        };
        Ok(())
    }

    fn on_upstream_body(
        &self,
        _cache: &mut pingora_cache::HttpCache,
        ctx: &mut RequestCtx,
        body: &mut Option<Bytes>,
        end: bool,
    ) {
        let tally = match &mut ctx.response {
            Response::Proxied { tally: Some(t), .. } => t,
            Response::Recorded { tally, .. } => tally,
            _ => return,
        };
        let mut out = body.take().map(|b| tally.feed(b)).unwrap_or_default();
        if end {
            out = crate::proxy::append(out, tally.finish());
        }
        *body = Some(out);
    }

    fn on_response_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        if ctx.response.is_hit() && !ctx.request.stream {
            // pingora writes a hit's header at once (no hold): its cost is known, nothing.
            resp.insert_header(COST_HEADER, "0")?;
        }
        Ok(())
    }

    fn on_body(&self, ctx: &mut RequestCtx, _body: &mut Option<Bytes>, end: bool) {
        if end && !ctx.request.stream && !ctx.response.is_hit() {
            // The held header goes out after this: it can carry the exact cost.
            let cost = cost_header(ctx);
            if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
                c.extra_headers.push((COST_HEADER, cost));
            }
        }
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, fin: &mut Finish<'_>) {
        fin.account = settle(ctx).await;
    }
}

/// A tally for a final 2xx answer: how to read usage out of this endpoint's responses.
fn tally_for(ctx: &RequestCtx, strip: bool) -> Option<StreamTally> {
    ctx.client.endpoint?;
    // Usage is read from the provider's own wire format, before any translation.
    let wire = match ctx.upstream_dialect() {
        Dialect::OpenAi => Wire::OpenAiChat,
        Dialect::Anthropic => Wire::AnthropicMessages,
        Dialect::Gemini => Wire::GeminiGenerate,
        Dialect::Responses => Wire::OpenAiResponses,
    };
    Some(StreamTally::new(wire, ctx.request.stream, strip))
}

/// Whether the usage-only chunk is removed from this stream (the gateway asked for it, the
/// client did not). A translated stream gets its usage chunk from the translator, and a
/// recorded one from the cache's renderer.
fn strips_usage_chunk(ctx: &RequestCtx, success: bool) -> bool {
    let recorded = success && matches!(ctx.cache, super::cache::Plan::On { .. });
    ctx.request.stream
        && ctx.client.endpoint == Some(Endpoint::ChatCompletions)
        && !ctx.client.wants_usage
        && !ctx.translating()
        && !recorded
}

/// A cache hit: nothing was generated or billed; the saving is what the stored answer cost
/// at the list price of the provider and model that produced it.
fn settle_hit(ctx: &RequestCtx) -> Account {
    let Response::Hit { from, usage, .. } = &ctx.response else {
        return Account::default();
    };
    let (provider, model) = from.clone().unzip();
    let saved = match (&provider, &model, usage) {
        (Some(p), Some(m), Some(usage)) => ctx
            .state
            .upstreams
            .iter()
            .find(|u| u.name() == p)
            .and_then(|u| ctx.state.config.pricing.cost(&u.cfg, m, usage))
            .map(|c| c.total),
        _ => None,
    };
    Account {
        cost_usd: Some(Decimal::ZERO),
        saved_usd: saved,
        provider,
        model,
        ..Account::default()
    }
}

/// Settles usage and cost. A stream that ended without a usage report is estimated with a
/// tokenizer, which can take real CPU on long texts: that runs on the blocking pool, never on
/// the proxy's worker threads.
pub async fn settle(ctx: &mut RequestCtx) -> Account {
    if ctx.response.is_hit() {
        return settle_hit(ctx);
    }
    let Some(tally) = ctx.response.take_tally() else {
        // No provider answered with success: nothing was generated, nothing is billed.
        return Account {
            cost_usd: Some(Decimal::ZERO),
            ..Account::default()
        };
    };
    let (usage, estimated) = match tally.usage() {
        Some(u) => (u, false),
        None => {
            let body = ctx.request.body.clone();
            let estimate = tokio::task::spawn_blocking(move || tally.estimate(&body)).await;
            match estimate {
                Ok(u) => (u, true),
                Err(e) => {
                    log::error!("usage estimate failed: {e}");
                    (Usage::default(), true)
                }
            }
        }
    };
    let Some(a) = ctx.walk.served() else {
        return Account::default();
    };
    let gw = &ctx.state;
    let p = &gw.upstreams[a.provider_index].cfg;
    let cost = gw.config.pricing.cost(p, &a.model, &usage);
    Account {
        usage,
        estimated,
        cost_unknown: cost.is_none(),
        cost_usd: cost.map(|c| c.total),
        provider: Some(a.provider.clone()),
        model: Some(a.model.clone()),
        saved_usd: None,
    }
}

/// The `x-switchyard-cost-usd` value for a non-streamed answer, from its body's usage:
/// the exact decimal, `0` when no provider answered with success, `unknown` when the model
/// has no price or the answer carried no usage.
fn cost_header(ctx: &RequestCtx) -> String {
    let Some(tally) = ctx.response.tally() else {
        return "0".to_owned();
    };
    let (Some(usage), Some(a)) = (tally.usage(), ctx.walk.served()) else {
        return "unknown".to_owned();
    };
    let p = &ctx.state.upstreams[a.provider_index].cfg;
    ctx.state
        .config
        .pricing
        .cost(p, &a.model, &usage)
        .map_or("unknown".to_owned(), |c| c.total.normalize().to_string())
}
