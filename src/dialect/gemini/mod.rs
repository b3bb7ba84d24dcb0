//! The Gemini native dialect (`generateContent` / `streamGenerateContent?alt=sse`).
//!
//! Gemini is a provider dialect and a client dialect. As a provider dialect the gateway encodes
//! canonical requests into Gemini bodies and decodes Gemini answers (complete, streamed as SSE
//! `data:` chunks, or errors) back. As a client dialect (`google-genai` and other clients of
//! `/v1beta/models/{model}:generateContent`, see [`client_path`]) it decodes their bodies,
//! accepting what Google's API accepts (`snake_case` keys, URL-safe base64, upper-case schema
//! types), and encodes answers, streams and errors in Google's shapes.
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
pub use error::{decode_error, encode_error, error_body};
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

/// A Gemini client's call, read from its URL path: `/v1beta/models/{model}:generateContent`
/// or `:streamGenerateContent` (also under `/v1/`), as `(model, stream)`. The model may hold
/// slashes (`provider/model`, which `google-genai` sends unencoded) and percent-encoded bytes.
pub fn client_path(path: &str) -> Option<(String, bool)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, action) = rest.rsplit_once(':')?;
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    let model = percent_decode(model)?;
    (!model.is_empty()).then_some((model, stream))
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn client_paths_name_the_model_and_the_stream_choice() {
        assert_eq!(
            client_path("/v1beta/models/chat:generateContent"),
            Some(("chat".into(), false))
        );
        assert_eq!(
            client_path("/v1/models/anthropic/claude-sonnet-4-5:streamGenerateContent"),
            Some(("anthropic/claude-sonnet-4-5".into(), true))
        );
        assert_eq!(
            client_path("/v1beta/models/openai%2Fgpt-4o:generateContent"),
            Some(("openai/gpt-4o".into(), false))
        );
        assert_eq!(client_path("/v1beta/models/x:countTokens"), None);
        assert_eq!(client_path("/v1beta/models/:generateContent"), None);
        assert_eq!(client_path("/v1beta/models/a%2:generateContent"), None);
        assert_eq!(client_path("/v1/chat/completions"), None);
        // The path built for a Gemini provider reads back as the same call.
        let p = format!("/v1beta{}", path_for("a/b c", false));
        assert_eq!(client_path(&p), Some(("a/b c".into(), false)));
    }
}
