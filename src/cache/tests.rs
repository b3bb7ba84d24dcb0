//! Tests for the cache storage layer, driving the real pingora-cache 0.9.1 API: `HttpCache`
//! the way pingora-proxy drives it (lookup, lock, miss, meta, miss handler, body, finish, hit),
//! and the `Storage` trait directly where `HttpCache` adds nothing. Shared helpers live here;
//! lock and concurrency tests are in `tests_lock.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pingora_cache::eviction::EvictionManager;
use pingora_cache::key::CompactCacheKey;
use pingora_cache::storage::MissFinishType;
use pingora_cache::trace::{Span, SpanHandle};
use pingora_cache::{
    CacheEntryId, CacheEntryKey, CacheKey, CacheMeta, CachePhase, HitHandler, HitStatus, HttpCache,
    NoCacheReason, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora_http::ResponseHeader;

use super::layer::CacheLayer;
use super::store::{BoundedStore, HIT_CHUNK_BYTES};

pub(super) const SECS: Duration = Duration::from_secs(1);

pub(super) fn span() -> SpanHandle {
    Span::inactive().handle()
}

pub(super) fn key(name: &str) -> CacheKey {
    CacheKey::new(name, "")
}

pub(super) fn compact(name: &str) -> CompactCacheKey {
    key(name).to_compact()
}

/// A 200 SSE response meta, fresh until `fresh_until`.
pub(super) fn meta_until(fresh_until: SystemTime) -> CacheMeta {
    let mut header = ResponseHeader::build(200, None).unwrap();
    header
        .insert_header("content-type", "text/event-stream")
        .unwrap();
    header.insert_header("x-provider", "openai").unwrap();
    CacheMeta::new(fresh_until, SystemTime::now(), 0, 0, header)
}

pub(super) fn fresh_meta() -> CacheMeta {
    meta_until(SystemTime::now() + 3600 * SECS)
}

pub(super) fn stale_meta() -> CacheMeta {
    meta_until(SystemTime::now() - 10 * SECS)
}

/// Serialized meta + body: what the store and the LRU count for one entry.
pub(super) fn weight(meta: &CacheMeta, body_len: usize) -> usize {
    let (internal, header) = meta.serialize().unwrap();
    internal.len() + header.len() + body_len
}

pub(super) fn body_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub(super) fn leak_store(max_bytes: usize, max_entry_bytes: usize) -> &'static BoundedStore {
    Box::leak(Box::new(BoundedStore::new(max_bytes, max_entry_bytes)))
}

pub(super) fn small_layer(max_bytes: usize, max_entry_bytes: usize) -> &'static CacheLayer<1> {
    CacheLayer::<1>::with_shards(max_bytes, max_entry_bytes, 5 * SECS, 5 * SECS)
}

/// Let the tasks `finish_miss_handler` spawned (eviction purges) run.
pub(super) async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

pub(super) async fn read_all(hit: &mut HitHandler) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = hit.read_body().await.unwrap() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// A request that misses `name`, becomes the lock writer and stops before the body.
pub(super) async fn start_fill<const N: usize>(
    layer: &CacheLayer<N>,
    name: &str,
    meta: CacheMeta,
) -> HttpCache {
    let mut cache = HttpCache::new();
    layer.enable(&mut cache);
    cache.set_cache_key(key(name));
    assert!(
        cache.cache_lookup().await.unwrap().is_none(),
        "expected a miss"
    );
    assert!(cache.is_cache_lock_writer());
    cache.cache_miss();
    cache.set_cache_meta(meta);
    cache.set_miss_handler().await.unwrap();
    cache
}

/// A second lookup of `name` while a fill holds its lock: it must wait as a reader.
pub(super) async fn locked_reader<const N: usize>(layer: &CacheLayer<N>, name: &str) -> HttpCache {
    let mut cache = HttpCache::new();
    layer.enable(&mut cache);
    cache.set_cache_key(key(name));
    assert!(cache.cache_lookup().await.unwrap().is_none());
    assert!(
        cache.is_cache_locked(),
        "a lookup during a fill must wait as reader"
    );
    cache
}

pub(super) async fn write(
    cache: &mut HttpCache,
    data: &[u8],
    eof: bool,
) -> pingora_error::Result<()> {
    let handler = cache.miss_handler().expect("miss handler set");
    handler.write_body(Bytes::copy_from_slice(data), eof).await
}

