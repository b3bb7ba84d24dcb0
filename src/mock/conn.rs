//! One connection: read requests with the codec, hand them to the router, frame the replies,
//! and carry out the connection-level faults (hang, reset, cut). The HTTP side works on any
//! byte stream, so a TLS connection runs the same code once its handshake is done.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{push_chunk, Decoder, ResponseHead, LAST_CHUNK};
use super::route::{self, Action};
use super::{tls, Body, Dialect, Reply, State};

const READ_CHUNK: usize = 8 * 1024;
/// Largest single buffer reservation while reading a big body.
const MAX_RESERVE: usize = 16 * 1024 * 1024;
/// How long a TLS connection may take to say goodbye (`close_notify`) before it is dropped.
const TLS_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one connection until the client closes it, an error occurs or a fault ends it. With
/// TLS configured, the handshake comes first.
pub(crate) async fn connection(stream: TcpStream, state: Arc<State>) {
    let Some(tls) = state.opts.tls.as_ref() else {
        let mut stream = stream;
        let end = run(&mut stream, &state, &[]).await;
        finish(end, &stream);
        return;
    };
    let peer = stream.peer_addr().ok();
    let mut stream = match tls.accept(stream).await {
        Ok(s) => s,
        Err(e) => {
            log::debug!("mock: TLS handshake with {peer:?} failed: {e}");
            return;
        }
    };
    let echo = tls::echo_headers(&stream);
    let end = run(&mut stream, &state, &echo).await;
    if matches!(end, Ok(End::Close)) {
        // Send close_notify, so the client sees a clean end of the TLS stream.
        let _ = tokio::time::timeout(TLS_CLOSE_TIMEOUT, stream.shutdown()).await;
    }
    // A reset drops the TLS session without close_notify, as an RST on the socket below.
    finish(end, stream.get_ref().0);
}

/// Carries out how the connection ended, on the TCP socket (under TLS, if any), before it drops.
fn finish(end: io::Result<End>, tcp: &TcpStream) {
    match end {
        Ok(End::Close) => {}
        Ok(End::Reset) => {
            // SO_LINGER 0: dropping the socket sends an RST instead of a FIN.
            if let Err(e) = tcp.set_zero_linger() {
                log::debug!("mock: set_zero_linger: {e}");
            }
        }
        Err(e) => log::debug!("mock: connection ended: {e}"),
    }
}

enum End {
    Close,
    Reset,
}

/// Serves requests on `stream`; every reply also carries `echo` (connection-level headers).
async fn run<S>(stream: &mut S, state: &State, echo: &[(&'static str, String)]) -> io::Result<End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let req = match decoder.decode(&mut buf) {
            Ok(Some(req)) => req,
            Ok(None) => {
                if decoder.take_continue() {
                    write_out(stream, b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                }
                let want = decoder.wanted(buf.len()).clamp(READ_CHUNK, MAX_RESERVE);
                if buf.capacity() - buf.len() < READ_CHUNK {
                    buf.reserve(want);
                }
                if stream.read_buf(&mut buf).await? == 0 {
                    if decoder.in_progress() || !buf.is_empty() {
                        log::debug!("mock: client closed the connection mid-request");
                    }
                    return Ok(End::Close);
                }
                continue;
            }
            Err(e) => {
                let reply = Dialect::OpenAi.error(e.status(), &e.message());
                send(stream, reply, false).await?;
                return Ok(End::Close);
            }
        };
        // Do not keep a huge buffer alive on an idle connection after a big upload.
        if buf.is_empty() && buf.capacity() > 4 * 1024 * 1024 {
            buf = BytesMut::with_capacity(READ_CHUNK);
        }
        let keep_alive = req.keep_alive();
        match route::handle(req, state).await {
            Action::Reply(mut reply) => {
                reply.headers.extend_from_slice(echo);
                match send(stream, reply, keep_alive).await? {
                    Sent::Done if keep_alive => {}
                    Sent::Done => return Ok(End::Close),
                    Sent::Cut => return Ok(End::Reset),
                }
            }
            Action::Hang => {
                hang(stream).await;
                return Ok(End::Close);
            }
            Action::Reset => return Ok(End::Reset),
        }
    }
}

/// Waits, without answering, until the client closes the connection. Anything it sends is read
/// and discarded.
async fn hang<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut scratch = [0u8; 1024];
    loop {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

enum Sent {
    Done,
    /// The reply was cut short on purpose; the connection must be reset.
    Cut,
}

/// Writes a reply: after `ttft`, the head; then the body, either whole (`Content-Length`) or as
/// one chunk per event with `itl` between events.
async fn send<S>(stream: &mut S, reply: Reply, keep_alive: bool) -> io::Result<Sent>
where
    S: AsyncWrite + Unpin,
{
    if !reply.ttft.is_zero() {
        tokio::time::sleep(reply.ttft).await;
    }
    let mut head = ResponseHead::new(reply.status);
    head.header("content-type", reply.content_type);
    head.header("server", "switchyard-mock");
    for (name, value) in &reply.headers {
        head.header(name, value);
    }
    if !keep_alive {
        head.header("connection", "close");
    }
    match reply.body {
        Body::Full(body) => {
            head.header("content-length", &body.len().to_string());
            let mut out = head.finish();
            if reply.cut.is_some() {
                out.extend_from_slice(&body[..body.len() / 2]);
                write_out(stream, &out).await?;
                // Give the bytes a moment to leave before the RST overtakes them.
                tokio::time::sleep(Duration::from_millis(5)).await;
                return Ok(Sent::Cut);
            }
            out.extend_from_slice(&body);
            write_out(stream, &out).await?;
            Ok(Sent::Done)
        }
        Body::Stream(mut gen) => {
            head.header("cache-control", "no-cache");
            head.header("transfer-encoding", "chunked");
            let mut out = head.finish();
            let mut event = Vec::with_capacity(512);
            let mut sent = 0usize;
            loop {
                if reply.cut == Some(sent) {
                    if !out.is_empty() {
                        write_out(stream, &out).await?;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    return Ok(Sent::Cut);
                }
                event.clear();
                if !gen.next_event(&mut event) {
                    break;
                }
                if event.is_empty() {
                    continue;
                }
                if sent > 0 && !reply.itl.is_zero() {
                    tokio::time::sleep(reply.itl).await;
                }
                push_chunk(&mut out, &event);
                write_out(stream, &out).await?;
                out.clear();
                sent += 1;
            }
            if reply.cut.is_some() {
                // Fewer events than the cut point: still end without the terminating chunk.
                if !out.is_empty() {
                    write_out(stream, &out).await?;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                return Ok(Sent::Cut);
            }
            out.extend_from_slice(LAST_CHUNK);
            write_out(stream, &out).await?;
            Ok(Sent::Done)
        }
    }
}

/// Writes `bytes` and flushes them, so that they leave now even when a layer such as TLS
/// buffers (on a plain TCP socket the flush does nothing).
async fn write_out<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}
