//! Unit tests for the ledger: store round-trips and migrations, spill files, `parse_since`,
//! report grouping/sorting and the table/JSON output.

use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::report::{format_ms, NONE_GROUP};
use super::spill::{read_chunks, Spill, SpillReadError};
use super::store::{insert_rows, open_writer, Inserted};
use super::*;
use crate::usage::Usage;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

fn full_row(id: &str) -> LedgerRow {
    LedgerRow {
        request_id: id.to_string(),
        ts_ms: 1_767_225_600_123,
        gateway_key: Some("team-a".into()),
        feature: Some("search".into()),
        route: Some("default".into()),
        endpoint: "chat_completions".into(),
        requested_model: Some("fast".into()),
        provider: Some("openai".into()),
        model: Some("gpt-4o-mini".into()),
        attempts: vec![
            LedgerAttempt {
                key_index: Some(1),
                status: Some(503),
                error_class: Some("server_error".into()),
                ms: Some(4.25),
                ..LedgerAttempt::unbilled(Role::Failed, "openai", "gpt-4o-mini")
            },
            LedgerAttempt {
                key_index: Some(0),
                status: Some(200),
                ms: Some(12.5),
                usage: Usage {
                    input: 1200,
                    output: 340,
                    cached_input: 1024,
                    cache_write: 7,
                    reasoning: 100,
                },
                cost_usd: Some(dec("0.000123456789")),
                ..LedgerAttempt::unbilled(Role::Served, "openai", "gpt-4o-mini")
            },
        ],
        attempt_count: 2,
        status: 200,
        error_class: None,
        cache_hit: false,
        stream: true,
        usage: Usage {
            input: 1200,
            output: 340,
            cached_input: 1024,
            cache_write: 7,
            reasoning: 100,
        },
        cost_usd: Some(dec("0.000123456789")),
        cost_unknown: false,
        saved_usd: None,
        estimated: true,
        ttft_ms: Some(81.25),
        total_ms: 912.5,
        unit: Some("tokens".into()),
        quantity: Some(1571),
        route_reason: Some("cheapest: openai/gpt-4o-mini=$0.0001; removed groq/x (vision)".into()),
        reserved_usd: Some(Decimal::new(12_345, 7)),
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    id: &str,
    ts: i64,
    key: Option<&str>,
    provider: Option<&str>,
    model: Option<&str>,
    status: u16,
    cost: Option<&str>,
    input: u64,
) -> LedgerRow {
    LedgerRow {
        request_id: id.into(),
        ts_ms: ts,
        gateway_key: key.map(Into::into),
        provider: provider.map(Into::into),
        model: model.map(Into::into),
        endpoint: "chat_completions".into(),
        attempt_count: 1,
        status,
        usage: Usage {
            input,
            output: 1,
            ..Usage::default()
        },
        cost_usd: cost.map(dec),
        cost_unknown: cost.is_none(),
        total_ms: 1.0,
        route_reason: None,
        reserved_usd: None,
        ..LedgerRow::default()
    }
}

fn db_with(dir: &Path, rows: &[LedgerRow]) -> std::path::PathBuf {
    let path = dir.join("ledger.db");
    let mut conn = open_writer(&path).expect("open");
    insert_rows(&mut conn, rows).expect("insert");
    path
}

#[test]
fn store_round_trips_every_field_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = full_row("req-1");
    r.usage.input = u64::MAX; // saturates to i64::MAX in SQLite
    let path = db_with(dir.path(), std::slice::from_ref(&r));
    let back = read_row(&path, "req-1").expect("read").expect("row exists");
    assert_eq!(back.cost_usd, Some(dec("0.000123456789")));
    assert_eq!(
        back.cost_usd.map(|d| d.to_string()).as_deref(),
        Some("0.000123456789")
    );
    let mut expected = r.clone();
    expected.usage.input = i64::MAX as u64;
    assert_eq!(back, expected);
    assert_eq!(read_row(&path, "nope").expect("read"), None);
}

