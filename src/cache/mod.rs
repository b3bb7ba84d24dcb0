//! Opt-in response caching on pingora-cache.
//!
//! - [`key`]: the canonical request hash every entry is found by (scoped by gateway key or a
//!   configured namespace by the proxy).
//! - [`record`]: answers are stored as canonical records, so one entry replays to OpenAI and
//!   Anthropic clients, streamed or not.
pub mod key;
pub mod record;
