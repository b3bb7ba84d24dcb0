//! Capability filtering, in one place: which of a route's targets can serve this request at
//! all, and which can be tried now. Strategies order only what is left.
//!
//! Before a strategy runs ([`usable`]): the endpoint table's providers (embeddings need an
//! OpenAI-compatible or Gemini provider, audio OpenAI, Groq or DeepInfra, ...), the price policy (`unpriced = "reject"` drops unpriced
//! targets), and translation (a request that cannot be expressed in a target's dialect drops
//! that target), and the model's capabilities ([`capable`], [`unfit`]): the estimated prompt
//! plus `max_tokens` must fit its context window, `max_tokens` must not pass its
//! `max_output_tokens`, and a request with images needs vision, one with tools needs tools, one
//! asking for a JSON-schema answer needs `json_schema`. A model
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
    /// `max_tokens` is more than the model may produce in one call.
    MaxOutput { max_tokens: u64, most: u32 },
    /// The request has images; the model has no vision.
    Vision,
    /// The request has tools; the model cannot call tools.
    Tools,
    /// The request asks for a JSON-schema answer; the model does not enforce one.
    JsonSchema,
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
            Unfit::MaxOutput { max_tokens, most } => {
                write!(f, "max_output: {max_tokens} max_tokens > {most}")
            }
            Unfit::Vision => f.write_str("vision: the request has images"),
            Unfit::Tools => f.write_str("tools: the request has tools"),
            Unfit::JsonSchema => f.write_str("json_schema: the request asks for a JSON schema"),
        }
    }
}

/// Why `caps` cannot serve this request (`None`: it can). Cheap first, and nothing is parsed
/// that the model's capabilities make moot: tools and the response format are read only for
/// a model without them; images only when the prompt fields mention `image`; the prompt only
/// when an upper bound of prompt plus `max_tokens` (a quarter of the prompt fields' bytes,
/// no parse) does not fit the window.
pub fn unfit(caps: &Capabilities, features: &Features<'_>) -> Option<Unfit> {
    if !caps.tools && features.params().has_tools {
        return Some(Unfit::Tools);
    }
    if !caps.json_schema && features.params().json_schema {
        return Some(Unfit::JsonSchema);
    }
    let max_tokens = features.max_tokens();
    if let (Some(m), Some(most)) = (max_tokens, caps.max_output_tokens) {
        if m > u64::from(most) {
            return Some(Unfit::MaxOutput {
                max_tokens: m,
                most,
            });
        }
    }
    if !caps.vision && features.may_have_images() && features.prompt().has_images {
        return Some(Unfit::Vision);
    }
    let window = caps.context_window?;
    let max_tokens = max_tokens.unwrap_or(0);
    let bound = (features.prompt_bytes() as u64 / 4 + 1).saturating_add(max_tokens);
    if bound <= u64::from(window) {
        return None;
    }
    let prompt = features.prompt().prompt_tokens;
    (prompt.saturating_add(max_tokens) > u64::from(window)).then_some(Unfit::Context {
        prompt,
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

    fn check(caps: &Capabilities, body: &[u8], endpoint: Endpoint) -> Option<Unfit> {
        let headers = http::HeaderMap::new();
        let fields = crate::dialect::BodyFields::of(body);
        unfit(
            caps,
            &Features::new(endpoint, None, false, &headers, body, &fields),
        )
    }

    #[test]
    fn unfit_checks_the_window_and_vision_and_passes_what_fits() {
        let caps = Capabilities {
            context_window: Some(1000),
            ..Capabilities::default()
        };
        let chat = Endpoint::ChatCompletions;
        let small = br#"{"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(check(&caps, small, chat), None);
        let big = br#"{"max_tokens":999,"messages":[{"role":"user","content":"hello there"}]}"#;
        assert_eq!(
            check(&caps, big, chat),
            Some(Unfit::Context {
                prompt: 3,
                max_tokens: 999,
                window: 1000
            })
        );
        let image = br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(check(&caps, image, chat), Some(Unfit::Vision));
        let vision = Capabilities {
            vision: true,
            ..caps
        };
        assert_eq!(check(&vision, image, chat), None);
        // A body far over the window whose size is in a field that is not the prompt fits.
        let padded = format!(
            r#"{{"max_tokens":100,"messages":[{{"role":"user","content":"hi"}}],"pad":"{}"}}"#,
            "x".repeat(100_000)
        );
        assert_eq!(check(&caps, padded.as_bytes(), chat), None);
    }

    #[test]
    fn tools_json_schema_and_max_output_filters() {
        let none = Capabilities {
            max_output_tokens: Some(4096),
            ..Capabilities::default()
        };
        let all = Capabilities {
            tools: true,
            json_schema: true,
            ..none
        };
        let chat = Endpoint::ChatCompletions;
        let tools = br#"{"tools":[{"type":"function","function":{"name":"f"}}],"messages":[]}"#;
        assert_eq!(check(&none, tools, chat), Some(Unfit::Tools));
        assert_eq!(check(&all, tools, chat), None);
        let empty_tools = br#"{"tools":[],"messages":[]}"#;
        assert_eq!(check(&none, empty_tools, chat), None);
        let schema =
            br#"{"response_format":{"type":"json_schema","json_schema":{}},"messages":[]}"#;
        assert_eq!(check(&none, schema, chat), Some(Unfit::JsonSchema));
        assert_eq!(check(&all, schema, chat), None);
        let text = br#"{"input":"hi","text":{"format":{"type":"json_schema","schema":{}}}}"#;
        assert_eq!(
            check(&none, text, Endpoint::Responses),
            Some(Unfit::JsonSchema)
        );
        let gemini = br#"{"contents":[],"generationConfig":{"responseSchema":{"type":"STRING"}}}"#;
        assert_eq!(
            check(&none, gemini, Endpoint::GenerateContent),
            Some(Unfit::JsonSchema)
        );
        let long = br#"{"max_tokens":5000,"messages":[]}"#;
        let why = check(&all, long, chat);
        assert_eq!(
            why,
            Some(Unfit::MaxOutput {
                max_tokens: 5000,
                most: 4096
            })
        );
        assert_eq!(
            why.map(|w| w.to_string()).as_deref(),
            Some("max_output: 5000 max_tokens > 4096")
        );
        let gemini_long = br#"{"contents":[],"generationConfig":{"maxOutputTokens":4097}}"#;
        assert!(matches!(
            check(&all, gemini_long, Endpoint::GenerateContent),
            Some(Unfit::MaxOutput { .. })
        ));
        assert_eq!(
            check(&all, br#"{"max_tokens":4096,"messages":[]}"#, chat),
            None
        );
    }
}
