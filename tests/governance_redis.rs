//! Shared limits on a real `redis-server` (started by scripts/redis.sh, which installs the
//! Debian package if it is missing): two gateway instances share one rpm and one budget;
//! with Redis stopped, `fail_closed` refuses limited requests and `local` goes on with its
//! lease, then both recover when Redis is back.

mod common;
use common::*;
use rust_decimal::Decimal;
use serde_json::json;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

struct Redis {
    port: u16,
    pid: u32,
}

impl Redis {
    fn start(port: Option<u16>) -> Redis {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redis.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script);
        if let Some(p) = port {
            cmd.args(["--port", &p.to_string()]);
        }
        let out = cmd.output().expect("run scripts/redis.sh");
        assert!(
            out.status.success(),
            "scripts/redis.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        let port = parts.next().and_then(|p| p.parse().ok()).expect("port");
        let pid = parts.next().and_then(|p| p.parse().ok()).expect("pid");
        Redis { port, pid }
    }

    fn stop(&self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

fn gateway(mock: &Mock, redis: u16, on_error: &str, keys: &str) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[ledger]\npath = \"{}\"\n\n[limits]\nstore = \"redis://127.0.0.1:{redis}/0\"\n\
         on_store_error = \"{on_error}\"\nlocal_lease = \"50%\"\nstore_timeout = \"300ms\"\n\n{keys}\n",
        standard_config(free_port(), mock.port, ""),
        dir.path().join("ledger.db").display()
    );
    (start_gateway_with(&config), dir)
}

fn chat(gw: &Gateway, key: &str) -> RawResponse {
    let body = json!({
        "model": "openai/gpt-4o-mini", "max_tokens": 16,
        "messages": [{"role": "user", "content": "a a a a a a a a"}],
    })
    .to_string();
    let auth = format!("Bearer {key}");
    let mut s = connect(gw);
    roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        body.as_bytes(),
    )
}

fn cost(r: &RawResponse) -> Decimal {
    Decimal::from_str(r.header("x-switchyard-cost-usd").unwrap()).unwrap()
}

#[test]
fn two_instances_share_rpm_and_budget_and_each_mode_survives_a_redis_outage() {
    let redis = Redis::start(None);
    let mock = start_mock(&[]);

    // One call's cost, measured on an unlimited key.
    let (probe, _d0) = gateway(&mock, redis.port, "fail_closed", "");
    let one = cost(&chat(&probe, GW_KEY));
    drop(probe);

    let budget = one * Decimal::from(5);
    let keys = format!(
        "[[gateway_keys]]\nname = \"paced\"\nkey = \"sk-sy-paced-key-0001\"\nrpm = 4\n\n\
         [[gateway_keys]]\nname = \"funded\"\nkey = \"sk-sy-funded-key-001\"\n\
         budget = {{ usd = \"{budget}\", period = \"day\" }}\n"
    );
    let (a, _da) = gateway(&mock, redis.port, "fail_closed", &keys);
    let (b, _db) = gateway(&mock, redis.port, "local", &keys);

    // rpm = 4 across both instances: 4 served in all, then 429 on either.
    let mut served = 0;
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        match chat(gw, "sk-sy-paced-key-0001").status {
            200 => served += 1,
            429 => {}
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(served, 4, "a shared rpm of 4");

    // The budget across both: calls alternate until 402; the total stays within it.
    let mut spent = Decimal::ZERO;
    let mut calls = 0;
    for i in 0..20 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = chat(gw, "sk-sy-funded-key-001");
        match r.status {
            200 => {
                spent += cost(&r);
                calls += 1;
            }
            402 => {
                assert_eq!(r.json()["error"]["code"], "budget_exceeded");
            }
            s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(
        calls >= 1 && spent <= budget,
        "{calls} calls, {spent} of {budget}"
    );
    assert!(calls < 20, "the shared budget must stop both instances");

    // Redis goes away.
    redis.stop();
    // fail_closed: limited requests are refused with 503; unlimited keys are untouched.
    let r = chat(&a, "sk-sy-paced-key-0001");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("retry-after").is_some());
    assert_eq!(chat(&a, GW_KEY).status, 200);
    // local: a lease of 50% of rpm 4 = 2 requests, then 429.
    let statuses: Vec<u16> = (0..4)
        .map(|_| chat(&b, "sk-sy-paced-key-0001").status)
        .collect();
    assert_eq!(statuses, vec![200, 200, 429, 429], "local lease");

    // Redis is back (same port, empty): both instances use it again.
    let back = Redis::start(Some(redis.port));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = chat(&a, "sk-sy-paced-key-0001").status;
        if s == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fail_closed never recovered ({s})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(back);
}
