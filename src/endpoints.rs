//! The model endpoints the gateway serves, described once, as data.
//!
//! Each [`Spec`] says, for one [`Endpoint`]: the client paths and method, how its request body
//! is framed (JSON or multipart), what its answer is (JSON, JSON or SSE, a binary audio stream),
//! where its model is named, what its cost is counted in, whether its answers may be cached,
//! and which providers serve it (with the path each one is called on). The auth layer
//! classifies paths with [`classify`], routing keeps the targets that [`Spec::serve`] finds, the
//! provider path comes from [`Spec::upstream_path`], and accounting and the ledger price and
//! record in [`Spec::unit`].
//!
//! Adding an endpoint is one entry in [`SPECS`] (and its mock).

use crate::dialect::{Dialect, Endpoint};
use crate::providers::ProviderKind;

/// How the client frames its request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// One JSON object, read whole (bounded by `server.max_body_size`).
    Json,
    /// `multipart/form-data` (uploads): spooled, never held whole in memory.
    Multipart,
}

/// What the answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    /// One JSON object.
    Json,
    /// JSON, or SSE when the request says `"stream": true` (or its path does: Gemini's
    /// `:streamGenerateContent`).
    JsonOrSse,
    /// Bytes streamed as the provider produces them (audio).
    Binary,
}

/// Where the request names its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelField {
    /// A top-level string field of the JSON body.
    Json(&'static str),
    /// A text field of the multipart form.
    Form(&'static str),
    /// The URL path (Gemini's `models/{model}:action`); the action says whether it streams.
    Path,
}

/// What a call's cost is counted in (the ledger's `unit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Tokens,
    Images,
    /// Audio seconds, as billed (whole seconds, rounded up).
    Seconds,
    /// Characters of input text.
    Characters,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Tokens => "tokens",
            Unit::Images => "images",
            Unit::Seconds => "seconds",
            Unit::Characters => "characters",
        }
    }
}

/// Which providers one [`Serve`] entry covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Providers {
    /// Every provider speaking this dialect.
    Dialect(Dialect),
    /// Providers of these preset kinds.
    Kinds(&'static [ProviderKind]),
}

/// The path appended to a provider's base URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamPath {
    /// A fixed suffix, e.g. `/images/generations`.
    Suffix(&'static str),
    /// Gemini's `/models/{model}:generateContent` (or the streaming form).
    GeminiGenerate,
    /// Gemini's `/models/{model}:{action}`, e.g. `batchEmbedContents`.
    GeminiAction(&'static str),
}

/// One kind of provider that serves an endpoint, and how it is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Serve {
    pub providers: Providers,
    pub path: UpstreamPath,
    /// The dialect the provider is spoken to in, when not its own: OpenAI-kind providers
    /// take Responses requests natively.
    pub wire: Option<Dialect>,
}

/// One endpoint, declared.
#[derive(Debug, PartialEq, Eq)]
pub struct Spec {
    pub endpoint: Endpoint,
    /// The ledger's and the metrics' name.
    pub name: &'static str,
    /// Client paths (without a trailing slash). `{model}` stands for a model named in the
    /// path (one or more characters, slashes included: `provider/model`).
    pub paths: &'static [&'static str],
    pub method: &'static str,
    /// The dialect its clients speak (how gateway errors are shaped).
    pub client: Dialect,
    pub request: BodyKind,
    pub response: ResponseKind,
    pub model: ModelField,
    pub unit: Unit,
    /// Whether its answers may be stored in the response cache (when the route or the
    /// request asks for caching).
    pub cacheable: bool,
    /// Whether a target of another dialect is reached through the chat translator.
    pub chat: bool,
    /// Who serves it, first match wins.
    pub serve: &'static [Serve],
}

const CHAT_SERVE: &[Serve] = &[
    Serve {
        providers: Providers::Dialect(Dialect::OpenAi),
        path: UpstreamPath::Suffix("/chat/completions"),
        wire: None,
    },
    Serve {
        providers: Providers::Dialect(Dialect::Anthropic),
        path: UpstreamPath::Suffix("/messages"),
        wire: None,
    },
    Serve {
        providers: Providers::Dialect(Dialect::Gemini),
        path: UpstreamPath::GeminiGenerate,
        wire: None,
    },
];

