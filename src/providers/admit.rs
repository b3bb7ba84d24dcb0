//! Whether a provider can take one more attempt at a model now, and with which key and address.
//! Proxied attempts and the gateway's own calls ([`crate::outbound`]) pass the same checks.

use super::Upstream;
use crate::net::Resolver;
pub use crate::summary::Skip;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// An attempt that may go ahead: the key it carries and the address it connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Index into the provider's keys (`None` for a provider without keys).
    pub key_index: Option<usize>,
    pub addr: SocketAddr,
}

impl Upstream {
    /// Checks, in order: a usable key exists, the breakers allow, some key is not resting (the
    /// next one in rotation is taken), the host resolves (non-blocking, cached: [`Resolver`]).
    /// Only then are the breakers' half-open probe slots taken, so an attempt that passes is
    /// certain to be made.
    pub async fn admit(
        &self,
        resolver: &Arc<Resolver>,
        model: &str,
        now: Instant,
    ) -> Result<Admitted, Skip> {
        if !self.usable() {
            return Err(Skip::NoKey);
        }
        let model_breaker = self.model_breaker(model);
        if !self.breaker.would_allow(now) || !model_breaker.would_allow(now) {
            return Err(Skip::CircuitOpen);
        }
        let key_index = if self.cfg.keys.is_empty() {
            None
        } else {
            Some(self.choose_key(now).ok_or(Skip::KeysResting)?.index)
        };
        let base = &self.cfg.base_url;
        let addr = match resolver.resolve(&base.host, base.port).await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("provider `{}`: {e}", self.name());
                return Err(Skip::Dns);
            }
        };
        if !self.breaker.allow(now) || !model_breaker.allow(now) {
            return Err(Skip::CircuitOpen);
        }
        Ok(Admitted { key_index, addr })
    }
}
