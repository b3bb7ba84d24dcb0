//! A/B experiments end to end, with the real binary and the mock provider: sticky variants
//! and their header, a mock judge that tells the variants' answers apart (it grades an answer
//! by the `-qN` in the name of the model that wrote it), judge and shadow calls costed as
//! attempts of the judged request, the report deciding, feedback, an unparsable judge, and a
//! judge that takes seconds without the client waiting for it.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lab provider's prices (shared with tests/fleet_postgres.rs).
const PRICES: &str = include_str!("fixtures/lab_prices.toml");

struct Stack {
    _mock: Mock,
    _slow: Mock,
    gw: Gateway,
    admin_port: u16,
    ledger: PathBuf,
    _dir: tempfile::TempDir,
}

/// A gateway with the `lab` provider (the mock) and `slowlab` (a mock that takes 3 s), and
/// `experiments` appended to its config.
fn stack(experiments: &str) -> Stack {
    let mock = start_mock(&[]);
    let slow = start_mock(&["--ttft-ms", "3000"]);
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.toml");
    std::fs::write(&prices, PRICES).unwrap();
    let ledger = dir.path().join("ledger.db");
    let admin_port = free_port();
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:{gw}"
threads = 2

[admin]
listen = "127.0.0.1:{admin_port}"

[ledger]
path = "{ledger}"

[pricing]
unpriced = "record_unknown"
overrides = "{prices}"

[[providers]]
name = "lab"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{mock}/v1"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "slowlab"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{slow}/v1"
api_keys = ["env:MOCK_KEY"]

[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"

[[gateway_keys]]
name = "other"
key = "{LIMITED_KEY}"

[[routes]]
name = "support"
targets = ["lab/gpt-q2", "lab/gpt-q9"]

{experiments}
"#,
        gw = free_port(),
        ledger = ledger.display(),
        prices = prices.display(),
        mock = mock.port,
        slow = slow.port,
    );
    let gw = start_gateway_with(&cfg);
    Stack {
        _mock: mock,
        _slow: slow,
        gw,
        admin_port,
        ledger,
        _dir: dir,
    }
}

fn chat(gw: &Gateway, user: Option<&str>, key: &str) -> RawResponse {
    let body = json!({
        "model": "support",
        "messages": [{"role": "user", "content": "My order did not arrive."}],
    })
    .to_string();
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(u) = user {
        headers.push(("x-user-id", u));
    }
    roundtrip(
        &mut connect(gw),
        "POST",
        "/v1/chat/completions",
        &headers,
        body.as_bytes(),
    )
}

/// One short chat request to `model` with the tests' key.
fn ask(gw: &Gateway, model: &str) -> RawResponse {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
    let auth = bearer();
    roundtrip(
        &mut connect(gw),
        "POST",
        "/v1/chat/completions",
        &[("authorization", auth.as_str())],
        body.to_string().as_bytes(),
    )
}

