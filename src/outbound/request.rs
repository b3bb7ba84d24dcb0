//! What the gateway asks of one target, and the request header it becomes.

use crate::config::Target;
use crate::dialect::Endpoint;
use crate::providers::shape::RequestShape;
use crate::providers::Upstream;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_http::RequestHeader;
use tokio::time::Instant;

/// One request to one target.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub target: Target,
    /// The endpoint asked for (mapped to the provider's own path, as for proxied requests).
    pub endpoint: Endpoint,
    /// The body, already in the target's dialect, with the target's model set.
    pub body: Bytes,
    /// Whether the body asks for a streamed answer (the Gemini path depends on it).
    pub stream: bool,
    /// When the whole exchange must be over: connect, header, and every body read.
    pub deadline: Instant,
    /// Extra headers (`anthropic-beta`, ...). Credentials, framing, hop-by-hop and
    /// `x-switchyard-*` headers are dropped, as for proxied requests; the provider's key is
    /// added. `content-type` defaults to `application/json`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl OutboundRequest {
    /// The header for `up`, carrying its key at `key_index`.
    pub(crate) fn header(
        &self,
        up: &Upstream,
        key_index: Option<usize>,
    ) -> pingora_error::Result<RequestHeader> {
        let mut req = RequestHeader::build("POST", b"/", Some(self.headers.len() + 4))?;
        for (name, value) in &self.headers {
            req.append_header(name.clone(), value.clone())?;
        }
        if !req.headers.contains_key(http::header::CONTENT_TYPE) {
            req.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        }
        up.shape_request(
            &mut req,
            &RequestShape {
                endpoint: self.endpoint,
                model: &self.target.model,
                stream: self.stream,
                // The body is written in the dialect the target is spoken to in for this
                // endpoint (its own, or the Responses API natively), and so are the headers.
                client_dialect: up.wire_dialect(self.endpoint),
                body_len: self.body.len() as u64,
                key_index,
            },
        )?;
        Ok(req)
    }
}
