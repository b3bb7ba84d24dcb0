//! [`Store`]: the turns of stored Responses conversations, in memory, bounded in bytes, each
//! kept for a time-to-live after its last use, and scoped to the gateway key that made it.
//!
//! A turn holds what one response added to its conversation (the request's own input items and
//! the response's output items, as JSON text) and the id of the response it continued; a
//! conversation is read by walking that chain back. Reading a chain refreshes every turn in it,
//! so a conversation in use keeps its history while idle ones age out. With one TTL for all and
//! every use refreshing it, the least recently used turn is always the first to expire: one
//! ordered index serves both the TTL and the byte bound.
//!
//! Every operation takes one short `std` mutex, never held across an await: an insert or a
//! lookup is a few map operations (a chain walk one per turn), with no I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Bytes counted for a turn besides its text (keys, ids, bookkeeping).
const OVERHEAD: usize = 128;
/// Longest chain walked (turns); a longer conversation is cut off at its oldest turns.
pub const MAX_CHAIN: usize = 10_000;

type Key = (String, String);

#[derive(Debug)]
struct Turn {
    parent: Option<String>,
    items: Arc<str>,
    size: usize,
    expires: Instant,
    tick: u64,
}

#[derive(Debug, Default)]
struct Inner {
    turns: HashMap<Key, Turn>,
    /// Use order: tick -> key (the first entry is the least recently used).
    order: BTreeMap<u64, Key>,
    bytes: usize,
    next_tick: u64,
    max_bytes: usize,
    ttl: Duration,
}

/// Why a conversation could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No such response for this key (never stored, expired, evicted, or another key's).
    Unknown(String),
}

/// The conversation store; cheap to share (`Arc`).
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    pub fn new(max_bytes: usize, ttl: Duration) -> Arc<Store> {
        Arc::new(Store {
            inner: Mutex::new(Inner {
                max_bytes,
                ttl,
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies new limits (a config reload); a smaller bound evicts at once.
    pub fn configure(&self, max_bytes: usize, ttl: Duration) {
        let mut inner = self.lock();
        inner.max_bytes = max_bytes;
        inner.ttl = ttl;
        inner.shrink(Instant::now());
    }

    /// Whether turns are kept at all.
    pub fn enabled(&self) -> bool {
        self.lock().max_bytes > 0
    }

    /// Keeps the turn `id` of `key`'s conversation: `items` (a JSON array's text) continuing
    /// `parent`. A turn larger than the whole bound is not kept.
    pub fn insert(&self, key: &str, id: &str, parent: Option<&str>, items: Arc<str>) {
        let size = items.len() + key.len() + id.len() + parent.map_or(0, str::len) + OVERHEAD;
        let now = Instant::now();
        let mut inner = self.lock();
        if size > inner.max_bytes {
            return;
        }
        let k = (key.to_owned(), id.to_owned());
        inner.remove(&k);
        let tick = inner.bump();
        let expires = now + inner.ttl;
        inner.order.insert(tick, k.clone());
        inner.bytes += size;
        inner.turns.insert(
            k,
            Turn {
                parent: parent.map(str::to_owned),
                items,
                size,
                expires,
                tick,
            },
        );
        inner.shrink(now);
    }

    /// The turns of `key`'s conversation ending with response `id`, oldest first; every turn
    /// read is refreshed. A chain whose older turns are gone is `Missing`: a conversation is
    /// never continued with part of its history silently lost.
    pub fn chain(&self, key: &str, id: &str) -> Result<Vec<Arc<str>>, Missing> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.shrink(now);
        let mut out = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(cur) = next.take() {
            if out.len() >= MAX_CHAIN {
                break;
            }
            let k = (key.to_owned(), cur);
            let Some(turn) = inner.turns.get(&k) else {
                return Err(Missing::Unknown(k.1));
            };
            let (old_tick, parent, items) = (turn.tick, turn.parent.clone(), turn.items.clone());
            inner.order.remove(&old_tick);
            let tick = inner.bump();
            let ttl = inner.ttl;
            if let Some(t) = inner.turns.get_mut(&k) {
                t.tick = tick;
                t.expires = now + ttl;
            }
            inner.order.insert(tick, k);
            out.push(items);
            next = parent;
        }
        out.reverse();
        Ok(out)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Turns held now.
    pub fn len(&self) -> usize {
        self.lock().turns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn bump(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    fn remove(&mut self, k: &Key) {
        if let Some(t) = self.turns.remove(k) {
            self.order.remove(&t.tick);
            self.bytes -= t.size;
        }
    }

    /// Drops expired turns, then the least recently used ones while over the byte bound.
    fn shrink(&mut self, now: Instant) {
        while let Some((_, k)) = self.order.first_key_value() {
            let Some(t) = self.turns.get(k) else {
                break;
            };
            if t.expires > now && self.bytes <= self.max_bytes {
                break;
            }
            let k = k.clone();
            self.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test(start_paused = true)]
    async fn chains_read_oldest_first_and_are_scoped_to_their_key() {
        let s = Store::new(1 << 20, Duration::from_secs(60));
        s.insert("k1", "r1", None, items("[1]"));
        s.insert("k1", "r2", Some("r1"), items("[2]"));
        s.insert("k1", "r3", Some("r2"), items("[3]"));
        let chain: Vec<String> = s
            .chain("k1", "r3")
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(chain, ["[1]", "[2]", "[3]"]);
        assert_eq!(s.chain("k2", "r3"), Err(Missing::Unknown("r3".into())));
        assert_eq!(s.chain("k1", "nope"), Err(Missing::Unknown("nope".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn turns_expire_after_their_ttl_unless_used() {
        let s = Store::new(1 << 20, Duration::from_secs(60));
        s.insert("k", "old", None, items("[1]"));
        s.insert("k", "kept", None, items("[2]"));
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(s.chain("k", "kept").is_ok());
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(s.chain("k", "old").is_err(), "80 s unused");
        assert!(s.chain("k", "kept").is_ok(), "used 40 s ago");
        assert_eq!(s.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_byte_bound_evicts_the_least_recently_used_turns() {
        let turn = OVERHEAD + 1 + 2 + 100;
        let s = Store::new(3 * turn, Duration::from_secs(3600));
        let body = items(&"x".repeat(100));
        for id in ["a1", "a2", "a3"] {
            s.insert("k", id, None, body.clone());
        }
        assert_eq!(s.len(), 3);
        assert!(s.chain("k", "a1").is_ok()); // a1 is now the most recently used
        s.insert("k", "a4", None, body.clone());
        assert_eq!(s.len(), 3);
        assert!(s.bytes() <= 3 * turn);
        assert!(s.chain("k", "a2").is_err(), "least recently used");
        assert!(s.chain("k", "a1").is_ok());
        // Many more turns never grow it past its bound.
        for n in 0..10_000 {
            s.insert("k", &format!("b{n}"), None, body.clone());
        }
        assert!(s.bytes() <= 3 * turn && s.len() <= 3);
        // A chain whose first turn was evicted cannot be read.
        s.insert("k", "c1", None, body.clone());
        s.insert("k", "c2", Some("c1"), body.clone());
        s.insert("k", "z1", None, body.clone());
        s.insert("k", "z2", None, body.clone());
        assert!(s.chain("k", "c2").is_err());
        // A turn larger than the bound is not kept; a zero bound keeps nothing.
        s.insert("k", "huge", None, items(&"y".repeat(4 * turn)));
        assert!(s.chain("k", "huge").is_err());
        s.configure(0, Duration::from_secs(1));
        assert!(!s.enabled());
        assert_eq!((s.len(), s.bytes()), (0, 0));
    }
}
