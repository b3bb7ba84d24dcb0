//! `strategy = "rules"`: the first rule whose `when` matches the request sends it to the
//! rule's route; no match falls through to the route's own targets (in config order).

use super::features::Features;
use crate::config::{Rule, When};

/// The first matching rule, with its index.
pub fn first_match<'r>(rules: &'r [Rule], f: &Features<'_>) -> Option<(usize, &'r Rule)> {
    rules.iter().enumerate().find(|(_, r)| matches(&r.when, f))
}

/// Whether every condition of `when` holds for the request.
pub fn matches(when: &When, f: &Features<'_>) -> bool {
    let headers_ok = when
        .headers
        .iter()
        .all(|(name, want)| f.header(name).is_some_and(|v| v.trim() == want));
    if !headers_ok {
        return false;
    }
    let needs_body = when.has_tools.is_some()
        || when.has_images.is_some()
        || when.prompt_tokens_over.is_some()
        || when.max_tokens_over.is_some()
        || !when.metadata.is_empty();
    if !needs_body {
        return true;
    }
    when.has_tools.is_none_or(|w| w == f.params().has_tools)
        && when
            .has_images
            .is_none_or(|w| w == (f.may_have_images() && f.prompt().has_images))
        && when
            .prompt_tokens_over
            .is_none_or(|n| f.prompt().prompt_tokens > n)
        && when
            .max_tokens_over
            .is_none_or(|n| f.max_tokens().is_some_and(|m| m > n))
        && when.metadata.iter().all(|(k, v)| {
            f.params()
                .metadata
                .iter()
                .any(|(mk, mv)| mk == k && mv == v)
        })
}

/// A short description of a rule's conditions, for the route reason.
pub fn describe(when: &When) -> String {
    let mut parts = Vec::new();
    if let Some(b) = when.has_tools {
        parts.push(format!("has_tools={b}"));
    }
    if let Some(b) = when.has_images {
        parts.push(format!("has_images={b}"));
    }
    if let Some(n) = when.prompt_tokens_over {
        parts.push(format!("prompt_tokens>{n}"));
    }
    if let Some(n) = when.max_tokens_over {
        parts.push(format!("max_tokens>{n}"));
    }
    for (k, v) in &when.headers {
        parts.push(format!("{k}={v}"));
    }
    for (k, v) in &when.metadata {
        parts.push(format!("metadata.{k}={v}"));
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Endpoint;
    use http::HeaderMap;

    fn rule(when: When, route: &str) -> Rule {
        Rule {
            when,
            route: route.into(),
        }
    }

    #[test]
    fn rules_match_on_tools_images_headers_and_metadata() {
        let rules = vec![
            rule(
                When {
                    has_tools: Some(true),
                    ..When::default()
                },
                "tools",
            ),
            rule(
                When {
                    has_images: Some(true),
                    ..When::default()
                },
                "vision",
            ),
            rule(
                When {
                    headers: vec![("x-switchyard-task".into(), "summarize".into())],
                    ..When::default()
                },
                "summaries",
            ),
            rule(
                When {
                    metadata: vec![("tier".into(), "gold".into())],
                    ..When::default()
                },
                "gold",
            ),
        ];
        let pick = |headers: &HeaderMap, body: &str| {
            let fields = crate::dialect::BodyFields::of(body.as_bytes());
            let f = Features::new(
                Endpoint::ChatCompletions,
                None,
                false,
                headers,
                body.as_bytes(),
                &fields,
            );
            first_match(&rules, &f).map(|(_, r)| r.route.clone())
        };
        let none = HeaderMap::new();
        let text = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(pick(&none, text), None);
        let tools =
            r#"{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[]}"#;
        assert_eq!(pick(&none, tools).as_deref(), Some("tools"));
        let image = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(pick(&none, image).as_deref(), Some("vision"));
        let mut h = HeaderMap::new();
        h.insert("x-switchyard-task", "summarize".parse().unwrap());
        assert_eq!(pick(&h, text).as_deref(), Some("summaries"));
        let gold = r#"{"model":"m","metadata":{"tier":"gold"},"messages":[]}"#;
        assert_eq!(pick(&none, gold).as_deref(), Some("gold"));
        // First match wins: tools beat the header.
        assert_eq!(pick(&h, tools).as_deref(), Some("tools"));
    }
}
