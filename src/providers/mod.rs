//! Providers at run time: where a request goes (base URL + endpoint path), which of the
//! provider's keys it carries, and how that key is presented.

pub mod presets;
pub mod url;

use crate::config::{ProviderConfig, Secret};
use crate::dialect::Endpoint;
use pingora_http::RequestHeader;
use presets::{AuthStyle, ANTHROPIC_VERSION};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Request headers that carry credentials, never forwarded from the client to a provider.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "x-goog-api-key"];

pub struct Upstream {
    pub cfg: ProviderConfig,
    next_key: AtomicUsize,
}

/// The key chosen for one attempt: its index (safe to log) and the secret.
pub struct KeyChoice<'a> {
    pub index: usize,
    pub secret: &'a Secret,
}

impl Upstream {
    pub fn new(cfg: ProviderConfig) -> Upstream {
        Upstream {
            cfg,
            next_key: AtomicUsize::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Round-robin over the provider's usable keys. `None` when it has none.
    pub fn pick_key(&self) -> Option<KeyChoice<'_>> {
        let keys = &self.cfg.keys;
        if keys.is_empty() {
            return None;
        }
        let index = self.next_key.fetch_add(1, Ordering::Relaxed) % keys.len();
        Some(KeyChoice {
            index,
            secret: &keys[index],
        })
    }

    /// Whether the provider can take a request at all (has a key, or needs none).
    pub fn usable(&self) -> bool {
        !self.cfg.keys.is_empty() || self.cfg.missing_keys.is_empty()
    }

    pub fn path_for(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.cfg.base_url.path, endpoint.upstream_suffix())
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
        cfg.providers.into_iter().map(Upstream::new).collect()
    }

    #[test]
    fn keys_rotate() {
        let u = upstreams();
        let picks: Vec<usize> = (0..4).map(|_| u[0].pick_key().unwrap().index).collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        assert!(u[2].pick_key().is_none());
        assert!(u[2].usable());
    }

    #[test]
    fn auth_replaces_client_credentials() {
        let u = upstreams();
        let mut req = RequestHeader::build("POST", b"/v1/messages", None).unwrap();
        req.insert_header("authorization", "Bearer sk-sy-client")
            .unwrap();
        req.insert_header("x-api-key", "sk-sy-client").unwrap();
        let key = u[1].pick_key().unwrap();
        u[1].apply_auth(&mut req, Some(key.secret)).unwrap();
        assert!(req.headers.get("authorization").is_none());
        assert_eq!(req.headers.get("x-api-key").unwrap(), "ak-1");
        assert_eq!(
            req.headers.get("anthropic-version").unwrap(),
            ANTHROPIC_VERSION
        );

        let mut req = RequestHeader::build("POST", b"/x", None).unwrap();
        req.insert_header("x-api-key", "sk-sy-client").unwrap();
        let key = u[0].pick_key().unwrap();
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
            u[0].path_for(Endpoint::ChatCompletions),
            "/openai/v1/chat/completions"
        );
    }
}
