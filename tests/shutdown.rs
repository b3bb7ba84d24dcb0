//! Stopping: SIGTERM ends an idle gateway at once (not after `grace_period`), and a request in
//! flight still finishes, with the process gone right after it. Run with
//! `cargo test --test shutdown`.

mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

const GRACE: &str = "grace_period = \"20s\"";

fn sigterm(gw: &mut Gateway) {
    let pid = gw.proc_.pid().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// How long the gateway takes to exit (panics after 15 s: the grace period is 20 s).
fn wait_exit(gw: &mut Gateway) -> Duration {
    let t = Instant::now();
    while gw.proc_.alive() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "still running: it waited for the grace period"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

#[test]
fn an_idle_gateway_stops_at_once_and_keeps_its_ledger_rows() {
    let (_mock, mut gw) = start_stack(GRACE);
    let mut s = connect(&gw);
    let auth = bearer();
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        chat_body("chat", false).as_bytes(),
    );
    assert_eq!(r.status, 200);
    let id = r.header("x-switchyard-request-id").unwrap().to_owned();
    drop(s);
    sigterm(&mut gw);
    let took = wait_exit(&mut gw);
    eprintln!("idle stop took {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The row of the request before the stop was flushed on the way out.
    let row = switchyard::ledger::read_row(&gw.ledger_path(), &id).expect("ledger readable");
    assert!(row.is_some(), "the last request's row is in the ledger");
}

#[test]
fn a_stream_in_flight_finishes_and_the_gateway_exits_right_after() {
    // 30 tokens, 100 ms apart: about 3 s of stream.
    let mock = start_mock(&["--itl-ms", "100", "--tokens", "30"]);
    let mut gw = start_gateway_with(&standard_config(free_port(), mock.port, GRACE));
    let mut s = connect(&gw);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = chat_body("chat", true);
    let auth = bearer();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let stopped = Instant::now();
    sigterm(&mut gw);
    let r = read_response(&mut s);
    let answered = stopped.elapsed();
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(text.contains("data: [DONE]"), "the stream finished: {text}");
    let took = wait_exit(&mut gw);
    eprintln!("stream ended {answered:?} after SIGTERM; exit {took:?} later");
    assert!(
        answered > Duration::from_secs(1),
        "{answered:?}: the stream was cut"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}
