//! Layer 3: routing. Asks the router ([`crate::routing::Router::plan`]) for the ordered
//! candidates and the reason for their order, and sets the request's attempt budget and
//! deadline from its route. The reason goes out as `x-switchyard-route-reason`.

use super::request::body_timeout;
use super::{Cx, Failure, Flow, Layer};
use crate::error::{ErrorKind, GatewayError};
use crate::proxy::ctx::RequestCtx;
use crate::routing::Request;
use pingora_http::ResponseHeader;
use std::sync::Arc;

pub const ROUTE_REASON_HEADER: &str = "x-switchyard-route-reason";

#[derive(Default)]
pub struct Routing;

impl Layer for Routing {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx {
            gw, session, ctx, ..
        } = cx;
        let (Some(endpoint), Some(model)) = (ctx.client.endpoint, ctx.request.model.as_deref())
        else {
            return Ok(Flow::Continue);
        };
        let key = ctx
            .client
            .key
            .clone()
            .ok_or_else(|| GatewayError::new(ErrorKind::Unauthorized, "Invalid gateway key"))?;
        let plan = gw.router.plan(
            &gw.config,
            &Request {
                key: &key,
                endpoint,
                dialect: ctx.client.dialect,
                model,
                stream: ctx.request.stream,
                body: &ctx.request.body,
                fields: &ctx.request.fields,
                headers: &session.req_header().headers,
            },
        )?;
        let policy = &gw.config.resilience;
        let route = plan.route.as_deref().and_then(|r| gw.config.route(r));
        ctx.plan.max_attempts = route
            .and_then(|r| r.max_attempts)
            .unwrap_or(policy.max_attempts);
        let mut budget = route.and_then(|r| r.deadline).unwrap_or(policy.deadline);
        if let Some(client) = ctx.request.client_deadline {
            budget = budget.min(client);
        }
        ctx.plan.deadline =
            crate::duration::later(tokio::time::Instant::from_std(ctx.started), budget);
        if tokio::time::Instant::now() >= ctx.plan.deadline {
            // The upload alone used up this route's (shorter) deadline: the client's doing.
            ctx.downstream.close = true;
            return Err(body_timeout(budget).into());
        }
        let mut reason = plan.reason;
        // Health is asked again at each attempt; the reason names what is out right now.
        let now = tokio::time::Instant::now();
        for t in &plan.candidates {
            let up = &gw.upstreams[t.provider];
            if let Some(why) = crate::routing::filter::unavailable(up, &t.model, now) {
                reason.push_str(&format!(
                    "; {}/{} unavailable ({})",
                    up.name(),
                    t.model,
                    why.as_str()
                ));
            }
        }
        ctx.plan.route = plan.route;
        ctx.plan.candidates = plan.candidates;
        ctx.plan.reason = Some(reason);
        ctx.request.translator = plan.translator.map(Arc::new);
        Ok(Flow::Continue)
    }

    fn on_response_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        if let (Some(reason), false) = (&ctx.plan.reason, ctx.response.is_hit()) {
            resp.insert_header(ROUTE_REASON_HEADER, reason.as_str())?;
        }
        Ok(())
    }
}
