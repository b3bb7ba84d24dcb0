//! The response pipeline as a plain stream transformer: a provider's answer goes in chunk by
//! chunk, usage is read from the provider's own bytes, and the answer comes out in the client's
//! dialect (translated event by event for streams, at the end for whole answers and errors).
//!
//! It knows nothing of pingora's session: the proxy runs its two steps in two hooks (usage on
//! the provider side, before the cache; translation on the client side, see
//! `proxy::layers`), and an answer fetched by the gateway itself (the outbound client: race
//! legs, hedges, judge calls) runs both in one call per chunk ([`Transform::feed`]).

use crate::dialect::canonical::StreamEncoderOptions;
use crate::dialect::translate::ResponseTranslator;
use crate::dialect::{Dialect, Endpoint};
use crate::usage::tally::StreamTally;
use crate::usage::Usage;
use bytes::Bytes;
use pingora_http::ResponseHeader;

/// What a transform needs to know about the answer.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The provider's dialect (what its bytes are in).
    pub provider: Dialect,
    /// The client's dialect (what the bytes become).
    pub client: Dialect,
    pub endpoint: Endpoint,
    /// The provider's status.
    pub status: u16,
    pub stream: bool,
    /// The client itself asked for usage in its OpenAI-dialect stream.
    pub wants_usage: bool,
    /// The model named in translated stream events.
    pub model: String,
    /// The answer's id as the client sees it, when the gateway assigns one (Responses
    /// clients, see [`crate::conversation`]).
    pub response_id: Option<String>,
    /// Request fields the client's dialect echoes in its answer (Responses).
    pub echo: Option<std::sync::Arc<serde_json::Value>>,
}

impl Spec {
    /// Whether the usage-only chunk the gateway asked for is removed from an OpenAI stream
    /// passed through untranslated (a translated stream gets its usage chunk from the
    /// translator instead).
    pub fn strips_usage_chunk(&self) -> bool {
        self.stream
            && self.endpoint == Endpoint::ChatCompletions
            && !self.wants_usage
            && self.provider == self.client
    }
}

/// Usage tally, then translation.
#[derive(Default)]
pub struct Transform {
    /// Reads usage (a 2xx answer only: errors bill nothing).
    pub tally: Option<StreamTally>,
    /// Translates into the client's dialect (only when the provider speaks another).
    pub translator: Option<ResponseTranslator>,
}

impl Transform {
    /// Both steps, as the spec needs them. `strip`: remove the usage-only chunk (see
    /// [`Spec::strips_usage_chunk`]; a caller that records the answer keeps it).
    pub fn new(spec: &Spec, strip: bool) -> Transform {
        let mut t = Transform::usage_only(spec, strip);
        t.translator = translator(spec);
        t
    }

    /// The usage step alone (the translation step is added later, or never).
    pub fn usage_only(spec: &Spec, strip: bool) -> Transform {
        let ok = (200..300).contains(&spec.status);
        Transform {
            tally: ok.then(|| StreamTally::new(spec.provider, spec.stream, strip)),
            translator: None,
        }
    }

    /// Step 1, on the provider's bytes: reads usage; returns the bytes to pass on (the same,
    /// or without the usage-only chunk).
    pub fn read_usage(&mut self, chunk: Bytes) -> Bytes {
        match self.tally.as_mut() {
            Some(t) => t.feed(chunk),
            None => chunk,
        }
    }

    /// Step 1 at the end of the provider's body: what the tally still held.
    pub fn finish_usage(&mut self) -> Bytes {
        self.tally
            .as_mut()
            .map(StreamTally::finish)
            .unwrap_or_default()
    }

    /// Step 2: into the client's dialect (untouched when no translation is needed).
    pub fn translate(&mut self, chunk: Bytes) -> Bytes {
        match self.translator.as_mut() {
            Some(t) => t.feed(&chunk),
            None => chunk,
        }
    }

    /// Step 2 at the end of the body: what the translator still held.
    pub fn finish_translation(&mut self) -> Bytes {
        self.translator
            .as_mut()
            .map(ResponseTranslator::finish)
            .unwrap_or_default()
    }

    /// Both steps on one chunk of the provider's body.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        let passed = self.read_usage(chunk);
        self.translate(passed)
    }

    /// Both steps at the end of the provider's body: the rest of the client's body.
    pub fn finish(&mut self) -> Bytes {
        let rest = self.finish_usage();
        let translated = self.translate(rest);
        append(translated, self.finish_translation())
    }

    /// Usage as the answer reported it (`None` until it has, or for an error answer).
    pub fn usage(&self) -> Option<Usage> {
        self.tally.as_ref().and_then(StreamTally::usage)
    }

    /// A whole answer that could not be translated: the status to send instead (502).
    pub fn failed_status(&self) -> Option<u16> {
        self.translator
            .as_ref()
            .and_then(ResponseTranslator::failed_status)
    }
}

