//! One OpenAI stream chunk (`chat.completion.chunk`), read without building a JSON tree: the
//! fields the usage tally needs are borrowed from the event's text, the rest skipped. A stream
//! of 20 events read through `serde_json::Value` spent about a fifth of the gateway's
//! instructions per request on building and dropping the trees (callgrind, issue #20).
//!
//! Anything this reader does not expect (a field of another type, an escaped key) makes
//! [`Chunk::parse`] return `None`, and the caller reads the event the general way: odd chunks
//! cost more, never lose usage.

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The chunk's parts the tally reads.
#[derive(Default)]
pub(crate) struct Chunk<'a> {
    /// `None`: absent or `null`.
    pub choices: Option<Vec<Choice<'a>>>,
    /// `usage` as written (`null` on most chunks).
    pub usage: Option<&'a RawValue>,
    /// Groq's `x_groq` (its usage lives there).
    pub x_groq: Option<&'a RawValue>,
    /// Whether a top-level key outside `known` was present.
    pub other_keys: bool,
}

#[derive(Deserialize)]
pub(crate) struct Choice<'a> {
    #[serde(borrow, default)]
    pub delta: Option<Message<'a>>,
    #[serde(borrow, default)]
    pub text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub reasoning: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub refusal: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow, default)]
    pub function_call: Option<Function<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct ToolCall<'a> {
    #[serde(borrow, default)]
    pub function: Option<Function<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct Function<'a> {
    #[serde(borrow, default)]
    pub arguments: Option<&'a RawValue>,
}

impl<'a> Chunk<'a> {
    /// Reads `data` (one event's JSON object); `known` lists the top-level keys that do not
    /// count as [`Chunk::other_keys`].
    pub fn parse(data: &'a str, known: &'static [&'static str]) -> Option<Chunk<'a>> {
        let mut de = serde_json::Deserializer::from_str(data);
        let chunk = de.deserialize_map(ChunkVisitor(known, PhantomData)).ok()?;
        de.end().ok()?;
        Some(chunk)
    }
}

struct ChunkVisitor<'a>(&'static [&'static str], PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ChunkVisitor<'a> {
    type Value = Chunk<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chunk object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Chunk<'a>, A::Error> {
        let mut c = Chunk::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            c.other_keys |= !self.0.contains(&key);
            match key {
                "choices" => c.choices = map.next_value()?,
                "usage" => c.usage = Some(map.next_value()?),
                "x_groq" => c.x_groq = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(c)
    }
}

/// A JSON string's text, borrowed when it has no escapes; `None` for `null` or a non-string.
pub(crate) fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let s = raw?.get();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(s).ok().map(Cow::Owned)
}

/// Whether a raw value is JSON `null` (or absent).
pub(crate) fn is_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| r.get() == "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["id", "object", "model", "choices", "usage"];

    #[test]
    fn reads_deltas_tools_and_usage_and_notices_other_keys() {
        let data = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,
            "delta":{"content":"Hel\"lo","tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},
            "finish_reason":null}],"usage":null}"#;
        let c = Chunk::parse(data, KNOWN).unwrap();
        let choice = &c.choices.as_ref().unwrap()[0];
        let delta = choice.delta.as_ref().unwrap();
        assert_eq!(text(delta.content).as_deref(), Some("Hel\"lo"));
        let call = &delta.tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            text(call.function.as_ref().unwrap().arguments).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert!(is_null(choice.finish_reason) && is_null(c.usage) && !c.other_keys);
        let extra = Chunk::parse(r#"{"choices":[],"usage":{"prompt_tokens":1},"x":1}"#, KNOWN);
        assert!(extra.unwrap().other_keys);
        // A field of an unexpected type: the caller reads the event the general way.
        assert!(Chunk::parse(r#"{"choices":[{"delta":"text"}]}"#, KNOWN).is_none());
        assert!(Chunk::parse(r#"{"choices":[]} trailing"#, KNOWN).is_none());
        assert_eq!(
            text(Some(&*RawValue::from_string("3".into()).unwrap())),
            None
        );
    }
}
