//! The running gateway's view of the key store: a snapshot of the usable keys, swapped whole
//! when the store changes. A background thread reads the store's change counter every
//! [`POLL`] and reloads the keys when it moved, so a key made, revoked or rotated by the CLI or
//! the admin API works (or stops working) within a second, with no restart and no reload.
//! Requests only read the snapshot (an atomic load): no database access on the request path.

use super::store::{KeyStore, StoredKey};
use crate::auth::GatewayKey;
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the change counter is read.
pub const POLL: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct LiveKeys {
    keys: ArcSwap<Vec<Arc<GatewayKey>>>,
}

impl LiveKeys {
    /// The keys in force (revoked ones left out).
    pub fn snapshot(&self) -> Arc<Vec<Arc<GatewayKey>>> {
        self.keys.load_full()
    }

    /// The keys in force, without touching the snapshot's reference count (the request path).
    pub fn load(&self) -> arc_swap::Guard<Arc<Vec<Arc<GatewayKey>>>> {
        self.keys.load()
    }

    /// Replaces the snapshot with the usable keys among `stored`.
    pub fn replace(&self, stored: &[StoredKey]) {
        let keys = stored
            .iter()
            .filter(|k| k.revoked_ms.is_none())
            .map(|k| Arc::new(GatewayKey::from_store(k)))
            .collect();
        self.keys.store(Arc::new(keys));
    }

    /// Loads the store at `path` now, then follows it from a background thread that lives as
    /// long as the returned handle.
    pub fn follow(path: &Path) -> Result<Arc<LiveKeys>, String> {
        let store = KeyStore::open(path)
            .map_err(|e| format!("cannot open the key store at {}: {e}", path.display()))?;
        let live = Arc::new(LiveKeys::default());
        let version = store.version().map_err(|e| e.to_string())?;
        live.replace(&store.list().map_err(|e| e.to_string())?);
        let weak = Arc::downgrade(&live);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("key-store".into())
            .spawn(move || poll(store, version, weak, path))
            .map_err(|e| format!("cannot start the key store thread: {e}"))?;
        Ok(live)
    }
}

fn poll(store: KeyStore, mut seen: i64, live: Weak<LiveKeys>, path: PathBuf) {
    let mut failing = false;
    loop {
        std::thread::sleep(POLL);
        let Some(live) = live.upgrade() else {
            return;
        };
        let now = store.version().and_then(|v| {
            if v == seen {
                return Ok(v);
            }
            store.list().map(|keys| {
                live.replace(&keys);
                log::info!("key store changed: {} keys in force", live.snapshot().len());
                v
            })
        });
        match now {
            Ok(v) => {
                seen = v;
                failing = false;
            }
            Err(e) if !failing => {
                // Keep the keys in force; say so once per outage.
                log::error!("cannot read the key store at {}: {e}", path.display());
                failing = true;
            }
            Err(_) => {}
        }
    }
}
