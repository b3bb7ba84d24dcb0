//! Providers at run time: where a request goes (base URL + endpoint path), which of the
//! provider's keys it carries, and how that key is presented.

pub mod presets;
pub mod url;

use crate::config::{ProviderConfig, Secret};
use crate::dialect::{Dialect, Endpoint};
use crate::resilience::breaker::{Breaker, BreakerConfig};
use crate::resilience::keys::{self, KeyHealth};
use crate::resilience::Health;
use pingora_http::RequestHeader;
use presets::{AuthStyle, ANTHROPIC_VERSION};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Request headers that carry credentials, never forwarded from the client to a provider.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "x-goog-api-key"];

pub struct Upstream {
    pub cfg: ProviderConfig,
    next_key: AtomicUsize,
    /// The provider-wide circuit breaker.
    pub breaker: Arc<Breaker>,
    /// Health of each key, by index into `cfg.keys`.
    pub key_health: Vec<Arc<KeyHealth>>,
    breaker_cfg: BreakerConfig,
    /// The config generation this upstream was built from (see [`Health::breaker`]).
    generation: u64,
    health: Arc<Health>,
    /// This provider's model breakers by model name: looked up per attempt without building
    /// the `provider/model` name or taking the process-wide lock.
    model_breakers: std::sync::RwLock<std::collections::HashMap<String, Arc<Breaker>>>,
}

/// The dialect provider `p` is spoken to in for a request to `endpoint`: its own, or the
/// Responses API for an OpenAI-kind provider asked on `/v1/responses`.
pub fn wire_dialect(p: &ProviderConfig, endpoint: Endpoint) -> Dialect {
    endpoint.wire_dialect(p.dialect, presets::native_responses(p.kind))
}

/// The key chosen for one attempt: its index (safe to log) and the secret.
pub struct KeyChoice<'a> {
    pub index: usize,
    pub secret: &'a Secret,
}

impl Upstream {
    pub fn new(
        cfg: ProviderConfig,
        health: &Arc<Health>,
        breaker_cfg: BreakerConfig,
        generation: u64,
    ) -> Upstream {
        Upstream {
            breaker: health.breaker(&cfg.name, breaker_cfg, generation),
            key_health: cfg
                .keys
                .iter()
                .map(|k| health.key(&cfg.name, k.origin()))
                .collect(),
            next_key: AtomicUsize::new(0),
            breaker_cfg,
            generation,
            health: health.clone(),
            model_breakers: std::sync::RwLock::new(std::collections::HashMap::new()),
            cfg,
        }
    }

    /// The breaker for one of this provider's models.
    pub fn model_breaker(&self, model: &str) -> Arc<Breaker> {
        if let Ok(map) = self.model_breakers.read() {
            if let Some(b) = map.get(model) {
                return b.clone();
            }
        }
        let b = self.health.breaker(
            &format!("{}/{model}", self.cfg.name),
            self.breaker_cfg,
            self.generation,
        );
        if let Ok(mut map) = self.model_breakers.write() {
            // Bounded by the models this provider is asked for (a route's, or a client's
            // `provider/model`): at most this many are remembered here.
            if map.len() < 4096 {
                map.insert(model.to_owned(), b.clone());
            }
        }
        b
    }

