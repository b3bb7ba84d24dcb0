//! Layer 3: Responses API conversation state (see [`crate::conversation`]). On a
//! `/v1/responses` request it splices the conversation `previous_response_id` names into the
//! body (a 404 for an unknown id) and sets the id and echoed fields the answer gets; on the
//! way out it reads the answer the client receives and keeps the turn. Other endpoints pass
//! untouched.

use super::{Cx, Failure, Flow, Layer};
use crate::conversation::Turn;
use crate::dialect::Endpoint;
use crate::proxy::ctx::RequestCtx;
use bytes::Bytes;

#[derive(Default)]
pub struct Conversation;

impl Layer for Conversation {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx { gw, ctx, .. } = cx;
        if ctx.client.endpoint != Some(Endpoint::Responses) || ctx.request.model.is_none() {
            return Ok(Flow::Continue);
        }
        let key = ctx.client.key_name.as_deref().unwrap_or_default();
        let begun = Turn::begin(
            &gw.conversations,
            key,
            &ctx.id,
            &ctx.request.body,
            ctx.request.stream,
        )?;
        if let Some((body, probe)) = begun.body {
            ctx.request.body = body;
            ctx.request.model_span = probe.model_span;
            ctx.request.fields = probe.fields;
        }
        *ctx.conversation = begun.turn;
        Ok(Flow::Continue)
    }

    fn on_body(&self, ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
        let chunk = body.as_deref().unwrap_or_default();
        let status = ctx.outcome.status;
        let store = ctx.state.conversations.clone();
        ctx.conversation.capture(&store, chunk, end, status);
    }
}
