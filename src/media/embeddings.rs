//! Embeddings through Gemini's native `batchEmbedContents`, translated both ways.
//!
//! Request (OpenAI `POST /v1/embeddings`): `input` as a string or a list of strings (a batch:
//! one Gemini request per string), `dimensions` as `outputDimensionality`. Token-id inputs
//! cannot be expressed in Gemini's text contents and are refused up front (routing removes
//! Gemini targets for them).
//!
//! Answer: `{"embeddings":[{"values":[...]}, ...]}` becomes OpenAI's list of embedding objects,
//! the vectors as floats or, with `encoding_format: "base64"`, as base64 of little-endian f32
//! (what OpenAI sends). Gemini reports no token counts: the answer's `usage` carries a quick
//! estimate (a token per four characters) and accounting estimates the billed tokens with the
//! tokenizer (the ledger row is marked estimated).

use crate::error::GatewayError;
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

/// The request's parts Gemini needs.
struct Parsed {
    texts: Vec<String>,
    dimensions: Option<u64>,
}

fn parse(body: &[u8]) -> Result<Parsed, GatewayError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::bad_request(format!("the request body is not valid JSON: {e}"))
    })?;
    let bad = |m: &str| GatewayError::bad_request(m.to_owned()).with_param("input");
    let texts = match v.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(
                    "Gemini embeddings take text: `input` items must be strings (token ids \
                     cannot be translated)",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                "`input` must be a non-empty string or array of strings",
            ))
        }
        None => return Err(bad("you must provide an `input` parameter")),
    };
    let dimensions = match v.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(d) => Some(d.as_u64().filter(|d| *d > 0).ok_or_else(|| {
            GatewayError::bad_request("`dimensions` must be a positive integer")
                .with_param("dimensions")
        })?),
    };
    match v.get("encoding_format").and_then(Value::as_str) {
        None | Some("float" | "base64") => {}
        Some(other) => {
            return Err(GatewayError::bad_request(format!(
                "`encoding_format` must be \"float\" or \"base64\", not {other:?}"
            ))
            .with_param("encoding_format"))
        }
    }
    Ok(Parsed { texts, dimensions })
}

/// Whether the request can be sent to Gemini (checked once, by routing).
pub fn check(body: &[u8]) -> Result<(), GatewayError> {
    parse(body).map(|_| ())
}

/// The `batchEmbedContents` body for `model`.
pub fn to_gemini(body: &[u8], model: &str) -> Result<Bytes, GatewayError> {
    let p = parse(body)?;
    let name = if model.starts_with("models/") {
        model.to_owned()
    } else {
        format!("models/{model}")
    };
    let requests: Vec<Value> = p
        .texts
        .iter()
        .map(|t| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": t}]}});
            if let Some(d) = p.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(Bytes::from(json!({ "requests": requests }).to_string()))
}

/// Whether the client asked for base64 vectors.
pub fn wants_base64(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        encoding_format: Option<&'a str>,
    }
    serde_json::from_slice::<Probe<'_>>(body).is_ok_and(|p| p.encoding_format == Some("base64"))
}

/// A quick token estimate of the inputs (a token per four characters), for the answer's
/// `usage`.
fn quick_tokens(body: &[u8]) -> u64 {
    parse(body).map_or(0, |p| {
        p.texts
            .iter()
            .map(|t| (t.chars().count() as u64).div_ceil(4).max(1))
            .sum()
    })
}

/// A whole Gemini answer -> OpenAI's, fed chunk by chunk (bounded).
pub struct FromGemini {
    buf: BytesMut,
    base64: bool,
    model: String,
    tokens: u64,
    failed: bool,
}

/// Largest Gemini answer translated.
const MAX_ANSWER: usize = crate::dialect::translate::MAX_WHOLE_BODY;

