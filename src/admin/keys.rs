//! Runtime gateway keys over the admin API: the same operations as `switchyard keys`, run on
//! a blocking thread (SQLite). The gateway follows the key store within a second.
//!
//! ```text
//! GET    /admin/keys                 every key with limits and this period's spend
//! POST   /admin/keys                 {"name", "models", "rpm", "tpm", "budget_usd", "period",
//!                                     "expires" | "ttl", "log_bodies"} -> 201 with the secret
//! POST   /admin/keys/{name}/revoke   (or DELETE /admin/keys/{name})
//! POST   /admin/keys/{name}/rotate   {"grace": "1h"} -> the new secret
//! ```

use crate::config::Config;
use crate::governance::keys::ops::{self, CreateSpec};
use crate::governance::keys::KeyError;
use serde_json::{json, Value};

/// The status for a key operation's error.
fn status(e: &KeyError) -> u16 {
    match e {
        KeyError::NotFound(_) => 404,
        KeyError::Exists(_) => 409,
        KeyError::Invalid(_) => 400,
        KeyError::Db(_) => 500,
    }
}

fn err(e: KeyError) -> (u16, Value) {
    (status(&e), json!({"error": e.to_string()}))
}

async fn blocking(f: impl FnOnce() -> (u16, Value) + Send + 'static) -> (u16, Value) {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => (500, json!({"error": e.to_string()})),
    }
}

pub async fn list(config: Config) -> (u16, Value) {
    blocking(move || match ops::list(&config) {
        Ok(rows) => (200, json!({"keys": rows})),
        Err(e) => err(e),
    })
    .await
}

pub async fn create(config: Config, body: &[u8]) -> (u16, Value) {
    let spec: CreateSpec = match serde_json::from_slice(body) {
        Ok(s) => s,
        Err(e) => return (400, json!({"error": format!("bad key spec: {e}")})),
    };
    blocking(move || match ops::create(&config, &spec) {
        Ok((secret, mut info)) => {
            info["key"] = json!(secret);
            (201, info)
        }
        Err(e) => err(e),
    })
    .await
}

pub async fn revoke(config: Config, name: String) -> (u16, Value) {
    blocking(move || match ops::revoke(&config, &name) {
        Ok(()) => (200, json!({"revoked": name})),
        Err(e) => err(e),
    })
    .await
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateSpec {
    grace: Option<String>,
}

pub async fn rotate(config: Config, name: String, body: &[u8]) -> (u16, Value) {
    let spec: RotateSpec = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSpec::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(s) => s,
            Err(e) => return (400, json!({"error": format!("bad rotate spec: {e}")})),
        }
    };
    let grace = match crate::governance::rules::parse_span(spec.grace.as_deref().unwrap_or("0s")) {
        Ok(g) => g,
        Err(e) => return (400, json!({"error": format!("grace: {e}")})),
    };
    blocking(move || match ops::rotate(&config, &name, grace) {
        Ok((secret, until)) => (
            200,
            json!({"name": name, "key": secret, "previous_secret_until": until}),
        ),
        Err(e) => err(e),
    })
    .await
}
