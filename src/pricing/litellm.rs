//! `switchyard prices import --litellm FILE`: converts LiteLLM's community price table
//! (`model_prices_and_context_window.json`) into a prices override file.
//!
//! The file is one JSON object keyed by model name (`"gpt-4o"`, `"gemini/gemini-2.5-pro"`,
//! `"openrouter/anthropic/claude-sonnet-4.5"`), plus a `sample_spec` entry describing the
//! schema. Prices are USD per token as JSON numbers (`2.5e-06`); they are read from the
//! number's own text and scaled by 1,000,000 in [`Decimal`], so no binary float ever touches
//! them: `2.5e-06` becomes exactly `"2.50"`.
//!
//! Mapped: `litellm_provider` (only providers with a switchyard preset), `input_cost_per_token`,
//! `output_cost_per_token`, `cache_read_input_token_cost`, `cache_creation_input_token_cost`,
//! their `*_above_<N>k_tokens` variants (long-prompt tiers), `input_cost_per_second`,
//! `input_cost_per_character`, `output_cost_per_image` (or `input_cost_per_image` of an image
//! model), `max_input_tokens`, `max_output_tokens`, the `supports_*` flags for tools, vision,
//! response schema, reasoning and prompt caching, and `deprecation_date`. Everything else that
//! carries a price is listed in the [`Report`], as is every entry that was not converted.

use super::{Capabilities, PriceDate, PriceTier};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// LiteLLM provider names that map to a switchyard preset's price family (same spelling).
const PROVIDERS: &[&str] = &[
    "openai",
    "anthropic",
    "gemini",
    "groq",
    "cerebras",
    "deepinfra",
    "mistral",
    "xai",
    "openrouter",
];

/// How the converted entries are stamped.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// `effective` of every imported period.
    pub effective: PriceDate,
    /// `checked` of every entry (the day the table was read).
    pub checked: PriceDate,
    /// `source` of every entry; the LiteLLM key is appended.
    pub source: String,
    /// Only these providers (switchyard names); empty = every mapped provider.
    pub providers: Vec<String>,
}

/// What the import did and could not do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries converted.
    pub imported: usize,
    /// Entries not converted: (LiteLLM key, reason).
    pub skipped: Vec<(String, String)>,
    /// Priced fields of converted entries that the format cannot hold: field -> keys.
    pub unmapped: BTreeMap<String, Vec<String>>,
    /// Entries of providers left out by `--provider`.
    pub filtered: usize,
}

/// The override file text and the report.
#[derive(Clone, Debug)]
pub struct Import {
    pub toml: String,
    pub report: Report,
}

type Fields = BTreeMap<String, Box<RawValue>>;

/// Converts the text of `model_prices_and_context_window.json`.
pub fn convert(json: &str, opts: &ImportOptions) -> Result<Import, String> {
    let entries: BTreeMap<String, Box<RawValue>> = serde_json::from_str(json)
        .map_err(|e| format!("not a LiteLLM price table (a JSON object of models): {e}"))?;
    let mut report = Report::default();
    let mut converted: BTreeMap<(String, String), Entry> = BTreeMap::new();
    for (key, raw) in &entries {
        if key == "sample_spec" {
            report
                .skipped
                .push((key.clone(), "the file's schema example, not a model".into()));
            continue;
        }
        let fields: Fields = match serde_json::from_str(raw.get()) {
            Ok(f) => f,
            Err(_) => {
                report
                    .skipped
                    .push((key.clone(), "not a JSON object".into()));
                continue;
            }
        };
        let provider = match text(&fields, "litellm_provider") {
            Some(p) if PROVIDERS.contains(&p.as_str()) => p,
            Some(p) => {
                report.skipped.push((
                    key.clone(),
                    format!("provider `{p}` has no switchyard preset"),
                ));
                continue;
            }
            None => {
                report
                    .skipped
                    .push((key.clone(), "no litellm_provider".into()));
                continue;
            }
        };
        if !opts.providers.is_empty() && !opts.providers.contains(&provider) {
            report.filtered += 1;
            continue;
        }
        let model = key
            .strip_prefix(&format!("{provider}/"))
            .unwrap_or(key)
            .to_owned();
        match entry(key, &fields, &mut report) {
            Ok(e) => {
                let slot = (provider.clone(), model);
                if let Some(first) = converted.get(&slot) {
                    report.skipped.push((
                        key.clone(),
                        format!("{}/{} again (already from `{}`)", slot.0, slot.1, first.key),
                    ));
                } else {
                    report.imported += 1;
                    converted.insert(slot, e);
                }
            }
            Err(reason) => report.skipped.push((key.clone(), reason)),
        }
    }
    let mut toml = header(opts, &report);
    for ((provider, model), e) in &converted {
        e.write(&mut toml, provider, model, opts);
    }
    Ok(Import { toml, report })
}

