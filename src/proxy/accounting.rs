//! What a request used and cost: usage read from the response (or estimated when the stream
//! ended without it), priced exactly from the price list in force today.

use super::ctx::RequestCtx;
use crate::dialect::{Dialect, Endpoint};
use crate::ledger::{LedgerAttempt, LedgerRow, Role};
use crate::resilience::classify::status_class;
use crate::usage::tally::{StreamTally, Wire};
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

/// A tally for a final 2xx answer: how to read usage out of this endpoint's responses.
pub fn tally_for(ctx: &RequestCtx) -> Option<StreamTally> {
    ctx.endpoint?;
    // Usage is read from the provider's own wire format, before any translation.
    let wire = match ctx.upstream_dialect() {
        Dialect::OpenAi => Wire::OpenAiChat,
        Dialect::Anthropic => Wire::AnthropicMessages,
        Dialect::Gemini => Wire::GeminiGenerate,
    };
    Some(StreamTally::new(wire, ctx.stream, strips_usage_chunk(ctx)))
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
    let mut row = LedgerRow {
        request_id: ctx.id.clone(),
        ts_ms,
        gateway_key: ctx.key_name.clone(),
        feature: ctx.feature.clone(),
        route: ctx.route.clone(),
        endpoint: endpoint.name().to_owned(),
        requested_model: ctx.model.clone(),
        provider: account.provider.clone(),
        model: account.model.clone(),
        attempts: Vec::new(),
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
    };
    let (attempts, carried) = ledger_attempts(ctx, account);
    let billed = account.usage != Usage::default()
        || account.cost_usd.is_none_or(|c| !c.is_zero())
        || account.cost_unknown;
    if carried || !billed {
        // The row's tokens and cost are the sum of its attempts'.
        row.set_attempts(attempts);
    } else {
        // No attempt could carry the account (cannot happen today): keep the row's own.
        row.attempts = attempts;
    }
    Some(row)
}

/// The request's attempts for the ledger, and whether one of them carries the account: the
/// attempt whose answer the client got is `served` (with the settled tokens and cost), those
/// before it `failed` (billed nothing), candidates passed over `skipped`.
fn ledger_attempts(ctx: &RequestCtx, account: &Account) -> (Vec<LedgerAttempt>, bool) {
    // The last attempt that reached a provider served, unless it failed without an answer or
    // the gateway answered its own error in place of the provider's (a rejected key).
    let served = ctx.attempts.iter().rposition(|a| !a.skipped).filter(|&i| {
        let a = &ctx.attempts[i];
        account.provider.is_some() || a.status.is_some_and(|s| s < 400 || ctx.error.is_none())
    });
    let attempts = ctx
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let role = match (a.skipped, Some(i) == served) {
                (true, _) => Role::Skipped,
                (false, true) => Role::Served,
                (false, false) => Role::Failed,
            };
            let mut row = LedgerAttempt::unbilled(role, &a.provider, &a.model);
            row.key_index = a.key_index.and_then(|k| u32::try_from(k).ok());
            row.status = a.status;
            row.error_class = a.error.clone();
            row.ms = a.elapsed.map(|d| d.as_secs_f64() * 1000.0);
            if role == Role::Served {
                row.usage = account.usage;
                row.cost_usd = account.cost_usd;
                row.cost_unknown = account.cost_unknown || account.cost_usd.is_none();
            }
            row
        })
        .collect();
    (attempts, served.is_some())
}
