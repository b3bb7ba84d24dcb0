//! Prices: what each call costs, exactly as the provider bills it.
//!
//! A [`PriceBook`] holds list prices in USD per million tokens (plus optional per-unit prices
//! for images, audio seconds, characters and requests), keyed by provider and model, each with
//! the date it took effect. Money is [`Decimal`] throughout: prices are written as TOML
//! *strings* (`input = "2.50"`) and a float literal is rejected, so no binary float ever
//! touches a price. Costs are exact (`tokens × price / 1_000_000`), never rounded when stored;
//! [`Cost::round_to_microdollars`] is for display only.
//!
//! Rules:
//! - **Periods.** Each `[[prices]]` entry has an `effective = "YYYY-MM-DD"` date; a price is in
//!   force from 00:00 UTC that day until the next period of the same provider+model starts.
//!   [`PriceBook::lookup`] picks the entry with the latest `effective <= at`.
//! - **Provider names.** Entries are keyed by provider name as written (the shipped file uses
//!   preset kinds: `openai`, `anthropic`, ...). [`PriceBook::lookup_for`] / [`PriceBook::cost_for`]
//!   take several names in order, e.g. `&["groq-eu", "groq"]` (configured name, then preset
//!   kind), so a renamed provider still gets its kind's prices unless it has its own.
//! - **Aliases.** `aliases = ["gpt-4o-2024-11-20"]` prices an explicit list of other model
//!   names (dated snapshots) as this model, in every period. An exact model name always wins
//!   over an alias. No fuzzy or prefix matching.
//! - **Cache.** A missing `cached_input` price charges cache reads at the `input` price; a
//!   missing `cache_write` price charges cache writes at the `input` price.
//! - **Reasoning.** [`Usage::output`] already includes reasoning tokens; `reasoning` is never
//!   charged again.
//! - **Tiers.** `[[prices.tiers]]` with `above_input_tokens = N` gives prices that apply to the
//!   *whole* call when its prompt (input + cached_input + cache_write) exceeds N tokens (Gemini
//!   2.5 Pro above 200k, Claude Sonnet long context). The highest tier exceeded applies; a
//!   tier's missing cache prices fall back to that tier's `input` price.
//! - **Unpriced is never $0.** No entry, or a quantity with no price (tokens sent to a
//!   per-image model, images to a token model), gives `None`; the caller applies
//!   [`UnpricedPolicy`].
//!
//! - **Provenance.** Every period names its `source` (the provider's page, or a public table
//!   with its commit or date) and the date it was `checked`; `uncertain` says why a figure is
//!   in doubt when sources disagree.
//! - **Capabilities.** `[[models]]` entries give each model's context window, maximum output,
//!   features and life cycle ([`ModelInfo`]), looked up by [`PriceBook::capabilities`] with the
//!   same name resolution as prices.
//!
//! - **Images.** `[[prices.images]]` with `size` and/or `quality` and `price` gives per-image
//!   prices by size and quality ([`ModelPrice::per_image_for`]); `per_image` is the price when
//!   none matches.
//!
//! Not modelled: per-modality input prices (audio tokens), batch and flex/priority discounts, cache storage per hour, and
//! provider-specific rounding of audio seconds (callers pass billed seconds).
//!
//! The shipped list is `conf/prices/*.toml` (one file per provider, format in
//! `conf/prices/README.md`), compiled in. `switchyard prices list | check | import` (see
//! [`commands`]) shows it, checks a config's targets against it, and converts LiteLLM's table
//! into an override file ([`litellm`]).

mod capabilities;
pub mod commands;
mod cost;
mod date;
mod error;
mod images;
pub mod litellm;
mod parse;
mod parse_models;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_capabilities;
#[cfg(test)]
mod tests_litellm;
#[cfg(test)]
mod tests_shipped;

pub use capabilities::{Capabilities, Lifecycle, ModelInfo, FEATURES};
pub use cost::{Cost, Units};
pub use date::PriceDate;
pub use error::PriceError;
pub use images::ImagePrice;

