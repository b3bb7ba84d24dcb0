//! Layer 5: the response half of cross-dialect translation. When the provider that answers
//! speaks another dialect than the client, its header is re-labelled (the body changes length
//! and, for errors, type) and each body chunk is translated after usage has been read from the
//! provider's own bytes. A streamed answer is translated event by event; a whole answer or an
//! error at its end. (The request half comes with the routing plan: the request is decoded
//! once, and each attempt encodes it for its target.) Answers the cache records are rendered
//! from the record instead, by the cache layer.

use super::Layer;
use crate::dialect::Endpoint;
use crate::media::embeddings::FromGemini;
use crate::proxy::ctx::{RequestCtx, Response};
use crate::transform::{add_translation, append};
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
        // A failed attempt's translator never serves the next.
        ctx.media.embeddings = None;
        // A recorded answer is rendered from its record, never translated directly.
        if !ctx.translating() || !matches!(*ctx.response, Response::Proxied(_)) {
            return Ok(());
        }
        if ctx.client.endpoint == Some(Endpoint::Embeddings) && resp.status.is_success() {
            // Gemini's batchEmbedContents answer, as OpenAI's (errors translate as any).
            resp.remove_header(&http::header::CONTENT_LENGTH);
            resp.remove_header(&http::header::CONTENT_ENCODING);
            resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
            let model = ctx.walk.attempts.last().map_or("", |a| a.model.as_str());
            ctx.media.embeddings = Some(FromGemini::new(&ctx.request.body, model));
            return Ok(());
        }
        let Some(spec) = super::accounting::spec(ctx, resp.status.as_u16()) else {
            return Ok(());
        };
        match &mut *ctx.response {
            Response::Proxied(t) => add_translation(t, &spec, resp),
            _ => Ok(()),
        }
    }

    /// A Gemini embeddings answer is translated before the cache may store it, so an entry
    /// is the client's JSON whichever provider produced it (a hit passes as stored).
    fn on_upstream_body(
        &self,
        cache: &mut pingora_cache::HttpCache,
        ctx: &mut RequestCtx,
        body: &mut Option<Bytes>,
        end: bool,
    ) {
        let Some(t) = ctx.media.embeddings.as_mut() else {
            return;
        };
        if let Some(b) = body.take() {
            t.feed(&b);
        }
        *body = Some(if end { t.finish() } else { Bytes::new() });
        if end && t.failed() {
            if cache.enabled() {
                cache.disable(pingora_cache::NoCacheReason::Custom(
                    "untranslatable answer",
                ));
            }
            ctx.outcome.status = 502;
            if let Some(Ok(mut c)) = ctx.downstream.hold.as_ref().map(|c| c.lock()) {
                c.status = Some(502);
            }
        }
    }

    fn on_body(&self, ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
        let Response::Proxied(t) = &mut *ctx.response else {
            return;
        };
        if t.translator.is_none() {
            return;
        }
        let mut out = t.translate(body.take().unwrap_or_default());
        if end {
            out = append(out, t.finish_translation());
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