/// One converted model: prices per 1M tokens (or per unit) and capabilities.
struct Entry {
    key: String,
    input: Option<Decimal>,
    output: Option<Decimal>,
    cached_input: Option<Decimal>,
    cache_write: Option<Decimal>,
    /// Long-prompt tiers, prices per token.
    tiers: Vec<PriceTier>,
    per_second: Option<Decimal>,
    per_character: Option<Decimal>,
    per_image: Option<Decimal>,
    capabilities: Capabilities,
    deprecated: Option<PriceDate>,
}

fn entry(key: &str, f: &Fields, report: &mut Report) -> Result<Entry, String> {
    let mode = text(f, "mode").unwrap_or_default();
    let mut used: Vec<String> = Vec::new();
    let mut per_token = |name: &str| -> Result<Option<Decimal>, String> {
        used.push(name.to_owned());
        price(f, name)
    };
    let input = per_token("input_cost_per_token")?;
    let mut output = per_token("output_cost_per_token")?;
    let cached_input = per_token("cache_read_input_token_cost")?;
    let cache_write = per_token("cache_creation_input_token_cost")?;
    if input.is_some() && output.is_none() && mode == "embedding" {
        output = Some(Decimal::ZERO);
    }
    let mut tiers = Vec::new();
    for (threshold, suffix) in tier_suffixes(f) {
        let name = |base: &str| format!("{base}_above_{suffix}_tokens");
        let mut get = |base: &str| -> Result<Option<Decimal>, String> {
            used.push(name(base));
            price(f, &name(base))
        };
        let (ti, to) = (get("input_cost_per_token")?, get("output_cost_per_token")?);
        let (tc, tw) = (
            get("cache_read_input_token_cost")?,
            get("cache_creation_input_token_cost")?,
        );
        match (ti, to) {
            (Some(input), Some(output)) => tiers.push(PriceTier {
                above_input_tokens: threshold,
                input,
                output,
                cached_input: tc,
                cache_write: tw,
            }),
            _ => {
                for (field, v) in [("input_cost_per_token", ti), ("output_cost_per_token", to)] {
                    if v.is_some() {
                        note(report, &name(field), key);
                    }
                }
            }
        }
    }
    used.extend(["input_cost_per_second", "input_cost_per_character"].map(String::from));
    let per_second = price(f, "input_cost_per_second")?;
    let per_character = price(f, "input_cost_per_character")?;
    used.push("output_cost_per_image".into());
    let mut per_image = price(f, "output_cost_per_image")?;
    if per_image.is_none() && mode == "image_generation" {
        used.push("input_cost_per_image".into());
        per_image = price(f, "input_cost_per_image")?;
    }
    let tokens = input.is_some() && output.is_some();
    if !tokens && per_second.is_none() && per_character.is_none() && per_image.is_none() {
        return Err(match (input, output) {
            (Some(_), None) => format!(
                "input_cost_per_token but no output_cost_per_token (mode `{mode}`: its output \
                 is priced per image or audio token, which this format does not model)"
            ),
            _ => format!("no price this format can hold (mode `{mode}`)"),
        });
    }
    if !tokens {
        for (name, v) in [
            ("input_cost_per_token", input),
            ("output_cost_per_token", output),
        ] {
            if v.is_some() {
                note(report, name, key);
            }
        }
    }
    for name in f.keys() {
        if name.contains("cost") && !used.contains(name) && has_price(f, name) {
            note(report, name, key);
        }
    }
    let mut capabilities = Capabilities {
        context_window: token_count(f, "max_input_tokens"),
        max_output_tokens: token_count(f, "max_output_tokens"),
        tools: flag(f, "supports_function_calling"),
        vision: flag(f, "supports_vision"),
        json_schema: flag(f, "supports_response_schema"),
        reasoning: flag(f, "supports_reasoning"),
        prompt_caching: flag(f, "supports_prompt_caching"),
    };
    if let (Some(window), Some(out)) = (capabilities.context_window, capabilities.max_output_tokens)
    {
        if out > window {
            capabilities.context_window = None;
            note(report, "max_input_tokens (below max_output_tokens)", key);
        }
    }
    let deprecated = match text(f, "deprecation_date") {
        Some(d) => match PriceDate::parse(&d) {
            Some(d) => Some(d),
            None => {
                note(report, "deprecation_date (not YYYY-MM-DD)", key);
                None
            }
        },
        None => None,
    };
    Ok(Entry {
        key: key.to_owned(),
        input: input.filter(|_| tokens),
        output: output.filter(|_| tokens),
        cached_input: cached_input.filter(|_| tokens),
        cache_write: cache_write.filter(|_| tokens),
        tiers: if tokens { tiers } else { Vec::new() },
        per_second,
        per_character,
        per_image,
        capabilities,
        deprecated,
    })
}

