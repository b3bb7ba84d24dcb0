//! Dashboard login sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie, mapped in
//! memory to its expiry. The admin key itself is never stored or echoed: it is checked once at
//! login, and the cookie carries only the random id.
//!
//! The map is bounded ([`MAX_SESSIONS`]): expired sessions are swept on every login, and when
//! it is still full the session closest to expiry gives way.

use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "switchyard_session";
/// How long a login lasts (also the cookie's `Max-Age`).
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once.
pub const MAX_SESSIONS: usize = 1024;

/// Live sessions, by id (64 hex characters from 32 random bytes).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// Starts a session expiring `LIFETIME` after `now`; returns its id.
    pub fn create(&self, now: Instant) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, exp| *exp > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), now + LIFETIME);
        id
    }

    /// Whether `id` is a live session at `now` (an expired one is removed).
    pub fn valid(&self, id: &str, now: Instant) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(exp) if *exp > now => true,
            Some(_) => {
                map.remove(id);
                false
            }
            None => false,
        }
    }

    /// Ends a session (logout).
    pub fn remove(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session id in a `Cookie` header value, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then_some(v)
    })
}

/// `Set-Cookie` value for a new session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// `Set-Cookie` value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_are_random_and_bounded() {
        let s = Sessions::default();
        let now = Instant::now();
        let a = s.create(now);
        let b = s.create(now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.valid(&a, now + Duration::from_secs(60)));
        assert!(!s.valid(&a, now + LIFETIME + Duration::from_secs(1)));
        assert!(!s.valid("nope", now));
        s.remove(&b);
        assert!(!s.valid(&b, now));
        for _ in 0..(MAX_SESSIONS + 10) {
            s.create(now);
        }
        assert!(s.len() <= MAX_SESSIONS);
    }

    #[test]
    fn cookie_header_parsing_and_attributes() {
        let h = format!("a=1; {COOKIE}=abc; b=2");
        assert_eq!(from_cookie_header(&h), Some("abc"));
        assert_eq!(from_cookie_header("a=1"), None);
        assert_eq!(from_cookie_header(&format!("{COOKIE}=")), None);
        let c = set_cookie("abc");
        for attr in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
