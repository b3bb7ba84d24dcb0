//! Integration tests for the request ledger: the writer thread, the bounded queue with its
//! wait-then-spill policy, spill import, shutdown, reopening, and reports over what was written.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use switchyard::ledger::{
    count_rows, parse_since, read_row, schema_version, spend_report, spend_report_range, GroupBy,
    Ledger, LedgerAttempt, LedgerConfig, LedgerError, LedgerHandle, LedgerRow, Role, Totals,
    SCHEMA_VERSION,
};
use switchyard::usage::Usage;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn cfg(path: &Path) -> LedgerConfig {
    LedgerConfig {
        flush_interval: Duration::from_millis(5),
        ..LedgerConfig::new(path)
    }
}

/// A request that failed over once and was served: the served attempt carries the tokens and
/// the cost (`None`: unpriced).
fn row(id: &str, cost: Option<Decimal>) -> LedgerRow {
    let failed = LedgerAttempt {
        key_index: Some(1),
        status: Some(503),
        error_class: Some("server_error".into()),
        ms: Some(1.25),
        ..LedgerAttempt::unbilled(Role::Failed, "openai", "gpt-4o-mini")
    };
    let served = LedgerAttempt {
        key_index: Some(0),
        status: Some(200),
        ms: Some(3.5),
        usage: Usage {
            input: 10,
            output: 5,
            cached_input: 2,
            cache_write: 1,
            reasoning: 0,
        },
        cost_usd: cost,
        cost_unknown: cost.is_none(),
        ..LedgerAttempt::unbilled(Role::Served, "openai", "gpt-4o-mini")
    };
    let mut r = LedgerRow {
        request_id: id.to_string(),
        ts_ms: now_ms() - 1_000,
        gateway_key: Some("team-a".into()),
        feature: Some("chat".into()),
        route: Some("default".into()),
        endpoint: "chat_completions".into(),
        requested_model: Some("fast".into()),
        provider: Some("openai".into()),
        model: Some("gpt-4o-mini".into()),
        attempt_count: 2,
        status: 200,
        total_ms: 42.5,
        unit: None,
        quantity: None,
        route_reason: None,
        reserved_usd: None,
        ..LedgerRow::default()
    };
    r.set_attempts(vec![failed, served]);
    r
}