impl Entry {
    fn write(&self, out: &mut String, provider: &str, model: &str, opts: &ImportOptions) {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let source = q(&format!("{} (key {})", opts.source, self.key));
        let _ = write!(
            out,
            "\n[[prices]]\nprovider = {}\nmodel = {}\neffective = \"{}\"\n",
            q(provider),
            q(model),
            opts.effective
        );
        let prices = [
            ("input", self.input),
            ("output", self.output),
            ("cached_input", self.cached_input),
            ("cache_write", self.cache_write),
        ];
        for (name, v) in prices {
            if let Some(v) = v {
                let _ = writeln!(out, "{name} = \"{}\"", per_million(v));
            }
        }
        let units = [
            ("per_second", self.per_second),
            ("per_character", self.per_character),
            ("per_image", self.per_image),
        ];
        for (name, v) in units {
            if let Some(v) = v {
                let _ = writeln!(out, "{name} = \"{}\"", plain(v));
            }
        }
        let _ = writeln!(out, "source = {source}\nchecked = \"{}\"", opts.checked);
        for t in &self.tiers {
            let _ = write!(
                out,
                "\n[[prices.tiers]]\nabove_input_tokens = {}\ninput = \"{}\"\noutput = \"{}\"\n",
                t.above_input_tokens,
                per_million(t.input),
                per_million(t.output)
            );
            for (name, v) in [
                ("cached_input", t.cached_input),
                ("cache_write", t.cache_write),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(out, "{name} = \"{}\"", per_million(v));
                }
            }
        }
        let c = &self.capabilities;
        let _ = write!(
            out,
            "\n[[models]]\nprovider = {}\nmodel = {}\n",
            q(provider),
            q(model)
        );
        if let Some(n) = c.context_window {
            let _ = writeln!(out, "context_window = {n}");
        }
        if let Some(n) = c.max_output_tokens {
            let _ = writeln!(out, "max_output_tokens = {n}");
        }
        let features: Vec<String> = c.features().iter().map(|f| q(f)).collect();
        let _ = writeln!(out, "supports = [{}]", features.join(", "));
        if let Some(d) = self.deprecated {
            let _ = writeln!(out, "deprecated = \"{d}\"");
        }
        let _ = writeln!(out, "source = {source}\nchecked = \"{}\"", opts.checked);
    }
}

fn header(opts: &ImportOptions, report: &Report) -> String {
    format!(
        "# Prices override converted from LiteLLM's model_prices_and_context_window.json by\n\
         # `switchyard prices import --litellm`: {} models, effective {}.\n\
         # Per-token prices are scaled to USD per 1M tokens exactly. context_window is LiteLLM's\n\
         # max_input_tokens (the prompt limit, which can be below the total window).\n\
         # LiteLLM is a community table, not the providers' own pages: check before relying on it.\n",
        report.imported, opts.effective
    )
}

/// `above_<N>k_tokens` suffixes used by `input_cost_per_token_above_<N>k_tokens`, as
/// (threshold in tokens, "<N>k").
fn tier_suffixes(f: &Fields) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = f
        .keys()
        .filter_map(|k| {
            let rest = k.strip_prefix("input_cost_per_token_above_")?;
            let n = rest.strip_suffix("k_tokens")?;
            let thousands: u64 = n.parse().ok()?;
            Some((thousands.checked_mul(1000)?, format!("{n}k")))
        })
        .collect();
    out.sort();
    out
}

