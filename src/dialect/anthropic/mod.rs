//! The Anthropic Messages dialect: the gateway's own error shape
//! (`{"type":"error","error":{type,message}}`) and the codec to and from the canonical model.
//!
//! Files:
//! - `request_decode.rs`: a client's Messages request -> canonical ([`decode_request`]).
//! - `request_encode.rs`: canonical -> a Messages request for an Anthropic target
//!   ([`encode_request`]).
//! - `response.rs`: complete responses both ways, plus the stop-reason and usage helpers the
//!   stream modules share.
//! - `errors.rs`: provider error bodies both ways (status <-> Anthropic error `type`).
//! - `stream_decode.rs` / `stream_encode.rs`: SSE streams both ways.
//! - `tests_*.rs`: unit tests (requests decode/encode, responses and errors, streams) and
//!   property tests (`tests_props.rs`).

use crate::error::{ErrorKind, GatewayError};
use serde_json::json;

mod errors;
mod request_decode;
mod request_encode;
mod response;
mod stream_decode;
mod stream_encode;

#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_request;
#[cfg(test)]
mod tests_request_encode;
#[cfg(test)]
mod tests_response;
#[cfg(test)]
mod tests_stream;

pub use errors::{decode_error, encode_error};
pub use request_decode::decode_request;
pub use request_encode::{encode_request, DEFAULT_MAX_TOKENS};
pub use response::{decode_response, encode_response};
pub use stream_decode::stream_decoder;
pub use stream_encode::stream_encoder;

/// Anthropic's error `type` for a gateway error kind (see its API's error reference).
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest | ErrorKind::MethodNotAllowed | ErrorKind::RequestTimeout => {
            "invalid_request_error"
        }
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::ModelNotFound | ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::BudgetExceeded => "billing_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::UpstreamUnavailable | ErrorKind::UpstreamTimeout | ErrorKind::Internal => {
            "api_error"
        }
    }
}

pub fn error_body(err: &GatewayError) -> Vec<u8> {
    let body = json!({
        "type": "error",
        "error": { "type": error_type(err.kind), "message": err.message }
    });
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape_matches_anthropic() {
        let err = GatewayError::new(ErrorKind::Unauthorized, "bad key");
        let v: serde_json::Value = serde_json::from_slice(&error_body(&err)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["message"], "bad key");
    }
}
