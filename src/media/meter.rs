//! What a media answer used, read from the provider's bytes as they pass, and its price.
//!
//! - Images: the count of `data` entries; the `usage` tokens when the provider reports them
//!   (gpt-image-1). Priced by tokens when reported and the model has token prices, else per
//!   image by the request's size and quality ([`crate::pricing::ModelPrice::per_image_for`]).
//! - Speech to text: audio seconds from the answer's `usage` (`{"type":"duration"}`) or
//!   `duration` (verbose_json), else from the uploaded file's header (WAV); tokens from
//!   `usage` (`{"type":"tokens"}`). Priced per second when the model has a per-second price,
//!   else by tokens when reported.
//! - Text to speech: the input's characters (known from the request). Priced per character,
//!   else by tokens when reported. The audio itself is only counted, never kept.
//!
//! JSON answers are kept (bounded by [`MAX_JSON`]) and read at the end; anything unreadable
//! leaves the quantity unknown, and a quantity the model is not priced by makes the cost
//! unknown (recorded as such), never $0.

use super::Facts;
use crate::endpoints::Unit;
use crate::pricing::{Cost, ModelPrice, Units};
use crate::usage::Usage;
use serde_json::Value;

/// Largest JSON answer read for its quantities (base64 images make answers large).
pub const MAX_JSON: usize = 64 << 20;

/// Reads one media answer.
#[derive(Debug)]
pub struct Meter {
    unit: Unit,
    /// Keep the body (JSON answers); audio is only counted.
    keep: bool,
    body: Vec<u8>,
    overflowed: bool,
    bytes: u64,
    /// The result, once read.
    done: Option<Measured>,
}

/// What an answer used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// Images, billed seconds or characters; `None` when unknown.
    pub quantity: Option<u64>,
    /// Tokens the provider reported (zero when none).
    pub usage: Usage,
    pub tokens_reported: bool,
    /// Bytes of the answer.
    pub bytes: u64,
}

impl Meter {
    pub fn new(unit: Unit, binary: bool) -> Meter {
        Meter {
            unit,
            keep: !binary,
            body: Vec::new(),
            overflowed: false,
            bytes: 0,
            done: None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.done.is_some() {
            return;
        }
        self.bytes += chunk.len() as u64;
        if !self.keep || self.overflowed {
            return;
        }
        if self.body.len() + chunk.len() > MAX_JSON {
            log::warn!("media answer over {MAX_JSON} bytes: its quantities are not read");
            self.overflowed = true;
            self.body = Vec::new();
        } else {
            self.body.extend_from_slice(chunk);
        }
    }

    /// The quantities, given what the request told (`facts`); read once, then remembered.
    pub fn finish(&mut self, facts: &Facts) -> Measured {
        if let Some(m) = &self.done {
            return m.clone();
        }
        let m = self.read(facts);
        self.done = Some(m.clone());
        m
    }

    fn read(&mut self, facts: &Facts) -> Measured {
        let body = std::mem::take(&mut self.body);
        let json: Option<Value> = (self.keep && !self.overflowed)
            .then(|| serde_json::from_slice(&body).ok())
            .flatten();
        let (usage, tokens_reported) = json
            .as_ref()
            .and_then(reported_tokens)
            .map_or((Usage::default(), false), |u| (u, true));
        let quantity = match self.unit {
            Unit::Images => json
                .as_ref()
                .and_then(|v| v.get("data")?.as_array().map(|d| d.len() as u64)),
            Unit::Seconds => json
                .as_ref()
                .and_then(reported_seconds)
                .or(facts.audio_seconds)
                .map(billed_seconds),
            Unit::Characters => Some(facts.characters),
            Unit::Tokens => Some(usage.total()),
        };
        Measured {
            quantity,
            usage,
            tokens_reported,
            bytes: self.bytes,
        }
    }
}

/// Whole seconds, rounded up (a provider bills a started second).
fn billed_seconds(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        s.ceil() as u64
    } else {
        0
    }
}

/// Tokens reported in `usage`: `input_tokens`/`output_tokens` (images, transcription), or
/// OpenAI chat-style `prompt_tokens`/`completion_tokens`.
fn reported_tokens(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    if u.get("type").and_then(Value::as_str) == Some("duration") {
        return None;
    }
    let input =
        crate::usage::count(u, "input_tokens").or_else(|| crate::usage::count(u, "prompt_tokens"));
    let output = crate::usage::count(u, "output_tokens")
        .or_else(|| crate::usage::count(u, "completion_tokens"));
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(Usage {
        input: input.unwrap_or(0),
        output: output.unwrap_or(0),
        ..Usage::default()
    })
}

/// Audio seconds an answer reports: `usage.seconds` (type duration) or `duration`.
fn reported_seconds(v: &Value) -> Option<f64> {
    let from_usage = v
        .get("usage")
        .filter(|u| u.get("type").and_then(Value::as_str) == Some("duration"))
        .and_then(|u| u.get("seconds"))
        .and_then(Value::as_f64);
    from_usage.or_else(|| v.get("duration").and_then(Value::as_f64))
}

