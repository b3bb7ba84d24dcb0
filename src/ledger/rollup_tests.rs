//! The rollup equals a sum over the rows, whatever path the rows took: inserted in batches
//! with duplicates, appended to, or already there when the migration ran.

use super::*;
use crate::ledger::store::{insert_rows, open_writer};
use crate::ledger::{Append, LedgerAttempt, Role};
use crate::usage::Usage;

fn row(id: &str, ts: i64, key: Option<&str>, model: &str, cost: Option<&str>) -> LedgerRow {
    LedgerRow {
        request_id: id.into(),
        ts_ms: ts,
        gateway_key: key.map(str::to_owned),
        feature: Some("chat".into()),
        provider: Some("openai".into()),
        model: Some(model.into()),
        endpoint: "chat_completions".into(),
        status: 200,
        usage: Usage {
            input: 10,
            output: 3,
            ..Usage::default()
        },
        cost_usd: cost.map(|c| Decimal::from_str(c).unwrap()),
        cost_unknown: cost.is_none(),
        saved_usd: (id.ends_with("hit")).then(|| Decimal::new(7, 4)),
        ..LedgerRow::default()
    }
}

/// The rollup recomputed from `rows` (the reference).
fn expected(rows: &[LedgerRow]) -> Vec<Cell> {
    let mut r = Rollup::default();
    for row in rows {
        r.add(&Contribution::of(row), 1);
    }
    let mut out: Vec<Cell> = r
        .cells()
        .map(|(hour_ms, dim, grp, agg)| Cell {
            hour_ms,
            dim,
            grp: grp.to_owned(),
            agg: Agg {
                cost: agg.cost.normalize(),
                saved: agg.saved.normalize(),
                ..agg.clone()
            },
        })
        .collect();
    out.sort_by(|a, b| (a.hour_ms, a.dim, &a.grp).cmp(&(b.hour_ms, b.dim, &b.grp)));
    out
}

fn normalized(cells: Vec<Cell>) -> Vec<Cell> {
    cells
        .into_iter()
        .map(|mut c| {
            c.agg.cost = c.agg.cost.normalize();
            c.agg.saved = c.agg.saved.normalize();
            c
        })
        .collect()
}

const T0: i64 = 1_700_000_000_000;

#[test]
fn inserts_keep_the_rollup_and_duplicates_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_writer(&dir.path().join("l.db")).unwrap();
    let rows = vec![
        row("a", T0, Some("alice"), "gpt", Some("0.1")),
        row("b", T0 + 10, Some("alice"), "gpt", Some("0.000000001")),
        row("c", T0 + HOUR_MS, None, "mini", None),
        row(
            "d-hit",
            T0 + 2 * HOUR_MS + 5,
            Some("bob"),
            "mini",
            Some("0"),
        ),
    ];
    insert_rows(&mut conn, &rows[..2]).unwrap();
    // A replay of the first batch with the rest: only the new rows count.
    let done = insert_rows(&mut conn, &rows).unwrap();
    assert_eq!((done.new, done.duplicates), (2, 2));
    let got = normalized(read_all(&conn).unwrap());
    assert_eq!(got, expected(&rows));
    let total: Vec<&Cell> = got.iter().filter(|c| c.dim == Dim::Total).collect();
    assert_eq!(total.len(), 3, "three hours");
    assert_eq!(total[0].agg.requests, 2);
    assert_eq!(total[0].agg.cost, Decimal::from_str("0.100000001").unwrap());
    assert_eq!(total[1].agg.unpriced, 1);
    assert_eq!(total[1].agg.cost, Decimal::ZERO);
    assert_eq!(total[2].agg.saved, Decimal::new(7, 4));
    let keys: Vec<&str> = got
        .iter()
        .filter(|c| c.dim == Dim::Key)
        .map(|c| c.grp.as_str())
        .collect();
    assert_eq!(keys, vec!["alice", NONE_GROUP, "bob"]);
    assert!(got
        .iter()
        .any(|c| c.dim == Dim::Model && c.grp == "openai/mini"));
}

