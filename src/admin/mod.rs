//! The admin port: Prometheus metrics, breaker and key health, config reload, runtime gateway
//! keys and the request log. Documented in `docs/admin-openapi.yaml`.
//!
//! ```text
//! GET  /metrics          Prometheus text format
//! GET  /admin/health     circuit breakers and provider keys (by origin, never the secret)
//! GET  /admin/targets    every route's targets; live statistics per provider/model with breakers
//! POST /admin/reload     re-read the config file (same as SIGHUP)
//! GET  /admin/spend?by=key|feature|model|provider|route&since=7d   spend report (JSON)
//! GET|POST /admin/keys, POST /admin/keys/{name}/revoke|rotate, DELETE /admin/keys/{name}
//! GET  /admin/requests?limit=&before=&key=&model=&status=&feature=   newest first
//! GET  /admin/requests/{request_id}   the row, its attempts, its kept bodies
//! GET  /admin/spend/series?since=24h&buckets=24&by=key,feature,model,provider[&charts=svg]
//! GET  /healthz
//! GET  /ui ...           the dashboard (crate::dashboard)
//! ```
//! With `admin.key` set, every path but `/healthz` and the dashboard's login and assets needs
//! `Authorization: Bearer <key>` or a dashboard session cookie; an admin port off loopback
//! must have one (the config refuses it otherwise).

mod keys;
pub mod requests;

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
    /// The dashboard's login sessions.
    pub dashboard: crate::dashboard::Dashboard,
}

/// Whether `presented` is the admin key (constant time over SHA-256 digests).
pub fn key_matches(presented: &str, key: &str) -> bool {
    let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let b: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    bool::from(a.ct_eq(&b))
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
    pub fn new(shared: Arc<Shared>, key: Option<Secret>) -> AdminApp {
        AdminApp {
            shared,
            key,
            dashboard: crate::dashboard::Dashboard::default(),
        }
    }

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
            if let Some(pg) = l.postgres() {
                return match crate::ledger::postgres::read::spend_report(pg, by, since_ms).await {
                    Ok(r) => json_reply(200, r.to_json()),
                    Err(e) => json_reply(500, json!({"error": e.to_string()})),
                };
            }
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

    /// The ledger store the dashboard reads: Postgres when the ledger is there, else the file.
    fn ledger_source(&self) -> crate::dashboard::Source {
        crate::dashboard::Source::of(
            self.shared.ledger.as_ref(),
            self.shared.state().config.ledger.path.clone(),
        )
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        if let Some(presented) = crate::auth::presented_key(session.req_header()) {
            return key_matches(presented, key.expose());
        }
        let cookie = session
            .req_header()
            .headers
            .get(http::header::COOKIE)
            .and_then(|v| v.to_str().ok());
        self.dashboard.session_valid(cookie)
    }

    /// `/ui...`: the dashboard, which handles its own login.
    async fn ui(&self, session: &mut ServerSession, path: &str) -> Response<Vec<u8>> {
        let authorized = self.authorized(session);
        let method = session.req_header().method.as_str().to_owned();
        let body = if method == "POST" {
            match read_body(session).await {
                Ok(b) => b,
                Err(e) => return json_reply(400, json!({"error": e})),
            }
        } else {
            Vec::new()
        };
        let h = session.req_header();
        let req = crate::dashboard::UiRequest {
            method: &method,
            path,
            query: h.uri.query().unwrap_or(""),
            cookie: h
                .headers
                .get(http::header::COOKIE)
                .and_then(|v| v.to_str().ok()),
            authorized,
            key: self.key.as_ref().map(|k| k.expose()),
            source: self.ledger_source(),
            state: Some(self.shared.state()),
            experiments: self.shared.experiments.source().cloned(),
        };
        self.dashboard.serve(&req, &body).await
    }
}

/// Largest request body the admin API reads.
const MAX_ADMIN_BODY: usize = 1 << 20;

