//! The OpenAI Chat Completions dialect: the gateway's own error shape
//! (`{"error":{message,type,param,code}}`) and the codec between OpenAI bodies/streams and the
//! canonical model.
//!
//! Files:
//! - `request_decode.rs`: client request body -> canonical ([`decode_request`]).
//! - `request_encode.rs`: canonical -> provider request body ([`encode_request`]).
//! - `response.rs`: complete responses both ways, finish reasons and usage objects.
//! - `errors.rs`: provider error bodies both ways.
//! - `stream_decode.rs` / `stream_encode.rs`: `chat.completion.chunk` streams both ways.

mod errors;
mod request_decode;
mod request_encode;
mod response;
mod stream_decode;
mod stream_encode;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod stream_tests;

pub use errors::{decode_error, encode_error};
pub use request_decode::decode_request;
pub(crate) use request_decode::parse_data_url;
pub use request_encode::encode_request;
pub use response::{decode_response, encode_response};
pub use stream_decode::stream_decoder;
pub use stream_encode::stream_encoder;

use crate::error::{ErrorKind, GatewayError};
use serde_json::json;

/// OpenAI's `type` and `code` for a gateway error kind, as its own API reports them.
pub(crate) fn type_and_code(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::BadRequest => ("invalid_request_error", "invalid_request"),
        ErrorKind::Unauthorized => ("invalid_request_error", "invalid_api_key"),
        ErrorKind::Forbidden => ("permission_error", "model_not_allowed"),
        ErrorKind::ModelNotFound => ("invalid_request_error", "model_not_found"),
        ErrorKind::NotFound => ("invalid_request_error", "unknown_url"),
        ErrorKind::MethodNotAllowed => ("invalid_request_error", "method_not_allowed"),
        ErrorKind::PayloadTooLarge => ("invalid_request_error", "request_too_large"),
        ErrorKind::RequestTimeout => ("invalid_request_error", "request_timeout"),
        ErrorKind::RateLimited => ("rate_limit_error", "rate_limit_exceeded"),
        ErrorKind::BudgetExceeded => ("insufficient_quota", "budget_exceeded"),
        ErrorKind::Unavailable => ("api_error", "all_targets_unavailable"),
        ErrorKind::UpstreamUnavailable => ("api_error", "upstream_unavailable"),
        ErrorKind::UpstreamTimeout => ("timeout_error", "upstream_timeout"),
        ErrorKind::Internal => ("server_error", "internal_error"),
    }
}

pub fn error_body(err: &GatewayError) -> Vec<u8> {
    let (etype, code) = type_and_code(err.kind);
    let body = json!({
        "error": {
            "message": err.message,
            "type": etype,
            "param": err.param,
            "code": err.code.unwrap_or(code),
        }
    });
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape_matches_openai() {
        let err = GatewayError::new(ErrorKind::ModelNotFound, "no model x").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&error_body(&err)).unwrap();
        assert_eq!(v["error"]["message"], "no model x");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
    }
}
