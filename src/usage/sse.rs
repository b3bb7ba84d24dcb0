//! Incremental Server-Sent Events parser (WHATWG HTML "event stream interpretation").
//!
//! Bytes are fed exactly as they arrive: a chunk may end anywhere, inside a field name, a
//! UTF-8 character or between the `\r` and `\n` of a line ending. Lines end with `\n`, `\r\n`
//! or `\r`; `data:` lines are joined with `\n`; one space after the colon is dropped; lines
//! starting with `:` are comments; `event:`, `id:` and `retry:` are fields; a blank line
//! dispatches the event (if it has any data). A leading UTF-8 BOM is skipped.
//!
//! Memory is bounded: a line longer than the cap is dropped whole (never accumulated past the
//! cap) and so is an event whose data outgrows it; [`SseParser::overflowed`] then says so.

/// Default cap on one line and on one event's data: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` when absent or empty (the default type, "message").
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// A blank line seen by [`SseParser::feed_raw`]: the end of an event block.
#[derive(Debug)]
pub(crate) struct Boundary {
    /// Offset in the chunk just after the blank line's line ending.
    pub end: usize,
    /// The line ending was a `\r` that was the chunk's last byte: a `\n` opening the next
    /// chunk still belongs to it.
    pub cr_at_end: bool,
    /// The event dispatched there, if its data buffer was not empty.
    pub event: Option<SseEvent>,
}

