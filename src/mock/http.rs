//! A minimal HTTP/1.1 server codec for the mock provider.
//!
//! [`Decoder`] turns a byte buffer into complete [`Request`]s, incrementally: it can be fed any
//! split of the input (pipelined requests, heads and chunk-size lines cut at arbitrary
//! boundaries) and keeps its state between calls, so a large body is never re-parsed. Bodies are
//! framed by `Content-Length` or `Transfer-Encoding: chunked`. The response side is a handful of
//! helpers that build a status line and headers ([`ResponseHead`]) and chunked-encoding frames.

use bytes::{Buf, Bytes, BytesMut};

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (either framing).
pub const MAX_BODY: usize = 256 * 1024 * 1024;
/// Most headers accepted in one request.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 4096;

/// One complete HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path plus optional `?query`.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header names are lower-cased; values are as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target (no query string).
    pub fn path(&self) -> &str {
        match self.target.split_once('?') {
            Some((p, _)) => p,
            None => &self.target,
        }
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// A query parameter, percent-decoded (`+` decodes to a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// Whether the connection stays open after this request.
    pub fn keep_alive(&self) -> bool {
        match self.header("connection") {
            Some(v) if has_token(v, "close") => false,
            Some(v) if has_token(v, "keep-alive") => true,
            _ => self.minor_version >= 1,
        }
    }
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Decodes `%XX` escapes and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex_val(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex_val(*b));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Why a request could not be decoded. The connection is answered and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    BadRequest(&'static str),
    HeadTooLarge,
    BodyTooLarge,
    NotImplemented(&'static str),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::NotImplemented(_) => 501,
        }
    }

    pub fn message(&self) -> String {
        match self {
            HttpError::BadRequest(m) => format!("bad request: {m}"),
            HttpError::HeadTooLarge => format!("request head larger than {MAX_HEAD} bytes"),
            HttpError::BodyTooLarge => format!("request body larger than {MAX_BODY} bytes"),
            HttpError::NotImplemented(m) => format!("not implemented: {m}"),
        }
    }
}

#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    minor_version: u8,
    headers: Vec<(String, String)>,
}

impl Head {
    fn into_request(self, body: Bytes) -> Request {
        Request {
            method: self.method,
            target: self.target,
            minor_version: self.minor_version,
            headers: self.headers,
            body,
        }
    }
}

#[derive(Debug)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes still to come.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Head,
    Fixed {
        head: Head,
        len: usize,
    },
    Chunked {
        head: Head,
        body: Vec<u8>,
        phase: Chunk,
    },
}

/// Incremental HTTP/1.x request decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    state: State,
    continue_pending: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once after a head with `Expect: 100-continue` was decoded and its body is awaited:
    /// the caller should then send `100 Continue`.
    pub fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_pending)
    }

    /// How many more bytes the current message is known to need (a buffer-size hint).
    pub fn wanted(&self, buffered: usize) -> usize {
        match &self.state {
            State::Head => 0,
            State::Fixed { len, .. } => len.saturating_sub(buffered),
            State::Chunked { phase, .. } => match phase {
                Chunk::Data(n) => n.saturating_sub(buffered),
                _ => 0,
            },
        }
    }

    /// True while a request has been started but not completed.
    pub fn in_progress(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    /// Decodes the next complete request from the front of `buf`, consuming its bytes.
    /// `Ok(None)` means more input is needed; everything consumed so far is remembered.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        loop {
            match &mut self.state {
                State::Head => {
                    let Some((head, used)) = parse_head(buf)? else {
                        return Ok(None);
                    };
                    buf.advance(used);
                    let framing = framing(&head.headers)?;
                    let expect = head
                        .headers
                        .iter()
                        .any(|(k, v)| k == "expect" && v.eq_ignore_ascii_case("100-continue"));
                    match framing {
                        Framing::Length(0) => {
                            return Ok(Some(head.into_request(Bytes::new())));
                        }
                        Framing::Length(len) => {
                            self.continue_pending = expect && buf.len() < len;
                            self.state = State::Fixed { head, len };
                        }
                        Framing::Chunked => {
                            self.continue_pending = expect && buf.is_empty();
                            self.state = State::Chunked {
                                head,
                                body: Vec::new(),
                                phase: Chunk::Size,
                            };
                        }
                    }
                }
                State::Fixed { len, .. } => {
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let len = *len;
                    let State::Fixed { head, .. } = std::mem::take(&mut self.state) else {
                        unreachable!("state checked above")
                    };
                    let body = buf.split_to(len).freeze();
                    return Ok(Some(head.into_request(body)));
                }
                State::Chunked { body, phase, .. } => {
                    if !decode_chunks(buf, body, phase)? {
                        return Ok(None);
                    }
                    let State::Chunked { head, body, .. } = std::mem::take(&mut self.state) else {
                        unreachable!("state checked above")
                    };
                    return Ok(Some(head.into_request(Bytes::from(body))));
                }
            }
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(used)) => {
            if used > MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            let head = Head {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("/").to_string(),
                minor_version: req.version.unwrap_or(1),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((head, used)))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(HttpError::HeadTooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeadTooLarge),
        Err(_) => Err(HttpError::BadRequest("malformed request head")),
    }
}

