//! Routing: the model a client asked for -> an ordered list of candidate targets, with the
//! reason for their order.
//!
//! [`Router::plan`] runs the same steps for every request, in order:
//! 1. the key's allow-list, against the model the client named ([`filter::allowed`]);
//! 2. resolution: a route name gives its targets, `provider/model` gives one target;
//! 3. capability filtering, once ([`filter::usable`]): endpoint dialect, price policy, the
//!    model's capabilities (context window, vision), translatability;
//! 4. the route's [`Strategy`] orders what is left and says why ([`strategy`]).
//!
//! Health (open breakers, resting keys) is not a filter here: it changes while a request
//! waits, so the attempt walk asks [`filter::available_at`] at each attempt.

pub mod cheapest;
pub mod fastest;
pub mod features;
pub mod filter;
pub mod race;
pub mod rules;
pub mod strategy;
pub mod weighted;

use crate::auth::GatewayKey;
use crate::config::{Config, StrategyConfig, Target};
use crate::dialect::translate::RequestTranslator;
use crate::dialect::{Dialect, Endpoint};
use crate::error::{ErrorKind, GatewayError};
pub use features::Features;
use std::collections::HashMap;
use std::sync::Arc;
pub use strategy::{Decision, Fallback, Inputs, Strategy};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The route name, when the client addressed one.
    pub route: Option<String>,
    pub candidates: Vec<Target>,
}

/// A request's routing decision.
pub struct Plan {
    pub route: Option<String>,
    pub candidates: Vec<Target>,
    /// Why the candidates are in this order (`x-switchyard-route-reason`, the ledger).
    pub reason: String,
    /// The request in the canonical model, when some candidate speaks another dialect.
    pub translator: Option<RequestTranslator>,
}

/// What [`Router::plan`] needs to know about the request.
pub struct Request<'a> {
    pub key: &'a GatewayKey,
    pub endpoint: Endpoint,
    /// The client's dialect.
    pub dialect: Dialect,
    /// The model as the client wrote it.
    pub model: &'a str,
    pub stream: bool,
    pub body: &'a [u8],
    /// Where the fields routing reads are in `body` (the request probe's
    /// [`crate::dialect::RequestProbe::fields`]).
    pub fields: &'a crate::dialect::BodyFields,
    pub headers: &'a http::HeaderMap,
}

pub struct Router {
    /// Route name -> index into the config's routes.
    routes: HashMap<String, usize>,
    /// Provider name -> index into the config's providers.
    providers: HashMap<String, usize>,
    /// Each route's strategy, by route index.
    strategies: Vec<Arc<dyn Strategy>>,
    /// For `provider/model` requests.
    direct: Arc<dyn Strategy>,
    /// Each route's hedge counters, by route index (used by hedge routes only).
    hedges: Vec<race::HedgeBudget>,
    /// Some route is `fastest`: served answers feed the latency fits.
    has_fastest: bool,
}

impl Router {
    /// A router with statistics of its own (tests, benches).
    pub fn new(config: &Config) -> Router {
        Router::with_stats(config, Arc::default())
    }

