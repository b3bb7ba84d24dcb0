//! The two halves of a cacheable answer's path through the proxy:
//!
//! - [`Tap`] (upstream side, `upstream_response_body_filter`): the provider's answer, streamed or
//!   whole, in its own dialect -> a canonical record (NDJSON events, [`crate::dialect::replay`]).
//!   What it emits is what pingora-cache stores, and what flows on to the client side.
//! - [`Renderer`] (client side, `response_body_filter`): a record -> the client's dialect,
//!   streamed or whole, whatever the record was made from. Cache hits take only this half.

use crate::dialect::canonical::{
    ProviderError, StreamDecoder, StreamEncoder, StreamEncoderOptions, StreamEvent,
};
use crate::dialect::replay::{decode_line, encode_line, response_events, Aggregator, LineSplitter};
use crate::dialect::translate::{self, MAX_WHOLE_BODY};
use crate::dialect::Dialect;
use crate::usage::{SseParser, Usage};
use bytes::{Bytes, BytesMut};

enum TapInput {
    Stream {
        parser: SseParser,
        decoder: Box<dyn StreamDecoder>,
    },
    Whole(BytesMut),
}

/// Provider answer -> canonical record.
pub struct Tap {
    from: Dialect,
    input: TapInput,
    events: Vec<StreamEvent>,
    /// The provider ended its answer properly (terminal event, or a whole body that decoded).
    complete: bool,
    errored: bool,
    tool_calls: bool,
    finished: bool,
}

impl Tap {
    pub fn new(from: Dialect, stream: bool) -> Tap {
        let input = if stream {
            TapInput::Stream {
                parser: SseParser::new(),
                decoder: translate::stream_decoder(from),
            }
        } else {
            TapInput::Whole(BytesMut::new())
        };
        Tap {
            from,
            input,
            events: Vec::new(),
            complete: false,
            errored: false,
            tool_calls: false,
            finished: false,
        }
    }

    fn emit(&mut self) -> Bytes {
        let mut out = Vec::new();
        for ev in self.events.drain(..) {
            match &ev {
                StreamEvent::End => self.complete = true,
                StreamEvent::Error(_) => self.errored = true,
                StreamEvent::BlockStart {
                    kind: crate::dialect::canonical::BlockKind::ToolCall { .. },
                    ..
                } => self.tool_calls = true,
                _ => {}
            }
            encode_line(&ev, &mut out);
        }
        Bytes::from(out)
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        match &mut self.input {
            TapInput::Stream { parser, decoder } => {
                let events = &mut self.events;
                parser.feed_with(chunk, |ev| decoder.on_event(&ev, events));
            }
            TapInput::Whole(buf) => {
                if buf.len() + chunk.len() <= MAX_WHOLE_BODY {
                    buf.extend_from_slice(chunk);
                } else {
                    self.errored = true;
                }
            }
        }
        self.emit()
    }

    pub fn finish(&mut self) -> Bytes {
        if std::mem::replace(&mut self.finished, true) {
            return Bytes::new();
        }
        match &mut self.input {
            TapInput::Stream { parser, decoder } => {
                if let Some(ev) = parser.finish() {
                    decoder.on_event(&ev, &mut self.events);
                }
                decoder.finish(&mut self.events);
            }
            TapInput::Whole(buf) if !self.errored => {
                match translate::decode_response(self.from, buf) {
                    Ok(resp) => self.events.extend(response_events(&resp)),
                    Err(why) => {
                        log::warn!("a provider's answer could not be read: {why}");
                        self.errored = true;
                        // The client gets this error (and a 502) instead of an empty answer.
                        self.events.push(StreamEvent::Error(ProviderError {
                            status: 502,
                            provider_type: None,
                            message: format!("the provider's answer could not be read: {why}"),
                            param: None,
                        }));
                    }
                }
            }
            TapInput::Whole(_) => {}
        }
        self.emit()
    }

    /// Whether the record is worth storing: the answer ended properly, without an error.
    pub fn storable(&self, tool_calls_allowed: bool) -> bool {
        self.complete && !self.errored && (tool_calls_allowed || !self.tool_calls)
    }

    /// Whether the whole answer could not be read (the client then gets a 502).
    pub fn failed(&self) -> bool {
        self.errored && matches!(self.input, TapInput::Whole(_))
    }
}

