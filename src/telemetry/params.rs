//! The request parameters the GenAI semantic conventions name, read from the client's body
//! for the request span: `gen_ai.request.max_tokens`, `gen_ai.request.temperature`,
//! `gen_ai.request.top_p` (and `gen_ai.request.stream`, from the summary). Every dialect's
//! spelling is accepted: OpenAI `max_tokens` / `max_completion_tokens`, Anthropic
//! `max_tokens`, Responses `max_output_tokens`, Gemini `generationConfig.maxOutputTokens`,
//! `temperature`, `topP`.
//!
//! Read only while traces are exported, when the request has finished: one pass over the
//! body that builds nothing but these numbers (every other field is skipped unparsed).

use opentelemetry::KeyValue;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Gemini {
    #[serde(rename = "maxOutputTokens")]
    max_output_tokens: Option<i64>,
    temperature: Option<f64>,
    #[serde(rename = "topP")]
    top_p: Option<f64>,
}

#[derive(Deserialize, Default)]
struct Params {
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    max_output_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(rename = "generationConfig")]
    generation_config: Option<Gemini>,
}

/// The parameters `body` sets, as span attributes (none for a body that is not JSON).
pub(super) fn attributes(body: &[u8]) -> Vec<KeyValue> {
    let Ok(p) = serde_json::from_slice::<Params>(body) else {
        return Vec::new();
    };
    let g = p.generation_config.unwrap_or_default();
    let mut out = Vec::new();
    let max = p
        .max_completion_tokens
        .or(p.max_tokens)
        .or(p.max_output_tokens)
        .or(g.max_output_tokens);
    if let Some(m) = max {
        out.push(KeyValue::new("gen_ai.request.max_tokens", m));
    }
    if let Some(t) = p.temperature.or(g.temperature) {
        out.push(KeyValue::new("gen_ai.request.temperature", t));
    }
    if let Some(t) = p.top_p.or(g.top_p) {
        out.push(KeyValue::new("gen_ai.request.top_p", t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::attributes;

    fn keys(body: &str) -> Vec<(String, String)> {
        attributes(body.as_bytes())
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn each_dialect_spells_the_parameters_its_own_way() {
        let openai = keys(
            r#"{"model":"m","max_completion_tokens":64,"temperature":0.2,"top_p":0.9,
            "messages":[{"role":"user","content":"x"}]}"#,
        );
        assert_eq!(
            openai,
            vec![
                ("gen_ai.request.max_tokens".into(), "64".into()),
                ("gen_ai.request.temperature".into(), "0.2".into()),
                ("gen_ai.request.top_p".into(), "0.9".into()),
            ]
        );
        let gemini =
            keys(r#"{"contents":[],"generationConfig":{"maxOutputTokens":32,"topP":0.5}}"#);
        assert_eq!(
            gemini,
            vec![
                ("gen_ai.request.max_tokens".into(), "32".into()),
                ("gen_ai.request.top_p".into(), "0.5".into()),
            ]
        );
        assert_eq!(
            keys(r#"{"max_output_tokens":10}"#),
            vec![("gen_ai.request.max_tokens".into(), "10".into())]
        );
        assert!(keys(r#"{"model":"m"}"#).is_empty());
        assert!(keys("not json").is_empty());
        // A wrong type is not a parameter, and costs the span nothing else.
        assert!(keys(r#"{"max_tokens":"lots"}"#).is_empty());
    }
}
