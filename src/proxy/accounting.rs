//! What a request used and cost: usage read from the response (or estimated when the stream
//! ended without it), priced exactly from the price list in force today.

use super::ctx::RequestCtx;
use crate::dialect::Endpoint;
use crate::ledger::LedgerRow;
use crate::resilience::classify::status_class;
use crate::usage::tally::StreamTally;
use crate::usage::Usage;
use rust_decimal::Decimal;

/// The settled account of one request.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub usage: Usage,
    /// Tokens were estimated (the provider's answer ended without usage).
    pub estimated: bool,
    /// Exact cost in USD; `None` with `cost_unknown` when the model has no price.
    pub cost_usd: Option<Decimal>,
    pub cost_unknown: bool,
    /// The provider/model that served (and was priced).
    pub provider: Option<String>,
    pub model: Option<String>,
    /// For a cache hit: what the stored answer would have cost (`None` if unpriced).
    pub saved_usd: Option<Decimal>,
}

/// A cache hit: nothing was generated or billed; the saving is what the stored answer cost
/// at the list price of the provider and model that produced it.
fn settle_hit(ctx: &RequestCtx) -> Account {
    let (provider, model) = ctx.cached_from.clone().unzip();
    let saved = match (&provider, &model, ctx.cached_usage) {
        (Some(p), Some(m), Some(usage)) => ctx
            .state
            .upstreams
            .iter()
            .find(|u| u.name() == p)
            .and_then(|u| ctx.state.config.pricing.cost(&u.cfg, m, &usage))
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

/// How long an attempt took (to its response header, or to its failure), in milliseconds:
/// the figure the ledger row and the access log both carry. `None` while it is in flight.
pub fn attempt_ms(a: &super::ctx::Attempt) -> Option<f64> {
    a.elapsed.map(|d| d.as_secs_f64() * 1000.0)
}

/// A tally for a final 2xx answer: how to read usage out of this endpoint's responses.
pub fn tally_for(ctx: &RequestCtx) -> Option<StreamTally> {
    ctx.endpoint?;
    // Usage is read from the provider's own wire format, before any translation.
    Some(StreamTally::new(
        ctx.upstream_dialect(),
        ctx.stream,
        strips_usage_chunk(ctx),
    ))
}

/// Whether the usage-only chunk is removed from this stream (the gateway asked for it, the
/// client did not). A translated stream gets its usage chunk from the translator instead.
pub fn strips_usage_chunk(ctx: &RequestCtx) -> bool {
    ctx.stream
        && ctx.endpoint == Some(Endpoint::ChatCompletions)
        && !ctx.client_wants_usage
        && !ctx.translating()
}

/// Settles usage and cost. A stream that ended without a usage report is estimated with a
/// tokenizer, which can take real CPU on long texts: that runs on the blocking pool, never on
/// the proxy's worker threads.
pub async fn settle(ctx: &mut RequestCtx) -> Account {
    if ctx.cache_hit {
        return settle_hit(ctx);
    }
    let Some(tally) = ctx.tally.take() else {
        // No provider answered with success: nothing was generated, nothing is billed.
        return Account {
            cost_usd: Some(Decimal::ZERO),
            ..Account::default()
        };
    };
    let (usage, estimated) = match tally.usage() {
        Some(u) => (u, false),
        None => {
            let body = ctx.body.clone();
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
    let served = ctx.served_attempt();
    let Some(a) = served else {
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
pub fn cost_header(ctx: &RequestCtx) -> String {
    if ctx.cache_hit {
        return "0".to_owned();
    }
    let Some(tally) = ctx.tally.as_ref() else {
        return "0".to_owned();
    };
    let (Some(usage), Some(a)) = (tally.usage(), ctx.served_attempt()) else {
        return "unknown".to_owned();
    };
    let p = &ctx.state.upstreams[a.provider_index].cfg;
    ctx.state
        .config
        .pricing
        .cost(p, &a.model, &usage)
        .map_or("unknown".to_owned(), |c| c.total.normalize().to_string())
}

/// The ledger row for a finished request. `client_gone`: the client went away mid-request.
pub fn ledger_row(ctx: &RequestCtx, account: &Account, client_gone: bool) -> Option<LedgerRow> {
    let endpoint = ctx.endpoint?;
    #[derive(serde::Serialize)]
    struct AttemptRow<'a> {
        provider: &'a str,
        model: &'a str,
        key: Option<usize>,
        outcome: String,
        ms: Option<f64>,
    }
    let attempts: Vec<AttemptRow<'_>> = ctx
        .attempts
        .iter()
        .map(|a| AttemptRow {
            provider: &a.provider,
            model: &a.model,
            key: a.key_index,
            outcome: a.outcome(),
            ms: attempt_ms(a),
        })
        .collect();
    let error_class = if client_gone {
        Some("client_disconnected".to_owned())
    } else if let Some(e) = &ctx.error {
        Some(e.kind.name().to_owned())
    } else if ctx.status >= 400 {
        Some(status_class(ctx.status).to_owned())
    } else {
        None
    };
    let ts_ms = ctx
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Some(LedgerRow {
        request_id: ctx.id.clone(),
        ts_ms,
        gateway_key: ctx.key_name.clone(),
        feature: ctx.feature.clone(),
        route: ctx.route.clone(),
        endpoint: endpoint.name().to_owned(),
        requested_model: ctx.model.clone(),
        provider: account.provider.clone(),
        model: account.model.clone(),
        attempts_json: serde_json::to_string(&attempts).unwrap_or_else(|_| "[]".to_owned()),
        attempt_count: ctx.upstream_attempts() as u32,
        status: ctx.status,
        error_class,
        cache_hit: ctx.cache_hit,
        stream: ctx.stream,
        usage: account.usage,
        cost_usd: account.cost_usd,
        cost_unknown: account.cost_unknown,
        saved_usd: account.saved_usd,
        estimated: account.estimated,
        ttft_ms: ctx
            .first_token
            .map(|t| (t - ctx.started).as_secs_f64() * 1000.0),
        total_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
    })
}
