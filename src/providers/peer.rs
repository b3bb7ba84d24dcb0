//! The pingora peer for one attempt: the resolved address, TLS with the host name as SNI, and
//! the provider's timeouts cut to what is left of the request's deadline.

use super::Upstream;
use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a pooled upstream connection may sit idle before it is closed.
pub const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for one write of the request to the provider.
pub const UPSTREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

impl Upstream {
    /// A peer at `addr` (never a host name: pingora would resolve it blocking, and panic on
    /// failure) whose connect, read and write timeouts end within `remaining`.
    pub fn peer(&self, addr: SocketAddr, remaining: Duration) -> HttpPeer {
        let base = &self.cfg.base_url;
        let mut peer = HttpPeer::new(addr, base.tls, base.host.clone());
        let o = &mut peer.options;
        o.connection_timeout = Some(self.cfg.connect_timeout.min(remaining));
        o.total_connection_timeout = Some(self.cfg.connect_timeout.min(remaining));
        o.read_timeout = Some(self.cfg.read_timeout.min(remaining));
        o.write_timeout = Some(UPSTREAM_WRITE_TIMEOUT.min(remaining));
        o.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
        peer
    }
}
