//! Responses API conversation state: `previous_response_id` for every target.
//!
//! OpenAI keeps a response's conversation so the next request can name it instead of resending
//! it. Targets of other dialects keep nothing, so the gateway does, for every response it
//! serves on `/v1/responses` (whatever the target, OpenAI-kind ones included, so a
//! conversation may move between targets):
//!
//! - [`Turn::begin`] (request side): a request naming `previous_response_id` gets the stored
//!   items of that response's conversation spliced in front of its own `input`, and the field
//!   removed, before routing decodes or forwards it. An unknown id, or one made under another
//!   gateway key, is a 404. (`instructions` are not carried over, as at OpenAI.)
//! - [`Turn::capture`] (response side): the answer the client receives (whole, or the
//!   terminal event of its stream) is read for its id and output items; unless the request said
//!   `store: false`, the request's own input and that output are kept as one turn.
//!
//! Turns live in [`Store`]: in memory, bounded in bytes, each with a TTL from its last use
//! (config `[conversations]`). In memory rather than a SQLite table beside the ledger: the hot
//! path must not wait on disk (a lookup is on every chained request, before routing), turns
//! are short-lived (agent loops, chats), and a lost turn fails loudly (a 404, as an expired
//! id does at OpenAI) rather than silently. What that costs: a restart or upgrade forgets
//! conversations, and gateways behind a load balancer do not share them.

pub mod store;

pub use store::Store;

use crate::dialect::probe::{probe_request, RequestProbe};
use crate::error::{ErrorKind, GatewayError};
use crate::usage::SseParser;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Request fields a Responses answer echoes.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
];

/// Largest answer read for its output items (a larger one is served, not stored).
const MAX_CAPTURE: usize = 32 * 1024 * 1024;

/// One Responses request's part in its conversation.
#[derive(Default)]
pub struct Turn {
    /// The id the answer gets when the gateway writes it (translated targets, cache replays).
    pub response_id: Option<String>,
    /// The request fields the answer echoes.
    pub echo: Option<Arc<Value>>,
    /// Set when the answer is to be kept: what to keep it with.
    keep: Option<Keep>,
    capture: Option<Capture>,
}

struct Keep {
    key: String,
    parent: Option<String>,
    /// The request's own input items.
    input: Vec<Value>,
}

/// The request as [`Turn::begin`] left it.
pub struct Begun {
    pub turn: Turn,
    /// The body with the conversation spliced in (and its probe), when it changed.
    pub body: Option<(Bytes, RequestProbe)>,
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::NotFound,
        format!("Previous response with id '{id}' not found."),
    )
    .with_param("previous_response_id")
    .with_code("previous_response_not_found")
}

impl Turn {
    /// Reads a Responses request (already probed: a JSON object with a model) for the gateway
    /// key `key`; splices in the conversation `previous_response_id` names.
    pub fn begin(
        store: &Store,
        key: &str,
        request_id: &str,
        body: &[u8],
        stream: bool,
    ) -> Result<Begun, GatewayError> {
        let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
            return Err(GatewayError::bad_request(
                "the request body must be a JSON object",
            ));
        };
        let echo: Map<String, Value> = ECHOED
            .iter()
            .filter_map(|k| obj.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        let input = match obj.get("input") {
            Some(Value::String(s)) => vec![serde_json::json!({
                "type": "message", "role": "user", "content": s,
            })],
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        let parent = match obj.get("previous_response_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => {
                return Err(
                    GatewayError::bad_request("`previous_response_id` must be a string")
                        .with_param("previous_response_id"),
                )
            }
        };
        let mut spliced = None;
        if let Some(id) = &parent {
            let chain = store.chain(key, id).map_err(|_| not_found(id))?;
            let mut items = Vec::new();
            for turn in chain {
                if let Ok(Value::Array(stored)) = serde_json::from_str::<Value>(&turn) {
                    items.extend(stored);
                }
            }
            items.extend(input.iter().cloned());
            obj.remove("previous_response_id");
            obj.insert("input".into(), Value::Array(items));
            let bytes = Bytes::from(Value::Object(obj.clone()).to_string());
            let probe = probe_request(&bytes)?;
            spliced = Some((bytes, probe));
        }
        let store_it = obj.get("store").and_then(Value::as_bool) != Some(false);
        let keep = (store_it && store.enabled()).then(|| Keep {
            key: key.to_owned(),
            parent,
            input,
        });
        let id = request_id.strip_prefix("req_").unwrap_or(request_id);
        Ok(Begun {
            turn: Turn {
                response_id: Some(format!("resp_{id}")),
                echo: Some(Arc::new(Value::Object(echo))),
                capture: keep.is_some().then(|| Capture::new(stream)),
                keep,
            },
            body: spliced,
        })
    }