/// The Responses API: OpenAI-kind providers serve it themselves (the body passes through but
/// for the model); every other provider is reached through the chat translator.
const RESPONSES_SERVE: &[Serve] = &[
    Serve {
        providers: Providers::Kinds(&[ProviderKind::OpenAi]),
        path: UpstreamPath::Suffix("/responses"),
        wire: Some(Dialect::Responses),
    },
    CHAT_SERVE[0],
    CHAT_SERVE[1],
    CHAT_SERVE[2],
];

/// Providers with OpenAI's audio endpoints.
const AUDIO_KINDS: &[ProviderKind] = &[
    ProviderKind::OpenAi,
    ProviderKind::Groq,
    ProviderKind::DeepInfra,
    ProviderKind::OpenAiCompatible,
];

/// Every endpoint. [`spec`] finds an endpoint's entry.
pub static SPECS: &[Spec] = &[
    Spec {
        endpoint: Endpoint::ChatCompletions,
        name: "chat_completions",
        paths: &["/v1/chat/completions", "/chat/completions"],
        method: "POST",
        client: Dialect::OpenAi,
        request: BodyKind::Json,
        response: ResponseKind::JsonOrSse,
        model: ModelField::Json("model"),
        unit: Unit::Tokens,
        cacheable: true,
        chat: true,
        serve: CHAT_SERVE,
    },
    Spec {
        endpoint: Endpoint::Messages,
        name: "messages",
        paths: &["/v1/messages"],
        method: "POST",
        client: Dialect::Anthropic,
        request: BodyKind::Json,
        response: ResponseKind::JsonOrSse,
        model: ModelField::Json("model"),
        unit: Unit::Tokens,
        cacheable: true,
        chat: true,
        serve: CHAT_SERVE,
    },
    Spec {
        endpoint: Endpoint::Responses,
        name: "responses",
        paths: &["/v1/responses", "/responses"],
        method: "POST",
        client: Dialect::Responses,
        request: BodyKind::Json,
        response: ResponseKind::JsonOrSse,
        model: ModelField::Json("model"),
        unit: Unit::Tokens,
        cacheable: false,
        chat: true,
        serve: RESPONSES_SERVE,
    },
    Spec {
        endpoint: Endpoint::GenerateContent,
        name: "generate_content",
        // `google-genai` with only a base URL set calls API version `v1`.
        paths: &[
            "/v1beta/models/{model}:generateContent",
            "/v1/models/{model}:generateContent",
        ],
        method: "POST",
        client: Dialect::Gemini,
        request: BodyKind::Json,
        response: ResponseKind::JsonOrSse,
        model: ModelField::Path,
        unit: Unit::Tokens,
        cacheable: false,
        chat: true,
        serve: CHAT_SERVE,
    },
    Spec {
        endpoint: Endpoint::StreamGenerateContent,
        name: "stream_generate_content",
        paths: &[
            "/v1beta/models/{model}:streamGenerateContent",
            "/v1/models/{model}:streamGenerateContent",
        ],
        method: "POST",
        client: Dialect::Gemini,
        request: BodyKind::Json,
        response: ResponseKind::JsonOrSse,
        model: ModelField::Path,
        unit: Unit::Tokens,
        cacheable: false,
        chat: true,
        serve: CHAT_SERVE,
    },
    Spec {
        endpoint: Endpoint::Embeddings,
        name: "embeddings",
        paths: &["/v1/embeddings", "/embeddings"],
        method: "POST",
        client: Dialect::OpenAi,
        request: BodyKind::Json,
        response: ResponseKind::Json,
        model: ModelField::Json("model"),
        unit: Unit::Tokens,
        cacheable: true,
        chat: false,
        serve: &[
            // OpenAI-compatible providers, Mistral among them.
            Serve {
                providers: Providers::Dialect(Dialect::OpenAi),
                path: UpstreamPath::Suffix("/embeddings"),
                wire: None,
            },
            // Gemini native, translated both ways (`crate::media::embeddings`).
            Serve {
                providers: Providers::Dialect(Dialect::Gemini),
                path: UpstreamPath::GeminiAction("batchEmbedContents"),
                wire: None,
            },
        ],
    },
    Spec {
        endpoint: Endpoint::ImageGenerations,
        name: "image_generations",
        paths: &["/v1/images/generations", "/images/generations"],
        method: "POST",
        client: Dialect::OpenAi,
        request: BodyKind::Json,
        response: ResponseKind::Json,
        model: ModelField::Json("model"),
        unit: Unit::Images,
        cacheable: false,
        chat: false,
        serve: &[Serve {
            // `gemini` is Google's OpenAI-compatible endpoint (Imagen models).
            providers: Providers::Kinds(&[
                ProviderKind::OpenAi,
                ProviderKind::Xai,
                ProviderKind::Gemini,
                ProviderKind::OpenAiCompatible,
            ]),
            path: UpstreamPath::Suffix("/images/generations"),
            wire: None,
        }],
    },
    Spec {
        endpoint: Endpoint::AudioTranscriptions,
        name: "audio_transcriptions",
        paths: &["/v1/audio/transcriptions", "/audio/transcriptions"],
        method: "POST",
        client: Dialect::OpenAi,
        request: BodyKind::Multipart,
        response: ResponseKind::Json,
        model: ModelField::Form("model"),
        unit: Unit::Seconds,
        cacheable: false,
        chat: false,
        serve: &[Serve {
            providers: Providers::Kinds(AUDIO_KINDS),
            path: UpstreamPath::Suffix("/audio/transcriptions"),
            wire: None,
        }],
    },
    Spec {
        endpoint: Endpoint::AudioTranslations,
        name: "audio_translations",
        paths: &["/v1/audio/translations", "/audio/translations"],
        method: "POST",
        client: Dialect::OpenAi,
        request: BodyKind::Multipart,
        response: ResponseKind::Json,
        model: ModelField::Form("model"),
        unit: Unit::Seconds,
        cacheable: false,
        chat: false,
        serve: &[Serve {
            providers: Providers::Kinds(AUDIO_KINDS),
            path: UpstreamPath::Suffix("/audio/translations"),
            wire: None,
        }],
    },
    Spec {
        endpoint: Endpoint::AudioSpeech,
        name: "audio_speech",
        paths: &["/v1/audio/speech", "/audio/speech"],
        method: "POST",
        client: Dialect::OpenAi,
        request: BodyKind::Json,
        response: ResponseKind::Binary,
        model: ModelField::Json("model"),
        unit: Unit::Characters,
        cacheable: false,
        chat: false,
        serve: &[Serve {
            providers: Providers::Kinds(AUDIO_KINDS),
            path: UpstreamPath::Suffix("/audio/speech"),
            wire: None,
        }],
    },
];

