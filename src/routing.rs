//! Routing: the model a client asked for -> an ordered list of candidate targets.
//!
//! Any chat target may speak any dialect: the proxy translates the request for it (see
//! [`crate::dialect::translate`]). The list is the seam every strategy plugs into: today it is the route's fallback chain in
//! config order (or one `provider/model`); cost-, latency- or task-aware strategies reorder or
//! filter the same list later, and the proxy walks it attempt by attempt.

use crate::config::{Config, Target};
use crate::dialect::{Dialect, Endpoint};
use crate::error::{ErrorKind, GatewayError};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The route name, when the client addressed one.
    pub route: Option<String>,
    pub candidates: Vec<Target>,
}

pub struct Router {
    routes: HashMap<String, Vec<Target>>,
    /// Provider name -> index into the config's providers.
    providers: HashMap<String, usize>,
    /// Dialect of each provider, by index.
    dialects: Vec<Dialect>,
}

impl Router {
    pub fn new(config: &Config) -> Router {
        Router {
            routes: config
                .routes
                .iter()
                .map(|r| (r.name.clone(), r.targets.clone()))
                .collect(),
            providers: config
                .providers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
            dialects: config.providers.iter().map(|p| p.dialect).collect(),
        }
    }

    /// Resolves `model` into candidates for `endpoint`. Chat requests may go to a provider of
    /// any dialect (the request is translated); embeddings only to OpenAI-dialect providers.
    pub fn resolve(&self, model: &str, endpoint: Endpoint) -> Result<Resolved, GatewayError> {
        let (route, all) = if let Some(targets) = self.routes.get(model) {
            (Some(model.to_owned()), targets.clone())
        } else if let Some((provider, upstream_model)) = model.split_once('/') {
            let idx = self
                .providers
                .get(provider)
                .ok_or_else(|| not_found(model))?;
            if upstream_model.is_empty() {
                return Err(not_found(model));
            }
            (
                None,
                vec![Target {
                    provider: *idx,
                    model: upstream_model.to_owned(),
                }],
            )
        } else {
            return Err(not_found(model));
        };
        if endpoint != Endpoint::Embeddings {
            return Ok(Resolved {
                route,
                candidates: all,
            });
        }
        let candidates: Vec<Target> = all
            .into_iter()
            .filter(|t| self.dialects.get(t.provider) == Some(&Dialect::OpenAi))
            .collect();
        if candidates.is_empty() {
            return Err(GatewayError::bad_request(format!(
                "model `{model}` is served only by providers without an OpenAI-compatible \
                 embeddings endpoint"
            ))
            .with_param("model"));
        }
        Ok(Resolved { route, candidates })
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

    fn router() -> Router {
        let cfg = Config::parse(
            "t.toml",
            r#"
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
[[routes]]
name = "chat"
targets = ["groq/llama", "anthropic/claude", "openrouter/meta/llama"]
[[routes]]
name = "claude"
targets = ["anthropic/claude"]
"#,
            &|_| None,
        )
        .unwrap();
        Router::new(&cfg)
    }

    #[test]
    fn routes_keep_order_and_embeddings_filter_by_dialect() {
        let r = router().resolve("chat", Endpoint::ChatCompletions).unwrap();
        assert_eq!(r.route.as_deref(), Some("chat"));
        let models: Vec<_> = r.candidates.iter().map(|t| t.model.as_str()).collect();
        assert_eq!(models, ["llama", "claude", "meta/llama"]);
        let r = router().resolve("chat", Endpoint::Messages).unwrap();
        assert_eq!(r.candidates.len(), 3);
        let r = router().resolve("chat", Endpoint::Embeddings).unwrap();
        let models: Vec<_> = r.candidates.iter().map(|t| t.model.as_str()).collect();
        assert_eq!(models, ["llama", "meta/llama"]);
    }

    #[test]
    fn provider_slash_model_keeps_the_rest_of_the_name() {
        let r = router()
            .resolve("openrouter/anthropic/claude-3.5", Endpoint::ChatCompletions)
            .unwrap();
        assert_eq!(r.route, None);
        assert_eq!(r.candidates[0].model, "anthropic/claude-3.5");
        assert_eq!(r.candidates[0].provider, 2);
    }

    #[test]
    fn unknown_models_and_dialect_mismatches() {
        let chat = Endpoint::ChatCompletions;
        let e = router().resolve("nope/x", chat).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ModelNotFound);
        assert_eq!(router().resolve("gpt-4o", chat).unwrap_err().status(), 404);
        assert_eq!(router().resolve("groq/", chat).unwrap_err().status(), 404);
        let e = router()
            .resolve("claude", Endpoint::Embeddings)
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("embeddings"));
    }
}
