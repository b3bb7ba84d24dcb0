//! `[[experiments]]`: A/B experiments on a route, validated into [`ExperimentConfig`].
//!
//! ```toml
//! [[experiments]]
//! name = "support-answers"
//! route = "support"                  # requests for this route are split between the variants
//! sticky = "header:x-user-id"        # or "key" (gateway key), or "metadata:user_id"
//! variants = [
//!   { name = "mini",  target = "openai/gpt-4o-mini", weight = 1 },
//!   # TOML 1.0 keeps an inline table on one line; `[[experiments.variants]]` tables work too
//!   { name = "haiku", target = "anthropic/claude-haiku-4-5", weight = 1, system = "You are a concise support agent.", params = { temperature = 0.2 } },
//! ]
//! promote = "off"                    # or "when_decided"
//! max_cost_increase = "10%"          # promotion guards (optional)
//! max_p95_increase = "20%"
//! alpha = 0.05                       # error rate of the decision
//! [experiments.judge]
//! target = "openai/gpt-4o"
//! rubric = "Score how well the answer resolves the user's request."
//! sample = 0.2
//! mode = "score"                     # score (1-10) | pairwise
//! max_concurrency = 4
//! queue = 256                        # judged samples waiting; a full queue skips (counted)
//! ```

use super::error::{ConfigError, Locator};
use super::{ProviderConfig, RouteConfig, Target};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    pub name: Spanned<String>,
    pub route: Spanned<String>,
    pub sticky: Option<Spanned<String>>,
    pub variants: Vec<Spanned<RawVariant>>,
    pub judge: Option<Spanned<RawJudge>>,
    pub promote: Option<Spanned<String>>,
    pub max_cost_increase: Option<Spanned<String>>,
    pub max_p95_increase: Option<Spanned<String>>,
    pub alpha: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    pub name: Spanned<String>,
    pub target: Spanned<String>,
    pub weight: Option<Spanned<i64>>,
    pub system: Option<Spanned<String>>,
    pub params: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJudge {
    pub target: Spanned<String>,
    pub rubric: Spanned<String>,
    pub sample: Option<Spanned<f64>>,
    pub mode: Option<Spanned<String>>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub queue: Option<Spanned<i64>>,
}

/// How requests are tied to a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// The value of this request header (lower case).
    Header(String),
    /// The gateway key's name.
    Key,
    /// OpenAI `metadata.<name>` or Anthropic `metadata.<name>` in the body.
    Metadata(String),
    /// None: every request is assigned on its own.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgeMode {
    /// The judge scores one answer from 1 to 10.
    Score,
    /// The judge compares the served answer with the other variant's (a shadow call).
    Pairwise,
}

