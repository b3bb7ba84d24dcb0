//! Layer 9: races and hedges (routes with `strategy = "race"` or `"hedge"`). The layer answers
//! the request itself instead of the one-upstream-at-a-time walk: its legs go out through the
//! outbound client ([`crate::outbound`]), the first acceptable answer is written to the client
//! in the client's dialect ([`Transform`]), and the other legs are dropped at once (their
//! connections closed, nothing more read). The policy (how many legs, when a hedge starts, the
//! hedge budget, what counts as a first token) is [`crate::routing::race`].
//!
//! Acceptable: for a stream, the first leg to deliver a content token; otherwise the first
//! complete 2xx. A failed leg does not win; when every running leg has failed, the next
//! candidate starts, within the route's attempt budget. Every leg is an attempt of the request:
//! the winner is `served` (priced by accounting as any answer), losers are `race_loser` or
//! `hedge` with their own tokens and cost ([`LegBill`]), estimated from the prompt when they
//! were cancelled before reporting usage.
//!
//! Every other route costs one string lookup here: nothing else runs.
//! The layer answers from its request hook, so pingora runs no response hook for it: the
//! answer's chunks are shown to the layers that read the client's answer on its way out
//! ([`observe`]: the Responses conversation and kept bodies) as they are written.
//! Not done for a race: the response cache (a request the cache may answer takes the walk),
//! and the limits layer's settlement of the losers' cost (it settles the served answer's).

use super::accounting::COST_HEADER;
use super::bodies::Bodies;
use super::conversation::Conversation;
use super::routing::ROUTE_REASON_HEADER;
use super::{Cx, Failure, Flow, Layer};
use crate::config::Target;
use crate::dialect::probe::rewrite_model;
use crate::dialect::Dialect;
use crate::error::{ErrorKind, GatewayError};
use crate::ledger::Role;
use crate::outbound::{OutboundError, OutboundErrorKind, OutboundRequest, OutboundResponse};
use crate::proxy::ctx::{Attempt, AttemptOutcome, RequestCtx, Response};
use crate::proxy::respond::REQUEST_ID_HEADER;
use crate::proxy::GatewayState;
use crate::routing::race::{has_content, hedge_delay, Mode};
use crate::summary::LegBill;
use crate::transform::{append, Spec, Transform};
use crate::usage::tally::StreamTally;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::sync::Arc;
use std::time::Instant;

/// The largest whole (non-streamed) answer a leg reads.
const MAX_WHOLE_ANSWER: usize = 64 << 20;
/// The largest error answer kept to pass on when every leg fails.
const MAX_ERROR_ANSWER: usize = 1 << 20;

#[derive(Default)]
pub struct Race;

impl Layer for Race {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Some(route) = cx.ctx.plan.route.as_deref() else {
            return Ok(Flow::Continue);
        };
        let Some(mode) = cx.gw.router.race_mode(&cx.gw.config, route) else {
            return Ok(Flow::Continue);
        };
        if cx.ctx.cache.may_serve_stored() || cx.ctx.client.endpoint.is_none() {
            // The cache may answer: the walk (in the plan's order) runs instead.
            return Ok(Flow::Continue);
        }
        // Boxed: a race's future is large (kilobytes), and inline it would make every
        // request's `request_filter` future as large, moved on each call.
        Box::pin(run(cx, mode)).await?;
        Ok(Flow::Answered)
    }
}

/// One leg: a candidate, its body, and how far it got.
struct Leg {
    target: Target,
    dialect: Dialect,
    body: Bytes,
    /// Started as a hedge (not in the first wave).
    hedge: bool,
    /// The leg ran to its end (won or failed); a started leg that did not was cancelled.
    finished: bool,
    attempt: Option<Attempt>,
    answer: Option<Answer>,
    /// A client error the provider answered (status, body in the client's dialect): passed
    /// on if no leg wins.
    refused: Option<(u16, Bytes)>,
}

