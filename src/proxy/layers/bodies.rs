//! Layer 4: kept bodies. A request whose key or route asks for it (`log_bodies = "full"` or
//! `"redacted"`, the most protective explicit choice wins) has its bodies captured and queued
//! for the body log (see [`crate::governance::bodies`]): the request as the client sent it,
//! and the answer as the client got it, or, for a stream, the answer it assembled to (the
//! generated text the usage tally read). Redaction happens on the log's own thread.
//!
//! It sits above translation, so the bytes it sees on the way out are the client's dialect,
//! and before accounting, whose finish hook consumes the tally this one reads.

use super::{Cx, Failure, Finish, Flow, Layer};
use crate::governance::bodies::{BodyRecord, ResponseForm};
use crate::governance::rules::LogBodies;
use crate::governance::Capture;
use crate::proxy::ctx::RequestCtx;
use bytes::Bytes;

#[derive(Default)]
pub struct Bodies;

impl Layer for Bodies {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx { gw, ctx, .. } = cx;
        let Some(key) = ctx.client.key.as_ref() else {
            return Ok(Flow::Continue);
        };
        if key.log_bodies.is_none() && !gw.config.routes_log_bodies {
            return Ok(Flow::Continue);
        }
        let route = ctx
            .plan
            .route
            .as_deref()
            .and_then(|r| gw.config.route(r))
            .and_then(|r| r.log_bodies);
        let mode = LogBodies::effective(key.log_bodies, route);
        if mode != LogBodies::None && gw.governance.bodies.is_some() {
            ctx.governance.capture = Some(Capture {
                mode,
                response: Vec::new(),
                truncated: false,
            });
        }
        Ok(Flow::Continue)
    }

    fn on_body(&self, ctx: &mut RequestCtx, body: &mut Option<Bytes>, _end: bool) {
        let Some(c) = &mut ctx.governance.capture else {
            return;
        };
        if ctx.request.stream && ctx.response.tally().is_some() {
            // Kept as the assembled answer at the end.
            return;
        }
        let Some(b) = body.as_ref() else { return };
        let max = ctx
            .state
            .governance
            .bodies
            .as_ref()
            .map_or(0, |l| l.max_body_size());
        let room = max.saturating_sub(c.response.len());
        if b.len() > room {
            c.truncated = true;
        }
        c.response.extend_from_slice(&b[..b.len().min(room)]);
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, _fin: &mut Finish<'_>) {
        let Some(c) = ctx.governance.capture.take() else {
            return;
        };
        let Some(log) = ctx.state.governance.bodies.as_ref() else {
            return;
        };
        let (response, form) = match ctx.response.tally() {
            Some(t) if ctx.request.stream => (
                t.output().text().as_bytes().to_vec(),
                ResponseForm::Assembled,
            ),
            _ => (c.response, ResponseForm::Body),
        };
        let ts_ms = ctx
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        log.keep(BodyRecord {
            request_id: ctx.id.clone(),
            ts_ms,
            mode: c.mode,
            request: ctx.request.body.clone(),
            response,
            form,
            truncated: c.truncated,
        });
    }
}
