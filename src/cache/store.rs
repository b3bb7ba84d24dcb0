//! `BoundedStore`: the gateway's in-memory, byte-bounded `pingora_cache` storage backend.
//!
//! Entries are keyed by [`CompactCacheKey`] and hold the serialized [`CacheMeta`] (the two
//! buffers of [`CacheMeta::serialize`]) plus the whole response body as one [`Bytes`].
//!
//! Write path: [`Storage::get_miss_handler`] hands out a [`BufferedMiss`] that buffers the body
//! privately. Nothing is visible to readers until [`HandleMiss::finish`] commits it;
//! a handler dropped without `finish` (upstream cut, proxy error, `HttpCache::disable` in the
//! middle of the body) simply frees its buffer. Bodies larger than `max_entry_bytes` are refused
//! (the write or the finish returns [`ERR_RESPONSE_TOO_LARGE`]) and counted.
//!
//! Size bound: the primary bound is pingora-cache's LRU eviction manager, which
//! `HttpCache::finish_miss_handler` feeds with the weight returned by `finish` (meta + body
//! bytes, the same number this store accounts) and whose victims it purges from this store with
//! [`PurgeType::Eviction`]. As a backstop, every commit that leaves the store above
//! `max_bytes + max_bytes / 10` removes the least recently *committed* entries until it is back
//! under that hard limit, so memory stays bounded even when no eviction manager is consulted.
//!
//! In-flight fill buffers are not counted in [`StoreStats::bytes`]; each is at most
//! `max_entry_bytes`.
//!
//! Known approximations: LRU victims are purged by a task `finish_miss_handler` spawns, so the
//! store may briefly hold more than `max_bytes` (the backstop caps it); a key refilled between
//! the LRU's decision and that task loses its new fill (one extra miss later). `update_meta` and
//! `expire` change an entry's meta size without telling the LRU (a few bytes of drift).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora_cache::key::CompactCacheKey;
use pingora_cache::max_file_size::ERR_RESPONSE_TOO_LARGE;
use pingora_cache::storage::{HandleHit, HandleMiss, MissFinishType};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{
    CacheKey, CacheMeta, HitHandler, MissHandler, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora_error::{Error, Result};

/// Largest chunk a hit handler returns from one `read_body` call (zero-copy slices).
pub const HIT_CHUNK_BYTES: usize = 64 * 1024;

/// Point-in-time counters of a [`BoundedStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Committed entries currently stored.
    pub entries: usize,
    /// Bytes currently stored (serialized meta + body of every committed entry).
    pub bytes: usize,
    /// Configured byte bound (the eviction manager's capacity).
    pub max_bytes: usize,
    /// Commits since start (a commit replacing an entry of the same key counts too).
    pub inserts: u64,
    /// Entries removed to make room: by the eviction manager or by the store's backstop.
    pub evictions: u64,
    /// The subset of `evictions` done by the store's own backstop (should stay 0 when the
    /// eviction manager is wired in; a growing value means it is not).
    pub backstop_evictions: u64,
    /// Entries removed by invalidation (`purge` with [`PurgeType::Invalidation`]).
    pub invalidations: u64,
    /// Fills refused because the body exceeded `max_entry_bytes` (or the entry `max_bytes`).
    pub rejected_too_large: u64,
}

/// One committed entry.
struct Entry {
    meta_internal: Bytes,
    meta_header: Bytes,
    body: Bytes,
    /// Commit sequence number, the key of this entry in `Inner::by_commit`.
    seq: u64,
}

impl Entry {
    fn size(&self) -> usize {
        entry_size(&self.meta_internal, &self.meta_header, self.body.len())
    }
}

fn entry_size(meta_internal: &[u8], meta_header: &[u8], body_len: usize) -> usize {
    meta_internal.len() + meta_header.len() + body_len
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CompactCacheKey, Entry>,
    /// Commit order, oldest first: drives the backstop eviction.
    by_commit: BTreeMap<u64, CompactCacheKey>,
    next_seq: u64,
}