/// A winning leg's answer: what was read so far (already in the client's dialect) and the
/// rest to stream.
struct Answer {
    resp: OutboundResponse,
    transform: Transform,
    held: Vec<Bytes>,
    first_token: Instant,
    done: bool,
}

/// What every leg shares.
struct Shared<'a> {
    gw: &'a Arc<GatewayState>,
    client: &'a crate::outbound::OutboundClient,
    spec: Spec,
    deadline: tokio::time::Instant,
}

async fn run(cx: &mut Cx<'_>, mode: Mode) -> Result<(), Failure> {
    let Cx {
        shared,
        session,
        ctx,
        ..
    } = cx;
    let gw = ctx.state.clone();
    let Some(endpoint) = ctx.client.endpoint else {
        return Ok(());
    };
    let route = ctx.plan.route.clone().unwrap_or_default();
    let budget = gw.router.hedge_budget(&route);
    if let (Mode::Hedge(_), Some(b)) = (mode, budget) {
        b.request();
    }
    let mut legs = legs(&gw, ctx);
    let limit = (ctx.plan.max_attempts.max(1) as usize).min(legs.len());
    let share = Shared {
        gw: &gw,
        client: &shared.outbound,
        spec: Spec {
            provider: ctx.client.dialect,
            client: ctx.client.dialect,
            endpoint,
            status: 200,
            stream: ctx.request.stream,
            wants_usage: ctx.client.wants_usage,
            model: String::new(),
            response_id: ctx.conversation.response_id.clone(),
            echo: ctx.conversation.echo.clone(),
        },
        deadline: ctx.plan.deadline,
    };
    let hedge_at = match mode {
        Mode::Hedge(h) => legs.first().and_then(|l| {
            let up = &gw.upstreams[l.target.provider];
            let snap = gw.stats.snapshot(up.name(), &l.target.model);
            hedge_delay(h.after, snap.as_ref()).map(|d| (tokio::time::Instant::now() + d, h))
        }),
        Mode::Race { .. } => None,
    };
    let mut winner = None;
    let mut started = Vec::new();
    {
        let mut queue = legs.iter_mut().enumerate().take(limit);
        let mut running = FuturesUnordered::new();
        for _ in 0..mode.initial() {
            if let Some((i, leg)) = queue.next() {
                started.push(i);
                running.push(drive(i, leg, &share));
            }
        }
        let mut hedge_armed = hedge_at.is_some();
        loop {
            if running.is_empty() {
                // Every running leg failed: the next candidate (fallback).
                match queue.next() {
                    Some((i, leg)) => {
                        started.push(i);
                        running.push(drive(i, leg, &share));
                    }
                    None => break,
                }
            }
            let at = hedge_at.map_or_else(tokio::time::Instant::now, |(t, _)| t);
            tokio::select! {
                Some((i, won)) = running.next() => {
                    if won {
                        winner = Some(i);
                        break;
                    }
                }
                _ = tokio::time::sleep_until(at), if hedge_armed => {
                    hedge_armed = false;
                    let pct = hedge_at.map_or(0, |(_, h)| h.max_extra_percent);
                    if budget.is_some_and(|b| b.try_hedge(pct)) {
                        if let Some((i, leg)) = queue.next() {
                            leg.hedge = true;
                            started.push(i);
                            running.push(drive(i, leg, &share));
                        }
                    }
                }
            }
        }
        // Dropping the other legs' futures closes their connections: nothing more is read.
    }
    let now = Instant::now();
    // The attempts, in start order, the winner last (the walk's "served" is the last).
    let mut order: Vec<usize> = started
        .iter()
        .copied()
        .filter(|&i| Some(i) != winner)
        .collect();
    order.extend(winner);
    let mut cancelled = Vec::new();
    let mut bills = Vec::new();
    ctx.walk.attempts.clear();
    for &i in &order {
        let leg = &mut legs[i];
        let Some(mut a) = leg.attempt.take() else {
            continue;
        };
        if !leg.finished && Some(i) != winner {
            if a.outcome == AttemptOutcome::Pending {
                a.outcome = AttemptOutcome::Transport("cancelled");
                a.elapsed = Some(now.saturating_duration_since(a.started));
            }
            cancelled.push(format!("{}/{}", a.provider, a.model));
            let role = if leg.hedge {
                Role::Hedge
            } else {
                Role::RaceLoser
            };
            bills.push(Unbilled {
                attempt: ctx.walk.attempts.len(),
                role,
                target: leg.target.clone(),
                dialect: leg.dialect,
                body: leg.body.clone(),
            });
        }
        ctx.walk.attempts.push(a);
    }
    let mut reason = ctx.plan.reason.take().unwrap_or_default();
    let first_token = winner.and_then(|w| legs[w].answer.as_ref().map(|a| a.first_token));
    match (first_token, ctx.walk.attempts.last()) {
        (Some(t), Some(a)) => reason.push_str(&format!(
            "; {}: {}/{} won in {}ms",
            mode.name(),
            a.provider,
            a.model,
            t.saturating_duration_since(a.started).as_millis()
        )),
        _ => reason.push_str(&format!("; {}: no leg won", mode.name())),
    }
    if !cancelled.is_empty() {
        reason.push_str(&format!(", cancelled {}", cancelled.join(", ")));
    }
    ctx.plan.reason = Some(reason);
    let written = match winner {
        Some(w) => match legs[w].answer.take() {
            Some(answer) => write_winner(session, ctx, answer).await,
            None => Ok(()),
        },
        None => write_failure(session, ctx, &legs).await,
    };
    ctx.walk.legs = bill(&gw, ctx.request.stream, bills).await;
    if let Err(e) = &written {
        log::warn!(
            "request {}: writing the {} answer failed: {e}",
            ctx.id,
            mode.name()
        );
    }
    written.map_err(Failure::Io)
}

