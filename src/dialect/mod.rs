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
pub mod gemini;
pub mod openai;
pub mod probe;
pub mod replay;
pub mod responses;
pub mod translate;

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

/// The model-calling endpoints the gateway proxies.
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
}

/// Where an endpoint's requests name their model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// The body's top-level `model` (and `stream`) fields.
    Body,
    /// The URL path (Gemini's `models/{model}:action`); the action says whether it streams.
    Path,
}

impl Endpoint {
    /// The dialect a client of this endpoint speaks.
    pub fn dialect(self) -> Dialect {
        match self {
            Endpoint::ChatCompletions | Endpoint::Embeddings => Dialect::OpenAi,
            Endpoint::Messages => Dialect::Anthropic,
            Endpoint::Responses => Dialect::Responses,
            Endpoint::GenerateContent | Endpoint::StreamGenerateContent => Dialect::Gemini,
        }
    }

    /// Where this endpoint's requests name their model.
    pub fn model_source(self) -> ModelSource {
        match self {
            Endpoint::GenerateContent | Endpoint::StreamGenerateContent => ModelSource::Path,
            _ => ModelSource::Body,
        }
    }

    /// The path appended to a provider's base URL (which ends in its API version, e.g. `/v1`)
    /// by a provider of the endpoint's own dialect (Gemini's paths name the model: see
    /// [`gemini::path_for`]).
    pub fn upstream_suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Messages => "/messages",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
            Endpoint::GenerateContent => ":generateContent",
            Endpoint::StreamGenerateContent => ":streamGenerateContent",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Messages => "messages",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Responses => "responses",
            Endpoint::GenerateContent => "generate_content",
            Endpoint::StreamGenerateContent => "stream_generate_content",
        }
    }

    /// The dialect a provider whose own dialect is `provider` is spoken to in for this
    /// endpoint: its own, except that a provider serving the Responses API natively (OpenAI
    /// kind, `native_responses`) takes Responses requests as they are.
    pub fn wire_dialect(self, provider: Dialect, native_responses: bool) -> Dialect {
        if self == Endpoint::Responses && provider == Dialect::OpenAi && native_responses {
            Dialect::Responses
        } else {
            provider
        }
    }
}