impl JudgeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeMode::Score => "score",
            JudgeMode::Pairwise => "pairwise",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promote {
    Off,
    WhenDecided,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantConfig {
    pub name: String,
    pub target: Target,
    pub weight: u32,
    /// Prepended to the client's system instructions.
    pub system: Option<String>,
    /// Top-level request fields set over the client's (e.g. `temperature`).
    pub params: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JudgeConfig {
    pub target: Target,
    pub rubric: String,
    /// Share of the experiment's requests judged, in [0, 1].
    pub sample: f64,
    pub mode: JudgeMode,
    pub max_concurrency: usize,
    /// Judged samples waiting for a worker.
    pub queue: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentConfig {
    pub name: String,
    pub route: String,
    pub sticky: Sticky,
    pub variants: Vec<VariantConfig>,
    pub judge: Option<JudgeConfig>,
    pub promote: Promote,
    /// Promotion guard: most the leader's cost per request may exceed another variant's, %.
    pub max_cost_increase: Option<f64>,
    /// Promotion guard: most the leader's p95 latency may exceed another variant's, %.
    pub max_p95_increase: Option<f64>,
    /// The decision's error rate (probability of ever declaring a false winner).
    pub alpha: f64,
}

impl ExperimentConfig {
    pub fn variant(&self, name: &str) -> Option<&VariantConfig> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// Request fields a variant's `params` may not set: they are the request's identity.
const RESERVED_PARAMS: &[&str] = &["model", "messages", "stream", "stream_options", "system"];

/// A `provider/model` target of a known provider.
fn target(
    loc: &Locator<'_>,
    t: &Spanned<String>,
    field: &str,
    providers: &[ProviderConfig],
) -> Result<Target, ConfigError> {
    let (pname, model) = t
        .get_ref()
        .split_once('/')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        .ok_or_else(|| {
            loc.error(
                t.span(),
                field,
                format!("`{}` must be written provider/model", t.get_ref()),
            )
        })?;
    let provider = providers
        .iter()
        .position(|p| p.name == pname)
        .ok_or_else(|| loc.error(t.span(), field, format!("no provider named `{pname}`")))?;
    Ok(Target {
        provider,
        model: model.to_owned(),
    })
}

/// `"10%"` -> 10.0.
fn percent(loc: &Locator<'_>, s: &Spanned<String>, field: &str) -> Result<f64, ConfigError> {
    s.get_ref()
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0 && *n <= 10_000.0)
        .ok_or_else(|| {
            loc.error(
                s.span(),
                field,
                format!("`{}` is not a percentage like \"10%\"", s.get_ref()),
            )
        })
}

fn sticky(
    loc: &Locator<'_>,
    s: Option<&Spanned<String>>,
    field: &str,
) -> Result<Sticky, ConfigError> {
    let Some(s) = s else { return Ok(Sticky::None) };
    let v = s.get_ref().trim();
    let bad = || {
        loc.error(
            s.span(),
            field,
            format!("`{v}`: expected \"key\", \"header:NAME\" or \"metadata:NAME\""),
        )
    };
    if v == "key" {
        return Ok(Sticky::Key);
    }
    if let Some(h) = v.strip_prefix("header:") {
        let h = h.trim().to_ascii_lowercase();
        if h.is_empty() || http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            return Err(bad());
        }
        return Ok(Sticky::Header(h));
    }
    if let Some(m) = v.strip_prefix("metadata:") {
        let m = m.trim();
        if m.is_empty() {
            return Err(bad());
        }
        return Ok(Sticky::Metadata(m.to_owned()));
    }
    Err(bad())
}

fn variant(
    loc: &Locator<'_>,
    v: &RawVariant,
    field: &str,
    providers: &[ProviderConfig],
) -> Result<VariantConfig, ConfigError> {
    let name = super::validate::name(loc, &v.name, &format!("{field}.name"))?;
    let target = target(loc, &v.target, &format!("{field}.target"), providers)?;
    let weight = match &v.weight {
        None => 1,
        Some(w) => u32::try_from(*w.get_ref())
            .ok()
            .filter(|w| *w <= 1_000_000)
            .ok_or_else(|| {
                loc.error(
                    w.span(),
                    format!("{field}.weight"),
                    "a weight is a whole number from 0 to 1000000",
                )
            })?,
    };
    let mut params = serde_json::Map::new();
    if let Some(p) = &v.params {
        for (k, val) in p.get_ref() {
            if RESERVED_PARAMS.contains(&k.as_str()) {
                return Err(loc.error(
                    p.span(),
                    format!("{field}.params.{k}"),
                    format!("`{k}` cannot be set by a variant (use `target` and `system`)"),
                ));
            }
            let json = serde_json::to_value(val)
                .map_err(|e| loc.error(p.span(), format!("{field}.params.{k}"), e.to_string()))?;
            params.insert(k.clone(), json);
        }
    }
    Ok(VariantConfig {
        name,
        target,
        weight,
        system: v.system.as_ref().map(|s| s.get_ref().clone()),
        params,
    })
}

fn judge(
    loc: &Locator<'_>,
    j: &RawJudge,
    field: &str,
    providers: &[ProviderConfig],
    variants: usize,
) -> Result<JudgeConfig, ConfigError> {
    let target = target(loc, &j.target, &format!("{field}.target"), providers)?;
    if j.rubric.get_ref().trim().is_empty() {
        return Err(loc.error(
            j.rubric.span(),
            format!("{field}.rubric"),
            "must not be empty",
        ));
    }
    let sample = match &j.sample {
        None => 1.0,
        Some(s) => {
            let v = *s.get_ref();
            if !(0.0..=1.0).contains(&v) {
                return Err(loc.error(
                    s.span(),
                    format!("{field}.sample"),
                    "a share from 0 to 1 (0.2 judges a fifth of the requests)",
                ));
            }
            v
        }
    };
    let mode = match j.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("score") => JudgeMode::Score,
        Some("pairwise") => JudgeMode::Pairwise,
        Some(other) => {
            let span = j.mode.as_ref().map_or(0..0, Spanned::span);
            return Err(loc.error(
                span,
                format!("{field}.mode"),
                format!("`{other}`: expected \"score\" or \"pairwise\""),
            ));
        }
    };
    if mode == JudgeMode::Pairwise && variants != 2 {
        let span = j.mode.as_ref().map_or(0..0, Spanned::span);
        return Err(loc.error(
            span,
            format!("{field}.mode"),
            format!("pairwise judging compares two variants; this experiment has {variants}"),
        ));
    }
    let bounded = |n: &Option<Spanned<i64>>, what: &str, default: usize, max: usize| match n {
        None => Ok(default),
        Some(n) => usize::try_from(*n.get_ref())
            .ok()
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| {
                loc.error(
                    n.span(),
                    format!("{field}.{what}"),
                    format!("a whole number from 1 to {max}"),
                )
            }),
    };
    Ok(JudgeConfig {
        target,
        rubric: j.rubric.get_ref().trim().to_owned(),
        sample,
        mode,
        max_concurrency: bounded(&j.max_concurrency, "max_concurrency", 4, 256)?,
        queue: bounded(&j.queue, "queue", 256, 100_000)?,
    })
}