/// The cost of a measured answer at `price`; `None` when the model is not priced by what the
/// answer used.
pub fn cost(price: &ModelPrice, unit: Unit, m: &Measured, facts: &Facts) -> Option<Cost> {
    let tokens = || {
        (m.tokens_reported && price.input.is_some())
            .then(|| price.cost(&m.usage))
            .flatten()
    };
    match unit {
        Unit::Tokens => price.cost(&m.usage),
        Unit::Images => tokens().or_else(|| {
            let per = price.per_image_for(facts.size.as_deref(), facts.quality.as_deref())?;
            let mut p = price.clone();
            p.per_image = Some(per);
            p.cost_with_units(
                &Usage::default(),
                &Units {
                    images: m.quantity?,
                    ..Units::default()
                },
            )
        }),
        Unit::Seconds => match (price.per_second, m.quantity) {
            (Some(_), Some(seconds)) => price.cost_with_units(
                &Usage::default(),
                &Units {
                    seconds,
                    ..Units::default()
                },
            ),
            _ => tokens(),
        },
        Unit::Characters => match price.per_character {
            Some(_) => price.cost_with_units(
                &Usage::default(),
                &Units {
                    characters: m.quantity?,
                    ..Units::default()
                },
            ),
            None => tokens(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{PriceBook, PriceDate};
    use rust_decimal::Decimal;

    fn price(provider: &str, model: &str) -> ModelPrice {
        PriceBook::builtin()
            .lookup(provider, model, PriceDate::parse("2026-12-01").unwrap())
            .unwrap()
            .clone()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn measure(unit: Unit, body: &str, facts: &Facts) -> Measured {
        let mut m = Meter::new(unit, false);
        for piece in body.as_bytes().chunks(7) {
            m.feed(piece);
        }
        m.finish(facts)
    }

    #[test]
    fn images_by_size_and_quality_or_by_tokens() {
        let facts = Facts {
            size: Some("1792x1024".into()),
            quality: Some("hd".into()),
            ..Facts::default()
        };
        let m = measure(
            Unit::Images,
            r#"{"created":1,"data":[{"url":"u"},{"url":"v"}]}"#,
            &facts,
        );
        assert_eq!(m.quantity, Some(2));
        let c = cost(&price("openai", "dall-e-3"), Unit::Images, &m, &facts).unwrap();
        assert_eq!(c.total, d("0.240"));
        let plain = Facts::default();
        let c = cost(&price("openai", "dall-e-3"), Unit::Images, &m, &plain).unwrap();
        assert_eq!(c.total, d("0.080"));
        // gpt-image-1 reports tokens: 50 in at $5, 4160 out at $40 per million.
        let body = r#"{"data":[{"b64_json":"AA=="}],"usage":{"input_tokens":50,"output_tokens":4160,"total_tokens":4210}}"#;
        let m = measure(Unit::Images, body, &plain);
        assert!(m.tokens_reported);
        let c = cost(&price("openai", "gpt-image-1"), Unit::Images, &m, &plain).unwrap();
        assert_eq!(c.total, d("0.16665"));
    }

    #[test]
    fn audio_seconds_from_the_answer_or_the_file() {
        let facts = Facts {
            audio_seconds: Some(61.2),
            ..Facts::default()
        };
        let m = measure(Unit::Seconds, r#"{"text":"hi"}"#, &facts);
        assert_eq!(m.quantity, Some(62));
        let c = cost(
            &price("groq", "whisper-large-v3-turbo"),
            Unit::Seconds,
            &m,
            &facts,
        )
        .unwrap();
        assert_eq!(c.total, d("0.0006888882"));
        let m = measure(
            Unit::Seconds,
            r#"{"text":"hi","usage":{"type":"duration","seconds":9}}"#,
            &facts,
        );
        assert_eq!(m.quantity, Some(9));
        let m = measure(
            Unit::Seconds,
            r#"{"task":"transcribe","duration":2.5}"#,
            &Facts::default(),
        );
        assert_eq!(m.quantity, Some(3));
        // Billed by tokens; no duration known.
        let body =
            r#"{"text":"hi","usage":{"type":"tokens","input_tokens":100,"output_tokens":10}}"#;
        let m = measure(Unit::Seconds, body, &Facts::default());
        assert_eq!(m.quantity, None);
        let c = cost(
            &price("openai", "gpt-4o-transcribe"),
            Unit::Seconds,
            &m,
            &Facts::default(),
        );
        assert_eq!(c.unwrap().total, d("0.0007"));
        // Plain text, no header: unknown, never $0.
        let m = measure(Unit::Seconds, "hello there", &Facts::default());
        assert_eq!(
            cost(
                &price("groq", "whisper-large-v3"),
                Unit::Seconds,
                &m,
                &Facts::default()
            ),
            None
        );
    }

    #[test]
    fn speech_by_characters_audio_only_counted() {
        let facts = Facts {
            characters: 1000,
            ..Facts::default()
        };
        let mut m = Meter::new(Unit::Characters, true);
        m.feed(&[0u8; 4096]);
        m.feed(&[0u8; 100]);
        let measured = m.finish(&facts);
        assert_eq!(measured.bytes, 4196);
        assert!(m.body.capacity() == 0);
        let book = crate::pricing::PriceBook::builtin();
        let tts = book
            .lookup("openai", "tts-1", PriceDate::parse("2026-12-01").unwrap())
            .unwrap();
        let c = cost(tts, Unit::Characters, &measured, &facts).unwrap();
        assert_eq!(c.total, d("0.015"));
        // Token-priced speech with no usage reported: unknown.
        assert_eq!(
            cost(
                &price("openai", "gpt-4o-mini-tts"),
                Unit::Characters,
                &measured,
                &facts
            ),
            None
        );
    }
}
