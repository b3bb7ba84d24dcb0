//! Unit tests: the SSE parser (WHATWG rules, every chunk split, caps), per-dialect
//! normalisation, `StreamTally` stripping and pass-through, estimates.

use bytes::Bytes;

use super::estimate::{OutputText, MAX_KEPT_OUTPUT};
use super::sse::{SseEvent, SseParser};
use super::{estimate_tokens, estimate_usage, usage_from_body, StreamTally, Usage};
use crate::dialect::Dialect;

/// Small deterministic PRNG (xorshift64*) for random split points.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Up to `max` sorted cut points in `0..=len` (duplicates allowed: empty chunks).
    pub(crate) fn cuts(&mut self, len: usize, max: usize) -> Vec<usize> {
        let n = (self.next() as usize) % (max + 1);
        let mut cuts: Vec<usize> = (0..n).map(|_| (self.next() as usize) % (len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }
}

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: event.map(str::to_string),
        data: data.to_string(),
    }
}

fn parse_split(input: &[u8], cuts: &[usize], max_line: usize) -> (Vec<SseEvent>, bool) {
    let mut p = SseParser::with_max_line(max_line);
    let mut events = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        events.extend(p.feed(&input[start..cut]));
        assert!(p.buffered_len() <= max_line);
        start = cut;
    }
    events.extend(p.finish());
    (events, p.overflowed())
}

fn parse(input: &[u8]) -> Vec<SseEvent> {
    parse_split(input, &[], usize::MAX).0
}

#[test]
fn usage_sse_whatwg_fields() {
    let input =
        b"\xEF\xBB\xBFdata: first\n\n: a comment\nevent: add\ndata:73857293\ndata:  two spaces\n\
id: 7\nretry: 1500\n\ndata\n\nevent: gone\n\nfoo: bar\ndata: x\n\ndata:\ndata:\n\n";
    let mut p = SseParser::new();
    let events = p.feed(input);
    assert_eq!(
        events,
        vec![
            ev(None, "first"),
            ev(Some("add"), "73857293\n two spaces"),
            ev(None, ""),
            // An event with no data is not dispatched, and its type does not carry over.
            ev(None, "x"),
            ev(None, "\n"),
        ]
    );
    assert_eq!(p.last_event_id(), "7");
    assert_eq!(p.retry(), Some(1500));
    assert!(!p.overflowed());
}

#[test]
fn usage_sse_line_endings_cr_lf_crlf() {
    let input = b"event: a\rdata: 1\r\rdata: 2\r\n\r\ndata: 3\n\ndata: 4\r\n\n";
    assert_eq!(
        parse(input),
        vec![
            ev(Some("a"), "1"),
            ev(None, "2"),
            ev(None, "3"),
            ev(None, "4")
        ]
    );
}

#[test]
fn usage_sse_invalid_retry_and_nul_id_ignored() {
    let mut p = SseParser::new();
    p.feed(b"id: ok\nretry: 10\n\nid: a\0b\nretry: 1x\ndata: d\n\n");
    assert_eq!(p.last_event_id(), "ok");
    assert_eq!(p.retry(), Some(10));
}

#[test]
fn usage_sse_finish_dispatches_unterminated_event() {
    let mut p = SseParser::new();
    assert!(p.feed(b"data: a\n\ndata: b\ndata: c").len() == 1);
    assert_eq!(p.finish(), Some(ev(None, "b\nc")));
    assert_eq!(p.finish(), None);
}

/// A stream exercising every framing rule, multibyte UTF-8 and each line ending.
const TRICKY: &[u8] = "\u{feff}: hi\r\nevent: m\u{e9}t\u{e9}o\r\ndata: {\"t\":\"Z\u{fc}rich \u{1f326}\"}\r\n\r\n\
data: a\rdata:b\r\rid: 1\nretry: 5\ndata\n\n:\n\nevent: x\ndata:  lead\n\n\r\ndata: \u{4e2d}\u{6587}\n\n"
    .as_bytes();

#[test]
fn usage_sse_same_events_at_every_split_point() {
    let whole = parse(TRICKY);
    assert_eq!(whole.len(), 5, "{whole:?}");
    assert_eq!(whole[0].event.as_deref(), Some("m\u{e9}t\u{e9}o"));
    for cut in 0..=TRICKY.len() {
        assert_eq!(
            parse_split(TRICKY, &[cut], usize::MAX).0,
            whole,
            "cut {cut}"
        );
    }
    let bytewise: Vec<usize> = (1..TRICKY.len()).collect();
    assert_eq!(parse_split(TRICKY, &bytewise, usize::MAX).0, whole);
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let cuts = rng.cuts(TRICKY.len(), 30);
        assert_eq!(parse_split(TRICKY, &cuts, usize::MAX).0, whole, "{cuts:?}");
    }
}

