//! The routing seam: a strategy turns a route's usable candidates into an ordered list, and
//! says why. Every strategy yields an ordered list, so the attempt walk's fallback still applies
//! after its first choice.
//!
//! A strategy reads the request's [`Features`], the price list and (through [`Inputs`]) what
//! else the gateway knows; it never filters for capability: [`super::filter`] has already
//! removed the candidates that cannot serve this request, once, before any strategy runs.

use super::features::Features;
use crate::config::{PricingSettings, ProviderConfig, RouteConfig, Target};

/// What a strategy decides from.
pub struct Inputs<'a> {
    /// The route the client named (`None` for a direct `provider/model`).
    pub route: Option<&'a RouteConfig>,
    /// The candidates that can serve this request, in config order.
    pub candidates: Vec<Target>,
    pub features: &'a Features<'a>,
    pub pricing: &'a PricingSettings,
    /// Providers by index (`Target::provider`).
    pub providers: &'a [ProviderConfig],
}

/// An ordered candidate list and the reason for its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub candidates: Vec<Target>,
    pub reason: String,
}

/// One way of ordering candidates.
pub trait Strategy: Send + Sync {
    fn order(&self, inputs: Inputs<'_>) -> Decision;
}

/// The route's targets in config order: the first that answers serves.
pub struct Fallback;

impl Strategy for Fallback {
    fn order(&self, inputs: Inputs<'_>) -> Decision {
        Decision {
            candidates: inputs.candidates,
            reason: "fallback".to_owned(),
        }
    }
}
