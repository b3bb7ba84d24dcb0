//! The Anthropic dialect: error shape (`{"type":"error","error":{type,message}}`).

use crate::error::{ErrorKind, GatewayError};
use serde_json::json;

/// Anthropic's error `type` for a gateway error kind (see its API's error reference).
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest | ErrorKind::MethodNotAllowed => "invalid_request_error",
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::ModelNotFound | ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
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
