//! Media endpoints: embeddings beyond OpenAI's dialect, image generation, speech to text and
//! text to speech, through the same keys, routes, fallback, cache and cost as chat.
//!
//! What each endpoint is (paths, body and answer kinds, unit, providers) is declared in
//! [`crate::endpoints`]; this module holds what those declarations need at run time:
//!
//! - [`embeddings`]: OpenAI embeddings <-> Gemini `batchEmbedContents`.
//! - [`upload`] and [`multipart`]: multipart uploads spooled (memory, then a temp file past
//!   [`upload::MEMORY_LIMIT`]) while the form is scanned for its model, then replayed to each
//!   attempt as a stream, with only the model field rewritten.
//! - [`meter`]: what an answer used (images, audio seconds, characters, tokens) and its price.
//! - [`wav`]: the duration of an uploaded WAV file, from its header.
//!
//! The per-request state is one [`MediaCtx`] in the request context; chat requests leave it
//! empty and pay nothing for it.

pub mod b64;
pub mod embeddings;
pub mod meter;
pub mod multipart;
pub mod upload;
pub mod wav;

use crate::dialect::{Dialect, Endpoint};
use crate::error::GatewayError;
use bytes::Bytes;

/// What the request told that pricing needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Images: the requested `size` and `quality`.
    pub size: Option<String>,
    pub quality: Option<String>,
    /// Text to speech: characters of `input`.
    pub characters: u64,
    /// Speech to text: the uploaded file's duration, from its header.
    pub audio_seconds: Option<f64>,
}

/// Per-request media state (empty for chat).
#[derive(Default)]
pub struct MediaCtx {
    /// A spooled multipart upload, replayed to each attempt.
    pub upload: Option<upload::Upload>,
    pub facts: Facts,
    /// Reads the answer being served (non-token units).
    pub meter: Option<meter::Meter>,
    /// Translates a Gemini embeddings answer into OpenAI's.
    pub embeddings: Option<embeddings::FromGemini>,
    /// Reads a cached embeddings answer's usage (a hit's saving), as the proxied answer's
    /// was read.
    pub hit_usage: Option<crate::usage::tally::StreamTally>,
}

impl MediaCtx {
    /// Whether this request's body streams from an upload spool (not from `walk.body`).
    pub fn streams_upload(&self) -> bool {
        self.upload.is_some()
    }
}

/// Whether a request for `endpoint` can be sent to a provider speaking `to` (another dialect
/// than the client's). Routing asks once per dialect.
pub fn check_translatable(
    endpoint: Endpoint,
    to: Dialect,
    body: &[u8],
) -> Result<(), GatewayError> {
    match (endpoint, to) {
        (Endpoint::Embeddings, Dialect::Gemini) => embeddings::check(body),
        (e, d) => Err(GatewayError::bad_request(format!(
            "{} requests cannot be sent to a {} provider",
            e.name(),
            d.name()
        ))),
    }
}

/// The body for one attempt when it is not the client's JSON with the model renamed: a
/// translation for a provider of another dialect. `None`: the usual model rename applies.
pub fn attempt_body(
    endpoint: Endpoint,
    client: Dialect,
    to: Dialect,
    body: &[u8],
    model: &str,
) -> Option<Result<Bytes, GatewayError>> {
    match (endpoint, to) {
        (Endpoint::Embeddings, Dialect::Gemini) if client != to => {
            Some(embeddings::to_gemini(body, model))
        }
        _ => None,
    }
}

/// Pricing facts from a JSON request body (images: size and quality; speech: characters).
pub fn json_facts(endpoint: Endpoint, body: &[u8]) -> Facts {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        size: Option<&'a str>,
        #[serde(borrow, default)]
        quality: Option<&'a str>,
        #[serde(default)]
        input: Option<serde_json::Value>,
    }
    let Ok(p) = serde_json::from_slice::<Probe<'_>>(body) else {
        return Facts::default();
    };
    match endpoint {
        Endpoint::ImageGenerations => Facts {
            size: p.size.map(str::to_owned),
            quality: p.quality.map(str::to_owned),
            ..Facts::default()
        },
        Endpoint::AudioSpeech => Facts {
            characters: p
                .input
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .map_or(0, |s| s.chars().count() as u64),
            ..Facts::default()
        },
        _ => Facts::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_from_requests() {
        let f = json_facts(
            Endpoint::ImageGenerations,
            br#"{"model":"m","prompt":"p","size":"1024x1024","quality":"hd"}"#,
        );
        assert_eq!(f.size.as_deref(), Some("1024x1024"));
        assert_eq!(f.quality.as_deref(), Some("hd"));
        let f = json_facts(
            Endpoint::AudioSpeech,
            r#"{"model":"tts-1","input":"héllo","voice":"alloy"}"#.as_bytes(),
        );
        assert_eq!(f.characters, 5);
        assert!(check_translatable(Endpoint::ImageGenerations, Dialect::Gemini, b"{}").is_err());
        assert!(attempt_body(
            Endpoint::Embeddings,
            Dialect::OpenAi,
            Dialect::OpenAi,
            b"{}",
            "m"
        )
        .is_none());
    }
}
