//! Layer 5: the response half of cross-dialect translation. When the provider that answers
//! speaks another dialect than the client, its header is re-labelled (the body changes length
//! and, for errors, type) and each body chunk is translated after usage has been read from the
//! provider's own bytes. A streamed answer is translated event by event; a whole answer or an
//! error at its end. (The request half comes with the routing plan: the request is decoded
//! once, and each attempt encodes it for its target.) Answers the cache records are rendered
//! from the record instead, by the cache layer.

use super::Layer;
use crate::dialect::canonical::StreamEncoderOptions;
use crate::dialect::translate::ResponseTranslator;
use crate::proxy::ctx::{RequestCtx, Response};
use bytes::Bytes;
use pingora_http::ResponseHeader;

#[derive(Default)]
pub struct Translation;

impl Layer for Translation {
    fn on_upstream_header(
        &self,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> pingora_error::Result<()> {
        // A recorded answer is rendered from its record, never translated directly.
        if !ctx.translating() || !matches!(ctx.response, Response::Proxied { .. }) {
            return Ok(());
        }
        let built = response_translator(ctx, resp)?;
        if let Response::Proxied { translator, .. } = &mut ctx.response {
            *translator = Some(built);
        }
        Ok(())
    }

    fn on_body(&self, ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
        let Response::Proxied {
            translator: Some(t),
            ..
        } = &mut ctx.response
        else {
            return;
        };
        let mut out = body.take().map(|b| t.feed(&b)).unwrap_or_default();
        if end {
            out = crate::proxy::append(out, t.finish());
        }
        *body = Some(out);
        if let Some(code) = t.failed_status() {
            // A whole answer that could not be translated: the client gets a 502 in its
            // dialect (the header is still held, see `downstream`).
            ctx.outcome.status = code;
            if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
                c.status = Some(code);
            }
        }
    }
}

/// The translator for the answer in flight; re-labels the header.
fn response_translator(
    ctx: &RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<ResponseTranslator> {
    let (from, to) = (ctx.upstream_dialect(), ctx.client.dialect);
    let ok = resp.status.is_success();
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    let opts = StreamEncoderOptions {
        include_usage: ctx.client.wants_usage,
        model: ctx
            .walk
            .attempts
            .last()
            .map(|a| a.model.clone())
            .unwrap_or_default(),
        response_id: ctx.conversation.response_id.clone(),
        echo: ctx.conversation.echo.clone(),
    };
    if ok && ctx.request.stream {
        resp.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
        Ok(ResponseTranslator::stream(from, to, opts))
    } else {
        resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        Ok(ResponseTranslator::whole_with(
            from,
            to,
            resp.status.as_u16(),
            opts,
        ))
    }
}
