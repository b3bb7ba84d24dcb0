//! What a model can do, beside what it costs: context window, maximum output, and feature
//! flags (tools, vision, JSON schema, reasoning, prompt caching), plus where it is in its
//! provider's life cycle (deprecated, retired). One [`ModelInfo`] per provider + model, written
//! as a `[[models]]` table next to the model's `[[prices]]` periods.
//!
//! Routing reads these to skip targets that cannot serve a request (too long a prompt, tools
//! or images sent to a model without them); budgets read `max_output_tokens` to reserve for a
//! request that sets no `max_tokens`. Both go through [`PriceBook::capabilities`], which
//! resolves names exactly as price lookups do.
//!
//! [`PriceBook::capabilities`]: super::PriceBook::capabilities

use super::PriceDate;

/// The feature names a `[[models]]` entry may list in `supports`, in display order.
pub const FEATURES: [&str; 5] = [
    "tools",
    "vision",
    "json_schema",
    "reasoning",
    "prompt_caching",
];

/// What one model accepts and produces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Tokens of prompt plus output the model can hold; `None` = not published.
    pub context_window: Option<u32>,
    /// Most output tokens (reasoning included) one call may produce; `None` = not published.
    pub max_output_tokens: Option<u32>,
    /// Function / tool calling.
    pub tools: bool,
    /// Image input.
    pub vision: bool,
    /// A JSON-schema response format enforced by the provider (OpenAI `json_schema`,
    /// Anthropic structured outputs, Gemini `responseSchema`).
    pub json_schema: bool,
    /// Produces reasoning ("thinking") tokens.
    pub reasoning: bool,
    /// The provider caches prompt prefixes and bills cache reads below the input price.
    pub prompt_caching: bool,
}

impl Capabilities {
    /// Whether the named feature (one of [`FEATURES`]) is supported.
    pub fn supports(&self, feature: &str) -> bool {
        match feature {
            "tools" => self.tools,
            "vision" => self.vision,
            "json_schema" => self.json_schema,
            "reasoning" => self.reasoning,
            "prompt_caching" => self.prompt_caching,
            _ => false,
        }
    }

    /// Sets the named feature; `false` if the name is not one of [`FEATURES`].
    pub(super) fn set(&mut self, feature: &str) -> bool {
        let flag = match feature {
            "tools" => &mut self.tools,
            "vision" => &mut self.vision,
            "json_schema" => &mut self.json_schema,
            "reasoning" => &mut self.reasoning,
            "prompt_caching" => &mut self.prompt_caching,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// The supported features, in [`FEATURES`] order.
    pub fn features(&self) -> Vec<&'static str> {
        FEATURES
            .iter()
            .copied()
            .filter(|f| self.supports(f))
            .collect()
    }
}

/// One `[[models]]` entry: a model's capabilities and life cycle, with their provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub provider: String,
    pub model: String,
    pub capabilities: Capabilities,
    /// The provider announced the model's end: new work should move off it.
    pub deprecated: Option<PriceDate>,
    /// The provider stopped (or stops on this date) serving the model. Its prices stay, so
    /// that calls made before keep their cost.
    pub retired: Option<PriceDate>,
    /// Where the figures come from (a provider page, or a public table with commit or date).
    pub source: String,
    /// The day the figures were last checked against `source`.
    pub checked: PriceDate,
    /// Set when sources disagree: what is uncertain and why.
    pub uncertain: Option<String>,
    /// Where this entry was written, as `file:line`.
    pub defined_at: String,
}

/// Where a model is in its provider's life cycle on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Current,
    /// Deprecated since the date (and not yet retired).
    Deprecated {
        since: PriceDate,
    },
    /// Still served, but retirement is announced for the date.
    Retiring {
        on: PriceDate,
    },
    /// No longer served since the date.
    Retired {
        since: PriceDate,
    },
}

impl ModelInfo {
    /// The model's state on `today`. A deprecation date in the future is an announcement, and
    /// counts as deprecated already.
    pub fn lifecycle(&self, today: PriceDate) -> Lifecycle {
        match (self.retired, self.deprecated) {
            (Some(r), _) if r <= today => Lifecycle::Retired { since: r },
            (Some(r), _) => Lifecycle::Retiring { on: r },
            (None, Some(d)) => Lifecycle::Deprecated { since: d },
            (None, None) => Lifecycle::Current,
        }
    }
}

impl Lifecycle {
    /// A sentence for warnings, or `None` for a current model.
    pub fn describe(&self) -> Option<String> {
        match self {
            Lifecycle::Current => None,
            Lifecycle::Deprecated { since } => Some(format!("deprecated upstream since {since}")),
            Lifecycle::Retiring { on } => Some(format!("deprecated upstream and retires on {on}")),
            Lifecycle::Retired { since } => Some(format!("retired upstream since {since}")),
        }
    }
}
