use super::tests_response::sample;
use super::*;
use crate::dialect::canonical::*;
use crate::dialect::replay::{response_events, Aggregator};
use crate::usage::SseParser;
use serde_json::{json, Value};

fn opts() -> StreamEncoderOptions {
    StreamEncoderOptions {
        response_id: Some("resp_s1".into()),
        model: "fallback".into(),
        ..Default::default()
    }
}

fn encode(events: &[StreamEvent]) -> Vec<u8> {
    let mut enc = stream_encoder(opts());
    let mut out = Vec::new();
    for ev in events {
        enc.on_event(ev, &mut out);
    }
    enc.finish(&mut out);
    out
}

/// `(event name, data)` of every event.
fn parse(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    p.feed_with(bytes, |ev| {
        out.push((
            ev.event.clone().unwrap_or_default(),
            serde_json::from_str(&ev.data).unwrap(),
        ))
    });
    out
}

fn decode_split(bytes: &[u8], at: usize) -> Vec<StreamEvent> {
    let mut dec = stream_decoder();
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for chunk in [&bytes[..at], &bytes[at..]] {
        p.feed_with(chunk, |ev| dec.on_event(&ev, &mut out));
    }
    if let Some(ev) = p.finish() {
        dec.on_event(&ev, &mut out);
    }
    dec.finish(&mut out);
    out
}

#[test]
fn the_event_sequence_is_numbered_and_complete() {
    let bytes = encode(&response_events(&sample()));
    let events = parse(&bytes);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "{name}");
        assert_eq!(data["type"], name.as_str());
    }
    // The final response holds exactly what a whole answer would.
    let done = &events.last().unwrap().1["response"];
    let whole: Value = serde_json::from_slice(&encode_response_with(&sample(), &opts())).unwrap();
    assert_eq!(done["output"], whole["output"]);
    assert_eq!(done["usage"], whole["usage"]);
    assert_eq!(done["id"], "resp_s1");
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    // Every item added is done with the same id at the same index.
    for (name, data) in &events {
        if name == "response.output_item.done" {
            let i = data["output_index"].as_u64().unwrap() as usize;
            assert_eq!(done["output"][i], data["item"]);
        }
    }
}

#[test]
fn streams_decode_back_at_every_split() {
    let bytes = encode(&response_events(&sample()));
    let whole = decode_split(&bytes, 0);
    let mut agg = Aggregator::new();
    whole.iter().for_each(|e| agg.push(e));
    let mut expected = sample();
    expected.id = "resp_s1".into();
    expected.created = None;
    assert_eq!(agg.finish(), expected);
    assert_eq!(whole.last(), Some(&StreamEvent::End));
    for at in 1..bytes.len() {
        assert_eq!(decode_split(&bytes, at), whole, "split at {at}");
    }
}

#[test]
fn a_mid_stream_error_is_an_error_event_then_a_failed_response() {
    let events = vec![
        StreamEvent::Start {
            id: "x".into(),
            model: "m".into(),
            usage: None,
        },
        StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("par".into()),
        },
        StreamEvent::Error(ProviderError {
            status: 529,
            provider_type: Some("overloaded_error".into()),
            message: "Overloaded".into(),
            param: None,
        }),
        StreamEvent::Delta {
            index: 0,
            delta: Delta::Text("ignored".into()),
        },
    ];
    let bytes = encode(&events);
    let parsed = parse(&bytes);
    let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["error", "response.failed"],
        "{names:?}"
    );
    let (_, err) = &parsed[parsed.len() - 2];
    assert_eq!(err["code"], "overloaded_error");
    assert_eq!(err["message"], "Overloaded");
    let (_, failed) = parsed.last().unwrap();
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    let decoded = decode_split(&bytes, 0);
    assert!(
        matches!(decoded.last(), Some(StreamEvent::Error(e)) if e.status == 529 && e.message == "Overloaded")
    );
}

#[test]
fn recorded_openai_streams_with_summary_parts_decode() {
    let ev = |t: &str, d: Value| {
        let mut d = d;
        d["type"] = t.into();
        format!("event: {t}\ndata: {d}\n\n")
    };
    let stream = [
        ev("response.created", json!({"response": {"id": "resp_o", "model": "gpt-5", "status": "in_progress", "output": []}})),
        ev("response.output_item.added", json!({"output_index": 0, "item": {"id": "rs_o", "type": "reasoning", "summary": []}})),
        ev("response.reasoning_summary_part.added", json!({"output_index": 0, "item_id": "rs_o", "summary_index": 0})),
        ev("response.reasoning_summary_text.delta", json!({"output_index": 0, "item_id": "rs_o", "delta": "A"})),
        ev("response.reasoning_summary_part.added", json!({"output_index": 0, "item_id": "rs_o", "summary_index": 1})),
        ev("response.reasoning_summary_text.delta", json!({"output_index": 0, "item_id": "rs_o", "delta": "B"})),
        ev("response.output_item.done", json!({"output_index": 0, "item": {"id": "rs_o", "type": "reasoning",
            "summary": [], "encrypted_content": "enc"}})),
        ev("response.output_item.added", json!({"output_index": 1, "item": {"id": "fc_o", "type": "function_call",
            "call_id": "call_1", "name": "f", "arguments": ""}})),
        ev("response.function_call_arguments.done", json!({"output_index": 1, "arguments": "{\"a\":1}"})),
        ev("response.output_item.done", json!({"output_index": 1, "item": {"id": "fc_o", "type": "function_call",
            "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}"}})),
        ev("response.incomplete", json!({"response": {"id": "resp_o", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "usage": {"input_tokens": 3, "output_tokens": 4}}})),
    ]
    .concat();
    let events = decode_split(stream.as_bytes(), 0);
    let mut agg = Aggregator::new();
    events.iter().for_each(|e| agg.push(e));
    let r = agg.finish();
    assert_eq!(r.id, "resp_o");
    assert_eq!(
        r.content[0],
        Part::Thinking {
            text: "A\n\nB".into(),
            signature: Some("enc".into())
        }
    );
    assert!(
        matches!(&r.content[1], Part::ToolCall(c) if c.arguments == "{\"a\":1}" && c.id == "call_1")
    );
    assert_eq!(r.stop_reason, Some(StopReason::MaxTokens));
    assert_eq!(r.usage.unwrap().output, 4);
}
