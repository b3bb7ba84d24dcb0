//! Governance settings: per-key and per-feature limits (`rpm`, `tpm`, `budget`), `[limits]`
//! (where they are counted), `[[features]]`, the body-logging rule (`log_bodies` on keys and
//! routes) and `[logging]` (retention, redaction patterns). Raw forms and their validation.

use super::error::{ConfigError, Locator};
use super::raw::RawSize;
use super::units::parse_size;
use crate::governance::limits::OnStoreError;
use crate::governance::rules::{Budget, LogBodies, Period, Rule, MAX_BUDGET_USD};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

/// `budget = { usd = "25.00", period = "day" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Exact dollars: a string such as "25.00" (or a whole number).
    pub usd: Spanned<RawMoney>,
    /// day | week | month | total (calendar periods in UTC).
    pub period: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawMoney {
    Int(i64),
    Text(String),
    Float(f64),
}

/// `[limits]`: where limits are counted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// "memory" (default) or "redis://host:port/db".
    pub store: Option<Spanned<String>>,
    /// "fail_closed" (default) or "local".
    pub on_store_error: Option<Spanned<String>>,
    /// Share of each limit an instance may use alone while the store is away, e.g. "10%".
    pub local_lease: Option<Spanned<String>>,
    /// Longest wait for the store per call, e.g. "250ms".
    pub store_timeout: Option<Spanned<String>>,
    /// How long a reservation holds in a shared store if its instance never settles it.
    pub reservation_ttl: Option<Spanned<String>>,
    /// The most output tokens reserved when a request gives no `max_tokens` and the model's
    /// own maximum is unknown.
    pub max_output_tokens: Option<Spanned<i64>>,
}

/// `[[features]]`: limits on a feature tag (`x-switchyard-feature`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeature {
    pub name: Spanned<String>,
    pub rpm: Option<Spanned<i64>>,
    pub tpm: Option<Spanned<i64>>,
    pub budget: Option<Spanned<RawBudget>>,
}

/// `[logging]`: where kept bodies go and what is redacted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    /// How long kept bodies stay in the ledger store, e.g. "30d".
    pub retention: Option<Spanned<String>>,
    /// Bytes kept of each body, e.g. "1MiB" (the rest is cut, and marked so).
    pub max_body_size: Option<Spanned<RawSize>>,
    /// Extra patterns replaced by `[REDACTED:<name>]` in `redacted` mode.
    #[serde(default)]
    pub redact: Vec<Spanned<RawRedact>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedact {
    pub name: Spanned<String>,
    /// A regular expression (Rust `regex` syntax).
    pub pattern: Spanned<String>,
}

/// Where limits are counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LimitStore {
    #[default]
    Memory,
    Redis(String),
}

#[derive(Debug, Clone)]
pub struct LimitsSettings {
    pub store: LimitStore,
    pub on_store_error: OnStoreError,
    pub local_lease: Decimal,
    pub store_timeout: Duration,
    pub reservation_ttl: Duration,
    pub max_output_tokens: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            store: LimitStore::Memory,
            on_store_error: OnStoreError::FailClosed,
            local_lease: Decimal::new(10, 2),
            store_timeout: Duration::from_millis(250),
            reservation_ttl: Duration::from_secs(3600),
            max_output_tokens: 4096,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FeatureConfig {
    pub name: String,
    pub rule: Rule,
}

#[derive(Debug, Clone)]
pub struct LoggingSettings {
    pub retention: Duration,
    pub max_body_size: usize,
    /// (name, pattern), compiled.
    pub redact: Vec<(String, regex::Regex)>,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            retention: Duration::from_secs(30 * 86_400),
            max_body_size: 1 << 20,
            redact: Vec::new(),
        }
    }
}

fn count(loc: &Locator<'_>, n: &Spanned<i64>, field: &str) -> Result<u64, ConfigError> {
    u64::try_from(*n.get_ref())
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| loc.error(n.span(), field, "must be a positive number"))
}

fn duration(loc: &Locator<'_>, s: &Spanned<String>, field: &str) -> Result<Duration, ConfigError> {
    let d = crate::governance::rules::parse_span(s.get_ref())
        .map_err(|m| loc.error(s.span(), field, m))?;
    if d.is_zero() {
        return Err(loc.error(s.span(), field, "must be longer than 0"));
    }
    Ok(d)
}

pub fn budget(
    loc: &Locator<'_>,
    b: &Spanned<RawBudget>,
    field: &str,
) -> Result<Budget, ConfigError> {
    let raw = b.get_ref();
    let usd_field = format!("{field}.usd");
    let usd = match raw.usd.get_ref() {
        RawMoney::Int(n) => Decimal::from(*n),
        RawMoney::Text(t) => Decimal::from_str(t.trim()).map_err(|_| {
            loc.error(
                raw.usd.span(),
                &usd_field,
                format!("`{t}` is not an amount like \"25.00\""),
            )
        })?,
        RawMoney::Float(f) => {
            return Err(loc.error(
                raw.usd.span(),
                &usd_field,
                format!("write money as a string, e.g. usd = \"{f}\" (exact, not a float)"),
            ))
        }
    };
    if usd <= Decimal::ZERO || usd > Decimal::from(MAX_BUDGET_USD) {
        return Err(loc.error(
            raw.usd.span(),
            &usd_field,
            format!("must be more than 0 and at most {MAX_BUDGET_USD}"),
        ));
    }
    let period = Period::from_str(raw.period.get_ref())
        .map_err(|m| loc.error(raw.period.span(), format!("{field}.period"), m))?;
    Ok(Budget { usd, period })
}

