//! `[[models]]` entries as written: capabilities and life cycle of one provider + model,
//! checked into [`ModelInfo`]. Token counts are positive integers; `supports` lists feature
//! names from [`FEATURES`]; `deprecated` and `retired` are dates.

use super::capabilities::{Capabilities, FEATURES};
use super::error::{Locator, PriceError};
use super::parse::{date, name, provenance, RawProvenance};
use super::{ModelInfo, PriceDate};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::{Spanned, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    provider: Spanned<String>,
    model: Spanned<String>,
    context_window: Option<Spanned<i64>>,
    max_output_tokens: Option<Spanned<i64>>,
    supports: Spanned<Vec<Spanned<String>>>,
    deprecated: Option<Spanned<Value>>,
    retired: Option<Spanned<Value>>,
    source: Option<Spanned<String>>,
    checked: Option<Spanned<Value>>,
    uncertain: Option<Spanned<String>>,
}

/// Checks every `[[models]]` entry; one entry per provider + model.
pub(super) fn parse_models(
    loc: &Locator,
    raw: &[Spanned<RawModel>],
) -> Result<Vec<ModelInfo>, PriceError> {
    let mut out: Vec<ModelInfo> = Vec::with_capacity(raw.len());
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, spanned) in raw.iter().enumerate() {
        let field = format!("models[{i}]");
        let info = model(loc, &field, spanned)?;
        let key = (info.provider.clone(), info.model.clone());
        if let Some(first) = seen.insert(key, i) {
            return Err(loc.error(
                spanned.get_ref().model.span(),
                format!("{field}.model"),
                format!(
                    "{}/{} already has capabilities (models[{first}])",
                    info.provider, info.model
                ),
            ));
        }
        out.push(info);
    }
    Ok(out)
}

fn model(loc: &Locator, field: &str, spanned: &Spanned<RawModel>) -> Result<ModelInfo, PriceError> {
    let raw = spanned.get_ref();
    let provider = name(loc, &raw.provider, &format!("{field}.provider"))?;
    let model = name(loc, &raw.model, &format!("{field}.model"))?;
    let tokens = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u32>, PriceError> {
        v.as_ref()
            .map(|n| {
                u32::try_from(*n.get_ref())
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        loc.error(
                            n.span(),
                            format!("{field}.{key}"),
                            "must be a positive number of tokens (leave it out if unpublished)",
                        )
                    })
            })
            .transpose()
    };
    let mut capabilities = Capabilities {
        context_window: tokens(&raw.context_window, "context_window")?,
        max_output_tokens: tokens(&raw.max_output_tokens, "max_output_tokens")?,
        ..Capabilities::default()
    };
    if let (Some(window), Some(out), Some(span)) = (
        capabilities.context_window,
        capabilities.max_output_tokens,
        raw.max_output_tokens.as_ref().map(Spanned::span),
    ) {
        if out > window {
            return Err(loc.error(
                span,
                format!("{field}.max_output_tokens"),
                format!("{out} is more than the context window ({window})"),
            ));
        }
    }
    for (j, f) in raw.supports.get_ref().iter().enumerate() {
        let key = format!("{field}.supports[{j}]");
        if capabilities.supports(f.get_ref()) {
            return Err(loc.error(f.span(), key, format!("{:?} is listed twice", f.get_ref())));
        }
        if !capabilities.set(f.get_ref()) {
            return Err(loc.error(
                f.span(),
                key,
                format!(
                    "unknown feature {:?}: expected one of {}",
                    f.get_ref(),
                    FEATURES.join(", ")
                ),
            ));
        }
    }
    let when = |v: &Option<Spanned<Value>>, key: &str| -> Result<Option<PriceDate>, PriceError> {
        v.as_ref()
            .map(|v| {
                date(
                    loc,
                    &format!("{field}.{key}"),
                    v,
                    &format!("the date {key}"),
                )
            })
            .transpose()
    };
    let deprecated = when(&raw.deprecated, "deprecated")?;
    let retired = when(&raw.retired, "retired")?;
    if let (Some(d), Some(r), Some(v)) = (deprecated, retired, raw.deprecated.as_ref()) {
        if d > r {
            return Err(loc.error(
                v.span(),
                format!("{field}.deprecated"),
                format!("{d} is after the retirement date {r}"),
            ));
        }
    }
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
    Ok(ModelInfo {
        provider,
        model,
        capabilities,
        deprecated,
        retired,
        source,
        checked,
        uncertain,
        defined_at: format!("{}:{line}", loc.file),
    })
}