/// A whole proxied miss: lookup, lock, meta, body in 3 chunks, finish.
pub(super) async fn fill<const N: usize>(
    layer: &CacheLayer<N>,
    name: &str,
    meta: CacheMeta,
    body: &[u8],
) {
    let mut cache = start_fill(layer, name, meta).await;
    let third = body.len() / 3;
    write(&mut cache, &body[..third], false).await.unwrap();
    write(&mut cache, &body[third..2 * third], false)
        .await
        .unwrap();
    write(&mut cache, &body[2 * third..], true).await.unwrap();
    cache.finish_miss_handler().await.unwrap();
}

/// A proxied lookup of `name` deciding freshness the way pingora-proxy does
/// (`meta.is_fresh(now)`), reading the body of a fresh hit. `None` on a miss.
pub(super) async fn lookup<const N: usize>(
    layer: &CacheLayer<N>,
    name: &str,
) -> Option<(HitStatus, Vec<u8>, HttpCache)> {
    let mut cache = HttpCache::new();
    layer.enable(&mut cache);
    cache.set_cache_key(key(name));
    let Some((meta, hit)) = cache.cache_lookup().await.unwrap() else {
        // a miss took the write lock: give it back
        cache.disable(NoCacheReason::Deferred);
        return None;
    };
    let status = if meta.is_fresh(SystemTime::now()) {
        HitStatus::Fresh
    } else {
        HitStatus::Expired
    };
    cache.cache_found(meta, hit, status);
    let mut body = Vec::new();
    if status.is_fresh() {
        assert_eq!(cache.phase(), CachePhase::Hit);
        body = read_all(cache.hit_handler()).await;
        cache.finish_hit_handler().await.unwrap();
    }
    Some((status, body, cache))
}

#[tokio::test]
async fn miss_then_hit_through_http_cache_returns_exact_bytes_and_meta() {
    let layer = small_layer(1 << 20, 256 * 1024);
    let body = body_of(3 * HIT_CHUNK_BYTES + 123, 7);
    let fresh_until = SystemTime::now() + 600 * SECS;
    fill(layer, "chat-1", meta_until(fresh_until), &body).await;

    let (status, got, cache) = lookup(layer, "chat-1").await.expect("hit");
    assert_eq!(status, HitStatus::Fresh);
    assert_eq!(got, body);
    let meta = cache.cache_meta();
    assert_eq!(meta.response_header().status, 200);
    assert_eq!(meta.headers()["content-type"], "text/event-stream");
    assert_eq!(meta.headers()["x-provider"], "openai");
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs(meta.fresh_until()), secs(fresh_until));

    let stats = layer.stats();
    assert_eq!(stats.entries, 1);
    assert_eq!(stats.inserts, 1);
    assert_eq!(stats.bytes, weight(&fresh_meta(), body.len()));
    // the LRU was fed the same weight the store accounts
    assert_eq!(layer.eviction.total_size(), stats.bytes);
}

#[tokio::test]
async fn nothing_is_visible_before_finish() {
    let store = leak_store(1 << 20, 1 << 16);
    let meta = fresh_meta();
    let mut miss = store
        .get_miss_handler(&key("k"), &meta, &span())
        .await
        .unwrap();
    miss.write_body(Bytes::from_static(b"data: hello\n\n"), true)
        .await
        .unwrap();
    assert!(store.lookup(&key("k"), &span()).await.unwrap().is_none());
    assert_eq!(store.stats().entries, 0);

    let finished = miss.finish().await.unwrap();
    let size = weight(&meta, 13);
    assert!(matches!(finished, MissFinishType::Created(s) if s == size));
    let (_, mut hit) = store.lookup(&key("k"), &span()).await.unwrap().unwrap();
    assert_eq!(read_all(&mut hit).await, b"data: hello\n\n");
    assert_eq!(hit.get_eviction_weight(), size);
    assert_eq!(store.stats().bytes, size);
}

#[tokio::test]
async fn dropped_miss_handler_leaves_nothing() {
    let store = leak_store(1 << 20, 1 << 16);
    let mut miss = store
        .get_miss_handler(&key("cut"), &fresh_meta(), &span())
        .await
        .unwrap();
    miss.write_body(Bytes::from_static(b"partial"), false)
        .await
        .unwrap();
    drop(miss);
    assert!(store.lookup(&key("cut"), &span()).await.unwrap().is_none());
    assert_eq!(store.stats().entries, 0);
    assert_eq!(store.stats().bytes, 0);
    assert_eq!(store.stats().inserts, 0);
}