/// A leg per candidate, each with its body (the model renamed, or translated).
fn legs(gw: &GatewayState, ctx: &RequestCtx) -> Vec<Leg> {
    let mut out = Vec::with_capacity(ctx.plan.candidates.len());
    for t in &ctx.plan.candidates {
        // The dialect the target is spoken to in (OpenAI-kind targets take Responses natively).
        let dialect = ctx
            .client
            .endpoint
            .map_or(gw.upstreams[t.provider].cfg.dialect, |e| {
                gw.upstreams[t.provider].wire_dialect(e)
            });
        let body = match &ctx.request.translator {
            Some(tr) if dialect != ctx.client.dialect => {
                match tr.body_for(dialect, &t.model, &gw.config.translation) {
                    Ok(b) => b,
                    Err(e) => {
                        log::error!("race leg translation for {}: {e}", t.model);
                        continue;
                    }
                }
            }
            // A model named in the path (Gemini) is in the upstream path, not the body.
            _ if ctx.request.model_span.is_empty() => ctx.request.body.clone(),
            _ => rewrite_model(&ctx.request.body, &ctx.request.model_span, &t.model),
        };
        out.push(Leg {
            target: t.clone(),
            dialect,
            body,
            hedge: false,
            finished: false,
            attempt: None,
            answer: None,
            refused: None,
        });
    }
    out
}

/// Runs one leg until it has an acceptable answer (`true`) or has failed (`false`). Its
/// progress is kept in `leg`, so a leg dropped half way still says how far it got.
async fn drive(i: usize, leg: &mut Leg, x: &Shared<'_>) -> (usize, bool) {
    let out = run_leg(i, leg, x).await;
    leg.finished = true;
    out
}

