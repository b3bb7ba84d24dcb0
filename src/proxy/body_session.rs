//! Large request bodies: pingora replays a request body to each upstream attempt from a retry
//! buffer capped at 64 KiB. A body read whole in `request_filter` (routing needs the model name)
//! that is larger than that would never reach the provider, and the request would hang.
//!
//! [`BufferedBodySession`] lifts the cap without touching pingora's code: it wraps the real
//! downstream session as a pingora *custom* session that reports the body as fully read and
//! serves the whole body as its retry buffer, delegating everything else (response writes,
//! timeouts, digests) to the real session. When the request ends, [`restore`] puts the real
//! session back so pingora can reuse the client connection for its next request.
//!
//! The custom-session trait is `#[doc(hidden)]` in pingora; the version is pinned in Cargo.toml
//! and `tests/gateway_bodies.rs` sends 16 MiB bodies (with keep-alive) to catch a change.

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use pingora_core::protocols::http::custom::server::Session as CustomSession;
use pingora_core::protocols::http::custom::CustomMessageWrite;
use pingora_core::protocols::http::{HttpTask, ServerSession};
use pingora_core::protocols::{l4::socket::SocketAddr, Digest};
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The reader type pingora's custom-session trait names.
type BoxedReader = Box<dyn futures::Stream<Item = Result<Bytes>> + Unpin + Send + Sync + 'static>;

/// Where the real session waits while the wrapper is dropped.
pub type Home = Arc<Mutex<Option<ServerSession>>>;

pub struct BufferedBodySession {
    inner: Option<ServerSession>,
    body: Bytes,
    home: Home,
}

/// Replaces `slot`'s session with a wrapper that serves `body` as the complete request body.
/// Returns the handle [`restore`] needs.
pub fn install(slot: &mut ServerSession, body: Bytes) -> Home {
    let home: Home = Arc::new(Mutex::new(None));
    let real = std::mem::replace(slot, placeholder());
    *slot = ServerSession::new_custom(Box::new(BufferedBodySession {
        inner: Some(real),
        body,
        home: home.clone(),
    }));
    home
}

/// Puts the real session back into `slot` (dropping the wrapper). Call once, in `logging`.
pub fn restore(slot: &mut ServerSession, home: &Home) {
    let wrapper = std::mem::replace(slot, placeholder());
    drop(wrapper); // moves the real session into `home`
    let real = home.lock().ok().and_then(|mut h| h.take());
    if let Some(real) = real {
        *slot = real;
    }
}

/// An inert session that fills the slot for the instant between the two swaps.
fn placeholder() -> ServerSession {
    let (io, _) = tokio::io::duplex(1);
    ServerSession::new_http1(Box::new(io))
}

impl Drop for BufferedBodySession {
    fn drop(&mut self) {
        if let (Some(real), Ok(mut home)) = (self.inner.take(), self.home.lock()) {
            *home = Some(real);
        }
    }
}

impl BufferedBodySession {
    fn s(&self) -> &ServerSession {
        // Present from `install` until `drop`: no method runs after drop.
        self.inner
            .as_ref()
            .expect("wrapped session present until drop")
    }
    fn m(&mut self) -> &mut ServerSession {
        self.inner
            .as_mut()
            .expect("wrapped session present until drop")
    }
}

#[async_trait]
impl CustomSession for BufferedBodySession {
    fn req_header(&self) -> &RequestHeader {
        self.s().req_header()
    }
    fn req_header_mut(&mut self) -> &mut RequestHeader {
        self.m().req_header_mut()
    }
    async fn read_body_bytes(&mut self) -> Result<Option<Bytes>> {
        Ok(None) // already read whole; served through `get_retry_buffer`
    }
    async fn drain_request_body(&mut self) -> Result<()> {
        Ok(())
    }
    async fn write_response_header(&mut self, resp: Box<ResponseHeader>, end: bool) -> Result<()> {
        self.m().write_response_header(resp).await?;
        if end {
            self.m().finish_body().await?;
        }
        Ok(())
    }
    async fn write_response_header_ref(&mut self, resp: &ResponseHeader, end: bool) -> Result<()> {
        self.m().write_response_header_ref(resp).await?;
        if end {
            self.m().finish_body().await?;
        }
        Ok(())
    }
    async fn write_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        self.m().write_response_body(data, end).await
    }
    async fn write_trailers(&mut self, trailers: HeaderMap) -> Result<()> {
        self.m().write_response_trailers(trailers).await
    }
    async fn response_duplex_vec(&mut self, tasks: Vec<HttpTask>) -> Result<bool> {
        self.m().response_duplex_vec(tasks).await
    }
    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.m().set_read_timeout(timeout)
    }
    fn get_read_timeout(&self) -> Option<Duration> {
        self.s().get_read_timeout()
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.m().set_write_timeout(timeout)
    }
    fn get_write_timeout(&self) -> Option<Duration> {
        self.s().get_write_timeout()
    }
    fn set_total_drain_timeout(&mut self, timeout: Option<Duration>) {
        self.m().set_total_drain_timeout(timeout)
    }
    fn get_total_drain_timeout(&self) -> Option<Duration> {
        self.s().get_total_drain_timeout()
    }
    fn request_summary(&self) -> String {
        self.s().request_summary()
    }
    fn response_written(&self) -> Option<&ResponseHeader> {
        self.s().response_written()
    }
    async fn shutdown(&mut self, _code: u32, _ctx: &str) {
        self.m().shutdown().await
    }
    fn is_body_done(&mut self) -> bool {
        true
    }
    async fn finish(&mut self) -> Result<()> {
        self.m().finish_body().await
    }
    fn is_body_empty(&mut self) -> bool {
        self.body.is_empty()
    }
    async fn read_body_or_idle(&mut self, no_body_expected: bool) -> Result<Option<Bytes>> {
        // The real session's body is fully read, so this waits for the client to go idle or
        // away, exactly as it would for a small body.
        self.m().read_body_or_idle(no_body_expected).await
    }
    fn body_bytes_sent(&self) -> usize {
        self.s().body_bytes_sent()
    }
    fn body_bytes_read(&self) -> usize {
        self.s().body_bytes_read()
    }
    fn digest(&self) -> Option<&Digest> {
        self.s().digest()
    }
    fn digest_mut(&mut self) -> Option<&mut Digest> {
        self.m().digest_mut()
    }
    fn client_addr(&self) -> Option<&SocketAddr> {
        self.s().client_addr()
    }
    fn server_addr(&self) -> Option<&SocketAddr> {
        self.s().server_addr()
    }
    fn pseudo_raw_h1_request_header(&self) -> Bytes {
        self.s().to_h1_raw()
    }
    fn enable_retry_buffering(&mut self) {}
    fn retry_buffer_truncated(&self) -> bool {
        false
    }
    fn get_retry_buffer(&self) -> Option<Bytes> {
        Some(self.body.clone())
    }
    async fn finish_custom(&mut self) -> Result<()> {
        Ok(())
    }
    fn take_custom_message_reader(&mut self) -> Option<BoxedReader> {
        None
    }
    fn restore_custom_message_reader(&mut self, _reader: BoxedReader) -> Result<()> {
        Ok(())
    }
    fn take_custom_message_writer(&mut self) -> Option<Box<dyn CustomMessageWrite>> {
        None
    }
    fn restore_custom_message_writer(&mut self, _w: Box<dyn CustomMessageWrite>) -> Result<()> {
        Ok(())
    }
}