/// Spill files (active or rotated) next to `db`.
fn spill_files(db: &Path) -> Vec<PathBuf> {
    let name = db.file_name().expect("name").to_string_lossy().into_owned();
    let dir = db.parent().expect("dir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with(&format!("{name}.spill")))
                .unwrap_or(false)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn handle_is_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<LedgerHandle>();
    fn assert_send<T: Send>() {}
    assert_send::<Ledger>();
}

#[tokio::test]
async fn recorded_row_round_trips_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db/ledger.sqlite");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    let mut r = row("rt-1", Some(dec("0.000123456789")));
    r.saved_usd = Some(dec("1.5"));
    r.ttft_ms = Some(12.25);
    r.stream = true;
    r.estimated = true;
    r.error_class = Some("upstream_5xx".into());
    r.usage.reasoning = u64::from(u32::MAX) + 7;
    handle.record(r.clone()).await;
    handle.flush().await.expect("flush");
    let back = read_row(&path, "rt-1").expect("read").expect("row");
    assert_eq!(back, r);
    assert_eq!(back.cost_usd.expect("cost").to_string(), "0.000123456789");
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!(stats.rows_written, 1);
    assert_eq!(stats.rows_spilled, 0);
    assert_eq!(stats.rows_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_rows_are_all_written_with_exact_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    const TASKS: u64 = 100;
    const PER_TASK: u64 = 100;
    let cost_of = |t: u64, i: u64| Decimal::new(((t * 7_919 + i * 104_729) % 1_000_003) as i64, 12);
    let mut expected = Decimal::ZERO;
    for t in 0..TASKS {
        for i in 0..PER_TASK {
            expected += cost_of(t, i);
        }
    }
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let mut r = row(&format!("c-{t}-{i}"), Some(cost_of(t, i)));
                r.gateway_key = Some(format!("key-{}", t % 7));
                h.record(r).await;
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    handle.flush().await.expect("flush");
    assert_eq!(count_rows(&path).expect("count"), TASKS * PER_TASK);
    let report = spend_report(&path, GroupBy::Key, 0).expect("report");
    assert_eq!(report.total.requests, TASKS * PER_TASK);
    assert_eq!(report.total.cost_usd, expected);
    assert_eq!(report.rows.len(), 7);
    let group_sum: Decimal = report.rows.iter().map(|r| r.cost_usd).sum();
    assert_eq!(group_sum, expected);
    assert_eq!(report.total.usage.input, 10 * TASKS * PER_TASK);
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!(stats.rows_written, TASKS * PER_TASK);
    assert_eq!(stats.duplicates, 0);
    assert_eq!(stats.rows_lost, 0);
    // Whatever was spilled under load was imported.
    assert_eq!(stats.spill_imported, stats.rows_spilled);
    assert!(
        stats.batches >= 1 && stats.batches < TASKS * PER_TASK,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tiny_queue_waits_then_spills_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let config = LedgerConfig {
        queue_capacity: 4,
        batch_max: 2,
        flush_interval: Duration::from_millis(1),
        max_wait: Duration::from_millis(5),
        ..LedgerConfig::new(&path)
    };
    let (ledger, handle) = Ledger::open(config).expect("open");
    let pause = handle.pause_writer();
    const N: u64 = 200;
    let mut tasks = Vec::new();
    for t in 0..20 {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..N / 20 {
                h.record(row(&format!("s-{t}-{i}"), Some(dec("0.001"))))
                    .await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    // The writer is held with one batch (1 or 2 rows) in hand; the queue is full.
    let stats = handle.stats();
    assert_eq!(stats.rows_written, 0, "{stats:?}");
    assert_eq!(stats.rows_queued, 4, "{stats:?}");
    assert!(
        stats.rows_spilled == N - 4 - 1 || stats.rows_spilled == N - 4 - 2,
        "{stats:?}"
    );
    assert!(stats.producer_waits >= stats.rows_spilled, "{stats:?}");
    assert!(!spill_files(&path).is_empty());
    drop(pause);
    handle.flush().await.expect("flush");
    assert_eq!(count_rows(&path).expect("count"), N);
    let stats = handle.stats();
    assert_eq!(stats.rows_written, N, "{stats:?}");
    assert_eq!(stats.spill_imported, stats.rows_spilled, "{stats:?}");
    assert_eq!(stats.duplicates, 0);
    assert_eq!(stats.rows_lost, 0);
    assert_eq!(stats.rows_queued, 0);
    assert!(spill_files(&path).is_empty(), "{:?}", spill_files(&path));
    let report = spend_report(&path, GroupBy::Model, 0).expect("report");
    assert_eq!(report.total.cost_usd, dec("0.2"));
    ledger.shutdown().expect("shutdown");
}

#[test]
fn record_blocking_uses_the_same_wait_then_spill_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let config = LedgerConfig {
        queue_capacity: 2,
        batch_max: 1,
        flush_interval: Duration::from_millis(1),
        max_wait: Duration::from_millis(2),
        ..LedgerConfig::new(&path)
    };
    let (ledger, handle) = Ledger::open(config).expect("open");
    let pause = handle.pause_writer();
    let start = Instant::now();
    for i in 0..20 {
        handle.record_blocking(row(&format!("b-{i}"), None));
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    let stats = handle.stats();
    assert!(
        stats.producer_waits > 0 && stats.rows_spilled >= 17,
        "{stats:?}"
    );
    drop(pause);
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!(count_rows(&path).expect("count"), 20);
    assert_eq!(stats.rows_written, 20);
    assert_eq!(stats.spill_imported, stats.rows_spilled);
}

#[tokio::test]
async fn duplicate_request_id_gives_one_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    handle.record(row("same", Some(dec("0.01")))).await;
    handle.flush().await.expect("flush");
    let mut again = row("same", Some(dec("0.02")));
    again.status = 503;
    handle.record(again).await;
    handle.record(row("other", Some(dec("0.03")))).await;
    handle.flush().await.expect("flush");
    assert_eq!(count_rows(&path).expect("count"), 2);
    let kept = read_row(&path, "same").expect("read").expect("row");
    assert_eq!((kept.status, kept.cost_usd), (200, Some(dec("0.01"))));
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!((stats.rows_written, stats.duplicates), (2, 1));
    let report = spend_report(&path, GroupBy::Key, 0).expect("report");
    assert_eq!(report.total.cost_usd, dec("0.04"));
}

#[tokio::test]
async fn shutdown_writes_everything_queued_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let config = LedgerConfig {
        flush_interval: Duration::from_secs(30),
        ..LedgerConfig::new(&path)
    };
    let (ledger, handle) = Ledger::open(config).expect("open");
    for i in 0..50 {
        handle
            .record(row(&format!("q-{i}"), Some(dec("0.5"))))
            .await;
    }
    let start = Instant::now();
    let stats = ledger.shutdown().expect("shutdown");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(stats.rows_written, 50);
    assert_eq!(count_rows(&path).expect("count"), 50);
}

/// The writer sleeps on its timer while gathering a batch (a send does not wake it), so what
/// must wake it early is checked here: a flush request, and a queue more than half full.
#[tokio::test]
async fn a_flush_or_a_filling_queue_wakes_the_writer_before_its_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let config = LedgerConfig {
        flush_interval: Duration::from_secs(60),
        queue_capacity: 100,
        ..LedgerConfig::new(&path)
    };
    let (ledger, handle) = Ledger::open(config).expect("open");

    handle.record(row("w-0", Some(dec("0.5")))).await;
    let start = Instant::now();
    handle.flush().await.expect("flush");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "flush waited {:?}",
        start.elapsed()
    );
    assert_eq!(count_rows(&path).expect("count"), 1);

    // A queue of 100: the 51st row queued nudges the writer; nothing waits for the 60 s.
    handle.record(row("w-1", Some(dec("0.5")))).await;
    tokio::time::sleep(Duration::from_millis(50)).await; // the writer now gathers, asleep
    for i in 2..=60 {
        handle
            .record(row(&format!("w-{i}"), Some(dec("0.5"))))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_rows(&path).expect("count") < 52 {
        assert!(
            Instant::now() < deadline,
            "the writer was not woken by a filling queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Below half full, rows wait for the timer (or a flush, or shutdown).
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!(stats.rows_written, 61);
    assert_eq!(stats.producer_waits, 0);
}

#[tokio::test]
async fn reopen_keeps_rows_and_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    for i in 0..3 {
        handle
            .record(row(&format!("r-{i}"), Some(dec("1.25"))))
            .await;
    }
    ledger.shutdown().expect("shutdown");
    assert_eq!(schema_version(&path).expect("version"), SCHEMA_VERSION);

    let (ledger, handle) = Ledger::open(cfg(&path)).expect("reopen");
    assert_eq!(schema_version(&path).expect("version"), SCHEMA_VERSION);
    assert_eq!(count_rows(&path).expect("count"), 3);
    handle.record(row("r-0", Some(dec("9")))).await; // already there
    handle.record(row("r-3", Some(dec("1.25")))).await;
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!((stats.rows_written, stats.duplicates), (1, 1));
    assert_eq!(count_rows(&path).expect("count"), 4);
    let report = spend_report(&path, GroupBy::Provider, 0).expect("report");
    assert_eq!(report.total.cost_usd, dec("5.00"));
}

#[tokio::test]
async fn rows_recorded_after_shutdown_spill_and_are_imported_on_next_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    ledger.shutdown().expect("shutdown");
    handle.record(row("late-1", None)).await;
    handle.record(row("late-2", None)).await;
    assert_eq!(handle.stats().rows_spilled, 2);
    assert!(matches!(handle.flush().await, Err(LedgerError::Closed)));
    assert_eq!(count_rows(&path).expect("count"), 0);
    assert_eq!(spill_files(&path).len(), 1);

    let (ledger, handle) = Ledger::open(cfg(&path)).expect("reopen");
    handle.flush().await.expect("flush");
    assert_eq!(count_rows(&path).expect("count"), 2);
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!(stats.spill_imported, 2);
    assert!(spill_files(&path).is_empty());
    let report = spend_report(&path, GroupBy::Key, 0).expect("report");
    assert_eq!(report.total.unknown_cost_requests, 2);
    assert!(report.to_table().contains("+ 2 requests with unknown cost"));
}

#[tokio::test]
async fn leftover_spill_files_are_imported_on_open_skipping_torn_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let line = |id: &str| serde_json::to_string(&row(id, Some(dec("0.1")))).expect("json");
    let active = format!("{}\n{}\n{{\"request_id\":\"to", line("a"), line("b"));
    let rotated = format!("{}\n{}\n", line("c"), line("a")); // "a" again: a duplicate
    std::fs::write(dir.path().join("ledger.db.spill.jsonl"), active).expect("write");
    std::fs::write(
        dir.path()
            .join("ledger.db.spill.000000000000001-000000.jsonl"),
        rotated,
    )
    .expect("write");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    handle.flush().await.expect("flush");
    assert_eq!(count_rows(&path).expect("count"), 3);
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!(stats.spill_imported, 4, "{stats:?}");
    assert_eq!(stats.duplicates, 1, "{stats:?}");
    assert_eq!(stats.spill_bad_lines, 1, "{stats:?}");
    assert_eq!(stats.rows_written, 3, "{stats:?}");
    assert!(spill_files(&path).is_empty());
}