#[tokio::test]
async fn disabling_cache_mid_body_stores_nothing_and_frees_the_lock() {
    let layer = small_layer(1 << 20, 1 << 16);
    let mut cache = start_fill(layer, "cut", fresh_meta()).await;
    write(&mut cache, b"data: part", false).await.unwrap();
    // what the proxy does on an upstream error / a cut stream
    cache.disable(NoCacheReason::UpstreamError);
    assert!(!layer.storage.contains(&compact("cut")));
    assert_eq!(layer.stats().entries, 0);
    assert_eq!(layer.eviction.total_items(), 0);
    // the lock is gone: the next request becomes the writer, not a waiting reader
    let mut next = start_fill(layer, "cut", fresh_meta()).await;
    next.disable(NoCacheReason::UpstreamError);
}

#[tokio::test]
async fn bodies_over_max_entry_bytes_are_not_stored() {
    let store = leak_store(1 << 20, 1000);
    // exactly at the cap: stored
    let mut miss = store
        .get_miss_handler(&key("ok"), &fresh_meta(), &span())
        .await
        .unwrap();
    miss.write_body(Bytes::from(vec![1u8; 1000]), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();
    assert!(store.contains(&compact("ok")));

    // one byte over, across two chunks: the write fails, so does finish
    let mut miss = store
        .get_miss_handler(&key("big"), &fresh_meta(), &span())
        .await
        .unwrap();
    miss.write_body(Bytes::from(vec![1u8; 600]), false)
        .await
        .unwrap();
    let err = miss
        .write_body(Bytes::from(vec![1u8; 401]), true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_entry_bytes"), "{err}");
    assert!(miss.finish().await.is_err());
    assert!(!store.contains(&compact("big")));
    let stats = store.stats();
    assert_eq!(stats.rejected_too_large, 1);
    assert_eq!(stats.entries, 1);
}

#[tokio::test]
async fn layer_sets_max_file_size_and_rejects_large_fills() {
    let layer = small_layer(1 << 20, 1024);
    let mut cache = start_fill(layer, "big", fresh_meta()).await;
    assert_eq!(cache.max_file_size_bytes(), Some(1024));
    // pingora-proxy checks the tracker before writing; the store refuses on its own too
    assert!(cache.track_body_bytes_for_max_file_size(1000));
    write(&mut cache, &[0u8; 1000], false).await.unwrap();
    assert!(!cache.track_body_bytes_for_max_file_size(1000));
    assert!(write(&mut cache, &[0u8; 1000], true).await.is_err());
    // a write error makes the proxy disable the cache (StorageError)
    cache.disable(NoCacheReason::StorageError);
    assert!(!layer.storage.contains(&compact("big")));
    assert_eq!(layer.stats().rejected_too_large, 1);
    assert_eq!(layer.eviction.total_items(), 0);
}

#[test]
fn default_layer_uses_sharded_lru_and_fixed_limits() {
    let layer = CacheLayer::new(1 << 20, 1 << 16, 5 * SECS, 2 * SECS);
    assert_eq!(layer.eviction.shards(), super::DEFAULT_LRU_SHARDS);
    assert_eq!(layer.eviction.weight_limit(), 1 << 20);
    assert_eq!(layer.storage.max_bytes(), 1 << 20);
    assert_eq!(layer.lock_wait(), 2 * SECS);
    let stats = layer.stats();
    assert_eq!(
        (stats.entries, stats.bytes, stats.max_bytes),
        (0, 0, 1 << 20)
    );
}

#[test]
fn max_entry_bytes_is_clamped_to_max_bytes() {
    assert_eq!(BoundedStore::new(100, 1000).max_entry_bytes(), 100);
    assert_eq!(BoundedStore::new(1000, 100).max_entry_bytes(), 100);
}

#[tokio::test]
async fn lru_keeps_bytes_bounded_and_evicts_least_recently_used() {
    let body_len = 1000;
    let entry = weight(&fresh_meta(), body_len);
    let max = 10 * entry;
    let layer = small_layer(max, 2 * body_len);

    fill(layer, "k0", fresh_meta(), &body_of(body_len, 0)).await;
    for i in 1..50u8 {
        let name = format!("k{i}");
        fill(layer, &name, fresh_meta(), &body_of(body_len, i)).await;
        settle().await;
        assert!(layer.stats().bytes <= max, "over the bound after {name}");
        // a hit on k0 after every insert keeps it at the head of the LRU
        let (status, got, _) = lookup(layer, "k0").await.expect("k0 stays cached");
        assert!(status.is_fresh());
        assert_eq!(got, body_of(body_len, 0));
    }
    settle().await;

    let stats = layer.stats();
    assert_eq!(stats.entries, 10);
    assert_eq!(stats.bytes, max);
    assert_eq!(stats.evictions, 40);
    assert_eq!(
        stats.backstop_evictions, 0,
        "the LRU, not the backstop, evicted"
    );
    assert_eq!(stats.inserts, 50);
    assert!(layer.storage.contains(&compact("k0")));
    for i in 1..=40 {
        assert!(!layer.storage.contains(&compact(&format!("k{i}"))), "k{i}");
    }
    for i in 41..50 {
        assert!(layer.storage.contains(&compact(&format!("k{i}"))), "k{i}");
    }
    assert_eq!(layer.eviction.total_size(), stats.bytes);
    assert_eq!(layer.eviction.total_items(), stats.entries);
}

#[tokio::test]
async fn backstop_bounds_bytes_without_an_eviction_manager() {
    let body_len = 500;
    let entry = weight(&fresh_meta(), body_len);
    let max = 10 * entry;
    let store = leak_store(max, body_len);
    for i in 0..50u8 {
        let mut miss = store
            .get_miss_handler(&key(&format!("k{i}")), &fresh_meta(), &span())
            .await
            .unwrap();
        miss.write_body(Bytes::from(body_of(body_len, i)), true)
            .await
            .unwrap();
        miss.finish().await.unwrap();
        assert!(store.stats().bytes <= max + max / 10);
    }
    let stats = store.stats();
    assert_eq!(stats.entries, 11);
    assert_eq!(stats.backstop_evictions, 39);
    assert_eq!(stats.evictions, 39);
    // least recently committed went first
    assert!(!store.contains(&compact("k38")));
    assert!(store.contains(&compact("k39")));
    assert!(store.contains(&compact("k49")));
}

#[tokio::test]
async fn refill_replaces_without_double_counting() {
    let store = leak_store(1 << 20, 1 << 16);
    for (round, len) in [(0u8, 300usize), (1, 700)] {
        let mut miss = store
            .get_miss_handler(&key("k"), &fresh_meta(), &span())
            .await
            .unwrap();
        miss.write_body(Bytes::from(body_of(len, round)), true)
            .await
            .unwrap();
        miss.finish().await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.entries, 1);
    assert_eq!(stats.inserts, 2);
    assert_eq!(stats.bytes, weight(&fresh_meta(), 700));
    let (_, mut hit) = store.lookup(&key("k"), &span()).await.unwrap().unwrap();
    assert_eq!(read_all(&mut hit).await, body_of(700, 1));
}

#[tokio::test]
async fn purge_removes_and_frees_bytes() {
    let layer = small_layer(1 << 20, 1 << 16);
    let store = layer.storage;
    fill(layer, "a", fresh_meta(), b"aaaaaa").await;
    fill(layer, "b", fresh_meta(), b"bbbbbb").await;
    let one = store.stats().bytes / 2;

    let a = compact("a");
    let outcome = store
        .purge(PurgeTarget::Active(&a), PurgeType::Invalidation, &span())
        .await
        .unwrap();
    assert_eq!(outcome, PurgeOutcome::Purged(None));
    assert_eq!(store.stats().bytes, one);
    assert_eq!(store.stats().invalidations, 1);
    let again = store
        .purge(PurgeTarget::Active(&a), PurgeType::Invalidation, &span())
        .await
        .unwrap();
    assert_eq!(again, PurgeOutcome::NotFound);

    // an exact target with an entry id is not one of ours (we never hand ids out)
    let b_id = CacheEntryKey::identified(compact("b"), CacheEntryId::new(1));
    let outcome = store
        .purge(PurgeTarget::Exact(&b_id), PurgeType::Eviction, &span())
        .await
        .unwrap();
    assert_eq!(outcome, PurgeOutcome::NotFound);
    assert!(store.contains(&compact("b")));

    // HttpCache::purge (a PURGE request): storage and LRU both forget the entry
    let mut cache = HttpCache::new();
    layer.enable(&mut cache);
    cache.set_cache_key(key("b"));
    assert!(cache.purge().await.unwrap());
    assert!(!store.contains(&compact("b")));
    assert!(!layer.eviction.peek(&CacheEntryKey::key_only(compact("b"))));
    let stats = store.stats();
    assert_eq!((stats.entries, stats.bytes, stats.invalidations), (0, 0, 2));
}

#[tokio::test]
async fn stale_entry_is_a_storage_hit_but_not_served_fresh() {
    let layer = small_layer(1 << 20, 1 << 16);
    fill(layer, "old", stale_meta(), b"old body").await;

    // storage does not judge freshness: it still reports the entry
    let (meta, _) = layer
        .storage
        .lookup(&key("old"), &span())
        .await
        .unwrap()
        .expect("stored");
    assert!(!meta.is_fresh(SystemTime::now()));

    let (status, _, mut cache) = lookup(layer, "old").await.expect("found");
    assert_eq!(status, HitStatus::Expired);
    assert!(!status.is_fresh());
    assert_eq!(cache.phase(), CachePhase::Stale);
    // the stale hit took the write lock to refetch: refill it
    assert!(cache.is_cache_lock_writer());
    cache.set_cache_meta(fresh_meta());
    assert_eq!(cache.phase(), CachePhase::Expired);
    cache.set_miss_handler().await.unwrap();
    write(&mut cache, b"new body", true).await.unwrap();
    cache.finish_miss_handler().await.unwrap();
    settle().await;

    let (status, got, _) = lookup(layer, "old").await.expect("refilled");
    assert_eq!(status, HitStatus::Fresh);
    assert_eq!(got, b"new body");
    let stats = layer.stats();
    assert_eq!(stats.entries, 1);
    assert_eq!(stats.bytes, weight(&fresh_meta(), 8));
    assert_eq!(layer.eviction.total_size(), stats.bytes);
}

#[tokio::test]
async fn revalidation_updates_meta_in_place() {
    let layer = small_layer(1 << 20, 1 << 16);
    fill(layer, "k", stale_meta(), b"same body").await;
    let (_, _, mut cache) = lookup(layer, "k").await.expect("found");
    assert_eq!(cache.phase(), CachePhase::Stale);
    // upstream answered 304: pingora calls Storage::update_meta
    assert!(cache.revalidate_cache_meta(fresh_meta()).await.unwrap());
    assert_eq!(cache.phase(), CachePhase::Revalidated);

    let (status, got, _) = lookup(layer, "k").await.expect("still cached");
    assert_eq!(status, HitStatus::Fresh);
    assert_eq!(got, b"same body");
    assert_eq!(layer.stats().bytes, weight(&fresh_meta(), 9));
    // and a key that is not stored reports false
    assert!(!layer
        .storage
        .update_meta(&key("absent"), &fresh_meta(), &span())
        .await
        .unwrap());
}

#[tokio::test]
async fn expire_keeps_the_body_but_marks_it_stale() {
    let layer = small_layer(1 << 20, 1 << 16);
    fill(layer, "k", fresh_meta(), b"body").await;
    let mut cache = HttpCache::new();
    layer.enable(&mut cache);
    cache.set_cache_key(key("k"));
    assert!(cache.expire().await.unwrap());
    assert!(layer.storage.contains(&compact("k")));
    let (status, _, mut cache) = lookup(layer, "k").await.expect("kept");
    assert_eq!(status, HitStatus::Expired);
    cache.disable(NoCacheReason::Deferred);
}

#[tokio::test]
async fn hit_handler_seeks_half_open_ranges() {
    let store = leak_store(1 << 20, 1 << 18);
    let body = body_of(100_000, 3);
    let mut miss = store
        .get_miss_handler(&key("k"), &fresh_meta(), &span())
        .await
        .unwrap();
    miss.write_body(Bytes::from(body.clone()), true)
        .await
        .unwrap();
    miss.finish().await.unwrap();

    let (_, mut hit) = store.lookup(&key("k"), &span()).await.unwrap().unwrap();
    assert!(hit.can_seek());
    let first = hit.read_body().await.unwrap().unwrap();
    assert_eq!(first.len(), HIT_CHUNK_BYTES);
    hit.seek(100, Some(200)).unwrap();
    assert_eq!(read_all(&mut hit).await, &body[100..200]);
    hit.seek(99_990, Some(1_000_000)).unwrap();
    assert_eq!(read_all(&mut hit).await, &body[99_990..]);
    assert!(hit.seek(100_000, None).is_err());
    assert!(hit.seek(10, Some(5)).is_err());
}
