//! The response half of cross-dialect translation in the proxy: choosing how an answer is
//! translated (from its status and the stream flag), re-labelling its header, and passing each
//! body chunk through the translator after usage has been read from the provider's own bytes.

use super::ctx::RequestCtx;
use super::downstream::Control;
use crate::dialect::canonical::StreamEncoderOptions;
use crate::dialect::translate::ResponseTranslator;
use bytes::Bytes;
use pingora_http::ResponseHeader;

/// The translator for the answer in flight, if the provider speaks another dialect than the
/// client; re-labels the header (the body changes length and, for errors, type).
pub fn response_translator(
    ctx: &RequestCtx,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<Option<ResponseTranslator>> {
    if !ctx.translating() {
        return Ok(None);
    }
    let (from, to) = (ctx.upstream_dialect(), ctx.dialect);
    let ok = resp.status.is_success();
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    let translator = if ok && ctx.stream {
        resp.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
        let model = ctx
            .attempts
            .last()
            .map(|a| a.model.clone())
            .unwrap_or_default();
        ResponseTranslator::stream(
            from,
            to,
            StreamEncoderOptions {
                include_usage: ctx.client_wants_usage,
                model,
            },
        )
    } else {
        resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        ResponseTranslator::whole(from, to, resp.status.as_u16())
    };
    Ok(Some(translator))
}

/// Replaces `body` with its translation (and, at the end, what the translator still holds).
pub fn translate_body(
    t: &mut ResponseTranslator,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    hold: Option<&Control>,
) {
    let mut out = body.take().map(|b| t.feed(&b)).unwrap_or_default();
    if end_of_stream {
        let rest = t.finish();
        out = super::append(out, rest);
        if let (Some(code), Some(Ok(mut c))) = (t.failed_status(), hold.map(|c| c.lock())) {
            c.status = Some(code);
        }
    }
    *body = Some(out);
}