use crate::usage::Usage;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

macro_rules! builtin_file {
    ($provider:literal) => {
        (
            concat!("<embedded conf/prices/", $provider, ".toml>"),
            include_str!(concat!("../../conf/prices/", $provider, ".toml")),
        )
    };
}

/// The shipped price list, compiled in: (name for errors, text), one file per provider.
pub const BUILTIN_PRICES: &[(&str, &str)] = &[
    builtin_file!("openai"),
    builtin_file!("anthropic"),
    builtin_file!("gemini"),
    builtin_file!("groq"),
    builtin_file!("cerebras"),
    builtin_file!("deepinfra"),
    builtin_file!("mistral"),
    builtin_file!("xai"),
    builtin_file!("openrouter"),
];

/// One price period of one provider+model. Prices are USD per million tokens, or USD per unit
/// for the `per_*` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    pub provider: String,
    pub model: String,
    /// Other model names priced as this one (explicit, exact).
    pub aliases: Vec<String>,
    /// First day (UTC) this price is in force.
    pub effective: PriceDate,
    /// Input and output come together: both set or both unset.
    pub input: Option<Decimal>,
    pub output: Option<Decimal>,
    /// Cache reads; `None` = charged at `input`.
    pub cached_input: Option<Decimal>,
    /// Cache writes; `None` = charged at `input`.
    pub cache_write: Option<Decimal>,
    /// Long-prompt tiers, sorted by `above_input_tokens` ascending.
    pub tiers: Vec<PriceTier>,
    pub per_image: Option<Decimal>,
    /// Per-image prices by size and quality; [`ModelPrice::per_image_for`] picks one, falling
    /// back to `per_image`.
    pub images: Vec<ImagePrice>,
    pub per_second: Option<Decimal>,
    pub per_character: Option<Decimal>,
    /// Charged once per call, on top of everything else.
    pub per_request: Option<Decimal>,
    /// Where the figures come from: the provider's pricing page, or a public table with its
    /// commit or date.
    pub source: String,
    /// The day the figures were last checked against `source`.
    pub checked: PriceDate,
    /// Set when sources disagree: which figure is in doubt and why.
    pub uncertain: Option<String>,
    /// Where this entry was written, as `file:line`.
    pub defined_at: String,
}

/// Token prices that replace the base ones for the whole call when the prompt exceeds
/// `above_input_tokens`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTier {
    pub above_input_tokens: u64,
    pub input: Decimal,
    pub output: Decimal,
    pub cached_input: Option<Decimal>,
    pub cache_write: Option<Decimal>,
}

/// All prices of one provider name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ProviderPrices {
    /// model -> periods, sorted by `effective` ascending, no two with the same date.
    models: BTreeMap<String, Vec<ModelPrice>>,
    /// alias -> model.
    aliases: BTreeMap<String, String>,
    /// model -> capabilities and life cycle (`[[models]]`).
    info: BTreeMap<String, ModelInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceBook {
    providers: BTreeMap<String, ProviderPrices>,
}

impl PriceBook {
    /// Parses a prices file; errors name file, line, column and field, like
    /// `conf/prices/openai.toml:12:9: prices[3].input: ...`.
    pub fn parse(file: &str, text: &str) -> Result<PriceBook, PriceError> {
        let (entries, models) = parse::parse_entries(file, text)?;
        let mut book = PriceBook::default();
        for entry in entries {
            book.insert(entry);
        }
        for info in models {
            book.providers
                .entry(info.provider.clone())
                .or_default()
                .info
                .insert(info.model.clone(), info);
        }
        Ok(book)
    }

    /// Parses the shipped files ([`BUILTIN_PRICES`]); each file holds one provider, so no
    /// entry of one can collide with another's.
    pub fn parse_builtin() -> Result<PriceBook, PriceError> {
        let mut book = PriceBook::default();
        for (name, text) in BUILTIN_PRICES {
            book = book.with_overrides(PriceBook::parse(name, text)?);
        }
        Ok(book)
    }

