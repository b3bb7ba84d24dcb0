//! Multipart uploads (speech to text): read from the client once, never held whole in memory,
//! replayed to every attempt.
//!
//! While the body arrives, each chunk goes to a [`Spool`] (memory up to [`MEMORY_LIMIT`], then
//! an anonymous temp file, removed when the request ends) and to the [`Scanner`], which finds
//! the form's `model` field and its exact byte range. Each attempt then gets a [`Cursor`]: the
//! spooled body read back in [`READ_CHUNK`] pieces, with only the model field's value replaced
//! by the attempt's model. The client session wrapper (`proxy::downstream`) serves those pieces
//! as the request body, so pingora streams them upstream with its own bounded pipe, and a 429
//! or 5xx falls back by replaying the spool from the start.
//!
//! File reads and writes run on tokio's blocking pool (never on the proxy's workers).

use super::multipart::{Part, Scanner};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::Arc;

/// Uploads up to this size stay in memory; larger ones go to a temp file.
pub const MEMORY_LIMIT: usize = 256 * 1024;
/// Largest piece read back for an attempt.
pub const READ_CHUNK: usize = 128 * 1024;

/// The spooled body: in memory, or in an unnamed temp file.
#[derive(Debug)]
enum Store {
    Memory(Bytes),
    File(Arc<std::fs::File>),
}

/// The upload as received, plus the scanner's findings while it is written.
pub struct Spool {
    mem: BytesMut,
    file: Option<tokio::fs::File>,
    len: u64,
    scanner: Scanner,
}

impl Spool {
    pub fn new(boundary: &str) -> Spool {
        Spool {
            mem: BytesMut::new(),
            file: None,
            len: 0,
            scanner: Scanner::new(boundary),
        }
    }

    /// Appends one chunk of the client's body.
    pub async fn push(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.scanner.feed(chunk);
        self.len += chunk.len() as u64;
        if self.file.is_none() && self.mem.len() + chunk.len() <= MEMORY_LIMIT {
            self.mem.extend_from_slice(chunk);
            return Ok(());
        }
        use tokio::io::AsyncWriteExt;
        if self.file.is_none() {
            let std_file = tokio::task::spawn_blocking(tempfile::tempfile)
                .await
                .map_err(io::Error::other)??;
            let mut f = tokio::fs::File::from_std(std_file);
            f.write_all(&self.mem).await?;
            self.mem = BytesMut::new();
            self.file = Some(f);
        }
        match self.file.as_mut() {
            Some(f) => f.write_all(chunk).await,
            None => Ok(()),
        }
    }

    /// The whole body has arrived: the parts, and the spool ready for replay.
    pub async fn finish(self) -> io::Result<(Result<Vec<Part>, String>, Stored)> {
        let store = match self.file {
            None => Store::Memory(self.mem.freeze()),
            Some(mut f) => {
                use tokio::io::AsyncWriteExt;
                f.flush().await?;
                Store::File(Arc::new(f.into_std().await))
            }
        };
        Ok((
            self.scanner.finish(),
            Stored {
                store: Arc::new(store),
                len: self.len,
            },
        ))
    }
}

/// The complete upload, cheap to share.
#[derive(Clone, Debug)]
pub struct Stored {
    store: Arc<Store>,
    len: u64,
}

impl Stored {
    /// A body already in memory, replayed the same way (a large JSON body with its model
    /// renamed per attempt: `proxy::upstream`).
    pub fn memory(body: Bytes) -> Stored {
        Stored {
            len: body.len() as u64,
            store: Arc::new(Store::Memory(body)),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the upload went to a temp file.
    pub fn on_disk(&self) -> bool {
        matches!(*self.store, Store::File(_))
    }
}

/// A spooled upload and where its model field is.
#[derive(Debug)]
pub struct Upload {
    pub stored: Stored,
    /// The model field's value, in the client's body.
    pub model_span: Range<u64>,
    /// The model the attempt in flight names.
    attempt_model: Bytes,
}

impl Upload {
    pub fn new(stored: Stored, model_span: Range<u64>) -> Upload {
        Upload {
            stored,
            model_span,
            attempt_model: Bytes::new(),
        }
    }

    /// The body length an attempt sends (after [`Upload::cursor`] set its model).
    pub fn attempt_len(&self) -> u64 {
        self.stored.len - (self.model_span.end - self.model_span.start)
            + self.attempt_model.len() as u64
    }

    /// A fresh replay of the upload naming `model`.
    pub fn cursor(&mut self, model: &str) -> Cursor {
        self.attempt_model = Bytes::copy_from_slice(model.as_bytes());
        let mut segments = VecDeque::with_capacity(3);
        segments.push_back(Segment::Spool(0..self.model_span.start));
        segments.push_back(Segment::Bytes(self.attempt_model.clone()));
        segments.push_back(Segment::Spool(self.model_span.end..self.stored.len));
        segments.retain(|s| !s.is_empty());
        Cursor {
            stored: self.stored.clone(),
            segments,
        }
    }
}

#[derive(Debug)]
enum Segment {
    Spool(Range<u64>),
    Bytes(Bytes),
}

impl Segment {
    fn is_empty(&self) -> bool {
        match self {
            Segment::Spool(r) => r.start >= r.end,
            Segment::Bytes(b) => b.is_empty(),
        }
    }
}

/// One attempt's replay of an upload.
#[derive(Debug)]
pub struct Cursor {
    stored: Stored,
    segments: VecDeque<Segment>,
}

/// The next piece of a replay, read without holding the cursor (see [`Cursor::next_read`]).
pub enum Read {
    Ready(Bytes),
    File {
        file: Arc<std::fs::File>,
        at: u64,
        len: usize,
    },
}

impl Read {
    /// The piece's bytes (a file read runs on the blocking pool).
    pub async fn run(self) -> io::Result<Bytes> {
        match self {
            Read::Ready(b) => Ok(b),
            Read::File { file, at, len } => tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, at)?;
                Ok(Bytes::from(buf))
            })
            .await
            .map_err(io::Error::other)?,
        }
    }
}

