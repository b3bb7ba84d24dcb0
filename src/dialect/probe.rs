//! Reads what routing needs from a request body (model, stream flag, and where the fields
//! routing reads later are: [`BodyFields`]) without copying it, and rewrites the model name in
//! place so every other byte reaches the provider unchanged. The body is parsed once, here.

use super::fields::{BodyFields, Field};
use crate::error::GatewayError;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::ops::Range;

/// What the gateway learned from a request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestProbe {
    /// The model the client asked for (a route name or `provider/model`).
    pub model: String,
    /// Byte range of the model's JSON string literal (quotes included) in the body.
    pub model_span: Range<usize>,
    /// Whether the client asked for a streamed (SSE) response.
    pub stream: bool,
    /// Byte range of the top-level `stream_options` value, if present.
    pub stream_options_span: Option<Range<usize>>,
    /// Whether the client asked for usage in the stream (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Where the fields routing reads are (prompt, limits, tools, response format).
    pub fields: BodyFields,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<serde_json::Value>,
    #[serde(borrow, default)]
    stream_options: Option<&'a RawValue>,
    // The [`Field`]s, as borrowed raw values (not a flattened struct of their own: serde's
    // flatten would buffer every other field, a 1 MiB one included, and cannot borrow raw
    // values).
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    instructions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    contents: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "systemInstruction",
        alias = "system_instruction"
    )]
    system_instruction: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_format: Option<&'a RawValue>,
    #[serde(
        borrow,
        default,
        rename = "generationConfig",
        alias = "generation_config"
    )]
    generation_config: Option<&'a RawValue>,
}

impl Probe<'_> {
    /// The byte ranges of the fields present, in `text` (which the raw values borrow from).
    fn in_body(&self, text: &str) -> BodyFields {
        let mut out = BodyFields::default();
        for (field, raw) in [
            (Field::Messages, self.messages),
            (Field::System, self.system),
            (Field::Input, self.input),
            (Field::Instructions, self.instructions),
            (Field::Contents, self.contents),
            (Field::SystemInstruction, self.system_instruction),
            (Field::Tools, self.tools),
            (Field::MaxTokens, self.max_tokens),
            (Field::MaxCompletionTokens, self.max_completion_tokens),
            (Field::MaxOutputTokens, self.max_output_tokens),
            (Field::Metadata, self.metadata),
            (Field::ResponseFormat, self.response_format),
            (Field::Text, self.text),
            (Field::OutputFormat, self.output_format),
            (Field::GenerationConfig, self.generation_config),
        ] {
            if let Some(r) = raw {
                out.set(field, span_in(text, r));
            }
        }
        out
    }
}

/// Where a raw value borrowed from `text` is in it (a pointer difference).
fn span_in(text: &str, r: &RawValue) -> Range<usize> {
    let at = r.get().as_ptr() as usize - text.as_ptr() as usize;
    at..at + r.get().len()
}

/// The [`BodyFields`] of a JSON object body (`None`: not one).
pub(super) fn fields_of(body: &[u8]) -> Option<BodyFields> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let probe: Probe<'_> = serde_json::from_str(text).ok()?;
    Some(probe.in_body(text))
}

/// Parses (and so validates) the whole body as JSON and finds the top-level `model` and `stream`.
pub fn probe_request(body: &[u8]) -> Result<RequestProbe, GatewayError> {
    if body.is_empty() {
        return Err(GatewayError::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| GatewayError::bad_request("the request body is not valid UTF-8"))?;
    let probe: Probe<'_> = serde_json::from_str(text).map_err(|e| {
        GatewayError::bad_request(format!("the request body is not valid JSON: {e}"))
    })?;
    let raw = probe.model.ok_or_else(|| {
        GatewayError::bad_request("you must provide a model parameter").with_param("model")
    })?;
    let model: String = serde_json::from_str(raw.get())
        .map_err(|_| GatewayError::bad_request("`model` must be a string").with_param("model"))?;
    if model.is_empty() {
        return Err(GatewayError::bad_request("`model` must not be empty").with_param("model"));
    }
    // The RawValue borrows from `text`, so its position in the body is a pointer difference.
    let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
    let stream = match probe.stream {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => {
            return Err(GatewayError::bad_request("`stream` must be a boolean").with_param("stream"))
        }
    };
    let include_usage = probe
        .stream_options
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
        .and_then(|v| v.get("include_usage").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    Ok(RequestProbe {
        model,
        model_span: start..start + raw.get().len(),
        stream,
        stream_options_span: probe.stream_options.map(|r| span_in(text, r)),
        include_usage,
        fields: probe.in_body(text),
    })
}

