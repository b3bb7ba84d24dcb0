//! Any bytes, read as a streamed answer in any dialect and written in any dialect, never
//! panic, and the client's stream always ends well-formed: OpenAI with `data: [DONE]`,
//! Anthropic with `message_stop` (or, after an in-stream error, with that `error` event),
//! Responses with `response.created` first and a terminal event last (`response.completed`,
//! `.incomplete`, or `.failed` after an error), its `sequence_number`s counting from 0 with no
//! gap; every event's data JSON.
//!
//! Input: byte 0 picks where the rest is split in two chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::dialect::canonical::StreamEncoderOptions;
use switchyard::dialect::translate::ResponseTranslator;
use switchyard::dialect::Dialect;
use switchyard::usage::SseParser;

const DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::Responses,
];

/// The client's stream as (event name, data) pairs; every data is JSON (or OpenAI's `[DONE]`).
fn events_of(to: Dialect, out: &[u8]) -> Vec<(Option<String>, String)> {
    let text = std::str::from_utf8(out).expect("a translated stream is UTF-8");
    let mut p = SseParser::new();
    let mut events = p.feed(out);
    events.extend(p.finish());
    let mut seen = Vec::new();
    for ev in events {
        if !(to == Dialect::OpenAi && ev.data == "[DONE]") {
            serde_json::from_str::<serde_json::Value>(&ev.data).unwrap_or_else(|e| {
                panic!(
                    "{to:?} event data is not JSON ({e}): {:?}\nstream: {text}",
                    ev.data
                )
            });
        }
        seen.push((ev.event, ev.data));
    }
    seen
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let split = sel as usize % (data.len() + 1);
    let (a, b) = data.split_at(split);
    for from in DIALECTS {
        for to in DIALECTS {
            let opts = StreamEncoderOptions {
                include_usage: sel & 1 == 1,
                model: "fuzz-model".into(),
                ..Default::default()
            };
            let mut t = ResponseTranslator::stream(from, to, opts);
            let mut out = Vec::new();
            out.extend_from_slice(&t.feed(a));
            out.extend_from_slice(&t.feed(b));
            out.extend_from_slice(&t.finish());
            // Nothing after the end.
            assert!(t.feed(b"data: {}\n\n").is_empty());
            assert!(t.finish().is_empty());
            let events = events_of(to, &out);
            let text = String::from_utf8_lossy(&out);
            match to {
                Dialect::OpenAi => {
                    assert!(
                        out.ends_with(b"data: [DONE]\n\n"),
                        "{from:?} -> OpenAI does not end with [DONE]: {text}"
                    );
                    let dones = events.iter().filter(|(_, d)| d == "[DONE]").count();
                    assert_eq!(dones, 1, "{from:?} -> OpenAI: [DONE] {dones} times: {text}");
                }
                Dialect::Anthropic => {
                    let last = events.last().and_then(|(e, _)| e.as_deref());
                    assert!(
                        matches!(last, Some("message_stop") | Some("error")),
                        "{from:?} -> Anthropic ends with {last:?}: {text}"
                    );
                    let first = events.first().and_then(|(e, _)| e.as_deref());
                    if last == Some("message_stop") {
                        assert_eq!(
                            first,
                            Some("message_start"),
                            "{from:?} -> Anthropic: {text}"
                        );
                    }
                    let stops = events
                        .iter()
                        .filter(|(e, _)| e.as_deref() == Some("message_stop"))
                        .count();
                    assert!(
                        stops <= 1,
                        "{from:?} -> Anthropic: {stops} message_stop: {text}"
                    );
                }
                Dialect::Responses => {
                    let first = events.first().and_then(|(e, _)| e.as_deref());
                    let last = events.last().and_then(|(e, _)| e.as_deref());
                    assert_eq!(first, Some("response.created"), "{from:?} -> Responses: {text}");
                    assert!(
                        matches!(
                            last,
                            Some("response.completed" | "response.incomplete" | "response.failed")
                        ),
                        "{from:?} -> Responses ends with {last:?}: {text}"
                    );
                    for (i, (name, data)) in events.iter().enumerate() {
                        let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
                        assert_eq!(v["sequence_number"], i, "{from:?} -> Responses: {text}");
                        assert_eq!(v["type"].as_str(), name.as_deref(), "{from:?}: {text}");
                    }
                }
                Dialect::Gemini => {}
            }
        }
    }
});
