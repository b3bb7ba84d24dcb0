//! An incremental `multipart/form-data` scanner: fed the upload chunk by chunk as it arrives,
//! it finds each part's name, file name and content type, the exact byte range of its value
//! in the whole body, and keeps only the first bytes of each value (a text field whole up to
//! [`FIELD_CAPTURE`], a file's head up to [`FILE_CAPTURE`] for its header). Memory is bounded
//! by one chunk plus the delimiter, whatever the upload's size.

use std::ops::Range;

/// Most bytes kept of a text field's value.
pub const FIELD_CAPTURE: usize = 4 * 1024;
/// Most bytes kept of a file's head.
pub const FILE_CAPTURE: usize = 64 * 1024;
/// Largest header block of one part.
const MAX_PART_HEAD: usize = 16 * 1024;
/// Most parts in one form.
const MAX_PARTS: usize = 256;

/// One part of the form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// The value's byte range in the whole body.
    pub value: Range<u64>,
    /// The value's first bytes (see the module doc).
    pub head: Vec<u8>,
}

impl Part {
    /// The value as text, when it was kept whole.
    pub fn text(&self) -> Option<&str> {
        let whole = self.value.end - self.value.start == self.head.len() as u64;
        whole
            .then(|| std::str::from_utf8(&self.head).ok())
            .flatten()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Preamble,
    Headers,
    Body,
    /// After the delimiter: `\r\n` (another part) or `--` (the end) is next.
    AfterDelimiter,
    Epilogue,
}

/// See the module doc.
#[derive(Debug)]
pub struct Scanner {
    /// `--boundary`.
    delim: Vec<u8>,
    /// `\r\n--boundary`.
    body_end: Vec<u8>,
    state: State,
    /// Bytes not yet classified, starting at offset `at` of the body.
    pending: Vec<u8>,
    at: u64,
    parts: Vec<Part>,
    error: Option<String>,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty() && v.len() <= 70).then(|| v.to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from + hay[from..].iter().position(|b| *b == first)?;
        if hay.get(i..i + needle.len())? == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

impl Scanner {
    pub fn new(boundary: &str) -> Scanner {
        let delim = format!("--{boundary}").into_bytes();
        let mut body_end = b"\r\n".to_vec();
        body_end.extend_from_slice(&delim);
        Scanner {
            delim,
            body_end,
            state: State::Preamble,
            pending: Vec::new(),
            at: 0,
            parts: Vec::new(),
            error: None,
        }
    }

    /// Drops the first `n` pending bytes.
    fn consume(&mut self, n: usize) {
        self.pending.drain(..n);
        self.at += n as u64;
    }

    fn fail(&mut self, why: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(why.into());
        }
        self.pending = Vec::new();
    }

    /// Feeds the next bytes of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.error.is_some() || self.state == State::Epilogue {
            return;
        }
        self.pending.extend_from_slice(chunk);
        while self.step() {}
    }

    /// One step of the state machine; `false` when it needs more bytes.
    fn step(&mut self) -> bool {
        match self.state {
            State::Preamble => match find(&self.pending, &self.delim) {
                Some(i) => {
                    self.consume(i + self.delim.len());
                    self.state = State::AfterDelimiter;
                    true
                }
                None => {
                    let keep = self.delim.len().saturating_sub(1);
                    let drop = self.pending.len().saturating_sub(keep);
                    self.consume(drop);
                    false
                }
            },
            State::AfterDelimiter => {
                if self.pending.len() < 2 {
                    return false;
                }
                match &self.pending[..2] {
                    b"\r\n" => {
                        self.consume(2);
                        self.state = State::Headers;
                        true
                    }
                    b"--" => {
                        self.pending = Vec::new();
                        self.state = State::Epilogue;
                        false
                    }
                    _ => {
                        self.fail("a multipart boundary is followed by neither a line end nor --");
                        false
                    }
                }
            }
            State::Headers => match find(&self.pending, b"\r\n\r\n") {
                Some(i) => {
                    let head = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                    let start = self.at + i as u64 + 4;
                    self.consume(i + 4);
                    if self.parts.len() >= MAX_PARTS {
                        self.fail(format!("the form has more than {MAX_PARTS} parts"));
                        return false;
                    }
                    match part_head(&head) {
                        Some((name, filename, content_type)) => {
                            self.parts.push(Part {
                                name,
                                filename,
                                content_type,
                                value: start..start,
                                head: Vec::new(),
                            });
                            self.state = State::Body;
                            true
                        }
                        None => {
                            self.fail("a form part has no Content-Disposition: form-data name");
                            false
                        }
                    }
                }
                None if self.pending.len() > MAX_PART_HEAD => {
                    self.fail("a form part's headers are too long");
                    false
                }
                None => false,
            },
            State::Body => {
                let found = find(&self.pending, &self.body_end);
                let safe = match found {
                    Some(i) => i,
                    None => self
                        .pending
                        .len()
                        .saturating_sub(self.body_end.len().saturating_sub(1)),
                };
                if let Some(part) = self.parts.last_mut() {
                    let cap = if part.filename.is_some() {
                        FILE_CAPTURE
                    } else {
                        FIELD_CAPTURE
                    };
                    let room = cap.saturating_sub(part.head.len()).min(safe);
                    part.head.extend_from_slice(&self.pending[..room]);
                    part.value.end = self.at + safe as u64;
                }
                match found {
                    Some(i) => {
                        self.consume(i + self.body_end.len());
                        self.state = State::AfterDelimiter;
                        true
                    }
                    None => {
                        self.consume(safe);
                        false
                    }
                }
            }
            State::Epilogue => false,
        }
    }

    /// At the end of the body: the parts, or why the form is malformed.
    pub fn finish(self) -> Result<Vec<Part>, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.state != State::Epilogue {
            return Err("the multipart body ended before its closing boundary".to_owned());
        }
        Ok(self.parts)
    }
}