#[test]
fn usage_sse_overlong_line_dropped_with_flag_at_any_split() {
    let long = "x".repeat(100);
    let input =
        format!("data: short\n\ndata: {long}\ndata: kept\n\ndata: {long}\r\n\r\ndata: end\n\n");
    let expected = vec![ev(None, "short"), ev(None, "kept"), ev(None, "end")];
    let bytes = input.as_bytes();
    for cut in 0..=bytes.len() {
        let (events, overflowed) = parse_split(bytes, &[cut], 64);
        assert_eq!(events, expected, "cut {cut}");
        assert!(overflowed);
    }
    let mut rng = Rng(7);
    for _ in 0..500 {
        let cuts = rng.cuts(bytes.len(), 20);
        assert_eq!(parse_split(bytes, &cuts, 64).0, expected, "{cuts:?}");
    }
}

#[test]
fn usage_sse_event_data_cap_drops_the_event() {
    let input = b"data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\ndata: ok\n\n";
    let (events, overflowed) = parse_split(input, &[], 24);
    assert_eq!(events, vec![ev(None, "ok")]);
    assert!(overflowed);
}

// ---------------------------------------------------------------- dialects

fn usage(input: u64, output: u64, cached: u64, write: u64, reasoning: u64) -> Usage {
    Usage {
        input,
        output,
        cached_input: cached,
        cache_write: write,
        reasoning,
    }
}

fn tally_run(
    wire: Dialect,
    streaming: bool,
    strip: bool,
    chunks: &[&[u8]],
) -> (StreamTally, Vec<u8>) {
    let mut t = StreamTally::new(wire, streaming, strip);
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&t.feed(Bytes::copy_from_slice(c)));
    }
    out.extend_from_slice(&t.finish());
    (t, out)
}

#[test]
fn usage_openai_body_normalisation_saturates() {
    let body = br#"{"usage":{"prompt_tokens":10,"completion_tokens":5,
        "prompt_tokens_details":{"cached_tokens":12}}}"#;
    assert_eq!(
        usage_from_body(Dialect::OpenAi, body),
        Some(usage(0, 5, 12, 0, 0))
    );
    let floats = br#"{"usage":{"prompt_tokens":"7","completion_tokens":3.0}}"#;
    assert_eq!(
        usage_from_body(Dialect::OpenAi, floats),
        Some(usage(7, 3, 0, 0, 0))
    );
    assert_eq!(usage_from_body(Dialect::OpenAi, br#"{"usage":null}"#), None);
    assert_eq!(usage_from_body(Dialect::OpenAi, br#"{"usage":{}}"#), None);
    assert_eq!(usage_from_body(Dialect::OpenAi, b"not json"), None);
}

#[test]
fn usage_openai_stream_null_usage_ignored_last_usage_wins() {
    let s = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}],\"usage\":null}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n\
data: {\"choices\":[],\"usage\":null}\n\n";
    let (t, _) = tally_run(Dialect::OpenAi, true, false, &[s]);
    assert_eq!(t.usage(), Some(usage(9, 2, 0, 0, 0)));
    assert!(!t.saw_terminal_event(), "no [DONE]");
    assert_eq!(t.output_text_chars(), 8);
}

#[test]
fn usage_anthropic_delta_replaces_output_and_keeps_input() {
    let s = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":0,\"output_tokens\":77}}\n\n\
event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (t, _) = tally_run(Dialect::Anthropic, true, false, &[s]);
    assert_eq!(t.usage(), Some(usage(30, 77, 5, 0, 0)));
    assert!(!t.saw_terminal_event(), "no message_stop");
    let none = tally_run(
        Dialect::Anthropic,
        true,
        false,
        &[b"event: ping\ndata: {}\n\n"],
    )
    .0;
    assert_eq!(none.usage(), None);
}

#[test]
fn usage_gemini_last_counted_metadata_wins_and_array_framing() {
    let sse = b"data: {\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":2,\"toolUsePromptTokenCount\":4}}\r\n\r\n\
data: {\"usageMetadata\":{\"trafficType\":\"ON_DEMAND\"}}\r\n\r\n";
    let (t, _) = tally_run(Dialect::Gemini, true, false, &[sse]);
    // No finishReason: the stream was cut, its usage is partial.
    assert!(!t.saw_terminal_event());
    assert_eq!(t.usage(), None);
    assert_eq!(t.reported_usage(), Some(usage(14, 2, 0, 0, 0)));
    let fin = b"data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\r\n\r\n";
    let (t, _) = tally_run(Dialect::Gemini, true, false, &[sse, fin]);
    assert_eq!(t.usage(), Some(usage(14, 2, 0, 0, 0)));
    let arr = b"  \n[{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"}]\\\"{\"}]},\"finishReason\":\"MAX_TOKENS\"}],\
\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1,\"thoughtsTokenCount\":2}}\n]";
    let (t, out) = tally_run(
        Dialect::Gemini,
        true,
        false,
        &[&arr[..1], &arr[1..9], &arr[9..]],
    );
    assert_eq!(out, arr);
    assert_eq!(t.usage(), Some(usage(3, 3, 0, 0, 2)));
    assert!(t.saw_terminal_event());
    assert_eq!(t.output_text_chars(), 4);
    // The same array as a non-streaming body.
    assert_eq!(
        usage_from_body(Dialect::Gemini, arr),
        Some(usage(3, 3, 0, 0, 2))
    );
}