async fn run_leg(i: usize, leg: &mut Leg, x: &Shared<'_>) -> (usize, bool) {
    let up = &x.gw.upstreams[leg.target.provider];
    let started = Instant::now();
    leg.attempt = Some(Attempt {
        provider_index: leg.target.provider,
        provider: up.name().to_owned(),
        model: leg.target.model.clone(),
        key_index: None,
        started,
        elapsed: None,
        outcome: AttemptOutcome::Pending,
    });
    let req = OutboundRequest {
        target: leg.target.clone(),
        endpoint: x.spec.endpoint,
        body: leg.body.clone(),
        stream: x.spec.stream,
        deadline: x.deadline,
        headers: Vec::new(),
    };
    let result = x.client.send(x.gw, req).await;
    let Some(a) = leg.attempt.as_mut() else {
        return (i, false);
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            a.key_index = e.attempt.key_index;
            a.elapsed = Some(e.attempt.elapsed);
            a.outcome = outcome_of(&e);
            if !matches!(e.kind, OutboundErrorKind::Unavailable(_)) {
                let status = a.status();
                crate::proxy::observe::failed(x.gw, a, status, tokio::time::Instant::now());
            }
            return (i, false);
        }
    };
    a.key_index = resp.attempt.key_index;
    a.elapsed = Some(resp.attempt.elapsed);
    a.outcome = AttemptOutcome::Answered(resp.status);
    let spec = Spec {
        provider: leg.dialect,
        status: resp.status,
        model: leg.target.model.clone(),
        ..x.spec.clone()
    };
    let mut t = Transform::new(&spec, spec.strips_usage_chunk());
    if !(200..300).contains(&resp.status) {
        // A client error the provider was right about: not a winner, but the answer to pass
        // on if no leg wins.
        let body = resp.read_to_end(MAX_ERROR_ANSWER).await.unwrap_or_default();
        let out = append(t.feed(body), t.finish());
        leg.refused = Some((t.failed_status().unwrap_or(resp.status), out));
        return (i, false);
    }
    let mut held = Vec::new();
    if !x.spec.stream {
        return match resp.read_to_end(MAX_WHOLE_ANSWER).await {
            Ok(body) => {
                held.push(append(t.feed(body), t.finish()));
                leg.answer = Some(Answer {
                    resp,
                    transform: t,
                    held,
                    first_token: Instant::now(),
                    done: true,
                });
                (i, true)
            }
            Err(e) => {
                a.outcome = outcome_of(&e);
                (i, false)
            }
        };
    }
    loop {
        match resp.next_chunk().await {
            Ok(Some(chunk)) => {
                let content = has_content(leg.dialect, &chunk);
                let out = t.feed(chunk);
                if !out.is_empty() {
                    held.push(out);
                }
                if content {
                    leg.answer = Some(Answer {
                        resp,
                        transform: t,
                        held,
                        first_token: Instant::now(),
                        done: false,
                    });
                    return (i, true);
                }
            }
            Ok(None) => {
                // A stream that ended without content is still a complete answer.
                held.push(t.finish());
                leg.answer = Some(Answer {
                    resp,
                    transform: t,
                    held,
                    first_token: Instant::now(),
                    done: true,
                });
                return (i, true);
            }
            Err(e) => {
                a.outcome = outcome_of(&e);
                crate::proxy::observe::failed(x.gw, a, None, tokio::time::Instant::now());
                return (i, false);
            }
        }
    }
}

fn outcome_of(e: &OutboundError) -> AttemptOutcome {
    match e.kind {
        OutboundErrorKind::Status(s) => AttemptOutcome::Answered(s),
        OutboundErrorKind::Unavailable(skip) => AttemptOutcome::Skipped(skip),
        OutboundErrorKind::Connect => AttemptOutcome::Transport("ConnectRefused"),
        OutboundErrorKind::Timeout => AttemptOutcome::Transport("ReadTimedout"),
        OutboundErrorKind::Tls => AttemptOutcome::Transport("TLSHandshakeFailure"),
        OutboundErrorKind::Protocol => AttemptOutcome::Transport("ConnectionClosed"),
        OutboundErrorKind::Invalid => AttemptOutcome::Transport("InternalError"),
    }
}