#[derive(Default)]
struct Counters {
    entries: AtomicUsize,
    bytes: AtomicUsize,
    inserts: AtomicU64,
    evictions: AtomicU64,
    backstop_evictions: AtomicU64,
    invalidations: AtomicU64,
    rejected_too_large: AtomicU64,
}

/// Why an entry left the store, for the counters.
#[derive(Clone, Copy)]
enum Removal {
    Eviction,
    Backstop,
    Invalidation,
    Replaced,
}

/// In-memory `pingora_cache` storage bounded in bytes. See the module docs.
///
/// All `Storage` methods take `&'static self`: build it once and leak it (see
/// `CacheLayer::new`).
pub struct BoundedStore {
    max_bytes: usize,
    hard_limit: usize,
    max_entry_bytes: usize,
    inner: RwLock<Inner>,
    counters: Counters,
}

impl BoundedStore {
    /// A store holding at most about `max_bytes` (meta + body) with bodies of at most
    /// `max_entry_bytes` each. `max_entry_bytes` is clamped to `max_bytes`; the store's own
    /// backstop limit is `max_bytes + max_bytes / 10`.
    pub fn new(max_bytes: usize, max_entry_bytes: usize) -> Self {
        BoundedStore {
            max_bytes,
            hard_limit: max_bytes.saturating_add(max_bytes / 10),
            max_entry_bytes: max_entry_bytes.min(max_bytes),
            inner: RwLock::new(Inner::default()),
            counters: Counters::default(),
        }
    }

    /// The configured byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The largest body (in bytes) this store will commit.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_entry_bytes
    }

    /// Current counters (lock-free reads).
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            entries: c.entries.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            max_bytes: self.max_bytes,
            inserts: c.inserts.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            backstop_evictions: c.backstop_evictions.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            rejected_too_large: c.rejected_too_large.load(Ordering::Relaxed),
        }
    }

    /// Whether a committed entry exists for `key` (no LRU side effect).
    pub fn contains(&self, key: &CompactCacheKey) -> bool {
        self.read().entries.contains_key(key)
    }

    /// Stored size (meta + body) of the entry for `key`, if any.
    pub fn entry_bytes(&self, key: &CompactCacheKey) -> Option<usize> {
        self.read().entries.get(key).map(Entry::size)
    }

    // Nothing panics while holding these locks (only map operations), so a poisoned lock
    // still guards consistent data: recover it rather than propagate the panic.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn reject_too_large(&self, what: String) -> Box<Error> {
        self.counters
            .rejected_too_large
            .fetch_add(1, Ordering::Relaxed);
        Error::explain(ERR_RESPONSE_TOO_LARGE, what)
    }

    /// Remove the entry for `key` with the write lock held, fixing counters.
    fn remove_locked(
        &self,
        inner: &mut Inner,
        key: &CompactCacheKey,
        why: Removal,
    ) -> Option<Entry> {
        let entry = inner.entries.remove(key)?;
        inner.by_commit.remove(&entry.seq);
        self.forget(&entry, why);
        Some(entry)
    }

    fn forget(&self, entry: &Entry, why: Removal) {
        let c = &self.counters;
        c.entries.fetch_sub(1, Ordering::Relaxed);
        c.bytes.fetch_sub(entry.size(), Ordering::Relaxed);
        match why {
            Removal::Eviction => {
                c.evictions.fetch_add(1, Ordering::Relaxed);
            }
            Removal::Backstop => {
                c.evictions.fetch_add(1, Ordering::Relaxed);
                c.backstop_evictions.fetch_add(1, Ordering::Relaxed);
            }
            Removal::Invalidation => {
                c.invalidations.fetch_add(1, Ordering::Relaxed);
            }
            Removal::Replaced => {}
        }
    }

    /// Make a finished fill visible. Returns the entry's weight (meta + body bytes).
    fn commit(
        &self,
        key: CompactCacheKey,
        meta_internal: Bytes,
        meta_header: Bytes,
        body: Bytes,
    ) -> Result<usize> {
        let size = entry_size(&meta_internal, &meta_header, body.len());
        if body.len() > self.max_entry_bytes || size > self.max_bytes {
            return Err(self.reject_too_large(format!(
                "cache entry of {size} bytes (body {}) exceeds the limits (body {}, store {})",
                body.len(),
                self.max_entry_bytes,
                self.max_bytes
            )));
        }
        let mut inner = self.write();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let entry = Entry {
            meta_internal,
            meta_header,
            body,
            seq,
        };
        if let Some(old) = inner.entries.insert(key.clone(), entry) {
            inner.by_commit.remove(&old.seq);
            self.forget(&old, Removal::Replaced);
        }
        inner.by_commit.insert(seq, key);
        let c = &self.counters;
        c.entries.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(size, Ordering::Relaxed);
        c.inserts.fetch_add(1, Ordering::Relaxed);
        self.enforce_hard_limit(&mut inner, seq);
        Ok(size)
    }

    /// Backstop: drop least recently committed entries (never the one just committed) while
    /// the store is above its hard limit.
    fn enforce_hard_limit(&self, inner: &mut Inner, keep_seq: u64) {
        while self.counters.bytes.load(Ordering::Relaxed) > self.hard_limit {
            let Some((&seq, _)) = inner.by_commit.first_key_value() else {
                break;
            };
            if seq == keep_seq {
                break;
            }
            if let Some((_, key)) = inner.by_commit.pop_first() {
                if let Some(entry) = inner.entries.remove(&key) {
                    self.forget(&entry, Removal::Backstop);
                }
            }
        }
    }
}

