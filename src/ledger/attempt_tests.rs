//! Unit tests for rows with several costed attempts: sums, storage, the schema-2 migration,
//! old spill lines, and the spend report by model charging each attempt to its own model.

use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::report::per_attempt_sql;
use super::schema::migrate_to;
use super::spill::parse_line;
use super::store::{insert_rows, open_writer};
use super::*;
use crate::usage::Usage;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

fn tokens(input: u64, output: u64) -> Usage {
    Usage {
        input,
        output,
        ..Usage::default()
    }
}

fn attempt(role: Role, target: &str, usage: Usage, cost: Option<&str>) -> LedgerAttempt {
    let (provider, model) = target.split_once('/').expect("provider/model");
    LedgerAttempt {
        usage,
        cost_usd: cost.map(dec),
        cost_unknown: cost.is_none(),
        status: Some(200),
        ..LedgerAttempt::unbilled(role, provider, model)
    }
}

fn failed(target: &str) -> LedgerAttempt {
    let (provider, model) = target.split_once('/').expect("provider/model");
    LedgerAttempt {
        status: Some(429),
        error_class: Some("rate_limited".into()),
        ..LedgerAttempt::unbilled(Role::Failed, provider, model)
    }
}

fn row(id: &str, key: &str, served: &str, attempts: Vec<LedgerAttempt>) -> LedgerRow {
    let (provider, model) = served.split_once('/').expect("provider/model");
    let mut r = LedgerRow {
        request_id: id.into(),
        ts_ms: 1000,
        gateway_key: Some(key.into()),
        endpoint: "chat_completions".into(),
        provider: Some(provider.into()),
        model: Some(model.into()),
        status: 200,
        total_ms: 1.0,
        route_reason: None,
        reserved_usd: None,
        ..LedgerRow::default()
    };
    r.attempt_count = attempts.iter().filter(|a| a.role != Role::Skipped).count() as u32;
    r.set_attempts(attempts);
    r
}

fn db(dir: &Path, rows: &[LedgerRow]) -> std::path::PathBuf {
    let path = dir.join("ledger.db");
    let mut conn = open_writer(&path).expect("open");
    insert_rows(&mut conn, rows).expect("insert");
    path
}

#[test]
fn roles_are_snake_case_and_parse_back() {
    for role in Role::ALL {
        let json = serde_json::to_string(&role).expect("serialize");
        assert_eq!(json, format!("\"{}\"", role.as_str()));
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    assert_eq!(Role::RaceLoser.as_str(), "race_loser");
    assert!("winner".parse::<Role>().is_err());
}

#[test]
fn row_cost_is_the_exact_sum_and_any_unknown_makes_it_unknown() {
    let mut r = row(
        "1",
        "k",
        "openai/gpt",
        vec![
            failed("openai/gpt"),
            attempt(
                Role::RaceLoser,
                "anthropic/claude",
                tokens(5, 7),
                Some("0.1"),
            ),
            attempt(
                Role::Served,
                "openai/gpt",
                tokens(3, 4),
                Some("0.0000000002"),
            ),
        ],
    );
    assert_eq!(r.cost_usd, Some(dec("0.1000000002")));
    assert!(!r.cost_unknown);
    assert_eq!(r.usage, tokens(8, 11));
    assert_eq!(r.served().map(|a| a.model.as_str()), Some("gpt"));

    let mut attempts = r.attempts.clone();
    attempts.push(attempt(Role::Judge, "openai/private", tokens(1, 1), None));
    r.set_attempts(attempts);
    assert_eq!(r.cost_usd, None, "an unpriced judge call is never $0");
    assert!(r.cost_unknown && r.has_unknown_cost());
    assert_eq!(r.usage, tokens(9, 12));

    r.set_attempts(Vec::new());
    assert_eq!(
        (r.cost_usd, r.usage),
        (Some(Decimal::ZERO), Usage::default())
    );
}

#[test]
fn attempts_are_stored_in_order_and_read_back_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut judge = attempt(Role::Judge, "openai/private", tokens(1, 2), None);
    judge.key_index = Some(3);
    judge.ms = Some(7.5);
    let mut skipped = LedgerAttempt::unbilled(Role::Skipped, "down", "never");
    skipped.error_class = Some("circuit_open".into());
    let attempts = vec![
        skipped,
        failed("openai/gpt"),
        attempt(Role::Hedge, "groq/llama", tokens(2, 9), Some("0.000001")),
        attempt(
            Role::Served,
            "openai/gpt",
            tokens(3, 4),
            Some("0.0000123456789"),
        ),
        attempt(Role::Shadow, "x/y", tokens(1, 1), Some("0")),
        judge,
    ];
    let r = row("req-a", "k", "openai/gpt", attempts);
    let path = db(dir.path(), std::slice::from_ref(&r));
    let back = read_row(&path, "req-a").expect("read").expect("row");
    assert_eq!(back, r);
    assert_eq!(back.attempts.len(), 6);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let (kind, text): (String, String) = conn
        .query_row(
            "SELECT typeof(cost_usd), cost_usd FROM attempts WHERE request_id = 'req-a' AND idx = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("query");
    assert_eq!((kind.as_str(), text.as_str()), ("text", "0.0000123456789"));
    let roles: Vec<String> = conn
        .prepare("SELECT role FROM attempts ORDER BY idx")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("roles");
    assert_eq!(
        roles,
        ["skipped", "failed", "hedge", "served", "shadow", "judge"]
    );
}

#[test]
fn a_duplicate_row_adds_no_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = row(
        "dup",
        "k",
        "openai/gpt",
        vec![attempt(Role::Served, "openai/gpt", tokens(1, 1), Some("1"))],
    );
    let second = row(
        "dup",
        "k",
        "openai/gpt",
        vec![
            failed("a/b"),
            attempt(Role::Served, "openai/gpt", tokens(1, 1), Some("2")),
        ],
    );
    let path = db(dir.path(), &[first.clone(), second]);
    assert_eq!(read_row(&path, "dup").expect("read"), Some(first));
}