#[tokio::test]
async fn failed_batch_is_spilled_and_retried_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    handle.record(row("ok-1", Some(dec("0.25")))).await;
    handle.flush().await.expect("flush");
    // Break the table from outside: the next commit fails at once.
    let outside = rusqlite::Connection::open(&path).expect("open");
    outside
        .execute_batch("ALTER TABLE requests RENAME TO requests_away")
        .expect("rename");
    handle.record(row("kept-1", Some(dec("0.25")))).await;
    handle.record(row("kept-2", Some(dec("0.25")))).await;
    let err = handle.flush().await.expect_err("the write must fail");
    assert!(matches!(err, LedgerError::Write(_)), "{err}");
    let stats = handle.stats();
    assert!(stats.write_errors >= 1, "{stats:?}");
    assert_eq!(stats.rows_spilled, 2, "{stats:?}");
    assert_eq!(stats.rows_lost, 0, "{stats:?}");
    outside
        .execute_batch("ALTER TABLE requests_away RENAME TO requests")
        .expect("rename back");
    handle.flush().await.expect("flush after repair");
    assert_eq!(count_rows(&path).expect("count"), 3);
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!((stats.rows_written, stats.spill_imported), (3, 2));
    assert!(spill_files(&path).is_empty());
}

#[tokio::test]
async fn report_over_a_live_ledger_groups_by_feature_and_prints_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open");
    for (i, (feature, cost)) in [
        (Some("search"), "0.000001"),
        (Some("search"), "0.000002"),
        (Some("summarize"), "0.5"),
        (None, "0.25"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = row(&format!("f-{i}"), Some(dec(cost)));
        r.feature = feature.map(Into::into);
        handle.record(r).await;
    }
    let mut old = row("old", Some(dec("100")));
    old.ts_ms = now_ms() - 10 * 86_400_000;
    handle.record(old).await;
    handle.flush().await.expect("flush");
    let since = parse_since("7d", now_ms()).expect("since");
    let report = spend_report(&path, GroupBy::Feature, since).expect("report");
    let groups: Vec<&str> = report.rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(groups, vec!["summarize", "(none)", "search"]);
    assert_eq!(report.total.cost_usd, dec("0.750003"));
    assert_eq!(report.total.requests, 4);
    let table = report.to_table();
    let total = table
        .lines()
        .find(|l| l.starts_with("TOTAL"))
        .expect("total");
    assert_eq!(
        total.split_whitespace().collect::<Vec<_>>(),
        vec!["TOTAL", "4", "0", "40", "20", "8", "4", "0.750003", "0.000000"]
    );
    let json = report.to_json();
    assert_eq!(json["total"]["cost_usd"], "0.750003");
    assert_eq!(json["rows"][2]["group"], "search");
    let all = spend_report(&path, GroupBy::Feature, 0).expect("report");
    assert_eq!(all.total.requests, 5);
    ledger.shutdown().expect("shutdown");
}