/// What routing needs from a request whose model is in its URL (Gemini's
/// `models/{model}:generateContent` and `:streamGenerateContent`): the model and stream
/// choice from the path (`path` is the URL path, `query` its query string), and a body that
/// must be a JSON object. The model span is empty: the body has no model to rewrite.
pub fn probe_path_request(
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<RequestProbe, GatewayError> {
    let (model, stream) = super::gemini::client_path(path).ok_or_else(|| {
        GatewayError::bad_request("the URL must be `/v1beta/models/{model}:generateContent`")
    })?;
    if stream {
        let sse = query
            .unwrap_or_default()
            .split('&')
            .any(|kv| kv.eq_ignore_ascii_case("alt=sse"));
        if !sse {
            return Err(GatewayError::bad_request(
                "streamGenerateContent is served as server-sent events only: add `?alt=sse`",
            )
            .with_param("alt"));
        }
    }
    if body.is_empty() {
        return Err(GatewayError::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| GatewayError::bad_request("the request body is not valid UTF-8"))?;
    if !text.trim_start().starts_with('{') {
        // Checked first: a struct would also take a JSON array.
        return Err(GatewayError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let probe: Probe<'_> = serde_json::from_str(text).map_err(|e| {
        GatewayError::bad_request(format!("the request body is not valid JSON: {e}"))
    })?;
    Ok(RequestProbe {
        model,
        model_span: 0..0,
        stream,
        stream_options_span: None,
        include_usage: false,
        fields: probe.in_body(text),
    })
}

/// The body with the model literal at `span` replaced by `model` (JSON-escaped).
pub fn rewrite_model(body: &[u8], span: &Range<usize>, model: &str) -> Bytes {
    let literal = model_literal(model);
    let mut out = BytesMut::with_capacity(body.len() - span.len() + literal.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(literal.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    out.freeze()
}

/// `model` as a JSON string literal (quoted and escaped), as it replaces the model span.
pub fn model_literal(model: &str) -> String {
    serde_json::Value::String(model.to_owned()).to_string()
}

/// The body with `stream_options.include_usage = true`, keeping the client's other stream
/// options, and its probe (the old one with its spans moved: the body is not parsed again);
/// `None` if it already asks for usage. The gateway needs usage from every stream to know its
/// cost; the extra usage chunk is stripped before it reaches a client that did not ask.
pub fn with_include_usage(body: &[u8], probe: &RequestProbe) -> Option<(Bytes, RequestProbe)> {
    if probe.include_usage {
        return None;
    }
    // The bytes `cut` of the body are replaced by `insert`, whose value part starts at
    // `value_at` within it.
    let (cut, insert, value_at) = match &probe.stream_options_span {
        Some(span) => {
            let mut opts = match serde_json::from_slice::<serde_json::Value>(&body[span.clone()]) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            opts.insert("include_usage".into(), serde_json::Value::Bool(true));
            (span.clone(), serde_json::Value::Object(opts).to_string(), 0)
        }
        None => {
            // Insert before the closing brace of the top-level object.
            let end = body.iter().rposition(|b| *b == b'}')?;
            let key = r#","stream_options":"#;
            (
                end..end,
                format!(r#"{key}{{"include_usage":true}}"#),
                key.len(),
            )
        }
    };
    let mut out = BytesMut::with_capacity(body.len() - cut.len() + insert.len());
    out.extend_from_slice(&body[..cut.start]);
    out.extend_from_slice(insert.as_bytes());
    out.extend_from_slice(&body[cut.end..]);
    let moved = |r: &Range<usize>| {
        if r.start >= cut.end {
            r.start - cut.len() + insert.len()..r.end - cut.len() + insert.len()
        } else {
            r.clone()
        }
    };
    let mut fields = probe.fields.clone();
    fields.shift(cut.end, cut.len(), insert.len());
    let at = cut.start + value_at;
    Some((
        out.freeze(),
        RequestProbe {
            model: probe.model.clone(),
            model_span: moved(&probe.model_span),
            stream: probe.stream,
            stream_options_span: Some(at..cut.start + insert.len()),
            include_usage: true,
            fields,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_model_and_stream_anywhere_in_the_object() {
        let body = br#"{"messages":[{"role":"user","content":"hi \"model\": x"}],"model":"groq/llama","stream":true}"#;
        let p = probe_request(body).unwrap();
        assert_eq!(p.model, "groq/llama");
        assert!(p.stream);
        assert_eq!(&body[p.model_span.clone()], br#""groq/llama""#);
        let out = rewrite_model(body, &p.model_span, "llama");
        let expected = String::from_utf8_lossy(body).replace("\"groq/llama\"", "\"llama\"");
        let literal = model_literal("llama");
        let spliced = [
            &body[..p.model_span.start],
            literal.as_bytes(),
            &body[p.model_span.end..],
        ];
        assert_eq!(
            spliced.concat(),
            out.to_vec(),
            "the body around the literal is the rewritten body (how large bodies are replayed)"
        );
        assert_eq!(out, expected.as_bytes());
    }

    #[test]
    fn escaped_model_names_round_trip() {
        let body = br#"{"model":"a\/b\u00e9"}"#;
        let p = probe_request(body).unwrap();
        assert_eq!(p.model, "a/bé");
        let out = rewrite_model(body, &p.model_span, "x\"y");
        assert_eq!(&out[..], br#"{"model":"x\"y"}"#);
    }

    #[test]
    fn nested_model_fields_are_not_the_model() {
        let body = br#"{"metadata":{"model":"inner"},"model":"outer"}"#;
        assert_eq!(probe_request(body).unwrap().model, "outer");
    }

    #[test]
    fn include_usage_is_added_without_touching_other_options() {
        let body = br#"{"model":"m","stream":true,"messages":[]}"#;
        let p = probe_request(body).unwrap();
        assert!(!p.include_usage);
        let (out, moved) = with_include_usage(body, &p).unwrap();
        assert_eq!(
            moved,
            probe_request(&out).unwrap(),
            "the spans moved as a new probe finds"
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"], serde_json::json!([]));
        let body = br#"{"stream_options":{"include_obfuscation":false},"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":9}"#;
        let p = probe_request(body).unwrap();
        let (out, moved) = with_include_usage(body, &p).unwrap();
        let p2 = probe_request(&out).unwrap();
        assert_eq!(moved, p2, "the spans moved as a new probe finds");
        assert!(p2.include_usage);
        assert_eq!(p2.model, "m");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_obfuscation"], false);
        let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        let p = probe_request(body).unwrap();
        assert!(p.include_usage);
        assert!(with_include_usage(body, &p).is_none());
    }

    #[test]
    fn path_models_come_from_the_url() {
        let p = probe_path_request(
            "/v1beta/models/anthropic/claude:streamGenerateContent",
            Some("alt=sse"),
            br#"{"contents":[]}"#,
        )
        .unwrap();
        assert_eq!((p.model.as_str(), p.stream), ("anthropic/claude", true));
        assert!(p.model_span.is_empty());
        let e = probe_path_request("/v1/models/m:streamGenerateContent", None, b"{}").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("alt"));
        assert!(probe_path_request("/v1/models/m:generateContent", None, b"[1]").is_err());
        assert!(probe_path_request("/v1/models/m:generateContent", None, b"{").is_err());
        assert!(probe_path_request("/v1/models/m:generateContent", None, b"").is_err());
    }

    #[test]
    fn rejects_bad_bodies_with_a_named_field() {
        assert!(probe_request(b"").is_err());
        assert!(probe_request(b"{not json").is_err());
        assert!(probe_request(b"[1,2]").is_err());
        let e = probe_request(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = probe_request(br#"{"model":3}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = probe_request(br#"{"model":"m","stream":"yes"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("stream"));
        assert!(
            !probe_request(br#"{"model":"m","stream":null}"#)
                .unwrap()
                .stream
        );
    }
}
