//! The ledger's `unit` and `quantity` columns (media endpoints): what a request's cost is
//! counted in (`tokens`, `images`, `seconds`, `characters`) and how many it used.
//!
//! One migration of its own, appended to `schema::MIGRATIONS`; it only adds nullable columns,
//! so it can be renumbered freely when merged with other migrations. Rows written before it
//! read back with no unit and no quantity.

/// Adds the `unit` and `quantity` columns.
pub(super) const MIGRATION: &str = "ALTER TABLE requests ADD COLUMN unit TEXT;
    ALTER TABLE requests ADD COLUMN quantity INTEGER;";

#[cfg(test)]
mod tests {
    use super::super::store::{open_writer, read_row};
    use super::super::*;

    fn media_row(id: &str, unit: Option<&str>, quantity: Option<u64>, cost: &str) -> LedgerRow {
        LedgerRow {
            request_id: id.into(),
            ts_ms: 1_000,
            endpoint: "image_generations".into(),
            status: 200,
            cost_usd: Some(cost.parse().unwrap()),
            unit: unit.map(str::to_owned),
            quantity,
            ..LedgerRow::default()
        }
    }

    #[test]
    fn unit_and_quantity_round_trip_and_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut conn = open_writer(&path).unwrap();
        let rows = [
            media_row("a", Some("images"), Some(2), "0.08"),
            media_row("b", Some("images"), Some(3), "0.12"),
            media_row("c", Some("seconds"), Some(61), "0.0061"),
            media_row("d", None, None, "0.01"),
        ];
        store::insert_rows(&mut conn, rows.iter()).unwrap();
        drop(conn);
        assert_eq!(read_row(&path, "a").unwrap().unwrap(), rows[0]);
        assert_eq!(read_row(&path, "d").unwrap().unwrap().quantity, None);
        let r = spend_report_range(&path, GroupBy::Unit, 0, 2_000).unwrap();
        let images = r.rows.iter().find(|g| g.group == "images").unwrap();
        assert_eq!(images.requests, 2);
        assert_eq!(images.quantities.get("images"), Some(&5));
        assert_eq!(images.cost_usd, "0.20".parse().unwrap());
        assert!(r.rows.iter().any(|g| g.group == report::NONE_GROUP));
        assert_eq!(r.total.quantities.get("seconds"), Some(&61));
        assert_eq!(r.to_json()["total"]["quantities"]["images"], 5);
    }

    #[test]
    fn an_older_database_gains_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        // The schema before this migration.
        super::super::schema::migrate_to(&mut conn, 3).unwrap();
        drop(conn);
        drop(open_writer(&path).unwrap());
        assert_eq!(schema_version(&path).unwrap(), SCHEMA_VERSION);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('requests')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(cols.contains(&"unit".to_owned()) && cols.contains(&"quantity".to_owned()));
    }
}
