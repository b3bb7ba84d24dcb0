//! `[cache]` and per-route `cache = { ttl = "10m" }`: validated into [`CacheSettings`] and
//! [`RouteCache`].

use super::error::{ConfigError, Locator};
use super::raw::{RawCache, RawRouteCache, RawSize};
use super::units::parse_size;
use crate::duration::{parse_bounded, Bound};
use std::time::Duration;
use toml::Spanned;

/// The response cache: an in-memory store bounded in bytes, shared by every route that opts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Bytes of answers kept (fixed at start).
    pub max_size: usize,
    /// Largest answer stored.
    pub max_entry_size: usize,
    /// Longest TTL a route or a request may ask for.
    pub max_ttl: Duration,
    /// How long identical requests wait for the first one's answer.
    pub lock_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_size: 256 << 20,
            max_entry_size: 8 << 20,
            max_ttl: Duration::from_secs(24 * 3600),
            lock_timeout: Duration::from_secs(30),
        }
    }
}

/// A route's opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteCache {
    pub ttl: Duration,
    /// Whether answers that call tools are stored.
    pub tool_calls: bool,
}

fn size(loc: &Locator<'_>, s: &Spanned<RawSize>, field: &str) -> Result<usize, ConfigError> {
    let n = match s.get_ref() {
        RawSize::Bytes(n) => usize::try_from(*n).map_err(|_| "must not be negative".to_owned()),
        RawSize::Text(t) => parse_size(t),
    }
    .map_err(|m| loc.error(s.span(), field, m))?;
    if n < 1024 {
        return Err(loc.error(s.span(), field, "must be at least 1KiB"));
    }
    Ok(n)
}

fn duration(
    loc: &Locator<'_>,
    s: &Spanned<String>,
    field: &str,
    bound: Bound,
) -> Result<Duration, ConfigError> {
    let d = parse_bounded(s.get_ref(), bound).map_err(|m| loc.error(s.span(), field, m))?;
    if d.is_zero() {
        return Err(loc.error(s.span(), field, "must be longer than 0"));
    }
    Ok(d)
}

pub(super) fn settings(
    loc: &Locator<'_>,
    raw: Option<&RawCache>,
) -> Result<CacheSettings, ConfigError> {
    let mut s = CacheSettings::default();
    let Some(raw) = raw else {
        return Ok(s);
    };
    if let Some(v) = &raw.max_size {
        s.max_size = size(loc, v, "cache.max_size")?;
    }
    if let Some(v) = &raw.max_entry_size {
        s.max_entry_size = size(loc, v, "cache.max_entry_size")?;
        if s.max_entry_size > s.max_size {
            return Err(loc.error(
                v.span(),
                "cache.max_entry_size",
                "must not be larger than cache.max_size",
            ));
        }
    }
    if let Some(v) = &raw.max_ttl {
        s.max_ttl = duration(loc, v, "cache.max_ttl", Bound::CacheTtl)?;
    }
    if let Some(v) = &raw.lock_timeout {
        s.lock_timeout = duration(loc, v, "cache.lock_timeout", Bound::Request)?;
    }
    Ok(s)
}

pub(super) fn route_cache(
    loc: &Locator<'_>,
    raw: &Spanned<RawRouteCache>,
    field: &str,
) -> Result<RouteCache, ConfigError> {
    let r = raw.get_ref();
    Ok(RouteCache {
        ttl: duration(loc, &r.ttl, &format!("{field}.ttl"), Bound::CacheTtl)?,
        tool_calls: r.tool_calls.unwrap_or(true),
    })
}
