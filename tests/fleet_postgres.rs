//! A fleet on one Postgres ledger (started by scripts/postgres.sh, which installs Debian's
//! `postgresql` if it is missing): two gateway instances, the real binary in front of the mock
//! provider, write every request to the same database. 10,000 requests spread over both give
//! exactly 10,000 rows (and their attempts), the spend report (read from Postgres through
//! either instance's admin port) equals the sum of the `x-switchyard-cost-usd` headers, and
//! stopping Postgres in the middle of the run, then starting it again, loses and duplicates
//! nothing: rows spill to each instance's local file and are replayed.

mod common;
use common::*;
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOTAL: usize = 10_000;
const CONCURRENCY: usize = 16;

/// A Postgres cluster in a temporary directory.
struct Postgres {
    port: u16,
    pid: u32,
    dir: String,
    url: String,
}

impl Postgres {
    fn start(again: Option<(&str, u16)>) -> Postgres {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script);
        if let Some((dir, port)) = again {
            cmd.args(["--dir", dir, "--port", &port.to_string()]);
        }
        let out = cmd.output().expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "scripts/postgres.sh failed (this test needs Debian's postgresql package): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let parts: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            parts.len(),
            4,
            "unexpected scripts/postgres.sh output: {text}"
        );
        Postgres {
            port: parts[0].parse().expect("port"),
            pid: parts[1].parse().expect("pid"),
            dir: parts[2].to_owned(),
            url: parts[3].to_owned(),
        }
    }

    /// Fast shutdown (clients are disconnected); waits until the server is gone.
    fn stop(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        {
            assert!(Instant::now() < deadline, "postgres did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn query_count(&self, sql: &str) -> i64 {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test postgres");
        tokio::spawn(conn);
        client.query_one(sql, &[]).await.expect(sql).get(0)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn gateway(mock_port: u16, pg_url: &str) -> (Gateway, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let config = format!(
        "{}\n[ledger]\npath = \"{}\"\nstore = \"{pg_url}\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        standard_config(free_port(), mock_port, ""),
        dir.path().join("ledger.db").display()
    );
    let mut gw = start_gateway_with(&config);
    wait_for_port(admin, &mut gw.proc_);
    (gw, admin, dir)
}

async fn admin_get(client: &reqwest::Client, admin: u16, path: &str) -> Value {
    let r = client
        .get(format!("http://127.0.0.1:{admin}{path}"))
        .send()
        .await
        .expect("admin request");
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.expect("admin json")
}

async fn ledger_stat(client: &reqwest::Client, admin: u16, stat: &str) -> u64 {
    let text = client
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let needle = format!("stat=\"{stat}\"}}");
    text.lines()
        .find(|l| l.contains(&needle) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ledger stat {stat} in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_postgres_ledger_survive_an_outage() {
    let t0 = Instant::now();
    let mut pg = Postgres::start(None);
    let mock = start_mock(&[]);
    // Both instances start (and migrate the schema) at the same time.
    let url = pg.url.clone();
    let ((gw_a, admin_a, _da), (gw_b, admin_b, _db)) = std::thread::scope(|s| {
        let a = s.spawn(|| gateway(mock.port, &url));
        let b = s.spawn(|| gateway(mock.port, &url));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(
        pg.query_count("SELECT MAX(version)::int8 FROM switchyard_schema")
            .await,
        i64::from(switchyard::ledger::postgres::PG_SCHEMA_VERSION)
    );

    eprintln!("postgres and two gateways up after {:?}", t0.elapsed());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let urls = [
        gw_a.url("/v1/chat/completions"),
        gw_b.url("/v1/chat/completions"),
    ];
    let done = Arc::new(AtomicUsize::new(0));
    let body = json!({
        "model": "openai/gpt-4o-mini",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Say hello to the fleet"}],
    })
    .to_string();

    // Postgres goes away after 30% of the requests and comes back after 60%.
    let outage = {
        let done = Arc::clone(&done);
        let (dir, port, pid) = (pg.dir.clone(), pg.port, pg.pid);
        tokio::task::spawn_blocking(move || {
            let pg = Postgres {
                port,
                pid,
                dir,
                url: String::new(),
            };
            while done.load(Ordering::Relaxed) < TOTAL * 3 / 10 {
                std::thread::sleep(Duration::from_millis(5));
            }
            pg.stop();
            let down_at = Instant::now();
            while done.load(Ordering::Relaxed) < TOTAL * 6 / 10
                || down_at.elapsed() < Duration::from_secs(2)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            let again = Postgres::start(Some((&pg.dir, pg.port)));
            let new_pid = again.pid;
            std::mem::forget(again);
            std::mem::forget(pg);
            new_pid
        })
    };

    let started = Instant::now();
    let results: Vec<(u16, Option<Decimal>, Option<String>, usize)> =
        futures_util::stream::iter(0..TOTAL)
            .map(|i| {
                let (client, url, body, done) =
                    (client.clone(), urls[i % 2].clone(), body.clone(), &done);
                async move {
                    let r = client
                        .post(url)
                        .header("authorization", bearer())
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("request");
                    let status = r.status().as_u16();
                    let header = |n: &str| {
                        r.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let cost = header("x-switchyard-cost-usd")
                        .map(|c| Decimal::from_str(&c).expect("cost header is a decimal"));
                    let id = header("x-switchyard-request-id");
                    let _ = r.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                    (status, cost, id, i % 2)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let elapsed = started.elapsed();
    pg.pid = outage.await.expect("outage task");
    eprintln!(
        "{TOTAL} requests over two instances in {:.1}s ({:.0}/s), Postgres down for part of it",
        elapsed.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64()
    );

    assert!(
        results.iter().all(|(s, _, _, _)| *s == 200),
        "every request answered 200"
    );
    let mut header_sum = Decimal::ZERO;
    for (_, cost, _, _) in &results {
        header_sum += cost.expect("every answer carries its cost");
    }
    assert!(header_sum > Decimal::ZERO);
    let ids: std::collections::HashSet<&str> = results
        .iter()
        .filter_map(|(_, _, id, _)| id.as_deref())
        .collect();
    assert_eq!(ids.len(), TOTAL, "every answer carries its own request id");

    // The outage really happened while traffic flowed: rows went to the spill files.
    let spilled = ledger_stat(&client, admin_a, "rows_spilled").await
        + ledger_stat(&client, admin_b, "rows_spilled").await;
    assert!(spilled > 0, "no row was spilled while Postgres was down");

    // Each instance flushes (and replays its spill file) before answering its spend report.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = admin_get(&client, admin_a, "/admin/spend?by=key&since=all").await;
        let _ = admin_get(&client, admin_b, "/admin/spend?by=key&since=all").await;
        let n = pg.query_count("SELECT COUNT(*) FROM requests").await;
        assert!(n <= TOTAL as i64, "{n} rows: duplicates");
        if n == TOTAL as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {TOTAL} rows reached Postgres"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("all rows in Postgres after {:?}", t0.elapsed());
    assert_eq!(
        // A lone served attempt is kept in its row (`served_inline`), others in `attempts`.
        pg.query_count(
            "SELECT (SELECT COUNT(*) FROM attempts) \
             + (SELECT COUNT(*) FROM requests WHERE served_inline = 1)"
        )
        .await,
        TOTAL as i64,
        "one attempt per request, none lost or doubled by the replay"
    );
    let replayed = ledger_stat(&client, admin_a, "spill_imported").await
        + ledger_stat(&client, admin_b, "spill_imported").await;
    assert!(replayed > 0, "spilled rows were replayed");
    assert_eq!(
        ledger_stat(&client, admin_a, "rows_lost").await
            + ledger_stat(&client, admin_b, "rows_lost").await,
        0
    );

    // The spend report, from either instance, is the fleet's: every request, and the cost
    // headers' exact sum.
    for admin in [admin_a, admin_b] {
        for by in ["key", "model"] {
            let report =
                admin_get(&client, admin, &format!("/admin/spend?by={by}&since=all")).await;
            assert_eq!(report["total"]["requests"], json!(TOTAL), "{report}");
            let total = Decimal::from_str(report["total"]["cost_usd"].as_str().unwrap()).unwrap();
            assert_eq!(total, header_sum, "spend report by {by} vs cost headers");
        }
    }

    // The request log of instance A shows B's requests too.
    let b_id = results
        .iter()
        .find(|r| r.3 == 1)
        .and_then(|r| r.2.clone())
        .unwrap();
    let one = admin_get(&client, admin_a, &format!("/admin/requests/{b_id}")).await;
    assert_eq!(one["request_id"], json!(b_id));
    assert_eq!(one["attempts"].as_array().map(Vec::len), Some(1), "{one}");
    let page = admin_get(&client, admin_a, "/admin/requests?limit=3").await;
    assert_eq!(page["requests"].as_array().map(Vec::len), Some(3));
    assert!(page["next_before"].is_string());

    // The dashboard reads the same Postgres. Its series over 24 hours comes from the hourly
    // rollup the insert batches kept (the replays after the outage added nothing twice), over
    // all time (a few minutes: short buckets) from the rows; both are the fleet's traffic.
    assert_eq!(
        pg.query_count("SELECT SUM(requests)::int8 FROM spend_hourly WHERE dim = 'total'")
            .await,
        TOTAL as i64,
        "the rollup counts each row once"
    );
    for admin in [admin_a, admin_b] {
        for since in ["24h", "all"] {
            let s = admin_get(
                &client,
                admin,
                &format!("/admin/spend/series?since={since}&buckets=24"),
            )
            .await;
            assert_eq!(
                s["total"]["total_requests"],
                json!(TOTAL),
                "{since}: {}",
                s["total"]
            );
            let total = Decimal::from_str(s["total"]["total_cost_usd"].as_str().unwrap()).unwrap();
            assert_eq!(total, header_sum, "series since={since} vs cost headers");
            let by_key: u64 = s["by"]["key"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["total_requests"].as_u64().unwrap())
                .sum();
            assert_eq!(by_key, TOTAL as u64, "{since}");
        }
    }
    // A request's detail and waterfall on the dashboard, from Postgres.
    let r = client
        .get(format!(
            "http://127.0.0.1:{admin_a}/ui/waterfall.svg?id={b_id}"
        ))
        .send()
        .await
        .expect("waterfall");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<svg"));
    assert!(one["route_plan"]["strategy"].is_string(), "{one}");
    eprintln!("checks done after {:?}", t0.elapsed());
    drop((gw_a, gw_b));
}

/// The lab provider's prices (shared with tests/experiments.rs).
const LAB_PRICES: &str = include_str!("fixtures/lab_prices.toml");

/// An instance with an experiment on route `support` (two variants the mock judge tells
/// apart: it scores an answer by the `-qN` of the model that wrote it), its ledger in
/// `pg_url`.
fn experiment_gateway(mock_port: u16, pg_url: &str) -> (Gateway, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.toml");
    std::fs::write(&prices, LAB_PRICES).unwrap();
    let admin = free_port();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{gw}"
threads = 2

[admin]
listen = "127.0.0.1:{admin}"

[ledger]
path = "{ledger}"
store = "{pg_url}"

[pricing]
unpriced = "record_unknown"
overrides = "{prices}"

[[providers]]
name = "lab"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{mock_port}/v1"
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

[[experiments]]
name = "answers"
route = "support"
sticky = "header:x-user-id"
variants = [
  {{ name = "strong", target = "lab/gpt-q9", weight = 1 }},
  {{ name = "weak", target = "lab/gpt-q2", weight = 1 }},
]
[experiments.judge]
target = "lab/judge"
rubric = "Score how well the answer resolves the user's request."
sample = 1.0
mode = "score"
max_concurrency = 4
"#,
        gw = free_port(),
        ledger = dir.path().join("ledger.db").display(),
        prices = prices.display(),
    );
    let mut gw = start_gateway_with(&config);
    wait_for_port(admin, &mut gw.proc_);
    (gw, admin, dir)
}

/// `switchyard experiments report answers --json`, read by the CLI from Postgres.
fn cli_report(gw: &Gateway) -> Value {
    let out = Command::new(BIN)
        .args(["experiments", "report", "answers", "--json", "--config"])
        .arg(&gw.config)
        .output()
        .expect("run the report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

fn variant_of<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["variants"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("no variant {name} in {r:#}"))
}

async fn chat_as(client: &reqwest::Client, gw: &Gateway, user: &str) -> String {
    let r = client
        .post(gw.url("/v1/chat/completions"))
        .header("authorization", bearer())
        .header("x-user-id", user)
        .json(&json!({
            "model": "support",
            "messages": [{"role": "user", "content": "My order did not arrive."}],
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-switchyard-variant"));
    let id = r.headers()["x-switchyard-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = r.bytes().await;
    id
}

async fn feedback(client: &reqwest::Client, gw: &Gateway, key: &str, id: &str) -> u16 {
    client
        .post(gw.url("/v1/feedback"))
        .header("authorization", format!("Bearer {key}"))
        .json(&json!({"request_id": id, "metric": "resolved", "value": true}))
        .send()
        .await
        .expect("feedback")
        .status()
        .as_u16()
}

/// Experiments on a fleet: two instances write assignments, judge verdicts and judge
/// attempts to one Postgres; the report (CLI and either admin API) aggregates both; feedback
/// sent to one instance for a request the other served is accepted (and refused for another
/// key); judge writes made while Postgres is down are spilled and replayed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_on_two_instances_reports_from_one_postgres() {
    const PER_INSTANCE: usize = 30;
    const DURING_OUTAGE: usize = 10;
    let mut pg = Postgres::start(None);
    let mock = start_mock(&[]);
    let url = pg.url.clone();
    let ((gw_a, admin_a, _da), (gw_b, admin_b, _db)) = std::thread::scope(|s| {
        let a = s.spawn(|| experiment_gateway(mock.port, &url));
        let b = s.spawn(|| experiment_gateway(mock.port, &url));
        (a.join().unwrap(), b.join().unwrap())
    });
    let client = reqwest::Client::new();
    let mut a_ids = Vec::new();
    for u in 0..PER_INSTANCE {
        a_ids.push(chat_as(&client, &gw_a, &format!("a-user-{u}")).await);
        chat_as(&client, &gw_b, &format!("b-user-{u}")).await;
    }
    let both = 2 * PER_INSTANCE as u64;
    let judged = |r: &Value| -> u64 {
        r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["judged"].as_u64().unwrap())
            .sum()
    };
    let requests = |r: &Value| -> u64 {
        r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["requests"].as_u64().unwrap())
            .sum()
    };
    // The judge runs in the background on each instance; its writes reach Postgres through
    // each instance's writer (flushed by the admin reads).
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let _ = admin_get(&client, admin_a, "/admin/experiments/answers").await;
        let _ = admin_get(&client, admin_b, "/admin/experiments/answers").await;
        let r = cli_report(&gw_a);
        if judged(&r) == both {
            break r;
        }
        assert!(Instant::now() < deadline, "never all judged: {r:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        requests(&report),
        both,
        "both instances' traffic: {report:#}"
    );
    assert_eq!(report["leader"], "strong", "{report:#}");
    assert_eq!(report["decided"], true, "{report:#}");
    let (st, wk) = (variant_of(&report, "strong"), variant_of(&report, "weak"));
    assert_eq!(st["mean_score"], 9.0);
    assert_eq!(wk["mean_score"], 2.0);
    for v in [st, wk] {
        let judge: Decimal = v["judge_cost_usd"].as_str().unwrap().parse().unwrap();
        assert!(judge > Decimal::ZERO, "{v}");
        assert!(v["cost_per_request_usd"].is_string(), "{v}");
    }
    // Either admin API answers the same fleet-wide report.
    for admin in [admin_a, admin_b] {
        let r = admin_get(&client, admin, "/admin/experiments/answers").await;
        assert_eq!(requests(&r), both);
        assert_eq!(judged(&r), both);
        let list = admin_get(&client, admin, "/admin/experiments").await;
        assert_eq!(list["experiments"][0]["requests"], json!(both));
    }
    // One judge attempt per request, on the judged request's row.
    assert_eq!(
        pg.query_count("SELECT COUNT(*) FROM attempts WHERE role = 'judge'")
            .await,
        both as i64
    );

    // Feedback through instance B on a request instance A served: accepted for the key that
    // made it, 404 for another key.
    assert_eq!(feedback(&client, &gw_b, LIMITED_KEY, &a_ids[0]).await, 404);
    assert_eq!(feedback(&client, &gw_b, GW_KEY, &a_ids[0]).await, 200);
    assert_eq!(feedback(&client, &gw_a, GW_KEY, &a_ids[1]).await, 200);
    let r = cli_report(&gw_b);
    let fb: u64 = r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["feedback"]["resolved"]["count"].as_u64())
        .sum();
    assert_eq!(fb, 2, "{r:#}");

    // Postgres goes away: rows, assignments, judge attempts and verdicts spill on instance
    // A; once it is back they are replayed, each exactly once.
    pg.stop();
    for u in 0..DURING_OUTAGE {
        chat_as(&client, &gw_a, &format!("late-user-{u}")).await;
    }
    // Let the judge finish against the dead database (its writes spill).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = Postgres::start(Some((&pg.dir, pg.port)));
    pg.pid = again.pid;
    std::mem::forget(again);
    let total = both + DURING_OUTAGE as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let _ = client
            .get(format!(
                "http://127.0.0.1:{admin_a}/admin/experiments/answers"
            ))
            .send()
            .await;
        let r = cli_report(&gw_b);
        if judged(&r) == total {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the outage's writes never came back: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(requests(&report), total, "{report:#}");
    assert!(ledger_stat(&client, admin_a, "extras_spilled").await > 0);
    assert_eq!(ledger_stat(&client, admin_a, "extras_lost").await, 0);
    assert_eq!(
        pg.query_count("SELECT COUNT(*) FROM attempts WHERE role = 'judge'")
            .await,
        total as i64,
        "replayed judge attempts are not doubled"
    );
    assert_eq!(
        pg.query_count("SELECT COUNT(*) FROM experiment_requests")
            .await,
        total as i64
    );
    // A row's cost includes its judge attempt exactly once.
    assert_eq!(
        pg.query_count(
            "SELECT COUNT(*) FROM requests r WHERE r.cost_usd::numeric <> \
             (SELECT SUM(a.cost_usd::numeric) FROM attempts a WHERE a.request_id = r.request_id)"
        )
        .await,
        0
    );
    drop((gw_a, gw_b));
}