#[test]
fn usage_cut_anthropic_stream_estimate_keeps_reported_input() {
    let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":300,\"cache_creation_input_tokens\":7,\"cache_read_input_tokens\":900,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello world hello world\"}}\n\n";
    let (t, _) = tally_run(Dialect::Anthropic, true, false, &[s.as_bytes()]);
    assert_eq!(t.usage(), None);
    assert_eq!(t.reported_usage(), Some(usage(300, 1, 900, 7, 0)));
    assert_eq!(
        t.estimate(br#"{"messages":[{"role":"user","content":"hi"}]}"#),
        usage(300, 4, 900, 7, 0)
    );
}

#[test]
fn usage_non_streaming_body_cap_gives_up() {
    let body = br#"{"usage":{"input_tokens":1,"output_tokens":2}}"#;
    let mut t = StreamTally::new(Dialect::Anthropic, false, true).with_caps(20, 64, 64);
    let out = t.feed(Bytes::from_static(body));
    assert_eq!(out.as_ptr(), body.as_ptr());
    assert!(t.finish().is_empty());
    assert_eq!(t.usage(), None);
    assert!(t.overflowed() && !t.saw_terminal_event());
    let (t, out) = tally_run(Dialect::Anthropic, false, true, &[&body[..5], &body[5..]]);
    assert_eq!(out, body);
    assert_eq!(t.usage(), Some(usage(1, 2, 0, 0, 0)));
    assert!(t.saw_terminal_event());
}

// ---------------------------------------------------------------- stripping

const USAGE_CHUNK: &str =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}";

/// A stream with comments, keep-alives and non-strippable `choices: []` chunks around the
/// usage chunk; `nl` is the line ending. Returns (stream, stream without the usage chunk).
fn strip_case(nl: &str) -> (Vec<u8>, Vec<u8>) {
    let before = format!(
        ": OPENROUTER PROCESSING{nl}{nl}data: {{\"choices\":[],\"prompt_filter_results\":[]}}{nl}{nl}\
data: {{\"choices\":[{{\"delta\":{{\"content\":\"\u{e9}t\u{e9}\"}}}}],\"usage\":null}}{nl}{nl}\
data: {{\"choices\":[],\"usage\":null}}{nl}{nl}event: message{nl}data: {{\"choices\":[{{\"delta\":{{}}}}]}}{nl}{nl}"
    );
    let usage_event = format!("{USAGE_CHUNK}{nl}{nl}");
    let after = format!("data: [DONE]{nl}{nl}");
    let input = format!("{before}{usage_event}{after}");
    (input.into_bytes(), format!("{before}{after}").into_bytes())
}

fn run_strip(input: &[u8], cuts: &[usize]) -> (Vec<u8>, StreamTally) {
    let all = Bytes::copy_from_slice(input);
    let mut t = StreamTally::new(Dialect::OpenAi, true, true);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        out.extend_from_slice(&t.feed(all.slice(start..cut)));
        start = cut;
    }
    out.extend_from_slice(&t.finish());
    (out, t)
}

