//! The provider kinds a config can name (`kind = "groq"`): one variant per built-in preset.
//! Compared as values, never as strings; the config's spelling is [`ProviderKind::as_str`]
//! (and the serde name).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Gemini's own `generateContent` API.
    #[serde(rename = "gemini-native")]
    GeminiNative,
    /// Gemini through Google's OpenAI-compatible endpoint.
    #[serde(rename = "gemini")]
    Gemini,
    #[serde(rename = "groq")]
    Groq,
    #[serde(rename = "cerebras")]
    Cerebras,
    #[serde(rename = "deepinfra")]
    DeepInfra,
    #[serde(rename = "mistral")]
    Mistral,
    #[serde(rename = "xai")]
    Xai,
    #[serde(rename = "openrouter")]
    OpenRouter,
    /// Any server speaking OpenAI's API at a `base_url` of the config's choosing.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 11] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::GeminiNative,
        ProviderKind::Gemini,
        ProviderKind::Groq,
        ProviderKind::Cerebras,
        ProviderKind::DeepInfra,
        ProviderKind::Mistral,
        ProviderKind::Xai,
        ProviderKind::OpenRouter,
        ProviderKind::OpenAiCompatible,
    ];

    /// The name a config writes (and the serde name).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::GeminiNative => "gemini-native",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Groq => "groq",
            ProviderKind::Cerebras => "cerebras",
            ProviderKind::DeepInfra => "deepinfra",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Xai => "xai",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The `provider` name this kind's models are listed under in the price list: the same
    /// models cost the same through Gemini's native and OpenAI-compatible endpoints.
    pub const fn price_family(self) -> &'static str {
        match self {
            ProviderKind::GeminiNative => ProviderKind::Gemini.as_str(),
            k => k.as_str(),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown kind: the message lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        write!(
            f,
            "unknown provider kind `{}`; expected one of: {}",
            self.0,
            known.join(", ")
        )
    }
}

impl FromStr for ProviderKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_display_and_serde() {
        for k in ProviderKind::ALL {
            assert_eq!(k.as_str().parse::<ProviderKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<ProviderKind>(&json).unwrap(), k);
        }
        let e = "grok".parse::<ProviderKind>().unwrap_err().to_string();
        assert!(
            e.contains("unknown provider kind `grok`") && e.contains("groq"),
            "{e}"
        );
        assert_eq!(ProviderKind::GeminiNative.price_family(), "gemini");
        assert_eq!(ProviderKind::Groq.price_family(), "groq");
    }
}