/// The response header for the client: the provider's status and content type (the client
/// dialect's when translated), the gateway's own headers.
fn header(
    ctx: &RequestCtx,
    status: u16,
    content_type: Option<&str>,
    len: Option<usize>,
) -> pingora_error::Result<ResponseHeader> {
    let mut h = ResponseHeader::build(status, Some(10))?;
    let stream = ctx.request.stream && (200..300).contains(&status);
    let ct = match content_type {
        Some(ct) if !ctx.translating() => ct,
        _ if stream => "text/event-stream",
        _ => "application/json",
    };
    h.insert_header(http::header::CONTENT_TYPE, ct)?;
    if stream {
        h.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    }
    match len {
        Some(n) => h.insert_header(http::header::CONTENT_LENGTH, n.to_string())?,
        // Without a length pingora would end the body by closing the connection.
        None => h.insert_header(http::header::TRANSFER_ENCODING, "chunked")?,
    }
    h.insert_header(REQUEST_ID_HEADER, ctx.id.as_str())?;
    if let Some(a) = ctx.walk.attempts.last() {
        h.insert_header("x-switchyard-provider", a.provider.as_str())?;
        h.insert_header("x-switchyard-model", a.model.as_str())?;
    }
    h.insert_header("x-switchyard-attempts", ctx.attempts_header())?;
    if let Some(reason) = &ctx.plan.reason {
        h.insert_header(ROUTE_REASON_HEADER, reason.as_str())?;
    }
    Ok(h)
}

fn close_if_needed(session: &mut Session, ctx: &RequestCtx, h: &mut ResponseHeader) {
    if ctx.downstream.close || !ctx.downstream.body_read {
        let _ = h.insert_header("connection", "close");
        session.set_keepalive(None);
    }
}

/// Writes the winner's answer: what it held, then (for a stream) the rest as it arrives.
async fn write_winner(
    session: &mut Session,
    ctx: &mut RequestCtx,
    answer: Answer,
) -> pingora_error::Result<()> {
    let Answer {
        mut resp,
        mut transform,
        held,
        first_token,
        done,
    } = answer;
    let status = transform.failed_status().unwrap_or(resp.status);
    let ct = resp
        .header
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ctx.outcome.status = status;
    ctx.outcome.first_byte = Some(first_token);
    ctx.outcome.first_token = Some(first_token);
    if !ctx.request.stream {
        let body = held.into_iter().fold(Bytes::new(), append);
        let mut h = header(ctx, status, ct.as_deref(), Some(body.len()))?;
        let cost = transform
            .usage()
            .and_then(|u| {
                let a = ctx.walk.attempts.last()?;
                let p = &ctx.state.upstreams[a.provider_index].cfg;
                ctx.state.config.pricing.cost(p, &a.model, &u)
            })
            .map_or("unknown".to_owned(), |c| c.total.normalize().to_string());
        h.insert_header(COST_HEADER, cost)?;
        close_if_needed(session, ctx, &mut h);
        *ctx.response = Response::Proxied(transform);
        session.write_response_header(Box::new(h), false).await?;
        return write(session, ctx, body, true).await;
    }
    let mut h = header(ctx, status, ct.as_deref(), None)?;
    close_if_needed(session, ctx, &mut h);
    session.write_response_header(Box::new(h), false).await?;
    for chunk in held {
        if !chunk.is_empty() {
            write(session, ctx, chunk, false).await?;
        }
    }
    let result = if done {
        Ok(())
    } else {
        loop {
            match resp.next_chunk().await {
                Ok(Some(chunk)) => {
                    let out = transform.feed(chunk);
                    if !out.is_empty() {
                        if let Err(e) = write(session, ctx, out, false).await {
                            *ctx.response = Response::Proxied(transform);
                            return Err(e);
                        }
                    }
                }
                Ok(None) => {
                    let rest = transform.finish();
                    if !rest.is_empty() {
                        write(session, ctx, rest, false).await?;
                    }
                    break Ok(());
                }
                Err(e) => break Err(e),
            }
        }
    };
    *ctx.response = Response::Proxied(transform);
    match result {
        Ok(()) => write(session, ctx, Bytes::new(), true).await,
        Err(e) => {
            let err = GatewayError::new(
                ErrorKind::UpstreamUnavailable,
                format!("the stream broke off: {}", e.context),
            );
            crate::proxy::stream_error::finish_with_error(session, ctx, &err).await;
            ctx.outcome.error = Some(err);
            Ok(())
        }
    }
}