/// The report by model: race losers, hedges and judges are charged to their own model; the
/// request counts for the model that served; groups add up to the total.
#[test]
fn spend_by_model_charges_each_attempt_to_its_own_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raced = row(
        "1",
        "a",
        "openai/gpt",
        vec![
            failed("x/y"),
            attempt(Role::Served, "openai/gpt", tokens(10, 1), Some("0.10")),
            attempt(
                Role::RaceLoser,
                "anthropic/claude",
                tokens(30, 2),
                Some("0.5"),
            ),
        ],
    );
    let judged = row(
        "2",
        "a",
        "openai/gpt",
        vec![
            attempt(Role::Served, "openai/gpt", tokens(20, 1), Some("0.2")),
            attempt(Role::Judge, "openai/judge", tokens(5, 1), None),
        ],
    );
    let hedged = row(
        "3",
        "b",
        "anthropic/claude",
        vec![
            attempt(Role::Hedge, "openai/gpt", tokens(1, 0), Some("0.000001")),
            attempt(Role::Served, "anthropic/claude", tokens(2, 3), Some("0.03")),
        ],
    );
    // A row recorded without attempts (as a test or an old producer would): it counts whole
    // for its own model.
    let mut bare = row("4", "b", "p/m", Vec::new());
    bare.cost_usd = Some(dec("0.01"));
    bare.usage = tokens(4, 4);
    let path = db(dir.path(), &[raced, judged, hedged, bare]);

    let rep = spend_report_range(&path, GroupBy::Model, 0, i64::MAX).expect("report");
    let g = |name: &str| {
        rep.rows
            .iter()
            .find(|r| r.group == name)
            .unwrap_or_else(|| panic!("no group {name}: {rep:?}"))
    };
    let claude = g("anthropic/claude");
    assert_eq!((claude.requests, claude.cost_usd), (1, dec("0.53")));
    assert_eq!(claude.usage.input, 32);
    let gpt = g("openai/gpt");
    // Requests 1 and 2 were served by gpt; request 2's cost is unknown (its judge is
    // unpriced), so only request 1's gpt cost and request 3's hedge count.
    assert_eq!((gpt.requests, gpt.cost_usd), (2, dec("0.100001")));
    assert_eq!((gpt.usage.input, gpt.unknown_cost_requests), (31, 1));
    let judge = g("openai/judge");
    assert_eq!((judge.requests, judge.cost_usd), (0, Decimal::ZERO));
    assert_eq!((judge.unknown_cost_requests, judge.usage.input), (1, 5));
    assert_eq!(g("p/m").cost_usd, dec("0.01"));
    assert!(
        rep.rows.iter().all(|r| r.group != "x/y"),
        "a failed attempt bills nothing: {rep:?}"
    );

    // Totals: the sum of the rows' known costs, equal to the sum of the groups, and the same
    // whatever the grouping.
    let known: Decimal = ["1", "3", "4"]
        .iter()
        .map(|id| {
            read_row(&path, id)
                .expect("read")
                .and_then(|r| r.cost_usd)
                .expect("known cost")
        })
        .sum();
    assert_eq!(known, dec("0.640001"));
    assert_eq!(rep.total.cost_usd, known);
    assert_eq!(rep.rows.iter().map(|r| r.cost_usd).sum::<Decimal>(), known);
    assert_eq!(
        rep.rows.iter().map(|r| r.usage.input).sum::<u64>(),
        rep.total.usage.input
    );
    assert_eq!(
        (rep.total.requests, rep.total.unknown_cost_requests),
        (4, 1)
    );
    for by in GroupBy::ALL {
        let other = spend_report_range(&path, by, 0, i64::MAX).expect("report");
        assert_eq!(other.total, rep.total, "{by}");
        let sum: Decimal = other.rows.iter().map(|r| r.cost_usd).sum();
        assert_eq!(sum, known, "{by}");
    }
    let by_provider = spend_report_range(&path, GroupBy::Provider, 0, i64::MAX).expect("report");
    let anthropic = by_provider.rows.iter().find(|r| r.group == "anthropic");
    assert_eq!(anthropic.map(|r| r.cost_usd), Some(dec("0.53")));
}

