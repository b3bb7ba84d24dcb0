//! Sticky assignment: a variant is picked by a hash of the experiment's name and the sticky
//! key, so one user always sees one variant, with no lookup and across restarts and versions.
//!
//! The hash is SHA-256 of `"switchyard-experiment\0" + name + "\0" + key`; its first 8 bytes
//! (big-endian) are a point in `[0, 2^64)`, scaled onto the sum of the weights. SHA-256 is
//! fixed by its standard, so the choice never changes with the Rust version or the build.
//! A request without the sticky key gets a random point.

use crate::config::experiments::{Sticky, VariantConfig};
use sha2::{Digest, Sha256};

/// The point of `key` in experiment `experiment`.
pub fn point(experiment: &str, key: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"switchyard-experiment\0");
    h.update(experiment.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// The variant a point falls on, by weight (`None` if every weight is 0).
pub fn pick(variants: &[VariantConfig], point: u64) -> Option<usize> {
    let total: u64 = variants.iter().map(|v| u64::from(v.weight)).sum();
    if total == 0 {
        return None;
    }
    // Scaled, not `% total`: no modulo bias, and a weight change moves few users.
    let mut at = ((u128::from(point) * u128::from(total)) >> 64) as u64;
    for (i, v) in variants.iter().enumerate() {
        let w = u64::from(v.weight);
        if at < w {
            return Some(i);
        }
        at -= w;
    }
    None
}

/// The request's sticky key, if the experiment has one and the request carries it.
pub fn sticky_key(
    sticky: &Sticky,
    headers: &http::HeaderMap,
    key_name: Option<&str>,
    body: &[u8],
) -> Option<String> {
    match sticky {
        Sticky::None => None,
        Sticky::Key => key_name.map(str::to_owned),
        Sticky::Header(h) => headers
            .get(h.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        Sticky::Metadata(m) => {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            match v.get("metadata")?.get(m.as_str())? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
    }
}

/// The variant for a request: by the sticky key's point, or a random one.
pub fn assign(experiment: &str, variants: &[VariantConfig], key: Option<&str>) -> Option<usize> {
    let p = match key {
        Some(k) => point(experiment, k),
        None => rand::random(),
    };
    pick(variants, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    fn variants(weights: &[u32]) -> Vec<VariantConfig> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| VariantConfig {
                name: format!("v{i}"),
                target: Target {
                    provider: 0,
                    model: format!("m{i}"),
                },
                weight: *w,
                system: None,
                params: Default::default(),
            })
            .collect()
    }

    #[test]
    fn the_point_is_fixed_across_builds() {
        // Golden values: changing them would move every user of every running experiment.
        assert_eq!(point("support-answers", "user-1"), 0x299f_241f_993d_e777);
        let a = point("support-answers", "user-1");
        assert_eq!(a, point("support-answers", "user-1"));
        assert_ne!(a, point("support-answers", "user-2"));
        assert_ne!(a, point("other", "user-1"));
    }

    #[test]
    fn weights_split_ten_thousand_users_within_tolerance() {
        for weights in [[1u32, 1], [3, 1]] {
            let vs = variants(&weights);
            let mut counts = [0usize; 2];
            for u in 0..10_000 {
                let i = assign("split", &vs, Some(&format!("user-{u}"))).unwrap();
                counts[i] += 1;
            }
            let total: u32 = weights.iter().sum();
            for (i, w) in weights.iter().enumerate() {
                let expected = 10_000.0 * f64::from(*w) / f64::from(total);
                // Binomial sd is at most 50; 250 is five of them.
                assert!(
                    (counts[i] as f64 - expected).abs() < 250.0,
                    "weights {weights:?}: {counts:?}"
                );
            }
        }
        // Requests without a sticky key are assigned at random, also by weight.
        let vs = variants(&[1, 1]);
        let first = (0..10_000)
            .filter(|_| assign("split", &vs, None) == Some(0))
            .count();
        assert!((first as f64 - 5000.0).abs() < 250.0, "{first}");
    }

    #[test]
    fn a_user_keeps_their_variant_and_weight_zero_gets_nobody() {
        let vs = variants(&[1, 1, 1]);
        for u in 0..500 {
            let key = format!("user-{u}");
            let first = assign("sticky", &vs, Some(&key));
            for _ in 0..5 {
                assert_eq!(assign("sticky", &vs, Some(&key)), first);
            }
        }
        let vs = variants(&[0, 1]);
        assert!((0..1000).all(|u| assign("z", &vs, Some(&u.to_string())) == Some(1)));
        assert_eq!(pick(&variants(&[0, 0]), 7), None);
    }

    #[test]
    fn sticky_keys_come_from_headers_keys_and_metadata() {
        let mut h = http::HeaderMap::new();
        h.insert("x-user-id", "  u-7 ".parse().unwrap());
        let body = br#"{"metadata":{"user_id":"m-1"}}"#;
        assert_eq!(
            sticky_key(&Sticky::Header("x-user-id".into()), &h, None, body),
            Some("u-7".into())
        );
        assert_eq!(
            sticky_key(&Sticky::Key, &h, Some("team"), body),
            Some("team".into())
        );
        assert_eq!(
            sticky_key(&Sticky::Metadata("user_id".into()), &h, None, body),
            Some("m-1".into())
        );
        assert_eq!(
            sticky_key(&Sticky::Header("x-other".into()), &h, None, body),
            None
        );
        assert_eq!(sticky_key(&Sticky::None, &h, Some("k"), body), None);
    }
}
