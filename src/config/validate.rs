//! Raw config -> validated [`Config`]. Each check points at the span of the value at fault.

use super::error::Locator;
use super::raw::{RawConfig, RawGatewayKey, RawProvider, RawRoute, RawServer, RawSize};
use super::secret::{self, Secret};
use super::units::parse_size;
use super::*;
use crate::duration::{parse_bounded, Bound};
use crate::providers::presets;
use toml::Spanned;

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn validate(file: &str, text: &str, lookup: Lookup<'_>) -> Result<Config, ConfigError> {
    let loc = Locator { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| loc.toml_error(&e))?;
    let mut warnings = Vec::new();

    let server = server(&loc, raw.server)?;
    let mock = match raw.mock {
        None => None,
        Some(m) => Some(MockSettings {
            listen: socket_addr(&loc, &m.listen, "mock.listen")?,
            ttft: duration_or(
                &loc,
                m.ttft.as_ref(),
                "mock.ttft",
                Duration::ZERO,
                Bound::Request,
            )?,
            itl: duration_or(
                &loc,
                m.itl.as_ref(),
                "mock.itl",
                Duration::ZERO,
                Bound::Request,
            )?,
            tokens: match m.tokens {
                None => 16,
                Some(t) => positive(&loc, &t, "mock.tokens")?,
            },
        }),
    };

    let admin = match raw.admin {
        None => None,
        Some(a) => {
            let listen = socket_addr(&loc, &a.listen, "admin.listen")?;
            let key = match &a.key {
                None => None,
                Some(k) => secret::resolve(k.get_ref(), "admin key".into(), lookup)
                    .map_err(|m| loc.error(k.span(), "admin.key", m))?,
            };
            if key.is_none() && !listen.ip().is_loopback() {
                return Err(loc.error(
                    a.listen.span(),
                    "admin.listen",
                    "an admin port off loopback needs admin.key",
                ));
            }
            Some(AdminSettings { listen, key })
        }
    };
    let resilience = resilience(&loc, raw.resilience.unwrap_or_default())?;
    let pricing = pricing(&loc, raw.pricing.unwrap_or_default())?;
    let ledger = {
        let l = raw.ledger.unwrap_or_default();
        LedgerSettings {
            path: l
                .path
                .as_ref()
                .map_or(DEFAULT_LEDGER_PATH.into(), |p| p.get_ref().into()),
            queue_capacity: match &l.queue_capacity {
                None => 8192,
                Some(n) => positive(&loc, n, "ledger.queue_capacity")?,
            },
            postgres: match &l.store {
                None => None,
                Some(s) if s.get_ref().trim() == "sqlite" => None,
                Some(s) => Some(
                    crate::ledger::postgres::PgUrl::parse(s.get_ref().trim())
                        .map_err(|m| loc.error(s.span(), "ledger.store", m))?,
                ),
            },
        }
    };

    let cache = super::cache::settings(&loc, raw.cache.as_ref())?;
    let limits = super::governance::limits(&loc, raw.limits.as_ref())?;
    let features = super::governance::features(&loc, &raw.features)?;
    let logging = super::governance::logging(&loc, raw.logging.as_ref())?;
    let conversations = super::conversations::settings(&loc, raw.conversations.as_ref())?;
    let telemetry = super::telemetry::settings(&loc, raw.telemetry.as_ref())?;
    let mut translation = crate::dialect::canonical::TranslateOptions::default();
    for (i, name) in raw
        .translation
        .iter()
        .flat_map(|t| t.drop.iter())
        .enumerate()
    {
        let n = name.get_ref();
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(loc.error(
                name.span(),
                format!("translation.drop[{i}]"),
                "expected a top-level request field name such as \"seed\" or \"top_k\"",
            ));
        }
        translation.drop.push(n.clone());
    }

    let mut providers = Vec::with_capacity(raw.providers.len());
    for (i, p) in raw.providers.iter().enumerate() {
        let field = format!("providers[{i}]");
        let prov = provider(&loc, p, &field, lookup, &mut warnings)?;
        if providers
            .iter()
            .any(|q: &ProviderConfig| q.name == prov.name)
        {
            return Err(loc.error(
                p.get_ref().name.span(),
                format!("{field}.name"),
                format!("duplicate provider name `{}`", prov.name),
            ));
        }
        providers.push(prov);
    }

    let mut gateway_keys = Vec::with_capacity(raw.gateway_keys.len());
    for (i, k) in raw.gateway_keys.iter().enumerate() {
        let field = format!("gateway_keys[{i}]");
        if let Some(key) = gateway_key(&loc, k.get_ref(), &field, lookup, &mut warnings)? {
            if gateway_keys
                .iter()
                .any(|g: &GatewayKeyConfig| g.name == key.name)
            {
                return Err(loc.error(
                    k.get_ref().name.span(),
                    format!("{field}.name"),
                    format!("duplicate gateway key name `{}`", key.name),
                ));
            }
            gateway_keys.push(key);
        }
    }
    if raw.gateway_keys.is_empty() {
        warnings.push(format!(
            "{file}: gateway_keys: no gateway keys are configured; every request will get 401"
        ));
    }

    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.iter().enumerate() {
        let field = format!("routes[{i}]");
        let route = route(&loc, r.get_ref(), &field, &providers)?;
        if routes.iter().any(|q| q.name == route.name) {
            return Err(loc.error(
                r.get_ref().name.span(),
                format!("{field}.name"),
                format!("duplicate route name `{}`", route.name),
            ));
        }
        routes.push(route);
    }

    super::routing::check_rules(&loc, &raw.routes, &routes)?;
    let experiments = super::experiments::experiments(&loc, &raw.experiments, &providers, &routes)?;

    // A route target without a price is refused (or served with an unknown cost), and one
    // whose model is deprecated or retired upstream will fail: say so now.
    let today = crate::pricing::PriceDate::today();
    for (i, r) in raw.routes.iter().enumerate() {
        for (j, t) in routes[i].targets.iter().enumerate() {
            let p = &providers[t.provider];
            if let Some(state) = pricing
                .model_info(p, &t.model)
                .and_then(|info| info.lifecycle(today).describe())
            {
                let span = r.get_ref().targets[j].span();
                warnings.push(
                    loc.error(
                        span,
                        format!("routes[{i}].targets[{j}]"),
                        format!(
                            "`{}/{}` is {state}; move the route to a current model",
                            p.name, t.model
                        ),
                    )
                    .to_string(),
                );
            }
            if pricing.lookup(p, &t.model).is_none() {
                let what = match pricing.unpriced {
                    crate::pricing::UnpricedPolicy::Reject => {
                        "requests to it are refused (pricing.unpriced = \"reject\")"
                    }
                    crate::pricing::UnpricedPolicy::RecordUnknown => {
                        "its calls are recorded with an unknown cost"
                    }
                };
                let span = r.get_ref().targets[j].span();
                warnings.push(
                    loc.error(
                        span,
                        format!("routes[{i}].targets[{j}]"),
                        format!(
                            "no price for `{}/{}`: {what}; add it to pricing.overrides",
                            p.name, t.model
                        ),
                    )
                    .to_string(),
                );
            }
        }
    }

    // Allow-lists may only name things that exist, so a typo does not silently deny a model.
    for (i, k) in raw.gateway_keys.iter().enumerate() {
        for (j, pat) in k.get_ref().models.iter().flatten().enumerate() {
            check_model_pattern(
                &loc,
                pat,
                &format!("gateway_keys[{i}].models[{j}]"),
                &providers,
                &routes,
            )?;
        }
    }

    Ok(Config {
        server,
        mock,
        admin,
        resilience,
        pricing,
        ledger,
        cache,
        conversations,
        translation,
        providers,
        gateway_keys,
        limits,
        features,
        logging,
        telemetry,
        routes_log_bodies: routes.iter().any(|r| r.log_bodies.is_some()),
        routes,
        experiments,
        warnings,
    })
}

