//! The admin port: Prometheus metrics, breaker and key health, config reload.
//!
//! ```text
//! GET  /metrics          Prometheus text format
//! GET  /admin/health     circuit breakers and provider keys (by origin, never the secret)
//! POST /admin/reload     re-read the config file (same as SIGHUP)
//! GET  /admin/spend?by=key|feature|model|provider|route&since=7d   spend report (JSON)
//! GET  /admin/targets    live statistics per provider/model, with their breakers (JSON)
//! GET  /healthz
//! ```
//! With `admin.key` set, every path but `/healthz` needs `Authorization: Bearer <key>`.

use crate::config::Secret;
use crate::proxy::Shared;
use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub struct AdminApp {
    pub shared: Arc<Shared>,
    pub key: Option<Secret>,
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json_reply(status: u16, v: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", v.to_string().into_bytes())
}

impl AdminApp {
    /// The spend report, read on a blocking thread (SQLite) with the recent rows flushed first.
    async fn spend(&self, query: &str) -> Response<Vec<u8>> {
        let mut by = "key".to_owned();
        let mut since = "7d".to_owned();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("by", v)) => by = v.to_owned(),
                Some(("since", v)) => since = v.to_owned(),
                _ => {}
            }
        }
        let (by, since_ms) = match crate::ledger::parse_query(&by, &since) {
            Ok(q) => q,
            Err(e) => return json_reply(400, json!({"error": e})),
        };
        if let Some(l) = &self.shared.ledger {
            let _ = l.flush().await;
        }
        let path = self.shared.state().config.ledger.path.clone();
        match tokio::task::spawn_blocking(move || crate::ledger::spend_report(&path, by, since_ms))
            .await
        {
            Ok(Ok(r)) => json_reply(200, r.to_json()),
            Ok(Err(e)) => json_reply(500, json!({"error": e.to_string()})),
            Err(e) => json_reply(500, json!({"error": e.to_string()})),
        }
    }

    /// Live statistics per target ([`crate::stats`]) with the state of the target's breaker
    /// and its provider's (`closed`, `half_open`, `open`; `null` if none was made yet).
    fn targets(&self) -> serde_json::Value {
        let stats = &self.shared.stats;
        let breakers: std::collections::HashMap<String, &'static str> = self
            .shared
            .health
            .breaker_states(tokio::time::Instant::now())
            .into_iter()
            .map(|(name, state)| (name, state.name()))
            .collect();
        let targets: Vec<serde_json::Value> = stats
            .all()
            .into_iter()
            .map(|(provider, model, snap)| {
                let mut v = serde_json::to_value(&snap).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("provider".into(), json!(provider));
                    o.insert("model".into(), json!(model));
                    o.insert(
                        "breaker".into(),
                        json!(breakers.get(&format!("{provider}/{model}"))),
                    );
                    o.insert("provider_breaker".into(), json!(breakers.get(&provider)));
                }
                v
            })
            .collect();
        json!({
            "half_life_secs": stats.half_life().as_secs_f64(),
            "capacity": stats.capacity(),
            "targets": targets,
        })
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        let presented = crate::auth::presented_key(session.req_header()).unwrap_or("");
        let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let b: [u8; 32] = Sha256::digest(key.expose().as_bytes()).into();
        bool::from(a.ct_eq(&b))
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_owned();
        if path == "/healthz" {
            return json_reply(200, json!({"status": "ok"}));
        }
        if !self.authorized(session) {
            return json_reply(401, json!({"error": "admin key required"}));
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/metrics") => {
                crate::metrics::refresh_targets(&self.shared.stats);
                reply(
                    200,
                    "text/plain; version=0.0.4",
                    crate::metrics::render(
                        &self.shared.health,
                        self.shared.ledger.as_ref(),
                        self.shared.cache,
                    ),
                )
            }
            ("GET", "/admin/targets") => json_reply(200, self.targets()),
            ("GET", "/admin/health") => json_reply(
                200,
                self.shared.health.snapshot(tokio::time::Instant::now()),
            ),
            ("GET", "/admin/spend") => {
                self.spend(session.req_header().uri.query().unwrap_or(""))
                    .await
            }
            ("POST", "/admin/reload") => match self.shared.reload() {
                Ok(summary) => json_reply(200, json!({"reloaded": true, "config": summary})),
                Err(e) => json_reply(400, json!({"reloaded": false, "error": e})),
            },
            _ => json_reply(
                404,
                json!({"error": format!("no admin endpoint {method} {path}")}),
            ),
        }
    }
}
