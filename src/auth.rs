//! Gateway keys: who is calling, what they may use, their limits and logging rule.
//!
//! Keys come from the config file and from the runtime key store (`switchyard keys ...`, the
//! admin API; see [`crate::governance::keys`]). Both are compared as SHA-256 digests in
//! constant time, against every key (and every rotated key's previous secret) with no early
//! exit, so response timing says nothing about how much of a guess was right. Expiry and a
//! rotation's grace period are checked against the clock on every request.

use crate::config::GatewayKeyConfig;
use crate::governance::keys::{LiveKeys, StoredKey};
use crate::governance::rules::{LogBodies, Rule};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

#[derive(Debug)]
pub struct GatewayKey {
    pub name: String,
    digest: [u8; 32],
    /// A rotated key's previous secret and the unix ms until which it still works.
    previous: Option<([u8; 32], i64)>,
    /// `None`: every model. Otherwise route names, `provider/model`, `provider/*` or `*`.
    models: Option<Vec<String>>,
    /// Where this key's cached answers live (its name unless configured).
    pub cache_namespace: String,
    /// Unix ms after which the key no longer works.
    pub expires_ms: Option<i64>,
    /// Rate limits and budget; `None` when the key has none.
    pub rule: Option<Arc<Rule>>,
    /// Its body-logging rule, if it sets one.
    pub log_bodies: Option<LogBodies>,
}

/// Why a presented key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Invalid,
    Expired,
}

#[derive(Default)]
pub struct KeyRing {
    keys: Vec<Arc<GatewayKey>>,
    /// The runtime key store's snapshot (absent in tests of the proxy alone).
    live: Option<Arc<LiveKeys>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("config_keys", &self.keys.len())
            .field("runtime_keys", &self.live.is_some())
            .finish()
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl KeyRing {
    pub fn new(keys: &[GatewayKeyConfig]) -> KeyRing {
        KeyRing {
            keys: keys
                .iter()
                .map(|k| Arc::new(GatewayKey::from_config(k)))
                .collect(),
            live: None,
        }
    }

    /// The config's keys and the runtime store's (a config key wins a name clash).
    pub fn with_live(keys: &[GatewayKeyConfig], live: Option<Arc<LiveKeys>>) -> KeyRing {
        KeyRing {
            live,
            ..KeyRing::new(keys)
        }
    }

    /// The key named `name` (names are unique).
    pub fn by_name(&self, name: &str) -> Option<Arc<GatewayKey>> {
        if let Some(k) = self.keys.iter().find(|k| k.name == name) {
            return Some(k.clone());
        }
        let live = self.live.as_ref()?.snapshot();
        live.iter().find(|k| k.name == name).cloned()
    }

    /// Whether a config key is named `name`.
    pub fn in_config(&self, name: &str) -> bool {
        self.keys.iter().any(|k| k.name == name)
    }

    pub fn authenticate(&self, presented: &str) -> Option<Arc<GatewayKey>> {
        self.check(presented, now_ms()).ok()
    }

    /// The key `presented` is, at `now_ms`: refused when unknown, revoked, expired or past
    /// its rotation grace period.
    pub fn check(&self, presented: &str, now_ms: i64) -> Result<Arc<GatewayKey>, Refused> {
        let d = digest(presented);
        let mut found: Option<(&Arc<GatewayKey>, bool)> = None;
        let live = self.live.as_ref().map(|l| l.load());
        let runtime = live.as_ref().map_or(&[][..], |v| v.as_slice());
        for k in self.keys.iter().chain(runtime) {
            let current = bool::from(k.digest.ct_eq(&d));
            let previous = k
                .previous
                .as_ref()
                .is_some_and(|(p, _)| bool::from(p.ct_eq(&d)));
            if (current || previous) && found.is_none() {
                found = Some((k, previous && !current));
            }
        }
        let (key, via_previous) = found.ok_or(Refused::Invalid)?;
        if via_previous && key.previous.is_some_and(|(_, until)| now_ms >= until) {
            return Err(Refused::Invalid);
        }
        if key.expires_ms.is_some_and(|e| now_ms >= e) {
            return Err(Refused::Expired);
        }
        if self.in_config(&key.name) && !self.keys.iter().any(|k| Arc::ptr_eq(k, key)) {
            // A runtime key shadowed by a config key of the same name.
            return Err(Refused::Invalid);
        }
        Ok(key.clone())
    }
}

impl GatewayKey {
    pub fn from_config(k: &GatewayKeyConfig) -> GatewayKey {
        GatewayKey {
            name: k.name.clone(),
            digest: digest(k.secret.expose()),
            previous: None,
            models: k.models.clone(),
            cache_namespace: k.cache_namespace.clone().unwrap_or_else(|| k.name.clone()),
            expires_ms: None,
            rule: (!k.rule.is_empty()).then(|| Arc::new(k.rule.clone())),
            log_bodies: k.log_bodies,
        }
    }

