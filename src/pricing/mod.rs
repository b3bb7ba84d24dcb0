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
//! - **Images.** `[[prices.images]]` with `size` and/or `quality` and `price` gives per-image
//!   prices by size and quality ([`ModelPrice::per_image_for`]); `per_image` is the price when
//!   none matches.
//! - **Media.** The shipped list is conf/prices.toml plus conf/prices/media.toml (images,
//!   audio, speech, media embeddings); a media entry replaces a main entry with the same
//!   provider, model and effective date.
//!
//! Not modelled: per-modality input prices (audio tokens), batch and flex/priority discounts, cache storage per hour, and
//! provider-specific rounding of audio seconds (callers pass billed seconds).

mod cost;
mod date;
mod error;
mod images;
mod parse;
#[cfg(test)]
mod tests;

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

/// The shipped price list, compiled in.
pub const BUILTIN_PRICES: &str = include_str!("../../conf/prices.toml");
pub const BUILTIN_PRICES_NAME: &str = "<embedded conf/prices.toml>";
/// The shipped media price list (images, audio, speech, media embeddings), compiled in.
pub const BUILTIN_MEDIA_PRICES: &str = include_str!("../../conf/prices/media.toml");
pub const BUILTIN_MEDIA_PRICES_NAME: &str = "<embedded conf/prices/media.toml>";

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
    /// Where this entry was written, as `file:line`.
    pub source: String,
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
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceBook {
    providers: BTreeMap<String, ProviderPrices>,
}

impl PriceBook {
    /// Parses a prices file; errors name file, line, column and field, like
    /// `conf/prices.toml:12:9: prices[3].input: ...`.
    pub fn parse(file: &str, text: &str) -> Result<PriceBook, PriceError> {
        let entries = parse::parse_entries(file, text)?;
        let mut book = PriceBook::default();
        for entry in entries {
            book.insert(entry);
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

    /// The shipped list (conf/prices.toml and conf/prices/media.toml, embedded). A unit test
    /// guarantees both parse; if one ever did not, the error is logged and its models are
    /// unpriced (never $0).
    pub fn builtin() -> PriceBook {
        let load = |name: &str, text: &str| match PriceBook::parse(name, text) {
            Ok(book) => book,
            Err(e) => {
                log::error!("built-in price list is invalid, its models are unpriced: {e}");
                PriceBook::default()
            }
        };
        load(BUILTIN_PRICES_NAME, BUILTIN_PRICES)
            .with_overrides(load(BUILTIN_MEDIA_PRICES_NAME, BUILTIN_MEDIA_PRICES))
    }

    /// Layers deployment overrides (same format) on top: an override entry for the same
    /// provider+model+effective date replaces it; another date adds a period. Override aliases
    /// replace built-in ones of the same name.
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