    /// A router whose `cheapest` and `fastest` routes read the process-wide `stats`.
    pub fn with_stats(config: &Config, stats: Arc<crate::stats::TargetStats>) -> Router {
        Router {
            routes: config
                .routes
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i))
                .collect(),
            providers: config
                .providers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
            strategies: config
                .routes
                .iter()
                .map(|r| strategy_for(&r.strategy, &stats))
                .collect(),
            direct: Arc::new(Fallback),
            hedges: config.routes.iter().map(|_| Default::default()).collect(),
            has_fastest: config
                .routes
                .iter()
                .any(|r| r.strategy == StrategyConfig::Fastest),
        }
    }

    /// Whether some route is `fastest` (then served answers feed [`fastest::LatencyModels`]).
    pub fn has_fastest(&self) -> bool {
        self.has_fastest
    }

    /// How a race or hedge route runs its legs (`None` for every other route, and for a
    /// direct `provider/model`).
    pub fn race_mode(&self, config: &Config, route: &str) -> Option<race::Mode> {
        let &i = self.routes.get(route)?;
        race::Mode::of(&config.routes[i].strategy)
    }

    /// A route's hedge counters.
    pub fn hedge_budget(&self, route: &str) -> Option<&race::HedgeBudget> {
        self.routes.get(route).and_then(|&i| self.hedges.get(i))
    }

    /// Resolves `model` (a route name or `provider/model`) into its targets, in config order.
    pub fn resolve(&self, config: &Config, model: &str) -> Result<Resolved, GatewayError> {
        if let Some(&i) = self.routes.get(model) {
            return Ok(Resolved {
                route: Some(model.to_owned()),
                candidates: config.routes[i].targets.clone(),
            });
        }
        let Some((provider, upstream_model)) = model.split_once('/') else {
            return Err(not_found(model));
        };
        let idx = self
            .providers
            .get(provider)
            .ok_or_else(|| not_found(model))?;
        if upstream_model.is_empty() {
            return Err(not_found(model));
        }
        Ok(Resolved {
            route: None,
            candidates: vec![Target {
                provider: *idx,
                model: upstream_model.to_owned(),
            }],
        })
    }

    /// The whole routing decision for one request (see the module doc for its steps).
    pub fn plan(&self, config: &Config, req: &Request<'_>) -> Result<Plan, GatewayError> {
        filter::allowed(req.key, req.model)?;
        let features = Features::new(
            req.endpoint,
            Some(req.key.name.as_str()),
            req.stream,
            req.headers,
            req.body,
            req.fields,
        );
        // Rules send the request on to another route (validated: no loops, so this ends).
        let mut name = req.model;
        let mut via = Vec::new();
        while let Some(&i) = self.routes.get(name) {
            let StrategyConfig::Rules(rules) = &config.routes[i].strategy else {
                break;
            };
            let Some((j, rule)) = rules::first_match(rules, &features) else {
                via.push(format!("rules: no rule matched `{name}`"));
                break;
            };
            via.push(format!(
                "rules: `{name}` rule {j} ({}) -> `{}`",
                rules::describe(&rule.when),
                rule.route
            ));
            name = &rule.route;
        }
        let mut plan = self.plan_route(config, req, name, &features)?;
        if !via.is_empty() {
            via.push(plan.reason);
            plan.reason = via.join("; ");
        }
        Ok(plan)
    }

    fn plan_route(
        &self,
        config: &Config,
        req: &Request<'_>,
        model: &str,
        features: &Features<'_>,
    ) -> Result<Plan, GatewayError> {
        let resolved = self.resolve(config, model)?;
        let usable = filter::usable(
            config,
            req.dialect,
            req.model,
            features,
            resolved.candidates,
        )?;
        let route_index = resolved.route.as_deref().and_then(|r| self.routes.get(r));
        let strategy = route_index.map_or(&self.direct, |&i| &self.strategies[i]);
        let decision = strategy.order(Inputs {
            route: route_index.map(|&i| &config.routes[i]),
            candidates: usable.candidates,
            features,
            pricing: &config.pricing,
            providers: &config.providers,
        });
        let mut reason = decision.reason;
        if !usable.removed.is_empty() {
            reason.push_str("; removed ");
            reason.push_str(&usable.removed.join(", "));
        }
        Ok(Plan {
            route: resolved.route,
            candidates: decision.candidates,
            reason,
            translator: usable.translator,
        })
    }
}

/// The strategy object for a route's config.
fn strategy_for(s: &StrategyConfig, stats: &Arc<crate::stats::TargetStats>) -> Arc<dyn Strategy> {
    match s {
        StrategyConfig::Cheapest => Arc::new(cheapest::Cheapest {
            stats: stats.clone(),
        }),
        StrategyConfig::Fastest => Arc::new(fastest::Fastest {
            stats: stats.clone(),
        }),
        StrategyConfig::Weighted(w) => Arc::new(weighted::Weighted { weights: w.clone() }),
        // Rules redirect before a strategy runs; their fall-through is config order.
        StrategyConfig::Fallback | StrategyConfig::Rules(_) => Arc::new(Fallback),
        // Races and hedges run their legs in config order (the race layer).
        StrategyConfig::Race { .. } | StrategyConfig::Hedge(_) => Arc::new(Fallback),
    }
}

