//! switchyard-baseline: the smallest useful pingora proxy, for measuring what switchyard's own
//! work costs. Every request goes to one fixed upstream, untouched: no auth, no body reading,
//! no routing, no accounting.
//!
//!   cargo run --release --bin switchyard-baseline -- 127.0.0.1:19081 127.0.0.1:19100 1
//!   (listen address, upstream address, worker threads)

use async_trait::async_trait;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};
use std::net::SocketAddr;

struct Passthrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _s: &mut Session,
        _ctx: &mut (),
    ) -> pingora_error::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
        Ok(Box::new(peer))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2).and_then(|a| a.parse().ok()))
    else {
        eprintln!("usage: switchyard-baseline LISTEN UPSTREAM [THREADS]");
        std::process::exit(2);
    };
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: false,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    let mut svc =
        pingora_proxy::http_proxy_service(&server.configuration, Passthrough { upstream });
    svc.add_tcp(listen);
    server.add_service(svc);
    server.run_forever()
}