#[test]
fn appended_attempts_move_the_rows_cost_in_the_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_writer(&dir.path().join("l.db")).unwrap();
    let mut rows = vec![
        row("a", T0, Some("alice"), "gpt", Some("0.25")),
        row("b", T0 + 1, Some("alice"), "gpt", Some("0.5")),
    ];
    insert_rows(&mut conn, &rows).unwrap();
    let judge = |cost: Option<Decimal>| LedgerAttempt {
        usage: Usage {
            input: 4,
            output: 1,
            ..Usage::default()
        },
        cost_usd: cost,
        cost_unknown: cost.is_none(),
        ..LedgerAttempt::unbilled(Role::Judge, "openai", "judge")
    };
    let tx = conn.transaction().unwrap();
    assert!(crate::ledger::append::append(
        &tx,
        &Append {
            request_id: "a".into(),
            attempts: vec![judge(Some(Decimal::new(1, 2)))],
        },
    )
    .unwrap());
    // An unpriced judge call makes b's cost unknown: its cost leaves the sums.
    assert!(crate::ledger::append::append(
        &tx,
        &Append {
            request_id: "b".into(),
            attempts: vec![judge(None)],
        },
    )
    .unwrap());
    tx.commit().unwrap();
    rows[0].cost_usd = Some(Decimal::new(26, 2));
    rows[0].usage.input += 4;
    rows[0].usage.output += 1;
    rows[1].cost_usd = None;
    rows[1].usage.input += 4;
    rows[1].usage.output += 1;
    assert_eq!(normalized(read_all(&conn).unwrap()), expected(&rows));
    let total = read_all(&conn)
        .unwrap()
        .into_iter()
        .find(|c| c.dim == Dim::Total)
        .unwrap();
    assert_eq!(total.agg.requests, 2);
    assert_eq!(total.agg.unpriced, 1);
    assert_eq!(total.agg.cost.normalize(), Decimal::new(26, 2));
}

#[test]
fn the_migration_backfills_rows_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let rows: Vec<LedgerRow> = (0..300)
        .map(|i| {
            let cost = (i % 7 != 0).then(|| format!("0.00{i}"));
            row(
                &format!("r{i:04}"),
                T0 + i * 997_000,
                Some(["a", "b", "c"][(i % 3) as usize]),
                ["gpt", "mini"][(i % 2) as usize],
                cost.as_deref(),
            )
        })
        .collect();
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        crate::ledger::schema::migrate_to(&mut conn, SCHEMA_BEFORE_ROLLUP).unwrap();
        insert_rows_without_rollup(&mut conn, &rows);
        assert!(!has_rollup(&conn).unwrap());
    }
    let conn = open_writer(&path).unwrap();
    assert!(has_rollup(&conn).unwrap());
    assert_eq!(normalized(read_all(&conn).unwrap()), expected(&rows));
}

/// The schema version just before the rollup's migration.
const SCHEMA_BEFORE_ROLLUP: i64 = 7;

/// Rows written as a build before the rollup did (the table's columns of version 7).
fn insert_rows_without_rollup(conn: &mut rusqlite::Connection, rows: &[LedgerRow]) {
    let tx = conn.transaction().unwrap();
    for r in rows {
        tx.execute(
            "INSERT INTO requests (request_id, ts_ms, gateway_key, feature, endpoint, provider, \
             model, attempt_count, status, cache_hit, stream, input_tokens, output_tokens, \
             cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_unknown, \
             saved_usd, estimated, total_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, 200, 0, 0, \
             ?8, ?9, 0, 0, 0, ?10, ?11, ?12, 0, 1.0)",
            params![
                r.request_id,
                r.ts_ms,
                r.gateway_key,
                r.feature,
                r.endpoint,
                r.provider,
                r.model,
                r.usage.input as i64,
                r.usage.output as i64,
                r.cost_usd.map(|d| d.to_string()),
                r.cost_unknown,
                r.saved_usd.map(|d| d.to_string()),
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}
