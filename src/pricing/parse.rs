//! The prices file as written: serde structs with spans on every value (unknown fields
//! rejected), then checked into [`ModelPrice`] entries (and, in `parse_models`, `[[models]]`
//! into [`ModelInfo`]). Prices must be TOML strings holding a plain decimal (`"2.50"`): float
//! literals are rejected so that no binary float ever touches money, and integers are rejected
//! too so that there is one way to write a price. Every entry names its `source` and the date
//! it was `checked`.

use super::error::{Locator, PriceError};
use super::{ModelInfo, ModelPrice, PriceDate, PriceTier};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::{Spanned, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    prices: Vec<Spanned<RawPrice>>,
    #[serde(default)]
    models: Vec<Spanned<super::parse_models::RawModel>>,
}

/// Where an entry's figures come from (`source`, `checked`, `uncertain`), as written on every
/// `[[prices]]` and `[[models]]` entry.
pub(super) struct RawProvenance<'a> {
    pub source: &'a Option<Spanned<String>>,
    pub checked: &'a Option<Spanned<Value>>,
    pub uncertain: &'a Option<Spanned<String>>,
}

/// Checked provenance: (source, checked, uncertain).
pub(super) type Provenance = (String, PriceDate, Option<String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    provider: Spanned<String>,
    model: Spanned<String>,
    #[serde(default)]
    aliases: Vec<Spanned<String>>,
    effective: Spanned<Value>,
    input: Option<Spanned<Value>>,
    output: Option<Spanned<Value>>,
    cached_input: Option<Spanned<Value>>,
    cache_write: Option<Spanned<Value>>,
    per_image: Option<Spanned<Value>>,
    per_second: Option<Spanned<Value>>,
    per_character: Option<Spanned<Value>>,
    per_request: Option<Spanned<Value>>,
    #[serde(default)]
    tiers: Vec<Spanned<RawTier>>,
    source: Option<Spanned<String>>,
    checked: Option<Spanned<Value>>,
    uncertain: Option<Spanned<String>>,
    /// Per-image prices by size and quality (`[[prices.images]]`, see `images.rs`).
    #[serde(default)]
    images: Vec<Spanned<super::images::RawImagePrice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    above_input_tokens: Spanned<i64>,
    input: Spanned<Value>,
    output: Spanned<Value>,
    cached_input: Option<Spanned<Value>>,
    cache_write: Option<Spanned<Value>>,
}

/// Parses and checks every entry; rejects duplicates (same provider, model and effective
/// date, or two `[[models]]` for one provider + model) and ambiguous aliases within the file.
pub(super) fn parse_entries(
    file: &str,
    text: &str,
) -> Result<(Vec<ModelPrice>, Vec<ModelInfo>), PriceError> {
    let loc = Locator { file, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| loc.toml_error(&e))?;
    let mut entries = Vec::with_capacity(raw.prices.len());
    for (i, spanned) in raw.prices.iter().enumerate() {
        let field = format!("prices[{i}]");
        entries.push(entry(&loc, &field, spanned)?);
    }
    check_unique(&loc, &raw.prices, &entries)?;
    let models = super::parse_models::parse_models(&loc, &raw.models)?;
    Ok((entries, models))
}

/// A provider, model or alias name: non-empty, no surrounding spaces.
pub(super) fn name(loc: &Locator, s: &Spanned<String>, field: &str) -> Result<String, PriceError> {
    let v = s.get_ref().trim();
    if v.is_empty() || v != s.get_ref() {
        return Err(loc.error(
            s.span(),
            field,
            "must be a non-empty name without surrounding spaces",
        ));
    }
    Ok(v.to_owned())
}

/// `source`, `checked` and `uncertain` of the entry at `span`, named `field`.
pub(super) fn provenance(
    loc: &Locator,
    field: &str,
    span: std::ops::Range<usize>,
    raw: RawProvenance,
) -> Result<Provenance, PriceError> {
    let source = match raw.source {
        Some(s) if !s.get_ref().trim().is_empty() => s.get_ref().trim().to_owned(),
        Some(s) => return Err(loc.error(s.span(), format!("{field}.source"), "must not be empty")),
        None => {
            return Err(loc.error(
                span,
                format!("{field}.source"),
                "missing: every entry names where its figures come from, e.g. source = \
                 \"https://provider.example/pricing\" (the provider's page), a public table with \
                 its commit or date, or your contract",
            ))
        }
    };
    let checked = match raw.checked {
        Some(c) => date(
            loc,
            &format!("{field}.checked"),
            c,
            "the date the source was checked",
        )?,
        None => {
            return Err(loc.error(
                span,
                format!("{field}.checked"),
                "missing: the date the figures were checked against the source, \"YYYY-MM-DD\"",
            ))
        }
    };
    let uncertain = match raw.uncertain {
        Some(u) if u.get_ref().trim().is_empty() => {
            return Err(loc.error(
                u.span(),
                format!("{field}.uncertain"),
                "must say what is uncertain and why",
            ))
        }
        Some(u) => Some(u.get_ref().trim().to_owned()),
        None => None,
    };
    Ok((source, checked, uncertain))
}

