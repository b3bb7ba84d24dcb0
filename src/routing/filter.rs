//! Capability filtering, in one place: which of a route's targets can serve this request at
//! all, and which can be tried now. Strategies order only what is left.
//!
//! Before a strategy runs ([`usable`]): the endpoint table's providers (embeddings need an
//! OpenAI-compatible or Gemini provider, audio OpenAI, Groq or DeepInfra, ...), the price policy (`unpriced = "reject"` drops unpriced
//! targets), and translation (a request that cannot be expressed in a target's dialect drops
//! that target). The key's allow-list is checked against the model the client named
//! ([`allowed`]). Health ([`available_at`]: open breakers, resting keys, no key) is asked
//! again at each attempt, since it changes while a request waits.

use crate::auth::GatewayKey;
use crate::config::{Config, Target};
use crate::dialect::translate::RequestTranslator;
use crate::dialect::{Dialect, Endpoint};
use crate::error::{ErrorKind, GatewayError};
use crate::pricing::UnpricedPolicy;
use crate::providers::Upstream;
use crate::summary::Skip;
use std::time::Duration;
use tokio::time::Instant;

/// The key may call the model the client named (a route or `provider/model`).
pub fn allowed(key: &GatewayKey, model: &str) -> Result<(), GatewayError> {
    if key.allows(model) {
        return Ok(());
    }
    Err(GatewayError::new(
        ErrorKind::Forbidden,
        format!(
            "The gateway key `{}` may not use the model `{model}`",
            key.name
        ),
    )
    .with_param("model"))
}

/// The targets that can serve this request, and the request translator when some of them
/// speak another dialect than the client. `removed` collects `provider/model (why)` for the
/// route reason.
pub struct Usable {
    pub candidates: Vec<Target>,
    pub translator: Option<RequestTranslator>,
    pub removed: Vec<String>,
}

/// Filters `candidates` for the endpoint's dialect, the price policy and translation. Each
/// filter that leaves nothing answers with the error that names why.
pub fn usable(
    config: &Config,
    endpoint: Endpoint,
    client: Dialect,
    model: &str,
    body: &[u8],
    candidates: Vec<Target>,
) -> Result<Usable, GatewayError> {
    let dialect_of = |t: &Target| config.providers[t.provider].dialect;
    let name = |t: &Target| format!("{}/{}", config.providers[t.provider].name, t.model);
    let mut removed = Vec::new();

    // The endpoint table says which providers serve the endpoint at all.
    let spec = endpoint.spec();
    let (keep, out): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|t| {
        let p = &config.providers[t.provider];
        spec.serve(p.kind, p.dialect).is_some()
    });
    if keep.is_empty() {
        return Err(GatewayError::bad_request(format!(
            "model `{model}` is served only by providers without a {} endpoint ({} is served by \
             provider kinds: {})",
            spec.name,
            spec.paths[0],
            crate::endpoints::serving_kinds(spec)
        ))
        .with_param("model"));
    }
    removed.extend(out.iter().map(|t| format!("{} (endpoint)", name(t))));
    let candidates = keep;

    let candidates = if config.pricing.unpriced == UnpricedPolicy::RecordUnknown {
        candidates
    } else {
        let (priced, unpriced): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|t| {
            config
                .pricing
                .lookup(&config.providers[t.provider], &t.model)
                .is_some()
        });
        if priced.is_empty() {
            let names: Vec<String> = unpriced.iter().map(name).collect();
            return Err(GatewayError::bad_request(format!(
                "The model `{model}` has no price on this gateway ({}), and unpriced models are \
                 refused; add a price (pricing.overrides) or set pricing.unpriced = \
                 \"record_unknown\"",
                names.join(", ")
            ))
            .with_param("model"));
        }
        removed.extend(unpriced.iter().map(|t| format!("{} (unpriced)", name(t))));
        priced
    };

    if !spec.chat {
        // Not a chat endpoint: no chat translation; a target of another dialect gets the
        // endpoint's own translation (`crate::media`), checked here once per dialect.
        let mut first_error = None;
        let (keep, out): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|t| {
            let d = dialect_of(t);
            d == client
                || match crate::media::check_translatable(endpoint, d, body) {
                    Ok(()) => true,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        false
                    }
                }
        });
        if keep.is_empty() {
            return Err(first_error.unwrap_or_else(|| GatewayError::bad_request("untranslatable")));
        }
        removed.extend(out.iter().map(|t| format!("{} (untranslatable)", name(t))));
        return Ok(Usable {
            candidates: keep,
            translator: None,
            removed,
        });
    }
    // The dialect each target is spoken to in for this endpoint (OpenAI-kind targets take
    // Responses requests natively).
    let wire_of = |t: &Target| {
        let p = &config.providers[t.provider];
        spec.wire_dialect(p.kind, p.dialect)
    };
    if candidates.iter().all(|t| wire_of(t) == client) {
        return Ok(Usable {
            candidates,
            translator: None,
            removed,
        });
    }
    let opts = &config.translation;
    let mut translator = RequestTranslator::new(client, body, opts)?;
    if spec.model_in_path() {
        // The body does not name them: the path does.
        translator.request.model = model.to_owned();
        translator.request.stream = endpoint == Endpoint::StreamGenerateContent;
    }
    let mut first_error = None;
    let mut checked: Vec<(Dialect, bool)> = Vec::new();
    let mut keep = Vec::with_capacity(candidates.len());
    for t in candidates {
        let d = wire_of(&t);
        let ok = d == client
            || match checked.iter().find(|(c, _)| *c == d) {
                Some((_, ok)) => *ok,
                None => {
                    let ok = match translator.body_for(d, &t.model, opts) {
                        Ok(_) => true,
                        Err(e) => {
                            first_error.get_or_insert(e);
                            false
                        }
                    };
                    checked.push((d, ok));
                    ok
                }
            };
        if ok {
            keep.push(t);
        } else {
            removed.push(format!("{} (untranslatable)", name(&t)));
        }
    }
    if keep.is_empty() {
        return Err(first_error.unwrap_or_else(|| GatewayError::bad_request("untranslatable")));
    }
    Ok(Usable {
        candidates: keep,
        translator: Some(translator),
        removed,
    })
}

/// When `target` could next be tried (now, if it can): its breakers and keys allowing.
pub fn available_at(up: &Upstream, model: &str, open_for: Duration, now: Instant) -> Instant {
    let mut at = up.keys_available_at(now);
    if !up.breaker.would_allow(now) || !up.model_breaker(model).would_allow(now) {
        at = at.max(now + open_for);
    }
    at
}

/// Why `target` cannot be tried now (`None`: it can).
pub fn unavailable(up: &Upstream, model: &str, now: Instant) -> Option<Skip> {
    if !up.usable() {
        Some(Skip::NoKey)
    } else if !up.breaker.would_allow(now) || !up.model_breaker(model).would_allow(now) {
        Some(Skip::CircuitOpen)
    } else if up.keys_available_at(now) > now {
        Some(Skip::KeysResting)
    } else {
        None
    }
}