#[test]
fn a_lone_served_attempt_lives_in_its_row_and_reads_back_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lone = row(
        "1",
        "a",
        "openai/gpt",
        vec![LedgerAttempt {
            key_index: Some(2),
            ms: Some(41.25),
            ..attempt(Role::Served, "openai/gpt", tokens(10, 2), Some("0.0150"))
        }],
    );
    lone.error_class = None;
    let walked = row(
        "2",
        "a",
        "anthropic/claude",
        vec![
            failed("openai/gpt"),
            attempt(Role::Served, "anthropic/claude", tokens(3, 1), Some("0.2")),
        ],
    );
    let path = db(dir.path(), &[lone.clone(), walked.clone()]);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let stored = |id: &str| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM attempts WHERE request_id = ?1",
            [id],
            |r| r.get(0),
        )
        .expect("count")
    };
    // The lone attempt is in its row, not in `attempts`; a walk keeps its rows.
    assert_eq!((stored("1"), stored("2")), (0, 2));
    assert_eq!(read_row(&path, "1").expect("read"), Some(lone.clone()));
    assert_eq!(read_row(&path, "2").expect("read"), Some(walked));
    let rep = spend_report_range(&path, GroupBy::Model, 0, i64::MAX).expect("report");
    let gpt = rep
        .rows
        .iter()
        .find(|r| r.group == "openai/gpt")
        .expect("gpt");
    assert_eq!(
        (gpt.requests, gpt.cost_usd, gpt.usage.input),
        (1, dec("0.0150"), 10)
    );
    // An append moves it out first: served stays idx 0, the judge follows.
    let judge = attempt(Role::Judge, "openai/judge", tokens(5, 1), Some("0.001"));
    append::append(
        &conn,
        &Append {
            request_id: "1".into(),
            attempts: vec![judge.clone()],
        },
    )
    .expect("append");
    assert_eq!(stored("1"), 2);
    let got = read_row(&path, "1").expect("read").expect("row");
    assert_eq!(got.attempts, vec![lone.attempts[0].clone(), judge]);
    assert_eq!(got.cost_usd, Some(dec("0.0160")));
    let by_model = spend_report_range(&path, GroupBy::Model, 0, i64::MAX).expect("report");
    let judge_group = by_model.rows.iter().find(|r| r.group == "openai/judge");
    assert_eq!(judge_group.map(|r| r.cost_usd), Some(dec("0.001")));
}

#[test]
fn the_per_attempt_report_reaches_attempts_by_their_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db(dir.path(), &[]);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            per_attempt_sql(super::report::ROW_COLUMNS, super::inline::CONDITION)
        ))
        .and_then(|mut s| {
            s.query_map([0i64, 1i64], |r| r.get::<_, String>(3))?
                .collect()
        })
        .expect("plan");
    let plan = plan.join("\n");
    assert!(plan.contains("requests_ts"), "{plan}");
    assert!(
        plan.contains("SEARCH a USING PRIMARY KEY (request_id=?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN a"), "{plan}");
}