/// `rpm`, `tpm` and `budget` of a key or feature at `field`.
pub fn rule(
    loc: &Locator<'_>,
    rpm: Option<&Spanned<i64>>,
    tpm: Option<&Spanned<i64>>,
    b: Option<&Spanned<RawBudget>>,
    field: &str,
) -> Result<Rule, ConfigError> {
    Ok(Rule {
        rpm: rpm
            .map(|n| count(loc, n, &format!("{field}.rpm")))
            .transpose()?,
        tpm: tpm
            .map(|n| count(loc, n, &format!("{field}.tpm")))
            .transpose()?,
        budget: b
            .map(|b| budget(loc, b, &format!("{field}.budget")))
            .transpose()?,
    })
}

pub fn log_bodies(
    loc: &Locator<'_>,
    v: Option<&Spanned<String>>,
    field: &str,
) -> Result<Option<LogBodies>, ConfigError> {
    v.map(|s| LogBodies::from_str(s.get_ref()).map_err(|m| loc.error(s.span(), field, m)))
        .transpose()
}

pub fn limits(loc: &Locator<'_>, l: Option<&RawLimits>) -> Result<LimitsSettings, ConfigError> {
    let mut out = LimitsSettings::default();
    let Some(l) = l else {
        return Ok(out);
    };
    if let Some(s) = &l.store {
        let v = s.get_ref().trim();
        out.store = if v == "memory" {
            LimitStore::Memory
        } else if v.starts_with("redis://") {
            redis::Client::open(v).map_err(|e| {
                loc.error(
                    s.span(),
                    "limits.store",
                    format!("not a usable redis URL: {e}"),
                )
            })?;
            LimitStore::Redis(v.to_owned())
        } else {
            return Err(loc.error(
                s.span(),
                "limits.store",
                "expected \"memory\" or a URL like \"redis://127.0.0.1:6379/0\"",
            ));
        };
    }
    if let Some(s) = &l.on_store_error {
        out.on_store_error = match s.get_ref().trim() {
            "fail_closed" => OnStoreError::FailClosed,
            "local" => OnStoreError::Local,
            _ => {
                return Err(loc.error(
                    s.span(),
                    "limits.on_store_error",
                    "expected \"fail_closed\" or \"local\"",
                ))
            }
        };
    }
    if let Some(s) = &l.local_lease {
        let share = s
            .get_ref()
            .trim()
            .strip_suffix('%')
            .and_then(|p| Decimal::from_str(p.trim()).ok())
            .map(|p| p / Decimal::from(100))
            .filter(|p| *p > Decimal::ZERO && *p <= Decimal::ONE);
        out.local_lease = share.ok_or_else(|| {
            loc.error(
                s.span(),
                "limits.local_lease",
                "expected a share such as \"10%\" (more than 0%, at most 100%)",
            )
        })?;
    }
    if let Some(s) = &l.store_timeout {
        out.store_timeout = duration(loc, s, "limits.store_timeout")?;
    }
    if let Some(s) = &l.reservation_ttl {
        out.reservation_ttl = duration(loc, s, "limits.reservation_ttl")?;
    }
    if let Some(n) = &l.max_output_tokens {
        let v = count(loc, n, "limits.max_output_tokens")?;
        out.max_output_tokens = u32::try_from(v)
            .map_err(|_| loc.error(n.span(), "limits.max_output_tokens", "too large"))?;
    }
    Ok(out)
}

pub fn features(
    loc: &Locator<'_>,
    raw: &[Spanned<RawFeature>],
) -> Result<Vec<FeatureConfig>, ConfigError> {
    let mut out: Vec<FeatureConfig> = Vec::with_capacity(raw.len());
    for (i, f) in raw.iter().enumerate() {
        let field = format!("features[{i}]");
        let f = f.get_ref();
        let name = super::validate::name(loc, &f.name, &format!("{field}.name"))?;
        if name.chars().count() > 64 {
            return Err(loc.error(
                f.name.span(),
                format!("{field}.name"),
                "a feature tag is at most 64 characters",
            ));
        }
        if out.iter().any(|g| g.name == name) {
            return Err(loc.error(
                f.name.span(),
                format!("{field}.name"),
                format!("duplicate feature `{name}`"),
            ));
        }
        let rule = rule(
            loc,
            f.rpm.as_ref(),
            f.tpm.as_ref(),
            f.budget.as_ref(),
            &field,
        )?;
        if rule.is_empty() {
            return Err(loc.error(
                f.name.span(),
                &field,
                format!("feature `{name}` sets no limit: give it rpm, tpm or budget"),
            ));
        }
        out.push(FeatureConfig { name, rule });
    }
    Ok(out)
}