#[tokio::test]
async fn a_record_future_dropped_while_waiting_spills_its_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let config = LedgerConfig {
        queue_capacity: 1,
        batch_max: 1,
        flush_interval: Duration::from_millis(1),
        max_wait: Duration::from_secs(60),
        ..LedgerConfig::new(&path)
    };
    let (ledger, handle) = Ledger::open(config).expect("open");
    let pause = handle.pause_writer();
    handle.record(row("held", None)).await; // the writer takes it and stops at the gate
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.record(row("queued", None)).await; // fills the one-slot queue
                                              // This one has to wait (up to 60 s); the caller gives up after 20 ms.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        handle.record(row("cancelled", None)),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the record call should still have been waiting"
    );
    let stats = handle.stats();
    assert_eq!(
        (stats.producer_waits, stats.rows_spilled),
        (1, 1),
        "{stats:?}"
    );
    drop(pause);
    handle.flush().await.expect("flush");
    assert_eq!(count_rows(&path).expect("count"), 3);
    assert!(read_row(&path, "cancelled").expect("read").is_some());
    ledger.shutdown().expect("shutdown");
}

/// The fixture: a ledger written by the release before attempts were costed (schema 2), by the
/// binary against the mock (`tests/fixtures/ledger/make-v2.sh`), with the spend reports that
/// release gave for it.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ledger");