#[test]
fn usage_strip_removes_only_usage_chunk_at_every_split_point() {
    for nl in ["\n", "\r\n", "\r"] {
        let (input, expected) = strip_case(nl);
        for cut in 0..=input.len() {
            let (out, t) = run_strip(&input, &[cut]);
            assert!(
                out == expected,
                "nl {nl:?} cut {cut}: {}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(t.usage(), Some(usage(5, 2, 0, 0, 0)));
            assert!(t.saw_terminal_event());
        }
        let mut rng = Rng(99);
        for _ in 0..1000 {
            let cuts = rng.cuts(input.len(), 25);
            assert!(run_strip(&input, &cuts).0 == expected, "nl {nl:?} {cuts:?}");
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert!(run_strip(&input, &bytewise).0 == expected);
    }
}

#[test]
fn usage_strip_keeps_chunks_that_are_not_usage_only() {
    for event in [
        "event: error\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1},\"prompt_filter_results\":[]}\n\n",
        "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"usage\":{\"prompt_tokens\":1}}\n\n",
    ] {
        let (out, t) = run_strip(event.as_bytes(), &[]);
        assert_eq!(out, event.as_bytes());
        assert!(t.usage().is_some() || event.starts_with("event"));
    }
}

#[test]
fn usage_strip_unterminated_usage_chunk_at_end_is_removed() {
    let input = format!("data: {{\"choices\":[{{\"delta\":{{}}}}]}}\n\n{USAGE_CHUNK}\n");
    let (out, t) = run_strip(input.as_bytes(), &[]);
    assert_eq!(out, b"data: {\"choices\":[{\"delta\":{}}]}\n\n");
    assert_eq!(t.usage(), Some(usage(5, 2, 0, 0, 0)));
}

#[test]
fn usage_pass_through_is_zero_copy() {
    let chunk = Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n");
    for (wire, strip) in [
        (Dialect::OpenAi, false),
        (Dialect::OpenAi, true),
        (Dialect::Anthropic, true),
        (Dialect::Gemini, true),
    ] {
        let mut t = StreamTally::new(wire, true, strip);
        let out = t.feed(chunk.clone());
        assert_eq!((out.as_ptr(), out.len()), (chunk.as_ptr(), chunk.len()));
        assert!(t.finish().is_empty());
    }
    // Stripping holds back only the incomplete event, and returns slices of the chunk.
    let mut t = StreamTally::new(Dialect::OpenAi, true, true);
    let two = Bytes::from_static(b"data: {\"choices\":[]}\n\ndata: {\"cho");
    let out = t.feed(two.clone());
    assert_eq!(&out[..], b"data: {\"choices\":[]}\n\n");
    assert_eq!(out.as_ptr(), two.as_ptr());
    assert_eq!(&t.finish()[..], b"data: {\"cho");
}

#[test]
fn usage_strip_held_cap_passes_big_event_through() {
    let big = format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3}},\"pad\":\"{}\"}}\n\n",
        "p".repeat(400)
    );
    let input = format!("{big}{USAGE_CHUNK}\n\ndata: [DONE]\n\n");
    let all = Bytes::from(input.clone().into_bytes());
    for cut in 0..=input.len() {
        let mut t = StreamTally::new(Dialect::OpenAi, true, true).with_caps(1 << 20, 150, 1 << 20);
        let mut out = Vec::new();
        out.extend_from_slice(&t.feed(all.slice(..cut)));
        out.extend_from_slice(&t.feed(all.slice(cut..)));
        out.extend_from_slice(&t.finish());
        let expected = format!("{big}data: [DONE]\n\n");
        assert!(out == expected.as_bytes(), "cut {cut}");
        assert_eq!(t.usage(), Some(usage(5, 2, 0, 0, 0)));
        assert_eq!(t.overflowed(), (151..big.len()).contains(&cut), "cut {cut}");
    }
}

// ---------------------------------------------------------------- estimates

#[test]
fn usage_estimate_tokens_uses_o200k() {
    assert!(super::preload_tokenizer());
    assert_eq!(estimate_tokens(""), 0);
    assert_eq!(estimate_tokens("hello world"), 2);
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(3000);
    let n = estimate_tokens(&text);
    assert!((25_000..=35_000).contains(&n), "{n}");
}

#[test]
fn usage_estimate_windows_match_whole_text_tokenization() {
    let text = "Tokenizer windows are cut at whitespace, so words stay whole; \
                numbers 12345 and caf\u{e9}s too.\n"
        .repeat(2000);
    let whole = super::estimate::o200k()
        .unwrap()
        .encode_ordinary(&text)
        .len() as u64;
    let windowed = estimate_tokens(&text);
    assert!(
        windowed.abs_diff(whole) <= whole / 1000,
        "{windowed} vs {whole}"
    );
    assert_eq!(super::estimate::chars_div4("abcde\u{e9}"), 2);
}