/// Validates every `[[experiments]]` entry against the providers and routes.
pub(super) fn experiments(
    loc: &Locator<'_>,
    raw: &[Spanned<RawExperiment>],
    providers: &[ProviderConfig],
    routes: &[RouteConfig],
) -> Result<Vec<ExperimentConfig>, ConfigError> {
    let mut out: Vec<ExperimentConfig> = Vec::with_capacity(raw.len());
    let mut by_route: BTreeMap<String, String> = BTreeMap::new();
    for (i, e) in raw.iter().enumerate() {
        let field = format!("experiments[{i}]");
        let e = e.get_ref();
        let name = super::validate::name(loc, &e.name, &format!("{field}.name"))?;
        if out.iter().any(|x| x.name == name) {
            return Err(loc.error(
                e.name.span(),
                format!("{field}.name"),
                format!("duplicate experiment name `{name}`"),
            ));
        }
        let route = e.route.get_ref().trim().to_owned();
        if !routes.iter().any(|r| r.name == route) {
            return Err(loc.error(
                e.route.span(),
                format!("{field}.route"),
                format!("no route named `{route}`"),
            ));
        }
        if routes.iter().any(|r| r.name == route && r.cache.is_some()) {
            // The cache keys on the request, not on the variant: variants would share answers.
            return Err(loc.error(
                e.route.span(),
                format!("{field}.route"),
                format!("route `{route}` caches answers; an experiment's route must not"),
            ));
        }
        if let Some(other) = by_route.insert(route.clone(), name.clone()) {
            return Err(loc.error(
                e.route.span(),
                format!("{field}.route"),
                format!("route `{route}` already has the experiment `{other}`"),
            ));
        }
        let sticky = sticky(loc, e.sticky.as_ref(), &format!("{field}.sticky"))?;
        if e.variants.len() < 2 {
            return Err(loc.error(
                e.name.span(),
                format!("{field}.variants"),
                "an experiment needs at least two variants",
            ));
        }
        let mut variants: Vec<VariantConfig> = Vec::with_capacity(e.variants.len());
        for (j, v) in e.variants.iter().enumerate() {
            let vfield = format!("{field}.variants[{j}]");
            let var = variant(loc, v.get_ref(), &vfield, providers)?;
            if variants.iter().any(|x| x.name == var.name) {
                return Err(loc.error(
                    v.get_ref().name.span(),
                    format!("{vfield}.name"),
                    format!("duplicate variant name `{}`", var.name),
                ));
            }
            variants.push(var);
        }
        if variants.iter().all(|v| v.weight == 0) {
            return Err(loc.error(
                e.name.span(),
                format!("{field}.variants"),
                "at least one variant needs a weight above 0",
            ));
        }
        let judge = match &e.judge {
            None => None,
            Some(j) => Some(judge(
                loc,
                j.get_ref(),
                &format!("{field}.judge"),
                providers,
                variants.len(),
            )?),
        };
        let promote = match e.promote.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("off") => Promote::Off,
            Some("when_decided") => Promote::WhenDecided,
            Some(other) => {
                let span = e.promote.as_ref().map_or(0..0, Spanned::span);
                return Err(loc.error(
                    span,
                    format!("{field}.promote"),
                    format!("`{other}`: expected \"off\" or \"when_decided\""),
                ));
            }
        };
        let max_cost_increase = e
            .max_cost_increase
            .as_ref()
            .map(|s| percent(loc, s, &format!("{field}.max_cost_increase")))
            .transpose()?;
        let max_p95_increase = e
            .max_p95_increase
            .as_ref()
            .map(|s| percent(loc, s, &format!("{field}.max_p95_increase")))
            .transpose()?;
        let alpha = match &e.alpha {
            None => 0.05,
            Some(a) if *a.get_ref() > 0.0 && *a.get_ref() <= 0.2 => *a.get_ref(),
            Some(a) => {
                return Err(loc.error(
                    a.span(),
                    format!("{field}.alpha"),
                    "an error rate above 0 and at most 0.2 (e.g. 0.05)",
                ))
            }
        };
        out.push(ExperimentConfig {
            name,
            route,
            sticky,
            variants,
            judge,
            promote,
            max_cost_increase,
            max_p95_increase,
            alpha,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = r#"
[[providers]]
name = "openai"
kind = "openai"
api_keys = ["sk-x"]
[[providers]]
name = "anthropic"
kind = "anthropic"
api_keys = ["sk-y"]
[[routes]]
name = "support"
targets = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
"#;

    fn parse(extra: &str) -> Result<Config, String> {
        let text = format!("{BASE}{extra}");
        Config::parse("x.toml", &text, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse(
            r#"
[[experiments]]
name = "support-answers"
route = "support"
sticky = "header:x-user-id"
variants = [
  { name = "mini",  target = "openai/gpt-4o-mini", weight = 1 },
  { name = "haiku", target = "anthropic/claude-haiku-4-5", weight = 1, system = "You are a concise support agent.", params = { temperature = 0.2 } },
]
promote = "when_decided"
max_cost_increase = "10%"
[experiments.judge]
target = "openai/gpt-4o"
rubric = "Score how well the answer resolves the user's request."
sample = 0.2
mode = "score"
max_concurrency = 4
"#,
        )
        .unwrap();
        let e = &c.experiments[0];
        assert_eq!(e.sticky, super::Sticky::Header("x-user-id".into()));
        assert_eq!(e.variants[1].params["temperature"], serde_json::json!(0.2));
        assert_eq!(e.judge.as_ref().unwrap().sample, 0.2);
        assert_eq!(e.promote, super::Promote::WhenDecided);
        assert_eq!(e.max_cost_increase, Some(10.0));
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let bad = r#"
[[experiments]]
name = "x"
route = "nope"
variants = [{ name = "a", target = "openai/a" }, { name = "b", target = "openai/b" }]
"#;
        let e = parse(bad).unwrap_err();
        assert!(e.starts_with("x.toml:16:9: experiments[0].route:"), "{e}");
        let unknown = r#"
[[experiments]]
name = "x"
route = "support"
colour = "red"
variants = [{ name = "a", target = "openai/a" }, { name = "b", target = "openai/b" }]
"#;
        let e = parse(unknown).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let params = r#"
[[experiments]]
name = "x"
route = "support"
variants = [{ name = "a", target = "openai/a", params = { model = "y" } }, { name = "b", target = "openai/b" }]
"#;
        let e = parse(params).unwrap_err();
        assert!(e.contains("experiments[0].variants[0].params.model"), "{e}");
        let pairwise = r#"
[[experiments]]
name = "x"
route = "support"
variants = [{ name = "a", target = "openai/a" }, { name = "b", target = "openai/b" }, { name = "c", target = "openai/c" }]
judge = { target = "openai/j", rubric = "r", mode = "pairwise" }
"#;
        let e = parse(pairwise).unwrap_err();
        assert!(e.contains("experiments[0].judge.mode"), "{e}");
        let sample = r#"
[[experiments]]
name = "x"
route = "support"
variants = [{ name = "a", target = "openai/a" }, { name = "b", target = "openai/b" }]
judge = { target = "openai/j", rubric = "r", sample = 1.5 }
"#;
        assert!(parse(sample)
            .unwrap_err()
            .contains("experiments[0].judge.sample"));
    }
}