    /// The key for the next attempt: round-robin over keys that are not resting, avoiding
    /// keys near their rate limit. `None` when every key rests.
    pub fn choose_key(&self, now: tokio::time::Instant) -> Option<KeyChoice<'_>> {
        if self.cfg.keys.is_empty() {
            return None;
        }
        let start = self.next_key.fetch_add(1, Ordering::Relaxed);
        let health: Vec<&KeyHealth> = self.key_health.iter().map(|h| h.as_ref()).collect();
        let index = keys::choose(&health, start % health.len(), now)?;
        Some(KeyChoice {
            index,
            secret: &self.cfg.keys[index],
        })
    }

    /// When some key of this provider is next free (now, if one is).
    pub fn keys_available_at(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        self.key_health
            .iter()
            .map(|h| h.available_at(now))
            .min()
            .unwrap_or(now)
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Whether the provider can take a request at all (has a key, or needs none).
    pub fn usable(&self) -> bool {
        !self.cfg.keys.is_empty() || self.cfg.missing_keys.is_empty()
    }

    /// The dialect this provider is spoken to in for a request to `endpoint` (see
    /// [`Endpoint::wire_dialect`]).
    pub fn wire_dialect(&self, endpoint: Endpoint) -> Dialect {
        wire_dialect(&self.cfg, endpoint)
    }

    /// The request path for `endpoint` (in this provider's dialect) and `model`.
    pub fn path_for(&self, endpoint: Endpoint, model: &str, stream: bool) -> String {
        let suffix = match (self.wire_dialect(endpoint), endpoint) {
            (Dialect::Gemini, _) => crate::dialect::gemini::path_for(model, stream),
            (_, Endpoint::Embeddings) => endpoint.upstream_suffix().to_owned(),
            (Dialect::Anthropic, _) => Endpoint::Messages.upstream_suffix().to_owned(),
            (Dialect::Responses, _) => Endpoint::Responses.upstream_suffix().to_owned(),
            (Dialect::OpenAi, _) => Endpoint::ChatCompletions.upstream_suffix().to_owned(),
        };
        format!("{}{suffix}", self.cfg.base_url.path)
    }

    /// Removes the client's credentials and adds the provider's.
    pub fn apply_auth(
        &self,
        req: &mut RequestHeader,
        key: Option<&Secret>,
    ) -> pingora_error::Result<()> {
        for h in CREDENTIAL_HEADERS {
            req.remove_header(*h);
        }
        match (self.cfg.auth, key) {
            (AuthStyle::Bearer, Some(k)) => {
                req.insert_header("authorization", format!("Bearer {}", k.expose()))?;
            }
            (AuthStyle::AnthropicKey, Some(k)) => {
                req.insert_header("x-api-key", k.expose())?;
            }
            (AuthStyle::GoogleKey, Some(k)) => {
                req.insert_header("x-goog-api-key", k.expose())?;
            }
            (_, None) => {}
        }
        if self.cfg.auth == AuthStyle::AnthropicKey
            && req.headers.get("anthropic-version").is_none()
        {
            req.insert_header("anthropic-version", ANTHROPIC_VERSION)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn upstreams() -> Vec<Upstream> {
        let cfg = Config::parse(
            "t.toml",
            r#"
[[providers]]
name = "groq"
kind = "groq"
api_keys = ["gk-1", "gk-2"]
[[providers]]
name = "anthropic"
kind = "anthropic"
api_keys = ["ak-1"]
[[providers]]
name = "local"
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
"#,
            &|_| None,
        )
        .unwrap();
        let health = Health::new();
        cfg.providers
            .into_iter()
            .map(|p| Upstream::new(p, &health, BreakerConfig::default(), 1))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn keys_rotate_and_skip_resting_ones() {
        let u = upstreams();
        let now = tokio::time::Instant::now();
        let picks: Vec<usize> = (0..4)
            .map(|_| u[0].choose_key(now).unwrap().index)
            .collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        u[0].key_health[1].rest(now, std::time::Duration::from_secs(5), "rate_limited");
        let picks: Vec<usize> = (0..3)
            .map(|_| u[0].choose_key(now).unwrap().index)
            .collect();
        assert_eq!(picks, [0, 0, 0]);
        u[0].key_health[0].rest(now, std::time::Duration::from_secs(2), "rate_limited");
        assert!(u[0].choose_key(now).is_none());
        assert_eq!(
            u[0].keys_available_at(now),
            now + std::time::Duration::from_secs(2)
        );
        assert!(u[2].choose_key(now).is_none());
        assert!(u[2].usable());
    }

    #[tokio::test]
    async fn auth_replaces_client_credentials() {
        let u = upstreams();
        let mut req = RequestHeader::build("POST", b"/v1/messages", None).unwrap();
        req.insert_header("authorization", "Bearer sk-sy-client")
            .unwrap();
        req.insert_header("x-api-key", "sk-sy-client").unwrap();
        let now = tokio::time::Instant::now();
        let key = u[1].choose_key(now).unwrap();
        u[1].apply_auth(&mut req, Some(key.secret)).unwrap();
        assert!(req.headers.get("authorization").is_none());
        assert_eq!(req.headers.get("x-api-key").unwrap(), "ak-1");
        assert_eq!(
            req.headers.get("anthropic-version").unwrap(),
            ANTHROPIC_VERSION
        );

        let mut req = RequestHeader::build("POST", b"/x", None).unwrap();
        req.insert_header("x-api-key", "sk-sy-client").unwrap();
        let key = u[0].choose_key(now).unwrap();
        u[0].apply_auth(&mut req, Some(key.secret)).unwrap();
        assert!(req.headers.get("x-api-key").is_none());
        assert!(req
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer gk-"));
        assert_eq!(
            u[0].path_for(Endpoint::ChatCompletions, "m", false),
            "/openai/v1/chat/completions"
        );
    }
}