/// A schema-2 database (written with the old columns) migrates in place: every row keeps its
/// cost, its attempts come out of `attempts_json`, and the reports give the same totals.
#[test]
fn a_schema_2_database_migrates_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    migrate_to(&mut conn, 2).expect("schema 2");
    let insert = |id: &str, provider: Option<&str>, json: &str, status: i64, cost: Option<&str>| {
        conn.execute(
            "INSERT INTO requests (request_id, ts_ms, gateway_key, endpoint, provider, model, \
             attempts_json, attempt_count, status, cache_hit, stream, input_tokens, \
             output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, \
             cost_unknown, estimated, total_ms) \
             VALUES (?1, 1000, 'k', 'chat_completions', ?2, 'm', ?3, 1, ?4, 0, 0, 3, 16, 0, 0, 0, \
             ?5, ?6, 0, 1.0)",
            rusqlite::params![id, provider, json, status, cost, cost.is_none()],
        )
        .expect("insert v2 row");
    };
    insert(
        "a",
        Some("p"),
        r#"[{"provider":"down","model":"never","key":null,"outcome":"ConnectRefused","ms":0.2},{"provider":"p","model":"m","key":0,"outcome":"200","ms":1.5}]"#,
        200,
        Some("0.000123"),
    );
    insert("b", Some("p"), "torn [", 200, Some("0.5"));
    insert(
        "c",
        Some("p"),
        r#"[{"provider":"p","model":"m","key":0,"outcome":"200"}]"#,
        200,
        None,
    );
    drop(conn);
    let before: Vec<SpendReport> = GroupBy::ALL
        .iter()
        .map(|&by| spend_report_range(&path, by, 0, i64::MAX).expect("v2 report"))
        .collect();
    // An unmigrated file still reads (reports never migrate).
    let a = read_row(&path, "a").expect("read v2").expect("row");
    assert_eq!(a.attempts.len(), 2);

    drop(open_writer(&path).expect("migrate"));
    assert_eq!(schema_version(&path).expect("version"), SCHEMA_VERSION);
    let after: Vec<SpendReport> = GroupBy::ALL
        .iter()
        .map(|&by| spend_report_range(&path, by, 0, i64::MAX).expect("v3 report"))
        .collect();
    assert_eq!(after, before);

    let a = read_row(&path, "a").expect("read").expect("row");
    assert_eq!(a.cost_usd, Some(dec("0.000123")));
    let roles: Vec<Role> = a.attempts.iter().map(|x| x.role).collect();
    assert_eq!(roles, [Role::Failed, Role::Served]);
    assert_eq!(a.attempts[0].error_class.as_deref(), Some("ConnectRefused"));
    assert_eq!(a.attempts[1].cost_usd, Some(dec("0.000123")));
    assert_eq!(a.attempts[1].ms, Some(1.5));
    assert_eq!(Totals::of(&a.attempts).cost_usd, a.cost_usd);
    // Unreadable attempts: one served attempt carries the row's cost.
    let b = read_row(&path, "b").expect("read").expect("row");
    assert_eq!(b.attempts.len(), 1);
    assert_eq!(b.attempts[0].cost_usd, Some(dec("0.5")));
    let c = read_row(&path, "c").expect("read").expect("row");
    assert!(c.cost_usd.is_none() && c.cost_unknown);
    assert!(c.attempts[0].has_unknown_cost());
    let conn = rusqlite::Connection::open(&path).expect("open");
    let has_json: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('requests') WHERE name = 'attempts_json')",
            [],
            |r| r.get(0),
        )
        .expect("table info");
    assert!(!has_json, "the old column is dropped");
}

#[test]
fn spill_lines_of_both_shapes_parse() {
    let new = row(
        "n",
        "k",
        "openai/gpt",
        vec![
            failed("a/b"),
            attempt(Role::Served, "openai/gpt", tokens(1, 2), Some("0.3")),
        ],
    );
    let line = serde_json::to_vec(&new).expect("serialize");
    assert_eq!(parse_line(&line).expect("parse"), new);

    let old = include_str!("../../tests/fixtures/ledger/spill-v2.jsonl");
    let rows: Vec<LedgerRow> = old
        .lines()
        .map(|l| parse_line(l.as_bytes()).expect("old line parses"))
        .collect();
    assert_eq!(rows.len(), 2);
    let priced = &rows[0];
    assert_eq!(priced.cost_usd, Some(dec("0.000123456789")));
    let roles: Vec<Role> = priced.attempts.iter().map(|a| a.role).collect();
    assert_eq!(roles, [Role::Failed, Role::Served]);
    assert_eq!(priced.attempts[1].cost_usd, priced.cost_usd);
    assert_eq!(priced.attempts[1].usage, priced.usage);
    assert_eq!(priced.attempts[0].usage, Usage::default());
    let unpriced = &rows[1];
    assert!(unpriced.cost_usd.is_none() && unpriced.cost_unknown);
    assert!(unpriced.attempts[0].has_unknown_cost());
    assert_eq!(unpriced.attempts[0].key_index, Some(1));
}
