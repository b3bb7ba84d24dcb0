//! Cross-dialect glue: a request decoded once from the client's dialect and encoded for each
//! target, and the provider's answer translated back as it arrives.
//!
//! - [`RequestTranslator`]: the client's body as a [`ChatRequest`], encoded per attempt for the
//!   target's dialect and model.
//! - [`ResponseTranslator`]: fed the provider's body chunk by chunk. Streams go through an
//!   incremental SSE parser, the provider dialect's decoder and the client dialect's encoder,
//!   event by event (nothing is buffered beyond an incomplete event). Whole answers and
//!   errors are collected (bounded) and translated at the end of the body.
//!
//! Runnable example (the conformance tests drive this module):
//! `cargo test --test conformance`

use super::canonical::{
    ChatRequest, ProviderError, StreamDecoder, StreamEncoder, StreamEncoderOptions, StreamEvent,
    TranslateOptions,
};
use super::{anthropic, gemini, openai, responses, Dialect};
use crate::error::GatewayError;
use crate::usage::SseParser;
use bytes::{Bytes, BytesMut};

/// Largest whole (non-streamed) answer or error body translated: 32 MiB.
pub const MAX_WHOLE_BODY: usize = 32 * 1024 * 1024;

pub fn decode_request(
    d: Dialect,
    body: &[u8],
    opts: &TranslateOptions,
) -> Result<ChatRequest, GatewayError> {
    match d {
        Dialect::OpenAi => openai::decode_request(body, opts),
        Dialect::Anthropic => anthropic::decode_request(body, opts),
        Dialect::Gemini => gemini::decode_request(body, opts),
        Dialect::Responses => responses::decode_request(body, opts),
    }
}

pub fn encode_request(
    d: Dialect,
    req: &ChatRequest,
    model: &str,
    opts: &TranslateOptions,
) -> Result<Vec<u8>, GatewayError> {
    match d {
        Dialect::OpenAi => openai::encode_request(req, model, opts),
        Dialect::Anthropic => anthropic::encode_request(req, model, opts),
        Dialect::Gemini => gemini::encode_request(req, model, opts),
        Dialect::Responses => responses::encode_request(req, model, opts),
    }
}

pub fn decode_response(d: Dialect, body: &[u8]) -> Result<super::canonical::ChatResponse, String> {
    match d {
        Dialect::OpenAi => openai::decode_response(body),
        Dialect::Anthropic => anthropic::decode_response(body),
        Dialect::Gemini => gemini::decode_response(body),
        Dialect::Responses => responses::decode_response(body),
    }
}

pub fn encode_response(d: Dialect, resp: &super::canonical::ChatResponse) -> Vec<u8> {
    encode_response_with(d, resp, &StreamEncoderOptions::default())
}

/// [`encode_response`] with the client-side options (the id the client sees, echoed request
/// fields, the model to report when the provider named none) a dialect may use.
pub fn encode_response_with(
    d: Dialect,
    resp: &super::canonical::ChatResponse,
    opts: &StreamEncoderOptions,
) -> Vec<u8> {
    match d {
        Dialect::OpenAi => openai::encode_response(resp),
        Dialect::Anthropic => anthropic::encode_response(resp),
        Dialect::Gemini => gemini::encode_response(resp),
        Dialect::Responses => responses::encode_response_with(resp, opts),
    }
}

pub fn decode_error(d: Dialect, status: u16, body: &[u8]) -> ProviderError {
    match d {
        Dialect::OpenAi => openai::decode_error(status, body),
        Dialect::Anthropic => anthropic::decode_error(status, body),
        Dialect::Gemini => gemini::decode_error(status, body),
        Dialect::Responses => responses::decode_error(status, body),
    }
}

pub fn encode_error(d: Dialect, err: &ProviderError) -> Vec<u8> {
    match d {
        Dialect::OpenAi => openai::encode_error(err),
        Dialect::Anthropic => anthropic::encode_error(err),
        Dialect::Gemini => gemini::encode_error(err),
        Dialect::Responses => responses::encode_error(err),
    }
}

pub fn stream_decoder(d: Dialect) -> Box<dyn StreamDecoder> {
    match d {
        Dialect::OpenAi => openai::stream_decoder(),
        Dialect::Anthropic => anthropic::stream_decoder(),
        Dialect::Gemini => gemini::stream_decoder(),
        Dialect::Responses => responses::stream_decoder(),
    }
}

pub fn stream_encoder(d: Dialect, opts: StreamEncoderOptions) -> Box<dyn StreamEncoder> {
    match d {
        Dialect::OpenAi => openai::stream_encoder(opts),
        Dialect::Anthropic => anthropic::stream_encoder(opts),
        Dialect::Gemini => gemini::stream_encoder(opts),
        Dialect::Responses => responses::stream_encoder(opts),
    }
}

/// The client's request, decoded once, encoded for each target that speaks another dialect.
#[derive(Debug)]
pub struct RequestTranslator {
    pub from: Dialect,
    pub request: ChatRequest,
}

impl RequestTranslator {
    pub fn new(
        from: Dialect,
        body: &[u8],
        opts: &TranslateOptions,
    ) -> Result<RequestTranslator, GatewayError> {
        Ok(RequestTranslator {
            from,
            request: decode_request(from, body, opts)?,
        })
    }