enum Framing {
    Length(usize),
    Chunked,
}

fn framing(headers: &[(String, String)]) -> Result<Framing, HttpError> {
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for (name, value) in headers {
        if name == "transfer-encoding" {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::NotImplemented(
                    "transfer-encoding other than chunked",
                ));
            }
            chunked = true;
        } else if name == "content-length" {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| HttpError::BadRequest("invalid content-length"))?;
            if length.is_some_and(|prev| prev != n) {
                return Err(HttpError::BadRequest("conflicting content-length headers"));
            }
            length = Some(n);
        }
    }
    if chunked {
        // Transfer-Encoding wins over Content-Length (RFC 9112 section 6.3).
        return Ok(Framing::Chunked);
    }
    let len = length.unwrap_or(0);
    if len > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(Framing::Length(len))
}

/// Position of the first CRLF in `buf`, if any.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Advances the chunked-body state machine. Returns true when the body (and its trailers) is
/// complete.
fn decode_chunks(
    buf: &mut BytesMut,
    body: &mut Vec<u8>,
    phase: &mut Chunk,
) -> Result<bool, HttpError> {
    loop {
        match phase {
            Chunk::Size => {
                let Some(end) = find_crlf(buf) else {
                    if buf.len() > MAX_LINE {
                        return Err(HttpError::BadRequest("chunk-size line too long"));
                    }
                    return Ok(false);
                };
                let size = parse_chunk_size(&buf[..end])?;
                buf.advance(end + 2);
                if body.len().saturating_add(size) > MAX_BODY {
                    return Err(HttpError::BodyTooLarge);
                }
                if size == 0 {
                    *phase = Chunk::Trailers;
                } else {
                    body.reserve(size);
                    *phase = Chunk::Data(size);
                }
            }
            Chunk::Data(left) => {
                let take = (*left).min(buf.len());
                body.extend_from_slice(&buf[..take]);
                buf.advance(take);
                *left -= take;
                if *left > 0 {
                    return Ok(false);
                }
                *phase = Chunk::DataEnd;
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(false);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(HttpError::BadRequest("missing CRLF after chunk data"));
                }
                buf.advance(2);
                *phase = Chunk::Size;
            }
            Chunk::Trailers => {
                let Some(end) = find_crlf(buf) else {
                    if buf.len() > MAX_LINE {
                        return Err(HttpError::BadRequest("trailer line too long"));
                    }
                    return Ok(false);
                };
                buf.advance(end + 2);
                if end == 0 {
                    return Ok(true);
                }
            }
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let bad = HttpError::BadRequest("invalid chunk size");
    let digits = line.split(|b| *b == b';').next().unwrap_or(&[]);
    let digits = std::str::from_utf8(digits).map_err(|_| bad.clone())?.trim();
    if digits.is_empty() || digits.len() > 15 {
        return Err(bad);
    }
    usize::from_str_radix(digits, 16).map_err(|_| bad)
}

/// The standard reason phrase for the status codes the mock uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Builder for a response status line and headers.
pub struct ResponseHead {
    buf: Vec<u8>,
}

impl ResponseHead {
    pub fn new(status: u16) -> Self {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
        Self { buf }
    }

    /// Adds a header. Control characters in the value (CR, LF, ...) are replaced by `?` so that
    /// values echoed from a request can never split the response.
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        for c in value.chars() {
            if c.is_control() {
                self.buf.push(b'?');
            } else {
                let mut tmp = [0u8; 4];
                self.buf
                    .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Ends the head; the returned buffer can have a body appended.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

/// Appends one chunked-encoding frame carrying `data` (which must not be empty).
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The terminating chunk of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to a fresh decoder in pieces of `step` bytes and collects every request.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<Vec<Request>, HttpError> {
        let mut decoder = Decoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(req) = decoder.decode(&mut buf)? {
                out.push(req);
            }
        }
        assert!(buf.is_empty(), "unconsumed input: {:?}", buf);
        assert!(!decoder.in_progress());
        Ok(out)
    }

    const PIPELINE: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world\
GET /v1/models?key=a%2Bb+c HTTP/1.1\r\nHost: x\r\n\r\n\
POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: yes\r\n\r\n\
DELETE /mock/fault HTTP/1.0\r\nConnection: close\r\n\r\n";

    #[test]
    fn pipelined_requests_at_every_split() {
        for step in [1, 2, 3, 5, 7, 13, 64, PIPELINE.len()] {
            let reqs = decode_in_steps(PIPELINE, step).expect("decodes");
            assert_eq!(reqs.len(), 4, "step {step}");
            assert_eq!(reqs[0].method, "POST");
            assert_eq!(reqs[0].path(), "/v1/chat/completions");
            assert_eq!(&reqs[0].body[..], b"hello world");
            assert!(reqs[0].keep_alive());
            assert_eq!(reqs[1].method, "GET");
            assert_eq!(reqs[1].path(), "/v1/models");
            assert_eq!(reqs[1].query_param("key").as_deref(), Some("a+b c"));
            assert!(reqs[1].body.is_empty());
            assert_eq!(reqs[2].path(), "/up");
            assert_eq!(&reqs[2].body[..], b"hello 0123456789");
            assert_eq!(reqs[2].header("X-a"), Some("1"));
            assert_eq!(reqs[3].method, "DELETE");
            assert!(!reqs[3].keep_alive());
        }
    }

    #[test]
    fn keep_alive_rules() {
        let parse = |raw: &[u8]| decode_in_steps(raw, raw.len()).expect("decodes").remove(0);
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").keep_alive());
        assert!(!parse(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive());
        assert!(!parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn large_content_length_body() {
        let body = vec![b'x'; 3 * 1024 * 1024 + 7];
        let mut raw =
            format!("POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        raw.extend_from_slice(&body);
        let reqs = decode_in_steps(&raw, 65536).expect("decodes");
        assert_eq!(reqs[0].body.len(), body.len());
    }

    #[test]
    fn expect_continue_is_signalled() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(
            &b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"[..],
        );
        assert!(d.decode(&mut buf).expect("ok").is_none());
        assert!(d.take_continue());
        assert!(!d.take_continue());
        assert_eq!(d.wanted(buf.len()), 3);
        buf.extend_from_slice(b"abc");
        assert_eq!(
            &d.decode(&mut buf).expect("ok").expect("complete").body[..],
            b"abc"
        );
    }

    #[test]
    fn errors() {
        let one = |raw: &[u8]| {
            let mut d = Decoder::new();
            let mut buf = BytesMut::from(raw);
            d.decode(&mut buf).map(|r| r.is_some())
        };
        assert_eq!(
            one(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(HttpError::BadRequest("invalid content-length"))
        );
        assert_eq!(
            one(b"\x01\x02 / HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadRequest("malformed request head"))
        );
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(HttpError::BadRequest("invalid chunk size"))
        );
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY"),
            Err(HttpError::BadRequest("missing CRLF after chunk data"))
        );
        assert_eq!(
            one(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HttpError::NotImplemented(
                "transfer-encoding other than chunked"
            ))
        );
        let huge = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(one(huge.as_bytes()), Err(HttpError::BodyTooLarge));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD + 1));
        assert_eq!(one(&long), Err(HttpError::HeadTooLarge));
        // Partial input is not an error.
        assert_eq!(one(b"GET / HTTP/1.1\r\nHost"), Ok(false));
    }

    #[test]
    fn response_helpers() {
        let mut head = ResponseHead::new(429);
        head.header("x-model", "evil\r\nset-cookie: a");
        let bytes = head.finish();
        let text = String::from_utf8(bytes).expect("utf8");
        assert_eq!(
            text,
            "HTTP/1.1 429 Too Many Requests\r\nx-model: evil??set-cookie: a\r\n\r\n"
        );
        let mut out = Vec::new();
        push_chunk(&mut out, &[b'a'; 26]);
        assert_eq!(&out[..4], b"1a\r\n");
        assert_eq!(percent_decode("%zz%41%"), "%zzA%");
    }
}
