//! The config file as written: serde structs that mirror the TOML, with spans kept on every
//! value a validation error may point at. Nothing here is trusted; see `validate.rs`.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    pub mock: Option<RawMock>,
    pub admin: Option<RawAdmin>,
    pub resilience: Option<RawResilience>,
    pub pricing: Option<RawPricing>,
    pub ledger: Option<RawLedger>,
    pub translation: Option<RawTranslation>,
    pub cache: Option<RawCache>,
    pub limits: Option<super::governance::RawLimits>,
    pub logging: Option<super::governance::RawLogging>,
    pub telemetry: Option<super::telemetry::RawTelemetry>,
    #[serde(default)]
    pub features: Vec<Spanned<super::governance::RawFeature>>,
    pub conversations: Option<RawConversations>,
    #[serde(default)]
    pub providers: Vec<Spanned<RawProvider>>,
    #[serde(default)]
    pub gateway_keys: Vec<Spanned<RawGatewayKey>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub experiments: Vec<Spanned<super::experiments::RawExperiment>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address of the proxy port, e.g. "127.0.0.1:8080".
    pub listen: Option<Spanned<String>>,
    /// Worker threads for the proxy service (default: number of CPUs).
    pub threads: Option<Spanned<i64>>,
    /// Largest accepted request body: bytes, or a string such as "32MiB".
    pub max_body_size: Option<Spanned<RawSize>>,
    /// How long a graceful shutdown or upgrade lets in-flight requests finish, e.g. "30s".
    pub grace_period: Option<Spanned<String>>,
    /// Unix socket through which a new process (`serve --upgrade`) takes over the listening
    /// sockets of the running one; both must name the same path. Absolute.
    pub upgrade_sock: Option<Spanned<String>>,
    /// Where `serve --daemon` writes its process id once it is up. Absolute.
    pub pid_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Address of the admin port (metrics, breakers, reload), e.g. "127.0.0.1:9091".
    pub listen: Spanned<String>,
    /// Bearer token the admin port requires (`env:VAR` or literal); none: loopback only.
    pub key: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    /// "reject" (default): a model without a price is not served; "record_unknown": served,
    /// and its ledger rows are flagged `cost_unknown`.
    pub unpriced: Option<Spanned<String>>,
    /// A prices file (the format of conf/prices/, see its README) layered over the built-in
    /// list: negotiated discounts, private models, newer prices. Re-read on every reload.
    pub overrides: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// SQLite database file (created if missing).
    pub path: Option<Spanned<String>>,
    /// Rows queued for the writer before producers wait (then spill to disk).
    pub queue_capacity: Option<Spanned<i64>>,
    /// "sqlite" (default: the file at `path`) or "postgres://user@host/db" (one ledger for a
    /// fleet of gateways; spill files stay next to `path`).
    pub store: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Bytes of answers kept in memory, e.g. "256MiB" (fixed at start; a reload keeps it).
    pub max_size: Option<Spanned<RawSize>>,
    /// Largest answer stored, e.g. "8MiB".
    pub max_entry_size: Option<Spanned<RawSize>>,
    /// Longest time-to-live a route or request may ask for, e.g. "24h".
    pub max_ttl: Option<Spanned<String>>,
    /// How long identical requests wait for the first one's answer before calling the
    /// provider themselves, e.g. "30s".
    pub lock_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConversations {
    /// Bytes of Responses API conversation turns kept in memory for `previous_response_id`,
    /// e.g. "64MiB"; 0 keeps none.
    pub max_size: Option<Spanned<RawSize>>,
    /// How long a turn is kept after its last use, e.g. "1h".
    pub ttl: Option<Spanned<String>>,
}

/// `cache = { ttl = "10m", tool_calls = true }` on a route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCache {
    pub ttl: Spanned<String>,
    /// Whether answers that call tools are stored (default true).
    pub tool_calls: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTranslation {
    /// Top-level request fields dropped (instead of refused with a 400) when a request is
    /// translated for a provider that cannot express them, e.g. ["seed", "top_k"].
    #[serde(default)]
    pub drop: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResilience {
    pub max_attempts: Option<Spanned<i64>>,
    pub backoff_base: Option<Spanned<String>>,
    pub backoff_max: Option<Spanned<String>>,
    pub deadline: Option<Spanned<String>>,
    pub rate_limit_rest: Option<Spanned<String>>,
    pub auth_failure_rest: Option<Spanned<String>>,
    pub breaker_failures: Option<Spanned<i64>>,
    pub breaker_open_for: Option<Spanned<String>>,
    pub breaker_probes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMock {
    pub listen: Spanned<String>,
    pub ttft: Option<Spanned<String>>,
    pub itl: Option<Spanned<String>>,
    pub tokens: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub api_keys: Vec<Spanned<String>>,
    /// Models this provider serves, listed by `GET /v1/models` as `name/model`.
    #[serde(default)]
    pub models: Vec<Spanned<String>>,
    /// Time allowed to open a connection (TCP + TLS), e.g. "5s".
    pub connect_timeout: Option<Spanned<String>>,
    /// Longest wait for the first byte and between two reads of a response, e.g. "300s".
    pub read_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayKey {
    pub name: Spanned<String>,
    pub key: Spanned<String>,
    /// Models this key may use: route names, "provider/model", "provider/*" or "*".
    pub models: Option<Vec<Spanned<String>>>,
    /// Cached answers are scoped by gateway key; keys naming the same namespace share them.
    pub cache_namespace: Option<Spanned<String>>,
    /// Requests per minute.
    pub rpm: Option<Spanned<i64>>,
    /// Tokens per minute (prompt + completion).
    pub tpm: Option<Spanned<i64>>,
    /// `{ usd = "25.00", period = "day" }`: day | week | month | total.
    pub budget: Option<Spanned<super::governance::RawBudget>>,
    /// none (default) | full | redacted.
    pub log_bodies: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Spanned<String>,
    pub targets: Vec<Spanned<String>>,
    /// Overrides `[resilience] deadline` for this route.
    pub deadline: Option<Spanned<String>>,
    /// Overrides `[resilience] max_attempts` for this route.
    pub max_attempts: Option<Spanned<i64>>,
    /// Opt-in response caching for this route.
    pub cache: Option<Spanned<RawRouteCache>>,
    /// none | full | redacted (the key's rule applies when unset).
    pub log_bodies: Option<Spanned<String>>,
    /// How the targets are ordered (see `config::routing`).
    pub strategy: Option<Spanned<String>>,
    pub weights: Option<Vec<Spanned<i64>>>,
    pub rules: Option<Vec<RawRule>>,
    pub race: Option<Spanned<RawRace>>,
    pub hedge: Option<Spanned<RawHedge>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub when: RawWhen,
    #[serde(rename = "use")]
    pub route: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    pub has_tools: Option<bool>,
    pub has_images: Option<bool>,
    pub prompt_tokens_over: Option<Spanned<i64>>,
    pub max_tokens_over: Option<Spanned<i64>>,
    pub header: Option<std::collections::BTreeMap<String, String>>,
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRace {
    pub width: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHedge {
    pub after: Spanned<String>,
    pub max_extra: Option<Spanned<String>>,
}
