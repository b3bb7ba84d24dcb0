//! Layer 7: what a request used and cost. Usage is read from the provider's own bytes as they
//! stream through (before the cache records them or translation rewrites them), or estimated
//! when the stream ended without it, and priced exactly from the price list in force today. A
//! non-streamed answer carries its exact cost in `x-switchyard-cost-usd` (its header is held
//! until the end of the body, see `downstream`).

use super::{Finish, Layer};
use crate::cache::Plan;
use crate::endpoints::Unit;
use crate::media::meter::Meter;
use crate::proxy::ctx::{RequestCtx, Response};
use crate::summary::Account;
use crate::transform::{append, Spec, Transform};
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
        let Some(spec) = spec(ctx, resp.status.as_u16()) else {
            *ctx.response = Response::Pass;
            return Ok(());
        };
        // A recorded answer keeps its usage chunk: the cache's renderer decides for the client.
        let recorded = resp.status.is_success() && matches!(ctx.cache, Plan::On { .. });
        let strip = spec.strips_usage_chunk() && !recorded;
        if strip {
            // The body will be shorter than the provider framed it: let pingora re-frame it.
            resp.remove_header(&http::header::CONTENT_LENGTH);
        }
        let metered = ctx
            .client
            .endpoint
            .map(|e| e.spec())
            .filter(|s| s.unit != Unit::Tokens);
        if let (Some(es), true) = (metered, resp.status.is_success()) {
            // Images, audio seconds, characters: read by the media meter, not a token tally.
            let binary = es.response == crate::endpoints::ResponseKind::Binary;
            ctx.media.meter = Some(Meter::new(es.unit, binary));
            *ctx.response = Response::Proxied(Transform::default());
            return Ok(());
        }
        ctx.media.meter = None;
        *ctx.response = Response::Proxied(Transform::usage_only(&spec, strip));
        Ok(())
    }

    fn on_upstream_body(
        &self,
        _cache: &mut pingora_cache::HttpCache,
        ctx: &mut RequestCtx,
        body: &mut Option<Bytes>,
        end: bool,
    ) {
        if let Some(m) = ctx.media.meter.as_mut() {
            if let Some(b) = body.as_ref() {
                m.feed(b);
            }
            return;
        }
        let mut out = body.take().unwrap_or_default();
        match &mut *ctx.response {
            Response::Proxied(t) => {
                out = t.read_usage(out);
                if end {
                    out = append(out, t.finish_usage());
                }
            }
            Response::Recorded { tally, .. } => {
                out = tally.feed(out);
                if end {
                    out = append(out, tally.finish());
                }
            }
            _ => {}
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

/// The transform's view of the answer in flight (none outside model endpoints).
pub fn spec(ctx: &RequestCtx, status: u16) -> Option<Spec> {
    Some(Spec {
        provider: ctx.upstream_dialect(),
        client: ctx.client.dialect,
        endpoint: ctx.client.endpoint?,
        status,
        stream: ctx.request.stream,
        wants_usage: ctx.client.wants_usage,
        model: ctx
            .walk
            .attempts
            .last()
            .map(|a| a.model.clone())
            .unwrap_or_default(),
        response_id: ctx.conversation.response_id.clone(),
        echo: ctx.conversation.echo.clone(),
    })
}

/// A cache hit: nothing was generated or billed; the saving is what the stored answer cost
/// at the list price of the provider and model that produced it.
fn settle_hit(ctx: &RequestCtx) -> Account {
    let Response::Hit { from, usage, .. } = &*ctx.response else {
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
    match settle_now(ctx) {
        Ok(account) => account,
        Err((estimate, finish_reasons)) => {
            let usage = estimate.await;
            tokens_account(ctx, usage, true, finish_reasons)
        }
    }
}

/// A usage estimate running off the proxy thread.
type Estimate = std::pin::Pin<Box<dyn std::future::Future<Output = Usage> + Send>>;

/// [`settle`] without waiting: the account, or (a stream that ended without usage) the
/// estimate to wait for. Synchronous, so the tally and the meter are not kept in the finish
/// hook's future, which every request makes, while the rare estimate runs.
fn settle_now(ctx: &mut RequestCtx) -> Result<Account, (Estimate, Vec<String>)> {
    if ctx.response.is_hit() {
        return Ok(settle_hit(ctx));
    }
    if let Some(meter) = ctx.media.meter.take() {
        return Ok(settle_media(ctx, meter));
    }
    let Some(tally) = ctx.response.take_tally() else {
        // No provider answered with success: nothing was generated, nothing is billed.
        return Ok(Account {
            cost_usd: Some(Decimal::ZERO),
            ..Account::default()
        });
    };
    // For traces only: a non-streamed body is parsed for them, so not when nobody reads them.
    let finish_reasons = if crate::telemetry::enabled() {
        tally.output().finish_reasons().to_vec()
    } else {
        Vec::new()
    };
    if let Some(usage) = tally.usage() {
        return Ok(tokens_account(ctx, usage, false, finish_reasons));
    }
    let body = ctx.request.body.clone();
    let estimate = Box::pin(async move {
        match tokio::task::spawn_blocking(move || tally.estimate(&body)).await {
            Ok(u) => u,
            Err(e) => {
                log::error!("usage estimate failed: {e}");
                Usage::default()
            }
        }
    });
    Err((estimate, finish_reasons))
}

/// The account of a token-priced answer from the served attempt.
fn tokens_account(
    ctx: &RequestCtx,
    usage: Usage,
    estimated: bool,
    finish_reasons: Vec<String>,
) -> Account {
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
        unit: Some(Unit::Tokens.as_str()),
        quantity: Some(usage.total()),
        finish_reasons,
    }
}

/// A media answer (images, audio seconds, characters): quantities from the meter and the
/// request, priced by `crate::media::meter::cost`.
fn settle_media(ctx: &RequestCtx, mut meter: Meter) -> Account {
    let (Some(a), Some(spec)) = (ctx.walk.served(), ctx.client.endpoint.map(|e| e.spec())) else {
        return Account::default();
    };
    let (measured, cost) = media_cost(ctx, &mut meter);
    Account {
        usage: measured.usage,
        estimated: false,
        cost_unknown: cost.is_none(),
        cost_usd: cost.map(|c| c.total),
        provider: Some(a.provider.clone()),
        model: Some(a.model.clone()),
        saved_usd: None,
        unit: Some(spec.unit.as_str()),
        quantity: measured.quantity,
        finish_reasons: Vec::new(),
    }
}

/// What a media answer used, and its cost at today's price of the provider that served it.
fn media_cost(
    ctx: &RequestCtx,
    meter: &mut Meter,
) -> (crate::media::meter::Measured, Option<crate::pricing::Cost>) {
    let measured = meter.finish(&ctx.media.facts);
    let (Some(a), Some(endpoint)) = (ctx.walk.served(), ctx.client.endpoint) else {
        return (measured, None);
    };
    let p = &ctx.state.upstreams[a.provider_index].cfg;
    let cost = ctx
        .state
        .config
        .pricing
        .lookup(p, &a.model)
        .and_then(|price| {
            crate::media::meter::cost(price, endpoint.spec().unit, &measured, &ctx.media.facts)
        });
    (measured, cost)
}

/// The `x-switchyard-cost-usd` value for a non-streamed answer, from its body's usage:
/// the exact decimal, `0` when no provider answered with success, `unknown` when the model
/// has no price or the answer carried no usage.
fn cost_header(ctx: &mut RequestCtx) -> String {
    if let Some(mut meter) = ctx.media.meter.take() {
        let (_, cost) = media_cost(ctx, &mut meter);
        ctx.media.meter = Some(meter);
        return cost.map_or("unknown".to_owned(), |c| c.total.normalize().to_string());
    }
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
