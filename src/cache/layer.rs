//! `CacheLayer`: the process-wide cache objects `HttpCache::enable` needs, built once.
//!
//! `pingora_cache::HttpCache::enable` takes `&'static` storage, eviction manager and cache lock,
//! shared by every request. [`CacheLayer::new`] builds them and leaks them (and itself) once.
//!
//! **The byte limits are fixed when the layer is built.** A config reload must keep using the
//! existing layer: calling `new` again would leak a second, empty cache (and split the lock
//! table, defeating stampede protection), and nothing here resizes the store. Changing
//! `max_bytes` / `max_entry_bytes` takes a restart (or a graceful upgrade).
//!
//! How the pieces meet inside pingora-cache 0.9.1:
//! - `HttpCache::finish_miss_handler` admits the finished entry into the LRU [`lru::Manager`]
//!   with the weight [`BoundedStore`] returned from `finish` (meta + body bytes) and spawns a
//!   tokio task purging every victim from storage (`PurgeTarget::Exact`, `PurgeType::Eviction`).
//! - `HttpCache::cache_found` reports hits to the manager (`access`), which keeps hot entries.
//! - `HttpCache::purge` removes from storage and then from the manager.

use std::time::Duration;

use pingora_cache::eviction::lru;
use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::{CacheOptionOverrides, HttpCache};

use super::store::{BoundedStore, StoreStats};

/// LRU shards used in production: one, so eviction is exact least-recently-used order. With
/// several shards pingora's manager evicts from the longer of two random shards, which can
/// evict the entry just stored when it is alone in its shard (seen in CI). The shard lock is
/// taken once per cache lookup or fill, which a gateway's request rate does not contend.
pub const DEFAULT_LRU_SHARDS: usize = 1;

/// Average entry size assumed to pre-size the LRU shards (a hint only, not a limit).
const ASSUMED_ENTRY_BYTES: usize = 16 * 1024;
/// Cap of the per-shard pre-allocation hint.
const MAX_SHARD_PREALLOC: usize = 4096;

/// The leaked, process-wide cache objects. `N` is the number of LRU shards.
pub struct CacheLayer<const N: usize = DEFAULT_LRU_SHARDS> {
    /// Where entries live.
    pub storage: &'static BoundedStore,
    /// Byte-weighted LRU; its capacity is the store's `max_bytes`.
    pub eviction: &'static lru::Manager<N>,
    /// Stampede protection: one request fills a key, the others wait for it.
    pub lock: &'static CacheKeyLockImpl,
    lock_wait: Duration,
}

impl CacheLayer<DEFAULT_LRU_SHARDS> {
    /// Build and leak the cache objects, with [`DEFAULT_LRU_SHARDS`] LRU shards. Call once per
    /// process (see the module docs).
    ///
    /// - `max_bytes`: bound on stored bytes (meta + body); the LRU capacity.
    /// - `max_entry_bytes`: largest response *body* cached (clamped to `max_bytes`); also set
    ///   on each request as pingora's max file size, so larger bodies stop being written early.
    /// - `lock_age`: how long a writer may hold a key's lock before waiting readers stop
    ///   trusting it and compete for it again.
    /// - `lock_wait`: how long a reader waits behind a writer in total before it gives up and
    ///   goes upstream without caching (`NoCacheReason::CacheLockTimeout`).
    pub fn new(
        max_bytes: usize,
        max_entry_bytes: usize,
        lock_age: Duration,
        lock_wait: Duration,
    ) -> &'static Self {
        Self::with_shards(max_bytes, max_entry_bytes, lock_age, lock_wait)
    }
}

impl<const N: usize> CacheLayer<N> {
    /// [`CacheLayer::new`] with `N` LRU shards (`N = 1` gives exact LRU order, for tests).
    pub fn with_shards(
        max_bytes: usize,
        max_entry_bytes: usize,
        lock_age: Duration,
        lock_wait: Duration,
    ) -> &'static Self {
        let storage: &'static BoundedStore =
            Box::leak(Box::new(BoundedStore::new(max_bytes, max_entry_bytes)));
        let per_shard = (max_bytes / ASSUMED_ENTRY_BYTES / N.max(1)).min(MAX_SHARD_PREALLOC);
        let eviction: &'static lru::Manager<N> =
            Box::leak(Box::new(lru::Manager::with_capacity(max_bytes, per_shard)));
        let lock: &'static CacheKeyLockImpl = Box::leak(CacheLock::new_boxed(lock_age));
        Box::leak(Box::new(CacheLayer {
            storage,
            eviction,
            lock,
            lock_wait,
        }))
    }

    /// Turn caching on for one request, with this layer's storage, LRU and lock; the reader
    /// lock wait is bounded by `lock_wait` and bodies by `max_entry_bytes`.
    ///
    /// # Panics
    /// Like `HttpCache::enable`, if `cache` is already enabled.
    pub fn enable(&self, cache: &mut HttpCache) {
        let mut overrides = CacheOptionOverrides::default();
        overrides.wait_timeout = Some(self.lock_wait);
        cache.enable(
            self.storage,
            Some(self.eviction),
            None,
            Some(self.lock),
            Some(overrides),
        );
        cache.set_max_file_size_bytes(self.storage.max_entry_bytes());
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        self.storage.stats()
    }

    /// Reader lock wait bound given to every request.
    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }
}
