use super::*;
use serde_json::json;
use std::time::Duration;

fn store() -> Arc<Store> {
    Store::new(1 << 20, Duration::from_secs(600))
}

fn answer(id: &str, text: &str) -> Value {
    json!({"id": id, "object": "response", "status": "completed", "output": [
        {"type": "message", "id": format!("msg_{id}"), "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": text, "annotations": []}]}
    ]})
}

fn items(body: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["input"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_second_turn_gets_the_first_turns_items_in_front_of_its_own() {
    let s = store();
    let first = br#"{"model":"m","input":"Hi","instructions":"Be brief."}"#;
    let mut begun = Turn::begin(&s, "k", "req_1", first, false).unwrap();
    assert!(begun.body.is_none(), "nothing to splice");
    assert_eq!(begun.turn.response_id.as_deref(), Some("resp_1"));
    assert_eq!(
        begun.turn.echo.as_ref().unwrap()["instructions"],
        "Be brief."
    );
    let body = answer("resp_1", "Hello!").to_string();
    let (a, b) = body.as_bytes().split_at(10);
    begun.turn.capture(&s, a, false, 200);
    begun.turn.capture(&s, b, true, 200);
    assert_eq!(s.len(), 1);

    let second = br#"{"model":"m","previous_response_id":"resp_1","input":[{"role":"user","content":"And?"}]}"#;
    let begun = Turn::begin(&s, "k", "req_2", second, false).unwrap();
    let (spliced, probe) = begun.body.unwrap();
    let v: Value = serde_json::from_slice(&spliced).unwrap();
    assert!(v.get("previous_response_id").is_none());
    assert!(
        v.get("instructions").is_none(),
        "instructions are not carried over"
    );
    let input = items(&spliced);
    assert_eq!(input.len(), 3);
    assert_eq!(
        input[0],
        json!({"type": "message", "role": "user", "content": "Hi"})
    );
    assert_eq!(input[1]["content"][0]["text"], "Hello!");
    assert_eq!(input[2]["content"], "And?");
    assert_eq!(&spliced[probe.model_span.clone()], br#""m""#);
    // The answer echoes the id the client sent.
    assert_eq!(
        begun.turn.echo.as_ref().unwrap()["previous_response_id"],
        "resp_1"
    );
}

#[tokio::test]
async fn unknown_and_foreign_ids_are_404s_naming_the_field() {
    let s = store();
    s.insert("k", "resp_x", None, Arc::from("[]"));
    let body = br#"{"model":"m","previous_response_id":"resp_x","input":"again"}"#;
    assert!(Turn::begin(&s, "k", "req_1", body, false).is_ok());
    for (key, body) in [
        ("other-key", &body[..]),
        (
            "k",
            &br#"{"model":"m","previous_response_id":"resp_nope","input":"x"}"#[..],
        ),
    ] {
        let e = Turn::begin(&s, key, "req_2", body, false).err().unwrap();
        assert_eq!(e.status(), 404);
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
    }
    let e = Turn::begin(
        &s,
        "k",
        "r",
        br#"{"model":"m","previous_response_id":3}"#,
        false,
    )
    .err()
    .unwrap();
    assert_eq!(e.status(), 400);
}

#[tokio::test]
async fn streams_are_kept_from_their_terminal_event_and_store_false_keeps_nothing() {
    let s = store();
    let mut begun = Turn::begin(&s, "k", "req_9", br#"{"model":"m","input":"Hi"}"#, true).unwrap();
    let done = json!({"type": "response.completed", "sequence_number": 9,
        "response": answer("resp_9", "Streamed.")});
    let stream = format!(
        "event: response.output_text.delta\ndata: {}\n\nevent: response.completed\ndata: {done}\n\n",
        json!({"type": "response.output_text.delta", "delta": "response.completed"})
    );
    for (i, b) in stream.as_bytes().iter().enumerate() {
        begun
            .turn
            .capture(&s, std::slice::from_ref(b), i + 1 == stream.len(), 200);
    }
    let chain = s.chain("k", "resp_9").unwrap();
    let kept: Value = serde_json::from_str(&chain[0]).unwrap();
    assert_eq!(kept[1]["content"][0]["text"], "Streamed.");

    let mut begun = Turn::begin(
        &s,
        "k",
        "req_10",
        br#"{"model":"m","input":"Hi","store":false}"#,
        false,
    )
    .unwrap();
    begun
        .turn
        .capture(&s, answer("resp_10", "x").to_string().as_bytes(), true, 200);
    assert!(s.chain("k", "resp_10").is_err());

    // A failed answer (or an error status) is not kept.
    let mut begun =
        Turn::begin(&s, "k", "req_11", br#"{"model":"m","input":"Hi"}"#, false).unwrap();
    begun
        .turn
        .capture(&s, answer("resp_11", "x").to_string().as_bytes(), true, 502);
    assert!(s.chain("k", "resp_11").is_err());
}