impl Cursor {
    pub fn done(&self) -> bool {
        self.segments.is_empty()
    }

    /// What to read next; call [`Cursor::advance`] with its length once it is read. A read
    /// that is abandoned (its future dropped) leaves the cursor where it was.
    pub fn next_read(&self) -> Option<Read> {
        Some(match self.segments.front()? {
            Segment::Bytes(b) => Read::Ready(b.clone()),
            Segment::Spool(r) => {
                let len = ((r.end - r.start) as usize).min(READ_CHUNK);
                match &*self.stored.store {
                    Store::Memory(m) => {
                        Read::Ready(m.slice(r.start as usize..r.start as usize + len))
                    }
                    Store::File(f) => Read::File {
                        file: f.clone(),
                        at: r.start,
                        len,
                    },
                }
            }
        })
    }

    /// Moves past `n` bytes of the current segment.
    pub fn advance(&mut self, n: usize) {
        let finished = match self.segments.front_mut() {
            Some(Segment::Bytes(b)) => {
                let _ = b.split_to(n.min(b.len()));
                b.is_empty()
            }
            Some(Segment::Spool(r)) => {
                r.start = (r.start + n as u64).min(r.end);
                r.start >= r.end
            }
            None => false,
        };
        if finished {
            self.segments.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn spool_of(body: &[u8], boundary: &str) -> (Vec<Part>, Stored) {
        let mut s = Spool::new(boundary);
        for c in body.chunks(10_000) {
            s.push(c).await.unwrap();
        }
        let (parts, stored) = s.finish().await.unwrap();
        (parts.unwrap(), stored)
    }

    async fn replay(c: &mut Cursor) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(r) = c.next_read() {
            let piece = r.run().await.unwrap();
            assert!(piece.len() <= READ_CHUNK);
            c.advance(piece.len());
            out.extend_from_slice(&piece);
        }
        out
    }

    fn form(file_len: usize) -> Vec<u8> {
        let mut b =
            b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nroute-a\r\n--B\r\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\r\n"
                .to_vec();
        b.extend((0..file_len).map(|i| (i % 251) as u8));
        b.extend_from_slice(b"\r\n--B--\r\n");
        b
    }

    #[tokio::test]
    async fn small_and_large_uploads_replay_with_the_model_renamed() {
        for file_len in [10, 3 << 20] {
            let body = form(file_len);
            let (parts, stored) = spool_of(&body, "B").await;
            assert_eq!(stored.on_disk(), body.len() > MEMORY_LIMIT);
            let m = &parts[0].value;
            let mut up = Upload::new(stored, m.clone());
            for model in ["whisper-1", "x", "a-much-longer-model-name"] {
                let mut c = up.cursor(model);
                let got = replay(&mut c).await;
                let at = body.windows(7).position(|w| w == b"route-a").unwrap();
                let mut want = body[..at].to_vec();
                want.extend_from_slice(model.as_bytes());
                want.extend_from_slice(&body[at + 7..]);
                assert_eq!(got.len() as u64, up.attempt_len());
                assert!(got == want, "model {model}, file {file_len}");
            }
        }
    }

    #[tokio::test]
    async fn an_abandoned_read_is_read_again() {
        let body = form(1 << 20);
        let (parts, stored) = spool_of(&body, "B").await;
        let mut up = Upload::new(stored, parts[0].value.clone());
        let mut c = up.cursor("m");
        let first = c.next_read().unwrap().run().await.unwrap();
        // Not advanced: the same piece again.
        let again = c.next_read().unwrap().run().await.unwrap();
        assert_eq!(first, again);
        c.advance(first.len());
        assert!(!c.done());
    }
}
