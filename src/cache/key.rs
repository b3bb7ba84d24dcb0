//! The cache key of a chat request: a SHA-256 of its canonical form, so the same question asked
//! through either SDK, with its JSON keys in any order, streamed or not, finds the same entry.
//! The stream flag and `include_usage` are left out (any entry replays either way); everything
//! that changes the answer (model, system, messages, tools, tool choice, sampling parameters,
//! output format, reasoning) is in.
//!
//! The encoding is explicit and versioned (`KEY_VERSION`), never a `Debug` rendering: every
//! field is written in a fixed order, each value tagged and length-prefixed (so no two
//! different requests can produce the same byte stream), JSON values (tool schemas, cache
//! markers) in canonical form (object keys sorted, numbers as written). The request types are
//! destructured whole, so a field added to them does not compile here until it is given a
//! place in the key. A golden test pins the exact key of a fixed request.

use crate::dialect::canonical::{
    ChatRequest, Image, ImageSource, Message, Part, Reasoning, ResponseFormat, Role, Text, Tool,
    ToolCall, ToolChoice, ToolResult,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Changes whenever the encoding below changes (old entries then simply miss).
const KEY_VERSION: &[u8] = b"switchyard-cache-key/1";
/// The same, for embeddings requests (their own key space: no chat request shares one).
const EMBEDDINGS_KEY_VERSION: &[u8] = b"switchyard-embeddings-key/1";

/// Writes tagged, length-prefixed fields straight into the hash.
struct KeyWriter(Sha256);

impl KeyWriter {
    /// A field's tag: which field or variant follows.
    fn tag(&mut self, t: &str) {
        self.bytes(t.as_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn u64(&mut self, n: u64) {
        self.0.update(n.to_be_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.0.update([u8::from(b)]);
    }

    fn count(&mut self, n: usize) {
        self.u64(n as u64);
    }

    /// `Option`s: a presence byte, then the value.
    fn opt<T>(&mut self, v: Option<T>, mut f: impl FnMut(&mut Self, T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            f(self, v);
        }
    }

    fn number(&mut self, n: &serde_json::Number) {
        self.str(&n.to_string());
    }

    /// A JSON value in canonical form: objects with their keys sorted.
    fn json(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag("null"),
            Value::Bool(b) => {
                self.tag("bool");
                self.bool(*b);
            }
            Value::Number(n) => {
                self.tag("num");
                self.number(n);
            }
            Value::String(s) => {
                self.tag("str");
                self.str(s);
            }
            Value::Array(a) => {
                self.tag("arr");
                self.count(a.len());
                a.iter().for_each(|x| self.json(x));
            }
            Value::Object(m) => {
                self.tag("obj");
                self.count(m.len());
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    self.str(k);
                    if let Some(x) = m.get(k) {
                        self.json(x);
                    }
                }
            }
        }
    }

    fn parts(&mut self, parts: &[Part]) {
        self.count(parts.len());
        for p in parts {
            self.part(p);
        }
    }

    fn part(&mut self, p: &Part) {
        match p {
            Part::Text(Text {
                text,
                cache_control,
            }) => {
                self.tag("text");
                self.str(text);
                self.opt(cache_control.as_ref(), Self::json);
            }
            Part::Image(Image { source, detail }) => {
                self.tag("image");
                match source {
                    ImageSource::Url(u) => {
                        self.tag("url");
                        self.str(u);
                    }
                    ImageSource::Base64 { media_type, data } => {
                        self.tag("base64");
                        self.str(media_type);
                        self.str(data);
                    }
                }
                self.opt(detail.as_deref(), Self::str);
            }
            Part::ToolCall(ToolCall {
                id,
                name,
                arguments,
            }) => {
                self.tag("tool_call");
                self.str(id);
                self.str(name);
                self.str(arguments);
            }
            Part::ToolResult(ToolResult {
                call_id,
                content,
                is_error,
            }) => {
                self.tag("tool_result");
                self.str(call_id);
                self.parts(content);
                self.bool(*is_error);
            }
            Part::Thinking { text, signature } => {
                self.tag("thinking");
                self.str(text);
                self.opt(signature.as_deref(), Self::str);
            }
            Part::RedactedThinking { data } => {
                self.tag("redacted_thinking");
                self.str(data);
            }
        }
    }

    fn message(&mut self, m: &Message) {
        let Message { role, content } = m;
        self.tag(match role {
            Role::User => "user",
            Role::Assistant => "assistant",
        });
        self.parts(content);
    }

    fn tool(&mut self, t: &Tool) {
        let Tool {
            name,
            description,
            parameters,
            strict,
        } = t;
        self.str(name);
        self.opt(description.as_deref(), Self::str);
        self.json(parameters);
        self.opt(*strict, Self::bool);
    }

    fn tool_choice(&mut self, c: &ToolChoice) {
        match c {
            ToolChoice::Auto => self.tag("auto"),
            ToolChoice::None => self.tag("none"),
            ToolChoice::Required => self.tag("required"),
            ToolChoice::Tool(name) => {
                self.tag("tool");
                self.str(name);
            }
        }
    }

    fn response_format(&mut self, f: &ResponseFormat) {
        match f {
            ResponseFormat::Text => self.tag("text"),
            ResponseFormat::JsonObject => self.tag("json_object"),
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => {
                self.tag("json_schema");
                self.opt(name.as_deref(), Self::str);
                self.opt(description.as_deref(), Self::str);
                self.json(schema);
                self.opt(*strict, Self::bool);
            }
        }
    }

    fn reasoning(&mut self, r: Reasoning) {
        match r {
            Reasoning::Disabled => self.tag("disabled"),
            Reasoning::Budget(b) => {
                self.tag("budget");
                self.u64(b);
            }
            Reasoning::Effort(e) => {
                self.tag("effort");
                self.str(e.name());
            }
        }
    }
}

/// The hex SHA-256 key of `req` asked of `model` (the model or route the client named).
pub fn request_key(req: &ChatRequest, model: &str) -> String {
    // Destructured whole: a new request field must be placed in the key (or left out here
    // on purpose) before this compiles.
    let ChatRequest {
        model: _, // the model the client named comes in separately (`model`)
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        max_tokens,
        temperature,
        top_p,
        top_k,
        stop,
        stream: _,        // any entry replays streamed or not
        include_usage: _, // the usage chunk is rendered per client
        response_format,
        reasoning,
        user,
        seed,
        presence_penalty,
        frequency_penalty,
    } = req;
    let mut w = KeyWriter(Sha256::new());
    w.bytes(KEY_VERSION);
    w.tag("model");
    w.str(model);
    w.tag("system");
    w.parts(system);
    w.tag("messages");
    w.count(messages.len());
    messages.iter().for_each(|m| w.message(m));
    w.tag("tools");
    w.count(tools.len());
    tools.iter().for_each(|t| w.tool(t));
    w.tag("tool_choice");
    w.opt(tool_choice.as_ref(), KeyWriter::tool_choice);
    w.tag("parallel_tool_calls");
    w.opt(*parallel_tool_calls, KeyWriter::bool);
    w.tag("max_tokens");
    w.opt(*max_tokens, KeyWriter::u64);
    w.tag("temperature");
    w.opt(temperature.as_ref(), KeyWriter::number);
    w.tag("top_p");
    w.opt(top_p.as_ref(), KeyWriter::number);
    w.tag("top_k");
    w.opt(*top_k, KeyWriter::u64);
    w.tag("stop");
    w.count(stop.len());
    stop.iter().for_each(|s| w.str(s));
    w.tag("response_format");
    w.opt(response_format.as_ref(), KeyWriter::response_format);
    w.tag("reasoning");
    w.opt(*reasoning, KeyWriter::reasoning);
    w.tag("user");
    w.opt(user.as_deref(), KeyWriter::str);
    w.tag("seed");
    w.opt(*seed, |w, s| w.u64(s as u64));
    w.tag("presence_penalty");
    w.opt(presence_penalty.as_ref(), KeyWriter::number);
    w.tag("frequency_penalty");
    w.opt(frequency_penalty.as_ref(), KeyWriter::number);
    w.hex()
}

/// The hex SHA-256 key of an embeddings request (an OpenAI-shaped JSON object) asked of
/// `model`: every field but `model` in canonical form (keys sorted, numbers as written), so
/// key order and whitespace do not matter and anything else that changes the vectors
/// (`input`, `dimensions`, `encoding_format`) does. `None` when the body is not an object.
pub fn embeddings_key(body: &[u8], model: &str) -> Option<String> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    fields.remove("model");
    let mut w = KeyWriter(Sha256::new());
    w.bytes(EMBEDDINGS_KEY_VERSION);
    w.tag("model");
    w.str(model);
    w.tag("fields");
    w.json(&Value::Object(fields));
    Some(w.hex())
}

impl KeyWriter {
    fn hex(self) -> String {
        let digest = self.0.finalize();
        let mut hex = String::with_capacity(64);
        for b in digest {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::canonical::TranslateOptions;
    use crate::dialect::translate::decode_request;
    use crate::dialect::Dialect;

    fn key(d: Dialect, body: &str) -> String {
        let req = decode_request(d, body.as_bytes(), &TranslateOptions::default()).unwrap();
        request_key(&req, &req.model)
    }

    /// The exact key of a fixed request. It must not change between builds, toolchains or
    /// dependency versions: if it does, cached entries silently stop matching. (The expected
    /// value was also computed independently, from the byte layout described above, with
    /// Python's hashlib.) Change it only together with `KEY_VERSION`.
    #[test]
    fn embeddings_keys_ignore_order_and_model_field_but_not_inputs_or_options() {
        let k = |b: &str, m: &str| embeddings_key(b.as_bytes(), m).unwrap();
        let a = k(r#"{"model":"x","input":["a","b"],"dimensions":256}"#, "emb");
        assert_eq!(a, k(r#"{"dimensions":256, "input":["a","b"]}"#, "emb"));
        assert_ne!(a, k(r#"{"input":["a","b"],"dimensions":256}"#, "other"));
        assert_ne!(a, k(r#"{"input":["b","a"],"dimensions":256}"#, "emb"));
        assert_ne!(a, k(r#"{"input":["a","b"],"dimensions":512}"#, "emb"));
        let b64 = k(
            r#"{"input":["a","b"],"dimensions":256,"encoding_format":"base64"}"#,
            "emb",
        );
        assert_ne!(a, b64);
        assert_eq!(embeddings_key(b"[1]", "emb"), None);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn golden_key() {
        use crate::dialect::canonical::{Message, Text, Tool};
        let req = ChatRequest {
            model: "ignored: the model comes in separately".into(),
            system: vec![Part::Text(Text::plain("Be brief."))],
            messages: vec![Message::user(vec![Part::Text(Text::plain("hi"))])],
            tools: vec![Tool {
                name: "lookup".into(),
                description: Some("Finds things".into()),
                parameters: serde_json::json!({
                    "type": "object",
                    "required": ["q"],
                    "properties": {"q": {"type": "string"}}
                }),
                strict: None,
            }],
            max_tokens: Some(100),
            temperature: Some(serde_json::from_str("0.5").unwrap()),
            stop: vec!["END".into()],
            stream: true,
            include_usage: true,
            ..ChatRequest::default()
        };
        assert_eq!(
            request_key(&req, "gpt-4o-mini"),
            "2c57f3fc2cf056def661afe1cd2b78957ce920354cc50d4f9d373d3b0f7621ac"
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        use crate::dialect::canonical::{Message, Text};
        // Length prefixes: moving text from one message to the next is another key.
        let two = |a: &str, b: &str| {
            let r = ChatRequest {
                messages: vec![
                    Message::user(vec![Part::Text(Text::plain(a))]),
                    Message::user(vec![Part::Text(Text::plain(b))]),
                ],
                ..ChatRequest::default()
            };
            request_key(&r, "m")
        };
        assert_ne!(two("ab", "c"), two("a", "bc"));
        let stops = |stop: &[&str]| {
            let r = ChatRequest {
                stop: stop.iter().map(|s| s.to_string()).collect(),
                ..ChatRequest::default()
            };
            request_key(&r, "m")
        };
        assert_ne!(stops(&["a", "b"]), stops(&["ab"]));
        // An absent value differs from an empty one.
        let none = request_key(&ChatRequest::default(), "m");
        let empty = ChatRequest {
            user: Some(String::new()),
            ..ChatRequest::default()
        };
        assert_ne!(request_key(&empty, "m"), none);
    }

    #[test]
    fn stream_flag_and_key_order_do_not_change_the_key() {
        let a = key(
            Dialect::OpenAi,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,
               "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}}}]}"#,
        );
        let b = key(
            Dialect::OpenAi,
            r#"{"stream":true,"stream_options":{"include_usage":true},"temperature":0.5,
               "tools":[{"function":{"parameters":{"properties":{"b":{"type":"integer"},"a":{"type":"string"}},"type":"object"},"name":"f"},"type":"function"}],
               "messages":[{"content":"hi","role":"user"}],"model":"m"}"#,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn anything_that_changes_the_answer_changes_the_key() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#;
        let k = key(Dialect::OpenAi, base);
        for other in [
            r#"{"model":"n","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi!"}],"temperature":0.5}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.6}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"max_tokens":9}"#,
            r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}],"temperature":0.5}"#,
        ] {
            assert_ne!(key(Dialect::OpenAi, other), k, "{other}");
        }
    }

    #[test]
    fn the_same_question_in_either_dialect_shares_a_key() {
        let o = key(
            Dialect::OpenAi,
            r#"{"model":"m","max_completion_tokens":100,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}"#,
        );
        let a = key(
            Dialect::Anthropic,
            r#"{"model":"m","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(o, a);
    }
}
