//! Media endpoints of the mock, deterministic:
//!
//! - `POST …/images/generations`: `n` images (default 1), each a 1×1 PNG as `b64_json`, or a
//!   fixed `url` (`response_format: "url"`, the default for `dall-e-*` models). `gpt-image-*`
//!   models also report `usage` (10 input tokens per prompt word, 1056 output tokens per image).
//! - `POST …/audio/transcriptions` and `…/audio/translations` (multipart): the transcript
//!   echoes the uploaded file's size (`"transcribed 1234 bytes"`); the file's WAV duration (if
//!   any) is the `duration` of `verbose_json` and the `usage` seconds of `json`; `text`, `srt`
//!   and `vtt` are plain text. The file's bytes are echoed as `x-mock-file-bytes` and
//!   `x-mock-file-sha256`.
//! - `POST …/audio/speech`: a WAV of silence (16 kHz, 16-bit mono) streamed in chunks of
//!   0.1 s, as many chunks as `x-mock-tokens` (default 16), `x-mock-itl-ms` apart.
//! - `POST …/models/{model}:batchEmbedContents` (Gemini): one fixed vector per request
//!   (`outputDimensionality`, default 8), seeded by its text.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::Request;
use super::{openai, text, Ctx, EventGen, Reply};
use crate::media::multipart::{self, Part};

/// A 1×1 transparent PNG.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// Speech: 16 kHz 16-bit mono; one chunk is 0.1 s.
const RATE: u32 = 16_000;
const CHUNK_BYTES: usize = 3_200;

fn bad(msg: &str) -> Reply {
    Reply::json(400, &openai::error_json(400, msg, None))
}

pub(crate) fn images(ctx: &Ctx, body: &Value) -> Reply {
    let Some(prompt) = body.get("prompt").and_then(Value::as_str) else {
        return bad("you must provide a 'prompt' parameter");
    };
    let n = match body.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=10) => n,
            _ => return bad("'n' must be an integer between 1 and 10"),
        },
    };
    let default_url = ctx.model.starts_with("dall-e");
    let url = match body.get("response_format").and_then(Value::as_str) {
        None => default_url,
        Some("url") => true,
        Some("b64_json") => false,
        Some(other) => return bad(&format!("'response_format' {other:?} is not supported")),
    };
    let data: Vec<Value> = (0..n)
        .map(|i| {
            if url {
                json!({"url": format!("https://mock.invalid/images/{}-{i}.png", ctx.n)})
            } else {
                json!({"b64_json": crate::media::b64::encode(PNG), "revised_prompt": prompt})
            }
        })
        .collect();
    let mut out = json!({"created": ctx.created, "data": data});
    if ctx.model.starts_with("gpt-image") {
        let input = 10 * prompt.split_whitespace().count().max(1) as u64;
        let output = 1056 * n;
        out["usage"] = json!({
            "input_tokens": input,
            "output_tokens": output,
            "total_tokens": input + output,
            "input_tokens_details": {"text_tokens": input, "image_tokens": 0},
        });
    }
    Reply::json(200, &out)
}

/// The parts of a multipart body, or the 400 reply.
pub(crate) fn form(req: &Request) -> Result<Vec<Part>, Reply> {
    let ct = req.header("content-type").unwrap_or_default();
    let Some(boundary) = multipart::boundary(ct) else {
        return Err(bad("this endpoint takes a multipart/form-data body"));
    };
    let mut scanner = multipart::Scanner::new(&boundary);
    scanner.feed(&req.body);
    scanner
        .finish()
        .map_err(|e| bad(&format!("malformed multipart body: {e}")))
}

/// The model field of a form, if any.
pub(crate) fn form_model(parts: &[Part]) -> Option<String> {
    parts
        .iter()
        .find(|p| p.name == "model")
        .and_then(|p| p.text().map(str::to_owned))
}

pub(crate) fn transcription(ctx: &Ctx, req: &Request, parts: &[Part], translate: bool) -> Reply {
    if ctx.model.is_empty() {
        return bad("model: Field required");
    }
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "file" && p.filename.is_some())
    else {
        return bad("file: Field required (an audio file)");
    };
    let bytes = &req.body[file.value.start as usize..file.value.end as usize];
    let size = bytes.len();
    let seconds = crate::media::wav::duration(&file.head, size as u64);
    let text = format!("transcribed {size} bytes");
    let format = parts
        .iter()
        .find(|p| p.name == "response_format")
        .and_then(Part::text)
        .unwrap_or("json");
    let reply = match format {
        "json" => {
            let mut v = json!({"text": text});
            if let Some(s) = seconds {
                v["usage"] = json!({"type": "duration", "seconds": s.ceil() as u64});
            }
            Reply::json(200, &v)
        }
        "verbose_json" => Reply::json(
            200,
            &json!({
                "task": if translate { "translate" } else { "transcribe" },
                "language": "english",
                "duration": seconds.unwrap_or(0.0),
                "text": text,
                "segments": [],
            }),
        ),
        "text" | "srt" | "vtt" => Reply::full(200, "text/plain", text.into_bytes()),
        other => return bad(&format!("response_format {other:?} is not supported")),
    };
    reply
        .with_header("x-mock-file-bytes", size.to_string())
        .with_header("x-mock-file-sha256", text::hex(&Sha256::digest(bytes)))
}

/// Streams a WAV of silence, one chunk per event.
struct Silence {
    header: Option<Vec<u8>>,
    left: usize,
}

impl EventGen for Silence {
    fn next_event(&mut self, out: &mut Vec<u8>) -> bool {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
            return true;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        out.resize(out.len() + CHUNK_BYTES, 0);
        true
    }
}

pub(crate) fn speech(ctx: &Ctx, body: &Value) -> Reply {
    if body.get("input").and_then(Value::as_str).is_none() {
        return bad("you must provide an 'input' parameter");
    }
    if body.get("voice").and_then(Value::as_str).is_none() {
        return bad("you must provide a 'voice' parameter");
    }
    let chunks = ctx.tokens;
    let data_len = u32::try_from(chunks * CHUNK_BYTES).unwrap_or(u32::MAX);
    Reply::stream(
        "audio/wav",
        Box::new(Silence {
            header: Some(crate::media::wav::header(RATE, data_len)),
            left: chunks,
        }),
    )
}

pub(crate) fn batch_embed(body: &Value) -> Reply {
    let err = |m: &str| Reply::json(400, &super::gemini::error_json(400, m));
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return err("requests: field required");
    };
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let Some(t) = r.pointer("/content/parts/0/text").and_then(Value::as_str) else {
            return err("each request needs content.parts[0].text");
        };
        let dims = r
            .get("outputDimensionality")
            .and_then(Value::as_u64)
            .unwrap_or(8)
            .clamp(1, 16_384) as usize;
        out.push(json!({"values": text::embedding(t.as_bytes(), dims)}));
    }
    Reply::json(200, &json!({ "embeddings": out }))
}
