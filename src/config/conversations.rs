//! `[conversations]`: how long, and in how much memory, the gateway keeps Responses API
//! conversations for `previous_response_id` (see `crate::conversation`).

use super::error::{ConfigError, Locator};
use super::raw::{RawConversations, RawSize};
use super::units::parse_size;
use crate::duration::{parse_bounded, Bound};
use std::time::Duration;

/// The conversation store's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationSettings {
    /// Bytes of conversation turns kept in memory; 0 keeps none (then every
    /// `previous_response_id` is a 404).
    pub max_size: usize,
    /// How long a turn is kept after its last use.
    pub ttl: Duration,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        ConversationSettings {
            max_size: 64 << 20,
            ttl: Duration::from_secs(3600),
        }
    }
}

pub(super) fn settings(
    loc: &Locator<'_>,
    raw: Option<&RawConversations>,
) -> Result<ConversationSettings, ConfigError> {
    let mut s = ConversationSettings::default();
    let Some(raw) = raw else {
        return Ok(s);
    };
    if let Some(v) = &raw.max_size {
        let field = "conversations.max_size";
        s.max_size = match v.get_ref() {
            RawSize::Bytes(n) => usize::try_from(*n).map_err(|_| "must not be negative".to_owned()),
            RawSize::Text(t) => parse_size(t),
        }
        .map_err(|m| loc.error(v.span(), field, m))?;
    }
    if let Some(v) = &raw.ttl {
        let field = "conversations.ttl";
        // Kept in memory like cached answers: the cache's bound.
        s.ttl = parse_bounded(v.get_ref(), Bound::CacheTtl)
            .map_err(|m| loc.error(v.span(), field, m))?;
        if s.ttl.is_zero() {
            return Err(loc.error(v.span(), field, "must be longer than 0"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(section: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse("t.toml", section, &|_| None)
    }

    #[test]
    fn defaults_sizes_and_errors_that_name_the_field() {
        let c = parse("").unwrap();
        assert_eq!(c.conversations.max_size, 64 << 20);
        let c = parse("[conversations]\nmax_size = \"1MiB\"\nttl = \"10m\"\n").unwrap();
        assert_eq!(c.conversations.max_size, 1 << 20);
        assert_eq!(c.conversations.ttl.as_secs(), 600);
        assert_eq!(
            parse("[conversations]\nmax_size = 0\n")
                .unwrap()
                .conversations
                .max_size,
            0
        );
        let e = parse("[conversations]\nttl = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:2") && e.contains("conversations.ttl"),
            "{e}"
        );
        let e = parse("[conversations]\nmax_size = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("conversations.max_size"), "{e}");
        let e = parse("[conversations]\nsize = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("size"), "{e}");
    }
}