    pub fn from_store(k: &StoredKey) -> GatewayKey {
        GatewayKey {
            name: k.name.clone(),
            digest: k.digest,
            previous: k.previous,
            models: k.models.clone(),
            cache_namespace: k.name.clone(),
            expires_ms: k.expires_ms,
            rule: (!k.rule.is_empty()).then(|| Arc::new(k.rule.clone())),
            log_bodies: k.log_bodies,
        }
    }

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

/// The key a caller presented in a header: `Authorization: Bearer <key>`, `x-api-key: <key>`
/// or (as Gemini clients send it) `x-goog-api-key: <key>`. The admin API reads this alone: its
/// query strings are the dashboard's filters (`?key=<gateway key name>`), never credentials.
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
    None
}

/// The gateway key a model API client presented: a header ([`presented_key`]), or as Gemini
/// clients may send it, `?key=<key>` (the query string is never logged, and never forwarded:
/// each attempt's URL is built anew).
pub fn presented_gateway_key(req: &pingora_http::RequestHeader) -> Option<&str> {
    let has_header = [
        http::header::AUTHORIZATION.as_str(),
        "x-api-key",
        "x-goog-api-key",
    ]
    .iter()
    .any(|h| req.headers.contains_key(*h));
    if has_header {
        return presented_key(req);
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
                rule: Rule::default(),
                log_bodies: None,
            },
            GatewayKeyConfig {
                cache_namespace: None,
                name: "some".into(),
                secret: Secret::new("sk-sy-some-models".into(), "t".into()),
                models: Some(vec!["chat".into(), "groq/*".into()]),
                rule: Rule::default(),
                log_bodies: None,
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
        assert_eq!(presented_gateway_key(&req), Some("k3"));
        // A header-only reader (the admin API) never takes a key from the query string.
        assert_eq!(presented_key(&req), None);
        req.insert_header("x-goog-api-key", "k4").unwrap();
        assert_eq!(presented_gateway_key(&req), Some("k4"));
        assert_eq!(presented_key(&req), Some("k4"));
        let req = pingora_http::RequestHeader::build("GET", b"/v1beta/models?key=", None).unwrap();
        assert_eq!(presented_gateway_key(&req), None);
    }
}

#[cfg(test)]
mod runtime_tests {
    use super::*;
    use crate::governance::keys::store::{digest, StoredKey};

    fn stored(name: &str, secret: &str) -> StoredKey {
        StoredKey {
            name: name.into(),
            digest: digest(secret),
            previous: None,
            models: None,
            rule: Rule::default(),
            log_bodies: None,
            created_ms: 0,
            expires_ms: None,
            revoked_ms: None,
        }
    }

    #[test]
    fn runtime_keys_expire_rotate_and_revoke() {
        let live = Arc::new(LiveKeys::default());
        let ring = KeyRing::with_live(&[], Some(live.clone()));
        let mut a = stored("a", "sk-sy-new-secret");
        a.previous = Some((digest("sk-sy-old-secret"), 1_000));
        a.expires_ms = Some(5_000);
        let mut gone = stored("gone", "sk-sy-revoked");
        gone.revoked_ms = Some(1);
        live.replace(&[a, gone]);
        assert_eq!(ring.check("sk-sy-new-secret", 0).unwrap().name, "a");
        assert_eq!(ring.check("sk-sy-old-secret", 999).unwrap().name, "a");
        assert_eq!(
            ring.check("sk-sy-old-secret", 1_000).unwrap_err(),
            Refused::Invalid
        );
        assert_eq!(
            ring.check("sk-sy-new-secret", 5_000).unwrap_err(),
            Refused::Expired
        );
        assert_eq!(
            ring.check("sk-sy-revoked", 0).unwrap_err(),
            Refused::Invalid
        );
        // A swapped snapshot applies at once.
        live.replace(&[]);
        assert_eq!(
            ring.check("sk-sy-new-secret", 0).unwrap_err(),
            Refused::Invalid
        );
    }
}
