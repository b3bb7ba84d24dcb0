//! The incremental SSE parser gives the same events however its input is split.
//!
//! Input: byte 0 picks the split point (and, for a second parser, a small line cap so the
//! overflow paths run too); the rest is the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::usage::{SseEvent, SseParser};

struct Run {
    events: Vec<SseEvent>,
    last_event_id: String,
    retry: Option<u64>,
    overflowed: bool,
}

fn run(make: impl Fn() -> SseParser, pieces: &[&[u8]]) -> Run {
    let mut p = make();
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(p.feed(piece));
    }
    events.extend(p.finish());
    // finish() leaves nothing behind: a second one dispatches nothing.
    assert_eq!(p.finish(), None);
    assert_eq!(p.buffered_len(), 0);
    Run {
        events,
        last_event_id: p.last_event_id().to_owned(),
        retry: p.retry(),
        overflowed: p.overflowed(),
    }
}

fn check(make: impl Fn() -> SseParser, data: &[u8], split: usize) {
    let whole = run(&make, &[data]);
    let (a, b) = data.split_at(split);
    let split_run = run(&make, &[a, b]);
    assert_eq!(whole.events, split_run.events, "split at {split}");
    assert_eq!(whole.last_event_id, split_run.last_event_id);
    assert_eq!(whole.retry, split_run.retry);
    assert_eq!(whole.overflowed, split_run.overflowed);
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let split = sel as usize % (data.len() + 1);
    check(SseParser::new, data, split);
    // A tiny cap (1..=16 bytes) exercises the dropped-line and dropped-data paths.
    let cap = 1 + (sel as usize >> 4);
    check(|| SseParser::with_max_line(cap), data, split);
});