fn report(s: &Stack, name: &str) -> Value {
    let out = std::process::Command::new(BIN)
        .args(["experiments", "report", name, "--config"])
        .arg(&s.gw.config)
        .arg("--json")
        .output()
        .expect("run report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

/// Polls the report until `done` holds (the judge runs in the background).
fn report_until(s: &Stack, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = report(s, name);
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "report never got there: {r:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn variant<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
}

fn admin_get(s: &Stack, path: &str) -> RawResponse {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.admin_port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    roundtrip(&mut c, "GET", path, &[], b"")
}

fn sql(ledger: &Path, query: &str) -> Vec<Vec<Option<String>>> {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    let mut stmt = conn.prepare(query).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                        rusqlite::types::Value::Null => None,
                        rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                        rusqlite::types::Value::Real(f) => Some(f.to_string()),
                        rusqlite::types::Value::Text(t) => Some(t),
                        rusqlite::types::Value::Blob(_) => Some("blob".into()),
                    })
                })
                .collect()
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn score_mode_variants_judge_costs_feedback_and_a_decided_report() {
    let s = stack(
        r#"
[[experiments]]
name = "answers"
route = "support"
sticky = "header:x-user-id"
variants = [
  { name = "strong", target = "lab/gpt-q9", weight = 1 },
  { name = "weak", target = "lab/gpt-q2", weight = 1, system = "Be terse.", params = { temperature = 0.1 } },
]
[experiments.judge]
target = "lab/judge"
rubric = "Score how well the answer resolves the user's request."
sample = 1.0
mode = "score"
max_concurrency = 4
"#,
    );
    let mut ids = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for u in 0..80 {
        let user = format!("user-{u}");
        let r = chat(&s.gw, Some(&user), GW_KEY);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r
            .header("x-switchyard-variant")
            .expect("variant header")
            .to_owned();
        let content = r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        match v.as_str() {
            "answers/strong" => assert!(content.contains("gpt-q9"), "{content}"),
            "answers/weak" => assert!(content.contains("gpt-q2"), "{content}"),
            other => panic!("unexpected variant {other}"),
        }
        seen.insert(user, v);
        ids.push(r.header("x-switchyard-request-id").unwrap().to_owned());
    }
    let strong = seen.values().filter(|v| v.ends_with("strong")).count();
    assert!(
        (20..=60).contains(&strong),
        "a 1:1 split gave {strong} of 80"
    );
    // Sticky: the same user gets the same variant again.
    for u in 0..10 {
        let user = format!("user-{u}");
        let r = chat(&s.gw, Some(&user), GW_KEY);
        assert_eq!(r.header("x-switchyard-variant"), Some(seen[&user].as_str()));
    }
    // Anthropic-dialect clients are split the same way (the variant applied in their dialect).
    let body = json!({"model": "support", "max_tokens": 50, "system": "Client rules.",
        "messages": [{"role": "user", "content": "Hi"}]})
    .to_string();
    let auth = bearer();
    let r = roundtrip(
        &mut connect(&s.gw),
        "POST",
        "/v1/messages",
        &[
            ("authorization", auth.as_str()),
            ("x-user-id", "user-0"),
            ("anthropic-version", "2023-06-01"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-switchyard-variant"),
        Some(seen["user-0"].as_str())
    );

    let r = report_until(&s, "answers", |r| r["decided"] == true);
    assert_eq!(r["leader"], "strong");
    assert!(r["method"]
        .as_str()
        .unwrap()
        .contains("confidence sequence"));
    let (st, wk) = (variant(&r, "strong"), variant(&r, "weak"));
    assert!(st["judged"].as_u64().unwrap() >= 2 && wk["judged"].as_u64().unwrap() >= 2);
    assert_eq!(st["mean_score"], 9.0);
    assert_eq!(wk["mean_score"], 2.0);
    assert!(st["ci_low"].as_f64().unwrap() > wk["ci_high"].as_f64().unwrap());
    assert!(
        st["judge_cost_usd"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    assert!(st["cost_per_request_usd"].as_str().is_some());
    assert!(st["p95_ms"].as_f64().is_some());

    // The judge's calls are attempts of the judged requests, role `judge`, with a cost, and
    // the row's cost includes them.
    let judged = sql(
        &s.ledger,
        "SELECT a.request_id, a.cost_usd, r.cost_usd FROM attempts a JOIN requests r \
         ON r.request_id = a.request_id WHERE a.role = 'judge' AND a.model = 'judge'",
    );
    assert!(judged.len() >= 4, "{judged:?}");
    for row in &judged {
        let cost: f64 = row[1].as_deref().unwrap().parse().unwrap();
        let total: f64 = row[2].as_deref().unwrap().parse().unwrap();
        assert!(cost > 0.0 && total > cost, "{row:?}");
    }
    let one = switchyard::ledger::read_row(&s.ledger, judged[0][0].as_deref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(one.attempts[0].role, switchyard::ledger::Role::Served);
    assert!(one
        .attempts
        .iter()
        .any(|a| a.role == switchyard::ledger::Role::Judge));

    // Feedback: the key that made the request may add it; another key, or an unknown id, 404.
    let fb = |key: &str, id: &str, value: Value| {
        let body = json!({"request_id": id, "metric": "resolved", "value": value}).to_string();
        let auth = format!("Bearer {key}");
        roundtrip(
            &mut connect(&s.gw),
            "POST",
            "/v1/feedback",
            &[("authorization", auth.as_str())],
            body.as_bytes(),
        )
    };
    assert_eq!(fb(LIMITED_KEY, &ids[0], json!(true)).status, 404);
    assert_eq!(
        fb(GW_KEY, "req_000000000000000000000000", json!(true)).status,
        404
    );
    let ok = fb(GW_KEY, &ids[0], json!(true));
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(fb(GW_KEY, &ids[1], json!(0.5)).status, 200);
    assert_eq!(fb(GW_KEY, &ids[1], json!("yes")).status, 400);
    let r = report(&s, "answers");
    let count: u64 = r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["feedback"]["resolved"]["count"].as_u64())
        .sum();
    assert_eq!(count, 2, "{r:#}");

    // The admin API shows the same report, and lists the experiment.
    let a = admin_get(&s, "/admin/experiments/answers");
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["leader"], "strong");
    let l = admin_get(&s, "/admin/experiments");
    assert_eq!(l.json()["experiments"][0]["name"], "answers");
    assert_eq!(l.json()["experiments"][0]["decision"], "decided: strong");
    assert_eq!(l.json()["experiments"][0]["variants"][0]["name"], "strong");
    assert_eq!(admin_get(&s, "/admin/experiments/nope").status, 404);
    let list = std::process::Command::new(BIN)
        .args(["experiments", "list", "--config"])
        .arg(&s.gw.config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("answers"));
}

#[test]
fn pairwise_shadows_randomised_order_unparsable_and_slow_judges() {
    let s = stack(
        r#"
[[experiments]]
name = "duel"
route = "support"
variants = [
  { name = "strong", target = "lab/gpt-q9" },
  { name = "weak", target = "lab/gpt-q2" },
]
judge = { target = "lab/judge", rubric = "Which answer helps more?", mode = "pairwise", sample = 1.0 }

[[routes]]
name = "garbled"
targets = ["lab/gpt-q2"]

[[experiments]]
name = "garbled"
route = "garbled"
variants = [{ name = "a", target = "lab/gpt-q9" }, { name = "b", target = "lab/gpt-q2" }]
judge = { target = "lab/judge-garbled", rubric = "r", sample = 1.0 }

[[routes]]
name = "slow"
targets = ["lab/gpt-q2"]

[[experiments]]
name = "slow"
route = "slow"
variants = [{ name = "a", target = "lab/gpt-q9" }, { name = "b", target = "lab/gpt-q2" }]
judge = { target = "slowlab/judge", rubric = "r", sample = 1.0 }
"#,
    );
    for _ in 0..30 {
        let r = chat(&s.gw, None, GW_KEY);
        assert_eq!(r.status, 200);
    }
    let r = report_until(&s, "duel", |r| r["decided"] == true);
    assert_eq!(r["leader"], "strong");
    let (st, wk) = (variant(&r, "strong"), variant(&r, "weak"));
    assert!(st["wins"].as_u64().unwrap() >= 5, "{r:#}");
    assert_eq!(st["losses"], 0);
    assert_eq!(st["wins"], wk["losses"]);
    assert!(
        st["shadow_cost_usd"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
            || wk["shadow_cost_usd"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
                > 0.0
    );
    let shadows = sql(
        &s.ledger,
        "SELECT COUNT(*) FROM attempts WHERE role = 'shadow'",
    );
    assert!(shadows[0][0].as_deref().unwrap().parse::<u32>().unwrap() >= 5);
    // The order of the two answers is random, and recorded.
    let firsts = sql(
        &s.ledger,
        "SELECT first, COUNT(*) FROM experiment_judgments WHERE experiment = 'duel' GROUP BY first",
    );
    assert_eq!(
        firsts.len(),
        2,
        "both variants were shown first: {firsts:?}"
    );

    // A judge whose replies never parse: asked twice, then unscored, never a score.
    for _ in 0..3 {
        assert_eq!(ask(&s.gw, "garbled").status, 200);
    }
    let r = report_until(&s, "garbled", |r| {
        r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["unscored"].as_u64().unwrap())
            .sum::<u64>()
            == 3
    });
    assert!(r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["judged"] == 0 && v["mean_score"].is_null()));
    let asked = sql(
        &s.ledger,
        "SELECT COUNT(*) FROM attempts WHERE model = 'judge-garbled'",
    );
    assert_eq!(asked[0][0].as_deref(), Some("6"), "each judged twice");

    // A judge that takes 3 s: the client's answers do not wait for it.
    for _ in 0..4 {
        let started = Instant::now();
        assert_eq!(ask(&s.gw, "slow").status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
    let r = report_until(&s, "slow", |r| {
        r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["judged"].as_u64().unwrap())
            .sum::<u64>()
            == 4
    });
    assert!(r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| !v["mean_score"].is_null()));
}

#[test]
fn promotion_moves_traffic_to_a_decided_leader_unless_a_guard_blocks_it() {
    let s = stack(
        r#"
[[experiments]]
name = "promo"
route = "support"
promote = "when_decided"
max_p95_increase = "1000%"
variants = [{ name = "strong", target = "lab/gpt-q9" }, { name = "weak", target = "lab/gpt-q2" }]
judge = { target = "lab/judge", rubric = "r", sample = 1.0 }

[[routes]]
name = "guarded"
targets = ["lab/gpt-q2"]

[[experiments]]
name = "guarded"
route = "guarded"
promote = "when_decided"
max_cost_increase = "10%"
variants = [{ name = "strong", target = "lab/gpt-q9" }, { name = "weak", target = "lab/gpt-q2" }]
judge = { target = "lab/judge", rubric = "r", sample = 1.0 }
"#,
    );
    let send = |model: &str| {
        let r = ask(&s.gw, model);
        assert_eq!(r.status, 200);
        r.header("x-switchyard-variant").unwrap_or("").to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut promoted, mut blocked) = (false, false);
    while !(promoted && blocked) {
        assert!(
            Instant::now() < deadline,
            "promoted {promoted}, blocked {blocked}"
        );
        for _ in 0..10 {
            send("support");
            send("guarded");
        }
        std::thread::sleep(Duration::from_millis(500));
        promoted = report(&s, "promo")["promotion"]["status"] == "promoted";
        blocked = report(&s, "guarded")["promotion"]["status"] == "blocked";
    }
    let r = report(&s, "promo");
    assert_eq!(r["promotion"]["variant"], "strong");
    assert_eq!(r["shifts"][0]["kind"], "promoted");
    // Promotion takes effect at the judge's check; once it shows, all traffic goes there.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        assert_eq!(send("support"), "promo/strong");
    }
    let g = report(&s, "guarded");
    assert_eq!(g["decided"], true);
    assert!(
        g["promotion"]["reason"]
            .as_str()
            .unwrap()
            .contains("max_cost_increase"),
        "{g:#}"
    );
    assert_eq!(g["shifts"][0]["kind"], "blocked");
    let variants: std::collections::HashSet<String> = (0..20).map(|_| send("guarded")).collect();
    assert_eq!(variants.len(), 2, "a blocked promotion keeps the split");
}
