//! Gateway keys managed at run time: made, listed, revoked and rotated without editing the
//! config ([`ops`], used by `switchyard keys ...` and the admin API), kept hashed in SQLite
//! beside the ledger ([`store`]), and followed by the running gateway within a second
//! ([`live`]).

pub mod cli;
pub mod live;
pub mod ops;
pub mod store;

pub use live::LiveKeys;
pub use store::{KeyError, KeyStore, NewKey, StoredKey};