impl FromGemini {
    /// For the answer to `request_body` (the client's), served by `model`.
    pub fn new(request_body: &[u8], model: &str) -> FromGemini {
        FromGemini {
            buf: BytesMut::new(),
            base64: wants_base64(request_body),
            model: model.to_owned(),
            tokens: quick_tokens(request_body),
            failed: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.buf.len() + chunk.len() > MAX_ANSWER {
            self.failed = true;
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The OpenAI answer, or an OpenAI error body when the answer could not be read.
    pub fn finish(&mut self) -> Bytes {
        let body = std::mem::take(&mut self.buf);
        let result = if self.failed {
            Err(format!("the answer is larger than {MAX_ANSWER} bytes"))
        } else {
            translate(&body, self.base64, &self.model, self.tokens)
        };
        match result {
            Ok(out) => Bytes::from(out),
            Err(why) => {
                self.failed = true;
                log::warn!("a Gemini embeddings answer could not be read: {why}");
                let err = GatewayError::new(
                    crate::error::ErrorKind::UpstreamUnavailable,
                    format!("the provider's embeddings answer could not be read: {why}"),
                );
                Bytes::from(crate::dialect::openai::error_body(&err))
            }
        }
    }

    /// Whether the answer could not be translated (the client then gets a 502).
    pub fn failed(&self) -> bool {
        self.failed
    }
}

/// Gemini's `{"embeddings":[{"values":[...]}]}` as OpenAI's embeddings list.
pub fn translate(body: &[u8], base64: bool, model: &str, tokens: u64) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or("no `embeddings` list")?;
    let mut data = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("embedding {i} has no `values`"))?;
        let embedding = if base64 {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for x in values {
                let f = x
                    .as_f64()
                    .ok_or_else(|| format!("embedding {i}: not a number"))?;
                bytes.extend_from_slice(&(f as f32).to_le_bytes());
            }
            Value::String(super::b64::encode(&bytes))
        } else {
            Value::Array(values.clone())
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    let out = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Ok(out.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached answer's usage is read by the usage tally the proxied answer had (OpenAI
    /// dialect, whole body), as the cache layer does on a hit.
    #[test]
    fn a_stored_answers_usage_is_read_across_chunks_and_bounded() {
        use crate::usage::tally::StreamTally;
        let body = br#"{"object":"list","data":[{"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let mut r = StreamTally::new(crate::dialect::Dialect::OpenAi, false, false);
        for chunk in body.chunks(9) {
            r.feed(Bytes::copy_from_slice(chunk));
        }
        r.finish();
        assert_eq!(r.usage().map(|u| u.input), Some(7));
        let mut none = StreamTally::new(crate::dialect::Dialect::OpenAi, false, false);
        none.feed(Bytes::from_static(br#"{"data":[]}"#));
        none.finish();
        assert_eq!(none.usage(), None);
        let small = StreamTally::new(crate::dialect::Dialect::OpenAi, false, false);
        let mut big = small.with_caps(16, 16, 16);
        big.feed(Bytes::copy_from_slice(body));
        big.finish();
        assert_eq!(big.usage(), None);
    }

    #[test]
    fn batches_and_dimensions_become_gemini_requests() {
        let body = br#"{"model":"route","input":["a","bb"],"dimensions":3}"#;
        let g: Value =
            serde_json::from_slice(&to_gemini(body, "gemini-embedding-001").unwrap()).unwrap();
        let reqs = g["requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1]["model"], "models/gemini-embedding-001");
        assert_eq!(reqs[1]["content"]["parts"][0]["text"], "bb");
        assert_eq!(reqs[0]["outputDimensionality"], 3);
        let one = to_gemini(br#"{"model":"m","input":"x"}"#, "models/e").unwrap();
        let g: Value = serde_json::from_slice(&one).unwrap();
        assert_eq!(g["requests"][0]["model"], "models/e");
        assert!(g["requests"][0].get("outputDimensionality").is_none());
    }

    #[test]
    fn token_ids_and_bad_formats_are_refused() {
        assert!(check(br#"{"model":"m","input":[1,2,3]}"#).is_err());
        assert!(check(br#"{"model":"m","input":[[1,2]]}"#).is_err());
        assert!(check(br#"{"model":"m","input":[]}"#).is_err());
        let e = check(br#"{"model":"m","input":"x","encoding_format":"int8"}"#).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(check(br#"{"model":"m","input":"x","encoding_format":"base64"}"#).is_ok());
    }

    #[test]
    fn answers_come_back_as_floats_or_base64() {
        let g = br#"{"embeddings":[{"values":[0.5,-1.0]},{"values":[0.25,0.0]}]}"#;
        let v: Value = serde_json::from_slice(&translate(g, false, "e", 3).unwrap()).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["data"][0]["embedding"], json!([0.5, -1.0]));
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        let v: Value = serde_json::from_slice(&translate(g, true, "e", 3).unwrap()).unwrap();
        // 0.5f32 = 00 00 00 3f, -1.0f32 = 00 00 80 bf (little-endian).
        assert_eq!(v["data"][0]["embedding"], "AAAAPwAAgL8=");
        let mut t = FromGemini::new(br#"{"model":"m","input":"abcdefgh"}"#, "e");
        t.feed(&g[..10]);
        t.feed(&g[10..]);
        let v: Value = serde_json::from_slice(&t.finish()).unwrap();
        assert_eq!(v["usage"]["total_tokens"], 2);
        assert!(!t.failed());
        let mut t = FromGemini::new(b"{}", "e");
        t.feed(b"{\"error\"");
        let v: Value = serde_json::from_slice(&t.finish()).unwrap();
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be read"));
        assert!(t.failed());
    }
}
