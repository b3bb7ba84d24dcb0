//! Configuration: the TOML file is parsed into `raw` structs (unknown fields rejected), then
//! validated into the types below, which the rest of the gateway trusts. Every error names the
//! file, line, column and field; problems that do not stop the gateway (a provider key whose
//! environment variable is unset) are collected as warnings, reported at start and by `check`.

mod cache;
mod conversations;
pub(crate) mod error;
pub mod experiments;
mod governance;
mod raw;
mod routing;
pub mod secret;
pub mod telemetry;
pub mod units;
mod validate;

pub use error::ConfigError;
pub use secret::Secret;

use crate::dialect::Dialect;
use crate::providers::presets::AuthStyle;
use crate::providers::url::BaseUrl;
pub use crate::resilience::Policy;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The demo configuration compiled into the binary: `switchyard serve` with no `--config`.
pub const DEMO_CONFIG: &str = include_str!("../../conf/demo.toml");
pub const DEMO_CONFIG_NAME: &str = "<embedded conf/demo.toml>";

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub mock: Option<MockSettings>,
    pub admin: Option<AdminSettings>,
    pub resilience: Policy,
    pub pricing: PricingSettings,
    pub ledger: LedgerSettings,
    /// The response cache (`[cache]`).
    pub cache: CacheSettings,
    /// Responses API conversation state (`[conversations]`).
    pub conversations: ConversationSettings,
    /// How requests are translated between dialects (`[translation]`).
    pub translation: crate::dialect::canonical::TranslateOptions,
    pub providers: Vec<ProviderConfig>,
    pub gateway_keys: Vec<GatewayKeyConfig>,
    pub routes: Vec<RouteConfig>,
    /// A/B experiments on routes (`[[experiments]]`).
    pub experiments: Vec<experiments::ExperimentConfig>,
    /// Where rate limits and budgets are counted (`[limits]`).
    pub limits: LimitsSettings,
    /// Limits on feature tags (`[[features]]`).
    pub features: Vec<FeatureConfig>,
    /// Kept bodies: retention and redaction (`[logging]`).
    pub logging: LoggingSettings,
    /// OpenTelemetry trace export (`[telemetry]`).
    pub telemetry: telemetry::TelemetrySettings,
    /// Whether any route sets `log_bodies` (so a request whose key sets none need not look).
    pub routes_log_bodies: bool,
    /// Problems that do not stop the gateway, each naming file, line and field.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: String,
    pub threads: usize,
    pub max_body_size: usize,
    pub grace_period: Duration,
    /// The graceful-upgrade socket (pingora's `upgrade_sock`).
    pub upgrade_sock: std::path::PathBuf,
    /// Where `serve --daemon` writes its process id once it is up.
    pub pid_file: std::path::PathBuf,
}

/// How calls are priced (`[pricing]`).
#[derive(Debug, Clone)]
pub struct PricingSettings {
    pub unpriced: crate::pricing::UnpricedPolicy,
    /// The price list in force: built-in list plus overrides.
    pub book: std::sync::Arc<crate::pricing::PriceBook>,
}

/// Where calls are recorded (`[ledger]`).
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    pub path: std::path::PathBuf,
    pub queue_capacity: usize,
    /// `Some` when `[ledger] store` is a Postgres URL; `None` = SQLite at `path`.
    pub postgres: Option<crate::ledger::postgres::PgUrl>,
}

impl PricingSettings {
    /// The price in force today for `model` at `provider`: by the provider's configured name
    /// first, then by its preset kind (a provider named "groq-eu" of kind "groq" gets Groq's).
    pub fn lookup(
        &self,
        provider: &ProviderConfig,
        model: &str,
    ) -> Option<&crate::pricing::ModelPrice> {
        let today = crate::pricing::PriceDate::today();
        self.book
            .lookup_for(&crate::pricing::provider_names(provider), model, today)
    }

    /// What `model` at `provider` can do (context window, output limit, features), resolved
    /// like [`lookup`](Self::lookup); `None` when not known.
    pub fn capabilities(
        &self,
        provider: &ProviderConfig,
        model: &str,
    ) -> Option<&crate::pricing::Capabilities> {
        self.book.capabilities(provider, model)
    }

