//! The admin port: Prometheus metrics, breaker and key health, config reload.
//!
//! ```text
//! GET  /metrics          Prometheus text format
//! GET  /admin/health     circuit breakers and provider keys (by origin, never the secret)
//! POST /admin/reload     re-read the config file (same as SIGHUP)
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
            ("GET", "/metrics") => reply(
                200,
                "text/plain; version=0.0.4",
                crate::metrics::render(&self.shared.health),
            ),
            ("GET", "/admin/health") => json_reply(
                200,
                self.shared.health.snapshot(tokio::time::Instant::now()),
            ),
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
