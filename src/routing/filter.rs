//! Capability filtering, in one place: which of a route's targets can serve this request at
//! all, and which can be tried now. Strategies order only what is left.
//!
//! Before a strategy runs ([`usable`]): the endpoint table's providers (embeddings need an
//! OpenAI-compatible or Gemini provider, audio OpenAI, Groq or DeepInfra, ...), the price policy (`unpriced = "reject"` drops unpriced
//! targets), and translation (a request that cannot be expressed in a target's dialect drops
//! that target), and the model's capabilities ([`capable`]): the estimated prompt plus
//! `max_tokens` must fit its context window, and a request with images needs vision. A model
//! without a `[[models]]` entry (or without a published context window) is not filtered by that
//! capability: unknown is not a reason to refuse. The key's allow-list is checked against the model the client named
//! ([`allowed`]). Health ([`available_at`]: open breakers, resting keys, no key) is asked
//! again at each attempt, since it changes while a request waits.

use super::features::Features;
use crate::auth::GatewayKey;
use crate::config::{Config, Target};
use crate::dialect::translate::RequestTranslator;
use crate::dialect::{Dialect, Endpoint};
use crate::error::{ErrorKind, GatewayError};
use crate::pricing::{Capabilities, UnpricedPolicy};
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

/// Filters `candidates` for the endpoint's dialect, the price policy, capabilities and
/// translation. Each filter that leaves nothing answers with the error that names why.
pub fn usable(
    config: &Config,
    client: Dialect,
    model: &str,
    features: &Features<'_>,
    candidates: Vec<Target>,
) -> Result<Usable, GatewayError> {
    let (endpoint, body) = (features.endpoint, features.body());
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
    let candidates = capable(config, model, features, candidates, &mut removed)?;

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

/// Which capability filter removes a target, with the figures that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// The estimated prompt plus `max_tokens` is more than the context window.
    Context {
        prompt: u64,
        max_tokens: u64,
        window: u32,
    },
    /// The request has images; the model has no vision.
    Vision,
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::Context {
                prompt,
                max_tokens,
                window,
            } => write!(
                f,
                "context: ~{prompt} prompt + {max_tokens} max_tokens > {window}"
            ),
            Unfit::Vision => f.write_str("vision: the request has images"),
        }
    }
}

/// Why `caps` cannot serve this request (`None`: it can). The body is parsed only when it
/// may matter: it mentions images, or an upper bound of prompt plus `max_tokens` read without
/// parsing (a quarter of the body's bytes, plus the largest number after any `max_*tokens`
/// key) does not fit the window.
pub fn unfit(caps: &Capabilities, features: &Features<'_>) -> Option<Unfit> {
    let body = features.body();
    if !caps.vision && contains(body, b"image") && features.parsed().has_images {
        return Some(Unfit::Vision);
    }
    let window = caps.context_window?;
    let bound = max_tokens_bound(body).map(|m| (body.len() as u64 / 4 + 1).saturating_add(m));
    if bound.is_some_and(|b| b <= u64::from(window)) {
        return None;
    }
    let p = features.parsed();
    let max_tokens = p.max_tokens.unwrap_or(0);
    (p.prompt_tokens.saturating_add(max_tokens) > u64::from(window)).then_some(Unfit::Context {
        prompt: p.prompt_tokens,
        max_tokens,
        window,
    })
}

/// The capability filter: drops targets whose model cannot take this request (see
/// [`unfit`]); models without capabilities pass. Nothing left: a 400 naming each filter.
fn capable(
    config: &Config,
    model: &str,
    features: &Features<'_>,
    candidates: Vec<Target>,
    removed: &mut Vec<String>,
) -> Result<Vec<Target>, GatewayError> {
    let mut out = Vec::new();
    let mut keep = Vec::with_capacity(candidates.len());
    for t in candidates {
        let p = &config.providers[t.provider];
        match config
            .pricing
            .capabilities(p, &t.model)
            .and_then(|c| unfit(c, features))
        {
            Some(why) => out.push(format!("{}/{} ({why})", p.name, t.model)),
            None => keep.push(t),
        }
    }
    if keep.is_empty() && !out.is_empty() {
        return Err(GatewayError::bad_request(format!(
            "No target of `{model}` can serve this request: {}",
            out.join(", ")
        ))
        .with_param("model"));
    }
    removed.extend(out);
    Ok(keep)
}

/// The largest number following any `max_tokens`, `max_completion_tokens` or
/// `max_output_tokens` key in the raw body (0 when there is none): never less than the
/// request's real limit. `None` when a value is not a plain number (then the body is parsed).
fn max_tokens_bound(body: &[u8]) -> Option<u64> {
    let mut most = 0u64;
    let mut rest = body;
    while let Some(at) = rest.windows(4).position(|w| w == b"max_") {
        rest = &rest[at + 4..];
        let key_end = rest.iter().position(|&b| b == b'"')?;
        let key = &rest[..key_end];
        if !matches!(key, b"tokens" | b"completion_tokens" | b"output_tokens") {
            continue;
        }
        let after = rest[key_end + 1..]
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b':'))?;
        let digits = &rest[key_end + 1 + after..];
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 12 {
            return None;
        }
        let n: u64 = std::str::from_utf8(&digits[..len]).ok()?.parse().ok()?;
        most = most.max(n);
    }
    Some(most)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Endpoint;

    #[test]
    fn the_max_tokens_bound_is_never_below_the_real_limit() {
        assert_eq!(max_tokens_bound(br#"{"model":"m"}"#), Some(0));
        assert_eq!(max_tokens_bound(br#"{"max_tokens": 256}"#), Some(256));
        let both = br#"{"messages":[{"content":"max_tokens\": 9"}],"max_completion_tokens":4096}"#;
        assert_eq!(max_tokens_bound(both), Some(4096));
        assert_eq!(max_tokens_bound(br#"{"max_tokens":null}"#), None);
        assert_eq!(max_tokens_bound(br#"{"max_retries":3}"#), Some(0));
    }

    #[test]
    fn unfit_checks_the_window_and_vision_and_passes_what_fits() {
        let caps = Capabilities {
            context_window: Some(1000),
            ..Capabilities::default()
        };
        let headers = http::HeaderMap::new();
        let f = |body: &'static [u8]| {
            Features::new(Endpoint::ChatCompletions, None, false, &headers, body)
        };
        let small = f(br#"{"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(unfit(&caps, &small), None);
        let big = f(br#"{"max_tokens":999,"messages":[{"role":"user","content":"hello there"}]}"#);
        assert_eq!(
            unfit(&caps, &big),
            Some(Unfit::Context {
                prompt: 3,
                max_tokens: 999,
                window: 1000
            })
        );
        let image = f(br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#);
        assert_eq!(unfit(&caps, &image), Some(Unfit::Vision));
        let vision = Capabilities {
            vision: true,
            ..caps
        };
        assert_eq!(unfit(&vision, &image), None);
    }
}
