//! Deterministic content shared by the dialects: generated text and its "tokens", prompt-token
//! estimates, tool-call arguments, embedding vectors and a small base64 encoder.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Piece `i` (0-based) of the completion text; one piece is one token.
///
/// The text reads "Hello from MODEL! tok1 tok2 ...".
pub fn text_piece(model: &str, i: usize) -> String {
    match i {
        0 => "Hello".to_string(),
        1 => " from".to_string(),
        2 => format!(" {model}!"),
        n => format!(" tok{}", n - 2),
    }
}

/// The first `n` pieces of the completion text, joined.
pub fn text(model: &str, n: usize) -> String {
    (0..n).map(|i| text_piece(model, i)).collect()
}

/// Piece `i` of a reasoning ("thinking") text: "Let me think. step1 step2 ...".
pub fn thinking_piece(i: usize) -> String {
    match i {
        0 => "Let".to_string(),
        1 => " me".to_string(),
        2 => " think.".to_string(),
        n => format!(" step{}", n - 2),
    }
}

/// The first `n` pieces of the reasoning text, joined.
pub fn thinking(n: usize) -> String {
    (0..n).map(thinking_piece).collect()
}

/// Token estimate for `bytes` bytes of text: `ceil(bytes / 4)`, at least 1.
pub fn tokens_for_bytes(bytes: usize) -> u64 {
    (bytes.div_ceil(4) as u64).max(1)
}

/// Bytes of text in a JSON value: the lengths of all string leaves, skipping the values of
/// structural keys (`role`, `type`, `id`, `tool_call_id`, `tool_use_id`).
pub fn text_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(text_bytes).sum(),
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "role" | "type" | "id" | "tool_call_id" | "tool_use_id"
                )
            })
            .map(|(_, v)| text_bytes(v))
            .sum(),
        _ => 0,
    }
}

/// Prompt-token estimate for a request: `ceil(text bytes / 4)` (minimum 1) over the given
/// top-level fields of the body (e.g. `messages` and `system`).
pub fn prompt_tokens(body: &Value, fields: &[&str]) -> u64 {
    tokens_for_bytes(
        fields
            .iter()
            .filter_map(|f| body.get(*f))
            .map(text_bytes)
            .sum(),
    )
}

/// Arguments for a call to a tool with the given JSON-schema `parameters`: an object with one
/// string value per property (the first enum value where there is one; `Paris` for
/// location/city, `celsius` for unit, else `mock-NAME`), as compact JSON.
pub fn tool_arguments(schema: Option<&Value>) -> String {
    let mut args = Map::new();
    if let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (name, prop) in props {
            let from_enum = prop
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|e| e.iter().find_map(Value::as_str))
                .map(str::to_string);
            let value = from_enum.unwrap_or_else(|| match name.to_ascii_lowercase().as_str() {
                "location" | "city" => "Paris".to_string(),
                "unit" | "units" => "celsius".to_string(),
                _ => format!("mock-{name}"),
            });
            args.insert(name.clone(), Value::String(value));
        }
    }
    Value::Object(args).to_string()
}

/// Splits `s` into pieces of at most `size` bytes, on character boundaries.
pub fn split_pieces(s: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + size.max(1)).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[start..end]);
        start = end;
    }
    out
}

/// Size in bytes of one streamed piece of tool-call arguments.
pub const ARG_PIECE: usize = 6;

/// A deterministic unit-length vector of `dims` floats derived from `seed`.
pub fn embedding(seed: &[u8], dims: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(dims);
    let mut block = 0u64;
    while out.len() < dims {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(block.to_le_bytes());
        let digest = h.finalize();
        for pair in digest.chunks(2) {
            if out.len() == dims {
                break;
            }
            let n = u16::from_le_bytes([pair[0], pair[1]]);
            out.push(n as f32 / 32767.5 - 1.0);
        }
        block += 1;
    }
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut out {
            *x /= norm;
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if group.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if group.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A run-length list of stream steps walked one event at a time, so that a long stream keeps
/// only a handful of steps in memory.
#[derive(Debug)]
pub struct Steps<S: Copy> {
    steps: Vec<(S, usize)>,
    at: usize,
    inner: usize,
}

impl<S: Copy> Steps<S> {
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            at: 0,
            inner: 0,
        }
    }

    /// Appends `step` repeated `count` times (nothing if `count` is 0).
    pub fn push(&mut self, step: S, count: usize) {
        if count > 0 {
            self.steps.push((step, count));
        }
    }

    /// Next step and its repetition index, or `None` at the end.
    pub fn next_step(&mut self) -> Option<(S, usize)> {
        let (step, count) = *self.steps.get(self.at)?;
        let i = self.inner;
        self.inner += 1;
        if self.inner == count {
            self.at += 1;
            self.inner = 0;
        }
        Some((step, i))
    }
}

impl<S: Copy> Default for Steps<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `s` to `out` as a JSON string literal.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_has_exactly_n_pieces() {
        assert_eq!(
            text("mock-large", 6),
            "Hello from mock-large! tok1 tok2 tok3"
        );
        assert_eq!(text("m", 0), "");
        assert_eq!(text_piece("m", 2), " m!");
        assert_eq!(thinking(4), "Let me think. step1");
    }

    #[test]
    fn token_estimates() {
        assert_eq!(tokens_for_bytes(0), 1);
        assert_eq!(tokens_for_bytes(4), 1);
        assert_eq!(tokens_for_bytes(5), 2);
        let body = json!({
            "model": "ignored-because-not-a-listed-field",
            "messages": [
                {"role": "system", "content": "abcd"},
                {"role": "user", "content": [{"type": "text", "text": "efghijkl"}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "x"}
            ],
            "system": "12345678"
        });
        assert_eq!(text_bytes(&body["messages"]), 13);
        assert_eq!(prompt_tokens(&body, &["messages"]), 4);
        assert_eq!(prompt_tokens(&body, &["messages", "system"]), 6);
        assert_eq!(prompt_tokens(&json!({}), &["messages"]), 1);
    }

    #[test]
    fn tool_arguments_from_schema() {
        let schema = json!({"type": "object", "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]},
            "days": {"type": "integer"}
        }});
        let args: Value = serde_json::from_str(&tool_arguments(Some(&schema))).expect("json");
        assert_eq!(
            args,
            json!({"location": "Paris", "unit": "fahrenheit", "days": "mock-days"})
        );
        assert_eq!(tool_arguments(None), "{}");
    }

    #[test]
    fn split_and_encode() {
        assert_eq!(split_pieces("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(split_pieces("ééé", 3).concat(), "ééé");
        assert!(split_pieces("", 3).is_empty());
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding(b"hello", 20);
        assert_eq!(a.len(), 20);
        assert_eq!(a, embedding(b"hello", 20));
        assert_ne!(a, embedding(b"hellp", 20));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn steps_walk_run_lengths() {
        let mut s = Steps::new();
        s.push('a', 1);
        s.push('b', 0);
        s.push('c', 2);
        let all: Vec<_> = std::iter::from_fn(|| s.next_step()).collect();
        assert_eq!(all, [('a', 0), ('c', 0), ('c', 1)]);
    }
}