fn server(loc: &Locator<'_>, s: RawServer) -> Result<ServerSettings, ConfigError> {
    let listen = match &s.listen {
        Some(l) => socket_addr(loc, l, "server.listen")?.to_string(),
        None => DEFAULT_LISTEN.to_owned(),
    };
    let threads = match &s.threads {
        Some(t) => positive(loc, t, "server.threads")?,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let max_body_size = match &s.max_body_size {
        None => DEFAULT_MAX_BODY_SIZE,
        Some(sz) => {
            let n = match sz.get_ref() {
                RawSize::Bytes(n) => {
                    usize::try_from(*n).map_err(|_| "must not be negative".to_owned())
                }
                RawSize::Text(t) => parse_size(t),
            }
            .map_err(|m| loc.error(sz.span(), "server.max_body_size", m))?;
            if n < 1024 {
                return Err(loc.error(sz.span(), "server.max_body_size", "must be at least 1KiB"));
            }
            n
        }
    };
    let grace_period = duration_or(
        loc,
        s.grace_period.as_ref(),
        "server.grace_period",
        DEFAULT_GRACE_PERIOD,
        Bound::Request,
    )?;
    let pid_file = match &s.pid_file {
        None => std::path::PathBuf::from(DEFAULT_PID_FILE),
        Some(p) if std::path::Path::new(p.get_ref()).is_absolute() => {
            std::path::PathBuf::from(p.get_ref())
        }
        Some(p) => {
            return Err(loc.error(p.span(), "server.pid_file", "must be an absolute path"));
        }
    };
    let upgrade_sock = match &s.upgrade_sock {
        None => std::path::PathBuf::from(DEFAULT_UPGRADE_SOCK),
        Some(p) => {
            let path = std::path::PathBuf::from(p.get_ref());
            // sun_path holds 108 bytes including the terminating NUL.
            let problem = if !path.is_absolute() {
                Some("must be an absolute path")
            } else if p.get_ref().len() > 107 {
                Some("is longer than a unix socket path may be (107 bytes)")
            } else {
                None
            };
            if let Some(m) = problem {
                return Err(loc.error(p.span(), "server.upgrade_sock", m));
            }
            path
        }
    };
    Ok(ServerSettings {
        listen,
        threads,
        max_body_size,
        grace_period,
        upgrade_sock,
        pid_file,
    })
}

fn pricing(loc: &Locator<'_>, p: super::raw::RawPricing) -> Result<PricingSettings, ConfigError> {
    use crate::pricing::{PriceBook, UnpricedPolicy};
    let unpriced = match &p.unpriced {
        None => UnpricedPolicy::default(),
        Some(u) => u
            .get_ref()
            .parse::<UnpricedPolicy>()
            .map_err(|e| loc.error(u.span(), "pricing.unpriced", e))?,
    };
    let mut book = PriceBook::builtin();
    if let Some(path) = &p.overrides {
        // Relative to the config file's directory when the config came from a file.
        let base = std::path::Path::new(loc.file)
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let full = base.join(path.get_ref());
        let extra = PriceBook::load(&full)
            .map_err(|e| loc.error(path.span(), "pricing.overrides", e.to_string()))?;
        book = book.with_overrides(extra);
    }
    Ok(PricingSettings {
        unpriced,
        book: std::sync::Arc::new(book),
    })
}

fn resilience(loc: &Locator<'_>, r: super::raw::RawResilience) -> Result<Policy, ConfigError> {
    let d = Policy::default();
    let dur = |v: &Option<Spanned<String>>, f: &str, def: Duration| {
        duration_or(
            loc,
            v.as_ref(),
            &format!("resilience.{f}"),
            def,
            Bound::Request,
        )
    };
    let rest = |v: &Option<Spanned<String>>, f: &str, def: Duration| {
        duration_or(
            loc,
            v.as_ref(),
            &format!("resilience.{f}"),
            def,
            Bound::Rest,
        )
    };
    let num = |v: &Option<Spanned<i64>>, f: &str, def: u32| -> Result<u32, ConfigError> {
        match v {
            None => Ok(def),
            Some(n) => positive(loc, n, &format!("resilience.{f}"))
                .map(|x| x.min(u32::MAX as usize) as u32),
        }
    };
    Ok(Policy {
        max_attempts: attempts_budget(loc, r.max_attempts.as_ref(), "resilience.max_attempts")?
            .unwrap_or(d.max_attempts),
        backoff: crate::resilience::backoff::Backoff {
            base: dur(&r.backoff_base, "backoff_base", d.backoff.base)?,
            max: dur(&r.backoff_max, "backoff_max", d.backoff.max)?,
        },
        deadline: dur(&r.deadline, "deadline", d.deadline)?,
        rate_limit_rest: rest(&r.rate_limit_rest, "rate_limit_rest", d.rate_limit_rest)?,
        auth_failure_rest: rest(
            &r.auth_failure_rest,
            "auth_failure_rest",
            d.auth_failure_rest,
        )?,
        breaker: crate::resilience::breaker::BreakerConfig {
            failure_threshold: num(
                &r.breaker_failures,
                "breaker_failures",
                d.breaker.failure_threshold,
            )?,
            open_for: rest(&r.breaker_open_for, "breaker_open_for", d.breaker.open_for)?,
            half_open_probes: num(
                &r.breaker_probes,
                "breaker_probes",
                d.breaker.half_open_probes,
            )?,
        },
    })
}

fn provider(
    loc: &Locator<'_>,
    p: &Spanned<RawProvider>,
    field: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<ProviderConfig, ConfigError> {
    let p = p.get_ref();
    let name = name(loc, &p.name, &format!("{field}.name"))?;
    let kind: crate::providers::ProviderKind =
        p.kind
            .get_ref()
            .parse()
            .map_err(|e: crate::providers::kind::UnknownKind| {
                loc.error(p.kind.span(), format!("{field}.kind"), e.to_string())
            })?;
    let preset = presets::preset(kind);
    let base_url = match (&p.base_url, preset.base_url) {
        (Some(u), _) => BaseUrl::parse(u.get_ref())
            .map_err(|m| loc.error(u.span(), format!("{field}.base_url"), m))?,
        (None, Some(default)) => BaseUrl::parse(default)
            .map_err(|m| loc.error(p.kind.span(), format!("{field}.kind"), m))?,
        (None, None) => {
            return Err(loc.error(
                p.kind.span(),
                format!("{field}.base_url"),
                format!("kind `{}` needs a base_url", preset.kind),
            ))
        }
    };
    if p.api_keys.is_empty() && !preset.keys_optional {
        return Err(loc.error(
            p.kind.span(),
            format!("{field}.api_keys"),
            format!(
                "provider `{name}` needs at least one key, e.g. api_keys = [\"env:{}_API_KEY\"]",
                name.to_uppercase().replace('-', "_")
            ),
        ));
    }
    let mut keys = Vec::new();
    let mut missing_keys = Vec::new();
    for (j, k) in p.api_keys.iter().enumerate() {
        let kfield = format!("{field}.api_keys[{j}]");
        match secret::resolve(k.get_ref(), format!("{name} key #{j}"), lookup)
            .map_err(|m| loc.error(k.span(), &kfield, m))?
        {
            Some(s) => keys.push(s),
            None => {
                let e = loc.error(
                    k.span(),
                    &kfield,
                    format!(
                        "`{}` is not set; provider `{name}` will not use this key",
                        k.get_ref()
                    ),
                );
                warnings.push(e.to_string());
                missing_keys.push(k.get_ref().clone());
            }
        }
    }
    if keys.is_empty() && !p.api_keys.is_empty() {
        let e = loc.error(p.name.span(), format!("{field}.api_keys"), format!("provider `{name}` has no usable key; requests routed to it will fail until one is set"));
        warnings.push(e.to_string());
    }
    let mut models = Vec::new();
    for (j, m) in p.models.iter().enumerate() {
        if m.get_ref().trim().is_empty() {
            return Err(loc.error(
                m.span(),
                format!("{field}.models[{j}]"),
                "must not be empty",
            ));
        }
        models.push(m.get_ref().clone());
    }
    Ok(ProviderConfig {
        name,
        kind: preset.kind,
        dialect: preset.dialect,
        auth: preset.auth,
        base_url,
        keys,
        missing_keys,
        models,
        connect_timeout: duration_or(
            loc,
            p.connect_timeout.as_ref(),
            &format!("{field}.connect_timeout"),
            DEFAULT_CONNECT_TIMEOUT,
            Bound::Request,
        )?,
        read_timeout: duration_or(
            loc,
            p.read_timeout.as_ref(),
            &format!("{field}.read_timeout"),
            DEFAULT_READ_TIMEOUT,
            Bound::Request,
        )?,
    })
}

fn gateway_key(
    loc: &Locator<'_>,
    k: &RawGatewayKey,
    field: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<GatewayKeyConfig>, ConfigError> {
    let name = name(loc, &k.name, &format!("{field}.name"))?;
    let resolved: Option<Secret> =
        secret::resolve(k.key.get_ref(), format!("gateway key {name}"), lookup)
            .map_err(|m| loc.error(k.key.span(), format!("{field}.key"), m))?;
    let Some(secret) = resolved else {
        let e = loc.error(
            k.key.span(),
            format!("{field}.key"),
            format!(
                "`{}` is not set; gateway key `{name}` is disabled",
                k.key.get_ref()
            ),
        );
        warnings.push(e.to_string());
        return Ok(None);
    };
    if secret.expose().len() < 8 {
        return Err(loc.error(
            k.key.span(),
            format!("{field}.key"),
            "a gateway key must be at least 8 characters",
        ));
    }
    let cache_namespace = match &k.cache_namespace {
        None => None,
        Some(n) => Some(super::validate::name(
            loc,
            n,
            &format!("{field}.cache_namespace"),
        )?),
    };
    let rule = super::governance::rule(
        loc,
        k.rpm.as_ref(),
        k.tpm.as_ref(),
        k.budget.as_ref(),
        field,
    )?;
    let log_bodies =
        super::governance::log_bodies(loc, k.log_bodies.as_ref(), &format!("{field}.log_bodies"))?;
    Ok(Some(GatewayKeyConfig {
        name,
        rule,
        log_bodies,
        cache_namespace,
        secret,
        models: k
            .models
            .as_ref()
            .map(|ms| ms.iter().map(|m| m.get_ref().clone()).collect()),
    }))
}

fn route(
    loc: &Locator<'_>,
    r: &RawRoute,
    field: &str,
    providers: &[ProviderConfig],
) -> Result<RouteConfig, ConfigError> {
    let name = name(loc, &r.name, &format!("{field}.name"))?;
    if r.targets.is_empty() {
        return Err(loc.error(
            r.name.span(),
            format!("{field}.targets"),
            format!("route `{name}` needs at least one target"),
        ));
    }
    let mut targets = Vec::with_capacity(r.targets.len());
    for (j, t) in r.targets.iter().enumerate() {
        let tfield = format!("{field}.targets[{j}]");
        let (pname, model) = t
            .get_ref()
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
            .ok_or_else(|| {
                loc.error(
                    t.span(),
                    &tfield,
                    format!("`{}` must be written provider/model", t.get_ref()),
                )
            })?;
        let provider = providers
            .iter()
            .position(|p| p.name == pname)
            .ok_or_else(|| {
                loc.error(
                    t.span(),
                    &tfield,
                    format!(
                        "no provider named `{pname}` (known: {})",
                        providers
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        targets.push(Target {
            provider,
            model: model.to_owned(),
        });
    }
    let deadline = match &r.deadline {
        None => None,
        Some(d) => Some(
            parse_bounded(d.get_ref(), Bound::Request)
                .map_err(|m| loc.error(d.span(), format!("{field}.deadline"), m))?,
        ),
    };
    let max_attempts = attempts_budget(
        loc,
        r.max_attempts.as_ref(),
        &format!("{field}.max_attempts"),
    )?;
    let cache = match &r.cache {
        None => None,
        Some(c) => Some(super::cache::route_cache(
            loc,
            c,
            &format!("{field}.cache"),
        )?),
    };
    let strategy = super::routing::strategy(loc, r, field, targets.len())?;
    let log_bodies =
        super::governance::log_bodies(loc, r.log_bodies.as_ref(), &format!("{field}.log_bodies"))?;
    Ok(RouteConfig {
        name,
        targets,
        deadline,
        max_attempts,
        cache,
        strategy,
        log_bodies,
    })
}

fn check_model_pattern(
    loc: &Locator<'_>,
    pat: &Spanned<String>,
    field: &str,
    providers: &[ProviderConfig],
    routes: &[RouteConfig],
) -> Result<(), ConfigError> {
    let p = pat.get_ref();
    let ok = p == "*"
        || routes.iter().any(|r| &r.name == p)
        || p.split_once('/').is_some_and(|(prov, model)| {
            !model.is_empty() && providers.iter().any(|q| q.name == prov)
        });
    if ok {
        Ok(())
    } else {
        Err(loc.error(pat.span(), field, format!("`{p}` names no route and no known provider; write a route name, provider/model, provider/* or *")))
    }
}

/// Provider, key and route names: non-empty, no `/` (it separates provider and model).
pub(super) fn name(
    loc: &Locator<'_>,
    n: &Spanned<String>,
    field: &str,
) -> Result<String, ConfigError> {
    let v = n.get_ref().trim();
    if v.is_empty() {
        return Err(loc.error(n.span(), field, "must not be empty"));
    }
    if v.contains('/') || v.chars().any(char::is_whitespace) {
        return Err(loc.error(
            n.span(),
            field,
            format!("`{v}` must not contain '/' or spaces"),
        ));
    }
    Ok(v.to_owned())
}

fn socket_addr(
    loc: &Locator<'_>,
    s: &Spanned<String>,
    field: &str,
) -> Result<SocketAddr, ConfigError> {
    s.get_ref().parse().map_err(|_| {
        loc.error(
            s.span(),
            field,
            format!("`{}` is not an address like 127.0.0.1:8080", s.get_ref()),
        )
    })
}

/// pingora makes at most 16 upstream tries per request (`max_retries`).
const MAX_ATTEMPTS: usize = 16;

fn attempts_budget(
    loc: &Locator<'_>,
    n: Option<&Spanned<i64>>,
    field: &str,
) -> Result<Option<u32>, ConfigError> {
    let Some(n) = n else { return Ok(None) };
    let v = positive(loc, n, field)?;
    if v > MAX_ATTEMPTS {
        return Err(loc.error(
            n.span(),
            field,
            format!("at most {MAX_ATTEMPTS} attempts per request"),
        ));
    }
    Ok(Some(v as u32))
}

fn positive(loc: &Locator<'_>, n: &Spanned<i64>, field: &str) -> Result<usize, ConfigError> {
    usize::try_from(*n.get_ref())
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| loc.error(n.span(), field, "must be a positive number"))
}

fn duration_or(
    loc: &Locator<'_>,
    s: Option<&Spanned<String>>,
    field: &str,
    default: Duration,
    bound: Bound,
) -> Result<Duration, ConfigError> {
    match s {
        None => Ok(default),
        Some(s) => parse_bounded(s.get_ref(), bound).map_err(|m| loc.error(s.span(), field, m)),
    }
}

#[cfg(test)]
mod tests;