#[test]
fn usage_estimate_tokens_pathological_input_is_fast() {
    let started = std::time::Instant::now();
    for text in [
        " ".repeat(1 << 18),
        "a".repeat(1 << 18),
        "\u{1f600}".repeat(1 << 16),
    ] {
        assert!(estimate_tokens(&text) > 0);
    }
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn usage_estimate_tokens_extrapolates_past_one_mib() {
    let sentence = "The quick brown fox jumps over the lazy dog. ";
    let one = sentence.repeat((1 << 20) / sentence.len());
    let two = one.repeat(2);
    let (n1, n2) = (estimate_tokens(&one), estimate_tokens(&two));
    assert!(n2.abs_diff(2 * n1) <= n1 / 100, "{n1} {n2}");
}

#[test]
fn usage_estimate_usage_counts_request_text_per_dialect() {
    let mut out = OutputText::default();
    out.push("hello world");
    let openai = br#"{"model":"m","messages":[{"role":"system","content":"hello world"},
        {"role":"user","content":[{"type":"text","text":"hello world"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}]}]}"#;
    let u = estimate_usage(openai, &out);
    assert_eq!(u.output, 2);
    assert_eq!(u.input, estimate_tokens("hello world\nhello world"));
    let anthropic = br#"{"system":"hello world","messages":[{"role":"user","content":[{"type":"text","text":"hello world"},
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAAAAAAAAAAAAAA"}}]}]}"#;
    assert_eq!(estimate_usage(anthropic, &out).input, u.input);
    let gemini = br#"{"systemInstruction":{"parts":[{"text":"hello world"}]},
        "contents":[{"role":"user","parts":[{"text":"hello world"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}]}"#;
    assert_eq!(estimate_usage(gemini, &out).input, u.input);
    assert_eq!(
        estimate_usage(b"garbage", &OutputText::default()),
        Usage::default()
    );
    let none = OutputText::default();
    let embeddings = br#"{"model":"e","input":["hello world","hello world"]}"#;
    assert_eq!(estimate_usage(embeddings, &none).input, u.input);
    let ids = br#"{"model":"e","input":[[1,2,3],[4,5]]}"#;
    assert_eq!(estimate_usage(ids, &none).input, 5);
    let single = br#"{"model":"e","input":"hello world"}"#;
    assert_eq!(estimate_usage(single, &none).input, 2);
}

#[test]
fn usage_output_text_is_bounded_and_extrapolated() {
    let mut out = OutputText::default();
    let piece = "\u{e9}t\u{e9} ".repeat(1000); // 4000 chars, 6000 bytes
    for _ in 0..400 {
        out.push(&piece);
    }
    assert_eq!(out.chars(), 1_600_000);
    assert!(out.text().len() <= MAX_KEPT_OUTPUT);
    assert!(out.text().len() > MAX_KEPT_OUTPUT - 4);
    let kept_tokens = estimate_tokens(out.text());
    let total = out.estimate_tokens();
    assert!(total > kept_tokens * 2, "{total} vs {kept_tokens}");
}

#[test]
fn usage_tally_estimate_from_stream_text() {
    let s = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hello world\"}}\n\n";
    let (t, _) = tally_run(Dialect::Anthropic, true, false, &[s.as_bytes()]);
    assert_eq!(t.usage(), None);
    assert_eq!(t.output_text_chars(), 11);
    let est = t.estimate(br#"{"messages":[{"role":"user","content":"hello world"}]}"#);
    assert_eq!(est, usage(2, 2, 0, 0, 0));
}

/// Finish reasons come from whole bodies (read lazily, after the fast usage path) and from
/// streams, in each dialect's own field.
#[test]
fn finish_reasons_are_read_from_bodies_and_streams() {
    let reasons = |wire: Dialect, streaming: bool, body: &str| {
        let mut t = StreamTally::new(wire, streaming, false);
        t.feed(Bytes::from(body.to_owned()));
        t.finish();
        t.output().finish_reasons().to_vec()
    };
    let openai = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"length"},{"index":1,"message":{"content":"yo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
    assert_eq!(reasons(Dialect::OpenAi, false, openai), ["length", "stop"]);
    let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n\
                  data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                  data: [DONE]\n\n";
    assert_eq!(reasons(Dialect::OpenAi, true, stream), ["stop"]);
    let anthropic = r#"{"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#;
    assert_eq!(reasons(Dialect::Anthropic, false, anthropic), ["end_turn"]);
    let a_stream = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":5}}\n\n";
    assert_eq!(reasons(Dialect::Anthropic, true, a_stream), ["max_tokens"]);
    let gemini = r#"{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}"#;
    assert_eq!(reasons(Dialect::Gemini, false, gemini), ["STOP"]);
    let responses = r#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":{"input_tokens":3,"output_tokens":9}}"#;
    assert_eq!(
        reasons(Dialect::Responses, false, responses),
        ["max_output_tokens"]
    );
    assert!(reasons(Dialect::OpenAi, false, "not json").is_empty());
}