/// Writes a chunk of the answer to the client, once [`observe`] has seen it.
async fn write(
    session: &mut Session,
    ctx: &mut RequestCtx,
    chunk: Bytes,
    end: bool,
) -> pingora_error::Result<()> {
    observe(ctx, &chunk, end);
    let body = (!chunk.is_empty()).then_some(chunk);
    session.write_response_body(body, end).await
}

/// The response hooks that read the answer as the client gets it (above translation), run
/// on a race's answer: the conversation keeps a Responses turn, bodies keeps what the
/// logging rules ask for. Neither changes the bytes.
fn observe(ctx: &mut RequestCtx, chunk: &Bytes, end: bool) {
    let mut body = Some(chunk.clone());
    Bodies.on_body(ctx, &mut body, end);
    Conversation.on_body(ctx, &mut body, end);
}

/// No leg won: a provider's own client error if one answered, else the gateway's error.
async fn write_failure(
    session: &mut Session,
    ctx: &mut RequestCtx,
    legs: &[Leg],
) -> pingora_error::Result<()> {
    if let Some((status, body)) = legs.iter().rev().find_map(|l| l.refused.clone()) {
        let mut h = header(ctx, status, None, Some(body.len()))?;
        close_if_needed(session, ctx, &mut h);
        ctx.outcome.status = status;
        session.write_response_header(Box::new(h), false).await?;
        return write(session, ctx, body, true).await;
    }
    let tried: Vec<String> = ctx
        .walk
        .attempts
        .iter()
        .map(|a| format!("{}/{} ({})", a.provider, a.model, a.outcome_label()))
        .collect();
    let kind = if ctx.walk.attempts.iter().all(|a| a.rate_limited()) && !tried.is_empty() {
        ErrorKind::RateLimited
    } else {
        ErrorKind::UpstreamUnavailable
    };
    let err = GatewayError::new(kind, format!("no target answered: {}", tried.join(", ")));
    crate::proxy::respond::error(session, ctx, err).await
}

/// A cancelled leg, before its tokens are estimated.
struct Unbilled {
    attempt: usize,
    role: Role,
    target: Target,
    dialect: Dialect,
    body: Bytes,
}

/// The losers' tokens and cost: the prompt each was sent (estimated: they were cancelled before
/// reporting usage). The tokenizer runs on the blocking pool.
async fn bill(gw: &Arc<GatewayState>, stream: bool, bills: Vec<Unbilled>) -> Vec<LegBill> {
    if bills.is_empty() {
        return Vec::new();
    }
    let bodies: Vec<(Dialect, Bytes)> = bills.iter().map(|b| (b.dialect, b.body.clone())).collect();
    let usages = tokio::task::spawn_blocking(move || {
        bodies
            .iter()
            .map(|(d, body)| StreamTally::new(*d, stream, false).estimate(body))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    bills
        .into_iter()
        .zip(usages)
        .map(|(b, usage)| {
            let p = &gw.upstreams[b.target.provider].cfg;
            LegBill {
                attempt: b.attempt,
                role: b.role,
                cost_usd: gw
                    .config
                    .pricing
                    .cost(p, &b.target.model, &usage)
                    .map(|c| c.total),
                usage,
                estimated: true,
            }
        })
        .collect()
}
