//! The client side of a proxied request, wrapped. Once `request_filter` has read the request
//! body, the real downstream session is wrapped as a pingora *custom* session
//! ([`GatewaySession`]) that does two jobs pingora cannot be configured to do:
//!
//! 1. **Request bodies of any size.** pingora replays a body to each upstream attempt from a
//!    retry buffer capped at 64 KiB; a body read whole in `request_filter` (routing needs the
//!    model name) that is larger would never reach the provider, and the request would hang.
//!    The wrapper reports the body as fully read and serves the whole of it as the retry buffer.
//!    A multipart upload is not in memory at all: each attempt streams it from its spool
//!    (`HoldControl::upload`), piece by piece, through the body-reading calls. A large JSON
//!    body whose model is renamed is replayed the same way, from memory, as the client's bytes
//!    around the new name, so it is not copied once more per attempt.
//! 2. **Holding the response header.** A streamed answer's header is held until its first body
//!    bytes, and a non-streamed answer (up to [`HOLD_CAP`]) until its end. Until then nothing
//!    has reached the client, so a provider that dies after its header still fails over
//!    transparently, a cut non-streamed body becomes a clean error instead of truncated JSON,
//!    and the header can carry what only the body tells (`x-switchyard-cost-usd`).
//!
//! Everything else (timeouts, digests, direct writes by the gateway) is delegated to the real
//! session. When the request ends, [`restore`] puts the real session back so pingora can reuse
//! the client connection for its next request.
//!
//! The custom-session trait is `#[doc(hidden)]` in pingora; the version is pinned in Cargo.toml
//! and `tests/gateway_bodies.rs` sends bodies up to 16 MiB (with keep-alive) to catch a change.

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

/// Non-streamed responses larger than this are released before their end (without the
/// headers computed from the body).
pub const HOLD_CAP: usize = 8 << 20;

/// How long the response header is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Pass responses through as they come.
    Off,
    /// Until the first body bytes (streams).
    UntilFirstBody,
    /// Until the end of the body (non-streamed responses), bounded by [`HOLD_CAP`].
    UntilEnd,
}

/// Set by the proxy hooks, read by the wrapper: the hold for the current attempt, and headers
/// to add to the response when it is released.
#[derive(Debug)]
pub struct HoldControl {
    pub hold: Hold,
    pub extra_headers: Vec<(&'static str, String)>,
    /// A status that replaces the held header's (a whole answer that could not be translated).
    pub status: Option<u16>,
    /// The attempt's request body, streamed from an upload spool instead of `body`
    /// (`crate::media::upload`); set for each attempt before its body is sent.
    pub upload: Option<crate::media::upload::Cursor>,
}

pub type Control = Arc<Mutex<HoldControl>>;

pub struct GatewaySession {
    inner: Option<ServerSession>,
    body: Bytes,
    home: Home,
    control: Control,
    held: Vec<HttpTask>,
    held_bytes: usize,
    /// The header went out: everything passes through from now on.
    released: bool,
}

/// Replaces `slot`'s session with the wrapper, serving `body` as the complete request body.
/// Returns the handle [`restore`] needs and the hold control.
pub fn install(slot: &mut ServerSession, body: Bytes) -> (Home, Control) {
    let home: Home = Arc::new(Mutex::new(None));
    let control: Control = Arc::new(Mutex::new(HoldControl {
        hold: Hold::Off,
        extra_headers: Vec::new(),
        status: None,
        upload: None,
    }));
    let real = std::mem::replace(slot, placeholder());
    let wrapper = ServerSession::new_custom(Box::new(GatewaySession {
        inner: Some(real),
        body,
        home: home.clone(),
        control: control.clone(),
        held: Vec::new(),
        held_bytes: 0,
        released: false,
    }));
    spare(std::mem::replace(slot, wrapper));
    (home, control)
}

/// Puts the real session back into `slot` (dropping the wrapper). Call once, in `logging`.
pub fn restore(slot: &mut ServerSession, home: &Home) {
    let wrapper = std::mem::replace(slot, placeholder());
    drop(wrapper); // moves the real session into `home`
    let real = home.lock().ok().and_then(|mut h| h.take());
    if let Some(real) = real {
        spare(std::mem::replace(slot, real));
    }
}

thread_local! {
    /// The inert session that fills a slot between two swaps, kept for the thread's next
    /// swap: making one (a pipe and an HTTP/1 session) for each swap was about ten of a chat
    /// request's 213 allocations.
    static SPARE: std::cell::RefCell<Option<ServerSession>> = const { std::cell::RefCell::new(None) };
}

/// An inert session that fills the slot for the instant between the two swaps.
fn placeholder() -> ServerSession {
    SPARE.with(|s| s.borrow_mut().take()).unwrap_or_else(|| {
        let (io, _) = tokio::io::duplex(1);
        ServerSession::new_http1(Box::new(io))
    })
}

/// Keeps `placeholder` (back from a swap) for the thread's next one.
fn spare(placeholder: ServerSession) {
    SPARE.with(|s| *s.borrow_mut() = Some(placeholder));
}

impl Drop for GatewaySession {
    fn drop(&mut self) {
        if let (Some(real), Ok(mut home)) = (self.inner.take(), self.home.lock()) {
            *home = Some(real);
        }
    }
}

impl GatewaySession {
    fn hold(&self) -> Hold {
        self.control.lock().map_or(Hold::Off, |c| c.hold)
    }