#[tokio::test]
async fn a_ledger_written_by_the_previous_release_migrates_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchyard-ledger.db");
    std::fs::copy(format!("{FIXTURE}/ledger-v2.sqlite"), &path).expect("copy fixture");
    assert_eq!(schema_version(&path).expect("version"), 2);
    // What the old release stored, read with plain SQL before anything touches the file.
    let old: Vec<(String, Option<String>, bool, i64, i64)> = {
        let conn = rusqlite::Connection::open(&path).expect("open");
        let mut stmt = conn
            .prepare(
                "SELECT request_id, cost_usd, cost_unknown, input_tokens, output_tokens \
                 FROM requests ORDER BY request_id",
            )
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    assert_eq!(old.len(), 13);

    let (ledger, handle) = Ledger::open(cfg(&path)).expect("open migrates");
    assert_eq!(schema_version(&path).expect("version"), SCHEMA_VERSION);
    assert_eq!(count_rows(&path).expect("count"), 13);
    for (id, cost, unknown, input, output) in &old {
        let r = read_row(&path, id).expect("read").expect("row kept");
        assert_eq!(r.cost_usd, cost.as_deref().map(dec), "{id}");
        assert_eq!(r.cost_unknown, *unknown, "{id}");
        assert_eq!(
            (r.usage.input, r.usage.output),
            (*input as u64, *output as u64)
        );
        // The attempts add up to the row.
        let t = Totals::of(&r.attempts);
        assert_eq!((t.usage, t.cost_usd), (r.usage, r.cost_usd), "{id}: {r:?}");
        assert!(r.attempts.iter().filter(|a| a.role == Role::Served).count() <= 1);
    }
    // The same spend, whatever the grouping.
    // (By unit is newer than the fixture: v2 rows have no unit.)
    for by in GroupBy::ALL.into_iter().filter(|b| *b != GroupBy::Unit) {
        let text = std::fs::read_to_string(format!("{FIXTURE}/spend-v2-by-{by}.json"))
            .expect("fixture report");
        let then: serde_json::Value = serde_json::from_str(&text).expect("json");
        let now = spend_report_range(&path, by, 0, i64::MAX)
            .expect("report")
            .to_json();
        assert_eq!(now["rows"], then["rows"], "by {by}");
        assert_eq!(now["total"], then["total"], "by {by}");
    }
    // Attempts as the old release listed them, now with roles.
    let conn = rusqlite::Connection::open(&path).expect("open");
    let id_of = |route_or_status: &str| -> String {
        conn.query_row(
            &format!("SELECT request_id FROM requests WHERE {route_or_status}"),
            [],
            |r| r.get(0),
        )
        .expect("row")
    };
    let failover = read_row(&path, &id_of("route = 'failover'"))
        .expect("read")
        .expect("row");
    let roles: Vec<Role> = failover.attempts.iter().map(|a| a.role).collect();
    assert_eq!(roles, [Role::Failed, Role::Served]);
    assert_eq!(
        failover.attempts[0].error_class.as_deref(),
        Some("ConnectRefused")
    );
    assert_eq!(failover.attempts[1].cost_usd, failover.cost_usd);
    let limited = read_row(&path, &id_of("status = 429"))
        .expect("read")
        .expect("row");
    let roles: Vec<Role> = limited.attempts.iter().map(|a| a.role).collect();
    assert_eq!(roles, [Role::Failed, Role::Failed, Role::Served]);
    assert!(limited.attempts.iter().all(|a| a.status == Some(429)
        && a.error_class.as_deref() == Some("rate_limited")
        && a.cost_usd == Some(Decimal::ZERO)));

    // New rows go in beside the old ones, and the report by model adds a race loser's cost to
    // its own model.
    let before = spend_report_range(&path, GroupBy::Model, 0, i64::MAX).expect("report");
    let mut raced = row("raced", Some(dec("0.001")));
    let mut attempts = raced.attempts.clone();
    attempts.push(LedgerAttempt {
        usage: Usage {
            input: 10,
            output: 100,
            ..Usage::default()
        },
        cost_usd: Some(dec("0.0016")),
        cost_unknown: false,
        ..LedgerAttempt::unbilled(Role::RaceLoser, "anthropic", "claude-sonnet-4-5")
    });
    raced.set_attempts(attempts);
    raced.ts_ms = 1;
    handle.record(raced).await;
    ledger.shutdown().expect("shutdown");
    let after = spend_report_range(&path, GroupBy::Model, 0, i64::MAX).expect("report");
    assert_eq!(after.total.cost_usd, before.total.cost_usd + dec("0.0026"));
    let cost = |r: &switchyard::ledger::SpendReport, g: &str| {
        r.rows
            .iter()
            .find(|x| x.group == g)
            .map(|x| (x.requests, x.cost_usd))
    };
    let (claude_n, claude_cost) = cost(&before, "anthropic/claude-sonnet-4-5").expect("claude");
    assert_eq!(
        cost(&after, "anthropic/claude-sonnet-4-5"),
        Some((claude_n, claude_cost + dec("0.0016")))
    );
    let (gpt_n, gpt_cost) = cost(&before, "openai/gpt-4o-mini").expect("gpt");
    assert_eq!(
        cost(&after, "openai/gpt-4o-mini"),
        Some((gpt_n + 1, gpt_cost + dec("0.001")))
    );
}

#[tokio::test]
async fn spill_lines_left_by_the_previous_release_are_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    std::fs::copy(
        format!("{FIXTURE}/spill-v2.jsonl"),
        dir.path().join("ledger.db.spill.jsonl"),
    )
    .expect("copy spill");
    let (ledger, _handle) = Ledger::open(cfg(&path)).expect("open");
    let stats = ledger.shutdown().expect("shutdown");
    assert_eq!((stats.spill_imported, stats.spill_bad_lines), (2, 0));
    assert!(spill_files(&path).is_empty());
    let priced = read_row(&path, "req_spill_v2_priced")
        .expect("read")
        .expect("row");
    assert_eq!(priced.cost_usd, Some(dec("0.000123456789")));
    let roles: Vec<Role> = priced.attempts.iter().map(|a| a.role).collect();
    assert_eq!(roles, [Role::Failed, Role::Served]);
    assert_eq!(priced.attempts[1].cost_usd, priced.cost_usd);
    let unpriced = read_row(&path, "req_spill_v2_unpriced")
        .expect("read")
        .expect("row");
    assert!(unpriced.cost_usd.is_none() && unpriced.cost_unknown);
    assert!(unpriced.attempts[0].has_unknown_cost());
}
