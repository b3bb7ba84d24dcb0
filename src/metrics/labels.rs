//! Bounded metric labels for model names. Clients may name any `provider/<model>` (with
//! `pricing.unpriced = "record_unknown"`), and every distinct label set lives in the registry
//! for ever. A model keeps its own label only if the gateway knows it (a route target, in its
//! provider's `models` list, or priced in the price book) and while fewer than
//! [`MAX_MODEL_LABELS`] models have one; every other model is counted as [`OTHER`].
//!
//! The common case is one read lock and a hash lookup; a model seen for the first time is
//! checked against the config once.

use crate::config::Config;
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// Most distinct model labels kept (across providers).
pub const MAX_MODEL_LABELS: usize = 512;
/// The label of every model that does not get its own.
pub const OTHER: &str = "other";

pub struct ModelLabels {
    cap: usize,
    /// Admitted models by provider name.
    admitted: RwLock<HashMap<String, HashSet<String>>>,
}

impl ModelLabels {
    pub fn new(cap: usize) -> ModelLabels {
        ModelLabels {
            cap,
            admitted: RwLock::new(HashMap::new()),
        }
    }

    /// The label for `model` served by the provider named `provider`.
    pub fn label<'a>(&self, config: &Config, provider: &str, model: &'a str) -> &'a str {
        if model.is_empty() {
            return model;
        }
        if let Ok(map) = self.admitted.read() {
            if map.get(provider).is_some_and(|m| m.contains(model)) {
                return model;
            }
        }
        if !known(config, provider, model) {
            return OTHER;
        }
        let Ok(mut map) = self.admitted.write() else {
            return OTHER;
        };
        let count: usize = map.values().map(HashSet::len).sum();
        let models = map.entry(provider.to_owned()).or_default();
        if models.contains(model) {
            return model;
        }
        if count >= self.cap {
            return OTHER;
        }
        models.insert(model.to_owned());
        model
    }

    /// Distinct model labels handed out (besides [`OTHER`]).
    pub fn len(&self) -> usize {
        self.admitted
            .read()
            .map(|m| m.values().map(HashSet::len).sum())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the config names `model` at `provider` (a route target or its `models` list), or
/// the price book prices it there.
fn known(config: &Config, provider: &str, model: &str) -> bool {
    let Some((index, p)) = config.provider(provider) else {
        return false;
    };
    p.models.iter().any(|m| m == model)
        || config
            .routes
            .iter()
            .flat_map(|r| &r.targets)
            .any(|t| t.provider == index && t.model == model)
        || config.pricing.lookup(p, model).is_some()
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
name = "openai"
kind = "openai"
api_keys = ["k"]
models = ["listed-model"]

[[providers]]
name = "local"
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"

[[routes]]
name = "r"
targets = ["local/route-model"]
"#,
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn ten_thousand_client_made_names_fold_into_other() {
        let c = config();
        let labels = ModelLabels::new(MAX_MODEL_LABELS);
        for i in 0..10_000 {
            assert_eq!(labels.label(&c, "openai", &format!("made-up-{i}")), OTHER);
        }
        assert!(labels.is_empty());
        assert_eq!(labels.label(&c, "openai", "listed-model"), "listed-model");
        assert_eq!(labels.label(&c, "local", "route-model"), "route-model");
        assert_eq!(
            labels.label(&c, "openai", "gpt-4o-mini"),
            "gpt-4o-mini",
            "priced"
        );
        // Known at one provider is not known at another.
        assert_eq!(labels.label(&c, "local", "listed-model"), OTHER);
        assert_eq!(labels.label(&c, "nobody", "gpt-4o-mini"), OTHER);
        assert_eq!(labels.len(), 3);
    }

    #[test]
    fn known_models_past_the_cap_fold_too() {
        let c = config();
        let labels = ModelLabels::new(2);
        assert_eq!(labels.label(&c, "openai", "listed-model"), "listed-model");
        assert_eq!(labels.label(&c, "local", "route-model"), "route-model");
        assert_eq!(labels.label(&c, "openai", "gpt-4o-mini"), OTHER);
        // Admitted ones keep their label.
        assert_eq!(labels.label(&c, "openai", "listed-model"), "listed-model");
        assert_eq!(labels.len(), 2);
    }
}