/// Incremental SSE parser; see the module docs.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    /// The current incomplete line.
    line: Vec<u8>,
    /// The current line outgrew the cap: drop bytes until its end.
    discarding: bool,
    /// The last byte fed was `\r`: a `\n` next is part of the same line ending.
    pending_cr: bool,
    /// No line processed yet (a BOM may open the stream).
    at_start: bool,
    event_type: String,
    data: String,
    /// The current event's data outgrew the cap: it is dropped at its dispatch.
    data_overflow: bool,
    last_event_id: String,
    retry: Option<u64>,
    overflowed: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default 16 MiB line cap.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    /// A parser that drops any line (and any event's data) longer than `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            max_line,
            line: Vec::new(),
            discarding: false,
            pending_cr: false,
            at_start: true,
            event_type: String::new(),
            data: String::new(),
            data_overflow: false,
            last_event_id: String::new(),
            retry: None,
            overflowed: false,
        }
    }

    /// Feeds one chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        self.feed_with(chunk, |e| events.push(e));
        events
    }

    /// Feeds one chunk, calling `on_event` for each event it completes.
    pub fn feed_with(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEvent)) {
        self.feed_raw(chunk, |b| {
            if let Some(e) = b.event {
                on_event(e);
            }
        });
    }

    /// End of input. Unlike WHATWG (which discards an unterminated event), an unterminated
    /// last line is processed and a pending event is dispatched, so that a provider that closes
    /// the connection without the final blank line still has its last event read.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let line = std::mem::take(&mut self.line);
        let discarding = std::mem::take(&mut self.discarding);
        self.pending_cr = false;
        if !discarding && !line.is_empty() {
            // Blank only if it was a lone BOM: then this is the dispatch.
            if let Some(event) = self.process_line(&line) {
                return event;
            }
        }
        self.dispatch()
    }

    /// Whether a line or an event's data was ever dropped for exceeding the cap.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The last `id:` field value seen (the stream's "last event ID").
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The last valid `retry:` field value seen, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Bytes of the current incomplete line held by the parser.
    pub fn buffered_len(&self) -> usize {
        self.line.len()
    }

    /// Feeds one chunk, calling `on_blank` at every blank line with its position in `chunk`.
    pub(crate) fn feed_raw(&mut self, chunk: &[u8], mut on_blank: impl FnMut(Boundary)) {
        let mut i = 0;
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk.first() == Some(&b'\n') {
                i = 1;
            }
        }
        while let Some(rest) = chunk.get(i..).filter(|r| !r.is_empty()) {
            let Some(p) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.buffer_partial(rest);
                break;
            };
            let (piece, term) = rest.split_at(p);
            let mut end = i + p + 1;
            let mut cr_at_end = false;
            if term.first() == Some(&b'\r') {
                match chunk.get(end) {
                    Some(b'\n') => end += 1,
                    Some(_) => {}
                    None => {
                        cr_at_end = true;
                        self.pending_cr = true;
                    }
                }
            }
            if let Some(event) = self.complete_line(piece) {
                on_blank(Boundary {
                    end,
                    cr_at_end,
                    event,
                });
            }
            i = end;
        }
    }

    fn buffer_partial(&mut self, bytes: &[u8]) {
        if self.discarding {
            return;
        }
        if self.line.len().saturating_add(bytes.len()) > self.max_line {
            self.start_discarding();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn start_discarding(&mut self) {
        self.discarding = true;
        self.overflowed = true;
        // The dropped line was the stream's first: a BOM can no longer follow.
        self.at_start = false;
        self.line = Vec::new();
    }

    /// A line ended; `piece` is its part in the current chunk. Returns `Some(event)` when the
    /// line was blank (a dispatch point).
    fn complete_line(&mut self, piece: &[u8]) -> Option<Option<SseEvent>> {
        if self.discarding {
            self.discarding = false;
            return None;
        }
        if self.line.is_empty() {
            if piece.len() > self.max_line {
                self.overflowed = true;
                self.at_start = false;
                return None;
            }
            return self.process_line(piece);
        }
        if self.line.len().saturating_add(piece.len()) > self.max_line {
            self.overflowed = true;
            self.line = Vec::new();
            self.at_start = false;
            return None;
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(piece);
        let out = self.process_line(&line);
        line.clear();
        // Keep a modest allocation for the next split line; free a large one.
        if line.capacity() <= 64 * 1024 {
            self.line = line;
        }
        out
    }

    fn process_line(&mut self, mut line: &[u8]) -> Option<Option<SseEvent>> {
        if std::mem::take(&mut self.at_start) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return Some(self.dispatch());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return None, // comment
            Some(c) => {
                let (f, v) = line.split_at(c);
                let v = v.get(1..).unwrap_or_default();
                (f, v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.data_overflow {
                    return None;
                }
                let value = utf8(value);
                if self.data.len().saturating_add(value.len() + 1) > self.max_line {
                    self.data_overflow = true;
                    self.overflowed = true;
                    self.data = String::new();
                } else {
                    self.data.push_str(&value);
                    self.data.push('\n');
                }
            }
            b"event" => self.event_type = utf8(value).into_owned(),
            b"id" if !value.contains(&0) => {
                self.last_event_id = utf8(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All ASCII digits, so valid UTF-8; only an overflowing value fails.
                self.retry = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .or(self.retry);
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event_type = std::mem::take(&mut self.event_type);
        let overflow = std::mem::take(&mut self.data_overflow);
        if overflow || self.data.is_empty() {
            self.data.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        Some(SseEvent {
            event: (!event_type.is_empty()).then_some(event_type),
            data,
        })
    }
}

/// A field's text: checked as UTF-8 with the standard library's word-at-a-time check (a
/// stream is nearly always valid), replacing bad sequences only when there are some.
fn utf8(value: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/fuzz_targets/sse_parser.rs`: a first line dropped for its length while
    /// still incomplete left the parser "at the start", so the next line lost a leading BOM
    /// (and became a `data` field) only when the first line was split across chunks.
    #[test]
    fn a_bom_after_an_overflowing_first_line_is_not_skipped_however_it_is_split() {
        let input = b"ata\xbb\xbf\0\0\0\0\0\0\0_\r\xef\xbb\xbfdata";
        for cut in 0..=input.len() {
            let mut p = SseParser::with_max_line(7);
            let mut events = p.feed(&input[..cut]);
            events.extend(p.feed(&input[cut..]));
            events.extend(p.finish());
            assert!(events.is_empty(), "cut at {cut}: {events:?}");
            assert!(p.overflowed());
        }
    }
}