/// The entry of `endpoint`. Every variant has one (a unit test checks).
pub fn spec(endpoint: Endpoint) -> &'static Spec {
    SPECS
        .iter()
        .find(|s| s.endpoint == endpoint)
        .unwrap_or(&SPECS[0])
}

/// What a request path is, by the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Endpoint(&'static Spec),
    /// A known path asked with another method (the method it wants).
    WrongMethod(&'static str),
    Unknown,
}

/// Whether `path` is the table's `pattern`: equal, or with a non-empty model where the
/// pattern says `{model}`.
fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.split_once("{model}") {
        None => pattern == path,
        Some((before, after)) => path
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|model| !model.is_empty()),
    }
}

/// Finds the endpoint of `path` (a trailing slash ignored) asked with `method`.
pub fn classify(method: &str, path: &str) -> Found {
    let path = path.strip_suffix('/').unwrap_or(path);
    match SPECS
        .iter()
        .find(|s| s.paths.iter().any(|p| path_matches(p, path)))
    {
        Some(s) if s.method == method => Found::Endpoint(s),
        Some(s) => Found::WrongMethod(s.method),
        None => Found::Unknown,
    }
}

/// `POST /v1/chat/completions, POST /v1/messages, ...`, for the unknown-path error.
pub fn listing() -> String {
    SPECS
        .iter()
        .map(|s| format!("{} {}", s.method, s.paths[0]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The providers serving `spec`, for error messages: `any openai provider, gemini-native`.
pub fn serving_kinds(spec: &Spec) -> String {
    spec.serve
        .iter()
        .map(|s| match s.providers {
            Providers::Dialect(d) => format!("any {} provider", d.name()),
            Providers::Kinds(k) => k.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Spec {
    /// How a provider of `kind` speaking `dialect` serves this endpoint, if it does.
    pub fn serve(&self, kind: ProviderKind, dialect: Dialect) -> Option<&'static Serve> {
        self.serve.iter().find(|s| match s.providers {
            Providers::Dialect(d) => d == dialect,
            Providers::Kinds(kinds) => kinds.contains(&kind),
        })
    }

    /// The dialect a provider of `kind` speaking `dialect` is spoken to in for this endpoint:
    /// its own, but for providers serving the client's dialect natively (the Responses API on
    /// OpenAI-kind providers).
    pub fn wire_dialect(&self, kind: ProviderKind, dialect: Dialect) -> Dialect {
        self.serve(kind, dialect)
            .and_then(|s| s.wire)
            .unwrap_or(dialect)
    }

    /// Whether requests name their model in the URL path rather than the body.
    pub fn model_in_path(&self) -> bool {
        self.model == ModelField::Path
    }

    /// The path after the provider's base URL, for `model`; `None` when the provider does not
    /// serve this endpoint.
    pub fn upstream_path(
        &self,
        kind: ProviderKind,
        dialect: Dialect,
        model: &str,
        stream: bool,
    ) -> Option<String> {
        Some(match self.serve(kind, dialect)?.path {
            UpstreamPath::Suffix(s) => s.to_owned(),
            UpstreamPath::GeminiGenerate => crate::dialect::gemini::path_for(model, stream),
            UpstreamPath::GeminiAction(action) => {
                crate::dialect::gemini::action_path_for(model, action)
            }
        })
    }

    /// Whether answers are streamed to the client as they come (SSE asked for, or audio).
    pub fn streams(&self, asked: bool) -> bool {
        match self.response {
            ResponseKind::Json => false,
            ResponseKind::JsonOrSse => asked,
            ResponseKind::Binary => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_one_entry_and_paths_are_unique() {
        let all = [
            Endpoint::ChatCompletions,
            Endpoint::Messages,
            Endpoint::Embeddings,
            Endpoint::Responses,
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
            Endpoint::ImageGenerations,
            Endpoint::AudioTranscriptions,
            Endpoint::AudioTranslations,
            Endpoint::AudioSpeech,
        ];
        for e in all {
            assert_eq!(SPECS.iter().filter(|s| s.endpoint == e).count(), 1, "{e:?}");
            assert_eq!(spec(e).endpoint, e);
        }
        let mut paths: Vec<&str> = SPECS.iter().flat_map(|s| s.paths.iter().copied()).collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n, "a path belongs to one endpoint");
    }

    #[test]
    fn classifies_paths_and_methods() {
        let e = |m: &str, p: &str| match classify(m, p) {
            Found::Endpoint(s) => Some(s.endpoint),
            _ => None,
        };
        assert_eq!(
            e("POST", "/v1/audio/transcriptions/"),
            Some(Endpoint::AudioTranscriptions)
        );
        assert_eq!(
            e("POST", "/v1/images/generations"),
            Some(Endpoint::ImageGenerations)
        );
        assert_eq!(e("POST", "/embeddings"), Some(Endpoint::Embeddings));
        assert_eq!(
            classify("GET", "/v1/audio/speech"),
            Found::WrongMethod("POST")
        );
        assert_eq!(classify("POST", "/v1/audio"), Found::Unknown);
        assert_eq!(e("POST", "/responses/"), Some(Endpoint::Responses));
        assert_eq!(
            e("POST", "/v1beta/models/anthropic/claude:generateContent"),
            Some(Endpoint::GenerateContent)
        );
        assert_eq!(
            e("POST", "/v1/models/chat:streamGenerateContent"),
            Some(Endpoint::StreamGenerateContent)
        );
        assert_eq!(
            classify("GET", "/v1beta/models/m:generateContent"),
            Found::WrongMethod("POST")
        );
        assert_eq!(
            classify("POST", "/v1beta/models/:generateContent"),
            Found::Unknown
        );
        assert_eq!(
            classify("POST", "/v1beta/models/m:countTokens"),
            Found::Unknown
        );
    }

    #[test]
    fn providers_and_their_paths() {
        let emb = spec(Endpoint::Embeddings);
        assert_eq!(
            emb.upstream_path(
                ProviderKind::Mistral,
                Dialect::OpenAi,
                "mistral-embed",
                false
            )
            .as_deref(),
            Some("/embeddings")
        );
        assert_eq!(
            emb.upstream_path(
                ProviderKind::GeminiNative,
                Dialect::Gemini,
                "gemini-embedding-001",
                false
            )
            .as_deref(),
            Some("/models/gemini-embedding-001:batchEmbedContents")
        );
        assert!(emb
            .serve(ProviderKind::Anthropic, Dialect::Anthropic)
            .is_none());
        let stt = spec(Endpoint::AudioTranscriptions);
        assert!(stt.serve(ProviderKind::Groq, Dialect::OpenAi).is_some());
        assert!(stt.serve(ProviderKind::Mistral, Dialect::OpenAi).is_none());
        let img = spec(Endpoint::ImageGenerations);
        assert!(img.serve(ProviderKind::Xai, Dialect::OpenAi).is_some());
        assert!(img.serve(ProviderKind::Groq, Dialect::OpenAi).is_none());
        let chat = spec(Endpoint::ChatCompletions);
        assert_eq!(
            chat.upstream_path(ProviderKind::Anthropic, Dialect::Anthropic, "c", false)
                .as_deref(),
            Some("/messages")
        );
        assert!(spec(Endpoint::AudioSpeech).streams(false));
        assert!(!spec(Endpoint::Embeddings).streams(true));
    }

    #[test]
    fn responses_are_native_on_openai_kind_and_translated_elsewhere() {
        let r = spec(Endpoint::Responses);
        let wire = |k: ProviderKind, d| r.wire_dialect(k, d);
        assert_eq!(
            wire(ProviderKind::OpenAi, Dialect::OpenAi),
            Dialect::Responses
        );
        assert_eq!(wire(ProviderKind::Groq, Dialect::OpenAi), Dialect::OpenAi);
        assert_eq!(
            wire(ProviderKind::Anthropic, Dialect::Anthropic),
            Dialect::Anthropic
        );
        let path = |k, d| r.upstream_path(k, d, "m", true);
        assert_eq!(
            path(ProviderKind::OpenAi, Dialect::OpenAi).as_deref(),
            Some("/responses")
        );
        assert_eq!(
            path(ProviderKind::OpenAiCompatible, Dialect::OpenAi).as_deref(),
            Some("/chat/completions")
        );
        assert_eq!(
            path(ProviderKind::GeminiNative, Dialect::Gemini).as_deref(),
            Some("/models/m:streamGenerateContent?alt=sse")
        );
        // Chat never goes to `/responses`, whatever the kind.
        assert_eq!(
            spec(Endpoint::ChatCompletions).wire_dialect(ProviderKind::OpenAi, Dialect::OpenAi),
            Dialect::OpenAi
        );
        let g = spec(Endpoint::StreamGenerateContent);
        assert!(g.model_in_path() && !spec(Endpoint::Messages).model_in_path());
        assert_eq!(
            g.upstream_path(ProviderKind::Anthropic, Dialect::Anthropic, "c", true)
                .as_deref(),
            Some("/messages")
        );
    }
}
