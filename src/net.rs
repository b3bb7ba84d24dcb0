//! Upstream addresses without blocking DNS on the proxy's threads.
//!
//! pingora's `HttpPeer::new("host:443", ..)` resolves synchronously and panics on failure, so
//! peers get socket addresses from here instead. Names are resolved with tokio's resolver (the
//! system resolver on tokio's blocking pool, never on a proxy worker), cached, and refreshed in
//! the background once stale: a request never waits for DNS except the very first for a host.
//! IP literals skip all of it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long an answer is fresh; a stale answer is still served while a refresh runs.
pub const DNS_TTL: Duration = Duration::from_secs(60);
/// How long one lookup may take.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Entry {
    addrs: Arc<Vec<SocketAddr>>,
    resolved_at: Instant,
    refreshing: bool,
}

#[derive(Default)]
pub struct Resolver {
    cache: RwLock<HashMap<(String, u16), Entry>>,
    rotate: AtomicUsize,
}

impl Resolver {
    pub fn new() -> Arc<Resolver> {
        Arc::new(Resolver::default())
    }

    /// An address for `host:port`: from the cache when fresh; stale answers are served while a
    /// background refresh runs; a host never seen before is resolved now.
    pub async fn resolve(self: &Arc<Self>, host: &str, port: u16) -> Result<SocketAddr, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_owned(), port);
        let cached = self.cache.read().ok().and_then(|c| c.get(&key).cloned());
        if let Some(entry) = cached {
            if entry.resolved_at.elapsed() > DNS_TTL && !entry.refreshing {
                self.refresh_in_background(key);
            }
            return Ok(self.pick(&entry.addrs));
        }
        let addrs = lookup(host, port).await?;
        let addr = self.pick(&addrs);
        self.store(key, addrs);
        Ok(addr)
    }

    /// Resolves every name once at start, so the first requests do not wait. Failures are
    /// returned for reporting; they are not fatal (a host may resolve later).
    pub async fn warm(self: &Arc<Self>, hosts: &[(String, u16)]) -> Vec<String> {
        let mut errors = Vec::new();
        for (host, port) in hosts {
            if let Err(e) = self.resolve(host, *port).await {
                errors.push(e);
            }
        }
        errors
    }

    fn pick(&self, addrs: &[SocketAddr]) -> SocketAddr {
        let i = self.rotate.fetch_add(1, Ordering::Relaxed);
        addrs[i % addrs.len()]
    }

    fn store(&self, key: (String, u16), addrs: Vec<SocketAddr>) {
        if let Ok(mut c) = self.cache.write() {
            c.insert(
                key,
                Entry {
                    addrs: Arc::new(addrs),
                    resolved_at: Instant::now(),
                    refreshing: false,
                },
            );
        }
    }

    fn refresh_in_background(self: &Arc<Self>, key: (String, u16)) {
        if let Ok(mut c) = self.cache.write() {
            match c.get_mut(&key) {
                Some(e) if !e.refreshing => e.refreshing = true,
                _ => return,
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            match lookup(&key.0, key.1).await {
                Ok(addrs) => this.store(key, addrs),
                Err(e) => {
                    log::warn!("DNS refresh failed, keeping the last answer: {e}");
                    if let Ok(mut c) = this.cache.write() {
                        if let Some(entry) = c.get_mut(&key) {
                            entry.refreshing = false;
                            entry.resolved_at = Instant::now();
                        }
                    }
                }
            }
        });
    }
}

async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let found = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("DNS lookup of {host} timed out"))?
        .map_err(|e| format!("DNS lookup of {host} failed: {e}"))?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(format!("DNS lookup of {host} returned no address"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_literals_need_no_lookup() {
        let r = Resolver::new();
        assert_eq!(
            r.resolve("127.0.0.1", 9).await.unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            r.resolve("::1", 9).await.unwrap(),
            "[::1]:9".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn names_are_resolved_and_cached() {
        let r = Resolver::new();
        let a = r.resolve("localhost", 80).await.unwrap();
        assert!(a.ip().is_loopback());
        assert_eq!(r.cache.read().unwrap().len(), 1);
        assert!(r.resolve("localhost", 80).await.unwrap().ip().is_loopback());
    }

    #[tokio::test]
    async fn failures_are_errors_not_panics() {
        let r = Resolver::new();
        let e = r.resolve("no-such-host.invalid", 443).await.unwrap_err();
        assert!(e.contains("no-such-host.invalid"), "{e}");
    }
}
