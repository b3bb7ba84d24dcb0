//! What a strategy may know about a request. Cheap facts (endpoint, key, stream flag, body
//! size, headers) are there at once; facts that need the body parsed (tools, images,
//! `max_tokens`, metadata, a prompt-token estimate) are computed on first use, so a strategy
//! that never asks (the default fallback chain) costs nothing extra per request.

use crate::dialect::Endpoint;
use http::HeaderMap;
use serde_json::Value;
use std::sync::OnceLock;

/// A request's features, as routing strategies see them.
pub struct Features<'a> {
    pub endpoint: Endpoint,
    /// The gateway key's name (never the key).
    pub key_name: Option<&'a str>,
    pub stream: bool,
    pub headers: &'a HeaderMap,
    body: &'a [u8],
    parsed: OnceLock<Parsed>,
}

/// The facts that need the body parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub has_tools: bool,
    pub has_images: bool,
    pub max_tokens: Option<u64>,
    /// OpenAI `metadata` (string values) and Anthropic `metadata.user_id`.
    pub metadata: Vec<(String, String)>,
    /// A quick prompt-size estimate: the text of the messages over four bytes a token.
    pub prompt_tokens: u64,
}

impl<'a> Features<'a> {
    pub fn new(
        endpoint: Endpoint,
        key_name: Option<&'a str>,
        stream: bool,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Features<'a> {
        Features {
            endpoint,
            key_name,
            stream,
            headers,
            body,
            parsed: OnceLock::new(),
        }
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request body as the client sent it.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The body's features (parsed once, on first use).
    pub fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| parse(self.body))
    }
}

fn parse(body: &[u8]) -> Parsed {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Parsed::default();
    };
    let tools = v.get("tools").and_then(Value::as_array);
    let max_tokens = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_u64));
    let mut metadata = Vec::new();
    if let Some(m) = v.get("metadata").and_then(Value::as_object) {
        for (k, val) in m {
            if let Some(s) = val.as_str() {
                metadata.push((k.clone(), s.to_owned()));
            }
        }
    }
    let mut text_bytes = 0usize;
    let mut has_images = false;
    let mut visit = |content: &Value| match content {
        Value::String(s) => text_bytes += s.len(),
        Value::Array(parts) => {
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("image_url" | "image" | "input_image") => has_images = true,
                    _ => {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            text_bytes += t.len();
                        }
                    }
                }
            }
        }
        _ => {}
    };
    if let Some(system) = v.get("system") {
        visit(system);
    }
    for m in v
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = m.get("content") {
            visit(c);
        }
    }
    Parsed {
        has_tools: tools.is_some_and(|t| !t.is_empty()),
        has_images,
        max_tokens,
        metadata,
        prompt_tokens: text_bytes.div_ceil(4) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tools_images_limits_and_metadata_on_demand() {
        let headers = HeaderMap::new();
        let body = br#"{"model":"m","max_tokens":64,"metadata":{"user_id":"u1","n":3},
            "tools":[{"type":"function","function":{"name":"f"}}],
            "messages":[{"role":"user","content":[{"type":"text","text":"abcdefgh"},
              {"type":"image_url","image_url":{"url":"data:"}}]}]}"#;
        let f = Features::new(Endpoint::ChatCompletions, None, false, &headers, body);
        let p = f.parsed();
        assert!(p.has_tools && p.has_images);
        assert_eq!(p.max_tokens, Some(64));
        assert_eq!(p.metadata, vec![("user_id".to_owned(), "u1".to_owned())]);
        assert_eq!(p.prompt_tokens, 2);
        let plain = br#"{"model":"m","tools":[],"messages":[{"role":"user","content":"hi"}]}"#;
        let f = Features::new(Endpoint::ChatCompletions, None, false, &headers, plain);
        assert!(!f.parsed().has_tools && !f.parsed().has_images);
        assert_eq!(f.parsed().max_tokens, None);
    }
}