fn entry(
    loc: &Locator,
    field: &str,
    spanned: &Spanned<RawPrice>,
) -> Result<ModelPrice, PriceError> {
    let raw = spanned.get_ref();
    let name = |s: &Spanned<String>, key: &str| name(loc, s, &format!("{field}.{key}"));
    let provider = name(&raw.provider, "provider")?;
    let model = name(&raw.model, "model")?;
    let mut aliases = Vec::new();
    for (j, a) in raw.aliases.iter().enumerate() {
        let alias = name(a, &format!("aliases[{j}]"))?;
        if alias == model || aliases.contains(&alias) {
            return Err(loc.error(
                a.span(),
                format!("{field}.aliases[{j}]"),
                format!("alias {alias:?} repeats the model name or another alias"),
            ));
        }
        aliases.push(alias);
    }
    let effective = date(
        loc,
        &format!("{field}.effective"),
        &raw.effective,
        "the date the price took effect",
    )?;

    let p = |v: &Option<Spanned<Value>>, key: &str| -> Result<Option<Decimal>, PriceError> {
        v.as_ref()
            .map(|v| price(loc, &format!("{field}.{key}"), key, v))
            .transpose()
    };
    let input = p(&raw.input, "input")?;
    let output = p(&raw.output, "output")?;
    let cached_input = p(&raw.cached_input, "cached_input")?;
    let cache_write = p(&raw.cache_write, "cache_write")?;
    let per_image = p(&raw.per_image, "per_image")?;
    let per_second = p(&raw.per_second, "per_second")?;
    let per_character = p(&raw.per_character, "per_character")?;
    let per_request = p(&raw.per_request, "per_request")?;

    let here = || loc.error(spanned.span(), field, "");
    let fail = |message: &str| PriceError {
        message: message.to_owned(),
        ..here()
    };
    match (input.is_some(), output.is_some()) {
        (true, false) => return Err(fail("`input` is set but `output` is not: set both (\"0\" if the model produces no output tokens)")),
        (false, true) => return Err(fail("`output` is set but `input` is not: set both")),
        _ => {}
    }
    if input.is_none() && (cached_input.is_some() || cache_write.is_some() || !raw.tiers.is_empty())
    {
        return Err(fail(
            "`cached_input`, `cache_write` and `tiers` need the token prices `input` and `output`",
        ));
    }
    let images = super::images::parse(loc, field, &raw.images)?;
    if input.is_none()
        && images.is_empty()
        && per_image.is_none()
        && per_second.is_none()
        && per_character.is_none()
        && per_request.is_none()
    {
        return Err(fail(
            "no price: set `input` and `output`, or a per-unit price \
             (`per_image` or `[[prices.images]]`, `per_second`, `per_character`, `per_request`)",
        ));
    }

    let mut tiers: Vec<PriceTier> = Vec::with_capacity(raw.tiers.len());
    for (j, t) in raw.tiers.iter().enumerate() {
        let tf = format!("{field}.tiers[{j}]");
        let rt = t.get_ref();
        let above = u64::try_from(*rt.above_input_tokens.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                loc.error(
                    rt.above_input_tokens.span(),
                    format!("{tf}.above_input_tokens"),
                    "must be a positive number of tokens",
                )
            })?;
        if tiers.iter().any(|x| x.above_input_tokens == above) {
            return Err(loc.error(
                rt.above_input_tokens.span(),
                format!("{tf}.above_input_tokens"),
                format!("another tier already starts above {above} tokens"),
            ));
        }
        let tp = |v: &Spanned<Value>, key: &str| price(loc, &format!("{tf}.{key}"), key, v);
        let topt =
            |v: &Option<Spanned<Value>>, key: &str| v.as_ref().map(|v| tp(v, key)).transpose();
        tiers.push(PriceTier {
            above_input_tokens: above,
            input: tp(&rt.input, "input")?,
            output: tp(&rt.output, "output")?,
            cached_input: topt(&rt.cached_input, "cached_input")?,
            cache_write: topt(&rt.cache_write, "cache_write")?,
        });
    }
    tiers.sort_by_key(|t| t.above_input_tokens);
    let (source, checked, uncertain) = provenance(
        loc,
        field,
        spanned.span(),
        RawProvenance {
            source: &raw.source,
            checked: &raw.checked,
            uncertain: &raw.uncertain,
        },
    )?;

    let (line, _) = loc.line_col(spanned.span().start);
    Ok(ModelPrice {
        provider,
        model,
        aliases,
        effective,
        input,
        output,
        cached_input,
        cache_write,
        tiers,
        per_image,
        images,
        per_second,
        per_character,
        per_request,
        source,
        checked,
        uncertain,
        defined_at: format!("{}:{line}", loc.file),
    })
}

