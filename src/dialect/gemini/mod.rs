//! The Gemini native dialect (`generateContent` / `streamGenerateContent?alt=sse`).

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