    /// Reads and parses a prices file from disk.
    pub fn load(path: &Path) -> Result<PriceBook, PriceError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PriceError {
            file: file.clone(),
            line: 0,
            column: 0,
            field: "(file)".to_owned(),
            message: format!("cannot read: {e}"),
        })?;
        PriceBook::parse(&file, &text)
    }

    /// The shipped list (conf/prices/*.toml, embedded). A unit test guarantees it parses; if it
    /// ever did not, the error is logged and the book is empty, so every call is unpriced
    /// (never $0).
    pub fn builtin() -> PriceBook {
        match PriceBook::parse_builtin() {
            Ok(book) => book,
            Err(e) => {
                log::error!("built-in price list is invalid, all models unpriced: {e}");
                PriceBook::default()
            }
        }
    }

    /// Layers deployment overrides (same format) on top: an override entry for the same
    /// provider+model+effective date replaces it; another date adds a period. Override aliases
    /// replace built-in ones of the same name, and an override `[[models]]` entry replaces the
    /// built-in one of the same provider + model.
    pub fn with_overrides(mut self, overrides: PriceBook) -> PriceBook {
        for (provider, theirs) in overrides.providers {
            let ours = self.providers.entry(provider.clone()).or_default();
            for (model, periods) in theirs.models {
                let slot = ours.models.entry(model).or_default();
                for period in periods {
                    match slot.iter_mut().find(|p| p.effective == period.effective) {
                        Some(existing) => *existing = period,
                        None => slot.push(period),
                    }
                }
                slot.sort_by_key(|p| p.effective);
            }
            for (alias, model) in theirs.aliases {
                if ours.models.contains_key(&alias) {
                    log::warn!(
                        "price override alias {provider}/{alias} -> {model} is shadowed by \
                         a model priced under that exact name"
                    );
                }
                ours.aliases.insert(alias, model);
            }
            ours.info.extend(theirs.info);
        }
        self
    }

    /// The price in force for provider/model on date `at`: the entry with the latest
    /// `effective <= at`. `model` may be an exact model name or an alias.
    pub fn lookup(&self, provider: &str, model: &str, at: PriceDate) -> Option<&ModelPrice> {
        let prices = self.providers.get(provider)?;
        let periods = match prices.models.get(model) {
            Some(periods) => periods,
            None => prices.models.get(prices.aliases.get(model)?)?,
        };
        periods.iter().rev().find(|p| p.effective <= at)
    }

    /// Like [`lookup`](Self::lookup), trying each provider name in order (e.g. the configured
    /// name, then the preset kind); the first name with a price in force wins.
    pub fn lookup_for(
        &self,
        providers: &[&str],
        model: &str,
        at: PriceDate,
    ) -> Option<&ModelPrice> {
        providers.iter().find_map(|p| self.lookup(p, model, at))
    }

    /// The canonical model name of `model` at `provider`: itself if priced or described under
    /// that exact name, else the model it is an alias of.
    fn resolve<'a>(prices: &'a ProviderPrices, model: &'a str) -> &'a str {
        if prices.models.contains_key(model) || prices.info.contains_key(model) {
            return model;
        }
        prices.aliases.get(model).map_or(model, String::as_str)
    }

    /// The `[[models]]` entry for provider/model (an exact name or an alias).
    pub fn model_info(&self, provider: &str, model: &str) -> Option<&ModelInfo> {
        let prices = self.providers.get(provider)?;
        prices.info.get(Self::resolve(prices, model))
    }

    /// Like [`model_info`](Self::model_info), trying each provider name in order.
    pub fn model_info_for(&self, providers: &[&str], model: &str) -> Option<&ModelInfo> {
        providers.iter().find_map(|p| self.model_info(p, model))
    }

    /// What `model` at a configured provider can do, resolved as prices are: the provider's
    /// configured name first, then its preset kind's price family; exact model names, then
    /// aliases. `None` = no capabilities known (unlike prices, not a reason to refuse).
    pub fn capabilities(
        &self,
        provider: &crate::config::ProviderConfig,
        model: &str,
    ) -> Option<&Capabilities> {
        self.capabilities_for(&provider_names(provider), model)
    }

    /// [`capabilities`](Self::capabilities) by provider names, tried in order.
    pub fn capabilities_for(&self, providers: &[&str], model: &str) -> Option<&Capabilities> {
        self.model_info_for(providers, model)
            .map(|i| &i.capabilities)
    }

    /// Every `[[models]]` entry, ordered by provider, then model.
    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.providers.values().flat_map(|p| p.info.values())
    }

    /// Every price period of one canonical model (not an alias), oldest first.
    pub fn periods(&self, provider: &str, model: &str) -> &[ModelPrice] {
        self.providers
            .get(provider)
            .and_then(|p| p.models.get(model))
            .map_or(&[], Vec::as_slice)
    }

    /// Cost of one token-billed call. `None` = unpriced (the caller decides, per
    /// [`UnpricedPolicy`], whether to reject or record the cost as unknown).
    pub fn cost(&self, provider: &str, model: &str, at: PriceDate, usage: &Usage) -> Option<Cost> {
        self.lookup(provider, model, at)?.cost(usage)
    }

    /// [`cost`](Self::cost) with provider-name fallback, as in [`lookup_for`](Self::lookup_for).
    pub fn cost_for(
        &self,
        providers: &[&str],
        model: &str,
        at: PriceDate,
        usage: &Usage,
    ) -> Option<Cost> {
        self.lookup_for(providers, model, at)?.cost(usage)
    }

    /// Cost of one call billed by tokens and/or units (images, audio seconds, characters).
    pub fn cost_with_units(
        &self,
        providers: &[&str],
        model: &str,
        at: PriceDate,
        usage: &Usage,
        units: &Units,
    ) -> Option<Cost> {
        self.lookup_for(providers, model, at)?
            .cost_with_units(usage, units)
    }

    /// Every price period, ordered by provider, model, then effective date.
    pub fn entries(&self) -> impl Iterator<Item = &ModelPrice> {
        self.providers
            .values()
            .flat_map(|p| p.models.values())
            .flatten()
    }

    pub fn len(&self) -> usize {
        self.entries().count()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.values().all(|p| p.models.is_empty())
    }

    /// Adds one entry; the parser has already rejected duplicates and alias conflicts.
    fn insert(&mut self, entry: ModelPrice) {
        let prices = self.providers.entry(entry.provider.clone()).or_default();
        for alias in &entry.aliases {
            prices.aliases.insert(alias.clone(), entry.model.clone());
        }
        let periods = prices.models.entry(entry.model.clone()).or_default();
        periods.push(entry);
        periods.sort_by_key(|p| p.effective);
    }
}

/// The names a configured provider's prices and capabilities are listed under, in the order
/// they are tried: its configured name, then its preset kind's price family.
pub fn provider_names(provider: &crate::config::ProviderConfig) -> [&str; 2] {
    [&provider.name, provider.kind.price_family()]
}

/// What to do with a call whose cost cannot be computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpricedPolicy {
    /// Refuse calls to models with no price (before sending them upstream, where possible).
    #[default]
    Reject,
    /// Let the call through and record its cost as unknown (never as $0).
    RecordUnknown,
}

impl UnpricedPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            UnpricedPolicy::Reject => "reject",
            UnpricedPolicy::RecordUnknown => "record_unknown",
        }
    }
}

impl FromStr for UnpricedPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reject" => Ok(UnpricedPolicy::Reject),
            "record_unknown" => Ok(UnpricedPolicy::RecordUnknown),
            other => Err(format!(
                "unknown unpriced policy {other:?}: expected \"reject\" or \"record_unknown\""
            )),
        }
    }
}

impl fmt::Display for UnpricedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