    /// The body for a target speaking `to`, asking for `model`.
    pub fn body_for(
        &self,
        to: Dialect,
        model: &str,
        opts: &TranslateOptions,
    ) -> Result<Bytes, GatewayError> {
        encode_request(to, &self.request, model, opts).map(Bytes::from)
    }
}

/// Translates one provider answer into the client's dialect as it streams through.
pub enum ResponseTranslator {
    Stream(Box<StreamTranslator>),
    Whole(WholeTranslator),
}

impl ResponseTranslator {
    /// For a 2xx streamed answer.
    pub fn stream(from: Dialect, to: Dialect, opts: StreamEncoderOptions) -> ResponseTranslator {
        ResponseTranslator::Stream(Box::new(StreamTranslator::new(from, to, opts)))
    }

    /// For a whole answer (2xx) or an error answer (any other status).
    pub fn whole(from: Dialect, to: Dialect, status: u16) -> ResponseTranslator {
        Self::whole_with(from, to, status, StreamEncoderOptions::default())
    }

    /// [`Self::whole`] with the client-side options of [`encode_response_with`].
    pub fn whole_with(
        from: Dialect,
        to: Dialect,
        status: u16,
        opts: StreamEncoderOptions,
    ) -> ResponseTranslator {
        ResponseTranslator::Whole(WholeTranslator {
            from,
            to,
            status,
            opts,
            buf: BytesMut::new(),
            overflowed: false,
            failed: None,
        })
    }

    /// Translates a chunk of the provider's body; returns what goes to the client now.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        match self {
            ResponseTranslator::Stream(s) => s.feed(chunk),
            ResponseTranslator::Whole(w) => {
                w.feed(chunk);
                Bytes::new()
            }
        }
    }

    /// The provider's body ended: the rest of the client's body.
    pub fn finish(&mut self) -> Bytes {
        match self {
            ResponseTranslator::Stream(s) => s.finish(),
            ResponseTranslator::Whole(w) => w.finish(),
        }
    }

    /// A whole answer that could not be translated: the status to send instead (502).
    pub fn failed_status(&self) -> Option<u16> {
        match self {
            ResponseTranslator::Whole(w) => w.failed,
            ResponseTranslator::Stream(_) => None,
        }
    }
}

/// SSE in, SSE out, event by event.
pub struct StreamTranslator {
    parser: SseParser,
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    events: Vec<StreamEvent>,
    out: Vec<u8>,
    finished: bool,
}

impl StreamTranslator {
    pub fn new(from: Dialect, to: Dialect, opts: StreamEncoderOptions) -> StreamTranslator {
        StreamTranslator {
            parser: SseParser::new(),
            decoder: stream_decoder(from),
            encoder: stream_encoder(to, opts),
            events: Vec::new(),
            out: Vec::new(),
            finished: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if self.finished {
            return Bytes::new();
        }
        let (decoder, events) = (&mut self.decoder, &mut self.events);
        self.parser
            .feed_with(chunk, |ev| decoder.on_event(&ev, events));
        self.drain()
    }

    pub fn finish(&mut self) -> Bytes {
        if self.finished {
            return Bytes::new();
        }
        self.finished = true;
        if let Some(ev) = self.parser.finish() {
            self.decoder.on_event(&ev, &mut self.events);
        }
        self.decoder.finish(&mut self.events);
        for ev in self.events.drain(..) {
            self.encoder.on_event(&ev, &mut self.out);
        }
        self.encoder.finish(&mut self.out);
        Bytes::from(std::mem::take(&mut self.out))
    }

    fn drain(&mut self) -> Bytes {
        for ev in self.events.drain(..) {
            self.encoder.on_event(&ev, &mut self.out);
        }
        if self.out.is_empty() {
            return Bytes::new();
        }
        Bytes::from(std::mem::take(&mut self.out))
    }
}

/// A whole body, translated at its end.
pub struct WholeTranslator {
    from: Dialect,
    to: Dialect,
    status: u16,
    opts: StreamEncoderOptions,
    buf: BytesMut,
    overflowed: bool,
    failed: Option<u16>,
}

impl WholeTranslator {
    fn feed(&mut self, chunk: &[u8]) {
        if self.buf.len() + chunk.len() > MAX_WHOLE_BODY {
            self.overflowed = true;
            return;
        }
        self.buf.extend_from_slice(chunk);
    }

    fn finish(&mut self) -> Bytes {
        let body = std::mem::take(&mut self.buf);
        if !(200..300).contains(&self.status) {
            let err = decode_error(self.from, self.status, &body);
            return Bytes::from(encode_error(self.to, &err));
        }
        let decoded = if self.overflowed {
            Err(format!("the answer is larger than {MAX_WHOLE_BODY} bytes"))
        } else {
            decode_response(self.from, &body)
        };
        match decoded {
            Ok(resp) => Bytes::from(encode_response_with(self.to, &resp, &self.opts)),
            Err(why) => {
                log::warn!("could not translate a provider's answer: {why}");
                self.failed = Some(502);
                let err = ProviderError {
                    status: 502,
                    provider_type: None,
                    message: format!("the provider's answer could not be translated: {why}"),
                    param: None,
                };
                Bytes::from(encode_error(self.to, &err))
            }
        }
    }
}
