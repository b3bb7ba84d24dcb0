//! Cache lock and concurrency tests: requests coalescing behind one writer (pingora-cache's
//! `CacheLock` driven through `HttpCache`), lock timeouts, aborted writers, and concurrent
//! fills checking the store's byte accounting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use pingora_cache::lock::LockWaitOutcome;
use pingora_cache::{HitStatus, NoCacheReason, PurgeTarget, PurgeType, Storage};

use super::layer::CacheLayer;
use super::tests::{
    body_of, compact, fresh_meta, key, leak_store, locked_reader, lookup, read_all, small_layer,
    span, start_fill, weight, write, SECS,
};

#[tokio::test]
async fn writer_abort_wakes_reader_to_compete() {
    let layer = small_layer(1 << 20, 1 << 16);
    let mut writer = start_fill(layer, "k", fresh_meta()).await;
    let mut reader = locked_reader(layer, "k").await;

    let abort = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        write(&mut writer, b"half", false).await.unwrap();
        writer.disable(NoCacheReason::UpstreamError);
    };
    let ((), outcome) = tokio::join!(abort, reader.cache_lock_wait());
    assert_eq!(outcome, LockWaitOutcome::TransientError);
    // retrying, the reader misses and becomes the new writer
    assert!(reader.cache_lookup().await.unwrap().is_none());
    assert!(reader.is_cache_lock_writer());
    reader.disable(NoCacheReason::Deferred);
    assert_eq!(layer.stats().entries, 0);
}

#[tokio::test]
async fn concurrent_lookup_waits_for_the_writer_then_hits() {
    let layer = small_layer(1 << 20, 1 << 16);
    let mut writer = start_fill(layer, "k", fresh_meta()).await;
    let mut reader = locked_reader(layer, "k").await;

    let finished = AtomicBool::new(false);
    let write_all = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        write(&mut writer, b"data: one\n\n", false).await.unwrap();
        write(&mut writer, b"data: [DONE]\n\n", true).await.unwrap();
        finished.store(true, Ordering::SeqCst);
        writer.finish_miss_handler().await.unwrap();
    };
    let wait = async {
        let outcome = reader.cache_lock_wait().await;
        assert!(finished.load(Ordering::SeqCst), "reader woke before finish");
        outcome
    };
    let ((), outcome) = tokio::join!(write_all, wait);
    assert_eq!(outcome, LockWaitOutcome::Done);
    assert!(reader.lock_duration().unwrap() >= Duration::from_millis(40));

    // the proxy looks up again after a Done wait
    let (meta, hit) = reader.cache_lookup().await.unwrap().expect("filled");
    reader.cache_found(meta, hit, HitStatus::Fresh);
    let got = read_all(reader.hit_handler()).await;
    assert_eq!(got, b"data: one\n\ndata: [DONE]\n\n");
    reader.finish_hit_handler().await.unwrap();
}

#[tokio::test]
async fn reader_gives_up_after_lock_wait() {
    let layer = CacheLayer::<1>::with_shards(1 << 20, 1 << 16, 5 * SECS, Duration::from_millis(50));
    let mut writer = start_fill(layer, "k", fresh_meta()).await;
    let mut reader = locked_reader(layer, "k").await;
    assert_eq!(reader.cache_lock_wait().await, LockWaitOutcome::WaitTimeout);
    // pingora-proxy then serves this reader from upstream without caching
    reader.disable(NoCacheReason::CacheLockTimeout);
    writer.disable(NoCacheReason::UpstreamError);
}

#[tokio::test]
async fn lock_age_timeout_lets_a_second_writer_in() {
    let layer = CacheLayer::<1>::with_shards(1 << 20, 1 << 16, Duration::from_millis(50), 5 * SECS);
    let mut slow = start_fill(layer, "k", fresh_meta()).await;
    let mut reader = locked_reader(layer, "k").await;
    assert_eq!(reader.cache_lock_wait().await, LockWaitOutcome::AgeTimeout);
    // the proxy retries: the expired lock is replaced and the reader becomes a writer too
    assert!(reader.cache_lookup().await.unwrap().is_none());
    assert!(reader.is_cache_lock_writer());
    reader.cache_miss();
    reader.set_cache_meta(fresh_meta());
    reader.set_miss_handler().await.unwrap();
    write(&mut reader, b"second", true).await.unwrap();
    reader.finish_miss_handler().await.unwrap();
    // the slow writer still commits when it finishes: last commit wins
    write(&mut slow, b"first", true).await.unwrap();
    slow.finish_miss_handler().await.unwrap();
    let (_, got, _) = lookup(layer, "k").await.expect("cached");
    assert_eq!(got, b"first");
    assert_eq!(layer.stats().entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_keep_accounting_consistent() {
    let body_len = 256;
    let entry = weight(&fresh_meta(), body_len);
    let max = 20 * entry;
    let store = leak_store(max, body_len);
    let mut tasks = Vec::new();
    for t in 0..4u8 {
        tasks.push(tokio::spawn(async move {
            for i in 0..100u8 {
                let name = format!("k{}", (t as usize * 7 + i as usize) % 60);
                let mut miss = store
                    .get_miss_handler(&key(&name), &fresh_meta(), &span())
                    .await
                    .unwrap();
                miss.write_body(Bytes::from(body_of(body_len, i)), true)
                    .await
                    .unwrap();
                if i % 5 == 0 {
                    drop(miss); // an aborted fill
                } else {
                    miss.finish().await.unwrap();
                }
                if i % 11 == 0 {
                    let k = compact(&name);
                    store
                        .purge(PurgeTarget::Active(&k), PurgeType::Invalidation, &span())
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = store.stats();
    assert!(stats.bytes <= max + max / 10);
    let (mut entries, mut bytes) = (0, 0);
    for i in 0..60 {
        if let Some(size) = store.entry_bytes(&compact(&format!("k{i}"))) {
            entries += 1;
            bytes += size;
        }
    }
    assert_eq!((stats.entries, stats.bytes), (entries, bytes));
}
