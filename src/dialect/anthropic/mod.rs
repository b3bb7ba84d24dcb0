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

// STUB (replaced by the dialect codec)
#[allow(unused_variables)]
mod stub_api {
    use crate::dialect::canonical::*;
    use crate::error::GatewayError;
    pub fn decode_request(
        body: &[u8],
        opts: &TranslateOptions,
    ) -> Result<ChatRequest, GatewayError> {
        Err(GatewayError::bad_request("stub"))
    }
    pub fn encode_request(
        req: &ChatRequest,
        model: &str,
        opts: &TranslateOptions,
    ) -> Result<Vec<u8>, GatewayError> {
        Err(GatewayError::bad_request("stub"))
    }
    pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
        Err("stub".into())
    }
    pub fn encode_response(resp: &ChatResponse) -> Vec<u8> {
        Vec::new()
    }
    pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
        ProviderError {
            status,
            provider_type: None,
            message: String::new(),
            param: None,
        }
    }
    pub fn encode_error(err: &ProviderError) -> Vec<u8> {
        Vec::new()
    }
    struct S;
    impl StreamDecoder for S {
        fn on_event(&mut self, ev: &crate::usage::SseEvent, out: &mut Vec<StreamEvent>) {}
        fn finish(&mut self, out: &mut Vec<StreamEvent>) {}
    }
    impl StreamEncoder for S {
        fn on_event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {}
        fn finish(&mut self, out: &mut Vec<u8>) {}
    }
    pub fn stream_decoder() -> Box<dyn StreamDecoder> {
        Box::new(S)
    }
    pub fn stream_encoder(opts: StreamEncoderOptions) -> Box<dyn StreamEncoder> {
        Box::new(S)
    }
    pub fn path_for(model: &str, stream: bool) -> String {
        String::new()
    }
    pub fn needs_structured_outputs_beta(req: &ChatRequest) -> bool {
        false
    }
}
#[allow(unused_imports)]
pub use stub_api::*;
