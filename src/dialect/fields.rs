//! Where the top-level fields routing reads sit in a request body, found by the request probe
//! ([`super::probe`]) in the one pass that validates the body, so that nothing later has to
//! parse (or even scan) the whole body again.
//!
//! A body can be large for reasons routing does not care about (a 1 MiB field of its own, a
//! long tool schema); what routing needs is small: the prompt-bearing fields for a size bound
//! and the image check, the output limit, tools, metadata and the response format. Each is kept
//! as a byte range of the body; [`crate::routing::Features`] parses just the ranges it needs,
//! and only when it needs them.

use std::ops::Range;

/// A top-level body field routing reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Chat Completions and Anthropic `messages`.
    Messages,
    /// Anthropic `system`.
    System,
    /// Responses `input` (a string or items).
    Input,
    /// Responses `instructions`.
    Instructions,
    /// Gemini `contents`.
    Contents,
    /// Gemini `systemInstruction` (or `system_instruction`).
    SystemInstruction,
    /// `tools` (every dialect).
    Tools,
    MaxTokens,
    MaxCompletionTokens,
    /// Responses `max_output_tokens`.
    MaxOutputTokens,
    /// OpenAI `metadata`, Anthropic `metadata.user_id`.
    Metadata,
    /// Chat Completions `response_format`.
    ResponseFormat,
    /// Responses `text` (its `format`).
    Text,
    /// Anthropic structured outputs' `output_format`.
    OutputFormat,
    /// Gemini `generationConfig` (or `generation_config`).
    GenerationConfig,
}

/// How many [`Field`]s there are.
const COUNT: usize = 15;
const _: () = assert!(Field::GenerationConfig as usize + 1 == COUNT);

/// The fields that carry the prompt: their text is what the prompt-token estimate reads.
pub const PROMPT: [Field; 6] = [
    Field::Messages,
    Field::System,
    Field::Input,
    Field::Instructions,
    Field::Contents,
    Field::SystemInstruction,
];

/// The byte ranges of a body's [`Field`]s (each the field's JSON value, as written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyFields {
    spans: [Option<(usize, usize)>; COUNT],
}

impl BodyFields {
    /// Records where `field`'s value is.
    pub fn set(&mut self, field: Field, span: Range<usize>) {
        self.spans[field as usize] = Some((span.start, span.end));
    }

    /// Where `field`'s value is, if the body has it.
    pub fn span(&self, field: Field) -> Option<Range<usize>> {
        self.spans[field as usize].map(|(s, e)| s..e)
    }

    /// Moves the spans at or after `from` by `added - removed` bytes: the body had `removed`
    /// bytes before `from` replaced by `added` (no span may straddle the change).
    pub fn shift(&mut self, from: usize, removed: usize, added: usize) {
        for (s, e) in self.spans.iter_mut().flatten() {
            if *s >= from {
                *s = *s - removed + added;
                *e = *e - removed + added;
            }
        }
    }

    /// `field`'s JSON value in `body` (the body these spans were found in), if present.
    pub fn get<'b>(&self, body: &'b [u8], field: Field) -> Option<&'b [u8]> {
        self.span(field).and_then(|r| body.get(r))
    }

    /// The bytes of the prompt-bearing fields, JSON as written: never less than the bytes of
    /// the prompt's text (an escape is longer than the character it stands for).
    pub fn prompt_bytes(&self) -> usize {
        PROMPT
            .iter()
            .filter_map(|&f| self.span(f))
            .map(|r| r.len())
            .sum()
    }

    /// The fields found in `body`, for callers that have no probe (tests, tools): what
    /// [`super::probe::probe_request`] records, or none for a body that is not a JSON object.
    pub fn of(body: &[u8]) -> BodyFields {
        super::probe::fields_of(body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_kept_per_field_and_the_prompt_sums() {
        let mut f = BodyFields::default();
        assert_eq!(f.prompt_bytes(), 0);
        f.set(Field::Messages, 3..10);
        f.set(Field::SystemInstruction, 20..25);
        f.set(Field::Tools, 30..90);
        assert_eq!(f.span(Field::Messages), Some(3..10));
        assert_eq!(f.span(Field::Input), None);
        assert_eq!(f.prompt_bytes(), 12);
        let body = [b'x'; 40];
        assert_eq!(f.get(&body, Field::Messages).map(<[u8]>::len), Some(7));
        assert_eq!(f.get(&body, Field::Tools), None, "out of range is absent");
        // Bytes 10..12 became 5 bytes: what is after moves by 3, what is before stays.
        f.shift(12, 2, 5);
        assert_eq!(f.span(Field::Messages), Some(3..10));
        assert_eq!(f.span(Field::SystemInstruction), Some(23..28));
        assert_eq!(f.span(Field::Tools), Some(33..93));
    }
}
