//! Built-in provider presets: where each provider lives, how it authenticates, which dialect it
//! speaks. A config names a preset by `kind` and may override `base_url`.

use super::kind::ProviderKind;
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
    pub kind: ProviderKind,
    /// Base URL up to and including the API version; endpoint paths are appended to it.
    pub base_url: Option<&'static str>,
    pub dialect: Dialect,
    pub auth: AuthStyle,
    /// Whether the provider can be used without any API key (local servers).
    pub keys_optional: bool,
}

const fn openai_like(kind: ProviderKind, base_url: &'static str) -> Preset {
    Preset {
        kind,
        base_url: Some(base_url),
        dialect: Dialect::OpenAi,
        auth: AuthStyle::Bearer,
        keys_optional: false,
    }
}

pub const PRESETS: &[Preset] = &[
    openai_like(ProviderKind::OpenAi, "https://api.openai.com/v1"),
    Preset {
        kind: ProviderKind::Anthropic,
        base_url: Some("https://api.anthropic.com/v1"),
        dialect: Dialect::Anthropic,
        auth: AuthStyle::AnthropicKey,
        keys_optional: false,
    },
    // Gemini native: generateContent / streamGenerateContent, translated through the canonical
    // model (thinking, cached tokens and function calls in Gemini's own terms).
    Preset {
        kind: ProviderKind::GeminiNative,
        base_url: Some("https://generativelanguage.googleapis.com/v1beta"),
        dialect: Dialect::Gemini,
        auth: AuthStyle::GoogleKey,
        keys_optional: false,
    },
    // Gemini through Google's OpenAI-compatible endpoint.
    openai_like(
        ProviderKind::Gemini,
        "https://generativelanguage.googleapis.com/v1beta/openai",
    ),
    openai_like(ProviderKind::Groq, "https://api.groq.com/openai/v1"),
    openai_like(ProviderKind::Cerebras, "https://api.cerebras.ai/v1"),
    openai_like(
        ProviderKind::DeepInfra,
        "https://api.deepinfra.com/v1/openai",
    ),
    openai_like(ProviderKind::Mistral, "https://api.mistral.ai/v1"),
    openai_like(ProviderKind::Xai, "https://api.x.ai/v1"),
    openai_like(ProviderKind::OpenRouter, "https://openrouter.ai/api/v1"),
    Preset {
        kind: ProviderKind::OpenAiCompatible,
        base_url: None,
        dialect: Dialect::OpenAi,
        auth: AuthStyle::Bearer,
        keys_optional: true,
    },
];

/// The version header Anthropic requires; sent when the client did not send its own.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub fn preset(kind: ProviderKind) -> &'static Preset {
    // Every kind has its preset (checked by the test below): the fallback is never taken.
    PRESETS
        .iter()
        .find(|p| p.kind == kind)
        .unwrap_or(&PRESETS[PRESETS.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_but_openai_compatible_has_an_https_base_url() {
        for p in PRESETS {
            match p.base_url {
                Some(url) => assert!(url.starts_with("https://"), "{}", p.kind),
                None => assert_eq!(p.kind, ProviderKind::OpenAiCompatible),
            }
        }
        assert_eq!(preset(ProviderKind::Anthropic).dialect, Dialect::Anthropic);
    }

    #[test]
    fn every_kind_has_exactly_one_preset() {
        for k in ProviderKind::ALL {
            assert_eq!(PRESETS.iter().filter(|p| p.kind == k).count(), 1, "{k}");
            assert_eq!(preset(k).kind, k);
        }
        assert_eq!(PRESETS.len(), ProviderKind::ALL.len());
    }
}
