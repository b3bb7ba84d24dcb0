//! The cache key of a chat request: a SHA-256 of its canonical form, so the same question asked
//! through either SDK, with its JSON keys in any order, streamed or not, finds the same entry.
//! The stream flag and `include_usage` are left out (any entry replays either way); everything
//! that changes the answer (model, system, messages, tools, tool choice, sampling parameters,
//! output format, reasoning) is in.

use crate::dialect::canonical::{ChatRequest, Part, ResponseFormat};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `value` with every object's keys in sorted order (whatever map type serde_json uses).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(v) = m.get(k) {
                    out.insert(k.clone(), sorted(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn normalise_parts(parts: &mut [Part]) {
    for p in parts {
        match p {
            Part::Text(t) => t.cache_control = t.cache_control.as_ref().map(sorted),
            Part::ToolResult(r) => normalise_parts(&mut r.content),
            _ => {}
        }
    }
}

/// The hex SHA-256 key of `req` asked of `model` (the model or route the client named).
pub fn request_key(req: &ChatRequest, model: &str) -> String {
    let mut r = req.clone();
    r.stream = false;
    r.include_usage = false;
    r.model = model.to_owned();
    normalise_parts(&mut r.system);
    for m in &mut r.messages {
        normalise_parts(&mut m.content);
    }
    for t in &mut r.tools {
        t.parameters = sorted(&t.parameters);
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &mut r.response_format {
        *schema = sorted(schema);
    }
    // Debug output of the normalised request: deterministic for these plain types. The
    // cache lives in memory, so a change of format across versions only costs misses.
    let text = format!("{r:?}");
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