    /// Reads a chunk of the answer the client receives; at its end (`end`), keeps the turn if
    /// the answer was a complete 2xx response.
    pub fn capture(&mut self, store: &Store, chunk: &[u8], end: bool, status: u16) {
        let Some(capture) = self.capture.as_mut() else {
            return;
        };
        capture.feed(chunk);
        if !end {
            return;
        }
        let found = capture.finish();
        self.capture = None;
        let (Some(keep), Some((id, output))) = (self.keep.take(), found) else {
            return;
        };
        if !(200..300).contains(&status) {
            return;
        }
        let mut items = keep.input;
        items.extend(output);
        let text: Arc<str> = Arc::from(Value::Array(items).to_string());
        store.insert(&keep.key, &id, keep.parent.as_deref(), text);
    }
}

/// Reads a Responses answer (a whole object or an event stream) for its id and output.
struct Capture {
    sse: Option<SseParser>,
    whole: Vec<u8>,
    overflowed: bool,
    found: Option<(String, Vec<Value>)>,
}

impl Capture {
    fn new(stream: bool) -> Capture {
        Capture {
            sse: stream.then(SseParser::new),
            whole: Vec::new(),
            overflowed: false,
            found: None,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        match self.sse.as_mut() {
            Some(parser) => {
                let found = &mut self.found;
                parser.feed_with(chunk, |ev| on_event(&ev.data, found));
            }
            None if self.overflowed => {}
            None if self.whole.len() + chunk.len() > MAX_CAPTURE => {
                self.overflowed = true;
                self.whole = Vec::new();
            }
            None => self.whole.extend_from_slice(chunk),
        }
    }

    fn finish(&mut self) -> Option<(String, Vec<Value>)> {
        match self.sse.as_mut() {
            Some(parser) => {
                if let Some(ev) = parser.finish() {
                    on_event(&ev.data, &mut self.found);
                }
                self.found.take()
            }
            None => serde_json::from_slice::<Value>(&self.whole)
                .ok()
                .as_ref()
                .and_then(kept_response),
        }
    }
}

/// A stream event: the terminal one carries the whole response.
fn on_event(data: &str, found: &mut Option<(String, Vec<Value>)>) {
    // Cheap filter first: most events are deltas, and only terminal events are parsed.
    if !data.contains("\"response.completed\"") && !data.contains("\"response.incomplete\"") {
        return;
    }
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return;
    };
    let terminal = matches!(
        v.get("type").and_then(Value::as_str),
        Some("response.completed" | "response.incomplete")
    );
    if let (true, Some(r)) = (terminal, v.get("response")) {
        *found = kept_response(r);
    }
}

/// `(id, output)` of a finished (completed or incomplete) response object.
fn kept_response(r: &Value) -> Option<(String, Vec<Value>)> {
    let status = r.get("status").and_then(Value::as_str)?;
    if !matches!(status, "completed" | "incomplete") {
        return None;
    }
    let id = r.get("id").and_then(Value::as_str)?.to_owned();
    let output = r.get("output").and_then(Value::as_array)?.clone();
    Some((id, output))
}

#[cfg(test)]
mod tests;