    /// The model's capabilities with their life cycle (deprecated, retired) and provenance.
    pub fn model_info(
        &self,
        provider: &ProviderConfig,
        model: &str,
    ) -> Option<&crate::pricing::ModelInfo> {
        self.book
            .model_info_for(&crate::pricing::provider_names(provider), model)
    }

    /// The exact cost of a call; `None` when the model has no price.
    pub fn cost(
        &self,
        provider: &ProviderConfig,
        model: &str,
        usage: &crate::usage::Usage,
    ) -> Option<crate::pricing::Cost> {
        self.lookup(provider, model)?.cost(usage)
    }
}

pub use cache::{CacheSettings, RouteCache};
pub use conversations::ConversationSettings;
pub use governance::{FeatureConfig, LimitStore, LimitsSettings, LoggingSettings};
pub use routing::{HedgeAfter, HedgeConfig, Rule, StrategyConfig, When};

pub const DEFAULT_LEDGER_PATH: &str = "switchyard-ledger.db";

/// The admin port: metrics, breaker and key state, config reload.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub key: Option<Secret>,
}

/// The built-in mock provider, started in-process (the offline demo).
#[derive(Debug, Clone)]
pub struct MockSettings {
    pub listen: SocketAddr,
    pub ttft: Duration,
    pub itl: Duration,
    pub tokens: usize,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: crate::providers::ProviderKind,
    pub dialect: Dialect,
    pub auth: AuthStyle,
    pub base_url: BaseUrl,
    /// Usable keys (unset environment variables already dropped, with a warning).
    pub keys: Vec<Secret>,
    /// Keys written in the config whose environment variable was unset.
    pub missing_keys: Vec<String>,
    pub models: Vec<String>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct GatewayKeyConfig {
    pub name: String,
    pub secret: Secret,
    /// Allow-list of model patterns; `None` allows every model.
    pub models: Option<Vec<String>>,
    /// The cache namespace (default: the key's name).
    pub cache_namespace: Option<String>,
    /// Rate limits and budget (empty: none).
    pub rule: crate::governance::rules::Rule,
    pub log_bodies: Option<crate::governance::rules::LogBodies>,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub targets: Vec<Target>,
    pub deadline: Option<Duration>,
    pub max_attempts: Option<u32>,
    pub cache: Option<RouteCache>,
    pub strategy: StrategyConfig,
    pub log_bodies: Option<crate::governance::rules::LogBodies>,
}

/// One concrete model at one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Index into `Config::providers`.
    pub provider: usize,
    pub model: String,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BODY_SIZE: usize = 32 << 20;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/switchyard_upgrade.sock";
pub const DEFAULT_PID_FILE: &str = "/tmp/switchyard.pid";

impl Config {
    /// Reads and validates a config file, resolving `env:` secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            field: "(file)".into(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::parse(&name, &text, &|var| std::env::var(var).ok())
    }

    /// The embedded demo config.
    pub fn demo() -> Result<Config, ConfigError> {
        Self::parse(DEMO_CONFIG_NAME, DEMO_CONFIG, &|var| {
            std::env::var(var).ok()
        })
    }

    /// Validates config text; `lookup` resolves environment variables (injectable for tests).
    pub fn parse(
        file: &str,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        validate::validate(file, text, lookup)
    }

    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The longest deadline any request may have: `[resilience] deadline` or a route's own.
    /// Bounds a request body's upload, which ends before the route is known.
    pub fn max_deadline(&self) -> Duration {
        self.routes
            .iter()
            .filter_map(|r| r.deadline)
            .fold(self.resilience.deadline, Duration::max)
    }

    /// The experiment running on `route`, if any.
    pub fn experiment_for_route(&self, route: &str) -> Option<&experiments::ExperimentConfig> {
        self.experiments.iter().find(|e| e.route == route)
    }

    pub fn experiment(&self, name: &str) -> Option<&experiments::ExperimentConfig> {
        self.experiments.iter().find(|e| e.name == name)
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureConfig> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Whether any configured key or feature has a limit (runtime keys are checked apart).
    pub fn has_limits(&self) -> bool {
        !self.features.is_empty() || self.gateway_keys.iter().any(|k| !k.rule.is_empty())
    }

    pub fn provider(&self, name: &str) -> Option<(usize, &ProviderConfig)> {
        self.providers
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
    }
}
