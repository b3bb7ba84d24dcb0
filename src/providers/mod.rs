//! Providers at run time: where a request goes (base URL + endpoint path), which of the
//! provider's keys it carries, and how that key is presented. Proxied attempts and the
//! gateway's own calls ([`crate::outbound`]) share each step: whether an attempt may be made
//! ([`admit`]), its peer ([`peer`]), its request header ([`shape`]) and what its outcome does
//! to the provider's health ([`outcome`]).

pub mod admit;
pub mod kind;
pub mod outcome;
pub mod peer;
pub mod presets;
pub mod shape;
pub mod url;

use crate::config::{ProviderConfig, Secret};
use crate::dialect::{Dialect, Endpoint};
use crate::resilience::breaker::{Breaker, BreakerConfig};
use crate::resilience::keys::{self, KeyHealth};
use crate::resilience::Health;
pub use kind::ProviderKind;
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
    endpoint.spec().wire_dialect(p.kind, p.dialect)
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

    /// The breaker for one of this provider's models. Both this cache and [`Health`]'s map
    /// are bounded ([`crate::resilience::MAX_MODEL_BREAKERS`]): clients can name any model.
    pub fn model_breaker(&self, model: &str) -> Arc<Breaker> {
        if let Ok(map) = self.model_breakers.read() {
            if let Some(b) = map.get(model) {
                return b.clone();
            }
        }
        let max = crate::resilience::MAX_MODEL_BREAKERS;
        if let Ok(mut map) = self.model_breakers.write() {
            if map.len() >= max {
                // Idle breakers hold nothing: let go of them, so `Health` may forget them too.
                map.retain(|_, b| !b.is_idle());
            }
        }
        let b = self
            .health
            .model_breaker(&self.cfg.name, model, self.breaker_cfg, self.generation);
        if let Ok(mut map) = self.model_breakers.write() {
            if map.len() < max {
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
    /// [`crate::endpoints::Spec::wire_dialect`]).
    pub fn wire_dialect(&self, endpoint: Endpoint) -> Dialect {
        wire_dialect(&self.cfg, endpoint)
    }

    /// The request path for `endpoint` (in the dialect it is spoken to in) and `model`, from
    /// the endpoint table. A provider that does not serve the endpoint (routing filters those
    /// out) gets the table's first path.
    pub fn path_for(&self, endpoint: Endpoint, model: &str, stream: bool) -> String {
        let spec = endpoint.spec();
        let suffix = spec
            .upstream_path(self.cfg.kind, self.cfg.dialect, model, stream)
            .unwrap_or_else(|| match spec.serve.first().map(|s| s.path) {
                Some(crate::endpoints::UpstreamPath::Suffix(s)) => s.to_owned(),
                _ => String::new(),
            });
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
    use crate::dialect::Dialect;

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

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_model_names_keep_the_breakers_bounded() {
        let health = Health::new();
        let cfg = Config::parse(
            "t.toml",
            "[[providers]]\nname = \"groq\"\nkind = \"groq\"\napi_keys = [\"k\"]\n",
            &|_| None,
        )
        .unwrap();
        let up = Upstream::new(
            cfg.providers[0].clone(),
            &health,
            BreakerConfig::default(),
            1,
        );
        let now = tokio::time::Instant::now();
        up.model_breaker("kept").record(false, now);
        for i in 0..10_000 {
            assert!(up.model_breaker(&format!("client-made-{i}")).allow(now));
        }
        let max = crate::resilience::MAX_MODEL_BREAKERS;
        assert!(health.model_breaker_count("groq") <= max);
        assert!(up.model_breakers.read().unwrap().len() <= max);
        // The one with a failure counted is the same breaker as before the flood.
        let kept = up.model_breaker("kept");
        assert!(!kept.is_idle());
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

    #[tokio::test(start_paused = true)]
    async fn admission_says_why_a_target_is_passed_over() {
        use crate::net::Resolver;
        use admit::Skip;
        let cfg = Config::parse(
            "t.toml",
            r#"
[[providers]]
name = "two-keys"
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
api_keys = ["k-1", "k-2"]
[[providers]]
name = "nowhere"
kind = "openai-compatible"
base_url = "http://no-such-host.invalid/v1"
[[providers]]
name = "keyless"
kind = "openai"
api_keys = ["env:UNSET_OUTBOUND_TEST_KEY"]
"#,
            &|_| None,
        )
        .unwrap();
        let health = Health::new();
        let u: Vec<Upstream> = cfg
            .providers
            .into_iter()
            .map(|p| Upstream::new(p, &health, BreakerConfig::default(), 1))
            .collect();
        let resolver = Resolver::new();
        let now = tokio::time::Instant::now();
        let a = u[0].admit(&resolver, "m", now).await.unwrap();
        assert_eq!(a.addr, "127.0.0.1:1".parse().unwrap());
        u[0].key_health[0].rest(now, std::time::Duration::from_secs(5), "rate_limited");
        for _ in 0..2 {
            let got = u[0].admit(&resolver, "m", now).await.map(|a| a.key_index);
            assert_eq!(got, Ok(Some(1)), "key #0 rests");
        }
        u[0].key_health[1].rest(now, std::time::Duration::from_secs(5), "rate_limited");
        assert_eq!(
            u[0].admit(&resolver, "m", now).await,
            Err(Skip::KeysResting)
        );
        assert_eq!(u[1].admit(&resolver, "m", now).await, Err(Skip::Dns));
        assert_eq!(u[2].admit(&resolver, "m", now).await, Err(Skip::NoKey));
        for _ in 0..BreakerConfig::default().failure_threshold {
            u[1].record_failure("m", now);
        }
        assert_eq!(
            u[1].admit(&resolver, "m", now).await,
            Err(Skip::CircuitOpen)
        );
        assert_eq!(Skip::CircuitOpen.as_str(), "circuit_open");
    }

    #[test]
    fn shaping_sets_path_host_key_and_framing_and_drops_the_rest() {
        use shape::RequestShape;
        let u = upstreams();
        let mut req = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in [
            ("authorization", "Bearer sk-sy-client"),
            ("x-switchyard-feature", "judge"),
            ("cookie", "a=b"),
            ("transfer-encoding", "chunked"),
            ("anthropic-version", "2023-06-01"),
            ("content-type", "text/plain"),
            ("x-custom", "kept"),
        ] {
            req.insert_header(k, v).unwrap();
        }
        let shape = RequestShape {
            endpoint: Endpoint::Messages,
            model: "m",
            stream: false,
            client_dialect: Dialect::Anthropic,
            body_len: 42,
            key_index: Some(1),
        };
        u[0].shape_request(&mut req, &shape).unwrap();
        assert_eq!(req.uri.path(), "/openai/v1/chat/completions");
        let h = |n: &str| req.headers.get(n).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h("authorization").as_deref(), Some("Bearer gk-2"));
        assert_eq!(h("host").as_deref(), Some("api.groq.com"));
        assert_eq!(h("content-length").as_deref(), Some("42"));
        assert_eq!(h("content-type").as_deref(), Some("application/json"));
        assert_eq!(h("x-custom").as_deref(), Some("kept"));
        for gone in [
            "x-switchyard-feature",
            "cookie",
            "transfer-encoding",
            "anthropic-version",
        ] {
            assert_eq!(h(gone), None, "{gone}");
        }
    }
}