/// The key a purge targets, or `None` if it cannot name one of our entries: this store never
/// hands out [`pingora_cache::CacheEntryId`]s, so an exact target carrying one is not ours.
fn purge_key<'a>(target: PurgeTarget<'a>) -> Option<&'a CompactCacheKey> {
    match target {
        PurgeTarget::Active(key) => Some(key),
        PurgeTarget::Exact(entry) if entry.entry_id().is_none() => Some(entry.key()),
        PurgeTarget::Exact(_) => None,
    }
}

#[async_trait]
impl Storage for BoundedStore {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let key = key.to_compact();
        let found = self.read().entries.get(&key).map(|e| {
            (
                e.meta_internal.clone(),
                e.meta_header.clone(),
                e.body.clone(),
                e.size(),
            )
        });
        let Some((meta_internal, meta_header, body, weight)) = found else {
            return Ok(None);
        };
        let meta = CacheMeta::deserialize(&meta_internal, &meta_header)?;
        let hit: HitHandler = Box::new(BodyHit::new(body, weight));
        Ok(Some((meta, hit)))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let (internal, header) = meta.serialize()?;
        Ok(Box::new(BufferedMiss {
            store: self,
            key: key.to_compact(),
            meta_internal: Bytes::from(internal),
            meta_header: Bytes::from(header),
            chunks: Vec::new(),
            body_len: 0,
            too_large: false,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let Some(key) = purge_key(target) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let why = match purge_type {
            PurgeType::Eviction => Removal::Eviction,
            PurgeType::Invalidation => Removal::Invalidation,
        };
        let mut inner = self.write();
        Ok(match self.remove_locked(&mut inner, key, why) {
            Some(_) => PurgeOutcome::Purged(None),
            None => PurgeOutcome::NotFound,
        })
    }

    /// Marks the entry stale in place (its `fresh_until` moves to now, serve-stale windows
    /// kept), so a revalidation can reuse the body on a 304.
    async fn expire(
        &'static self,
        target: PurgeTarget<'_>,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let Some(key) = purge_key(target) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let mut inner = self.write();
        let Some(entry) = inner.entries.get_mut(key) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let mut meta = CacheMeta::deserialize(&entry.meta_internal, &entry.meta_header)?;
        meta.expire_at(SystemTime::now());
        let (internal, header) = meta.serialize()?;
        let old = entry.size();
        entry.meta_internal = Bytes::from(internal);
        entry.meta_header = Bytes::from(header);
        let new = entry.size();
        adjust_bytes(&self.counters.bytes, old, new);
        Ok(PurgeOutcome::Expired)
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let (internal, header) = meta.serialize()?;
        let key = key.to_compact();
        let mut inner = self.write();
        let Some(entry) = inner.entries.get_mut(&key) else {
            return Ok(false);
        };
        let old = entry.size();
        entry.meta_internal = Bytes::from(internal);
        entry.meta_header = Bytes::from(header);
        let new = entry.size();
        adjust_bytes(&self.counters.bytes, old, new);
        Ok(true)
    }

    fn support_streaming_partial_write(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

fn adjust_bytes(bytes: &AtomicUsize, old: usize, new: usize) {
    if new >= old {
        bytes.fetch_add(new - old, Ordering::Relaxed);
    } else {
        bytes.fetch_sub(old - new, Ordering::Relaxed);
    }
}

/// Hit handler over a committed body: zero-copy slices, seekable.
pub struct BodyHit {
    body: Bytes,
    pos: usize,
    end: usize,
    weight: usize,
}

impl BodyHit {
    fn new(body: Bytes, weight: usize) -> Self {
        let end = body.len();
        BodyHit {
            body,
            pos: 0,
            end,
            weight,
        }
    }
}

#[async_trait]
impl HandleHit for BodyHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let to = self.end.min(self.pos.saturating_add(HIT_CHUNK_BYTES));
        let chunk = self.body.slice(self.pos..to);
        self.pos = to;
        Ok(Some(chunk))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    /// `start..end` is a half-open byte range; an `end` past the body is cut to the body.
    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.body.len();
        let end = end.map_or(len, |e| e.min(len));
        if start >= len || start > end {
            return Error::e_explain(
                pingora_error::ErrorType::InternalError,
                format!("seek {start}..{end} out of range for a body of {len} bytes"),
            );
        }
        self.pos = start;
        self.end = end;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.weight
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// Miss handler: buffers the body privately and commits it only in `finish`.
pub struct BufferedMiss {
    store: &'static BoundedStore,
    key: CompactCacheKey,
    meta_internal: Bytes,
    meta_header: Bytes,
    /// Body chunks as received (zero-copy); joined into one exact-size buffer on `finish`.
    chunks: Vec<Bytes>,
    body_len: usize,
    /// Set (and the chunks freed) once the body passed `max_entry_bytes`.
    too_large: bool,
}

impl BufferedMiss {
    fn too_large_error(&self) -> Box<Error> {
        Error::explain(
            ERR_RESPONSE_TOO_LARGE,
            format!(
                "cache body exceeds max_entry_bytes ({})",
                self.store.max_entry_bytes
            ),
        )
    }
}

#[async_trait]
impl HandleMiss for BufferedMiss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        if self.too_large {
            return Err(self.too_large_error());
        }
        let len = self.body_len.saturating_add(data.len());
        if len > self.store.max_entry_bytes {
            self.too_large = true;
            self.chunks = Vec::new();
            self.store
                .counters
                .rejected_too_large
                .fetch_add(1, Ordering::Relaxed);
            return Err(self.too_large_error());
        }
        self.body_len = len;
        if !data.is_empty() {
            self.chunks.push(data);
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        if self.too_large {
            return Err(self.too_large_error());
        }
        let this = *self;
        // One copy into an exact-size buffer: the stored body must not pin the (possibly much
        // larger) read buffers the chunks were sliced from, or the byte accounting would lie.
        let mut body = BytesMut::with_capacity(this.body_len);
        for chunk in &this.chunks {
            body.extend_from_slice(chunk);
        }
        let size = this.store.commit(
            this.key,
            this.meta_internal,
            this.meta_header,
            body.freeze(),
        )?;
        Ok(MissFinishType::Created(size))
    }
}
