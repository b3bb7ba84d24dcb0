//! A mock judge for experiments: a chat model whose name starts with `judge` answers (whole,
//! OpenAI dialect) with a verdict on the answers in its prompt instead of generated text.
//!
//! The answers are found after `## Answer` (score mode) or `## Answer A` / `## Answer B`
//! (pairwise) in the last message, as the gateway's judge writes them. Each answer's quality
//! is read from the model that wrote it ("Hello from MODEL!"): a model named with `-qN`
//! (`gpt-q8`) has quality N (1 to 10), any other 5. Score mode answers `{"score": N}`;
//! pairwise `{"winner": "A" | "B" | "tie"}`. A judge model whose name contains `garbled`
//! answers prose without JSON (for the unscored path).

use serde_json::Value;

/// The quality of an answer written by the mock: from its author's `-qN` name, else 5.
fn quality(answer: &str) -> u32 {
    let Some(start) = answer.find("Hello from ") else {
        return 5;
    };
    let rest = &answer[start + "Hello from ".len()..];
    let model = rest.split('!').next().unwrap_or("");
    model
        .rsplit_once("-q")
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .filter(|n| (1..=10).contains(n))
        .unwrap_or(5)
}

fn section<'a>(prompt: &'a str, head: &str, next: Option<&str>) -> Option<&'a str> {
    let at = prompt.find(head)? + head.len();
    let rest = &prompt[at..];
    Some(match next.and_then(|n| rest.find(n)) {
        Some(end) => &rest[..end],
        None => rest,
    })
}

/// The verdict text for a judge model, `None` for any other model.
pub(crate) fn reply(model: &str, body: &Value) -> Option<String> {
    if !model.starts_with("judge") {
        return None;
    }
    if model.contains("garbled") {
        return Some("The answer seems fine to me.".to_owned());
    }
    let prompt = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if let (Some(a), Some(b)) = (
        section(prompt, "## Answer A\n", Some("\n\n## Answer B")),
        section(prompt, "## Answer B\n", None),
    ) {
        let (qa, qb) = (quality(a), quality(b));
        let w = match qa.cmp(&qb) {
            std::cmp::Ordering::Greater => "A",
            std::cmp::Ordering::Less => "B",
            std::cmp::Ordering::Equal => "tie",
        };
        return Some(format!("{{\"winner\": \"{w}\"}}"));
    }
    let answer = section(prompt, "## Answer\n", None).unwrap_or("");
    Some(format!("{{\"score\": {}}}", quality(answer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ask(model: &str, prompt: &str) -> Option<String> {
        reply(
            model,
            &json!({"messages": [{"role": "user", "content": prompt}]}),
        )
    }

    #[test]
    fn the_judge_scores_by_the_author_and_compares_in_order() {
        assert_eq!(ask("gpt-4o", "x"), None);
        let p = "## Conversation\nuser: hi\n\n## Answer\nHello from m-q8! tok1";
        assert_eq!(ask("judge", p).as_deref(), Some("{\"score\": 8}"));
        let p = "## Answer A\nHello from m-q3! t\n\n## Answer B\nHello from m-q8! t";
        assert_eq!(ask("judge", p).as_deref(), Some("{\"winner\": \"B\"}"));
        let p = "## Answer A\nHello from plain! t\n\n## Answer B\nHello from other! t";
        assert_eq!(ask("judge", p).as_deref(), Some("{\"winner\": \"tie\"}"));
        assert!(!ask("judge-garbled", p).unwrap().contains('{'));
    }
}
