//! Wire dialects: how clients and providers shape requests, responses and errors.
//!
//! When a request reaches a provider that speaks the client's dialect, the gateway only
//! (a) finds the model and stream flag in the body ([`probe`]), (b) rewrites the model name
//! without touching any other byte, and (c) renders its own errors in the client's dialect.
//! Otherwise the body is translated through the [`canonical`] model: decoded from the client's
//! dialect, encoded into the provider's, and the answer (whole, streamed or an error) goes back
//! the same way ([`translate`]). One module per dialect: [`openai`], [`anthropic`], [`gemini`],
//! [`responses`].

pub mod anthropic;
pub mod canonical;
pub mod fields;
pub mod gemini;
pub mod openai;
pub mod probe;
pub mod replay;
pub mod responses;
pub mod translate;

pub use fields::{BodyFields, Field};
pub use probe::{probe_path_request, probe_request, RequestProbe};

use crate::error::GatewayError;

/// A wire dialect spoken by a client or a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions (and everything that copies it: Groq, Mistral, vLLM, ...).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini native `generateContent` / `streamGenerateContent`.
    Gemini,
    /// OpenAI Responses (`/v1/responses`): a client dialect for every target, spoken natively
    /// by OpenAI-kind providers.
    Responses,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::Responses => "responses",
        }
    }

    /// The JSON body of an error response in this dialect.
    pub fn error_body(self, err: &GatewayError) -> Vec<u8> {
        match self {
            Dialect::OpenAi | Dialect::Responses => openai::error_body(err),
            Dialect::Anthropic => anthropic::error_body(err),
            Dialect::Gemini => gemini::error_body(err),
        }
    }
}

/// The model-calling endpoints the gateway proxies. Each is described once, in
/// [`crate::endpoints::SPECS`] (paths, body and answer kinds, pricing unit, providers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1beta/models/{model}:generateContent` (or `/v1/models/...`)
    GenerateContent,
    /// `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (or `/v1/models/...`)
    StreamGenerateContent,
    /// `POST /v1/images/generations`
    ImageGenerations,
    /// `POST /v1/audio/transcriptions` (multipart upload)
    AudioTranscriptions,
    /// `POST /v1/audio/translations` (multipart upload)
    AudioTranslations,
    /// `POST /v1/audio/speech` (audio streamed back)
    AudioSpeech,
}

impl Endpoint {
    /// This endpoint's entry in the endpoint table.
    pub fn spec(self) -> &'static crate::endpoints::Spec {
        crate::endpoints::spec(self)
    }

    /// The dialect a client of this endpoint speaks.
    pub fn dialect(self) -> Dialect {
        self.spec().client
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
}
