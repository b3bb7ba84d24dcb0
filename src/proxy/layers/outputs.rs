//! Layer 9: what the world sees of a request. The `x-switchyard-*` headers on the way out; when
//! the request is over, one [`Summary`] feeds the metrics, the access log and the ledger row
//! (queued for the ledger's writer thread, never written here).

use super::{Finish, Layer};
use crate::ledger::{LedgerAttempt, LedgerRow, Role};
use crate::proxy::ctx::{RequestCtx, Response};
use crate::proxy::respond::REQUEST_ID_HEADER;
use crate::summary::Summary;
use crate::usage::Usage;
use pingora_http::ResponseHeader;

#[derive(Default)]
pub struct Outputs;

impl Layer for Outputs {
    fn on_response_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        resp.insert_header(REQUEST_ID_HEADER, ctx.id.as_str())?;
        if let (false, Some(a)) = (ctx.response.is_hit(), ctx.walk.attempts.last()) {
            resp.insert_header("x-switchyard-provider", a.provider.as_str())?;
            resp.insert_header("x-switchyard-model", a.model.as_str())?;
        }
        resp.insert_header("x-switchyard-attempts", ctx.attempts_header())?;
        Ok(())
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, fin: &mut Finish<'_>) {
        let client_gone = fin.error.is_some_and(crate::proxy::client_went_away);
        // The summary lives in this block only, not across the await (the future stays small).
        let row = {
            let req = fin.session.req_header();
            let summary = summary(ctx, fin, req.method.as_str(), req.uri.path(), client_gone);
            crate::metrics::record_request(&summary, &ctx.state.config);
            crate::access_log::write(&summary);
            crate::telemetry::record(&summary, ctx.started, req, &ctx.request.body);
            crate::proxy::observe::served(ctx, &fin.account, client_gone);
            fin.shared.ledger.as_ref().and(ledger_row(&summary))
        };
        // Queued for the batching writer thread; waits at most briefly, then spills. The row
        // is handed over before the await, so this future does not hold it.
        let queued = match (fin.shared.ledger.as_ref(), row) {
            (Some(ledger), Some(row)) => Some(ledger.record(row)),
            _ => None,
        };
        if let Some(queued) = queued {
            queued.await;
        }
    }
}

fn summary<'a>(
    ctx: &'a RequestCtx,
    fin: &'a Finish<'_>,
    method: &'a str,
    path: &'a str,
    client_gone: bool,
) -> Summary<'a> {
    let served = match &*ctx.response {
        Response::Hit { from, .. } => from.as_ref().map(|(p, m)| (p.as_str(), m.as_str())),
        _ => ctx
            .walk
            .served()
            .map(|a| (a.provider.as_str(), a.model.as_str())),
    };
    let since = |t: std::time::Instant| t.saturating_duration_since(ctx.started);
    Summary {
        id: &ctx.id,
        method,
        path,
        endpoint: ctx.client.endpoint,
        route: ctx.plan.route.as_deref(),
        route_reason: ctx.plan.reason.as_deref(),
        key_name: ctx.client.key_name.as_deref(),
        feature: ctx.client.feature.as_deref(),
        requested_model: ctx.request.model.as_deref(),
        stream: ctx.request.stream,
        request_bytes: ctx.request.body.len(),
        attempts: &ctx.walk.attempts,
        legs: &ctx.walk.legs,
        served,
        status: ctx.outcome.status,
        cache: ctx.cache_outcome(),
        translated_from: ctx.translating().then(|| ctx.upstream_dialect()),
        account: &fin.account,
        reserved_usd: ctx.governance.reserved_usd,
        error: ctx
            .outcome
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .or_else(|| fin.error.map(|e| e.etype().as_str().to_owned())),
        error_kind: ctx.outcome.error.as_ref().map(|e| e.kind.name()),
        client_gone,
        started_at: ctx.started_at,
        ttfb: ctx.outcome.first_byte.map(since),
        ttft: ctx.outcome.first_token.map(since),
        total: ctx.started.elapsed(),
    }
}

