//! Opt-in response caching on pingora-cache.
//!
//! - [`key`]: the canonical request hash every entry is found by (scoped by gateway key or a
//!   configured namespace by the proxy).
//! - [`record`]: answers are stored as canonical records, so one entry replays to OpenAI and
//!   Anthropic clients, streamed or not.
//! - [`store`]: [`BoundedStore`], the pingora-cache storage: in memory, bounded in bytes,
//!   committing an entry only when its answer finished.
//! - [`layer`]: [`CacheLayer`], the store with its LRU eviction manager and cache lock, built
//!   once per process.
pub mod key;
pub mod layer;
pub mod record;
pub mod store;

pub use layer::{CacheLayer, DEFAULT_LRU_SHARDS};

/// What the cache does for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Caching was not asked for.
    Off,
    /// Asked to skip the cache (or the request cannot be keyed).
    Bypass,
    On {
        ttl: std::time::Duration,
        tool_calls: bool,
        /// Namespace-framed canonical request hash.
        key: String,
        /// The client sent `Cache-Control: no-cache`: a stored answer is not served, the
        /// fresh one replaces it.
        refresh: bool,
    },
}

impl Plan {
    /// Whether a stored answer may be served (so the request may need no provider at all).
    pub fn may_serve_stored(&self) -> bool {
        matches!(self, Plan::On { refresh: false, .. })
    }
}

pub use store::{BoundedStore, StoreStats};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lock;