async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?
    {
        if body.len() + chunk.len() > MAX_ADMIN_BODY {
            return Err(format!("request body over {MAX_ADMIN_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl AdminApp {
    async fn flush_ledger(&self) {
        if let Some(l) = &self.shared.ledger {
            let _ = l.flush().await;
        }
    }

    /// `GET /admin/requests` and `GET /admin/requests/{id}`.
    async fn requests(&self, rest: &str, query: &str) -> Response<Vec<u8>> {
        self.flush_ledger().await;
        let path = self.shared.state().config.ledger.path.clone();
        if let Some(pg) = self.shared.ledger.as_ref().and_then(|l| l.postgres()) {
            return requests::from_postgres(pg, path, rest, query).await;
        }
        if rest.is_empty() {
            let q = match requests::parse_query(query) {
                Ok(q) => q,
                Err(e) => return json_reply(400, json!({"error": e})),
            };
            return match tokio::task::spawn_blocking(move || requests::list(&path, &q)).await {
                Ok(Ok(v)) => json_reply(200, v),
                Ok(Err(e)) => json_reply(500, json!({"error": e})),
                Err(e) => json_reply(500, json!({"error": e.to_string()})),
            };
        }
        let id = rest.to_owned();
        match tokio::task::spawn_blocking(move || requests::one(&path, &id)).await {
            Ok(Ok(Some(v))) => json_reply(200, v),
            Ok(Ok(None)) => json_reply(404, json!({"error": format!("no request {rest}")})),
            Ok(Err(e)) => json_reply(500, json!({"error": e})),
            Err(e) => json_reply(500, json!({"error": e.to_string()})),
        }
    }

    /// `GET /admin/experiments` (every experiment with its status) and
    /// `GET /admin/experiments/NAME` (its report), read from the ledger on a blocking thread.
    async fn experiments(&self, rest: &str) -> Response<Vec<u8>> {
        self.flush_ledger().await;
        let state = self.shared.state();
        let name = rest.to_owned();
        let ledger = self.shared.ledger.clone();
        let read = tokio::task::spawn_blocking(move || {
            let source = crate::experiments::source::for_config(&state.config, ledger.as_ref())?;
            if name.is_empty() {
                crate::experiments::report::list(&*source, &state.config)
                    .map(|l| json!({"experiments": l}))
            } else if state.config.experiment(&name).is_none() {
                Ok(serde_json::Value::Null)
            } else {
                crate::experiments::report::read(&*source, &state.config, &name)
                    .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
            }
        })
        .await;
        match read {
            Ok(Ok(serde_json::Value::Null)) => json_reply(
                404,
                json!({"error": format!("no experiment named `{rest}`")}),
            ),
            Ok(Ok(v)) => json_reply(200, v),
            Ok(Err(e)) => json_reply(500, json!({"error": e})),
            Err(e) => json_reply(500, json!({"error": e.to_string()})),
        }
    }

    /// `/admin/keys...`.
    async fn keys(&self, method: &str, rest: &str, body: &[u8]) -> Response<Vec<u8>> {
        let config = self.shared.state().config.clone();
        let (status, v) = match (method, rest.split_once('/')) {
            ("GET", None) if rest.is_empty() => keys::list(config).await,
            ("POST", None) if rest.is_empty() => keys::create(config, body).await,
            ("DELETE", None) if !rest.is_empty() => keys::revoke(config, rest.to_owned()).await,
            ("POST", Some((name, "revoke"))) => keys::revoke(config, name.to_owned()).await,
            ("POST", Some((name, "rotate"))) => keys::rotate(config, name.to_owned(), body).await,
            _ => (
                404,
                json!({"error": format!("no admin endpoint {method} /admin/keys/{rest}")}),
            ),
        };
        json_reply(status, v)
    }

    /// Every route's targets; and the live statistics of each provider/model
    /// ([`crate::stats`]) with the state of its breaker and its provider's (`closed`,
    /// `half_open`, `open`; `null` if none was made yet).
    fn targets(&self) -> Response<Vec<u8>> {
        let state = self.shared.state();
        let now = tokio::time::Instant::now();
        let health = self.shared.health.snapshot(now);
        let routes: Vec<_> = state
            .config
            .routes
            .iter()
            .map(|r| {
                json!({
                    "route": r.name,
                    "targets": r.targets.iter().map(|t| {
                        format!("{}/{}", state.config.providers[t.provider].name, t.model)
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        let stats = &self.shared.stats;
        let breakers: std::collections::HashMap<String, &'static str> = self
            .shared
            .health
            .breaker_states(now)
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
        json_reply(
            200,
            json!({
                "routes": routes,
                "health": health,
                "half_life_secs": stats.half_life().as_secs_f64(),
                "capacity": stats.capacity(),
                "targets": targets,
            }),
        )
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
        if path == "/ui" || path.starts_with("/ui/") {
            return self.ui(session, &path).await;
        }
        if !self.authorized(session) {
            return json_reply(401, json!({"error": "admin key required"}));
        }
        let query = session.req_header().uri.query().unwrap_or("").to_owned();
        if let Some(rest) = path.strip_prefix("/admin/keys") {
            if rest.is_empty() || rest.starts_with('/') {
                let body = match read_body(session).await {
                    Ok(b) => b,
                    Err(e) => return json_reply(400, json!({"error": e})),
                };
                let rest = rest.trim_start_matches('/');
                return self.keys(method.as_str(), rest, &body).await;
            }
        }
        if let ("GET", Some(rest)) = (method.as_str(), path.strip_prefix("/admin/requests")) {
            if rest.is_empty() || rest.starts_with('/') {
                return self.requests(rest.trim_start_matches('/'), &query).await;
            }
        }
        if let ("GET", Some(rest)) = (method.as_str(), path.strip_prefix("/admin/experiments")) {
            if rest.is_empty() || rest.starts_with('/') {
                return self.experiments(rest.trim_matches('/')).await;
            }
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/admin/targets") => self.targets(),
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
            ("GET", "/admin/health") => json_reply(
                200,
                self.shared.health.snapshot(tokio::time::Instant::now()),
            ),
            ("GET", "/admin/spend/series") => {
                self.flush_ledger().await;
                let (status, v) =
                    crate::dashboard::series_json(&self.ledger_source(), &query).await;
                json_reply(status, v)
            }
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
