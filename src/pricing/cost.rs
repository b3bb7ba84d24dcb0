//! The cost of one call: token counts and units times the prices of one [`ModelPrice`]
//! period, kept exact. Any quantity with no price makes the whole call unpriced (`None`).

use super::{ModelPrice, PriceDate};
use crate::usage::Usage;
use rust_decimal::{Decimal, RoundingStrategy};

/// Non-token quantities of one call, for models billed per unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// Images generated (`per_image`).
    pub images: u64,
    /// Audio seconds as the provider bills them, rounding already applied (`per_second`).
    pub seconds: u64,
    /// Characters of input text, e.g. for text-to-speech (`per_character`).
    pub characters: u64,
}

impl Units {
    fn is_zero(&self) -> bool {
        self.images == 0 && self.seconds == 0 && self.characters == 0
    }
}

/// The exact cost of one call in USD; `total` is the sum of every other money field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub total: Decimal,
    pub input: Decimal,
    pub output: Decimal,
    pub cached_input: Decimal,
    pub cache_write: Decimal,
    /// Images + audio seconds + characters.
    pub units: Decimal,
    /// The fixed per-request price, if any.
    pub request: Decimal,
    /// The `effective` date of the price period used.
    pub price_effective: PriceDate,
    /// `above_input_tokens` of the long-prompt tier applied, if any.
    pub tier: Option<u64>,
}

impl Cost {
    /// Every money field rounded to 6 decimal places (micro-dollars), half away from zero,
    /// for display. Store the exact value; the rounded total may differ from the sum of the
    /// rounded parts.
    pub fn round_to_microdollars(&self) -> Cost {
        let r = |d: Decimal| d.round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero);
        Cost {
            total: r(self.total),
            input: r(self.input),
            output: r(self.output),
            cached_input: r(self.cached_input),
            cache_write: r(self.cache_write),
            units: r(self.units),
            request: r(self.request),
            ..*self
        }
    }
}

/// Token prices in force for one call (base or a tier).
struct Rates {
    input: Decimal,
    output: Decimal,
    cached_input: Decimal,
    cache_write: Decimal,
    tier: Option<u64>,
}

impl ModelPrice {
    /// Cost of a token-billed call at this period's prices.
    pub fn cost(&self, usage: &Usage) -> Option<Cost> {
        self.cost_with_units(usage, &Units::default())
    }

    /// Cost of a call billed by tokens and/or units. `None` when any non-zero quantity has no
    /// price here, or when nothing this model is priced by was given (a per-image model asked
    /// for a cost with no images) — unpriced, never $0.
    pub fn cost_with_units(&self, usage: &Usage, units: &Units) -> Option<Cost> {
        let has_tokens =
            usage.input > 0 || usage.output > 0 || usage.cached_input > 0 || usage.cache_write > 0;
        let rates = self.rates(usage);
        if rates.is_none() && (has_tokens || (units.is_zero() && self.per_request.is_none())) {
            return None;
        }
        let (input, output, cached_input, cache_write, tier) = match &rates {
            Some(r) => (
                per_million(usage.input, r.input)?,
                per_million(usage.output, r.output)?,
                per_million(usage.cached_input, r.cached_input)?,
                per_million(usage.cache_write, r.cache_write)?,
                r.tier,
            ),
            None => (
                Decimal::ZERO,
                Decimal::ZERO,
                Decimal::ZERO,
                Decimal::ZERO,
                None,
            ),
        };
        let units_cost = per_unit(units.images, self.per_image)?
            .checked_add(per_unit(units.seconds, self.per_second)?)?
            .checked_add(per_unit(units.characters, self.per_character)?)?;
        let request = self.per_request.unwrap_or(Decimal::ZERO);
        let total = [output, cached_input, cache_write, units_cost, request]
            .into_iter()
            .try_fold(input, |acc, x| acc.checked_add(x))?;
        Some(Cost {
            total,
            input,
            output,
            cached_input,
            cache_write,
            units: units_cost,
            request,
            price_effective: self.effective,
            tier,
        })
    }

    /// The token rates for this call's prompt size, if this model is priced by tokens.
    fn rates(&self, usage: &Usage) -> Option<Rates> {
        let (input, output) = (self.input?, self.output?);
        let prompt = usage
            .input
            .saturating_add(usage.cached_input)
            .saturating_add(usage.cache_write);
        match self
            .tiers
            .iter()
            .rev()
            .find(|t| prompt > t.above_input_tokens)
        {
            Some(t) => Some(Rates {
                input: t.input,
                output: t.output,
                cached_input: t.cached_input.unwrap_or(t.input),
                cache_write: t.cache_write.unwrap_or(t.input),
                tier: Some(t.above_input_tokens),
            }),
            None => Some(Rates {
                input,
                output,
                cached_input: self.cached_input.unwrap_or(input),
                cache_write: self.cache_write.unwrap_or(input),
                tier: None,
            }),
        }
    }
}

/// `tokens × price / 1_000_000`, exact: the division only moves the decimal point.
fn per_million(tokens: u64, price: Decimal) -> Option<Decimal> {
    let Some(mut product) = Decimal::from(tokens).checked_mul(price) else {
        log::warn!("cost overflow: {tokens} tokens at {price} per million");
        return None;
    };
    let scale = product.scale() + 6;
    if scale <= 28 && product.set_scale(scale).is_ok() {
        Some(product)
    } else {
        product.checked_div(Decimal::from(1_000_000u32))
    }
}

/// `count × price`; a non-zero count with no price is unpriced.
fn per_unit(count: u64, price: Option<Decimal>) -> Option<Decimal> {
    match (count, price) {
        (0, _) => Some(Decimal::ZERO),
        (_, None) => None,
        (n, Some(p)) => Decimal::from(n).checked_mul(p),
    }
}