pub fn logging(loc: &Locator<'_>, l: Option<&RawLogging>) -> Result<LoggingSettings, ConfigError> {
    let mut out = LoggingSettings::default();
    let Some(l) = l else {
        return Ok(out);
    };
    if let Some(s) = &l.retention {
        out.retention = duration(loc, s, "logging.retention")?;
    }
    if let Some(s) = &l.max_body_size {
        out.max_body_size = match s.get_ref() {
            RawSize::Bytes(n) => usize::try_from(*n).map_err(|_| "must not be negative".to_owned()),
            RawSize::Text(t) => parse_size(t),
        }
        .map_err(|m| loc.error(s.span(), "logging.max_body_size", m))?;
    }
    for (i, r) in l.redact.iter().enumerate() {
        let field = format!("logging.redact[{i}]");
        let r = r.get_ref();
        let name = super::validate::name(loc, &r.name, &format!("{field}.name"))?;
        let re = regex::Regex::new(r.pattern.get_ref()).map_err(|e| {
            loc.error(
                r.pattern.span(),
                format!("{field}.pattern"),
                format!("not a valid regular expression: {e}"),
            )
        })?;
        if re.is_match("") {
            return Err(loc.error(
                r.pattern.span(),
                format!("{field}.pattern"),
                "matches the empty string: it would redact nothing useful",
            ));
        }
        out.redact.push((name, re));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LimitStore};
    use crate::governance::limits::OnStoreError;

    fn err(text: &str) -> String {
        Config::parse("g.toml", text, &|_| None)
            .unwrap_err()
            .to_string()
    }

    const KEY: &str = "[[gateway_keys]]\nname = \"a\"\nkey = \"sk-sy-aaaaaaaa\"\n";

    #[test]
    fn bad_governance_settings_name_file_line_and_field() {
        let e = err(&format!(
            "{KEY}budget = {{ usd = 2.5, period = \"day\" }}\n"
        ));
        assert!(
            e.starts_with("g.toml:4:") && e.contains("gateway_keys[0].budget.usd"),
            "{e}"
        );
        let e = err(&format!(
            "{KEY}budget = {{ usd = \"5\", period = \"year\" }}\n"
        ));
        assert!(
            e.starts_with("g.toml:4:") && e.contains("budget.period"),
            "{e}"
        );
        let e = err(&format!("{KEY}rpm = 0\n"));
        assert!(
            e.starts_with("g.toml:4:") && e.contains("gateway_keys[0].rpm"),
            "{e}"
        );
        let e = err(&format!("{KEY}log_bodies = \"some\"\n"));
        assert!(e.contains("gateway_keys[0].log_bodies"), "{e}");
        let e = err(&format!("{KEY}rmp = 5\n"));
        assert!(e.starts_with("g.toml:4:") && e.contains("rmp"), "{e}");
        let e = err("[limits]\nstore = \"postgres://x\"\n");
        assert!(
            e.starts_with("g.toml:2:") && e.contains("limits.store"),
            "{e}"
        );
        let e = err("[limits]\nlocal_lease = \"150%\"\n");
        assert!(e.contains("limits.local_lease"), "{e}");
        let e = err("[[features]]\nname = \"search\"\n");
        assert!(
            e.starts_with("g.toml:2:") && e.contains("sets no limit"),
            "{e}"
        );
        let e = err("[logging]\nredact = [{ name = \"x\", pattern = \"(\" }]\n");
        assert!(e.contains("logging.redact[0].pattern"), "{e}");
    }

    #[test]
    fn governance_settings_parse() {
        let c = Config::parse(
            "g.toml",
            &format!(
                "{KEY}rpm = 60\ntpm = 200000\nbudget = {{ usd = \"25.00\", period = \"week\" }}\n\
                 log_bodies = \"redacted\"\n[limits]\nstore = \"redis://127.0.0.1:6379/0\"\n\
                 on_store_error = \"local\"\nlocal_lease = \"5%\"\n[logging]\nretention = \"7d\"\n\
                 [[features]]\nname = \"search\"\ntpm = 10\n"
            ),
            &|_| None,
        )
        .unwrap();
        let k = &c.gateway_keys[0];
        assert_eq!((k.rule.rpm, k.rule.tpm), (Some(60), Some(200_000)));
        assert_eq!(k.rule.budget.as_ref().unwrap().usd.to_string(), "25.00");
        assert_eq!(
            c.limits.store,
            LimitStore::Redis("redis://127.0.0.1:6379/0".into())
        );
        assert_eq!(c.limits.on_store_error, OnStoreError::Local);
        assert_eq!(c.limits.local_lease.to_string(), "0.05");
        assert_eq!(c.logging.retention.as_secs(), 7 * 86_400);
        assert_eq!(c.feature("search").unwrap().rule.tpm, Some(10));
        assert!(c.has_limits());
    }
}
