//! Price-file errors: the same `file:line:column: field: message` errors as the config
//! (`conf/prices/openai.toml:12:9: prices[3].input: ...`), from the same locator.

pub use crate::config::error::Locator;

/// An error in a price file.
pub type PriceError = crate::config::ConfigError;
