//! Recorded provider bodies and streams under `tests/fixtures/usage/`, each with a sibling
//! `NAME.expected.json` holding the exact expected [`Usage`] (or `null`). The dialect comes
//! from the name's prefix (`openai_`, `anthropic_`, `gemini_`, `responses_`); `.sse` and `.stream.json`
//! files are streams, other `.json` files non-streaming bodies. Every fixture is fed through a
//! [`StreamTally`] whole, split at every single point, and split at random points.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;

use super::{StreamTally, Usage};
use crate::dialect::Dialect;

struct Fixture {
    name: String,
    wire: Dialect,
    streaming: bool,
    body: Vec<u8>,
    expected: Option<Usage>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/usage")
}

fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if file.starts_with('.') || file.ends_with(".expected.json") {
            continue;
        }
        let (stem, streaming) = if let Some(s) = file.strip_suffix(".sse") {
            (s, true)
        } else if let Some(s) = file.strip_suffix(".stream.json") {
            (s, true)
        } else if let Some(s) = file.strip_suffix(".json") {
            (s, false)
        } else {
            panic!("unexpected fixture file {file}");
        };
        let wire = if stem.starts_with("openai_") {
            Dialect::OpenAi
        } else if stem.starts_with("anthropic_") {
            Dialect::Anthropic
        } else if stem.starts_with("gemini_") {
            Dialect::Gemini
        } else if stem.starts_with("responses_") {
            Dialect::Responses
        } else {
            panic!("fixture {file}: name must start with its dialect");
        };
        let expected_path = dir().join(format!("{stem}.expected.json"));
        let expected_text = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        let expected: Option<Usage> = serde_json::from_str(&expected_text)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        out.push(Fixture {
            name: file.clone(),
            wire,
            streaming,
            body: std::fs::read(&path).unwrap(),
            expected,
        });
    }
    assert!(out.len() >= 10, "fixtures missing: {}", out.len());
    out
}

/// What a stripping tally must send: the input without the `\n\n`-framed event(s) whose JSON
/// has `"choices": []` and a `usage` object.
fn stripped(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = String::new();
    for block in text.split_inclusive("\n\n") {
        let usage_only = block
            .strip_prefix("data: ")
            .and_then(|d| serde_json::from_str::<Value>(d.trim_end()).ok())
            .is_some_and(|v| {
                v["choices"].as_array().is_some_and(Vec::is_empty) && v["usage"].is_object()
            });
        if !usage_only {
            out.push_str(block);
        }
    }
    out.into_bytes()
}

struct Run {
    out: Vec<u8>,
    usage: Option<Usage>,
    terminal: bool,
    chars: usize,
}

fn run(f: &Fixture, strip: bool, cuts: &[usize]) -> Run {
    let body = Bytes::from(f.body.clone());
    let mut tally = StreamTally::new(f.wire, f.streaming, strip);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        out.extend_from_slice(&tally.feed(body.slice(start..cut)));
        start = cut;
    }
    out.extend_from_slice(&tally.finish());
    Run {
        out,
        usage: tally.usage(),
        terminal: tally.saw_terminal_event(),
        chars: tally.output_text_chars(),
    }
}

/// The bytes the client must get.
fn client_bytes(f: &Fixture, strip: bool) -> Vec<u8> {
    if strip && f.streaming && f.wire == Dialect::OpenAi {
        stripped(&f.body)
    } else {
        f.body.clone()
    }
}

fn check(f: &Fixture, strip: bool, cuts: &[usize], whole: &Run) {
    let r = run(f, strip, cuts);
    let what = format!("{} strip={strip} cuts={cuts:?}", f.name);
    assert_eq!(r.usage, f.expected, "{what}");
    assert!(r.terminal, "{what}: no terminal event");
    assert_eq!(r.chars, whole.chars, "{what}: output chars");
    assert!(r.out == whole.out, "{what}: client bytes differ");
}

/// Stripping only ever applies to OpenAI streams; elsewhere it is the same code path.
fn strip_modes(f: &Fixture) -> &'static [bool] {
    if f.streaming && f.wire == Dialect::OpenAi {
        &[false, true]
    } else {
        &[false]
    }
}

/// Every fixture split once at every point. OpenAI streams run with stripping on (the path
/// that reads events and also rewrites bytes); with it off they take the read-only path the
/// other streams take here, and get the random and byte-by-byte splits below.
#[test]
fn usage_fixtures_whole_and_at_every_split_point() {
    for f in fixtures() {
        let strip = f.streaming && f.wire == Dialect::OpenAi;
        let whole = run(&f, strip, &[]);
        assert!(whole.chars > 0, "{}: no output text counted", f.name);
        assert!(whole.out == client_bytes(&f, strip), "{}", f.name);
        check(&f, strip, &[], &whole);
        // Split points are spread over threads: a debug build parses slowly.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (f, whole) = (&f, &whole);
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || {
                    for cut in (t..=f.body.len()).step_by(threads) {
                        check(f, strip, &[cut], whole);
                    }
                });
            }
        });
    }
}

#[test]
fn usage_fixtures_at_random_multi_splits_and_byte_by_byte() {
    let mut rng = super::tests::Rng(0x5eed_1234_abcd_9876);
    for f in fixtures() {
        for &strip in strip_modes(&f) {
            let whole = run(&f, strip, &[]);
            assert!(
                whole.out == client_bytes(&f, strip),
                "{}: client bytes",
                f.name
            );
            let bytewise: Vec<usize> = (1..f.body.len()).collect();
            check(&f, strip, &bytewise, &whole);
            for _ in 0..40 {
                let cuts = rng.cuts(f.body.len(), 40);
                check(&f, strip, &cuts, &whole);
            }
        }
    }
}

#[test]
fn usage_fixture_stripping_removes_exactly_the_usage_chunk() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "openai_chat_stream_include_usage.sse")
        .unwrap();
    let out = run(&f, true, &[]).out;
    let removed = f.body.len() - out.len();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("\"choices\":[]"));
    assert!(text.ends_with("\"obfuscation\":\"R2d\"}\n\ndata: [DONE]\n\n"));
    assert!(removed > 200, "removed {removed} bytes");
    // Without stripping the chunk goes through and is still read.
    assert!(run(&f, false, &[]).out == f.body);
}

/// A stream cut anywhere (client gone, connection lost) never reports a wrong usage: either
/// the exact final one (its event was complete) or none.
#[test]
fn usage_fixtures_cut_short_report_exact_usage_or_none() {
    for f in fixtures().into_iter().filter(|f| f.streaming) {
        let step = (f.body.len() / 300).max(1);
        let mut seen_final = false;
        for cut in (0..f.body.len()).step_by(step) {
            let mut tally = StreamTally::new(f.wire, true, true);
            let mut out = tally.feed(Bytes::copy_from_slice(&f.body[..cut])).to_vec();
            out.extend_from_slice(&tally.finish());
            let got = tally.usage();
            assert!(got.is_none() || got == f.expected, "{} cut {cut}", f.name);
            assert!(!seen_final || got.is_some(), "{} cut {cut}", f.name);
            seen_final |= got.is_some();
            assert!(f.body.starts_with(&out) || f.wire == Dialect::OpenAi);
        }
    }
}
