//! One connection: read requests with the codec, hand them to the router, frame the replies,
//! and carry out the connection-level faults (hang, reset, cut).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{push_chunk, Decoder, ResponseHead, LAST_CHUNK};
use super::route::{self, Action};
use super::{Body, Dialect, Reply, State};

const READ_CHUNK: usize = 8 * 1024;
/// Largest single buffer reservation while reading a big body.
const MAX_RESERVE: usize = 16 * 1024 * 1024;

/// Serves one connection until the client closes it, an error occurs or a fault ends it.
pub(crate) async fn connection(mut stream: TcpStream, state: Arc<State>) {
    match run(&mut stream, &state).await {
        Ok(End::Close) => {}
        Ok(End::Reset) => {
            // SO_LINGER 0: dropping the socket sends an RST instead of a FIN.
            if let Err(e) = stream.set_zero_linger() {
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

async fn run(stream: &mut TcpStream, state: &State) -> io::Result<End> {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let req = match decoder.decode(&mut buf) {
            Ok(Some(req)) => req,
            Ok(None) => {
                if decoder.take_continue() {
                    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
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
            Action::Reply(reply) => match send(stream, reply, keep_alive).await? {
                Sent::Done if keep_alive => {}
                Sent::Done => return Ok(End::Close),
                Sent::Cut => return Ok(End::Reset),
            },
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
async fn hang(stream: &mut TcpStream) {
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
async fn send(stream: &mut TcpStream, reply: Reply, keep_alive: bool) -> io::Result<Sent> {
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
                stream.write_all(&out).await?;
                // Give the bytes a moment to leave before the RST overtakes them.
                tokio::time::sleep(Duration::from_millis(5)).await;
                return Ok(Sent::Cut);
            }
            out.extend_from_slice(&body);
            stream.write_all(&out).await?;
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
                        stream.write_all(&out).await?;
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
                stream.write_all(&out).await?;
                out.clear();
                sent += 1;
            }
            if reply.cut.is_some() {
                // Fewer events than the cut point: still end without the terminating chunk.
                if !out.is_empty() {
                    stream.write_all(&out).await?;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                return Ok(Sent::Cut);
            }
            out.extend_from_slice(LAST_CHUNK);
            stream.write_all(&out).await?;
            Ok(Sent::Done)
        }
    }
}