#[test]
fn money_is_stored_as_text_not_real() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_with(dir.path(), &[full_row("a")]);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let (kind, text): (String, String) = conn
        .query_row("SELECT typeof(cost_usd), cost_usd FROM requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("query");
    assert_eq!(kind, "text");
    assert_eq!(text, "0.000123456789");
}

#[test]
fn duplicate_request_id_is_ignored_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.db");
    let mut conn = open_writer(&path).expect("open");
    let first = full_row("dup");
    let mut second = full_row("dup");
    second.status = 500;
    let done = insert_rows(&mut conn, [&first, &second, &full_row("other")]).expect("insert");
    assert_eq!(
        done,
        Inserted {
            new: 2,
            duplicates: 1
        }
    );
    assert_eq!(count_rows(&path).expect("count"), 2);
    // The first write wins.
    let kept = read_row(&path, "dup").expect("read").expect("row");
    assert_eq!(kept.status, 200);
}

#[test]
fn migrations_set_user_version_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dirs/ledger.db");
    let _ = open_writer(&path).expect("first open creates dirs and schema");
    assert_eq!(schema_version(&path).expect("version"), SCHEMA_VERSION);
    let mut conn = open_writer(&path).expect("second open");
    insert_rows(&mut conn, [&full_row("x")]).expect("insert");
    drop(conn);
    let _ = open_writer(&path).expect("third open");
    assert_eq!(schema_version(&path).expect("version"), SCHEMA_VERSION);
    assert_eq!(count_rows(&path).expect("count"), 1);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .expect("pragma");
    drop(conn);
    assert!(matches!(
        open_writer(&path),
        Err(LedgerError::SchemaTooNew { .. })
    ));
    assert!(matches!(
        spend_report(&path, GroupBy::Key, 0),
        Err(LedgerError::SchemaTooNew { .. })
    ));
}

#[test]
fn reports_do_not_create_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.db");
    assert!(matches!(
        spend_report(&path, GroupBy::Model, 0),
        Err(LedgerError::NotFound(_))
    ));
    assert!(!path.exists());
}

#[test]
fn spill_append_rotate_and_read_back_skipping_bad_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.db");
    let spill = Spill::new(&db);
    assert!(!spill.any_files());
    let rows: Vec<LedgerRow> = (0..5).map(|i| full_row(&format!("s{i}"))).collect();
    spill.append(rows[..3].iter()).expect("append");
    assert!(spill.is_pending());
    // A torn line from a crash in the middle of a write.
    let active = dir.path().join("ledger.db.spill.jsonl");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"request_id\":\"torn\n"))
        .expect("write torn line");
    spill.append(rows[3..].iter()).expect("append");
    spill.rotate().expect("rotate");
    assert!(!spill.is_pending());
    assert!(!active.exists());
    let files = spill.rotated_files().expect("list");
    assert_eq!(files.len(), 1);
    // Appends after rotation go to a fresh active file, not the one being imported.
    spill.append([&full_row("late")]).expect("append");
    assert!(active.exists());
    assert_eq!(spill.rotated_files().expect("list"), files);

    let mut got = Vec::new();
    let bad = read_chunks(&files[0], 2, |chunk: Vec<LedgerRow>, _extras| {
        assert!(chunk.len() <= 2);
        got.extend(chunk);
        Ok::<(), ()>(())
    });
    let bad = match bad {
        Ok(bad) => bad,
        Err(SpillReadError::Io(e)) => panic!("io: {e}"),
        Err(SpillReadError::Sink(())) => panic!("sink"),
    };
    assert_eq!(bad, 1);
    assert_eq!(got, rows);
}

