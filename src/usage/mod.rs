//! stub
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage { pub input: u64, pub output: u64, pub cached_input: u64, pub cache_write: u64, pub reasoning: u64 }
