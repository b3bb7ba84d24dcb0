//! Cached records: any line read as a record line, and any bytes replayed as a record to any
//! client dialect, streamed or whole, never panic. A line that decodes re-encodes to the same
//! event; a replayed stream ends well-formed; a replayed whole answer is a JSON object. Any
//! bytes tapped as a provider's answer give a record whose every line decodes.
//!
//! Input: byte 0 picks where the rest is split in two chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::cache::record::{Renderer, Tap};
use switchyard::dialect::canonical::StreamEncoderOptions;
use switchyard::dialect::replay::{decode_line, encode_line};
use switchyard::dialect::Dialect;

const DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::Responses,
];

fn render(to: Dialect, stream: bool, a: &[u8], b: &[u8]) {
    let opts = StreamEncoderOptions {
        include_usage: true,
        model: "fuzz-model".into(),
        ..Default::default()
    };
    let mut r = Renderer::new(to, stream, opts);
    let mut out = Vec::new();
    out.extend_from_slice(&r.feed(a));
    out.extend_from_slice(&r.feed(b));
    out.extend_from_slice(&r.finish());
    assert!(r.finish().is_empty(), "finish() twice");
    let _ = r.usage();
    let text = String::from_utf8_lossy(&out);
    if !stream {
        let v: serde_json::Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("whole replay to {to:?} is not JSON ({e}): {text}"));
        assert!(v.is_object(), "whole replay to {to:?}: {text}");
    } else if to == Dialect::OpenAi {
        assert!(
            out.ends_with(b"data: [DONE]\n\n"),
            "streamed replay to OpenAI: {text}"
        );
    } else if to == Dialect::Responses {
        let t = text.trim_end();
        let last = t.rsplit("\n\n").next().unwrap_or_default();
        assert!(
            ["response.completed", "response.incomplete", "response.failed"]
                .iter()
                .any(|e| last.starts_with(&format!("event: {e}\n"))),
            "streamed replay to Responses: {text}"
        );
    } else if to == Dialect::Anthropic {
        let t = text.trim_end();
        assert!(
            t.ends_with("{\"type\":\"message_stop\"}")
                || t.rsplit("\n\n")
                    .next()
                    .is_some_and(|l| l.starts_with("event: error\n")),
            "streamed replay to Anthropic: {text}"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    // Lines: a decoded line round-trips.
    for line in data.split(|&b| b == b'\n') {
        if let Some(ev) = decode_line(line) {
            let mut again = Vec::new();
            encode_line(&ev, &mut again);
            assert_eq!(again.last(), Some(&b'\n'));
            assert_eq!(
                decode_line(&again[..again.len() - 1]).as_ref(),
                Some(&ev),
                "line {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
    let split = sel as usize % (data.len() + 1);
    let (a, b) = data.split_at(split);
    // Replay: the bytes as a record.
    for to in DIALECTS {
        for stream in [false, true] {
            render(to, stream, a, b);
        }
    }
    // Tap: the bytes as a provider's answer; the record it makes replays.
    for from in DIALECTS {
        for stream in [true, false] {
            let mut tap = Tap::new(from, stream);
            let mut rec = Vec::new();
            rec.extend_from_slice(&tap.feed(a));
            rec.extend_from_slice(&tap.feed(b));
            rec.extend_from_slice(&tap.finish());
            let _ = (tap.storable(true), tap.failed());
            if !rec.is_empty() {
                assert_eq!(rec.last(), Some(&b'\n'), "a record ends with a newline");
            }
            for line in rec.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                assert!(
                    decode_line(line).is_some(),
                    "a tapped record line does not decode: {}",
                    String::from_utf8_lossy(line)
                );
            }
            let (ra, rb) = rec.split_at(rec.len() / 2);
            render(Dialect::Anthropic, true, ra, rb);
            render(Dialect::OpenAi, false, ra, rb);
            render(Dialect::Responses, true, ra, rb);
        }
    }
});