/// The translator for an answer, when the provider speaks another dialect than the client.
fn translator(spec: &Spec) -> Option<ResponseTranslator> {
    if spec.provider == spec.client {
        return None;
    }
    let ok = (200..300).contains(&spec.status);
    let opts = StreamEncoderOptions {
        include_usage: spec.wants_usage,
        model: spec.model.clone(),
        response_id: spec.response_id.clone(),
        echo: spec.echo.clone(),
    };
    Some(if ok && spec.stream {
        ResponseTranslator::stream(spec.provider, spec.client, opts)
    } else {
        ResponseTranslator::whole_with(spec.provider, spec.client, spec.status, opts)
    })
}

/// Adds the translation step to a transform, re-labelling the response header: a translated
/// body changes length and, for errors and streams, type.
pub fn add_translation(
    t: &mut Transform,
    spec: &Spec,
    resp: &mut ResponseHeader,
) -> pingora_error::Result<()> {
    t.translator = translator(spec);
    if t.translator.is_none() {
        return Ok(());
    }
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    if (200..300).contains(&spec.status) && spec.stream {
        resp.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    } else {
        resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    }
    Ok(())
}

/// A body chunk followed by what a step still held at the end of the body; no copy when
/// either is empty.
pub fn append(out: Bytes, rest: Bytes) -> Bytes {
    match (out.is_empty(), rest.is_empty()) {
        (_, true) => out,
        (true, false) => rest,
        (false, false) => {
            let mut joined = bytes::BytesMut::with_capacity(out.len() + rest.len());
            joined.extend_from_slice(&out);
            joined.extend_from_slice(&rest);
            joined.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(provider: Dialect, client: Dialect, stream: bool) -> Spec {
        Spec {
            provider,
            client,
            endpoint: Endpoint::ChatCompletions,
            status: 200,
            stream,
            wants_usage: false,
            model: "claude".into(),
            response_id: None,
            echo: None,
        }
    }

    /// Feeds `body` in chunks of every size from 1 to its length: the output and usage never
    /// depend on where the chunks were cut.
    fn run_split(spec: &Spec, body: &[u8]) -> (Vec<u8>, Option<Usage>) {
        let mut first: Option<(Vec<u8>, Option<Usage>)> = None;
        for size in 1..=body.len() {
            let mut t = Transform::new(spec, spec.strips_usage_chunk());
            let mut out = Vec::new();
            for c in body.chunks(size) {
                out.extend_from_slice(&t.feed(Bytes::copy_from_slice(c)));
            }
            out.extend_from_slice(&t.finish());
            // Translated chunks carry the wall-clock second they were made: not the cut's doing.
            let got = (without_created(&out), t.usage());
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(f, &got, "chunk size {size}"),
            }
        }
        first.unwrap_or_default()
    }

    fn without_created(out: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(out);
        let mut clean = String::with_capacity(text.len());
        let mut rest = text.as_ref();
        while let Some(at) = rest.find("\"created\":") {
            let (head, tail) = rest.split_at(at + "\"created\":".len());
            clean.push_str(head);
            rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        clean.push_str(rest);
        clean.into_bytes()
    }

    #[test]
    fn an_anthropic_stream_becomes_openai_chunks_with_its_usage() {
        let body = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let s = spec(Dialect::Anthropic, Dialect::OpenAi, true);
        let (out, usage) = run_split(&s, body.as_bytes());
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("\"content\":\"Hello\""), "{out}");
        assert!(out.trim_end().ends_with("data: [DONE]"), "{out}");
        let u = usage.expect("usage read from the provider's bytes");
        assert_eq!((u.input, u.output), (12, 5));
    }

    #[test]
    fn a_same_dialect_stream_passes_through_without_the_usage_chunk() {
        let body = concat!(
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
            "data: [DONE]\n\n",
        );
        let s = spec(Dialect::OpenAi, Dialect::OpenAi, true);
        assert!(s.strips_usage_chunk());
        let (out, usage) = run_split(&s, body.as_bytes());
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("\"content\":\"Hi\"") && !out.contains("\"usage\""),
            "{out}"
        );
        assert_eq!(usage.map(|u| (u.input, u.output)), Some((3, 1)));
    }

    #[test]
    fn an_error_bills_nothing_and_is_translated_whole() {
        let mut s = spec(Dialect::Anthropic, Dialect::OpenAi, false);
        s.status = 429;
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        let (out, usage) = run_split(&s, body);
        assert_eq!(usage, None);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "slow down");
    }
}