#[test]
fn parse_since_cases() {
    let now = 1_800_000_000_000;
    assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400_000));
    assert_eq!(parse_since("24h", now), Ok(now - 24 * 3_600_000));
    assert_eq!(parse_since("30m", now), Ok(now - 30 * 60_000));
    assert_eq!(parse_since("45s", now), Ok(now - 45_000));
    assert_eq!(parse_since("2w", now), Ok(now - 14 * 86_400_000));
    assert_eq!(parse_since(" 0d ", now), Ok(now));
    // The shared duration grammar: fractions and compounds.
    assert_eq!(parse_since("1.5d", now), Ok(now - 36 * 3_600_000));
    assert_eq!(parse_since("1d12h", now), Ok(now - 36 * 3_600_000));
    assert_eq!(parse_since("all", now), Ok(0));
    assert_eq!(parse_since("1970-01-01", now), Ok(0));
    assert_eq!(parse_since("2026-11-01", now), Ok(1_793_491_200_000));
    assert_eq!(parse_since("2024-02-29", now), Ok(1_709_164_800_000));
    for bad in [
        "",
        "7",
        "d",
        "7x",
        "-7d",
        "2025-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-1-01",
        "2026-01-32",
        "20a6-01-01",
        "99999999999999999d",
    ] {
        assert!(parse_since(bad, now).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn format_ms_is_utc() {
    assert_eq!(format_ms(0), "1970-01-01 00:00 UTC");
    assert_eq!(
        format_ms(1_793_491_200_000 + 90 * 60_000),
        "2026-11-01 01:30 UTC"
    );
    assert_eq!(format_ms(-60_000), "1969-12-31 23:59 UTC");
}

fn sample_db(dir: &Path) -> std::path::PathBuf {
    let rows = vec![
        row(
            "1",
            1000,
            Some("a"),
            Some("openai"),
            Some("gpt"),
            200,
            Some("0.10"),
            10,
        ),
        row(
            "2",
            1001,
            Some("a"),
            Some("openai"),
            Some("gpt"),
            200,
            Some("0.000000001"),
            20,
        ),
        row(
            "3",
            1002,
            Some("b"),
            Some("anthropic"),
            Some("claude"),
            200,
            Some("0.5"),
            30,
        ),
        row("4", 1003, None, Some("anthropic"), None, 502, None, 40),
        row("5", 1004, Some("b"), None, None, 0, Some("0"), 0),
        row(
            "6",
            5000,
            Some("late"),
            Some("x"),
            Some("y"),
            200,
            Some("9"),
            1,
        ),
        row(
            "7",
            10,
            Some("early"),
            Some("x"),
            Some("y"),
            200,
            Some("9"),
            1,
        ),
    ];
    db_with(dir, &rows)
}

#[test]
fn report_groups_sorts_and_sums_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_db(dir.path());
    let rep = spend_report_range(&path, GroupBy::Key, 1000, 4999).expect("report");
    let groups: Vec<&str> = rep.rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(groups, vec!["b", "a", NONE_GROUP]);
    let a = &rep.rows[1];
    assert_eq!(a.requests, 2);
    assert_eq!(a.cost_usd, dec("0.100000001"));
    assert_eq!(a.usage.input, 30);
    let b = &rep.rows[0];
    assert_eq!((b.requests, b.errors), (2, 1)); // status 0 counts as an error
    assert_eq!(rep.rows[2].unknown_cost_requests, 1);
    assert_eq!(rep.total.requests, 5);
    assert_eq!(rep.total.errors, 2);
    assert_eq!(rep.total.cost_usd, dec("0.600000001"));
    assert_eq!(rep.total.unknown_cost_requests, 1);
    assert_eq!(rep.total.usage.input, 100);
    assert_eq!(rep.total.usage.output, 5);

    let by_model = spend_report_range(&path, GroupBy::Model, 1000, 4999).expect("report");
    let groups: Vec<&str> = by_model.rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(
        groups,
        vec![
            "anthropic/claude",
            "openai/gpt",
            "(none)",
            "anthropic/(none)"
        ]
    );
    let by_provider = spend_report_range(&path, GroupBy::Provider, 0, i64::MAX).expect("report");
    let groups: Vec<&str> = by_provider.rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(groups, vec!["x", "anthropic", "openai", "(none)"]);
    assert_eq!(by_provider.rows[0].requests, 2);
    assert_eq!(by_provider.total.requests, 7);
}

/// Byte offset just past the `n`th (0-based) whitespace-separated token of `line`.
fn token_end(line: &str, n: usize) -> Option<usize> {
    let mut seen = 0;
    let mut in_token = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if in_token {
                if seen == n {
                    return Some(i);
                }
                seen += 1;
            }
            in_token = false;
        } else {
            in_token = true;
        }
    }
    (in_token && seen == n).then_some(line.len())
}