/// A price: a TOML string holding a plain non-negative decimal.
pub(super) fn price(
    loc: &Locator,
    field: &str,
    key: &str,
    v: &Spanned<Value>,
) -> Result<Decimal, PriceError> {
    let err = |message: String| loc.error(v.span(), field, message);
    match v.get_ref() {
        Value::String(s) => parse_decimal(s).ok_or_else(|| {
            err(format!(
                "{s:?} is not a price: write a plain non-negative decimal in USD, e.g. \"2.50\""
            ))
        }),
        Value::Float(_) => Err(err(format!(
            "float literal rejected: prices are strings so they stay exact; write {key} = \"{}\"",
            loc.snippet(v.span())
        ))),
        Value::Integer(_) => Err(err(format!(
            "prices are written as strings; write {key} = \"{}\"",
            loc.snippet(v.span())
        ))),
        other => Err(err(format!(
            "expected a price as a decimal string, e.g. \"2.50\", found {}",
            other.type_str()
        ))),
    }
}

/// `digits` or `digits.digits`, nothing else (no sign, exponent, spaces or separators).
pub(super) fn parse_decimal(s: &str) -> Option<Decimal> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str_exact(s).ok()
}

/// A date: `"YYYY-MM-DD"` or a bare TOML date `YYYY-MM-DD`; `what` names it in errors.
pub(super) fn date(
    loc: &Locator,
    field: &str,
    v: &Spanned<Value>,
    what: &str,
) -> Result<PriceDate, PriceError> {
    let parsed = match v.get_ref() {
        Value::String(s) => PriceDate::parse(s),
        Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.date.and_then(|d| {
            PriceDate::from_ymd(i64::from(d.year), u32::from(d.month), u32::from(d.day))
        }),
        _ => None,
    };
    parsed.ok_or_else(|| {
        loc.error(
            v.span(),
            field,
            format!(
                "expected {what}, \"YYYY-MM-DD\", found {}",
                loc.snippet(v.span())
            ),
        )
    })
}

/// No two entries for the same provider+model+date; an alias belongs to one model of its
/// provider and is not itself a model name of that provider.
fn check_unique(
    loc: &Locator,
    raw: &[Spanned<RawPrice>],
    entries: &[ModelPrice],
) -> Result<(), PriceError> {
    let mut seen: BTreeMap<(&str, &str, PriceDate), usize> = BTreeMap::new();
    let mut owner: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = seen.insert((&e.provider, &e.model, e.effective), i) {
            return Err(loc.error(
                raw[i].get_ref().effective.span(),
                format!("prices[{i}].effective"),
                format!(
                    "{}/{} already has a price effective {} (prices[{first}])",
                    e.provider, e.model, e.effective
                ),
            ));
        }
        owner.insert((&e.provider, &e.model), &e.model);
    }
    for (i, e) in entries.iter().enumerate() {
        for (j, alias) in e.aliases.iter().enumerate() {
            let span = raw[i].get_ref().aliases[j].span();
            let field = format!("prices[{i}].aliases[{j}]");
            match owner.insert((&e.provider, alias), &e.model) {
                Some(m) if m == alias => {
                    return Err(loc.error(
                        span,
                        field,
                        format!("{}/{alias} is priced as a model of its own", e.provider),
                    ))
                }
                Some(m) if m != e.model => {
                    return Err(loc.error(
                        span,
                        field,
                        format!("alias {alias:?} is already an alias of {}/{m}", e.provider),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
