//! Ending a stream that broke after its first byte: the client already has a 200 and some
//! events, so the gateway appends one error event in the client's dialect and closes the
//! stream properly, instead of leaving the connection hanging or cut without explanation.
//! Both official SDKs raise an API error when they read these events.

use super::ctx::RequestCtx;
use crate::dialect::Dialect;
use crate::error::GatewayError;
use bytes::Bytes;
use pingora_proxy::Session;

/// The SSE event that reports `err` mid-stream.
pub fn error_event(dialect: Dialect, err: &GatewayError) -> Bytes {
    let body = String::from_utf8_lossy(&dialect.error_body(err)).into_owned();
    let event = match dialect {
        // OpenAI's and Gemini's streams carry errors as a data event with an `error` object.
        Dialect::OpenAi | Dialect::Gemini => format!("data: {body}\n\n"),
        Dialect::Anthropic => format!("event: error\ndata: {body}\n\n"),
        // The Responses API's `error` event has the error's fields at the top; the nested
        // `error` object as well makes the OpenAI SDK raise it (it does for any event whose
        // data has one). The gateway does not know the stream's last sequence number here.
        Dialect::Responses => {
            let (kind, code) = crate::dialect::openai::type_and_code(err.kind);
            let data = serde_json::json!({
                "type": "error",
                "code": code,
                "message": err.message,
                "param": err.param,
                "sequence_number": 0,
                "error": {"type": kind, "code": code, "message": err.message, "param": err.param},
            });
            format!("event: error\ndata: {data}\n\n")
        }
    };
    Bytes::from(event)
}

/// Appends the error event and ends the body, if the response is an unframed (chunked) SSE
/// stream; otherwise leaves it cut (a client can tell from the framing).
pub async fn finish_with_error(session: &mut Session, ctx: &RequestCtx, err: &GatewayError) {
    let sse_chunked = session.response_written().is_some_and(|r| {
        let is_sse = r
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        is_sse && r.headers.get(http::header::CONTENT_LENGTH).is_none()
    });
    if !sse_chunked {
        return;
    }
    let event = error_event(ctx.client.dialect, err);
    if let Err(e) = session.write_response_body(Some(event), true).await {
        log::debug!("could not end the broken stream: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn events_in_each_dialect() {
        let err = GatewayError::new(ErrorKind::UpstreamUnavailable, "provider `x` failed");
        let o = error_event(Dialect::OpenAi, &err);
        let o = std::str::from_utf8(&o).unwrap();
        assert!(
            o.starts_with("data: {\"error\":") && o.ends_with("\n\n"),
            "{o}"
        );
        let a = error_event(Dialect::Anthropic, &err);
        let a = std::str::from_utf8(&a).unwrap();
        assert!(
            a.starts_with("event: error\ndata: {") && a.contains("\"type\":\"error\""),
            "{a}"
        );
    }
}
