//! The OpenAI dialect: error shape (`{"error":{message,type,param,code}}`).

use crate::error::{ErrorKind, GatewayError};
use serde_json::json;

/// OpenAI's `type` and `code` for a gateway error kind, as its own API reports them.
fn type_and_code(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::BadRequest => ("invalid_request_error", "invalid_request"),
        ErrorKind::Unauthorized => ("invalid_request_error", "invalid_api_key"),
        ErrorKind::Forbidden => ("permission_error", "model_not_allowed"),
        ErrorKind::ModelNotFound => ("invalid_request_error", "model_not_found"),
        ErrorKind::NotFound => ("invalid_request_error", "unknown_url"),
        ErrorKind::MethodNotAllowed => ("invalid_request_error", "method_not_allowed"),
        ErrorKind::PayloadTooLarge => ("invalid_request_error", "request_too_large"),
        ErrorKind::RateLimited => ("rate_limit_error", "rate_limit_exceeded"),
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
            "code": code,
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