fn note(report: &mut Report, field: &str, key: &str) {
    report
        .unmapped
        .entry(field.to_owned())
        .or_default()
        .push(key.to_owned());
}

fn text(f: &Fields, name: &str) -> Option<String> {
    serde_json::from_str::<String>(f.get(name)?.get()).ok()
}

fn flag(f: &Fields, name: &str) -> bool {
    f.get(name)
        .is_some_and(|v| serde_json::from_str::<bool>(v.get()).unwrap_or(false))
}

/// A positive whole token count (LiteLLM sometimes writes `2000000.0`).
fn token_count(f: &Fields, name: &str) -> Option<u32> {
    use rust_decimal::prelude::ToPrimitive;
    let n = json_decimal(f.get(name)?.get())?;
    if !n.fract().is_zero() {
        return None;
    }
    n.to_u32().filter(|n| *n > 0)
}

/// Whether a field holds a non-zero price (a number; objects of prices count too).
fn has_price(f: &Fields, name: &str) -> bool {
    let Some(v) = f.get(name) else { return false };
    let t = v.get().trim();
    match json_decimal(t) {
        Some(d) => !d.is_zero(),
        None => t.starts_with('{'),
    }
}

/// The price in `name`: absent or `null` is `None`; anything but a non-negative number is an
/// error that skips the entry.
fn price(f: &Fields, name: &str) -> Result<Option<Decimal>, String> {
    let Some(v) = f.get(name) else {
        return Ok(None);
    };
    if v.get().trim() == "null" {
        return Ok(None);
    }
    json_decimal(v.get())
        .map(Some)
        .ok_or_else(|| format!("`{name}` is not a non-negative number: {}", v.get()))
}

/// The exact decimal value of a JSON number's text (`2.5e-06`, `0.00001`, `1E+3`); `None`
/// for anything else or a negative number.
pub fn json_decimal(text: &str) -> Option<Decimal> {
    let t = text.trim();
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let (whole, frac) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    let mut d = Decimal::from_str_exact(mantissa).ok()?;
    if let Some(e) = exponent {
        let (negative, e) = match e.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, e.strip_prefix('+').unwrap_or(e)),
        };
        if !digits(e) {
            return None;
        }
        let e: u32 = e.parse().ok()?;
        if negative {
            let scale = d.scale().checked_add(e)?;
            if scale > 28 {
                return None;
            }
            d.set_scale(scale).ok()?;
        } else {
            for _ in 0..e {
                d = d.checked_mul(Decimal::TEN)?;
            }
        }
    }
    Some(d.normalize())
}

/// A per-token price as USD per 1M tokens, at least two decimal places: 2.5e-06 -> "2.50".
pub fn per_million(per_token: Decimal) -> String {
    let scaled = per_token
        .checked_mul(Decimal::from(1_000_000u32))
        .unwrap_or(per_token);
    plain(scaled)
}

/// A decimal with no trailing zeros beyond two decimal places.
fn plain(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    n.to_string()
}

impl Report {
    /// The report as text: what was imported, what was skipped and why (grouped), and which
    /// priced fields were ignored.
    pub fn to_text(&self) -> String {
        let mut out = format!("imported {} models", self.imported);
        if self.filtered > 0 {
            let _ = write!(
                out,
                " ({} entries of other providers left out)",
                self.filtered
            );
        }
        out.push('\n');
        let mut by_reason: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (key, reason) in &self.skipped {
            let group = if reason.starts_with("provider `") {
                "provider has no switchyard preset".to_owned()
            } else if reason.contains(" again (already from `") {
                "same provider + model as an earlier key".to_owned()
            } else {
                reason.clone()
            };
            by_reason.entry(group).or_default().push(key);
        }
        if !by_reason.is_empty() {
            let _ = writeln!(out, "not converted ({}):", self.skipped.len());
        }
        for (reason, keys) in &by_reason {
            let _ = writeln!(out, "  {} x {reason}: {}", keys.len(), examples(keys));
        }
        if !self.unmapped.is_empty() {
            out.push_str("prices not mapped (the format has no field for them):\n");
        }
        for (field, keys) in &self.unmapped {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let _ = writeln!(out, "  {field}: {} x ({})", keys.len(), examples(&keys));
        }
        out
    }
}

fn examples(keys: &[&str]) -> String {
    const SHOWN: usize = 4;
    let mut s = keys
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        let _ = write!(s, ", ... {} more", keys.len() - SHOWN);
    }
    s
}