/// `(name, filename, content type)` from a part's header block.
fn part_head(head: &str) -> Option<(String, Option<String>, Option<String>)> {
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let k = k.trim();
        if k.eq_ignore_ascii_case("content-disposition") {
            for param in v.split(';').skip(1) {
                let Some((pk, pv)) = param.split_once('=') else {
                    continue;
                };
                let pv = pv.trim();
                let pv = pv
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or(pv)
                    .to_owned();
                match pk.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(pv),
                    "filename" => filename = Some(pv),
                    _ => {}
                }
            }
        } else if k.eq_ignore_ascii_case("content-type") {
            content_type = Some(v.trim().to_owned());
        }
    }
    Some((name?, filename, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, file: &[u8]) -> Vec<u8> {
        let mut b = format!(
            "preamble\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nopenai/whisper-1\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .into_bytes();
        b.extend_from_slice(file);
        b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        b
    }

    fn scan(body: &[u8], boundary: &str, piece: usize) -> Result<Vec<Part>, String> {
        let mut s = Scanner::new(boundary);
        for c in body.chunks(piece) {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn finds_fields_and_exact_ranges_whatever_the_chunking() {
        // The file holds near-delimiters: "\r\n--b" without the rest of the boundary.
        let mut file = b"RIFF\r\n--bounda\r\n--x".to_vec();
        file.extend(std::iter::repeat_n(7u8, 100_000));
        let body = form("boundary42", &file);
        for piece in [1, 3, 7, 64, 4096, body.len()] {
            let parts = scan(&body, "boundary42", piece).unwrap();
            assert_eq!(parts.len(), 2, "piece {piece}");
            assert_eq!(parts[0].name, "model");
            assert_eq!(parts[0].text(), Some("openai/whisper-1"));
            let m = &parts[0].value;
            assert_eq!(&body[m.start as usize..m.end as usize], b"openai/whisper-1");
            let f = &parts[1];
            assert_eq!(f.filename.as_deref(), Some("a.wav"));
            assert_eq!(f.content_type.as_deref(), Some("audio/wav"));
            assert_eq!(
                &body[f.value.start as usize..f.value.end as usize],
                &file[..]
            );
            assert_eq!(f.head.len(), FILE_CAPTURE);
            assert_eq!(f.head[..4], *b"RIFF");
            assert_eq!(f.text(), None);
        }
    }

    #[test]
    fn malformed_forms_are_errors() {
        let body = form("b", b"x");
        assert!(scan(&body[..body.len() - 8], "b", 5).is_err());
        assert!(scan(b"--b\r\nno-disposition: x\r\n\r\nv\r\n--b--", "b", 4).is_err());
        assert!(scan(b"--bX", "b", 4).is_err());
        assert!(scan(b"nothing here", "b", 4).is_err());
        assert_eq!(scan(b"--b--\r\n", "b", 2).unwrap(), vec![]);
    }

    #[test]
    fn boundaries_from_content_types() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
