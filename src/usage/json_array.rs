//! Incremental splitter for a streamed JSON array of objects: Gemini's
//! `streamGenerateContent` without `alt=sse` answers `[{…},\r\n{…},\r\n{…}]`, one element per
//! response chunk. The splitter tracks nesting and strings byte by byte (so any chunk split
//! point is fine) and hands out each complete top-level element; an element larger than the
//! cap is dropped and flagged.

/// Splits a streamed top-level JSON array into its object/array elements.
#[derive(Debug)]
pub(crate) struct JsonArraySplitter {
    max_element: usize,
    /// 0: before the array; 1: inside it, between elements; 2+: inside an element.
    depth: u32,
    in_string: bool,
    escaped: bool,
    element: Vec<u8>,
    /// The current element outgrew the cap: it is skipped, not buffered.
    skipping: bool,
    overflowed: bool,
}

impl JsonArraySplitter {
    pub(crate) fn new(max_element: usize) -> Self {
        Self {
            max_element,
            depth: 0,
            in_string: false,
            escaped: false,
            element: Vec::new(),
            skipping: false,
            overflowed: false,
        }
    }

    /// Whether an element was ever dropped for exceeding the cap.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Feeds one chunk, calling `on_element` with the bytes of each element it completes.
    pub(crate) fn feed(&mut self, chunk: &[u8], mut on_element: impl FnMut(&[u8])) {
        let mut i = 0;
        while let Some(rest) = chunk.get(i..).filter(|r| !r.is_empty()) {
            if self.in_string {
                // Copy a run of plain string bytes at once.
                let run = if self.escaped {
                    0
                } else {
                    rest.iter()
                        .position(|&b| b == b'"' || b == b'\\')
                        .unwrap_or(rest.len())
                };
                if run > 0 {
                    self.keep(rest.get(..run).unwrap_or_default());
                    i += run;
                    continue;
                }
            }
            let Some(&b) = rest.first() else { break };
            i += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                self.keep(&[b]);
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.keep(&[b]);
                }
                b'[' | b'{' => {
                    if self.depth == 1 {
                        self.element.clear();
                        self.skipping = false;
                    }
                    self.depth = self.depth.saturating_add(1);
                    self.keep(&[b]);
                }
                b']' | b'}' => {
                    self.keep(&[b]);
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 1 {
                        if !self.skipping {
                            on_element(&self.element);
                        }
                        self.element.clear();
                        self.skipping = false;
                    }
                }
                _ => self.keep(&[b]),
            }
        }
    }

    /// Buffers bytes that belong to the current element (depth 2 and deeper).
    fn keep(&mut self, bytes: &[u8]) {
        if self.depth < 2 || self.skipping {
            return;
        }
        if self.element.len().saturating_add(bytes.len()) > self.max_element {
            self.skipping = true;
            self.overflowed = true;
            self.element = Vec::new();
        } else {
            self.element.extend_from_slice(bytes);
        }
    }
}
