//! The Gemini native dialect (`generateContent` / `streamGenerateContent?alt=sse`).
//!
//! Gemini is a provider dialect: clients speak OpenAI or Anthropic, and the gateway encodes
//! their canonical requests into Gemini bodies and decodes Gemini answers (complete, streamed
//! as SSE `data:` chunks, or errors) back. The client-side halves (`decode_request`,
//! `encode_response`, `stream_encoder`, `encode_error`) exist for round-trip tests and for a
//! future Gemini client endpoint.
//!
//! Files: `wire` (shared field and enum helpers), `encode` (canonical -> request body),
//! `decode` (request body -> canonical), `response` (complete answers both ways), `stream`
//! (SSE decoder and encoder), `error` (error bodies both ways). The model and the stream
//! choice live in the URL ([`path_for`]), never in the body.

mod decode;
mod encode;
mod error;
mod response;
mod stream;
mod wire;

#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_request;
#[cfg(test)]
mod tests_response;
#[cfg(test)]
mod tests_stream;

pub use decode::decode_request;
pub use encode::encode_request;
pub use error::{decode_error, encode_error};
pub use response::{decode_response, encode_response};
pub use stream::{stream_decoder, stream_encoder};

/// The path (after the provider's base URL, e.g. `…/v1beta`) for calling `model`:
/// `/models/{model}:generateContent`, or `/models/{model}:streamGenerateContent?alt=sse` for a
/// stream. A leading `models/` in the configured name is dropped (Google's own resource name
/// form), and every byte but ASCII letters, digits and `-._~` is percent-encoded, so a model
/// name can never change the path's shape.
pub fn path_for(model: &str, stream: bool) -> String {
    let enc = encode_model(model);
    if stream {
        format!("/models/{enc}:streamGenerateContent?alt=sse")
    } else {
        format!("/models/{enc}:generateContent")
    }
}

/// `/models/{model}:{action}` (e.g. `batchEmbedContents`), the model encoded as in [`path_for`].
pub fn action_path_for(model: &str, action: &str) -> String {
    format!("/models/{}:{action}", encode_model(model))
}

/// The model name for a path segment: a leading `models/` dropped, and every byte but ASCII
/// letters, digits and `-._~` percent-encoded.
fn encode_model(model: &str) -> String {
    use std::fmt::Write;
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut enc = String::with_capacity(model.len());
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            enc.push(char::from(b));
        } else {
            let _ = write!(enc, "%{b:02X}");
        }
    }
    enc
}