#[test]
fn table_shows_aligned_totals_and_unknown_cost_note() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_db(dir.path());
    let rep = spend_report_range(&path, GroupBy::Key, 1000, 4999).expect("report");
    let table = rep.to_table();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("Spend by key from 1970-01-01 00:00 UTC"),
        "{table}"
    );
    assert!(lines[1].starts_with("key "), "{table}");
    assert!(lines[1].contains("cost USD") && lines[1].contains("saved USD"));
    let total = lines
        .iter()
        .find(|l| l.starts_with("TOTAL"))
        .expect("total line");
    let cols: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(
        cols,
        vec!["TOTAL", "5", "2", "100", "5", "0", "0", "0.600000", "0.000000"]
    );
    // Numeric columns are right-aligned: each cost cell ends where the header's does.
    let header_end = lines[1].find("cost USD").expect("header") + "cost USD".len();
    let data: Vec<&&str> = lines[3..].iter().filter(|l| !l.starts_with('-')).collect();
    assert_eq!(data.len(), 5, "{table}"); // 3 groups, total, unknown-cost note
    for line in &data[..4] {
        assert_eq!(token_end(line, 7), Some(header_end), "{table}");
    }
    assert!(table.contains("(+1 unknown cost)"), "{table}");
    assert!(table.contains("+ 1 request with unknown cost"), "{table}");
}

#[test]
fn table_rounds_only_for_display_and_json_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = row("1", 1, Some("k"), None, None, 200, Some("0.0000004999"), 1);
    r.saved_usd = Some(dec("0.0000005"));
    r.estimated = true;
    let path = db_with(dir.path(), &[r]);
    let rep = spend_report_range(&path, GroupBy::Key, 0, 10).expect("report");
    let table = rep.to_table();
    let line = table.lines().find(|l| l.starts_with("k ")).expect("row");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[7..], ["0.000000", "0.000001"], "{table}");
    assert!(
        table.contains("~ 1 request with estimated token counts"),
        "{table}"
    );
    let json = rep.to_json();
    assert_eq!(json["by"], "key");
    assert_eq!(json["total"]["cost_usd"], "0.0000004999");
    assert_eq!(json["rows"][0]["saved_usd"], "0.0000005");
    assert_eq!(json["rows"][0]["estimated_requests"], 1);
    assert_eq!(json["rows"][0]["input_tokens"], 1);
}

#[test]
fn group_by_parses() {
    for g in GroupBy::ALL {
        assert_eq!(g.as_str().parse::<GroupBy>(), Ok(g));
    }
    assert_eq!("Models".parse::<GroupBy>(), Ok(GroupBy::Model));
    assert!("team".parse::<GroupBy>().is_err());
}

#[test]
fn error_and_unknown_cost_classification() {
    let mut r = full_row("x");
    assert!(!r.is_error() && !r.has_unknown_cost());
    r.error_class = Some("stream_error".into());
    assert!(r.is_error());
    r.error_class = None;
    r.status = 0;
    assert!(r.is_error());
    r.cost_usd = None;
    assert!(r.has_unknown_cost());
}

#[test]
fn the_request_log_filters_still_use_their_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = open_writer(&dir.path().join("l.db")).expect("open");
    let plan = |filter: &str| -> String {
        conn.prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT request_id FROM requests WHERE {filter} \
             ORDER BY request_id DESC LIMIT 51"
        ))
        .and_then(|mut s| {
            let args: &[&dyn rusqlite::ToSql] = if filter.contains("?1") { &[&"f"] } else { &[] };
            s.query_map(args, |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("plan")
        .join("\n")
    };
    // The feature index holds only rows with a feature; `feature = ?` implies one.
    let by_feature = plan("feature = ?1");
    assert!(by_feature.contains("requests_feature_id"), "{by_feature}");
    let by_key = plan("gateway_key = 'k'");
    assert!(by_key.contains("requests_key_id"), "{by_key}");
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("indexes");
    assert!(
        !indexes.iter().any(|i| i == "requests_key_ts"),
        "{indexes:?}"
    );
}