    /// Whether the attempt in flight streams its body piece by piece (an upload, or a large
    /// body replayed from memory), and whether that stream is done.
    fn piecewise(&self) -> Option<bool> {
        let c = self.control.lock().ok()?;
        c.upload.as_ref().map(|u| u.done())
    }

    /// The next piece of the attempt's body; `None` at its end. The cursor stays in the
    /// control while the piece is read (no lock across the read), so a read abandoned by
    /// pingora's select leaves it where it was.
    async fn next_piece(&mut self) -> Result<Option<Bytes>> {
        let read = match self.control.lock() {
            Ok(c) => c.upload.as_ref().and_then(|u| u.next_read()),
            Err(_) => None,
        };
        let Some(read) = read else {
            return Ok(None);
        };
        let piece = read.run().await.map_err(|e| {
            pingora_error::Error::because(
                pingora_error::ErrorType::InternalError,
                "reading the upload spool",
                e,
            )
        })?;
        if let Ok(mut c) = self.control.lock() {
            if let Some(u) = c.upload.as_mut() {
                u.advance(piece.len());
            }
        }
        Ok(Some(piece))
    }

    /// Writes everything held (with the extra headers) and passes through from now on.
    async fn release(&mut self, more: Vec<HttpTask>) -> Result<bool> {
        self.released = true;
        let mut tasks = std::mem::take(&mut self.held);
        tasks.extend(more);
        if let Some(HttpTask::Header(h, _)) = tasks.first_mut() {
            let (extra, status) = self
                .control
                .lock()
                .map(|mut c| (std::mem::take(&mut c.extra_headers), c.status.take()))
                .unwrap_or_default();
            for (k, v) in extra {
                h.insert_header(k, v)?;
            }
            if let Some(code) = status {
                h.set_status(code)?;
            }
        }
        self.m().response_duplex_vec(tasks).await
    }

    /// A response the gateway writes itself replaces anything held from a failed attempt.
    fn discard_held(&mut self) {
        self.held.clear();
        self.held_bytes = 0;
        self.released = true;
    }

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
impl CustomSession for GatewaySession {
    fn req_header(&self) -> &RequestHeader {
        self.s().req_header()
    }
    fn req_header_mut(&mut self) -> &mut RequestHeader {
        self.m().req_header_mut()
    }
    async fn read_body_bytes(&mut self) -> Result<Option<Bytes>> {
        if self.piecewise() == Some(false) {
            return self.next_piece().await;
        }
        Ok(None) // already read whole; served through `get_retry_buffer`
    }
    async fn drain_request_body(&mut self) -> Result<()> {
        Ok(())
    }
    async fn write_response_header(&mut self, resp: Box<ResponseHeader>, end: bool) -> Result<()> {
        self.discard_held();
        self.m().write_response_header(resp).await?;
        if end {
            self.m().finish_body().await?;
        }
        Ok(())
    }
    async fn write_response_header_ref(&mut self, resp: &ResponseHeader, end: bool) -> Result<()> {
        self.discard_held();
        self.m().write_response_header_ref(resp).await?;
        if end {
            self.m().finish_body().await?;
        }
        Ok(())
    }
    async fn write_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        if !self.held.is_empty() {
            self.release(Vec::new()).await?;
        }
        self.m().write_response_body(data, end).await
    }
    async fn write_trailers(&mut self, trailers: HeaderMap) -> Result<()> {
        self.m().write_response_trailers(trailers).await
    }
    async fn response_duplex_vec(&mut self, tasks: Vec<HttpTask>) -> Result<bool> {
        let hold = self.hold();
        if self.released || (hold == Hold::Off && self.held.is_empty()) {
            self.released = true;
            return self.m().response_duplex_vec(tasks).await;
        }
        let mut rest = tasks.into_iter();
        while let Some(task) = rest.next() {
            let release = match &task {
                HttpTask::Header(_, end) => {
                    // A new attempt's header: whatever a failed attempt left is dropped.
                    self.held.clear();
                    self.held_bytes = 0;
                    *end
                }
                HttpTask::Body(data, end) => {
                    let n = data.as_ref().map_or(0, |d| d.len());
                    self.held_bytes += n;
                    *end || (hold == Hold::UntilFirstBody && n > 0) || self.held_bytes > HOLD_CAP
                }
                HttpTask::Failed(_) => false,
                HttpTask::Trailer(_) | HttpTask::Done | HttpTask::UpgradedBody(..) => true,
            };
            if let HttpTask::Failed(e) = task {
                // The attempt failed before anything reached the client: report it without
                // writing, so the request can fail over (or be answered with a clean error).
                return Err(e);
            }
            self.held.push(task);
            if release || hold == Hold::Off {
                return self.release(rest.collect()).await;
            }
        }
        Ok(false)
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
        self.piecewise() != Some(false)
    }
    async fn finish(&mut self) -> Result<()> {
        self.m().finish_body().await
    }
    fn is_body_empty(&mut self) -> bool {
        self.body.is_empty() && self.piecewise().is_none()
    }
    async fn read_body_or_idle(&mut self, no_body_expected: bool) -> Result<Option<Bytes>> {
        if !no_body_expected && self.piecewise() == Some(false) {
            return self.next_piece().await;
        }
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
        if self.piecewise().is_some() {
            return None; // streamed piece by piece through `read_body_or_idle`
        }
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
