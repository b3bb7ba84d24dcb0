//! Layer 8: limits. Before the call, the request reserves its worst case in every scope it
//! belongs to (its gateway key and its feature tag): one request, its estimated prompt tokens
//! plus the most it may generate, and that at the dearest candidate's price (see
//! [`crate::governance::reserve`]). A scope over its rate limit answers 429 with
//! `retry-after`; one over its budget answers 402 `budget_exceeded`.
//!
//! While the answer streams, a stream that runs past the output tokens it reserved is cut: the
//! client gets an error event in its dialect and the provider call is dropped. When the request
//! ends (after accounting has priced it), the reservation settles to the true tokens and cost,
//! every race and hedge leg's included.
//!
//! It sits after routing (the reservation needs the candidates' prices) and after accounting
//! (its finish hook needs the settled cost). With no limit on the key and no `[[features]]`,
//! the request hook is one branch and the other hooks one check.

use super::{Cx, Failure, Finish, Flow, Layer};
use crate::error::{ErrorKind, GatewayError};
use crate::governance::limits::{Ask, ScopeAsk, Settlement, Verdict};
use crate::governance::reserve::{prompt_tokens_async, worst_case};
use crate::governance::rules::to_nanos;
use crate::governance::Reservation;
use crate::proxy::ctx::{Dropped, RequestCtx};
use bytes::Bytes;

#[derive(Default)]
pub struct Limits;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Layer for Limits {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx { gw, ctx, .. } = cx;
        let Some(key) = ctx.client.key.as_ref() else {
            return Ok(Flow::Continue);
        };
        if key.rule.is_none() && gw.config.features.is_empty() {
            return Ok(Flow::Continue);
        }
        let feature = ctx
            .client
            .feature
            .as_deref()
            .and_then(|f| gw.config.feature(f));
        let (Some(endpoint), false) = (ctx.client.endpoint, ctx.plan.candidates.is_empty()) else {
            return Ok(Flow::Continue);
        };
        if key.rule.is_none() && feature.is_none() {
            return Ok(Flow::Continue);
        }
        let now = now_ms();
        let mut scopes = Vec::with_capacity(2);
        if let Some(rule) = &key.rule {
            scopes.push(ScopeAsk::new(
                format!("key:{}", key.name),
                format!("key `{}`", key.name),
                rule,
                now,
            ));
        }
        if let Some(f) = feature {
            scopes.push(ScopeAsk::new(
                format!("feature:{}", f.name),
                format!("feature `{}`", f.name),
                &f.rule,
                now,
            ));
        }
        // Boxed, as the reservation below: only requests under limits get here.
        let prompt = Box::pin(prompt_tokens_async(ctx.request.body.clone())).await;
        let worst = worst_case(
            gw,
            endpoint,
            &ctx.request.body,
            &ctx.plan.candidates,
            prompt,
        );
        let budgeted = scopes.iter().any(|s| s.budget.is_some());
        let cost_nanos = match (&worst.cost, budgeted) {
            (_, false) => 0,
            (Some(c), true) => to_nanos(*c).unwrap_or(i64::MAX),
            (None, true) => {
                return Err(GatewayError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "`{}` has no price, so it cannot be charged to a budget ({})",
                        worst.unpriced.as_deref().unwrap_or("the model"),
                        scopes
                            .iter()
                            .filter(|s| s.budget.is_some())
                            .map(|s| s.label.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .into())
            }
        };
        let ask = Ask {
            now_ms: now,
            tokens: worst.tokens(),
            cost_nanos,
            scopes,
        };
        match Box::pin(gw.governance.limiter.reserve(&ask)).await? {
            Verdict::Granted(ticket) => {
                ctx.governance.reserved_usd = worst.cost;
                ctx.governance.reservation = Some(Reservation {
                    ticket,
                    output_tokens: worst.output_tokens,
                });
                Ok(Flow::Continue)
            }
            Verdict::Denied(d) => Err(d.to_error(&ask).into()),
        }
    }

    fn on_body(&self, ctx: &mut RequestCtx, body: &mut Option<Bytes>, _end: bool) {
        let Some(r) = &ctx.governance.reservation else {
            return;
        };
        if !ctx.request.stream || ctx.governance.cut {
            return;
        }
        let Some(tally) = ctx.response.tally() else {
            return;
        };
        let reported = tally.reported_usage().map_or(0, |u| u.output);
        let running = reported.max(tally.output().pieces() as u64);
        if running <= r.output_tokens {
            return;
        }
        let scopes = r
            .ticket
            .scopes
            .iter()
            .map(|s| s.label.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        ctx.outcome.error = Some(GatewayError::new(
            ErrorKind::BudgetExceeded,
            format!(
                "The answer was cut: it ran past the {} output tokens reserved for it under the \
                 limits of {scopes}. Set max_tokens to what the answer may use.",
                r.output_tokens
            ),
        ));
        // Our own verdict, not the provider's failure: no retry, no mark on its health.
        ctx.walk.dropped = Some(Dropped::Fail);
        ctx.governance.cut = true;
        *body = None;
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, fin: &mut Finish<'_>) {
        let Some(r) = ctx.governance.reservation.take() else {
            return;
        };
        let a = &fin.account;
        let mut cost_nanos = match a.cost_usd {
            Some(c) => to_nanos(c).unwrap_or(i64::MAX),
            // Served but unpriced cannot happen with a budget (refused before the call);
            // keep what was reserved rather than count nothing.
            None if a.provider.is_some() => r.ticket.cost_nanos,
            None => 0,
        };
        // Race losers and abandoned hedges were paid for too: the budget is charged every
        // leg, as the ledger row is. (Every leg is a candidate, priced before the call.)
        let mut tokens = a.usage.total();
        for leg in &ctx.walk.legs {
            tokens = tokens.saturating_add(leg.usage.total());
            let leg_nanos = leg.cost_usd.map_or(0, |c| to_nanos(c).unwrap_or(i64::MAX));
            cost_nanos = cost_nanos.saturating_add(leg_nanos);
        }
        let used = Settlement {
            now_ms: now_ms(),
            tokens,
            cost_nanos,
        };
        // Boxed: only requests under limits get here, and a shared store's settle is large.
        Box::pin(ctx.state.governance.limiter.settle(&r.ticket, &used)).await;
    }
}