/// Canonical record -> the client's dialect.
pub struct Renderer {
    to: Dialect,
    opts: StreamEncoderOptions,
    lines: LineSplitter,
    encoder: Option<Box<dyn StreamEncoder>>,
    whole: Option<Aggregator>,
    usage: Option<Usage>,
    finished: bool,
}

impl Renderer {
    pub fn new(to: Dialect, stream: bool, opts: StreamEncoderOptions) -> Renderer {
        Renderer {
            to,
            lines: LineSplitter::default(),
            encoder: stream.then(|| translate::stream_encoder(to, opts.clone())),
            opts,
            whole: (!stream).then(Aggregator::new),
            usage: None,
            finished: false,
        }
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let Some(ev) = decode_line(line) else {
            return;
        };
        if let StreamEvent::Usage(u) = &ev {
            self.usage = Some(*u);
        }
        if let Some(enc) = self.encoder.as_mut() {
            enc.on_event(&ev, out);
        }
        if let Some(agg) = self.whole.as_mut() {
            agg.push(&ev);
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let mut lines = Vec::new();
        self.lines.feed(chunk, |l| lines.push(l.to_vec()));
        let mut out = Vec::new();
        for l in lines {
            self.on_line(&l, &mut out);
        }
        Bytes::from(out)
    }

    pub fn finish(&mut self) -> Bytes {
        if std::mem::replace(&mut self.finished, true) {
            return Bytes::new();
        }
        let mut rest = Vec::new();
        self.lines.finish(|l| rest.push(l.to_vec()));
        let mut out = Vec::new();
        for l in rest {
            self.on_line(&l, &mut out);
        }
        if let Some(enc) = self.encoder.as_mut() {
            enc.finish(&mut out);
        }
        if let Some(agg) = self.whole.take() {
            out = match agg.error().cloned() {
                Some(e) => translate::encode_error(self.to, &e),
                None => translate::encode_response_with(self.to, &agg.finish(), &self.opts),
            };
        }
        Bytes::from(out)
    }

    /// The usage the record reports (what a hit would have cost).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI_STREAM: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n\
data: [DONE]\n\n";

    fn record_of(stream: &str) -> (Vec<u8>, bool) {
        let mut tap = Tap::new(Dialect::OpenAi, true);
        let mut rec = Vec::new();
        for piece in stream.as_bytes().chunks(13) {
            rec.extend_from_slice(&tap.feed(piece));
        }
        rec.extend_from_slice(&tap.finish());
        (rec, tap.storable(true))
    }

    #[test]
    fn a_stored_stream_replays_whole_and_streamed_in_either_dialect() {
        let (rec, ok) = record_of(OPENAI_STREAM);
        assert!(ok);
        let opts = || StreamEncoderOptions {
            include_usage: false,
            model: "m".into(),
            ..Default::default()
        };
        let mut r = Renderer::new(Dialect::Anthropic, false, opts());
        let mut out = r.feed(&rec).to_vec();
        out.extend_from_slice(&r.finish());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["content"][0]["text"], "Hello");
        assert_eq!(r.usage().unwrap().output, 2);

        let mut r = Renderer::new(Dialect::OpenAi, false, opts());
        let mut out = r.feed(&rec).to_vec();
        out.extend_from_slice(&r.finish());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");

        let mut r = Renderer::new(Dialect::Anthropic, true, opts());
        let mut out = Vec::new();
        for piece in rec.chunks(5) {
            out.extend_from_slice(&r.feed(piece));
        }
        out.extend_from_slice(&r.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message_start"), "{text}");
        assert!(text.contains("\"text\":\"Hel\""), "{text}");
        assert!(
            text.trim_end().ends_with("{\"type\":\"message_stop\"}"),
            "{text}"
        );
    }

    #[test]
    fn a_cut_stream_or_an_unreadable_answer_is_not_storable() {
        let cut = &OPENAI_STREAM[..OPENAI_STREAM.len() / 2];
        let (_, ok) = record_of(cut);
        assert!(!ok);
        let mut tap = Tap::new(Dialect::OpenAi, false);
        tap.feed(b"{\"choices\": [");
        tap.finish();
        assert!(!tap.storable(true));
        assert!(tap.failed());
    }

    #[test]
    fn answers_with_tool_calls_follow_the_route_setting() {
        let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"g","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
        let mut tap = Tap::new(Dialect::OpenAi, false);
        tap.feed(body);
        let rec = tap.finish();
        assert!(!rec.is_empty());
        assert!(tap.storable(true));
        assert!(!tap.storable(false));
    }
}
