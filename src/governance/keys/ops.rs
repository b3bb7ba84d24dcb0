//! Key operations as the CLI (`switchyard keys ...`) and the admin API offer them: checked
//! against the config (names, model patterns), run on the key store, and listed with their
//! limits and this period's spend (from the ledger). Never a secret in a listing.

use super::store::{KeyError, KeyStore, NewKey, StoredKey};
use crate::config::Config;
use crate::governance::rules::{parse_span, rfc3339, Budget, LogBodies, Period, Rule};
use crate::governance::spend::{self, ScopeColumn};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::Duration;

/// What `keys create` is given (the CLI's flags, the admin API's JSON).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    pub name: String,
    pub models: Option<Vec<String>>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// Exact dollars, e.g. "5" or "12.50".
    pub budget_usd: Option<String>,
    /// day | week | month | total (default: day when a budget is given).
    pub period: Option<String>,
    /// A date (`2027-01-01`, midnight UTC) after which the key stops working.
    pub expires: Option<String>,
    /// Or a lifetime from now: `30d`, `12h`.
    pub ttl: Option<String>,
    /// none | full | redacted.
    pub log_bodies: Option<String>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn invalid(m: impl Into<String>) -> KeyError {
    KeyError::Invalid(m.into())
}

/// Checks a spec against `config` and turns it into a [`NewKey`].
pub fn new_key(config: &Config, spec: &CreateSpec, now_ms: i64) -> Result<NewKey, KeyError> {
    super::store::check_name(&spec.name)?;
    if config.gateway_keys.iter().any(|k| k.name == spec.name) {
        return Err(KeyError::Exists(format!(
            "{} (in the config file)",
            spec.name
        )));
    }
    if let Some(models) = &spec.models {
        for m in models {
            let known = m == "*"
                || config.route(m).is_some()
                || m.split_once('/')
                    .is_some_and(|(p, model)| !model.is_empty() && config.provider(p).is_some());
            if !known {
                return Err(invalid(format!(
                    "model `{m}` names no route and no known provider; write a route name, \
                     provider/model, provider/* or *"
                )));
            }
        }
    }
    let budget = match (&spec.budget_usd, &spec.period) {
        (None, None) => None,
        (None, Some(_)) => return Err(invalid("a period needs a budget (--budget-usd)")),
        (Some(usd), period) => {
            let usd = Decimal::from_str(usd.trim())
                .ok()
                .filter(|d| {
                    *d > Decimal::ZERO
                        && *d <= Decimal::from(crate::governance::rules::MAX_BUDGET_USD)
                })
                .ok_or_else(|| invalid(format!("budget `{usd}` is not an amount like 5.00")))?;
            let period = match period {
                None => Period::Day,
                Some(p) => Period::from_str(p).map_err(invalid)?,
            };
            Some(Budget { usd, period })
        }
    };
    let positive = |v: Option<u64>, what: &str| match v {
        Some(0) => Err(invalid(format!("{what} must be a positive number"))),
        v => Ok(v),
    };
    let expires_ms = match (&spec.expires, &spec.ttl) {
        (Some(_), Some(_)) => return Err(invalid("give --expires or --ttl, not both")),
        (Some(date), None) => {
            let d = crate::pricing::PriceDate::parse(date.trim())
                .ok_or_else(|| invalid(format!("expiry `{date}` is not a date like 2027-01-01")))?;
            Some(d.days_since_epoch() * 86_400_000)
        }
        (None, Some(ttl)) => {
            let d = parse_span(ttl).map_err(invalid)?;
            Some(now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        }
        (None, None) => None,
    };
    if expires_ms.is_some_and(|e| e <= now_ms) {
        return Err(invalid("the expiry is in the past"));
    }
    let log_bodies = spec
        .log_bodies
        .as_deref()
        .map(LogBodies::from_str)
        .transpose()
        .map_err(invalid)?;
    Ok(NewKey {
        name: spec.name.clone(),
        models: spec.models.clone(),
        rule: Rule {
            rpm: positive(spec.rpm, "rpm")?,
            tpm: positive(spec.tpm, "tpm")?,
            budget,
        },
        log_bodies,
        expires_ms,
    })
}

pub fn create(config: &Config, spec: &CreateSpec) -> Result<(String, Value), KeyError> {
    let now = now_ms();
    let key = new_key(config, spec, now)?;
    let mut store = KeyStore::open(&config.ledger.path)?;
    let secret = store.create(&key, now)?;
    let stored = store
        .get(&key.name)?
        .ok_or_else(|| KeyError::NotFound(key.name.clone()))?;
    Ok((secret, describe(config, &stored, now)))
}

pub fn revoke(config: &Config, name: &str) -> Result<(), KeyError> {
    KeyStore::open(&config.ledger.path)?.revoke(name, now_ms())
}

/// Rotates `name`; returns the new secret and when the old one stops working.
pub fn rotate(config: &Config, name: &str, grace: Duration) -> Result<(String, String), KeyError> {
    let now = now_ms();
    let secret = KeyStore::open(&config.ledger.path)?.rotate(name, grace, now)?;
    let until = now.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
    Ok((secret, rfc3339(until)))
}

/// Every key (the config's and the store's) with limits and this period's spend.
pub fn list(config: &Config) -> Result<Vec<Value>, KeyError> {
    let now = now_ms();
    let mut out = Vec::new();
    let ledger = spend::open(&config.ledger.path).map_err(KeyError::Db)?;
    for k in &config.gateway_keys {
        let mut v = rule_json(&k.rule, k.log_bodies, k.models.as_ref());
        v["name"] = json!(k.name);
        v["source"] = json!("config");
        v["status"] = json!("active");
        add_spend(
            &mut v,
            ledger.as_ref(),
            &k.name,
            k.rule.budget.as_ref(),
            now,
        );
        out.push(v);
    }
    let stored = KeyStore::open(&config.ledger.path)?.list()?;
    for k in &stored {
        let mut v = describe(config, k, now);
        add_spend(
            &mut v,
            ledger.as_ref(),
            &k.name,
            k.rule.budget.as_ref(),
            now,
        );
        out.push(v);
    }
    Ok(out)
}

fn rule_json(rule: &Rule, log: Option<LogBodies>, models: Option<&Vec<String>>) -> Value {
    json!({
        "models": models,
        "rpm": rule.rpm,
        "tpm": rule.tpm,
        "budget_usd": rule.budget.as_ref().map(|b| b.usd.to_string()),
        "period": rule.budget.as_ref().map(|b| b.period.as_str()),
        "log_bodies": log.map(LogBodies::as_str),
    })
}

/// A stored key as JSON (no digest, no secret).
pub fn describe(config: &Config, k: &StoredKey, now: i64) -> Value {
    let mut v = rule_json(&k.rule, k.log_bodies, k.models.as_ref());
    let status = if k.revoked_ms.is_some() {
        "revoked"
    } else if k.expires_ms.is_some_and(|e| now >= e) {
        "expired"
    } else if config.gateway_keys.iter().any(|c| c.name == k.name) {
        "shadowed by the config"
    } else {
        "active"
    };
    v["name"] = json!(k.name);
    v["source"] = json!("store");
    v["status"] = json!(status);
    v["created"] = json!(rfc3339(k.created_ms));
    v["expires"] = json!(k.expires_ms.map(rfc3339));
    v["revoked"] = json!(k.revoked_ms.map(rfc3339));
    v["previous_secret_until"] = json!(k
        .previous
        .and_then(|(_, until)| (until > now).then(|| rfc3339(until))));
    v
}

fn add_spend(
    v: &mut Value,
    ledger: Option<&rusqlite::Connection>,
    name: &str,
    budget: Option<&Budget>,
    now: i64,
) {
    let Some(conn) = ledger else {
        v["spent_this_period_usd"] = json!("0");
        return;
    };
    let period = budget.map_or(Period::Day, |b| b.period);
    let (start, end) = period.bounds(now);
    match spend::spent_since(conn, ScopeColumn::Key, name, start) {
        Ok(d) => v["spent_this_period_usd"] = json!(d.normalize().to_string()),
        Err(e) => v["spent_this_period_usd"] = json!(format!("unknown: {e}")),
    }
    v["period_resets"] = json!(end.map(rfc3339));
}

/// One line per key for the CLI's table.
pub fn table(rows: &[Value]) -> String {
    let s = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "{:<20} {:<7} {:<8} {:>6} {:>9} {:>10} {:<6} {:>12} {:<20}\n",
        "NAME", "SOURCE", "STATUS", "RPM", "TPM", "BUDGET", "PERIOD", "SPENT", "EXPIRES"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<20} {:<7} {:<8} {:>6} {:>9} {:>10} {:<6} {:>12} {:<20}\n",
            s(&r["name"]),
            s(&r["source"]),
            s(&r["status"]),
            s(&r["rpm"]),
            s(&r["tpm"]),
            s(&r["budget_usd"]),
            s(&r["period"]),
            s(&r["spent_this_period_usd"]),
            s(&r["expires"]),
        ));
    }
    out
}
