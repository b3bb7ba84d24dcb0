//! Layer 3b: experiments ([`crate::experiments`]). For a request whose route has an
//! experiment: picks the variant (the promoted one, or by the sticky hash), applies its prompt
//! and params to the client's body, puts its target first among the candidates (the plan's
//! other targets stay as fallbacks after it), and decides whether the request will be judged.
//! The answer carries `x-switchyard-variant`. When the request is over, its variant is
//! recorded and a sampled answer is queued for the judge (never delaying the client: the
//! answer has been delivered, and a full queue skips the sample).
//!
//! It sits after routing (it needs the route and rewrites the plan) and before the cache and
//! accounting (the cache keys on the rewritten request; accounting's finish hook consumes the
//! usage tally the judged answer's text is read from). It also answers `POST /v1/feedback`
//! for the auth layer.

use super::{Cx, Failure, Finish, Flow, Layer};
use crate::dialect::{probe_request, Endpoint};
use crate::error::{ErrorKind, GatewayError};
use crate::experiments::{apply, assign, judge::JudgeJob, store, Assignment, VARIANT_HEADER};
use crate::proxy::ctx::RequestCtx;
use crate::proxy::respond;
use crate::routing::filter;
use bytes::{Bytes, BytesMut};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::sync::Arc;

/// The largest feedback body read.
const MAX_FEEDBACK_BODY: usize = 64 << 10;

#[derive(Default)]
pub struct Experiments;

impl Layer for Experiments {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx {
            gw, session, ctx, ..
        } = cx;
        if gw.config.experiments.is_empty() {
            return Ok(Flow::Continue);
        }
        let (Some(endpoint), Some(route), Some(model)) = (
            ctx.client.endpoint,
            ctx.plan.route.as_deref(),
            ctx.request.model.clone(),
        ) else {
            return Ok(Flow::Continue);
        };
        let Some(exp) = gw.config.experiment_for_route(route) else {
            return Ok(Flow::Continue);
        };
        if !matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Messages) {
            return Ok(Flow::Continue);
        }
        let index = match gw.experiments.promoted(exp) {
            Some(i) => Some(i),
            None => {
                let key = assign::sticky_key(
                    &exp.sticky,
                    &session.req_header().headers,
                    ctx.client.key_name.as_deref(),
                    &ctx.request.body,
                );
                assign::assign(&exp.name, &exp.variants, key.as_deref())
            }
        };
        let Some(index) = index else {
            return Ok(Flow::Continue);
        };
        let v = &exp.variants[index];
        let original = ctx.request.body.clone();
        if let Some(body) = apply::apply(ctx.client.dialect, &original, v)? {
            let probe = probe_request(&body)?;
            ctx.request.model_span = probe.model_span;
            ctx.request.fields = probe.fields;
            ctx.request.body = body;
        }
        let mut candidates = vec![v.target.clone()];
        candidates.extend(
            ctx.plan
                .candidates
                .iter()
                .filter(|t| **t != v.target)
                .cloned(),
        );
        let features = crate::routing::Features::new(
            endpoint,
            ctx.client.key_name.as_deref(),
            ctx.request.stream,
            &session.req_header().headers,
            &ctx.request.body,
            &ctx.request.fields,
        );
        let usable = filter::usable(
            &gw.config,
            ctx.client.dialect,
            &model,
            &features,
            candidates,
        )?;
        let target = gw
            .config
            .providers
            .get(v.target.provider)
            .map_or(String::new(), |p| format!("{}/{}", p.name, v.target.model));
        let mut reason = format!(
            "experiment `{}`: variant `{}` -> {target}",
            exp.name, v.name
        );
        if !usable.removed.is_empty() {
            reason.push_str("; removed ");
            reason.push_str(&usable.removed.join(", "));
        }
        if let Some(before) = &ctx.plan.reason {
            reason.push_str("; fallbacks: ");
            reason.push_str(before);
        }
        ctx.plan.reason = Some(reason);
        ctx.plan.candidates = usable.candidates;
        ctx.request.translator = usable.translator.map(Arc::new);
        let sampled = exp
            .judge
            .as_ref()
            .is_some_and(|j| j.sample > 0.0 && rand::random::<f64>() < j.sample);
        ctx.experiment = Some(Assignment {
            experiment: exp.name.clone(),
            variant: index,
            variant_name: v.name.clone(),
            sampled,
            original_body: if sampled { original } else { Bytes::new() },
        });
        Ok(Flow::Continue)
    }

    fn on_response_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        if let Some(a) = &ctx.experiment {
            resp.insert_header(VARIANT_HEADER, a.header())?;
        }
        Ok(())
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, fin: &mut Finish<'_>) {
        let Some(a) = ctx.experiment.take() else {
            return;
        };
        let rt = ctx.state.experiments.clone();
        let ok = (200..300).contains(&ctx.outcome.status)
            && ctx.outcome.error.is_none()
            && fin.error.is_none()
            && !ctx.governance.cut;
        // Read before accounting's finish hook consumes the tally.
        let answer = (a.sampled && ok)
            .then(|| ctx.response.tally().map(|t| t.output().text().to_owned()))
            .flatten()
            .filter(|t| !t.is_empty());
        if let Some(ledger) = rt.ledger() {
            let ts_ms = ctx
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            // Boxed: only experimented requests get here.
            Box::pin(ledger.execute(store::record_assignment(store::Assigned {
                request_id: ctx.id.clone(),
                experiment: a.experiment.clone(),
                variant: a.variant_name.clone(),
                gateway_key: ctx.client.key_name.clone(),
                ts_ms,
                sampled: answer.is_some(),
            })))
            .await;
        }
        let Some(answer) = answer else {
            return;
        };
        let Some(judge) = ctx
            .state
            .config
            .experiment(&a.experiment)
            .and_then(|e| e.judge.clone())
        else {
            return;
        };
        rt.enqueue(
            &judge,
            JudgeJob {
                state: ctx.state.clone(),
                experiment: a.experiment,
                variant: a.variant,
                request_id: ctx.id.clone(),
                dialect: ctx.client.dialect,
                body: a.original_body,
                answer,
                trace: crate::telemetry::calls::parent_of(&ctx.id, fin.session.req_header()),
            },
        );
    }
}

/// `POST /v1/feedback` (the auth layer routes it here once the key is known).
pub async fn feedback(cx: &mut Cx<'_>, key_name: &str) -> Result<Flow, Failure> {
    let Cx {
        gw, session, ctx, ..
    } = cx;
    let body = read_small_body(session).await?;
    ctx.downstream.body_read = true;
    let answer = crate::experiments::feedback::submit(&gw.experiments, key_name, &body).await?;
    respond::json(session, ctx, 200, answer.to_string().into_bytes(), &[])
        .await
        .map_err(Failure::Io)?;
    Ok(Flow::Answered)
}

async fn read_small_body(session: &mut Session) -> Result<Bytes, Failure> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await.map_err(Failure::Io)? {
        if buf.len() + chunk.len() > MAX_FEEDBACK_BODY {
            return Err(GatewayError::new(
                ErrorKind::PayloadTooLarge,
                format!("a feedback body is at most {MAX_FEEDBACK_BODY} bytes"),
            )
            .into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
