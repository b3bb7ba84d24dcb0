//! Gateway keys: who is calling, and which models they may use.
//!
//! Keys are compared as SHA-256 digests in constant time, against every configured key with no
//! early exit, so response timing says nothing about how much of a guess was right.

use crate::config::GatewayKeyConfig;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug)]
pub struct GatewayKey {
    pub name: String,
    digest: [u8; 32],
    /// `None`: every model. Otherwise route names, `provider/model`, `provider/*` or `*`.
    models: Option<Vec<String>>,
    /// Where this key's cached answers live (its name unless configured).
    pub cache_namespace: String,
}

#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<GatewayKey>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl KeyRing {
    pub fn new(keys: &[GatewayKeyConfig]) -> KeyRing {
        KeyRing {
            keys: keys
                .iter()
                .map(|k| GatewayKey {
                    name: k.name.clone(),
                    digest: digest(k.secret.expose()),
                    models: k.models.clone(),
                    cache_namespace: k.cache_namespace.clone().unwrap_or_else(|| k.name.clone()),
                })
                .collect(),
        }
    }

    /// The cache namespace of the key named `name`.
    pub fn namespace_of(&self, name: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.cache_namespace.as_str())
    }

    /// The key named `name` (names are unique).
    pub fn by_name(&self, name: &str) -> Option<&GatewayKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    pub fn authenticate(&self, presented: &str) -> Option<&GatewayKey> {
        let d = digest(presented);
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&d)) {
                found = Some(k);
            }
        }
        found
    }
}

impl GatewayKey {
    /// Whether this key may call `model` (a route name or `provider/model`, as the client wrote it).
    pub fn allows(&self, model: &str) -> bool {
        let Some(patterns) = &self.models else {
            return true;
        };
        patterns.iter().any(|p| {
            p == "*"
                || p == model
                || p.strip_suffix("/*").is_some_and(|prov| {
                    model
                        .strip_prefix(prov)
                        .is_some_and(|rest| rest.starts_with('/'))
                })
        })
    }
}

/// The key a client presented: `Authorization: Bearer <key>`, `x-api-key: <key>`, or as
/// Gemini clients send it, `x-goog-api-key: <key>` or `?key=<key>` (the query string is never
/// logged, and never forwarded: each attempt's URL is built anew).
pub fn presented_key(req: &pingora_http::RequestHeader) -> Option<&str> {
    if let Some(v) = req.headers.get(http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, rest) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim())
            .filter(|k| !k.is_empty());
    }
    for h in ["x-api-key", "x-goog-api-key"] {
        if let Some(v) = req.headers.get(h) {
            return v.to_str().ok().map(str::trim).filter(|k| !k.is_empty());
        }
    }
    req.uri
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("key="))
        .filter(|k| !k.is_empty() && !k.contains('%'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn ring() -> KeyRing {
        KeyRing::new(&[
            GatewayKeyConfig {
                cache_namespace: None,
                name: "all".into(),
                secret: Secret::new("sk-sy-all-models".into(), "t".into()),
                models: None,
            },
            GatewayKeyConfig {
                cache_namespace: None,
                name: "some".into(),
                secret: Secret::new("sk-sy-some-models".into(), "t".into()),
                models: Some(vec!["chat".into(), "groq/*".into()]),
            },
        ])
    }

    #[test]
    fn authenticates_exact_keys_only() {
        let r = ring();
        assert_eq!(r.authenticate("sk-sy-all-models").unwrap().name, "all");
        assert_eq!(r.authenticate("sk-sy-some-models").unwrap().name, "some");
        assert!(r.authenticate("sk-sy-all-model").is_none());
        assert!(r.authenticate("").is_none());
    }

    #[test]
    fn allow_lists() {
        let r = ring();
        let some = r.authenticate("sk-sy-some-models").unwrap();
        assert!(some.allows("chat"));
        assert!(some.allows("groq/llama-3.3-70b"));
        assert!(!some.allows("groqx/llama"));
        assert!(!some.allows("openai/gpt-4o"));
        assert!(r
            .authenticate("sk-sy-all-models")
            .unwrap()
            .allows("anything/x"));
    }

    #[test]
    fn reads_bearer_and_x_api_key() {
        let mut req = pingora_http::RequestHeader::build("POST", b"/v1/messages", None).unwrap();
        assert_eq!(presented_key(&req), None);
        req.insert_header("x-api-key", "k1").unwrap();
        assert_eq!(presented_key(&req), Some("k1"));
        req.insert_header("authorization", "Bearer  k2 ").unwrap();
        assert_eq!(presented_key(&req), Some("k2"));
        req.insert_header("authorization", "Basic abc").unwrap();
        assert_eq!(presented_key(&req), None);
    }

    #[test]
    fn reads_gemini_clients_keys() {
        let mut req = pingora_http::RequestHeader::build(
            "POST",
            b"/v1beta/models/m:streamGenerateContent?alt=sse&key=k3",
            None,
        )
        .unwrap();
        assert_eq!(presented_key(&req), Some("k3"));
        req.insert_header("x-goog-api-key", "k4").unwrap();
        assert_eq!(presented_key(&req), Some("k4"));
        let req = pingora_http::RequestHeader::build("GET", b"/v1beta/models?key=", None).unwrap();
        assert_eq!(presented_key(&req), None);
    }
}
