//! The request header a provider receives: its path, its host, its key in place of any
//! credentials, the framing of the body that is sent, and none of the headers that must not
//! leave the gateway. Proxied attempts and the gateway's own calls are shaped alike.

use super::Upstream;
use crate::dialect::{Dialect, Endpoint};
use pingora_http::RequestHeader;

/// Headers the client sent that must not reach a provider: framing (recomputed), connection
/// management, the client's identity towards its own OpenAI org, and the gateway's own.
pub const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "expect",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "accept-encoding",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "openai-organization",
    "openai-project",
];

/// What one attempt's request header is shaped for.
#[derive(Clone, Copy, Debug)]
pub struct RequestShape<'a> {
    /// The endpoint the request is for (in any dialect: mapped to the provider's own).
    pub endpoint: Endpoint,
    pub model: &'a str,
    pub stream: bool,
    /// The dialect the incoming headers were written for (the provider's own when the
    /// gateway writes them itself).
    pub client_dialect: Dialect,
    /// Length of the body that is sent (already in the provider's dialect).
    pub body_len: u64,
    /// The provider key the attempt carries (index into its keys).
    pub key_index: Option<usize>,
}

impl Upstream {
    /// Rewrites `req` into the provider's request: path, host, auth, framing.
    pub fn shape_request(
        &self,
        req: &mut RequestHeader,
        shape: &RequestShape<'_>,
    ) -> pingora_error::Result<()> {
        let path = self.path_for(shape.endpoint, shape.model, shape.stream);
        req.set_uri(
            http::Uri::builder()
                .path_and_query(path.as_str())
                .build()
                .map_err(|e| {
                    pingora_error::Error::because(
                        pingora_error::ErrorType::InternalError,
                        "upstream path",
                        e,
                    )
                })?,
        );
        // One pass over the (few) headers present, rather than a removal per listed name.
        let drop: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|k| {
                let n = k.as_str();
                n.starts_with("x-switchyard-") || DROPPED_REQUEST_HEADERS.contains(&n)
            })
            .cloned()
            .collect();
        for h in drop {
            req.remove_header(&h);
        }
        if self.wire_dialect(shape.endpoint) != shape.client_dialect {
            // The client's dialect-specific headers mean nothing (or something wrong) to a
            // provider of another dialect; the translated body is JSON whatever the client sent.
            for h in [
                "anthropic-version",
                "anthropic-beta",
                "content-type",
                "accept",
            ] {
                req.remove_header(h);
            }
            req.insert_header("content-type", "application/json")?;
        }
        req.insert_header("host", self.cfg.base_url.host_header())?;
        req.insert_header("content-length", shape.body_len.to_string())?;
        let key = shape.key_index.and_then(|i| self.cfg.keys.get(i));
        self.apply_auth(req, key)?;
        Ok(())
    }
}
