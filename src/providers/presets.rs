//! Built-in provider presets: where each provider lives, how it authenticates, which dialect it
//! speaks. A config names a preset by `kind` and may override `base_url`.

use crate::dialect::Dialect;

/// How a provider expects its API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// `x-api-key: <key>` plus an `anthropic-version` header.
    AnthropicKey,
    /// `x-goog-api-key: <key>` (Gemini native).
    GoogleKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    pub kind: &'static str,
    /// Base URL up to and including the API version; endpoint paths are appended to it.
    pub base_url: Option<&'static str>,
    pub dialect: Dialect,
    pub auth: AuthStyle,
    /// Whether the provider can be used without any API key (local servers).
    pub keys_optional: bool,
}

const fn openai_like(kind: &'static str, base_url: &'static str) -> Preset {
    Preset {
        kind,
        base_url: Some(base_url),
        dialect: Dialect::OpenAi,
        auth: AuthStyle::Bearer,
        keys_optional: false,
    }
}

pub const PRESETS: &[Preset] = &[
    openai_like("openai", "https://api.openai.com/v1"),
    Preset {
        kind: "anthropic",
        base_url: Some("https://api.anthropic.com/v1"),
        dialect: Dialect::Anthropic,
        auth: AuthStyle::AnthropicKey,
        keys_optional: false,
    },
    // Gemini native: generateContent / streamGenerateContent, translated through the canonical
    // model (thinking, cached tokens and function calls in Gemini's own terms).
    Preset {
        kind: "gemini-native",
        base_url: Some("https://generativelanguage.googleapis.com/v1beta"),
        dialect: Dialect::Gemini,
        auth: AuthStyle::GoogleKey,
        keys_optional: false,
    },
    // Gemini through Google's OpenAI-compatible endpoint.
    openai_like(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai",
    ),
    openai_like("groq", "https://api.groq.com/openai/v1"),
    openai_like("cerebras", "https://api.cerebras.ai/v1"),
    openai_like("deepinfra", "https://api.deepinfra.com/v1/openai"),
    openai_like("mistral", "https://api.mistral.ai/v1"),
    openai_like("xai", "https://api.x.ai/v1"),
    openai_like("openrouter", "https://openrouter.ai/api/v1"),
    Preset {
        kind: "openai-compatible",
        base_url: None,
        dialect: Dialect::OpenAi,
        auth: AuthStyle::Bearer,
        keys_optional: true,
    },
];

/// The version header Anthropic requires; sent when the client did not send its own.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub fn preset(kind: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.kind == kind)
}

/// The `provider` name a kind's models are listed under in the price list: the same models
/// cost the same through Gemini's native and OpenAI-compatible endpoints.
pub fn price_family(kind: &'static str) -> &'static str {
    match kind {
        "gemini-native" => "gemini",
        k => k,
    }
}

/// Whether providers of `kind` serve the OpenAI Responses API (`/responses`) themselves, so a
/// Responses client's body passes through unchanged but for the model.
pub fn native_responses(kind: &str) -> bool {
    kind == "openai"
}

pub fn kinds() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_but_openai_compatible_has_an_https_base_url() {
        for p in PRESETS {
            match p.base_url {
                Some(url) => assert!(url.starts_with("https://"), "{}", p.kind),
                None => assert_eq!(p.kind, "openai-compatible"),
            }
        }
        assert_eq!(preset("anthropic").unwrap().dialect, Dialect::Anthropic);
        assert!(preset("grok").is_none());
    }
}