fn not_found(model: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::ModelNotFound,
        format!("The model `{model}` does not exist or is not configured on this gateway"),
    )
    .with_param("model")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "t.toml",
            r#"
[pricing]
unpriced = "record_unknown"
[[providers]]
name = "groq"
kind = "groq"
api_keys = ["k"]
[[providers]]
name = "anthropic"
kind = "anthropic"
api_keys = ["k"]
[[providers]]
name = "openrouter"
kind = "openrouter"
api_keys = ["k"]
[[gateway_keys]]
name = "all"
key = "sk-all-keys"
[[gateway_keys]]
name = "claude-only"
key = "sk-claude-only"
models = ["claude"]
[[routes]]
name = "chat"
targets = ["groq/llama", "anthropic/claude", "openrouter/meta/llama"]
[[routes]]
name = "claude"
targets = ["anthropic/claude"]
"#,
            &|_| None,
        )
        .unwrap()
    }

    fn plan(key: &str, model: &str, endpoint: Endpoint) -> Result<Plan, GatewayError> {
        let cfg = config();
        let keys = crate::auth::KeyRing::new(&cfg.gateway_keys);
        let key = keys.authenticate(key).unwrap();
        let key = &*key;
        let body = if endpoint == Endpoint::Embeddings {
            format!(r#"{{"model":"{model}","input":"x"}}"#)
        } else {
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
        };
        let headers = http::HeaderMap::new();
        let fields = crate::dialect::BodyFields::of(body.as_bytes());
        Router::new(&cfg).plan(
            &cfg,
            &Request {
                key,
                endpoint,
                dialect: endpoint.dialect(),
                model,
                stream: false,
                body: body.as_bytes(),
                fields: &fields,
                headers: &headers,
            },
        )
    }

    fn models(p: &Plan) -> Vec<&str> {
        p.candidates.iter().map(|t| t.model.as_str()).collect()
    }

    #[test]
    fn routes_keep_order_and_embeddings_filter_by_dialect() {
        let p = plan("sk-all-keys", "chat", Endpoint::ChatCompletions).unwrap();
        assert_eq!(p.route.as_deref(), Some("chat"));
        assert_eq!(models(&p), ["llama", "claude", "meta/llama"]);
        assert_eq!(p.reason, "fallback");
        assert!(p.translator.is_some(), "anthropic speaks another dialect");
        let p = plan("sk-all-keys", "chat", Endpoint::Embeddings).unwrap();
        assert_eq!(models(&p), ["llama", "meta/llama"]);
        assert_eq!(p.reason, "fallback; removed anthropic/claude (endpoint)");
    }

    #[test]
    fn provider_slash_model_keeps_the_rest_of_the_name() {
        let p = plan(
            "sk-all-keys",
            "openrouter/anthropic/claude-3.5",
            Endpoint::ChatCompletions,
        )
        .unwrap();
        assert_eq!(p.route, None);
        assert_eq!(p.candidates[0].model, "anthropic/claude-3.5");
        assert_eq!(p.candidates[0].provider, 2);
        assert!(p.translator.is_none());
    }

    #[test]
    fn unknown_models_dialect_mismatches_and_the_allow_list() {
        let chat = Endpoint::ChatCompletions;
        let e = plan("sk-all-keys", "nope/x", chat).err().unwrap();
        assert_eq!(e.kind, ErrorKind::ModelNotFound);
        assert_eq!(
            plan("sk-all-keys", "gpt-4o", chat).err().unwrap().status(),
            404
        );
        assert_eq!(
            plan("sk-all-keys", "groq/", chat).err().unwrap().status(),
            404
        );
        let e = plan("sk-all-keys", "claude", Endpoint::Embeddings)
            .err()
            .unwrap();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("embeddings"));
        let e = plan("sk-claude-only", "chat", chat).err().unwrap();
        assert_eq!(e.status(), 403);
        assert!(plan("sk-claude-only", "claude", chat).is_ok());
    }
}
