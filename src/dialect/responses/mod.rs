//! The OpenAI Responses API dialect (`POST /v1/responses`), spoken by the OpenAI Agents SDK,
//! Codex-style coding agents and `client.responses.*` in the OpenAI SDKs.
//!
//! As a client dialect it is served for every target: OpenAI-kind targets get the body
//! unchanged but for the model (they speak it natively); every other target gets it translated
//! through the canonical model, and its answer comes back as a Responses object or as the full
//! Responses event stream (`response.created` ... `response.completed`, each event with its
//! `sequence_number`). As a provider dialect (the native pass-through) its answers are decoded
//! for the response cache's canonical records and for the conformance corpus.
//!
//! Errors have OpenAI's shape (`{"error":{message,type,param,code}}`), over HTTP and inside
//! streams (the `error` event, then `response.failed`).
//!
//! Conversation state (`previous_response_id`) is not this module's: the gateway expands it
//! into `input` items before decoding (see `crate::conversation`).
//!
//! Files: `request_decode` (client body -> canonical), `request_encode` (canonical -> body),
//! `response` (whole answers both ways, output items, usage), `stream_decode` (Responses SSE ->
//! canonical events), `stream_encode` (canonical events -> Responses SSE).

mod request_decode;
mod request_encode;
mod response;
mod stream_decode;
mod stream_encode;

#[cfg(test)]
mod tests_request;
#[cfg(test)]
mod tests_response;
#[cfg(test)]
mod tests_stream;

pub use crate::dialect::openai::{decode_error, encode_error};
pub use request_decode::decode_request;
pub use request_encode::encode_request;
pub use response::{decode_response, encode_response, encode_response_with, output_items};
pub use stream_decode::stream_decoder;
pub use stream_encode::stream_encoder;

use crate::dialect::canonical::prefixed_id;

/// The `resp_` id a client sees for an answer whose provider id is `id` (made up when empty).
pub fn response_id(id: &str) -> String {
    prefixed_id("resp_", id)
}

/// The suffix shared by the ids of one answer's output items (`msg_<suffix>_<n>`, ...).
fn item_suffix(response_id: &str) -> &str {
    response_id.strip_prefix("resp_").unwrap_or(response_id)
}

/// Encrypted-content marker of a reasoning item that carries Anthropic `redacted_thinking`
/// data (a client hands `encrypted_content` back untouched, so the kind survives the trip).
const REDACTED_PREFIX: &str = "sy-redacted:";