/// The ledger row for a finished request (none for paths that are not model endpoints).
pub fn ledger_row(s: &Summary<'_>) -> Option<LedgerRow> {
    let endpoint = s.endpoint?;
    let ts_ms = s
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let account = s.account;
    let mut row = LedgerRow {
        request_id: s.id.to_owned(),
        ts_ms,
        gateway_key: s.key_name.map(str::to_owned),
        feature: s.feature.map(str::to_owned),
        route: s.route.map(str::to_owned),
        endpoint: endpoint.name().to_owned(),
        requested_model: s.requested_model.map(str::to_owned),
        provider: account.provider.clone(),
        model: account.model.clone(),
        attempts: Vec::new(),
        attempt_count: s.upstream_attempts() as u32,
        status: s.status,
        error_class: s.error_class(),
        cache_hit: s.cache == Some(crate::summary::CacheOutcome::Hit),
        stream: s.stream,
        usage: account.usage,
        cost_usd: account.cost_usd,
        cost_unknown: account.cost_unknown,
        saved_usd: account.saved_usd,
        estimated: account.estimated || s.legs.iter().any(|l| l.estimated),
        ttft_ms: s.ttft.map(|d| d.as_secs_f64() * 1000.0),
        total_ms: s.total.as_secs_f64() * 1000.0,
        unit: account.unit.map(str::to_owned),
        quantity: account.quantity,
        route_reason: s.route_reason.map(str::to_owned),
        reserved_usd: s.reserved_usd,
    };
    let (attempts, carried) = ledger_attempts(s);
    let billed = account.usage != Usage::default()
        || account.cost_usd.is_none_or(|c| !c.is_zero())
        || account.cost_unknown;
    if carried || !billed {
        // The row's tokens and cost are the sum of its attempts'.
        row.set_attempts(attempts);
    } else {
        // No attempt could carry the account (a cache hit): keep the row's own.
        row.attempts = attempts;
    }
    Some(row)
}

/// The request's attempts for the ledger, and whether one of them carries the account: the
/// attempt whose answer the client got is `served` (with the settled tokens and cost), those
/// before it `failed` (billed nothing), candidates passed over `skipped`.
fn ledger_attempts(s: &Summary<'_>) -> (Vec<LedgerAttempt>, bool) {
    let account = s.account;
    // The last attempt that reached a provider served, unless it failed without an answer or
    // the gateway answered its own error in place of the provider's (a rejected key).
    let served = s
        .attempts
        .iter()
        .rposition(|a| !a.is_skipped())
        .filter(|&i| {
            let a = &s.attempts[i];
            account.provider.is_some()
                || a.status()
                    .is_some_and(|c| c < 400 || s.error_kind.is_none())
        });
    let mut attempts: Vec<LedgerAttempt> = s
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let role = match (a.is_skipped(), Some(i) == served) {
                (true, _) => Role::Skipped,
                (false, true) => Role::Served,
                (false, false) => Role::Failed,
            };
            let mut row = LedgerAttempt::unbilled(role, &a.provider, &a.model);
            row.key_index = a.key_index.and_then(|k| u32::try_from(k).ok());
            row.status = a.status();
            row.error_class = a.error_class().map(str::to_owned);
            row.ms = a.elapsed.map(|d| d.as_secs_f64() * 1000.0);
            if role == Role::Served {
                row.usage = account.usage;
                row.cost_usd = account.cost_usd;
                row.cost_unknown = account.cost_unknown || account.cost_usd.is_none();
            }
            row
        })
        .collect();
    for leg in s.legs {
        // A race loser or an abandoned hedge: its own role, tokens and cost.
        if let Some(row) = attempts.get_mut(leg.attempt) {
            row.role = leg.role;
            row.usage = leg.usage;
            row.cost_usd = leg.cost_usd;
            row.cost_unknown = leg.cost_usd.is_none();
        }
    }
    (attempts, served.is_some())
}
